"""`execute(qgraph, hw, x)`: bit-exact integer execution of a quantized network on the PE grid.

The QGraph is lowered to its integer program (`program.py`), then run step by step on
integer codes. A conv / linear layer runs on one of two paths, which give identical integers
wherever both apply (tested):

- the **array** path: the numba cycle-stepped kernels of `kernels.py` step the layer's raw
  codes through the configured grid (dataflow, size, packing), accumulating at
  `accumulator_bits` with wrap or saturate in the array's order, from the folded bias;
- the **fast** path: one exact BLAS GEMM (integer operands; float32 where no partial sum can
  reach 2^24, else float64, exact below 2^53), used only for output rows that a bound proves cannot overflow in any order: per
  output, |accumulator start| + sum_k |w_k| |x_k| <= 2^(bits-1) - 1. The bound is checked per
  channel over every possible input first (free), then, for channels that fail it, on this
  batch's data (one more GEMM of |W| and |x|). Rows that fail both run on the array.
  Wrap and saturate agree with the exact sum wherever nothing overflows, so the fast path is
  the array's result, not an approximation of it.

After the array: the zero-point unit's correction -z_w * sum_k x_k (asymmetric weights) and,
for output-stationary arrays, the bias, at accumulator width (overflows counted), then
requantization y = z_y + round(acc * multiplier / 2^shift), round half away from zero, and
the clamp. Overflow events count every accumulator add whose exact result left the range
(PE adds, accumulator-buffer adds, bias and zero-point adds).
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
from numba import njit

from ..errors import AccelsimError
from ..graph.run import _as_inputs, _blas_single_thread, _out_hw, _pad, _pool_geometry, _tap, _windows, maxpool_forward, run_node
from ..quant.pipeline import resolve_hw
from ..quant.quantizers import pad_code
from ..quant.rounding import round_half_away, rounding_shift
from .accumulator import accumulate, accumulator_range
from .kernels import _acc, run_grouped_gemm
from .mapping import dataflow_name, groups_per_fold
from .program import (GemmStep, InputStep, IntegerProgram, LutStep, PoolStep, PowerGemmStep, PowerJoinStep, ReluStep,
                      RescaleStep, ShapeStep, lower, power_encode)

PATHS = ("auto", "array", "fast")
DEFAULT_BATCH_SIZE = 128

LAYER_COLUMNS = ["layer", "op", "weight_bits", "activation_bits", "accumulator_bits", "zero_point_unit", "power_products",
                 "outputs", "array_rows", "fast_rows", "overflow_events", "acc_max_abs", "acc_bits_needed"]


@dataclass
class _LayerStats:
    outputs: int = 0
    array_rows: int = 0
    fast_rows: int = 0
    overflow_events: int = 0
    acc_max_abs: int = 0

    def merge(self, other: "_LayerStats") -> None:
        self.outputs += other.outputs
        self.array_rows += other.array_rows
        self.fast_rows += other.fast_rows
        self.overflow_events += other.overflow_events
        self.acc_max_abs = max(self.acc_max_abs, other.acc_max_abs)


@dataclass
class ExecResult:
    """Outputs of an integer run: codes (int32) and dequantized values (float32) per graph
    output; `layers`: per conv/linear layer, the operand widths multiplied, the rows each path
    ran, overflow events, the largest exact accumulator magnitude and the bits it needs."""

    codes: dict[str, np.ndarray] = field(repr=False)
    dequantized: dict[str, np.ndarray] = field(repr=False)
    layers: pd.DataFrame = field(repr=False)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> np.ndarray:
        """The dequantized output of a one-output graph."""
        if len(self.dequantized) != 1:
            raise AccelsimError(f"the graph has {len(self.dequantized)} outputs: use .dequantized[name]")
        return next(iter(self.dequantized.values()))

    @property
    def output_codes(self) -> np.ndarray:
        if len(self.codes) != 1:
            raise AccelsimError(f"the graph has {len(self.codes)} outputs: use .codes[name]")
        return next(iter(self.codes.values()))


def check_runs_on(qgraph, hw) -> None:
    """A ConfigError (exit 2) when `hw`'s datapath cannot run the QGraph's numeric format."""
    from ..quant.recipe import Recipe, load_recipe

    recipe = qgraph.recipe
    if isinstance(recipe, Recipe):
        doc = recipe.to_dict()
        if not recipe.quantized:
            doc.pop("steps")
        load_recipe(doc, hw)  # raises naming the field and the datapath


# ----------------------------------------------------------------------------- layers


EXACT_FLOAT32 = 2**24  # integers and every partial sum below this are exact in float32


def _exact_dtype(step) -> type:
    """float32 where no partial sum of |w| |x| (in any order) can reach 2^24, so float32 BLAS is
    exact too (half the memory traffic of float64); float64 (exact below 2^53) otherwise."""
    x_max = max(abs(int(step.in_grid.qmin)), abs(int(step.in_grid.qmax)))
    w_sum = int(np.abs(step.weight_codes).sum(axis=1).max(initial=0))
    k = step.weight_codes.shape[1]
    return np.float32 if max(w_sum, k) * x_max < EXACT_FLOAT32 else np.float64


def _im2col(x: np.ndarray, step: GemmStep, dtype=np.float64) -> tuple[np.ndarray, tuple[int, ...]]:
    """(G, K, M) float columns of the raw codes, padding with the code of 0.0; and the output's
    leading shape."""
    if step.op == "linear":
        lead = x.shape[:-1]
        return np.ascontiguousarray(x.reshape(-1, x.shape[-1]).T, dtype=dtype)[None], lead
    a = step.attrs
    stride, dilation = tuple(a.get("stride", (1, 1))), tuple(a.get("dilation", (1, 1)))
    padding, groups = tuple(a.get("padding", (0, 0, 0, 0))), int(a.get("groups", 1))
    n, c, h, w = x.shape
    _, cg, kh, kw = step.weight_shape
    ho, wo = _out_hw(h, w, (kh, kw), {"stride": stride, "padding": padding, "dilation": dilation})
    xp = _pad(x.astype(dtype), padding, float(pad_code(step.in_grid)))  # the code of 0.0
    if (kh, kw) == (1, 1) and not any(padding):
        xs = xp if stride == (1, 1) else xp[:, :, :: stride[0], :: stride[1]]
        cols = xs.transpose(1, 0, 2, 3).reshape(groups, cg, n * ho * wo)
    else:
        win = _windows(xp, (kh, kw), stride, dilation, ho, wo)
        cols = win.transpose(1, 4, 5, 0, 2, 3).reshape(groups, cg * kh * kw, n * ho * wo)
    return cols, (n, ho, wo)


@njit(cache=True, nogil=True)
def _requantize_exact(exact, bias, mult, shift, z, lo, hi, out):
    """Fast-path output stage in one pass: acc = exact + bias (no overflow: proven), then
    y = clamp(z + round(acc * mult / 2^shift)), ties away from zero. Returns max |acc|."""
    G, og, M = exact.shape
    largest = 0
    for g in range(G):
        for o in range(og):
            b = bias[g, o]
            m = mult[g, o]
            s = shift[g, o]
            half = (np.int64(1) << (s - 1)) if s > 0 else np.int64(0)
            row = g * og + o
            for i in range(M):
                acc = np.int64(exact[g, o, i]) + b
                if abs(acc) > largest:
                    largest = abs(acc)
                p = acc * m
                r = (abs(p) + half) >> s if s <= 62 else np.int64(0)
                v = z + (r if p >= 0 else -r)
                out[row, i] = min(max(v, lo), hi)
    return largest


def _gemm(step: GemmStep, x: np.ndarray, hw, path: str, stats: _LayerStats) -> np.ndarray:
    p = hw.precision
    bits, overflow = p.accumulator_bits, p.accumulator_overflow
    lo, hi = accumulator_range(bits)
    dtype = _exact_dtype(step)
    cols, lead = _im2col(x, step, dtype)
    G = step.groups
    O, K = step.weight_codes.shape
    og = O // G
    M = cols.shape[2]
    w = step.weight_codes.reshape(G, og, K)
    wf = w.astype(dtype)
    products = np.matmul(wf, cols)  # exact: integer operands, every partial sum below the dtype's limit
    # the bias is loaded into each output's accumulator at accumulator width
    bias, bias_ovf = accumulate(step.accumulator_bias, bits, overflow)
    events = bias_ovf * M
    bias = bias.reshape(G, og, 1)
    extra_column = step.zero_point_unit == "extra_column"

    x_max = max(abs(int(step.in_grid.qmin)), abs(int(step.in_grid.qmax)))
    w_abs = np.abs(w).sum(axis=2)  # (G, og)
    static_ok = np.abs(bias[..., 0]) + w_abs * x_max <= hi
    if extra_column:
        static_ok &= K * x_max <= hi
    if not step.asymmetric_weights and (path == "fast" or (path == "auto" and static_ok.all())):
        if not static_ok.all():
            raise AccelsimError(f"layer '{step.name}': the fast path cannot prove that a {bits}-bit accumulator "
                                "never overflows; use path='auto' or 'array'")
        codes = np.empty((O, M), np.int32)
        largest = _requantize_exact(products, bias[..., 0], step.multiplier.reshape(G, og),
                                    step.shift.reshape(G, og), int(step.out_grid.zero_point),
                                    step.clamp_lo, step.clamp_hi, codes)
        stats.outputs += O * M
        stats.fast_rows += M
        stats.overflow_events += int(events)
        stats.acc_max_abs = max(stats.acc_max_abs, int(largest))
        return _layout(step, codes, lead)
    exact = products.astype(np.int64) + bias
    if path == "array":
        unsafe = np.ones(M, bool)
    elif path == "fast" or static_ok.all():
        unsafe = np.zeros(M, bool)
    else:
        cols_abs = np.abs(cols)
        bound = np.abs(bias) + np.matmul(np.abs(wf), cols_abs)  # (G, og, M): any order stays inside
        unsafe = (bound > hi).any(axis=(0, 1))
        if extra_column:
            unsafe |= (cols_abs.sum(axis=1) > hi).any(axis=0)
    if path == "fast" and not static_ok.all():
        raise AccelsimError(f"layer '{step.name}': the fast path cannot prove that a {bits}-bit accumulator "
                            "never overflows; use path='auto' or 'array'")
    acc = exact
    window_sum = None
    if step.asymmetric_weights:
        window_sum = cols.sum(axis=1).astype(np.int64)  # (G, M): exact (the adder tree's result)
    idx = np.flatnonzero(unsafe)
    if idx.size:
        pe = hw.pe_array
        A = np.ascontiguousarray(cols[:, :, idx].transpose(0, 2, 1)).astype(np.int64)
        B = np.ascontiguousarray(w.transpose(0, 2, 1))
        init = np.broadcast_to(bias.transpose(0, 2, 1), (G, idx.size, og))
        if extra_column:  # a filter of ones: the window sums, computed by the array itself
            B = np.concatenate([B, np.ones((G, K, 1), np.int64)], axis=2)
            init = np.concatenate([init, np.zeros((G, idx.size, 1), np.int64)], axis=2)
        res = run_grouped_gemm(A, B, pe.rows, pe.cols, pe.dataflow, pe.weight_preload, bits, overflow,
                               pe.group_packing, acc_init=np.ascontiguousarray(init))
        acc = exact.copy()
        acc[:, :, idx] = res.out[:, :, :og].transpose(0, 2, 1)
        if extra_column:
            window_sum = window_sum.copy()
            window_sum[:, idx] = res.out[:, :, og]
        events += res.overflow_events
    # the exact sums start from the folded bias itself, not from the value a narrow accumulator loaded
    true_sum = exact + (step.accumulator_bias.reshape(G, og, 1) - bias)
    magnitude = int(np.abs(true_sum).max(initial=0))
    if step.asymmetric_weights:
        z_w = step.weight_zero_point.reshape(G, og, 1)
        exact_sum = np.abs(true_sum - z_w * cols.sum(axis=1).astype(np.int64)[:, None, :])
        magnitude = max(magnitude, int(exact_sum.max(initial=0)))
        acc, zp_ovf = accumulate(acc - z_w * window_sum[:, None, :], bits, overflow)
        events += zp_ovf
    codes = step.out_grid.zero_point + rounding_shift(acc * step.multiplier.reshape(G, og, 1),
                                                      step.shift.reshape(G, og, 1))
    codes = np.clip(codes, step.clamp_lo, step.clamp_hi).astype(np.int32).reshape(O, M)
    stats.outputs += O * M
    stats.array_rows += int(idx.size)
    stats.fast_rows += M - int(idx.size)
    stats.overflow_events += int(events)
    stats.acc_max_abs = max(stats.acc_max_abs, magnitude)
    return _layout(step, codes, lead)


def _layout(step: GemmStep, codes: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    """(O, M) output codes back to the tensor layout: (N, O, Ho, Wo) or (..., O)."""
    if step.op == "linear":
        return codes.T.reshape(*lead, codes.shape[0])
    n, ho, wo = lead
    return codes.reshape(codes.shape[0], n, ho, wo).transpose(1, 0, 2, 3)


def _rescale(step: RescaleStep, xs: list[np.ndarray]) -> np.ndarray:
    z = int(step.out_grid.zero_point)
    parts = [(x.astype(np.int64) - int(g.zero_point)) * m for x, g, m in zip(xs, step.in_grids, step.multipliers)]
    if step.axis is None:  # add
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        out = z + rounding_shift(total, step.shift)
    else:
        out = np.concatenate([z + rounding_shift(part, step.shift) for part in parts], axis=step.axis)
    return np.clip(out, step.clamp_lo, step.clamp_hi).astype(np.int32)


def _window_sums(d: np.ndarray, kind: str, attrs) -> np.ndarray:
    """Integer sums over each pooling window (global: the whole map); padding adds 0."""
    if kind == "global":
        return d.sum(axis=(2, 3), keepdims=True)
    kernel, stride, (t, l, b, r), (ho, wo), (eb, er) = _pool_geometry(d, attrs)
    dp = _pad(d, (t, l, b + eb, r + er), 0)
    sums = np.zeros(d.shape[:2] + (ho, wo), np.int64)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            sums += _tap(dp, i, j, stride, (1, 1), ho, wo)
    return sums


def _pool(step: PoolStep, x: np.ndarray) -> np.ndarray:
    if step.kind == "max":  # codes are exact in float32; the max commutes with dequantization
        return maxpool_forward(x.astype(np.float32), step.attrs).astype(np.int32)
    sums = _window_sums(x.astype(np.int64) - int(step.in_grid.zero_point), step.kind, step.attrs)
    out = int(step.out_grid.zero_point) + rounding_shift(sums * step.multiplier, step.shift)
    return np.clip(out, step.clamp_lo, step.clamp_hi).astype(np.int32)


# ----------------------------------------------------------------------------- PowerQuant


@njit(cache=True, nogil=True)
def _table_gemm(cols, w_abs, w_sign, table, bias, fold_rows, offsets, output_stationary, lo, hi, saturate, out):
    """sum_k sign_k V[|w_k|, x_k] per output, at accumulator width in the array's order:
    ws / is: a psum from 0 per row fold (R rows of the packed K, group g's rows start at
    offsets[g]), each fold's psum added into the buffer that starts from the bias; os: one
    accumulator from 0 over all K, the bias added as it drains. Returns the overflow events."""
    G, K, M = cols.shape
    og = w_abs.shape[1]
    events = 0
    psum = np.zeros(M, np.int64)
    for g in range(G):
        for o in range(og):
            for m in range(M):
                psum[m] = 0
                out[g, o, m] = 0 if output_stationary else bias[g, o]
            for k in range(K):
                if not output_stationary and k > 0 and (offsets[g] + k) % fold_rows == 0:
                    for m in range(M):  # a row fold ends: its psum lands in the buffer
                        v, e = _acc(out[g, o, m] + psum[m], lo, hi, saturate)
                        out[g, o, m] = v
                        events += e
                        psum[m] = 0
                wa = w_abs[g, o, k]
                sg = w_sign[g, o, k]
                for m in range(M):
                    v, e = _acc(psum[m] + sg * table[wa, cols[g, k, m]], lo, hi, saturate)
                    psum[m] = v
                    events += e
            for m in range(M):
                if output_stationary:
                    v, e = _acc(psum[m] + bias[g, o], lo, hi, saturate)
                else:
                    v, e = _acc(out[g, o, m] + psum[m], lo, hi, saturate)
                out[g, o, m] = v
                events += e
    return events


def _power_gemm(step: PowerGemmStep, x: np.ndarray, hw, stats: _LayerStats) -> np.ndarray:
    p, pe = hw.precision, hw.pe_array
    bits, overflow = p.accumulator_bits, p.accumulator_overflow
    lo, hi = accumulator_range(bits)
    cols, lead = _im2col(x, step)
    G = step.groups
    O, K = step.weight_codes.shape
    og, M = O // G, cols.shape[2]
    w = step.weight_codes.reshape(G, og, K)
    if step.products == "sum_power":  # the ablation: 1/a on the accumulated sum of plain products
        total = np.matmul(w.astype(np.float64), cols)
        c = step.channel_scale.reshape(G, og, 1)
        y = np.sign(total) * np.abs(total) ** (1.0 / float(step.in_grid.power)) * c + step.bias_real.reshape(G, og, 1)
        r = np.clip(round_half_away(y / step.unit), step.r_lo, step.r_hi)
        stats.acc_max_abs = max(stats.acc_max_abs, int(np.abs(total).max(initial=0)))
    else:
        codes = np.ascontiguousarray(cols).astype(np.int64)
        bias, bias_ovf = accumulate(step.accumulator_bias, bits, overflow)
        dataflow = dataflow_name(pe.dataflow)
        q = groups_per_fold(dataflow, step.gemm, pe.rows, pe.cols, pe.group_packing)
        offsets = np.array([(g % q) * K for g in range(G)], np.int64)
        acc = np.empty((G, og, M), np.int64)
        events = _table_gemm(codes, np.abs(w), np.sign(w), step.table, bias.reshape(G, og), pe.rows, offsets,
                             dataflow == "output_stationary", lo, hi, overflow == "saturate", acc)
        stats.overflow_events += int(events) + int(bias_ovf) * M
        stats.acc_max_abs = max(stats.acc_max_abs, int(np.abs(acc).max(initial=0)))
        r = rounding_shift(acc * step.multiplier.reshape(G, og, 1), step.shift.reshape(G, og, 1))
        r = np.clip(r, step.r_lo, step.r_hi)
    out = power_encode(r, step.unit, step.out_grid).reshape(O, M)
    stats.outputs += O * M
    stats.array_rows += M
    return _layout(step, out, lead)


def _power_join(step: PowerJoinStep, xs: list[np.ndarray]) -> np.ndarray:
    vals = [d[x.astype(np.int64) - g.qmin] for d, x, g in zip(step.decode, xs, step.in_grids)]
    if step.kind == "add":
        r = vals[0]
        for v in vals[1:]:
            r = r + v
    elif step.kind == "concat":
        r = np.concatenate(vals, axis=step.axis)
    else:  # padding decodes to 0: it adds nothing to the window sums
        sums = _window_sums(vals[0], step.kind, step.attrs)
        counts = step.counts
        r = np.sign(sums) * ((np.abs(sums) + counts // 2) // counts)  # rounding division, ties away from zero
    r = np.clip(r + step.r_offset, step.r_lo, step.r_hi)
    return power_encode(r, step.unit, step.out_grid)


def _run_step(step, values: Mapping[str, np.ndarray], hw, path: str, stats: dict[str, _LayerStats]) -> np.ndarray:
    xs = [values[i] for i in step.inputs]
    if isinstance(step, PowerGemmStep):
        return _power_gemm(step, xs[0], hw, stats[step.name])
    if isinstance(step, PowerJoinStep):
        return _power_join(step, xs)
    if isinstance(step, GemmStep):
        return _gemm(step, xs[0], hw, path, stats[step.name])
    if isinstance(step, RescaleStep):
        return _rescale(step, xs)
    if isinstance(step, PoolStep):
        return _pool(step, xs[0])
    if isinstance(step, LutStep):
        return step.table[xs[0].astype(np.int64) - step.in_grid.qmin].astype(np.int32)
    if isinstance(step, ReluStep):
        return np.maximum(xs[0], pad_code(step.out_grid)).astype(np.int32)
    if isinstance(step, ShapeStep):
        return run_node(step.node, xs) if step.op != "identity" else xs[0]
    raise AssertionError(f"unknown step {type(step).__name__}")


def _run_chunk(prog: IntegerProgram, feeds: Mapping[str, np.ndarray], hw, path: str):
    stats = {s.name: _LayerStats() for s in prog.gemm_steps}
    last_use: dict[str, int] = {}
    for i, step in enumerate(prog.steps):
        for name in step.inputs:
            last_use[name] = i
    keep = set(prog.outputs)
    values: dict[str, np.ndarray] = {}
    for i, step in enumerate(prog.steps):
        if isinstance(step, InputStep):
            values[step.name] = step.out_grid.quantize(feeds[step.name])
        else:
            values[step.name] = _run_step(step, values, hw, path, stats)
        for name in set(step.inputs):
            if last_use.get(name) == i and name not in keep:
                del values[name]
    return {k: values[k] for k in prog.outputs}, stats


# ----------------------------------------------------------------------------- entry point


def execute(qgraph, hw=None, x=None, *, path: str = "auto", batch_size: int | None = None,
            threads: int | None = None, progress: bool = True) -> ExecResult:
    """Run `qgraph` in integers on `hw` (a HwConfig, config name or file; default: the config
    it was quantized for) on input `x` (an array, or {input: array}).

    path: "auto" (the fast path where a bound proves no overflow, the array elsewhere),
    "array" (every layer stepped through the numba array kernels: slow, the ground truth), or
    "fast" (an error where the bound fails). The batch runs in chunks of `batch_size` on
    `threads` threads (default: the CPU count), with a progress bar after a second."""
    if path not in PATHS:
        raise AccelsimError(f"path: expected one of {', '.join(PATHS)}; found {path!r}")
    if x is None:
        raise AccelsimError("execute needs an input batch x")
    hw = resolve_hw(hw, default=qgraph.hw_name)  # the config it was quantized for
    check_runs_on(qgraph, hw)
    prog = lower(qgraph, hw)
    feeds = _as_inputs(qgraph.graph, x)  # the same checks and messages as Graph.run
    n = next(iter(feeds.values())).shape[0]
    chunk = int(batch_size or DEFAULT_BATCH_SIZE)
    if chunk < 1:
        raise AccelsimError(f"batch_size must be >= 1, found {batch_size}")
    threads = max(1, int(threads or os.cpu_count() or 1))
    if threads > 1:
        chunk = min(chunk, max(1, -(-n // threads)))
    parts = [{k: v[s: s + chunk] for k, v in feeds.items()} for s in range(0, n, chunk)]
    from tqdm import tqdm

    bar = tqdm(total=n, unit="img", desc=f"integer execution ({prog.name})", delay=1.0, file=sys.stderr,
               disable=None if progress else True, leave=False)  # None: only on a terminal

    def run(part):
        out = _run_chunk(prog, part, hw, path)
        bar.update(len(next(iter(part.values()))))
        return out

    try:
        if len(parts) == 1 or threads == 1:
            results = [run(p) for p in parts]
        else:
            with _blas_single_thread(), ThreadPoolExecutor(min(threads, len(parts))) as pool:
                results = list(pool.map(run, parts))
    finally:
        bar.close()
    stats = {s.name: _LayerStats() for s in prog.gemm_steps}
    for _, chunk_stats in results:
        for name, st in chunk_stats.items():
            stats[name].merge(st)
    grids = {s.name: s.out_grid for s in prog.steps}
    codes = {k: np.concatenate([r[0][k] for r in results]) for k in prog.outputs}
    deq = {k: grids[k].dequantize(v) for k, v in codes.items()}
    rows = []
    for step in prog.gemm_steps:
        st = stats[step.name]
        rows.append({
            "layer": step.name, "op": step.op, "weight_bits": step.weight_bits, "activation_bits": step.activation_bits,
            "accumulator_bits": prog.accumulator_bits,
            "zero_point_unit": getattr(step, "zero_point_unit", "none"),
            "power_products": getattr(step, "products", "none"),
            "outputs": st.outputs, "array_rows": st.array_rows, "fast_rows": st.fast_rows,
            "overflow_events": st.overflow_events, "acc_max_abs": st.acc_max_abs,
            "acc_bits_needed": st.acc_max_abs.bit_length() + 1,
        })
    layers = pd.DataFrame(rows, columns=LAYER_COLUMNS)
    summary = {
        "model": prog.name, "hw": hw.name, "images": n, "path": path,
        "accumulator_bits": prog.accumulator_bits, "accumulator_overflow": prog.accumulator_overflow,
        "overflow_events": int(layers["overflow_events"].sum()),
        "layers_overflowing": int((layers["overflow_events"] > 0).sum()),
        "acc_bits_needed": int(layers["acc_bits_needed"].max()) if len(layers) else 0,
        "array_rows": int(layers["array_rows"].sum()), "fast_rows": int(layers["fast_rows"].sum()),
    }
    return ExecResult(codes, deq, layers, summary)
