"""FP32 numpy reference interpreter for graphs that carry parameters.

Each op has a kernel `KERNELS[op](node, inputs) -> array`; the array-level functions
(`conv2d_forward`, `linear_forward`, ...) are public so the fake-quant reference can call
them with quantized weights. Everything is float32; convs are im2col + one BLAS GEMM per
group (a batched matmul), depthwise convs accumulate over the kernel taps.

Conv outputs come back as a transposed view (memory order C, N, H, W): the next conv's
im2col then reads channel-major memory, and elementwise ops keep that order for free.
`run_graph` cuts the batch into chunks and runs them on a thread pool with BLAS held to
one thread (threadpoolctl, when installed).
"""
from __future__ import annotations

import contextlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import GraphError
from .ops import OPS, _conv_out_hw

F32 = np.float32
DEFAULT_BATCH_SIZE = 256

# ----------------------------------------------------------------------------- array kernels


def _f32(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=F32)


def _out_hw(h: int, w: int, kernel: tuple[int, int], attrs: Mapping[str, Any], ceil_mode: bool = False) -> tuple[int, int]:
    """Output size by the shape rule in ops.py (one place for it)."""
    full = {"stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1), **attrs}
    return _conv_out_hw(full, h, w, kernel, ceil_mode)


def _pad(x: np.ndarray, padding: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    top, left, bottom, right = padding
    if not any(padding):
        return x
    n, c, h, w = x.shape
    # allocate in (C, N, H, W) memory order, like conv outputs, so im2col reads channel-major
    out = np.full((c, n, h + top + bottom, w + left + right), value, dtype=x.dtype).transpose(1, 0, 2, 3)
    out[:, :, top : top + h, left : left + w] = x
    return out


def _windows(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], ho: int, wo: int) -> np.ndarray:
    """A read-only strided view (N, C, Ho, Wo, kh, kw) of the (padded) input."""
    sn, sc, sh, sw = xp.strides
    n, c = xp.shape[:2]
    return np.lib.stride_tricks.as_strided(
        xp,
        shape=(n, c, ho, wo, kernel[0], kernel[1]),
        strides=(sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1]),
        writeable=False,
    )


def _tap(xp: np.ndarray, i: int, j: int, stride, dilation, ho: int, wo: int) -> np.ndarray:
    """The input pixels kernel tap (i, j) sees at every output position: (N, C, Ho, Wo)."""
    r0, c0 = i * dilation[0], j * dilation[1]
    return xp[:, :, r0 : r0 + (ho - 1) * stride[0] + 1 : stride[0], c0 : c0 + (wo - 1) * stride[1] + 1 : stride[1]]


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, attrs: Mapping[str, Any] | None = None) -> np.ndarray:
    """2-D convolution (cross-correlation, as in torch/ONNX), NCHW, weight (O, C/groups, kh, kw).

    attrs: stride, padding (top, left, bottom, right), dilation, groups (defaults 1 / 0).
    """
    attrs = attrs or {}
    x, weight = _f32(x), _f32(weight)
    stride = tuple(attrs.get("stride", (1, 1)))
    dilation = tuple(attrs.get("dilation", (1, 1)))
    padding = tuple(attrs.get("padding", (0, 0, 0, 0)))
    groups = int(attrs.get("groups", 1))
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if cg * groups != c or o % groups:
        raise GraphError(f"conv2d: weight {weight.shape} with groups={groups} does not fit input {x.shape}")
    ho, wo = _out_hw(h, w, (kh, kw), {"stride": stride, "padding": padding, "dilation": dilation})
    xp = _pad(x, padding)
    if groups == c:  # depthwise (k = O/C filters per channel): multiply-accumulate over the taps
        k = o // c
        wk = weight.reshape(c, k, kh, kw)
        out = np.zeros((c, k, n, ho, wo), dtype=F32).transpose(2, 0, 1, 3, 4)  # memory order (O, N, Ho, Wo)
        tmp = np.empty_like(out)
        for i in range(kh):
            for j in range(kw):
                np.multiply(_tap(xp, i, j, stride, dilation, ho, wo)[:, :, None], wk[:, :, i, j][:, :, None, None], out=tmp)
                out += tmp
        out = out.reshape(n, o, ho, wo)
    else:
        og = o // groups
        if (kh, kw) == (1, 1) and not any(padding):  # pointwise: no im2col, at most a subsampling copy
            xs = xp if stride == (1, 1) else xp[:, :, :: stride[0], :: stride[1]]
            cols = xs.transpose(1, 0, 2, 3).reshape(groups, cg, n * ho * wo)  # a view when memory is CNHW
        else:
            win = _windows(xp, (kh, kw), stride, dilation, ho, wo)  # (N, C, Ho, Wo, kh, kw)
            cols = win.transpose(1, 4, 5, 0, 2, 3).reshape(groups, cg * kh * kw, n * ho * wo)
        out = np.matmul(weight.reshape(groups, og, cg * kh * kw), cols)  # (g, O/g, N*Ho*Wo)
        out = out.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)
    if bias is not None:
        out += _f32(bias)[:, None, None]
    return out


def linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """y = x @ W.T + b on the last axis; W in torch layout (out, in)."""
    x, weight = _f32(x), _f32(weight)
    lead = x.shape[:-1]
    y = x.reshape(-1, x.shape[-1]) @ weight.T
    if bias is not None:
        y += _f32(bias)
    return y.reshape(*lead, weight.shape[0])


def matmul_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(_f32(a), _f32(b))


def _channel(p: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel (axis 1) vector shaped to broadcast against a rank-`ndim` tensor."""
    return _f32(p).reshape((-1,) + (1,) * (ndim - 2))


def batchnorm_forward(x: np.ndarray, gamma, beta, mean, var, eps: float = 1e-5) -> np.ndarray:
    """Inference-mode batch norm over axis 1."""
    x = _f32(x)
    inv = _f32(gamma) / np.sqrt(_f32(var) + F32(eps))
    shift = _f32(beta) - _f32(mean) * inv
    return x * _channel(inv, x.ndim) + _channel(shift, x.ndim)


def layernorm_forward(x: np.ndarray, gamma, beta, eps: float = 1e-5) -> np.ndarray:
    """Layer norm over the last axis."""
    x = _f32(x)
    mu = x.mean(axis=-1, keepdims=True)
    d = x - mu
    var = np.mean(d * d, axis=-1, keepdims=True)
    return d / np.sqrt(var + F32(eps)) * _f32(gamma) + _f32(beta)


def _erf_numpy(x: np.ndarray) -> np.ndarray:
    """erf without scipy: Abramowitz & Stegun 7.1.26, |error| < 1.5e-7, in float64."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


try:  # scipy's erf is exact to float64 rounding
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - exercised only without scipy
    _erf = _erf_numpy


def erf(x: np.ndarray) -> np.ndarray:
    return _erf(x)


def gelu_forward(x: np.ndarray) -> np.ndarray:
    """Exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); erf evaluated in float64."""
    x = _f32(x)
    return (0.5 * x * (1.0 + _erf(x.astype(np.float64) / math.sqrt(2.0)))).astype(F32)


def sigmoid_forward(x: np.ndarray) -> np.ndarray:
    x = _f32(x)
    # exp of -|x| never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(F32)


def silu_forward(x: np.ndarray) -> np.ndarray:
    x = _f32(x)
    return x * sigmoid_forward(x)


def softmax_forward(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = _f32(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def relu_forward(x: np.ndarray) -> np.ndarray:
    return np.maximum(_f32(x), F32(0))


def relu6_forward(x: np.ndarray) -> np.ndarray:
    return np.clip(_f32(x), F32(0), F32(6))


def _pool_geometry(x: np.ndarray, attrs: Mapping[str, Any]):
    kernel = tuple(attrs["kernel"])
    stride = tuple(attrs.get("stride") or kernel)
    padding = tuple(attrs.get("padding", (0, 0, 0, 0)))
    ceil_mode = bool(attrs.get("ceil_mode", False))
    h, w = x.shape[2:]
    ho, wo = _out_hw(h, w, kernel, {"stride": stride, "padding": padding}, ceil_mode)
    top, left, bottom, right = padding
    # ceil mode: the last window may run past the bottom/right padding; pad a little more
    extra_b = max(0, (ho - 1) * stride[0] + kernel[0] - (h + top + bottom))
    extra_r = max(0, (wo - 1) * stride[1] + kernel[1] - (w + left + right))
    return kernel, stride, padding, (ho, wo), (extra_b, extra_r)


def maxpool_forward(x: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    x = _f32(x)
    kernel, stride, (t, l, b, r), (ho, wo), (eb, er) = _pool_geometry(x, attrs)
    xp = _pad(x, (t, l, b + eb, r + er), -np.inf)
    out = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            tap = _tap(xp, i, j, stride, (1, 1), ho, wo)
            out = tap.copy() if out is None else np.maximum(out, tap, out=out)
    return out


def _window_counts(size: int, k: int, s: int, lo: int, hi: int, n_out: int, include_pad: bool) -> np.ndarray:
    """Per output position along one axis: how many window elements count in the divisor."""
    start = np.arange(n_out) * s - lo
    end = start + k
    if include_pad:  # padding counts, the ceil-mode overhang past the padding does not (torch, ONNX)
        return np.minimum(end, size + hi) - start
    return np.minimum(end, size) - np.maximum(start, 0)


def avgpool_forward(x: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    x = _f32(x)
    kernel, stride, (t, l, b, r), (ho, wo), (eb, er) = _pool_geometry(x, attrs)
    xp = _pad(x, (t, l, b + eb, r + er), 0.0)
    out = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            tap = _tap(xp, i, j, stride, (1, 1), ho, wo)
            out = tap.copy() if out is None else np.add(out, tap, out=out)
    include = bool(attrs.get("count_include_pad", True))
    h, w = x.shape[2:]
    ch = _window_counts(h, kernel[0], stride[0], t, b, ho, include)
    cw = _window_counts(w, kernel[1], stride[1], l, r, wo, include)
    out /= (ch[:, None] * cw[None, :]).astype(F32)
    return out


def globalavgpool_forward(x: np.ndarray) -> np.ndarray:
    return _f32(x).mean(axis=(2, 3), keepdims=True, dtype=F32)


# ----------------------------------------------------------------------------- node kernels


def _need(node, key: str) -> np.ndarray:
    arr = node.params.get(key)
    if arr is None:
        raise GraphError(f"layer '{node.name}' ({node.op}) has no '{key}' parameter")
    return arr


def _bias(node) -> np.ndarray | None:
    """The bias parameter when the node carries one (attrs["bias"] only declares it for counts)."""
    return node.params.get("bias")


def _out_shape(node, inputs: list[np.ndarray]) -> tuple[int, ...]:
    return OPS[node.op].infer(node.attrs, [tuple(a.shape) for a in inputs])


Kernel = Callable[[Any, list[np.ndarray]], np.ndarray]

KERNELS: dict[str, Kernel] = {
    "conv2d": lambda n, i: conv2d_forward(i[0], _need(n, "weight"), _bias(n), n.attrs),
    "linear": lambda n, i: linear_forward(i[0], _need(n, "weight"), _bias(n)),
    "matmul": lambda n, i: matmul_forward(i[0], i[1]),
    "batchnorm": lambda n, i: batchnorm_forward(
        i[0], *(_need(n, k) for k in ("gamma", "beta", "mean", "var")), eps=n.attrs["eps"]
    ),
    "layernorm": lambda n, i: layernorm_forward(i[0], _need(n, "gamma"), _need(n, "beta"), n.attrs["eps"]),
    "relu": lambda n, i: relu_forward(i[0]),
    "relu6": lambda n, i: relu6_forward(i[0]),
    "silu": lambda n, i: silu_forward(i[0]),
    "gelu": lambda n, i: gelu_forward(i[0]),
    "sigmoid": lambda n, i: sigmoid_forward(i[0]),
    "softmax": lambda n, i: softmax_forward(i[0], n.attrs["axis"]),
    "identity": lambda n, i: i[0],
    "add": lambda n, i: _add(i),
    "mul": lambda n, i: _f32(i[0]) * _f32(_need(n, "value")),
    "concat": lambda n, i: np.concatenate([_f32(a) for a in i], axis=n.attrs["axis"]),
    "maxpool": lambda n, i: maxpool_forward(i[0], n.attrs),
    "avgpool": lambda n, i: avgpool_forward(i[0], n.attrs),
    "globalavgpool": lambda n, i: globalavgpool_forward(i[0]),
    "flatten": lambda n, i: np.reshape(i[0], _out_shape(n, i)),
    "reshape": lambda n, i: np.reshape(i[0], _out_shape(n, i)),
    "transpose": lambda n, i: np.transpose(i[0], n.attrs["perm"]),
}


def _add(inputs: list[np.ndarray]) -> np.ndarray:
    out = _f32(inputs[0]) + _f32(inputs[1]) if len(inputs) > 1 else _f32(inputs[0]).copy()
    for a in inputs[2:]:
        out += _f32(a)
    return out


def run_node(node, inputs: list[np.ndarray]) -> np.ndarray:
    """One node's FP32 output from its input arrays."""
    return KERNELS[node.op](node, inputs)


# ----------------------------------------------------------------------------- the interpreter

_PARAMS_NEEDED = {
    "conv2d": ("weight",),
    "linear": ("weight",),
    "batchnorm": ("gamma", "beta", "mean", "var"),
    "layernorm": ("gamma", "beta"),
    "mul": ("value",),
}


def _check_params(graph) -> None:
    where = graph.source or graph.name
    for node in graph.nodes:
        needed = _PARAMS_NEEDED.get(node.op, ())
        missing = [k for k in needed if node.params.get(k) is None]
        if missing:
            raise GraphError(
                f"{where}: layer '{node.name}' ({node.op}) has no {', '.join(missing)}: "
                "Graph.run needs a graph with parameters (a shape-only zoo graph cannot run; "
                "load an ONNX model or set the parameters)"
            )


def _as_inputs(graph, x) -> dict[str, np.ndarray]:
    names = graph.inputs
    if isinstance(x, Mapping):
        unknown = set(x) - set(names)
        missing = [n for n in names if n not in x]
        if unknown or missing:
            raise GraphError(
                f"graph '{graph.name}' takes inputs {names}; "
                + (f"missing {missing}" if missing else f"unknown {sorted(unknown)}")
            )
        feeds = {n: _f32(x[n]) for n in names}
    else:
        if len(names) != 1:
            raise GraphError(f"graph '{graph.name}' has inputs {names}: pass a dict {{name: array}}")
        feeds = {names[0]: _f32(x)}
    batch = None
    for name, arr in feeds.items():
        expected = tuple(graph[name].attrs["shape"])
        if arr.ndim != len(expected) + 1 or tuple(arr.shape[1:]) != expected:
            raise GraphError(
                f"graph '{graph.name}': input '{name}' expects shape (N, {', '.join(map(str, expected))}), "
                f"found {tuple(arr.shape)}"
            )
        if batch is not None and arr.shape[0] != batch:
            raise GraphError(f"graph '{graph.name}': inputs have different batch sizes ({batch} and {arr.shape[0]})")
        batch = arr.shape[0]
    if not batch:
        raise GraphError(f"graph '{graph.name}': empty batch")
    return feeds


def _batch_separable(graph) -> bool:
    """True when every tensor keeps the batch on axis 0, so the batch can be cut into chunks."""
    try:
        s1, s2 = graph.shapes(1), graph.shapes(2)
    except GraphError:  # e.g. a reshape to a literal batch: valid only at the batch given
        return False
    return all(s1[k][:1] == (1,) and s2[k][:1] == (2,) for k in s1)


def _run_once(graph, feeds: dict[str, np.ndarray], keep: set[str], keep_all: bool,
              transform: Callable[[str, np.ndarray], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    last_use: dict[str, int] = {}
    for idx, node in enumerate(graph.nodes):
        for inp in node.inputs:
            last_use[inp] = idx
    values: dict[str, np.ndarray] = {}
    for idx, node in enumerate(graph.nodes):
        if node.op == "input":
            values[node.name] = feeds[node.name]
        else:
            values[node.name] = run_node(node, [values[i] for i in node.inputs])
        if transform is not None:
            values[node.name] = transform(node.name, values[node.name])
        if not keep_all:  # free what no later node reads
            for inp in set(node.inputs):
                if last_use.get(inp) == idx and inp not in keep:
                    del values[inp]
    return values if keep_all else {k: values[k] for k in keep}


def _blas_single_thread():
    """Limit BLAS to one thread while chunks run in parallel threads (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def run_graph(graph, x, outputs=None, return_all: bool = False, batch_size: int | None = None,
              threads: int | None = None, transform: Callable[[str, np.ndarray], np.ndarray] | None = None):
    """Run `graph` in FP32 on `x` (an array for a one-input graph, else {input name: array}).

    Returns the output array (or {name: array} when the graph has several outputs or
    `outputs` is a list). `outputs` names the nodes to return; `return_all=True` returns
    every node's output (for calibration). The batch is processed in chunks of at most
    `batch_size` (default 256) to bound memory; chunks run on `threads` threads (default:
    the CPU count) with single-threaded BLAS, which beats BLAS's own threading on the
    small GEMMs of a chunk (numpy releases the GIL in BLAS and in most array loops).
    `transform(name, value)`, if given, replaces each node's output before later nodes read it
    (the fake-quant reference quantizes activations this way).
    """
    _check_params(graph)
    feeds = _as_inputs(graph, x)
    n = next(iter(feeds.values())).shape[0]
    graph.shapes(n)  # validates shapes and parameter shapes, naming the layer
    if outputs is None:
        wanted, single = list(graph.outputs), len(graph.outputs) == 1
    elif isinstance(outputs, str):
        wanted, single = [outputs], True
    else:
        wanted, single = list(outputs), False
    for name in wanted:
        graph[name]  # KeyError with suggestions for a bad name
    chunk = int(batch_size or DEFAULT_BATCH_SIZE)
    if chunk < 1:
        raise GraphError(f"batch_size must be >= 1, found {batch_size}")
    threads = int(threads or os.cpu_count() or 1)
    if threads < 1:
        raise GraphError(f"threads must be >= 1, found {threads}")
    keep = set(wanted)
    if not _batch_separable(graph):
        results = [_run_once(graph, feeds, keep, return_all, transform)]
    else:
        if threads > 1:  # at least one chunk per thread
            chunk = min(chunk, max(1, -(-n // threads)))
        parts = [{k: v[s : s + chunk] for k, v in feeds.items()} for s in range(0, n, chunk)]
        if len(parts) == 1 or threads == 1:
            results = [_run_once(graph, p, keep, return_all, transform) for p in parts]
        else:
            with _blas_single_thread(), ThreadPoolExecutor(min(threads, len(parts))) as pool:
                results = list(pool.map(lambda p: _run_once(graph, p, keep, return_all, transform), parts))
    keys = list(results[0]) if return_all else wanted
    merged = {
        k: np.ascontiguousarray(results[0][k]) if len(results) == 1 else np.concatenate([r[k] for r in results])
        for k in keys
    }
    if return_all:
        return merged
    return merged[wanted[0]] if single else merged
