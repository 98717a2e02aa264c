"""Area proxy of a configuration (mm² at its technology node), for area-aware Pareto fronts.

A proxy, not a floorplan: MAC units scale with the product of operand widths (multiplier)
and the accumulator width (adder), PE registers with the bits they hold, SRAMs with their
capacity, LUTs with their entries, Newton units with their adders. Primitives and sources are
in ``tables.AREA``; node scaling in ``tables.TECH_AREA_FACTOR``. Wiring, control and the DMA
engine are not counted.
"""
from __future__ import annotations

import math

from accelsim.cost import tables
from accelsim.cost.energy import KIB_BYTES, lut_kib, newton_iterations, tech_area_factor, width_factor

UM2_PER_MM2 = 1e6


def _prim(name: str, nm: float, *bits: int) -> float:
    e = tables.AREA[name]
    return e.value * width_factor(e, *bits) * tech_area_factor(e.node_nm, nm)


def area_breakdown_mm2(hw) -> dict[str, float]:
    """{component: mm²} of ``hw``; the sum is ``area_mm2(hw)``."""
    p, q, pe, m = hw.precision, hw.quantization, hw.pe_array, hw.memory
    nm = float(hw.tech_nm)
    wb, ab, acc = p.weight_bits, p.activation_bits, p.accumulator_bits
    # a PE: multiplier, accumulator adder, operand and psum registers (plus a shadow for
    # double-buffered preload of the stationary operand)
    stat_bits = {"weight_stationary": wb, "input_stationary": ab, "output_stationary": acc}[pe.dataflow]
    reg_bits = wb + ab + acc + (stat_bits if pe.weight_preload == "double_buffered" else 0)
    pe_um2 = _prim("mult", nm, wb, ab) + _prim("add", nm, acc) + _prim("reg", nm, 1) * reg_bits
    out: dict[str, float] = {"pe_array": pe.rows * pe.cols * pe_um2}
    sram_kib = m.ifmap_sram_kib + m.filter_sram_kib + m.ofmap_sram_kib + (m.accumulator_sram_kib or 0)
    out["sram"] = sram_kib * KIB_BYTES * 8 * _prim("sram_bit", nm, 1)
    # requantization lanes, one per column: acc x 32 multiply, two adds, a shift, two compares
    requant = (_prim("mult", nm, acc, tables.REQUANT_MULTIPLIER_BITS) + _prim("add", nm, acc)
               + _prim("shift", nm, acc) + _prim("add", nm, ab) + 2 * _prim("compare", nm, ab))
    pair_bits = tables.REQUANT_MULTIPLIER_BITS + tables.REQUANT_SHIFT_BITS
    out["requant"] = pe.cols * (requant + _prim("reg", nm, 1) * pair_bits)
    zp = 0.0
    if q.weight_scheme == "asymmetric":
        # per lane: z_w x window sum and its add, a z_w register
        zp = pe.cols * (_prim("mult", nm, wb, acc) + _prim("add", nm, acc) + _prim("reg", nm, 1) * wb)
        # extra_column: the window sums run as filter N+1 on the existing PEs (priced in cycles,
        # not area); adder_tree: a tree of R-1 adders per lane sums the window beside the array
        if q.zero_point_unit == "adder_tree":
            zp += (pe.rows - 1) * _prim("add", nm, acc) + _prim("reg", nm, 1) * acc
    out["zero_point"] = zp
    power = 0.0
    if q.power_unit == "lut":
        power = pe.cols * lut_kib(ab) * KIB_BYTES * 8 * _prim("sram_bit", nm, 1)
    elif q.power_unit == "newton":
        _, worst = newton_iterations(ab)
        # iterative: one divider step adder, an adder, a shifter, three registers; pipelined:
        # the divide unrolled (b adders) in every iteration stage
        step = _prim("add", nm, ab) * 2 + _prim("shift", nm, ab) + 3 * ab * _prim("reg", nm, 1)
        if q.power_unit_throughput == "pipelined":
            step = worst * (_prim("add", nm, ab) * (ab + 1) + _prim("shift", nm, ab)
                            + 3 * ab * _prim("reg", nm, 1))
        power = pe.cols * step
    out["power_unit"] = power
    return {k: v / UM2_PER_MM2 for k, v in out.items()}


def area_mm2(hw) -> float:
    return math.fsum(area_breakdown_mm2(hw).values())
