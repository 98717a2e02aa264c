"""Quantization: quantizers, range setting, BN folding, cross-layer equalization, high-bias
absorption, bias correction, recipes and the fake-quant reference (`QGraph`).

Every transform takes a Graph and returns a new one; the input is never modified.

Decisions (each module's docstring has the details):
- BN folding keeps the BN's beta/gamma on the conv (params ``bn_beta``/``bn_gamma``);
  equalization rescales them and absorption shifts them, so BN-based ranges and analytic
  bias correction always see the statistics of the current graph (fold.py).
- Equalization never crosses relu6 (it is not positively scale-equivariant): the
  ``replace_relu6`` step makes those pairs eligible. It does cross relu, identity and
  maxpool, never an add, concat, flatten or a tensor with two consumers (patterns.py).
- Absorption ignores zero padding in the absorbing layer, as AIMET does (absorb.py).
- Analytic bias correction weights each kernel tap by the fraction of output positions where
  it reads real pixels (bias_correction.py); data-free statistics of layers without BN use
  documented approximations (stats.py).
- Activations are quantized where an accelerator writes them: conv/linear outputs after a
  fused relu/relu6, adds, concats, pools that average, the graph input (qgraph.py).
- A recipe may ask for less than the hardware's datapath supports, never more (recipe.py).
- A bias that does not fit the accumulator (min(accumulator_bits, 32) bits) at its channel's
  weight scale raises that scale, never clips the bias; QGraph.info["bias_scale_raised"] lists
  the channels and a BiasRangeWarning names the layer (qgraph.py).
"""
from __future__ import annotations

from .absorb import absorb_high_bias
from .bias_correction import correct_bias
from .clipped_normal import clipped_normal_mean, clipped_normal_var
from .equalize import EqualizationInfo, equalize
from .fold import fold_batchnorm, replace_relu6
from .pipeline import quantize, weight_quantizer
from .qgraph import BiasRangeWarning, LayerQuant, QGraph, activation_sites
from .qgraph_io import is_qgraph_file, load_qgraph, save_qgraph
from .quantizers import QuantParams, make_qparams
from .ranges import bn_range, cross_entropy_qparams, minmax_qparams, mse_qparams
from .recipe import METHODS, Recipe, Steps, load_recipe
from .stats import ChannelStats, propagate_stats

__all__ = [
    "METHODS", "BiasRangeWarning", "ChannelStats", "EqualizationInfo", "LayerQuant", "QGraph", "QuantParams", "Recipe", "Steps",
    "absorb_high_bias", "activation_sites", "bn_range", "clipped_normal_mean", "clipped_normal_var",
    "correct_bias", "cross_entropy_qparams", "equalize", "fold_batchnorm", "is_qgraph_file", "load_qgraph",
    "load_recipe", "make_qparams", "minmax_qparams", "mse_qparams", "propagate_stats", "quantize", "replace_relu6",
    "save_qgraph", "weight_quantizer",
]
