"""Data-free activation statistics: per channel, a normal N(mu, sigma^2) clipped to [lo, hi].

DFQ's assumption: a conv/linear followed by BN outputs N(beta, gamma^2) per channel (the
params ``bn_beta``/``bn_gamma`` that folding leaves on the conv); relu / relu6 clip it.
These statistics give BN-based activation ranges (beta +- n gamma, clipped) and E[x] for
analytic bias correction. They are propagated through the rest of the graph with these
approximations (each a documented guess, not a measurement):
  - graph input: N(0, 1) per channel unless given (DFQ: "taking the input to be zero mean
    and unit variance"; true for standardised data such as accelsim's bundled datasets);
  - conv/linear without BN: mean W.m + b (exact under stationarity) and standard deviation
    |W|.sigma, the largest any correlation between the inputs allows (Cauchy-Schwarz). The
    independent-input value sqrt((W^2).v) underestimated the spread of the bundled models'
    classifier layers by 3-20x (their inputs are strongly correlated), which clipped the logits;
    an overestimated range only costs resolution;
  - add: means and variances add (independent inputs, DFQ 5.1.2), concat: channels stacked;
  - maxpool over k taps: the max of k independent copies of the pre-clip normal, moment-matched
    to a normal, then clipped (clipping commutes with max);
  - avg/global-avg pool: the input's statistics kept: mean, variance (an overestimate: averaging
    shrinks it) and the clip bounds (an average of ReLU outputs is >= 0);
  - flatten/reshape from (N, C, H, W) to (N, C*H*W): each channel's statistics repeated;
  - any other op (softmax, mul, matmul, ...): unknown (None).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..graph.ir import Graph, Node
from .clipped_normal import clipped_normal_mean, clipped_normal_var, norm_cdf, norm_pdf

INF = math.inf


@dataclass(frozen=True, eq=False)
class ChannelStats:
    mu: np.ndarray  # (C,) mean of the normal before clipping
    sigma: np.ndarray  # (C,) its standard deviation
    lo: float = -INF  # clip applied to the normal (relu: 0, relu6: 0..6)
    hi: float = INF

    @property
    def channels(self) -> int:
        return len(self.mu)

    def mean(self) -> np.ndarray:
        return clipped_normal_mean(self.mu, self.sigma, self.lo, self.hi)

    def var(self) -> np.ndarray:
        return clipped_normal_var(self.mu, self.sigma, self.lo, self.hi)

    def clipped(self, lo: float, hi: float) -> "ChannelStats":
        return ChannelStats(self.mu, self.sigma, max(self.lo, lo), min(self.hi, hi))

    def as_normal(self) -> "ChannelStats":
        """Moment-matched unclipped normal (for sums and averages)."""
        if self.lo == -INF and self.hi == INF:
            return self
        return ChannelStats(self.mean(), np.sqrt(self.var()))

    def range(self, n: float) -> tuple[np.ndarray, np.ndarray]:
        """Per channel [mu - n sigma, mu + n sigma], clipped (DFQ's beta +- n gamma)."""
        lo = np.clip(self.mu - n * self.sigma, self.lo, self.hi)
        hi = np.clip(self.mu + n * self.sigma, self.lo, self.hi)
        return lo, hi

    def repeat(self, k: int) -> "ChannelStats":
        return ChannelStats(np.repeat(self.mu, k), np.repeat(self.sigma, k), self.lo, self.hi)


def channels_of(shape: tuple[int, ...]) -> int:
    """Channel count of a batch-first tensor: axis 1 of NCHW, else the last axis."""
    return shape[1] if len(shape) == 4 else shape[-1]


def channel_axis(ndim: int) -> int:
    return 1 if ndim == 4 else ndim - 1


def standard_normal(channels: int) -> ChannelStats:
    return ChannelStats(np.zeros(channels), np.ones(channels))


def _weighted(node: Node, x: ChannelStats) -> ChannelStats | None:
    w = np.asarray(node.weight, np.float64)
    m, sd = x.mean(), np.sqrt(x.var())
    bias = node.bias if node.bias is not None and node.attrs.get("bias", True) else None
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, np.float64)
    if node.op == "linear":
        if w.shape[1] != len(m):
            return None
        return ChannelStats(w @ m + b, np.abs(w) @ sd)
    groups = node.attrs["groups"]
    o, cg = w.shape[:2]
    if cg * groups != len(m):
        return None
    ws = w.sum(axis=(2, 3)).reshape(groups, o // groups, cg)
    wa = np.abs(w).sum(axis=(2, 3)).reshape(groups, o // groups, cg)
    mean = (ws @ m.reshape(groups, cg, 1)).reshape(o) + b
    std = (wa @ sd.reshape(groups, cg, 1)).reshape(o)
    return ChannelStats(mean, std)


@functools.lru_cache(maxsize=None)
def _max_moments(k: int) -> tuple[float, float]:
    """Mean and variance of the max of k independent standard normals (quadrature)."""
    t = np.linspace(-12.0, 12.0, 48_001)
    cdf, pdf = norm_cdf(t), norm_pdf(t)
    density = k * cdf ** (k - 1) * pdf
    mean = float(np.trapezoid(t * density, t))
    return mean, float(np.trapezoid((t - mean) ** 2 * density, t))


def _maxpool(x: ChannelStats, taps: int) -> ChannelStats:
    e, v = _max_moments(taps)
    return ChannelStats(x.mu + e * x.sigma, x.sigma * math.sqrt(v), x.lo, x.hi)


def propagate_stats(graph: Graph, input_stats: dict[str, ChannelStats] | None = None) -> dict[str, ChannelStats | None]:
    """Per-channel statistics of every tensor (None where unknown), in one pass."""
    shapes = graph.shapes(1)
    stats: dict[str, ChannelStats | None] = {}
    input_stats = input_stats or {}
    for node in graph.nodes:
        ins = [stats.get(i) for i in node.inputs]
        out: ChannelStats | None = None
        op = node.op
        if op == "input":
            out = input_stats.get(node.name) or standard_normal(channels_of(shapes[node.name]))
        elif op in ("conv2d", "linear") and node.weight is not None:
            if "bn_beta" in node.params:
                out = ChannelStats(np.asarray(node.params["bn_beta"], np.float64),
                                   np.abs(np.asarray(node.params["bn_gamma"], np.float64)))
            elif ins[0] is not None:
                out = _weighted(node, ins[0])
        elif op == "batchnorm":
            out = ChannelStats(np.asarray(node.params["beta"], np.float64), np.abs(np.asarray(node.params["gamma"], np.float64)))
        elif ins and all(s is not None for s in ins):
            x = ins[0]
            if op == "relu":
                out = x.clipped(0.0, INF)
            elif op == "relu6":
                out = x.clipped(0.0, 6.0)
            elif op == "identity":
                out = x
            elif op == "maxpool":
                kh, kw = node.attrs["kernel"]
                out = _maxpool(x, kh * kw)
            elif op in ("avgpool", "globalavgpool"):
                out = x  # mean kept, variance kept (an overestimate), and the clip: an average of
                # values >= 0 (after a relu) is >= 0
            elif op == "add":
                normals = [s.as_normal() for s in ins]
                if len({s.channels for s in normals}) == 1:
                    out = ChannelStats(sum(s.mu for s in normals), np.sqrt(sum(s.sigma**2 for s in normals)))
            elif op == "concat":
                in_shapes = [shapes[i] for i in node.inputs]
                if node.attrs["axis"] % len(in_shapes[0]) == channel_axis(len(in_shapes[0])):
                    normals = [s.as_normal() for s in ins]
                    out = ChannelStats(np.concatenate([s.mu for s in normals]), np.concatenate([s.sigma for s in normals]))
            elif op in ("flatten", "reshape"):
                src, dst = shapes[node.inputs[0]], shapes[node.name]
                c_out = channels_of(dst)
                if len(src) == 4 and len(dst) == 2 and c_out % x.channels == 0 and c_out == math.prod(src[1:]):
                    out = x.repeat(c_out // x.channels)
                elif channels_of(dst) == x.channels:
                    out = x
        if out is not None and out.channels != channels_of(shapes[node.name]):
            out = None
        stats[node.name] = out
    return stats
