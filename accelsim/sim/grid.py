"""`simulate_grid(graph, hw)`: per-layer mapping and cycles of a workload on the PE grid alone.

The full cost (memory, stalls, energy) is `accelsim.simulate` (accelsim.cost.model), built on this."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..errors import AccelsimError
from .mapping import map_layer
from .timing import TIMINGS, native_cycles, scalesim_cycles, scalesim_gemm, scalesim_mapping

LAYER_COLUMNS = [
    "layer", "op", "M", "K", "N", "groups", "groups_per_fold", "row_folds", "col_folds", "folds",
    "rows_used", "cols_used", "utilisation", "compute_cycles", "total_cycles", "macs",
]


@dataclass
class Result:
    """Plain data: a per-layer table and a summary dict (picklable)."""

    layers: pd.DataFrame
    summary: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        s = self.summary
        return (f"Result({s.get('workload')!r} on {s.get('hw')!r}, {len(self.layers)} layers, "
                f"{s.get('total_cycles'):,} cycles, {s.get('latency_ms'):.4g} ms)")


def simulate_grid(graph, hw, timing: str = "native", batch: int = 1) -> Result:
    """Map every GEMM layer of `graph` onto `hw`'s PE grid and count its cycles.

    timing="native" models the configured microarchitecture (closed form, equal to the
    cycle-stepped kernels); timing="scalesim" reproduces SCALE-Sim 3.0's stall-free per-layer
    "Total Cycles" (its output-size formula, no packing of groups, the -1 per layer).
    The PE grid alone: total_cycles == compute_cycles. `accelsim.simulate` (cost/model.py)
    adds memory stalls and energy on top of this.
    """
    if timing not in TIMINGS:
        raise AccelsimError(f"unknown timing '{timing}'; expected {' or '.join(TIMINGS)}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise AccelsimError(f"batch must be a positive integer, found {batch!r}")
    pe = hw.pe_array
    rows = []
    layers = graph.layers(batch, gemm_only=True)
    if not layers:
        raise AccelsimError(f"{graph.source or graph.name}: no conv, linear or matmul layer to run on the PE grid")
    for info in layers:
        gemm = info.gemm
        if timing == "scalesim":
            gemm = scalesim_gemm(info.op, graph[info.name].attrs, info.input_shapes, gemm)
            mapping = scalesim_mapping(gemm, pe.rows, pe.cols, pe.dataflow)
            cycles = scalesim_cycles(mapping)
        else:
            mapping = map_layer(gemm, pe)
            cycles = native_cycles(mapping, pe.weight_preload)
        rows.append({
            "layer": info.name, "op": info.op, "M": gemm.M, "K": gemm.K, "N": gemm.N,
            "groups": gemm.groups, "groups_per_fold": mapping.groups_per_fold,
            "row_folds": mapping.row_folds, "col_folds": mapping.col_folds, "folds": mapping.folds,
            "rows_used": mapping.rows_used, "cols_used": mapping.cols_used,
            "utilisation": info.macs / (pe.num_pes * cycles), "compute_cycles": cycles,
            "total_cycles": cycles, "macs": info.macs,
        })
    layers = pd.DataFrame(rows, columns=LAYER_COLUMNS)
    total = int(layers["total_cycles"].sum())
    macs = int(layers["macs"].sum())
    latency_ms = total / (hw.clock_mhz * 1e3)
    summary = {
        "workload": graph.name, "hw": hw.name, "timing": timing, "batch": batch,
        "dataflow": pe.dataflow, "array": f"{pe.rows}x{pe.cols}",
        "layers": len(layers), "total_cycles": total, "macs": macs,
        "utilisation": macs / (pe.num_pes * total) if total else 0.0,
        "latency_ms": latency_ms,
        "inferences_per_s": batch / (latency_ms / 1e3) if total else float("inf"),
    }
    return Result(layers, summary)
