"""Validation of a YAML-shaped dict against the schema declared on the dataclasses in hw.py.

Every error is a ConfigError naming the file, the field path and "expected X, found Y".
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import warnings
from typing import Any

import numpy as np

from accelsim.config.hw import AccumulatorWarning, HwConfig
from accelsim.config.energy_names import OVERRIDE_KEYS
from accelsim.errors import ConfigError

TOP_LEVEL = "(top level)"
#: no integer field is larger (an int64 sum of a few of them still cannot overflow)
INT_LIMIT = 2**31 - 1


def hw_from_dict(d: Any, file: str | None = None) -> HwConfig:
    """Validate a YAML-shaped dict and build the HwConfig (``file`` is for messages)."""
    file = None if file is None else str(file)
    hw = build(HwConfig, d, "", file)
    hw = dataclasses.replace(hw, source_file=file)
    _check_accumulator(hw, file)
    return hw


def build(cls: type, data: Any, path: str, file: str | None) -> Any:
    """Check ``data`` against the fields of dataclass ``cls`` and construct it."""
    fields = [f for f in dataclasses.fields(cls) if "kind" in f.metadata]
    names = [f.name for f in fields]
    where = path or TOP_LEVEL
    if not isinstance(data, dict):
        found = "an empty document" if data is None and not path else describe(data)
        raise ConfigError(file, where, f"expected a mapping with keys {', '.join(names)}; "
                          f"found {found}")
    for key in data:
        if key not in names:
            raise ConfigError(file, _join(path, key), _unknown_key(key, names))
    kwargs = {}
    for f in fields:
        fpath = _join(path, f.name)
        if f.name in data:
            kwargs[f.name] = _check_value(f.metadata, data[f.name], fpath, file)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(file, fpath, f"expected {_expected(f.metadata)} (required); "
                              f"found nothing: the key is missing")
    return cls(**kwargs)


def _check_value(meta: dict, value: Any, path: str, file: str | None) -> Any:
    kind = meta["kind"]
    if value is None and meta["nullable"]:
        return None
    if kind == "section":
        return build(meta["section"], value, path, file)
    if kind == "overrides":
        return _check_overrides(value, path, file)
    if kind == "str":
        if isinstance(value, str) and value.strip():
            return value
    elif kind == "enum":
        if isinstance(value, str) and value in meta["choices"]:
            return value
        if isinstance(value, str) and value in meta.get("aliases", {}):
            return meta["aliases"][value]
        hint = _did_you_mean(value, meta["choices"]) if isinstance(value, str) else ""
        raise ConfigError(file, path, f"expected {_expected(meta)}; found {describe(value)}{hint}")
    elif kind == "int":
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
            if value > INT_LIMIT and meta["hi"] is None:
                raise ConfigError(file, path, f"expected {_expected(meta)} of at most {INT_LIMIT}; "
                                  f"found {describe(value)}")
            if _in_range(meta, value):
                return value
    elif kind == "number":
        if _is_number(value):
            value = int(value) if isinstance(value, numbers.Integral) else float(value)
            if _in_range(meta, value):
                return value
    raise ConfigError(file, path, f"expected {_expected(meta)}; found {describe(value)}")


def _check_overrides(value: Any, path: str, file: str | None) -> tuple:
    if not isinstance(value, dict):
        raise ConfigError(file, path, f"expected a mapping of energy names to numbers (pJ), "
                          f"e.g. {{dram_pj_per_bit: 8.0}}; found {describe(value)}")
    for key, v in value.items():
        if not isinstance(key, str):
            raise ConfigError(file, path, f"expected energy names (strings) as keys; "
                              f"found key {describe(key)}")
        if key not in OVERRIDE_KEYS:
            raise ConfigError(file, f"{path}.{key}", _unknown_key(key, list(OVERRIDE_KEYS)))
        if not (_is_number(v) and v >= 0):
            raise ConfigError(file, f"{path}.{key}", f"expected a non-negative number; "
                              f"found {describe(v)}")
    return tuple(sorted((k, float(v)) for k, v in value.items()))


def _check_accumulator(hw: HwConfig, file: str | None) -> None:
    p = hw.precision
    needed = p.weight_bits + p.activation_bits
    if p.accumulator_bits < needed:
        where = ": ".join(x for x in (file, "precision.accumulator_bits") if x)
        warnings.warn(
            f"{where}: a {p.accumulator_bits}-bit accumulator is narrower than weight_bits + "
            f"activation_bits = {needed}: sums will {p.accumulator_overflow} on overflow",
            AccumulatorWarning, stacklevel=3)


def _is_number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _in_range(meta: dict, value: float) -> bool:
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and (value <= lo if meta["lo_open"] else value < lo):
        return False
    return hi is None or value <= hi


def _expected(meta: dict) -> str:
    """Human text for what a field accepts, generated from its rule."""
    kind, lo, hi = meta["kind"], meta["lo"], meta["hi"]
    if kind == "str":
        return "a non-empty string"
    if kind == "enum":
        aliases = meta.get("aliases") or {}
        short = f" (or {', '.join(aliases)})" if aliases else ""
        return "one of " + ", ".join(meta["choices"]) + short
    if kind == "section":
        keys = [f.name for f in dataclasses.fields(meta["section"]) if "kind" in f.metadata]
        return f"a mapping with keys {', '.join(keys)}"
    noun = "an integer" if kind == "int" else "a number"
    positive = lo == 0 and meta["lo_open"] or kind == "int" and lo == 1
    if positive and hi is None:
        text = f"a positive {noun.split()[-1]}"
    elif lo is not None and hi is not None:
        text = f"{noun} in {lo}..{hi}" if not meta["lo_open"] else f"{noun} in ({lo}, {hi}]"
    else:
        text = noun
    return text + (" or null" if meta["nullable"] else "")


def describe(value: Any) -> str:
    """How a found value is named in messages: its YAML type and (short) value.

    The one describer of accelsim: configs, recipes, graphs, ONNX attributes, datasets and
    command-line values all use it. Always short and on one line (control characters are
    escaped, long strings cut, integers beyond int64 summarised, arrays by shape and dtype)."""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return f"the boolean {str(bool(value)).lower()}"
    if isinstance(value, numbers.Integral):
        value = int(value)
        if value.bit_length() > 63:
            digits = int(value.bit_length() * 0.30103) + 1
            return f"an integer beyond int64 (about {digits} digits)"
        return f"the integer {value}"
    if isinstance(value, numbers.Real):
        return f"the float {float(value)!r}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {text!r}" if value else "an empty string"
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    if isinstance(value, np.ndarray):
        return f"an array of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _unknown_key(key: Any, valid: list[str]) -> str:
    hint = _did_you_mean(key, valid) if isinstance(key, str) else ""
    return f"expected one of the keys {', '.join(valid)}; found unknown key {key!r}{hint}"


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)
