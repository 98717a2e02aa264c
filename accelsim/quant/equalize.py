"""Cross-layer equalization (DFQ section 4.1, eqs. 8-11; AIMET's CrossLayerScaling).

Ranges are per channel max |W| (symmetric ranges, DFQ eq. 9): r_A[i] over A's output
channel i, r_B[i] over B's input channel i (for a depthwise B, its channel i).
Pair A -> B:   s = sqrt(r_A / r_B);  W_A[i] /= s_i, b_A[i] /= s_i, W_B[:, i] *= s_i.
Triplet A -> D (depthwise) -> C:  cube = (r_A r_D r_C)^(1/3), s1 = r_A / cube, s2 = cube / r_C;
  W_A[i] /= s1, b_A /= s1, W_D[i] *= s1 / s2, b_D /= s2, W_C[:, i] *= s2.
After one step the ranges of a set are equal; a layer that is B of one set and A of the next
is disturbed by the next set, so passes repeat until every scale of a pass is within `tol` of 1.
A channel whose range is 0 in either layer keeps s = 1. The BN statistics kept on a conv
(``bn_beta``, ``bn_gamma``) are divided by the same s as its output channels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..graph.ir import Graph, Node
from .fold import BN_STAT_KEYS
from .patterns import Link, find_cle_sets, is_depthwise

DEFAULT_MAX_ITER = 100
DEFAULT_TOL = 1e-6


@dataclass
class EqualizationInfo:
    """What equalization did: the sets, cumulative scales per link and the passes it took."""

    sets: list[tuple[Link, ...]]
    skipped: list[tuple[str, str]]
    iterations: int
    converged: bool
    scales: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (A, B) -> s, W_B[:, i] *= s_i

    def scale(self, a: str, b: str) -> np.ndarray:
        return self.scales[(a, b)]


def _out_range(node: Node) -> np.ndarray:
    w = np.abs(np.asarray(node.weight, np.float64))
    return w.reshape(w.shape[0], -1).max(axis=1)


def _in_range(node: Node) -> np.ndarray:
    w = np.abs(np.asarray(node.weight, np.float64))
    if is_depthwise(node):
        return w.reshape(w.shape[0], -1).max(axis=1)
    return np.moveaxis(w, 1, 0).reshape(w.shape[1], -1).max(axis=1)


def _scale_out(node: Node, inv: np.ndarray) -> None:
    """Multiply output channel i of `node` (weights, bias, BN stats) by inv[i]."""
    w = node.weight
    node.weight = (w * inv.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
    if node.bias is not None:
        node.bias = (node.bias * inv).astype(node.bias.dtype)
    for key in BN_STAT_KEYS:
        if key in node.params:
            node.params[key] = node.params[key] * inv


def _scale_in(node: Node, s: np.ndarray) -> None:
    """Multiply input channel i of `node` by s[i] (for a depthwise conv: its channel i's weights)."""
    w = node.weight
    if is_depthwise(node):
        node.weight = (w * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
    else:
        shape = [1] * w.ndim
        shape[1] = -1
        node.weight = (w * s.reshape(shape)).astype(w.dtype)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    ok = (num > 0) & (den > 0)
    return np.where(ok, num / np.where(ok, den, 1.0), 1.0)


def _equalize_set(g: Graph, links: tuple[Link, ...]) -> list[np.ndarray]:
    if len(links) == 1:
        a, b = g[links[0].a], g[links[0].b]
        s = np.sqrt(_safe_ratio(_out_range(a), _in_range(b)))
        _scale_out(a, 1.0 / s)
        _scale_in(b, s)
        return [s]
    a, d, c = g[links[0].a], g[links[0].b], g[links[1].b]
    r0, r1, r2 = _out_range(a), _out_range(d), _in_range(c)
    ok = (r0 > 0) & (r1 > 0) & (r2 > 0)
    cube = np.cbrt(np.where(ok, r0 * r1 * r2, 1.0))
    s1 = np.where(ok, r0 / cube, 1.0)
    s2 = np.where(ok, cube / np.where(ok, r2, 1.0), 1.0)
    _scale_out(a, 1.0 / s1)
    _scale_in(d, s1)
    _scale_out(d, 1.0 / s2)
    _scale_in(c, s2)
    return [s1, s2]


def equalize(graph: Graph, *, max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL,
             return_info: bool = False):
    """Cross-layer equalization of every eligible pair and conv->depthwise->conv triplet.

    Returns the new graph, or (graph, EqualizationInfo) with `return_info`. FP32 outputs are
    unchanged (up to float rounding): relu and maxpool commute with positive scaling.
    """
    g = graph.copy()
    sets, skipped = find_cle_sets(g)
    scales = {(link.a, link.b): np.ones(len(_out_range(g[link.a]))) for links in sets for link in links}
    iterations, converged = 0, not sets
    while sets and iterations < max_iter:
        iterations += 1
        worst = 0.0
        for links in sets:
            for link, s in zip(links, _equalize_set(g, links)):
                scales[(link.a, link.b)] *= s
                worst = max(worst, float(np.max(np.abs(s - 1.0))))
        if worst <= tol:
            converged = True
            break
    if return_info:
        return g, EqualizationInfo(sets, skipped, iterations, converged, scales)
    return g
