"""Where cross-layer equalization and high-bias absorption may act.

A *link* A -> B is a weighted layer A whose output reaches weighted layer B through a chain
of ops that commute with a positive per-channel scaling: relu, identity, maxpool. Every
tensor on the chain (A's output included) feeds exactly one consumer and is not a graph
output, so rescaling A's channel i by 1/s and B's input channel i by s changes nothing
downstream. Never across an add, a concat, a flatten or a pool that is not a max (avgpool
would be fine for scaling but not for absorption at padded borders, so it is left out).

ReLU6 breaks positive scaling equivariance (relu6(x / s) != relu6(x) / s), so a relu6 on
the chain makes it ineligible: DFQ replaces ReLU6 by ReLU first (the ``replace_relu6`` step).
We do not equalize across relu6 at all, rather than giving each channel its own clip 6/s,
which an accelerator with one clamp per tensor could not run.

B must be a plain conv/linear (groups = 1), or a depthwise conv (groups = channels), whose
input channel i is its output channel i: then B's output carries the scale on to a third
layer C, the conv -> depthwise -> conv *triplet* (DFQ, AIMET).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..graph.ir import Graph, Node
from .fold import WEIGHTED_OPS

SCALE_TRANSPARENT = ("relu", "identity", "maxpool")


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    between: tuple[str, ...]  # ops of the chain, in order (e.g. ("relu",))

    @property
    def has_relu(self) -> bool:
        return "relu" in self.between


def is_depthwise(node: Node) -> bool:
    w = node.weight
    return (node.op == "conv2d" and w is not None and w.shape[1] == 1
            and node.attrs["groups"] == w.shape[0] > 1)


def _plain(node: Node) -> bool:
    return node.op in WEIGHTED_OPS and node.weight is not None and (node.op == "linear" or node.attrs["groups"] == 1)


def link_from(graph: Graph, a: Node) -> tuple[Link | None, str]:
    """The link starting at weighted layer `a`, or (None, why not)."""
    if a.op not in WEIGHTED_OPS or a.weight is None:
        return None, "not a layer with weights"
    outputs = set(graph.outputs)
    name, between = a.name, []
    while True:
        if name in outputs:
            return None, f"'{name}' is a graph output"
        consumers = graph.consumers(name)
        if len(consumers) != 1:
            return None, f"'{name}' feeds {len(consumers)} consumers"
        nxt = consumers[0]
        if nxt.op in WEIGHTED_OPS:
            if len(nxt.inputs) != 1:
                return None, f"'{nxt.name}' reads several inputs"
            if not (_plain(nxt) or is_depthwise(nxt)):
                return None, f"'{nxt.name}' is a grouped conv"
            if nxt.op == "linear" and a.op == "conv2d":
                return None, f"'{nxt.name}' is a linear layer after a conv (channel layout differs)"
            return Link(a.name, nxt.name, tuple(between)), ""
        if nxt.op not in SCALE_TRANSPARENT:
            return None, f"'{nxt.name}' ({nxt.op}) does not commute with per-channel scaling"
        between.append(nxt.op)
        name = nxt.name


def find_cle_sets(graph: Graph) -> tuple[list[tuple[Link, ...]], list[tuple[str, str]]]:
    """Equalization sets in topological order: pairs (one link) and triplets (two links
    A -> depthwise -> C); plus (layer, reason) for weighted layers that start no set."""
    sets: list[tuple[Link, ...]] = []
    skipped: list[tuple[str, str]] = []
    middle: set[str] = set()
    for node in graph.nodes:
        if node.op not in WEIGHTED_OPS or node.name in middle:
            continue
        link, why = link_from(graph, node)
        if link is None:
            skipped.append((node.name, why))
            continue
        b = graph[link.b]
        if is_depthwise(b):
            link2, _ = link_from(graph, b)
            if link2 is not None:
                sets.append((link, link2))
                middle.add(b.name)
                continue
        sets.append((link,))
    return sets, skipped
