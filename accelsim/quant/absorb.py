"""High-bias absorption (DFQ section 4.1.3, eqs. 12-15; AIMET's HighBiasFold).

For a link A -> B (see patterns.py) where A carries BN statistics (beta, gamma) from folding:
  with a relu on the chain:  c = max(0, beta - 3|gamma|)   (exact for the 99.865% of
                             pre-activations above c, under DFQ's Gaussian assumption)
  with no relu (identity / maxpool only): c = beta  (exact for every input)
  b_A -= c;  bn_beta_A -= c;  b_B += sum over taps of W_B @ c  (depthwise B: per channel).
Links are visited in topological order, so in a conv -> depthwise -> conv triplet the
depthwise layer receives A's correction before giving away its own (as in AIMET).

Approximation (as in AIMET): the correction W_B.sum(taps) @ c assumes every kernel tap of B
sees the shifted activation; where B zero-pads, the padded taps see 0, so outputs on B's
border change by up to |W_B(padded taps)| @ c. FP32 outputs are therefore preserved only in the
interior (and only where the pre-activation exceeds c). 1x1 convs and linear layers are exact.
"""
from __future__ import annotations

import numpy as np

from ..graph.ir import Graph
from .patterns import Link, find_cle_sets, is_depthwise

ABSORB_N_SIGMA = 3.0


def absorb_high_bias(graph: Graph, *, n_sigma: float = ABSORB_N_SIGMA, return_amounts: bool = False):
    """Move the part of each bias that a following relu never clips into the next layer.

    Returns the new graph, or (graph, {A: c}) with `return_amounts`.
    """
    g = graph.copy()
    sets, _ = find_cle_sets(g)
    links: list[Link] = [link for links in sets for link in links]
    amounts: dict[str, np.ndarray] = {}
    for link in links:
        a, b = g[link.a], g[link.b]
        if "bn_beta" not in a.params or a.bias is None:
            continue
        beta = np.asarray(a.params["bn_beta"], np.float64)
        gamma = np.abs(np.asarray(a.params["bn_gamma"], np.float64))
        c = np.maximum(0.0, beta - n_sigma * gamma) if link.has_relu else beta.copy()
        if not np.any(c):
            continue
        amounts[link.a] = c
        a.bias = (a.bias - c).astype(a.bias.dtype)
        a.params["bn_beta"] = beta - c
        w = np.asarray(b.weight, np.float64)
        if is_depthwise(b):
            shift = w.reshape(w.shape[0], -1).sum(axis=1) * c
        else:
            w_sum = w.sum(axis=tuple(range(2, w.ndim))) if w.ndim > 2 else w
            shift = w_sum @ c
        dtype = b.weight.dtype
        old = np.asarray(b.bias, np.float64) if b.bias is not None and b.attrs.get("bias", True) else 0.0
        b.bias = (old + shift).astype(dtype)
        b.attrs = {**b.attrs, "bias": True}
    if return_amounts:
        return g, amounts
    return g
