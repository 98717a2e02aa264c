"""The hardware description: frozen dataclasses that are also the schema.

Each field carries its constraint in ``field(metadata=...)`` and its default in the
dataclass default, so the schema, the defaults and the documentation live in one place.
``validate.build`` walks these fields; nothing else repeats them.

Construct configs with ``hw_from_dict`` / ``load_hw`` (validated), not by calling the
classes directly (unvalidated).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

# the energy names the schema accepts live in config itself (the numbers: accelsim.cost.tables)
from accelsim.config.energy_names import DRAM_TYPES, ENERGY_TABLES

DATAFLOWS = ("weight_stationary", "output_stationary", "input_stationary")
#: the abbreviations every report and SCALE-Sim use, accepted wherever a dataflow is (YAML,
#: --set, replace) and normalised to the full names
DATAFLOW_ABBREVIATIONS = {"ws": "weight_stationary", "os": "output_stationary", "is": "input_stationary"}


class AccumulatorWarning(UserWarning):
    """The accumulator is narrower than weight_bits + activation_bits: sums may overflow."""


_REQUIRED = dataclasses.MISSING


def _spec(kind: str, default: Any = _REQUIRED, *, choices: tuple = (), lo: float | None = None,
          lo_open: bool = False, hi: float | None = None, nullable: bool = False,
          section: type | None = None, aliases: Mapping[str, str] | None = None) -> Any:
    """A dataclass field plus its validation rule (read by ``validate.build``).

    kind: "str" (non-empty), "int", "number", "enum", "section", "overrides".
    lo/hi: inclusive bounds, except lo is exclusive when lo_open.
    aliases (enum): other spellings accepted and normalised to a choice.
    """
    meta = {"kind": kind, "choices": choices, "lo": lo, "lo_open": lo_open, "hi": hi,
            "nullable": nullable, "section": section, "aliases": dict(aliases or {})}
    if default is _REQUIRED:
        return field(metadata=meta)
    if section is not None:
        return field(default_factory=section, metadata=meta)
    return field(default=default, metadata=meta)


def _positive_int(default: Any = _REQUIRED) -> Any:
    return _spec("int", default, lo=1)


def _bits(default: Any = _REQUIRED) -> Any:
    return _spec("int", default, lo=1, hi=32)


def _positive_number(default: Any = _REQUIRED, **kw: Any) -> Any:
    return _spec("number", default, lo=0, lo_open=True, **kw)


@dataclass(frozen=True, kw_only=True)
class PeArray:
    rows: int = _positive_int()
    cols: int = _positive_int()
    dataflow: str = _spec("enum", choices=DATAFLOWS, aliases=DATAFLOW_ABBREVIATIONS)
    weight_preload: str = _spec("enum", "serial", choices=("serial", "double_buffered"))
    # how grouped/depthwise convs share the array: several groups side by side in one fold
    # ("packed") or one group per fold ("one_per_fold")
    group_packing: str = _spec("enum", "packed", choices=("packed", "one_per_fold"))

    @property
    def num_pes(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True, kw_only=True)
class Precision:
    weight_bits: int = _bits()
    activation_bits: int = _bits()
    accumulator_bits: int = _bits(32)
    accumulator_overflow: str = _spec("enum", "wrap", choices=("wrap", "saturate"))


@dataclass(frozen=True, kw_only=True)
class QuantSupport:
    """What the datapath supports (the recipe may ask for less)."""

    weight_scheme: str = _spec("enum", "symmetric", choices=("symmetric", "asymmetric"))
    activation_scheme: str = _spec("enum", "asymmetric", choices=("symmetric", "asymmetric"))
    weight_granularity: str = _spec("enum", "per_channel", choices=("per_tensor", "per_channel"))
    power_unit: str = _spec("enum", "none", choices=("none", "lut", "newton"))  # PowerQuant
    # where asymmetric weights' input-window sums run: an extra array column (a filter of ones:
    # costs array cycles) or an adder tree beside the array (costs adders, no cycles)
    zero_point_unit: str = _spec("enum", "extra_column", choices=("extra_column", "adder_tree"))
    # power units accept one evaluation per cycle (pipelined) or one per latency (iterative)
    power_unit_throughput: str = _spec("enum", "pipelined", choices=("pipelined", "iterative"))
    # PowerQuant's products: how each w*x gets its 1/a power before it is accumulated
    # (product_lut: a table at each PE indexed by |q_w| q_x; decode_lut: tables at the array
    # edges turn each code into a fixed-point |q|^(1/a) and a wider multiplier forms the
    # product; sum_power: the ablation that raises only the accumulated sum to 1/a)
    power_products: str = _spec("enum", "product_lut", choices=("product_lut", "decode_lut", "sum_power"))
    # fixed-point fraction bits: product-LUT outputs, decode-LUT outputs (weights and
    # activations each), and the input of the per-output x^a unit
    power_product_frac_bits: int = _spec("int", 16, lo=1, hi=30)
    power_decode_frac_bits: int = _spec("int", 10, lo=1, hi=24)
    power_output_bits: int = _spec("int", 12, lo=4, hi=30)  # 12: model outputs within 1 LSB of fake-quant (measured)


@dataclass(frozen=True, kw_only=True)
class Memory:
    ifmap_sram_kib: float = _positive_number(64)
    filter_sram_kib: float = _positive_number(64)
    ofmap_sram_kib: float = _positive_number(64)
    # None: partial sums live in the ofmap SRAM (see ``accumulator_kib``)
    accumulator_sram_kib: float | None = _positive_number(None, nullable=True)
    dram_bandwidth_gbps: float = _positive_number(16)
    # "user": DRAM bandwidth is the limit above; "calc": stall-free, report the bandwidth
    # needed (SCALE-Sim's InterfaceBandwidth: CALC)
    interface_bandwidth: str = _spec("enum", "user", choices=("user", "calc"))
    # DRAM energy per bit: "table" uses the energy table's own entry
    dram_type: str = _spec("enum", "table", choices=DRAM_TYPES)
    # how a layer's stream tiling is chosen: the fewest total cycles (stalls included), or the
    # least energy (ties to fewer cycles): with bandwidth to spare, the fastest tiling may
    # re-read more from DRAM than the thriftiest
    tiling_objective: str = _spec("enum", "cycles", choices=("cycles", "energy"))

    @property
    def accumulator_kib(self) -> float:
        """Accumulator storage in KiB: ``accumulator_sram_kib``, else the ofmap SRAM."""
        if self.accumulator_sram_kib is None:
            return self.ofmap_sram_kib
        return self.accumulator_sram_kib


@dataclass(frozen=True, kw_only=True)
class EnergySpec:
    table: str = _spec("enum", "horowitz45", choices=ENERGY_TABLES)
    # sorted ((name, value), ...): a tuple keeps the config hashable and picklable
    overrides: tuple[tuple[str, float], ...] = _spec("overrides", ())

    def __post_init__(self) -> None:
        items = self.overrides.items() if isinstance(self.overrides, Mapping) else self.overrides
        object.__setattr__(self, "overrides", tuple(sorted((str(k), v) for k, v in items)))

    def overrides_dict(self) -> dict[str, float]:
        return dict(self.overrides)


@dataclass(frozen=True, kw_only=True)
class HwConfig:
    name: str = _spec("str")
    clock_mhz: float = _positive_number(1000)
    tech_nm: float = _positive_number(45, hi=1000)
    pe_array: PeArray = _spec("section", section=PeArray)
    precision: Precision = _spec("section", section=Precision)
    quantization: QuantSupport = _spec("section", QuantSupport(), section=QuantSupport)
    memory: Memory = _spec("section", Memory(), section=Memory)
    energy: EnergySpec = _spec("section", EnergySpec(), section=EnergySpec)
    # where it was loaded from; not part of the config's identity (equality, hash)
    source_file: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The YAML-shaped nested dict; ``hw_from_dict(hw.to_dict()) == hw``."""
        return _to_dict(self)

    def get(self, path: str) -> Any:
        """The value at a dotted path, e.g. ``hw.get("pe_array.rows")``."""
        value: Any = self.to_dict()
        for i, key in enumerate(path.split(".")):
            if not isinstance(value, dict) or key not in value:
                from accelsim.errors import ConfigError

                where = ".".join(path.split(".")[: i + 1])
                raise ConfigError(self.name, where, f"expected a field of the hardware config, "
                                  f"found no field {where!r}")
            value = value[key]
        return value

    def replace(self, path: str, value: Any) -> HwConfig:
        """A new, validated config with the field at a dotted path set to ``value``.

        ``hw.replace("pe_array.rows", 32)``; raises ConfigError like a bad YAML file would.
        """
        from accelsim.config.validate import hw_from_dict

        d = self.to_dict()
        *parents, leaf = path.split(".")
        node = d
        for i, key in enumerate(parents):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                from accelsim.errors import ConfigError

                where = ".".join(parents[: i + 1])
                raise ConfigError(self.name, path, f"expected {where!r} to be a section, "
                                  f"found a value")
        node[leaf] = value
        new = hw_from_dict(d, file=f"{self.name} (replace {path})")
        return dataclasses.replace(new, source_file=self.source_file)


def _to_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if "kind" not in f.metadata:  # source_file
            continue
        value = getattr(obj, f.name)
        if f.metadata["kind"] == "section":
            value = _to_dict(value)
        elif f.metadata["kind"] == "overrides":
            value = dict(value)
        out[f.name] = value
    return out
