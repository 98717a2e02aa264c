"""Actions of one layer, counted in one place: the array's arithmetic, register, SRAM and DRAM
traffic (from the memory model), requantization, zero-point work, power-function evaluations,
and PowerQuant's product powers.

Energy is these counts times ``accelsim.cost.energy.energy_costs`` (see ``ENERGY_OF_ACTION``).

PowerQuant (``accelsim.cost.energy.power_datapath``, ``accelsim.cost.overheads``):
- product_lut: ``product_lut_reads``, one per MAC the array runs; the lookup's pipeline
  register (F + 1 bits) is written and read once per MAC, in ``reg_bits``.
- decode_lut: one decode-table read per operand element entering the array. The memory model
  counts, per buffer, the bytes fetched from the SRAM into the array (ifmap: the im2col stream
  of M x K elements per group, once per sweep of it: ws and os once per col fold, is once; the
  filter: K x N per group, ws and is once per sweep, os once per row fold; the filter SRAM
  also passes the layer's parameters, ``LayerOverheads.param_bytes``, which are not decoded).
  So ``decode_act_reads`` = ifmap SRAM read bytes x 8 / activation_bits and
  ``decode_weight_reads`` = (filter SRAM read bytes - parameter bytes) x 8 / the B operand's
  code width. The PE registers hold the decoded widths: ``reg_bits`` is the memory model's
  count (at the code widths) with each operand's width replaced by its decoded width, by the
  same rule (linear in the widths: ``sim.memory._reg_bits_per_mac`` per MAC, plus each
  stationary element shifted into its PE once). SRAM and DRAM still hold codes.
- sum_power: ``sum_power_evals``, one per output element.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from accelsim.cost.overheads import LayerOverheads
from accelsim.sim.memory import LayerMemory, _reg_bits_per_mac


@dataclass(frozen=True)
class LayerActions:
    macs: int                 # multiplies in the array (an extra zero-point column included)
    acc_adds: int             # one per MAC, plus one per psum landing in the accumulator buffer
                              # (ws / is: the memory model's count; packed groups skip zero blocks)
    reg_bits: float           # PE register reads and writes
    ifmap_sram_bytes: float   # reads + writes
    filter_sram_bytes: float
    ofmap_sram_bytes: float
    acc_sram_bytes: float
    dram_bytes: float         # reads + writes, all operands
    requants: int
    zp_window_adds: int
    zp_mults: int
    zp_adds: int
    power_evals: int          # the per-output power unit (x -> x^a)
    product_lut_reads: int = 0    # PowerQuant product_lut: one per MAC
    decode_weight_reads: int = 0  # PowerQuant decode_lut: B operand elements entering the array
    decode_act_reads: int = 0     # ... and activation elements
    sum_power_evals: int = 0      # PowerQuant sum_power: one per output

    def as_dict(self) -> dict:
        return asdict(self)


def _stationary_elems(ov: LayerOverheads, dataflow: str) -> tuple[int, int]:
    """(B operand, activation) elements shifted into the PEs once (memory.py's rule)."""
    ex = ov.executed_gemm
    if dataflow == "weight_stationary":
        return ex.K * ex.N * ex.groups, 0
    if dataflow == "input_stationary":
        return 0, ex.M * ex.K * ex.groups
    return 0, 0


def pe_reg_bits(ov: LayerOverheads, lm: LayerMemory, dataflow: str) -> float:
    """PE register bits read and written: the memory model's count at the code widths, with
    decoded widths where the registers hold them (decode_lut) and the product-LUT pipeline
    register (product_lut: F + 1 bits written and read per MAC)."""
    ex = ov.executed_gemm
    db, da = ov.b_reg_bits - ov.b_code_bits, ov.a_reg_bits - ov.a_code_bits
    extra = 0
    if db or da:
        stat_b, stat_a = _stationary_elems(ov, dataflow)
        extra += ex.macs * _reg_bits_per_mac(dataflow, db, da, 0) + stat_b * db + stat_a * da
    extra += ex.macs * 2 * ov.pipe_reg_bits
    return lm.reg_bits + extra


def decode_reads(ov: LayerOverheads, lm: LayerMemory) -> tuple[int, int]:
    """(B operand, activation) decode-table reads of a decode_lut layer: the elements the
    memory model fetches from the filter and ifmap SRAMs into the array; (0, 0) otherwise."""
    if ov.power_products != "decode_lut":
        return 0, 0
    weights = (lm.sram_read_bytes["filter"] - ov.param_bytes) * 8 / ov.b_code_bits
    acts = lm.sram_read_bytes["ifmap"] * 8 / ov.a_code_bits
    return round(weights), round(acts)


def count_actions(ov: LayerOverheads, lm: LayerMemory, dataflow: str) -> LayerActions:
    ex = ov.executed_gemm
    if dataflow == "output_stationary":
        landed = ex.M * ex.N * ex.groups  # the bias joins each output as it drains
    else:  # every psum word written to the accumulator buffer was added to its old value or bias
        landed = round(lm.acc_writes)
    sram = {b: lm.sram_read_bytes[b] + lm.sram_write_bytes[b] for b in lm.sram_read_bytes}
    dw, da = decode_reads(ov, lm)
    return LayerActions(
        macs=ex.macs, acc_adds=ex.macs + landed, reg_bits=pe_reg_bits(ov, lm, dataflow),
        ifmap_sram_bytes=sram["ifmap"], filter_sram_bytes=sram["filter"],
        ofmap_sram_bytes=sram["ofmap"], acc_sram_bytes=sram["acc"], dram_bytes=lm.dram_bytes,
        requants=ov.outputs, zp_window_adds=ov.zp_window_adds, zp_mults=ov.zp_mults,
        zp_adds=ov.zp_adds, power_evals=ov.power_evals, product_lut_reads=ov.product_lut_reads,
        decode_weight_reads=dw, decode_act_reads=da, sum_power_evals=ov.sum_power_evals,
    )
