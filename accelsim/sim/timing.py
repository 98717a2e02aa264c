"""Closed-form fold timing (equal to the cycle-stepped kernels) and SCALE-Sim 3.0's timing.

Native timing, per fold of T streamed operands on an R x C array using ru rows, cu cols:

- ws / is: compute = T + R + cu - 2. Operands enter skewed (fill), the last partial sum
  leaves the bottom edge after passing all R rows (unused rows add zero). Before the fold the
  stationary operand shifts in from the top: R cycles (zeros clear unused rows).
- os: compute = T + ru + cu - 2 (the last MAC, at PE(ru-1, cu-1)); afterwards the outputs
  shift down and out of the array: R cycles.
- serial: every fold pays its R-cycle load (ws/is) or drain (os).
  double_buffered: a shadow register per PE loads the next fold (ws/is) or drains the previous
  one (os) while the array computes, so only the first load (ws/is) or the last drain (os) is
  exposed; a fold shorter than R waits for its shadow.
"""
from __future__ import annotations

import math

from ..errors import AccelsimError
from ..graph.ops import GemmView
from .mapping import LayerMapping, fold_compute_cycles, map_gemm

TIMINGS = ("native", "scalesim")
PRELOADS = ("serial", "double_buffered")


def native_cycles(mapping: LayerMapping, weight_preload: str = "serial") -> int:
    """Exact cycle count of the cycle-stepped kernel for this mapping."""
    if weight_preload not in PRELOADS:
        raise AccelsimError(f"unknown weight_preload '{weight_preload}'; expected {' or '.join(PRELOADS)}")
    df, r, c = mapping.dataflow, mapping.array_rows, mapping.array_cols
    load = r  # stationary load (ws/is) or output drain (os), per fold
    total_compute = 0
    total_overlapped = 0
    for k in mapping.fold_kinds():
        cyc = fold_compute_cycles(df, r, c, k.rows_used, k.cols_used, k.stream_len)
        total_compute += k.count * cyc
        total_overlapped += k.count * max(cyc, load)
    if weight_preload == "serial":
        return total_compute + mapping.folds * load
    # the one fold whose load (ws/is: the last fold's successor's; os: the first fold's
    # predecessor's) is not overlapped: it runs at its own length, not max(len, R)
    edge = mapping.first_fold() if df == "output_stationary" else mapping.last_fold()
    edge_cyc = fold_compute_cycles(df, r, c, *edge)
    return total_overlapped - max(edge_cyc, load) + edge_cyc + load


# ----------------------------------------------------------------------------- SCALE-Sim mode


def scalesim_ofmap_size(size: int, kernel: int, stride: int) -> int:
    """SCALE-Sim's output size, ceil((H - F + S) / S): one more than the usual
    floor((H - F) / S) + 1 when the stride does not divide H - F."""
    return math.ceil((size - kernel + stride) / stride)


def scalesim_gemm(op: str, attrs: dict, input_shapes: tuple, gemm: GemmView) -> GemmView:
    """The GEMM SCALE-Sim would simulate for a layer: a conv's M uses its output-size formula on
    the padded input (SCALE-Sim has no padding), batch folded into M; K, N and groups as ours."""
    if op != "conv2d":
        return gemm
    n, _, h, w = input_shapes[0]
    top, left, bottom, right = attrs["padding"]
    (kh, kw), (sh, sw), (dh, dw) = attrs["kernel"], attrs["stride"], attrs["dilation"]
    oh = scalesim_ofmap_size(h + top + bottom, dh * (kh - 1) + 1, sh)
    ow = scalesim_ofmap_size(w + left + right, dw * (kw - 1) + 1, sw)
    return GemmView(M=n * oh * ow, K=gemm.K, N=gemm.N, groups=gemm.groups)


def scalesim_mapping(gemm: GemmView, rows: int, cols: int, dataflow: str) -> LayerMapping:
    """SCALE-Sim runs each group as its own layer (as its depthwise split does)."""
    return map_gemm(gemm, rows, cols, dataflow, "one_per_fold")


def scalesim_cycles(mapping: LayerMapping) -> int:
    """SCALE-Sim 3.0's stall-free "Total Cycles": per group (layer), folds x per-fold - 1, with
    per-fold os: R + C + T - 2, ws/is: 2R + C + T - 2 (full array dims, partial folds too)."""
    if mapping.groups_per_fold != 1:
        raise AccelsimError("SCALE-Sim timing needs a mapping without group packing (scalesim_mapping)")
    r, c, t = mapping.array_rows, mapping.array_cols, mapping.stream_len
    per_fold = r + c + t - 2 + (0 if mapping.dataflow == "output_stationary" else r)
    folds_per_group = mapping.row_folds * mapping.col_folds
    return mapping.groups * (folds_per_group * per_fold - 1)
