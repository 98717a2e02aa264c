"""Energy per action: a config's energy table scaled to its bit-widths and technology node,
then its ``energy.overrides``; and actions x energy per action.

Every per-action energy is computed once, here, in ``energy_costs(hw)``; each value carries a
provenance string (table entry, scaling applied, or "override").

PowerQuant's datapath (``quantization.power_unit`` not none; issue 10, the paper's eq. 5 and
appendix F) is described once by ``power_datapath(hw)``: the PE multiplier's operand widths,
the PE register widths, the sizes of its tables, the per-output unit's input width. No
published energy per access exists for any of its tables (reference/energy.md): each read is
priced as a read of its output width from the SRAM curve at the table's own capacity (as the
per-output LUT always was), a small table on the extrapolated first segment of the curve.
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
    return table_kib(2 ** activation_bits, activation_bits)


def table_kib(entries: int, bits: int) -> float:
    """Capacity in KiB of a table of ``entries`` words of ``bits`` bits."""
    return entries * bits / 8 / KIB_BYTES


# --------------------------------------------------------------------------- PowerQuant's datapath


@dataclass(frozen=True)
class PowerDatapath:
    """PowerQuant's datapath of one config: widths and table sizes, in one place.

    products (``quantization.power_products``; "none" without a power unit):
    - product_lut: each PE multiplies |q_w| q_x (unsigned (weight_bits-1) x activation_bits;
      the sign of q_w is applied after, as the accumulator adds or subtracts) and the product
      indexes a table at the PE of qmax_w qmax_x + 1 entries of power_product_frac_bits = F
      bits, round(2^F (p / (qmax_w qmax_x))^(1/a)); one read per MAC; the lookup is one more
      pipeline stage in the PE, behind an (F+1)-bit pipeline register (written and read once
      per MAC). The PE registers hold the codes.
    - decode_lut: tables at the array edges decode every code into round(2^Fd (|q|/qmax)^(1/a)),
      Fd = power_decode_frac_bits: weights 2^weight_bits entries of Fd+1 bits (with the sign),
      activations 2^activation_bits entries of Fd bits; one table per row at the row edge, one
      per column at the column edge, for the operand entering there (``edge_operands``). The
      PE multiplier is (Fd+1) x Fd bits and the PE registers hold the decoded widths.
    - sum_power: the ablation: ordinary weight_bits x activation_bits products, and one power
      evaluation of each accumulated sum (input width accumulator_bits) in the output lanes.
      It runs on a Newton unit whatever ``power_unit`` says: a LUT indexed by an
      accumulator_bits-bit sum (2^32 entries at 32 bits) is not a buildable unit.
    In every realisation the per-output unit raises each output to the power a before it is
    quantized for the next layer: input width power_output_bits = P; lut: one read of a
    2^P-entry x activation_bits table, one table per column lane; newton: the iterations of a
    P-bit input (``newton_iterations``).
    """

    products: str                      # none | product_lut | decode_lut | sum_power
    mult_bits: tuple[int, int]         # the PE multiplier's operand widths (B operand, activation)
    weight_reg_bits: int               # PE register widths of the operands: codes or decoded values
    act_reg_bits: int
    pipe_reg_bits: int                 # product_lut: the register between the lookup and the adder
    product_lut_entries: int           # one table per PE (0: none)
    product_lut_bits: int
    decode_weight_entries: int         # edge tables (0: none)
    decode_weight_bits: int
    decode_act_entries: int
    decode_act_bits: int
    sum_power_bits: int                # sum_power: input width of the evaluation of each sum (0: none)
    output_unit: str                   # the per-output x -> x^a unit: none | lut | newton
    output_bits: int                   # its input width (power_output_bits)
    output_lut_entries: int            # lut: one table per column lane (0: none)
    output_lut_bits: int

    def edge_operands(self, dataflow: str) -> tuple[str, str]:
        """(operand entering at the row edge, at the column edge) for ``dataflow`` (the mapping
        table of accelsim/sim/mapping.py: ws and os put K or M of the ifmap on rows, so the
        ifmap enters the row edge and the filter the column edge; is holds the ifmap on K x M
        and streams the filter along the rows)."""
        if dataflow == "input_stationary":
            return "weight", "activation"
        return "activation", "weight"


def power_datapath(hw) -> PowerDatapath:
    """The PowerQuant datapath of ``hw`` (see ``PowerDatapath``); with ``power_unit: none`` the
    ordinary datapath: weight_bits x activation_bits multiplier, code-width registers, no tables."""
    q, p = hw.quantization, hw.precision
    wb, ab = p.weight_bits, p.activation_bits
    kw = dict(products="none", mult_bits=(wb, ab), weight_reg_bits=wb, act_reg_bits=ab, pipe_reg_bits=0,
              product_lut_entries=0, product_lut_bits=0, decode_weight_entries=0, decode_weight_bits=0,
              decode_act_entries=0, decode_act_bits=0, sum_power_bits=0, output_unit="none",
              output_bits=0, output_lut_entries=0, output_lut_bits=0)
    if q.power_unit == "none":
        return PowerDatapath(**kw)
    P = q.power_output_bits
    kw.update(products=q.power_products, output_unit=q.power_unit, output_bits=P)
    if q.power_unit == "lut":
        kw.update(output_lut_entries=2 ** P, output_lut_bits=ab)
    if q.power_products == "product_lut":
        F = q.power_product_frac_bits
        qmax_w, qmax_x = 2 ** (wb - 1) - 1, 2 ** ab - 1
        kw.update(mult_bits=(wb - 1, ab), pipe_reg_bits=F + 1, product_lut_entries=qmax_w * qmax_x + 1,
                  product_lut_bits=F)
    elif q.power_products == "decode_lut":
        Fd = q.power_decode_frac_bits
        kw.update(mult_bits=(Fd + 1, Fd), weight_reg_bits=Fd + 1, act_reg_bits=Fd,
                  decode_weight_entries=2 ** wb, decode_weight_bits=Fd + 1,
                  decode_act_entries=2 ** ab, decode_act_bits=Fd)
    else:  # sum_power
        kw.update(sum_power_bits=p.accumulator_bits)
    return PowerDatapath(**kw)


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
                         getattr(hw.memory, "dram_type", "table"), power_datapath(hw),
                         hw.energy.overrides)


@lru_cache(maxsize=256)
def _energy_costs(table: str, tech_nm: float, wb: int, ab: int, acc: int, ifmap_kib: float,
                  filter_kib: float, ofmap_kib: float, acc_kib: float, dram_type: str,
                  pd: PowerDatapath, overrides: tuple) -> EnergyCosts:
    p = _Prims(table, tech_nm)
    out: dict[str, tuple[float, str]] = {}
    value, how = p.mult(*pd.mult_bits)   # (wb, ab) but in PowerQuant's product_lut / decode_lut
    if pd.products == "product_lut":
        how += " (PowerQuant product_lut: unsigned |q_w| x q_x, the sign applied after)"
    elif pd.products == "decode_lut":
        how += " (PowerQuant decode_lut: decoded (Fd+1)-bit weight x Fd-bit activation)"
    out["mac_pj"] = (value, how)
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
    out["power_eval_pj"] = _power_eval(p, pd.output_unit, pd.output_bits, table, ab)
    out.update(_power_product_costs(p, pd, table))
    pj = {k: v for k, (v, _) in out.items()}
    src = {k: s for k, (_, s) in out.items()}
    for key, value in overrides:
        pj[key] = float(value)
        src[key] = "override (energy.overrides)"
    return EnergyCosts(table, tech_nm, pj, src)


def _table_read(p: _Prims, what: str, entries: int, bits: int) -> tuple[float, str]:
    """One ``bits``-bit read of a table of ``entries`` words: the SRAM curve at its capacity."""
    kib = table_kib(entries, bits)
    per_bit, how = p.sram_bit(kib)
    return bits * per_bit, (f"derived (no published per-access energy): one {bits}-bit read of {what} "
                            f"({entries} entries x {bits} bits = {kib:.4g} KiB), priced from the SRAM "
                            f"curve at that size; {how}")


def _power_product_costs(p: _Prims, pd: PowerDatapath, table: str) -> dict[str, tuple[float, str]]:
    """Per-action energies of how each product gets its 1/a power (``PowerDatapath.products``)."""
    unused = f"not in this datapath (power_products: {pd.products})"
    out = {k: (0.0, unused) for k in ("product_lut_read_pj", "decode_weight_read_pj", "decode_act_read_pj",
                                      "sum_power_eval_pj")}
    if pd.products == "product_lut":
        out["product_lut_read_pj"] = _table_read(p, "the product LUT at a PE", pd.product_lut_entries,
                                                 pd.product_lut_bits)
    elif pd.products == "decode_lut":
        out["decode_weight_read_pj"] = _table_read(p, "a weight decode table at the array edge",
                                                   pd.decode_weight_entries, pd.decode_weight_bits)
        out["decode_act_read_pj"] = _table_read(p, "an activation decode table at the array edge",
                                                pd.decode_act_entries, pd.decode_act_bits)
    elif pd.products == "sum_power":
        value, how = _power_eval(p, "newton", pd.sum_power_bits, table, pd.sum_power_bits)
        out["sum_power_eval_pj"] = (value, how + " (the ablation's 1/a power of each accumulated sum, "
                                    "on a Newton unit: a LUT indexed by the sum is not buildable)")
    return out


def _power_eval(p: _Prims, power_unit: str, bits: int, table: str, out_bits: int | None = None) -> tuple[float, str]:
    """One evaluation of the PowerQuant power function on a ``bits``-bit input.

    No published energy per evaluation exists (reference/energy.md): derived from parts.
    lut: one read of a 2^b-entry table of ``out_bits``-bit words (default b). newton: mean
    iterations x (divide + add + shift), a b-bit restoring divide priced as b b-bit
    subtractions."""
    if power_unit == "none":
        return 0.0, "no power unit (quantization.power_unit: none)"
    if power_unit == "lut":
        out_bits = bits if out_bits is None else out_bits
        per_bit, how = p.sram_bit(table_kib(2 ** bits, out_bits))
        return out_bits * per_bit, (f"derived: {out_bits}-bit read of a {2 ** bits}-entry LUT "
                                    f"({bits}-bit input); {how}")
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
    # PowerQuant: how each product gets its 1/a power before it is accumulated (the per-output
    # x -> x^a unit stays in "power"; the wider multiplier and registers of decode_lut stay in
    # "mac" and "pe_reg", at the widths ``power_datapath`` gives)
    "power_products": [("product_lut_reads", "product_lut_read_pj", 1.0),
                       ("decode_weight_reads", "decode_weight_read_pj", 1.0),
                       ("decode_act_reads", "decode_act_read_pj", 1.0),
                       ("sum_power_evals", "sum_power_eval_pj", 1.0)],
}
ENERGY_CATEGORIES = tuple(ENERGY_OF_ACTION)


def energy_by_action(counts, costs: EnergyCosts) -> dict[str, float]:
    """{category: pJ} for an object or mapping with the action count fields."""
    get = counts.__getitem__ if isinstance(counts, dict) else lambda k: getattr(counts, k)
    return {cat: sum(get(f) * costs[key] * mul for f, key, mul in terms)
            for cat, terms in ENERGY_OF_ACTION.items()}
