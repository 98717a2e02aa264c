"""Reading SCALE-Sim (2.x/3.0) ``.cfg`` files into an HwConfig.

Only the keys that describe the array and its memories are read; [layout], [sparsity] and
the SRAM offsets are SCALE-Sim features accelsim does not model, and are ignored.
Errors name the .cfg section and key (``architecture_presets.ArrayHeight``).
"""
from __future__ import annotations

import configparser
from typing import Any, Callable

from accelsim.config.hw import DATAFLOW_ABBREVIATIONS, HwConfig
from accelsim.config.validate import describe, hw_from_dict
from accelsim.errors import ConfigError

# SCALE-Sim counts cycles and has no clock. accelsim needs one to turn words/cycle into
# GB/s and cycles into seconds: 1000 MHz, so 1 word/cycle = 1 GB/s with 1-byte words.
SCALESIM_CLOCK_MHZ = 1000
SCALESIM_WORD_BYTES = 1  # SCALE-Sim's SRAM sizes and bandwidths count 1-byte words

_DATAFLOWS = DATAFLOW_ABBREVIATIONS  # SCALE-Sim writes the abbreviations
_INTERFACES = {"calc": "calc", "user": "user"}

# What SCALE-Sim does not say, stated once: int8 operands, 32-bit accumulators, symmetric
# per-tensor quantization, no power unit, serial weight preload (SCALE-Sim's "ws" loads a
# weight fold before streaming), technology and energy table at accelsim's defaults.
_FIXED: dict[str, Any] = {
    "clock_mhz": SCALESIM_CLOCK_MHZ,
    "pe_array": {"weight_preload": "serial"},
    "precision": {"weight_bits": 8, "activation_bits": 8, "accumulator_bits": 32},
    "quantization": {"weight_scheme": "symmetric", "activation_scheme": "symmetric",
                     "weight_granularity": "per_tensor", "power_unit": "none"},
}


def _bandwidth_gbps(value: str) -> float:
    # words/cycle × bytes/word × cycles/s = bytes/s; / 1e9 → GB/s
    return float(value) * SCALESIM_WORD_BYTES * SCALESIM_CLOCK_MHZ * 1e6 / 1e9


def _choice(table: dict[str, str]) -> Callable[[str], str]:
    return lambda value: table[value.lower()]


_A = "architecture_presets"
# (section, key, accelsim field path, parser, what the parser accepts)
KEYS: list[tuple[str, str, str, Callable[[str], Any], str]] = [
    ("general", "run_name", "name", str, "a name"),
    (_A, "ArrayHeight", "pe_array.rows", int, "an integer"),
    (_A, "ArrayWidth", "pe_array.cols", int, "an integer"),
    (_A, "Dataflow", "pe_array.dataflow", _choice(_DATAFLOWS), "one of os, ws, is"),
    (_A, "IfmapSramSzkB", "memory.ifmap_sram_kib", int, "an integer"),  # SCALE-Sim kB = KiB
    (_A, "FilterSramSzkB", "memory.filter_sram_kib", int, "an integer"),
    (_A, "OfmapSramSzkB", "memory.ofmap_sram_kib", int, "an integer"),
    (_A, "Bandwidth", "memory.dram_bandwidth_gbps", _bandwidth_gbps, "a number of words/cycle"),
    ("run_presets", "InterfaceBandwidth", "memory.interface_bandwidth", _choice(_INTERFACES),
     "one of CALC, USER"),
]


def hw_from_scalesim_cfg(text: str, file: str | None = None) -> HwConfig:
    """An HwConfig from the text of a SCALE-Sim .cfg file."""
    parser = configparser.ConfigParser(interpolation=None)  # keys case-insensitive, as SCALE-Sim
    try:
        parser.read_string(text, source=file or "<cfg>")
    except configparser.Error as e:
        raise ConfigError(file, *_describe_cfg_error(e)) from None
    d: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in _FIXED.items()}
    for section, key, path, parse, expected in KEYS:
        cfg_field = f"{section}.{key}"
        if not parser.has_section(section):
            raise ConfigError(file, cfg_field, f"expected a [{section}] section; found none")
        raw = parser.get(section, key, fallback=None)
        if raw is None or not raw.strip():
            raise ConfigError(file, cfg_field, f"expected {expected} (required); "
                              f"found nothing: the key is missing")
        try:
            value = parse(raw.strip())
        except (ValueError, KeyError):
            raise ConfigError(file, cfg_field, f"expected {expected}; "
                              f"found {describe(raw.strip())}") from None
        _set(d, path, value)
    try:
        return hw_from_dict(d, file=file)
    except ConfigError as e:  # a range error: name the .cfg key, not the accelsim field
        cfg_field = next((f"{s}.{k}" for s, k, p, _, _ in KEYS if p == e.field), e.field)
        raise ConfigError(file, cfg_field, f"{e.detail} (accelsim field {e.field})") from None


def _describe_cfg_error(e: configparser.Error) -> tuple[str | None, str]:
    """(where, message) for a configparser error, on one line."""
    expected = "expected a SCALE-Sim .cfg (INI) file; found"
    if isinstance(e, configparser.MissingSectionHeaderError):
        line = e.line.strip()
        return f"line {e.lineno}", f"{expected} a line before any [section] header: {line!r}"
    if isinstance(e, configparser.DuplicateOptionError):
        return f"line {e.lineno}", f"{expected} a duplicate key {e.option!r} in [{e.section}]"
    if isinstance(e, configparser.DuplicateSectionError):
        return f"line {e.lineno}", f"{expected} a duplicate section [{e.section}]"
    if isinstance(e, configparser.ParsingError) and e.errors:
        lineno, line = e.errors[0]
        return f"line {lineno}", f"{expected} a line that is not 'key = value': {line!r}"
    return None, f"{expected} {' '.join(str(e).split())}"


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        d = d.setdefault(key, {})
    d[leaf] = value
