"""Batch-norm folding and ReLU6 replacement: graph -> new graph, the input never modified.

Folding a BN into the conv/linear before it (white paper 2.3.1, AIMET's formula):
  k = gamma / sqrt(var + eps);  W' = W * k (per output channel);  b' = beta + (b - mean) * k.
The BN's beta and gamma are kept on the conv as params ``bn_beta`` / ``bn_gamma``: under DFQ's
assumption the folded conv's output is N(beta, gamma^2) per channel, which equalization rescales,
absorption shifts, and BN-based ranges and analytic bias correction read.
"""
from __future__ import annotations

import numpy as np

from ..graph.ir import Graph, Node

WEIGHTED_OPS = ("conv2d", "linear")
BN_STAT_KEYS = ("bn_beta", "bn_gamma")


def rebuild(graph: Graph, nodes: list[Node], renames: dict[str, str] | None = None) -> Graph:
    """A new Graph from `nodes`, with tensor names in `renames` redirected (inputs and outputs)."""
    renames = renames or {}

    def resolve(name: str) -> str:
        while name in renames:
            name = renames[name]
        return name

    for node in nodes:
        node.inputs = tuple(resolve(i) for i in node.inputs)
    outputs = [resolve(o) for o in graph.outputs]
    return Graph(graph.name, nodes, outputs, graph.source)


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold every batchnorm that directly follows a conv2d/linear whose output feeds only it.

    Batchnorms elsewhere (after an add, a pool, or at the graph input) stay as nodes.
    """
    g = graph.copy()
    by_name = {n.name: n for n in g.nodes}
    drop: set[str] = set()
    renames: dict[str, str] = {}
    for node in g.nodes:
        if node.op != "batchnorm":
            continue
        prev = by_name[node.inputs[0]]
        if prev.op not in WEIGHTED_OPS or prev.weight is None or prev.name in g.outputs:
            continue
        if len(g.consumers(prev.name)) != 1 or any(k in prev.params for k in BN_STAT_KEYS):
            continue
        gamma, beta, mean, var = (np.asarray(node.params[k], np.float64) for k in ("gamma", "beta", "mean", "var"))
        k = gamma / np.sqrt(var + float(node.attrs["eps"]))
        w = np.asarray(prev.weight, np.float64)
        b = np.asarray(prev.bias, np.float64) if prev.bias is not None and prev.attrs.get("bias", True) else 0.0
        dtype = prev.weight.dtype if prev.weight.dtype.kind == "f" else np.float32
        prev.weight = (w * k.reshape((-1,) + (1,) * (w.ndim - 1))).astype(dtype)
        prev.bias = (beta + (b - mean) * k).astype(dtype)
        prev.attrs = {**prev.attrs, "bias": True}
        prev.params["bn_beta"] = beta.astype(np.float64)
        prev.params["bn_gamma"] = gamma.astype(np.float64)
        drop.add(node.name)
        renames[node.name] = prev.name
    return rebuild(g, [n for n in g.nodes if n.name not in drop], renames)


def replace_relu6(graph: Graph) -> Graph:
    """Every relu6 becomes a relu (DFQ 5.1.1): changes FP32 outputs where activations exceed 6."""
    g = graph.copy()
    for node in g.nodes:
        if node.op == "relu6":
            node.op = "relu"
    return rebuild(g, list(g.nodes))
