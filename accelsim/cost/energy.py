"""Energy per action: a config's energy table scaled to its bit-widths and technology node,
then its ``energy.overrides``; and actions x energy per action.

Every per-action energy is computed once, here, in ``energy_costs(hw)``; each value carries a
provenance string (table entry, scaling applied, or "override").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from accelsim.cost import tables
from accelsim.cost.tables import Entry, SramCurve

KIB_BYTES = 1024


# --------------------------------------------------------------------------- scaling rules


def _node_factor(factors: dict[float, float], nm: float, outside_exponent: float) -> float:
    """Factor at ``nm``: linear between tabulated nodes, a power law of the ratio outside."""
    nodes = sorted(factors)
    lo, hi = nodes[0], nodes[-1]
    if nm <= lo:
        return factors[lo] * (nm / lo) ** outside_exponent
    if nm >= hi:
        return factors[hi] * (nm / hi) ** outside_exponent
    for a, b in zip(nodes, nodes[1:]):
        if a <= nm <= b:
            t = (nm - a) / (b - a)
            return factors[a] + t * (factors[b] - factors[a])
    raise AssertionError("unreachable")


def tech_energy_factor(from_nm: float | None, to_nm: float) -> float:
    """Multiply an energy measured at ``from_nm`` by this to get it at ``to_nm``.

    ``from_nm`` None (off-chip DRAM) is not scaled."""
    if from_nm is None:
        return 1.0
    f = tables.TECH_ENERGY_FACTOR
    return _node_factor(f, to_nm, 0.5) / _node_factor(f, from_nm, 0.5)


def tech_area_factor(from_nm: float, to_nm: float) -> float:
    f = tables.TECH_AREA_FACTOR
    return _node_factor(f, to_nm, 1.0) / _node_factor(f, from_nm, 1.0)


def width_factor(entry: Entry, *bits: int) -> float:
    """Multiplier: product of operand widths; adder, shifter, comparator, register: width."""
    return math.prod(bits) / math.prod(entry.bits)


def sram_curve_pj_per_bit(curve: SramCurve, kib: float) -> float:
    """pJ per bit at capacity ``kib`` (at the curve's own node), log-log interpolated."""
    pts = curve.anchors
    if kib <= pts[0][0]:
        (x0, y0), (x1, y1) = pts[0], pts[1]
    elif kib >= pts[-1][0]:
        (x0, y0), (x1, y1) = pts[-2], pts[-1]
    else:
        i = next(i for i in range(len(pts) - 1) if pts[i][0] <= kib <= pts[i + 1][0])
        (x0, y0), (x1, y1) = pts[i], pts[i + 1]
    slope = math.log(y1 / y0) / math.log(x1 / x0)
    return y0 * (kib / x0) ** slope


def newton_iterations(bits: int) -> tuple[float, int]:
    """(mean, max) integer Newton iterations for a ``bits``-bit power function: the measured
    8- and 32-bit counts, linear in log2(bits) between and beyond them, at least 1."""
    (b0, (mean0, max0)), (b1, (mean1, max1)) = sorted(tables.NEWTON_ITERATIONS.items())
    t = (math.log2(bits) - math.log2(b0)) / (math.log2(b1) - math.log2(b0))
    mean = max(1.0, mean0 + t * (mean1 - mean0))
    worst = max(1, math.ceil(max0 + t * (max1 - max0) - 1e-9))
    return mean, worst


def lut_kib(activation_bits: int) -> float:
    """A power-function LUT: 2^b entries of b bits (one per b-bit input)."""
    return (2 ** activation_bits) * activation_bits / 8 / KIB_BYTES


# --------------------------------------------------------------------------- resolved costs


@dataclass(frozen=True)
class EnergyCosts:
    """Per-action energies (pJ) of one config, keyed by ``tables.OVERRIDE_KEYS``."""

    table: str
    tech_nm: float
    pj: dict[str, float] = field(hash=False)
    source: dict[str, str] = field(hash=False)

    def __getitem__(self, key: str) -> float:
        return self.pj[key]

    def table_rows(self) -> list[dict]:
        """One row per action: name, pJ, what it is, where the number comes from."""
        return [{"action": k, "pj": self.pj[k], "meaning": tables.OVERRIDE_KEYS[k],
                 "source": self.source[k]} for k in tables.OVERRIDE_KEYS]


class _Prims:
    """The table's primitives at one node, with provenance text."""

    def __init__(self, table: str, tech_nm: float):
        self.t = tables.ENERGY_TABLES[table]
        self.nm = tech_nm

    def _scaled(self, name: str, *bits: int) -> tuple[float, str]:
        e: Entry = self.t[name]  # type: ignore[assignment]
        node = tech_energy_factor(e.node_nm, self.nm)
        value = e.value * width_factor(e, *bits) * node
        how = f"{e.source}; x{width_factor(e, *bits):.4g} for {'x'.join(map(str, bits))} bits"
        if e.node_nm is not None and e.node_nm != self.nm:
            how += f", x{node:.4g} for {e.node_nm:g} -> {self.nm:g} nm ({tables.TECH_SOURCE})"
        return value, how

    def mult(self, a: int, b: int) -> tuple[float, str]:
        return self._scaled("mult", a, b)

    def add(self, bits: int) -> tuple[float, str]:
        return self._scaled("add", bits)

    def shift(self, bits: int) -> tuple[float, str]:
        return self._scaled("shift", bits)

    def compare(self, bits: int) -> tuple[float, str]:
        return self._scaled("compare", bits)

    def reg_bit(self) -> tuple[float, str]:
        return self._scaled("reg", 1)

    def sram_bit(self, kib: float) -> tuple[float, str]:
        c: SramCurve = self.t["sram"]  # type: ignore[assignment]
        node = tech_energy_factor(c.node_nm, self.nm)
        how = f"{c.source}; log-log interpolated at {kib:g} KiB"
        if c.node_nm != self.nm:
            how += f", x{node:.4g} for {c.node_nm:g} -> {self.nm:g} nm"
        return sram_curve_pj_per_bit(c, kib) * node, how

    def dram_bit(self, dram_type: str) -> tuple[float, str]:
        e = self.t["dram"] if dram_type == "table" else tables.DRAM_ENERGY[dram_type]
        return e.value, e.source + " (off-chip: not scaled with tech_nm)"  # type: ignore[union-attr]


def energy_costs(hw) -> EnergyCosts:
    """The per-action energies of config ``hw`` (cached: configs are frozen and hashable)."""
    return _energy_costs(hw.energy.table, float(hw.tech_nm), hw.precision.weight_bits,
                         hw.precision.activation_bits, hw.precision.accumulator_bits,
                         float(hw.memory.ifmap_sram_kib), float(hw.memory.filter_sram_kib),
                         float(hw.memory.ofmap_sram_kib), float(hw.memory.accumulator_kib),
                         getattr(hw.memory, "dram_type", "table"), hw.quantization.power_unit,
                         hw.energy.overrides)


@lru_cache(maxsize=256)
def _energy_costs(table: str, tech_nm: float, wb: int, ab: int, acc: int, ifmap_kib: float,
                  filter_kib: float, ofmap_kib: float, acc_kib: float, dram_type: str,
                  power_unit: str, overrides: tuple) -> EnergyCosts:
    p = _Prims(table, tech_nm)
    out: dict[str, tuple[float, str]] = {}
    out["mac_pj"] = p.mult(wb, ab)
    out["acc_add_pj"] = p.add(acc)
    out["reg_pj_per_bit"] = p.reg_bit()
    out["ifmap_sram_pj_per_bit"] = p.sram_bit(ifmap_kib)
    out["filter_sram_pj_per_bit"] = p.sram_bit(filter_kib)
    out["ofmap_sram_pj_per_bit"] = p.sram_bit(ofmap_kib)
    out["acc_sram_pj_per_bit"] = p.sram_bit(acc_kib)
    out["dram_pj_per_bit"] = p.dram_bit(dram_type)
    # requantization: acc x int32 multiply, rounding add and shift at acc width, output
    # zero-point add and two clamp compares at activation width (one fixed pipeline: symmetric
    # activations feed it a zero-point of 0 at the same cost)
    parts = [p.mult(acc, tables.REQUANT_MULTIPLIER_BITS), p.add(acc), p.shift(acc), p.add(ab),
             p.compare(ab), p.compare(ab)]
    out["requant_pj"] = (sum(v for v, _ in parts),
                         f"derived: {tables.REQUANT_SOURCE}; priced as mult({acc}x"
                         f"{tables.REQUANT_MULTIPLIER_BITS}) + add({acc}) + shift({acc}) + "
                         f"add({ab}) + 2 compare({ab}) from the {table} table")
    out["zp_mult_pj"] = p.mult(wb, acc)
    out["power_eval_pj"] = _power_eval(p, power_unit, ab, table)
    pj = {k: v for k, (v, _) in out.items()}
    src = {k: s for k, (_, s) in out.items()}
    for key, value in overrides:
        pj[key] = float(value)
        src[key] = "override (energy.overrides)"
    return EnergyCosts(table, tech_nm, pj, src)


def _power_eval(p: _Prims, power_unit: str, bits: int, table: str) -> tuple[float, str]:
    """One evaluation of the PowerQuant power function on a ``bits``-bit activation.

    No published energy per evaluation exists (reference/energy.md): derived from parts.
    lut: one read of a 2^b x b-bit table. newton: mean iterations x (divide + add + shift),
    a b-bit restoring divide priced as b b-bit subtractions."""
    if power_unit == "none":
        return 0.0, "no power unit (quantization.power_unit: none)"
    if power_unit == "lut":
        per_bit, how = p.sram_bit(lut_kib(bits))
        return bits * per_bit, f"derived: {bits}-bit read of a {2 ** bits}-entry LUT; {how}"
    mean, _ = newton_iterations(bits)
    add, _ = p.add(bits)
    shift, _ = p.shift(bits)
    value = mean * (bits * add + add + shift)
    return value, (f"derived: {mean:.3g} Newton iterations ({tables.NEWTON_SOURCE}) x (divide as "
                   f"{bits} adds + add + shift at {bits} bits), {table} table")


# --------------------------------------------------------------------------- actions x energy

#: energy category -> [(action count field, per-action energy key, multiplier)]
ENERGY_OF_ACTION: dict[str, list[tuple[str, str, float]]] = {
    "mac": [("macs", "mac_pj", 1.0)],
    "acc_add": [("acc_adds", "acc_add_pj", 1.0)],
    "pe_reg": [("reg_bits", "reg_pj_per_bit", 1.0)],
    "ifmap_sram": [("ifmap_sram_bytes", "ifmap_sram_pj_per_bit", 8.0)],
    "filter_sram": [("filter_sram_bytes", "filter_sram_pj_per_bit", 8.0)],
    "ofmap_sram": [("ofmap_sram_bytes", "ofmap_sram_pj_per_bit", 8.0)],
    "acc_sram": [("acc_sram_bytes", "acc_sram_pj_per_bit", 8.0)],
    "dram": [("dram_bytes", "dram_pj_per_bit", 8.0)],
    "requant": [("requants", "requant_pj", 1.0)],
    "zero_point": [("zp_window_adds", "acc_add_pj", 1.0), ("zp_mults", "zp_mult_pj", 1.0),
                   ("zp_adds", "acc_add_pj", 1.0)],
    "power": [("power_evals", "power_eval_pj", 1.0)],
}
ENERGY_CATEGORIES = tuple(ENERGY_OF_ACTION)


def energy_by_action(counts, costs: EnergyCosts) -> dict[str, float]:
    """{category: pJ} for an object or mapping with the action count fields."""
    get = counts.__getitem__ if isinstance(counts, dict) else lambda k: getattr(counts, k)
    return {cat: sum(get(f) * costs[key] * mul for f, key, mul in terms)
            for cat, terms in ENERGY_OF_ACTION.items()}
