"""Quantization recipes: a named method plus overrides, checked against what the hardware runs.

A recipe is a name (``dfq``), a YAML file or a dict::

    method: dfq                     # fp32 | naive | per_channel | dfq | dfq_calibrated
    weight_bits: 6                  # default: hw.precision.weight_bits
    activation_bits: 8              # default: hw.precision.activation_bits
    weight_scheme: symmetric        # default: hw.quantization.weight_scheme
    activation_scheme: asymmetric   # default: hw.quantization.activation_scheme
    weight_granularity: per_tensor  # default: hw.quantization.weight_granularity
    weight_range: minmax            # minmax | mse
    activation_range: bn            # bn | minmax | mse | auto (minmax with calibration data, else bn)
    last_layer_range: same          # same | cross_entropy (logits; needs calibration data)
    bn_range_n: 6                   # activation range beta +- n gamma
    input_range: [-0.43, 2.82]      # optional: the graph input's known range (else N(0,1) or data)
    steps: {fold_batchnorm: true, replace_relu6: true, equalize: true, absorb_high_bias: true,
            bias_correction: analytic}   # analytic | empirical | none

The hardware's ``quantization`` section says what its datapath supports; a recipe may ask for
less (symmetric weights on an asymmetric datapath, per-tensor scales on a per-channel one,
fewer bits than the datapath width) but never more.

PowerQuant (Yvinec et al. 2023): ``powerquant`` (naive's steps) and ``dfq+powerquant`` (DFQ's
transforms, then power quantization) quantize weights and activations on power grids
(`quantizers.make_power_qparams`). Their fields::

    power_exponent: auto            # auto: a* = argmin of the weights' reconstruction error (quant/power.py); or a number
    power_exponent_scope: network   # network: one a* (the paper's choice) | per_layer (appendix H's option)

They need a datapath with a power unit (``quantization.power_unit: lut | newton``).
"""
from __future__ import annotations

import difflib
import math
import numbers
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from ..config.hw import HwConfig
from ..errors import AccelsimError, ConfigError
from .quantizers import GRANULARITIES, MAX_BITS, MIN_BITS, SCHEMES

BIAS_CORRECTION = ("analytic", "empirical", "none")
WEIGHT_RANGES = ("minmax", "mse")
ACTIVATION_RANGES = ("bn", "minmax", "mse", "auto")
LAST_LAYER_RANGES = ("same", "cross_entropy")
POWER_METHODS = ("powerquant", "dfq+powerquant")
EXPONENT_SCOPES = ("network", "per_layer")


@dataclass(frozen=True)
class Steps:
    fold_batchnorm: bool = True
    replace_relu6: bool = False
    equalize: bool = False
    absorb_high_bias: bool = False
    bias_correction: str = "none"


_DFQ_STEPS = Steps(replace_relu6=True, equalize=True, absorb_high_bias=True, bias_correction="analytic")

#: method -> (its steps, fields it fixes, its default ranges)
METHODS: dict[str, tuple[Steps, dict[str, Any], str]] = {
    "fp32": (Steps(fold_batchnorm=False), {}, "auto"),
    "naive": (Steps(), {}, "auto"),
    "per_channel": (Steps(), {"weight_granularity": "per_channel"}, "auto"),
    "dfq": (_DFQ_STEPS, {}, "bn"),
    "dfq_calibrated": (replace(_DFQ_STEPS, bias_correction="empirical"), {}, "minmax"),
    "powerquant": (Steps(), {}, "bn"),
    "dfq+powerquant": (_DFQ_STEPS, {}, "bn"),
}
METHOD_HELP = {
    "fp32": "no quantization (the FP32 reference)",
    "naive": "fold BN, min-max weight ranges, the hardware's schemes and granularity",
    "per_channel": "naive with per-channel weight scales",
    "dfq": "data-free: fold BN, ReLU6->ReLU, equalize, absorb high biases, analytic bias correction, BN-based activation ranges",
    "dfq_calibrated": "dfq with calibration data: empirical bias correction, min-max activation ranges",
    "powerquant": "PowerQuant: power-function quantization of weights and activations, one exponent for the network (data-free)",
    "dfq+powerquant": "DFQ's transforms (ReLU6->ReLU, equalization, bias absorption, analytic bias correction), then PowerQuant",
}


@dataclass(frozen=True)
class Recipe:
    method: str
    weight_bits: int
    activation_bits: int
    weight_scheme: str
    activation_scheme: str
    weight_granularity: str
    weight_range: str = "minmax"
    activation_range: str = "auto"
    last_layer_range: str = "same"
    bn_range_n: float = 6.0
    input_range: tuple[float, float] | None = None
    power_exponent: float | str = "auto"
    power_exponent_scope: str = "network"
    steps: Steps = Steps()
    source: str = "recipe"  # a file name, or "recipe"

    @property
    def quantized(self) -> bool:
        return self.method != "fp32"

    @property
    def power(self) -> bool:
        """PowerQuant: weights and activations on power grids."""
        return self.method in POWER_METHODS

    @property
    def label(self) -> str:
        return f"{self.method} W{self.weight_bits}A{self.activation_bits}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        if d["input_range"] is not None:
            d["input_range"] = list(d["input_range"])
        return d


_FIELDS = [f for f in Recipe.__dataclass_fields__ if f != "source"]
_STEP_FIELDS = list(Steps.__dataclass_fields__)


def _describe(value: Any) -> str:
    from ..config.validate import describe

    return describe(value)


def _is_int(v: Any) -> bool:
    """Python or numpy integers (not booleans)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and type(v).__name__ != "bool_"


def _is_real(v: Any) -> bool:
    """Python or numpy finite-or-not real numbers (not booleans)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and type(v).__name__ != "bool_"


def _describe_range(r: Any) -> str:
    if isinstance(r, (list, tuple)) and len(r) <= 4 and all(_is_real(v) for v in r):
        return "[" + ", ".join(str(v) for v in r) + "]"
    return _describe(r)


def _hint(word: Any, options) -> str:
    if not isinstance(word, str):
        return ""
    near = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{near[0]}'?" if near else ""


def _choice(src: str, field: str, value: Any, options) -> str:
    if not isinstance(value, str) or value not in options:
        raise ConfigError(src, field, f"expected one of {', '.join(options)}; found {_describe(value)}{_hint(value, options)}")
    return value


def _bits(src: str, field: str, value: Any, hw_bits: int, what: str, from_hw: bool = False) -> int:
    if not _is_int(value) or not MIN_BITS <= value <= MAX_BITS:
        origin = f" (the default, from the hardware's precision.{what}: set {field} in the recipe)" if from_hw else ""
        raise ConfigError(src, field, f"expected an integer from {MIN_BITS} to {MAX_BITS}; found {_describe(value)}{origin}")
    if value > hw_bits:
        raise ConfigError(src, field, f"expected at most {hw_bits} (the hardware's precision.{what}); found {value}")
    return int(value)


def _load_doc(recipe: str | os.PathLike | Mapping) -> tuple[dict, str]:
    if isinstance(recipe, Mapping):
        return dict(recipe), "recipe"
    if not isinstance(recipe, (str, os.PathLike)):
        raise ConfigError("recipe", None, f"expected a recipe name ({', '.join(METHODS)}), a YAML file, "
                          f"a mapping or a Recipe; found {_describe(recipe)}")
    text = str(recipe)
    if text in METHODS:
        return {"method": text}, "recipe"
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        from ..config.load import parse_yaml, read_text

        doc = parse_yaml(read_text(path), str(path))
        if not isinstance(doc, dict):
            found = "an empty document" if doc is None else _describe(doc)
            raise ConfigError(str(path), "(top level)", f"expected a mapping of recipe fields; found {found}")
        return doc, str(path)
    known = list(METHODS)
    raise ConfigError("recipe", "method", f"expected a recipe name ({', '.join(METHODS)}) or a YAML file; "
                      f"found {text!r}{_hint(text, known)}")


def _method_defaults(method: str, hw: HwConfig) -> tuple[dict[str, Any], Steps]:
    """What `method` gives every field on `hw` when the recipe sets nothing else."""
    steps0, fixed, act_range = METHODS[method]
    q = hw.quantization
    values = {f: Recipe.__dataclass_fields__[f].default for f in _FIELDS if f not in ("method", "steps")}
    values.update(weight_bits=hw.precision.weight_bits, activation_bits=hw.precision.activation_bits,
                  weight_scheme=q.weight_scheme, activation_scheme=q.activation_scheme,
                  weight_granularity=q.weight_granularity, activation_range=act_range)
    values.update(fixed)
    return values, steps0


def _own_fields(recipe: Recipe, hw: HwConfig, keep_steps: bool) -> dict[str, Any]:
    """The recipe document that rebuilds `recipe`: its method plus the fields and steps that differ
    from the method's defaults on `hw`, so that overrides apply as they would to the original
    document (a field the method fixed or defaulted is not mistaken for a user's choice).
    Without `keep_steps` (the method is being replaced) the steps are dropped: they were
    switches relative to the old method."""
    defaults, steps0 = _method_defaults(recipe.method, hw)
    doc: dict[str, Any] = {"method": recipe.method}
    for key, value in recipe.to_dict().items():
        if key not in ("method", "steps") and value != defaults[key]:  # input_range's default is None
            doc[key] = value
    if keep_steps:
        steps = {k: v for k, v in asdict(recipe.steps).items() if v != getattr(steps0, k)}
        if steps:
            doc["steps"] = steps
    return doc


def load_recipe(recipe: str | os.PathLike | Mapping | Recipe, hw: HwConfig,
                overrides: Mapping[str, Any] | None = None) -> Recipe:
    """A validated Recipe: defaults from `hw`, then the method's, then the given fields, then
    `overrides` (e.g. command-line options)."""
    if not isinstance(hw, HwConfig):
        raise TypeError(f"load_recipe(): argument 'hw': expected a HwConfig; found {type(hw).__name__}")
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"load_recipe(): argument 'overrides': expected a mapping; found {type(overrides).__name__}")
    if isinstance(recipe, Recipe):
        if not overrides:
            return recipe
        new_method = overrides.get("method", recipe.method)
        doc, src = _own_fields(recipe, hw, keep_steps=new_method == recipe.method), recipe.source
    else:
        doc, src = _load_doc(recipe)
    doc.update(overrides or {})
    for key in doc:
        if not isinstance(key, str) or key not in _FIELDS:
            raise ConfigError(src, str(key)[:40], f"expected one of the fields {', '.join(_FIELDS)}; found unknown "
                              f"field {_describe(key)}{_hint(key, _FIELDS)} (unknown field)")
    method = doc.get("method")
    if method is None:
        raise ConfigError(src, "method", f"expected one of {', '.join(METHODS)} (required); found nothing: "
                          "the field is missing")
    _choice(src, "method", method, METHODS)
    values, steps0 = _method_defaults(method, hw)
    fixed, q = METHODS[method][1], hw.quantization
    for key, value in doc.items():
        if key in fixed and not (isinstance(value, str) and value == fixed[key]):
            raise ConfigError(src, key, f"method '{method}' fixes {key} to {fixed[key]!r}; found {_describe(value)}")
        if key not in ("method", "steps"):
            values[key] = value

    hw_name = hw.name
    values["weight_bits"] = _bits(src, "weight_bits", values["weight_bits"], hw.precision.weight_bits, "weight_bits",
                                  "weight_bits" not in doc)
    values["activation_bits"] = _bits(src, "activation_bits", values["activation_bits"], hw.precision.activation_bits,
                                      "activation_bits", "activation_bits" not in doc)
    for key, hw_value in (("weight_scheme", q.weight_scheme), ("activation_scheme", q.activation_scheme)):
        _choice(src, key, values[key], SCHEMES)
        if values[key] == "asymmetric" and hw_value == "symmetric":
            raise ConfigError(src, key, f"expected symmetric: the datapath of '{hw_name}' has no zero-point terms "
                              f"(quantization.{key}: symmetric); found 'asymmetric'")
    _choice(src, "weight_granularity", values["weight_granularity"], GRANULARITIES)
    if values["weight_granularity"] == "per_channel" and q.weight_granularity == "per_tensor":
        raise ConfigError(src, "weight_granularity", f"expected per_tensor: the datapath of '{hw_name}' has one "
                          "requantization scale per layer (quantization.weight_granularity: per_tensor); found 'per_channel'")
    _choice(src, "weight_range", values["weight_range"], WEIGHT_RANGES)
    _choice(src, "activation_range", values["activation_range"], ACTIVATION_RANGES)
    _choice(src, "last_layer_range", values["last_layer_range"], LAST_LAYER_RANGES)
    n = values["bn_range_n"]
    if not _is_real(n) or not n > 0 or not math.isfinite(n):
        raise ConfigError(src, "bn_range_n", f"expected a positive finite number; found {_describe(n)}")
    values["bn_range_n"] = float(n)
    a = values["power_exponent"]
    if not (isinstance(a, str) and a == "auto") and (not _is_real(a) or not math.isfinite(a) or not 0 < a <= 4):
        raise ConfigError(src, "power_exponent", f"expected auto or a number in (0, 4]; found {_describe(a)}")
    values["power_exponent"] = a if isinstance(a, str) else float(a)
    _choice(src, "power_exponent_scope", values["power_exponent_scope"], EXPONENT_SCOPES)
    if method not in POWER_METHODS:
        for key in ("power_exponent", "power_exponent_scope"):
            if key in doc and doc[key] != Recipe.__dataclass_fields__[key].default:  # checked values: str or float
                raise ConfigError(src, key, f"applies to {' and '.join(POWER_METHODS)} only; method is '{method}'")
    elif q.power_unit == "none":
        raise ConfigError(src, "method", f"expected a datapath with a power unit for '{method}': the datapath of "
                          f"'{hw_name}' has none (quantization.power_unit: none; lut or newton runs PowerQuant)")
    if values["input_range"] is not None:
        r = values["input_range"]
        if type(r).__name__ == "ndarray" and r.ndim == 1:
            r = list(r)  # numpy numbers, checked below
        if (not isinstance(r, (list, tuple)) or len(r) != 2
                or not all(_is_real(v) and math.isfinite(v) for v in r)
                or not r[0] < r[1]):
            raise ConfigError(src, "input_range", f"expected [lo, hi], finite numbers with lo < hi; found {_describe_range(r)}")
        values["input_range"] = (float(r[0]), float(r[1]))

    raw_steps = doc.get("steps")
    raw_steps = {} if raw_steps is None else raw_steps
    if not isinstance(raw_steps, Mapping):
        raise ConfigError(src, "steps", f"expected a mapping of step: value; found {_describe(raw_steps)}")
    step_values = asdict(steps0)
    for key, value in raw_steps.items():
        field = f"steps.{str(key)[:40]}"
        if not isinstance(key, str) or key not in _STEP_FIELDS:
            raise ConfigError(src, field, f"unknown step{_hint(key, _STEP_FIELDS)}; expected one of {', '.join(_STEP_FIELDS)}")
        if key == "bias_correction":
            if value is False or value is None:
                value = "none"
            _choice(src, field, value, BIAS_CORRECTION)
        elif not isinstance(value, bool):
            raise ConfigError(src, field, f"expected true or false; found {_describe(value)}")
        step_values[key] = value
    steps = Steps(**step_values)
    if method == "fp32" and raw_steps:
        raise ConfigError(src, "steps", "method fp32 quantizes nothing; it takes no steps")
    if (steps.equalize or steps.absorb_high_bias) and not steps.fold_batchnorm:
        # absorption reads the folded BN statistics; equalizing before folding would scale BN-less weights
        raise ConfigError(src, "steps.fold_batchnorm", "expected true: equalize and absorb_high_bias act on folded layers")
    return Recipe(method=method, steps=steps, source=src, **values)


__all__ = ["METHODS", "METHOD_HELP", "POWER_METHODS", "Recipe", "Steps", "load_recipe"]
