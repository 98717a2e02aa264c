"""Bias correction (DFQ section 4.2, appendices B and D).

Weight quantization error eps = W_q - W shifts a layer's output mean by E[eps x] = eps E[x];
subtracting that from the bias restores the mean.

- ``analytic``: E[x] from data-free statistics (stats.py: the preceding BN's beta, gamma through
  the clipped normal of its activation). For a conv (appendix B), per output channel o:
  E[y_err]_o = sum over input channels c of its group and kernel taps t of eps[o, c, t] E[x_c] f_t,
  assuming E[x_c] is the same at every pixel. DFQ's eq. 30 has f_t = 1; we take f_t = the
  fraction of output positions at which tap t reads a real pixel rather than zero padding, so
  the correction is the error averaged over the output map (a bias is one number per channel).
  On a 7x7 map with a padded 3x3 kernel a corner tap sees padding at 27% of the positions.
- ``empirical``: run the FP32 graph and the weight-quantized graph on calibration data side
  by side; at each layer, in topological order, subtract the per-channel mean difference of
  the pre-activation outputs from the bias, then carry on with the corrected output, so every
  layer is corrected after all the layers feeding it (appendix D). Activations stay in float
  (appendix D runs on a network with quantized weights only).
"""
from __future__ import annotations

import numpy as np

from ..errors import AccelsimError
from ..graph.ir import Graph, Node
from ..graph.run import run_node
from .stats import ChannelStats, channel_axis, propagate_stats


def tap_coverage(attrs: dict, in_hw: tuple[int, int], kernel: tuple[int, int]) -> np.ndarray:
    """(kh, kw): the fraction of output positions at which each kernel tap reads an input pixel
    (not zero padding)."""
    top, left, bottom, right = attrs["padding"]
    stride, dilation = attrs["stride"], attrs["dilation"]
    fractions = []
    for axis, (size, k, pad_lo, pad_hi) in enumerate(((in_hw[0], kernel[0], top, bottom), (in_hw[1], kernel[1], left, right))):
        n_out = (size + pad_lo + pad_hi - dilation[axis] * (k - 1) - 1) // stride[axis] + 1
        pos = np.arange(n_out)[:, None] * stride[axis] - pad_lo + np.arange(k)[None, :] * dilation[axis]
        fractions.append(((pos >= 0) & (pos < size)).mean(axis=0))
    return np.outer(fractions[0], fractions[1])


def expected_output_error(node: Node, eps: np.ndarray, x_mean: np.ndarray,
                          in_hw: tuple[int, int] | None = None) -> np.ndarray:
    """eps * E[x] per output channel (eps: weight error of the layer, x_mean: E[x] per input
    channel); for a conv with `in_hw` given, averaged over the output map (padding-aware)."""
    eps = np.asarray(eps, np.float64)
    if node.op == "linear":
        return eps @ x_mean
    if in_hw is not None:
        eps = eps * tap_coverage(node.attrs, in_hw, eps.shape[2:])
    groups = node.attrs["groups"]
    o, cg = eps.shape[:2]
    e = eps.sum(axis=(2, 3)).reshape(groups, o // groups, cg)
    return (e @ x_mean.reshape(groups, cg, 1)).reshape(o)


def _set_bias(node: Node, delta: np.ndarray) -> None:
    dtype = node.weight.dtype
    old = np.asarray(node.bias, np.float64) if node.bias is not None and node.attrs.get("bias", True) else 0.0
    node.bias = (old - delta).astype(dtype)
    node.attrs = {**node.attrs, "bias": True}


def correct_bias(graph: Graph, quantized_weights: dict[str, np.ndarray], *, mode: str = "analytic",
                 calibration: np.ndarray | None = None, input_stats: dict[str, ChannelStats] | None = None,
                 return_amounts: bool = False):
    """New graph whose layers in `quantized_weights` (name -> W_q, dequantized floats) have
    bias-corrected biases (the float weights stay; the caller quantizes them).

    Returns the graph, or (graph, {layer: subtracted amount}) with `return_amounts`.
    Layers whose input statistics are unknown (analytic mode) are left as they are.
    """
    g = graph.copy()
    amounts: dict[str, np.ndarray] = {}
    if mode == "analytic":
        stats = propagate_stats(g, input_stats)
        shapes = g.shapes(1)
        for node in g.nodes:
            if node.name not in quantized_weights:
                continue
            x = stats.get(node.inputs[0])
            if x is None:
                continue
            eps = np.asarray(quantized_weights[node.name], np.float64) - np.asarray(node.weight, np.float64)
            in_shape = shapes[node.inputs[0]]
            in_hw = tuple(in_shape[2:]) if node.op == "conv2d" else None
            delta = expected_output_error(node, eps, x.mean(), in_hw)
            _set_bias(node, delta)
            amounts[node.name] = delta
    elif mode == "empirical":
        if calibration is None:
            raise AccelsimError("empirical bias correction needs calibration data")
        amounts = _empirical(g, quantized_weights, calibration)
    elif mode != "none":
        raise AccelsimError(f"unknown bias correction mode '{mode}'; expected analytic, empirical or none")
    return (g, amounts) if return_amounts else g


def _channel_mean(a: np.ndarray) -> np.ndarray:
    axis = channel_axis(a.ndim)
    return np.asarray(a, np.float64).mean(axis=tuple(i for i in range(a.ndim) if i != axis))


def _empirical(g: Graph, quantized_weights: dict[str, np.ndarray], x) -> dict[str, np.ndarray]:
    names = g.inputs
    feeds = x if isinstance(x, dict) else {names[0]: x}
    last_use = {}
    for idx, node in enumerate(g.nodes):
        for inp in node.inputs:
            last_use[inp] = idx
    fp: dict[str, np.ndarray] = {}
    qv: dict[str, np.ndarray] = {}
    amounts: dict[str, np.ndarray] = {}
    for idx, node in enumerate(g.nodes):
        if node.op == "input":
            fp[node.name] = qv[node.name] = np.asarray(feeds[node.name], np.float32)
            continue
        fp[node.name] = run_node(node, [fp[i] for i in node.inputs])
        if node.name in quantized_weights:
            float_w = node.weight
            node.weight = np.asarray(quantized_weights[node.name], float_w.dtype)
            y = run_node(node, [qv[i] for i in node.inputs])
            node.weight = float_w
            delta = _channel_mean(y) - _channel_mean(fp[node.name])
            shape = [1] * y.ndim
            shape[channel_axis(y.ndim)] = -1
            y = y - delta.astype(np.float32).reshape(shape)
            _set_bias(node, delta)
            amounts[node.name] = delta
            qv[node.name] = y
        else:
            qv[node.name] = run_node(node, [qv[i] for i in node.inputs])
        for inp in set(node.inputs):
            if last_use.get(inp) == idx:
                fp.pop(inp, None)
                qv.pop(inp, None)
    return amounts
