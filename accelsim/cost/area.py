"""Area proxy of a configuration (mm² at its technology node), for area-aware Pareto fronts.

A proxy, not a floorplan: MAC units scale with the product of operand widths (multiplier)
and the accumulator width (adder), PE registers with the bits they hold, SRAMs with their
capacity, LUTs with their entries, Newton units with their adders. Primitives and sources are
in ``tables.AREA``; node scaling in ``tables.TECH_AREA_FACTOR``. Wiring, control and the DMA
engine are not counted.

PowerQuant (``accelsim.cost.energy.power_datapath``): every table (product LUTs, decode
tables, per-output LUTs) is priced as SRAM bits, entries x bits x ``tables.AREA["sram_bit"]``
(a ROM would be smaller; the SRAM cell is the one area per bit the tables carry).
- ``pe_array``: the PE's multiplier at the datapath's operand widths (product_lut: unsigned
  (weight_bits-1) x activation_bits; decode_lut: (Fd+1) x Fd) and its registers at the widths
  they hold (decode_lut: decoded).
- ``power_products``: product_lut: a table of qmax_w qmax_x + 1 entries x F bits and the
  (F+1)-bit pipeline register at each of the R x C PEs; decode_lut: a decode table per row at
  the row edge and per column at the column edge, for the operand entering there (ws, os:
  activations on rows, weights on columns; is: the other way round); sum_power: one Newton
  unit per column lane at accumulator_bits.
- ``power_unit``: the per-output unit per column lane, sized on power_output_bits: lut, a
  2^P-entry x activation_bits table; newton, the units below at P bits.
"""
from __future__ import annotations

import math

from accelsim.cost import tables
from accelsim.cost.energy import KIB_BYTES, newton_iterations, power_datapath, tech_area_factor, width_factor

UM2_PER_MM2 = 1e6


def _prim(name: str, nm: float, *bits: int) -> float:
    e = tables.AREA[name]
    return e.value * width_factor(e, *bits) * tech_area_factor(e.node_nm, nm)


def area_breakdown_mm2(hw) -> dict[str, float]:
    """{component: mm²} of ``hw``; the sum is ``area_mm2(hw)``."""
    p, q, pe, m = hw.precision, hw.quantization, hw.pe_array, hw.memory
    nm = float(hw.tech_nm)
    wb, ab, acc = p.weight_bits, p.activation_bits, p.accumulator_bits
    pd = power_datapath(hw)   # without a power unit: wb x ab multiplier, code-width registers
    rw, ra = pd.weight_reg_bits, pd.act_reg_bits
    # a PE: multiplier, accumulator adder, operand and psum registers (plus a shadow for
    # double-buffered preload of the stationary operand)
    stat_bits = {"weight_stationary": rw, "input_stationary": ra, "output_stationary": acc}[pe.dataflow]
    reg_bits = rw + ra + acc + (stat_bits if pe.weight_preload == "double_buffered" else 0)
    pe_um2 = _prim("mult", nm, *pd.mult_bits) + _prim("add", nm, acc) + _prim("reg", nm, 1) * reg_bits
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
    sram_bit = _prim("sram_bit", nm, 1)
    products = 0.0
    if pd.products == "product_lut":
        per_pe = pd.product_lut_entries * pd.product_lut_bits * sram_bit + _prim("reg", nm, 1) * pd.pipe_reg_bits
        products = pe.rows * pe.cols * per_pe
    elif pd.products == "decode_lut":
        table = {"weight": pd.decode_weight_entries * pd.decode_weight_bits * sram_bit,
                 "activation": pd.decode_act_entries * pd.decode_act_bits * sram_bit}
        row_op, col_op = pd.edge_operands(pe.dataflow)
        products = pe.rows * table[row_op] + pe.cols * table[col_op]
    elif pd.products == "sum_power":
        products = pe.cols * _newton_um2(nm, pd.sum_power_bits, q.power_unit_throughput)
    out["power_products"] = products
    power = 0.0
    if pd.output_unit == "lut":
        power = pe.cols * pd.output_lut_entries * pd.output_lut_bits * sram_bit
    elif pd.output_unit == "newton":
        power = pe.cols * _newton_um2(nm, pd.output_bits, q.power_unit_throughput)
    out["power_unit"] = power
    return {k: v / UM2_PER_MM2 for k, v in out.items()}


def _newton_um2(nm: float, b: int, throughput: str) -> float:
    """One integer Newton unit on a ``b``-bit input. iterative: one divider step adder, an
    adder, a shifter, three registers; pipelined: the divide unrolled (b adders) in every
    iteration stage."""
    if throughput == "pipelined":
        _, worst = newton_iterations(b)
        return worst * (_prim("add", nm, b) * (b + 1) + _prim("shift", nm, b) + 3 * b * _prim("reg", nm, 1))
    return _prim("add", nm, b) * 2 + _prim("shift", nm, b) + 3 * b * _prim("reg", nm, 1)


def area_mm2(hw) -> float:
    return math.fsum(area_breakdown_mm2(hw).values())
