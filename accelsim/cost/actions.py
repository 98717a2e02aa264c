"""Actions of one layer, counted in one place: the array's arithmetic, register, SRAM and DRAM
traffic (from the memory model), requantization, zero-point work, power-function evaluations.

Energy is these counts times ``accelsim.cost.energy.energy_costs`` (see ``ENERGY_OF_ACTION``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from accelsim.cost.overheads import LayerOverheads
from accelsim.sim.memory import LayerMemory


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
    power_evals: int

    def as_dict(self) -> dict:
        return asdict(self)


def count_actions(ov: LayerOverheads, lm: LayerMemory, dataflow: str) -> LayerActions:
    ex = ov.executed_gemm
    if dataflow == "output_stationary":
        landed = ex.M * ex.N * ex.groups  # the bias joins each output as it drains
    else:  # every psum word written to the accumulator buffer was added to its old value or bias
        landed = round(lm.acc_writes)
    sram = {b: lm.sram_read_bytes[b] + lm.sram_write_bytes[b] for b in lm.sram_read_bytes}
    return LayerActions(
        macs=ex.macs, acc_adds=ex.macs + landed, reg_bits=lm.reg_bits,
        ifmap_sram_bytes=sram["ifmap"], filter_sram_bytes=sram["filter"],
        ofmap_sram_bytes=sram["ofmap"], acc_sram_bytes=sram["acc"], dram_bytes=lm.dram_bytes,
        requants=ov.outputs, zp_window_adds=ov.zp_window_adds, zp_mults=ov.zp_mults,
        zp_adds=ov.zp_adds, power_evals=ov.power_evals,
    )
