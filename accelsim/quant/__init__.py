"""Quantization: quantizers, range setting, BN folding, cross-layer equalization, high-bias
absorption, bias correction, recipes and the fake-quant reference (`QGraph`).

Every transform takes a Graph and returns a new one; the input is never modified.
"""
from __future__ import annotations

from .absorb import absorb_high_bias
from .bias_correction import correct_bias
from .clipped_normal import clipped_normal_mean, clipped_normal_var
from .equalize import EqualizationInfo, equalize
from .fold import fold_batchnorm, replace_relu6
from .pipeline import quantize, weight_quantizer
from .qgraph import LayerQuant, QGraph, activation_sites
from .quantizers import QuantParams, make_qparams
from .ranges import bn_range, cross_entropy_qparams, minmax_qparams, mse_qparams
from .recipe import METHODS, Recipe, Steps, load_recipe
from .stats import ChannelStats, propagate_stats

__all__ = [
    "METHODS", "ChannelStats", "EqualizationInfo", "LayerQuant", "QGraph", "QuantParams", "Recipe", "Steps",
    "absorb_high_bias", "activation_sites", "bn_range", "clipped_normal_mean", "clipped_normal_var",
    "correct_bias", "cross_entropy_qparams", "equalize", "fold_batchnorm", "load_recipe", "make_qparams",
    "minmax_qparams", "mse_qparams", "propagate_stats", "quantize", "replace_relu6", "weight_quantizer",
]
