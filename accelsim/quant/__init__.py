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

import importlib
from typing import Any

#: public name -> the module that defines it; loaded on first use (PEP 562), so that
#: `accelsim.quant.recipe` (the recipe names, for the CLI's help) does not import every transform
_LAZY = {
    "absorb_high_bias": "absorb",
    "correct_bias": "bias_correction",
    "clipped_normal_mean": "clipped_normal", "clipped_normal_var": "clipped_normal",
    "EqualizationInfo": "equalize", "equalize": "equalize",
    "fold_batchnorm": "fold", "replace_relu6": "fold",
    "quantize": "pipeline", "weight_quantizer": "pipeline",
    "BiasRangeWarning": "qgraph", "LayerQuant": "qgraph", "QGraph": "qgraph", "activation_sites": "qgraph",
    "is_qgraph_file": "qgraph_io", "load_qgraph": "qgraph_io", "save_qgraph": "qgraph_io",
    "QuantParams": "quantizers", "make_qparams": "quantizers",
    "bn_range": "ranges", "cross_entropy_qparams": "ranges", "minmax_qparams": "ranges", "mse_qparams": "ranges",
    "METHODS": "recipe", "Recipe": "recipe", "Steps": "recipe", "load_recipe": "recipe",
    "ChannelStats": "stats", "propagate_stats": "stats",
}

__all__ = sorted(_LAZY)

# A name that is also a submodule's name (the function equalize in equalize.py) is bound now:
# importing the submodule later would otherwise leave the module where the function belongs.
from .equalize import EqualizationInfo, equalize  # noqa: E402  (light: numpy and the graph IR)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
