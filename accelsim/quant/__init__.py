"""Quantization: quantizers, range setting, BN folding, cross-layer equalization, high-bias
absorption, bias correction, recipes and the fake-quant reference (`QGraph`)."""
from __future__ import annotations

from .absorb import absorb_high_bias
from .equalize import EqualizationInfo, equalize
from .fold import fold_batchnorm, replace_relu6
from .quantizers import QuantParams, make_qparams

__all__ = [
    "EqualizationInfo", "QuantParams", "absorb_high_bias", "equalize", "fold_batchnorm",
    "make_qparams", "replace_relu6",
]
