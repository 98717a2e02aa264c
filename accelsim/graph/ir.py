"""The Graph IR: named nodes in topological order, shape inference and per-layer counts.

A node produces one tensor, named like the node. A graph may carry parameters
(weights, biases, BN statistics) or be shape-only (the zoo); the cost model needs only shapes.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import GraphError
from .ops import GEMM_OPS, OPS, GemmView, Shape, check_count, parse_attrs


@dataclass
class Node:
    name: str
    op: str
    inputs: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def weight(self) -> np.ndarray | None:
        return self.params.get("weight")

    @weight.setter
    def weight(self, value: np.ndarray) -> None:
        self.params["weight"] = value

    @property
    def bias(self) -> np.ndarray | None:
        return self.params.get("bias")

    @bias.setter
    def bias(self, value: np.ndarray | None) -> None:
        if value is None:
            self.params.pop("bias", None)
        else:
            self.params["bias"] = value


@dataclass(frozen=True)
class LayerInfo:
    """Shapes and counts of one node at one batch size: the one place they are computed."""

    name: str
    op: str
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    gemm: GemmView | None
    weight_elems: int
    bias_elems: int

    @property
    def macs(self) -> int:
        return self.gemm.macs if self.gemm else 0

    @property
    def ifmap_elems(self) -> int:
        return sum(math.prod(s) for s in self.input_shapes)

    @property
    def ofmap_elems(self) -> int:
        return math.prod(self.output_shape)


def _expected_param_shapes(node: Node, in_shapes: list[Shape]) -> dict[str, Shape]:
    a = node.attrs
    if node.op == "conv2d":
        c = in_shapes[0][1]
        shapes = {"weight": (a["out_channels"], c // a["groups"], *a["kernel"])}
        if a["bias"]:
            shapes["bias"] = (a["out_channels"],)
        return shapes
    if node.op == "linear":
        shapes = {"weight": (a["out_features"], in_shapes[0][-1])}
        if a["bias"]:
            shapes["bias"] = (a["out_features"],)
        return shapes
    if node.op == "batchnorm":
        c = in_shapes[0][1]
        return {k: (c,) for k in ("gamma", "beta", "mean", "var")}
    if node.op == "layernorm":
        d = in_shapes[0][-1]
        return {k: (d,) for k in ("gamma", "beta")}
    return {}


def _weight_counts(node: Node, in_shapes: list[Shape]) -> tuple[int, int]:
    if node.op not in ("conv2d", "linear"):
        return 0, 0
    shapes = _expected_param_shapes(node, in_shapes)
    return math.prod(shapes["weight"]), math.prod(shapes.get("bias", (0,)))


class Graph:
    """A directed acyclic graph of named nodes, kept in topological order."""

    def __init__(self, name: str, nodes: Iterable[Node], outputs: Iterable[str] | None = None, source: str | None = None):
        self.name = name
        self.source = source  # where it came from (file, zoo entry), for error messages and reports
        self.nodes: list[Node] = list(nodes)
        self._index = {}
        where = source or name
        for node in self.nodes:
            if node.name in self._index:
                raise GraphError(f"{where}: layer '{node.name}'.name: expected a unique layer name; "
                                 f"found '{node.name}' again (the layer name is used twice)")
            spec = OPS.get(node.op)
            if spec is None:
                parse_attrs(node.op, {}, f"{where}: layer '{node.name}'")  # raises with suggestions
            for inp in node.inputs:
                if inp not in self._index:
                    raise GraphError(
                        f"{where}: layer '{node.name}'.inputs: expected names of layers defined before it; "
                        f"found {inp!r} (layer '{node.name}' reads '{inp}', which is not defined before it)"
                    )
            n_in = len(node.inputs)
            if (spec.n_inputs is None and n_in < 1) or (spec.n_inputs is not None and n_in != spec.n_inputs):
                expected = "one or more" if spec.n_inputs is None else str(spec.n_inputs)
                raise GraphError(f"{where}: layer '{node.name}'.inputs: expected {expected} inputs for "
                                 f"{node.op} ({node.op} takes {expected} inputs); found {n_in}")
            self._index[node.name] = node
        if not self.inputs:
            raise GraphError(f"{where}: inputs: expected at least one input; found none (the graph has no input)")
        consumed = {i for n in self.nodes for i in n.inputs}
        self.outputs = list(outputs) if outputs is not None else [
            n.name for n in self.nodes if n.name not in consumed and n.op != "input"
        ]
        for out in self.outputs:
            if out not in self._index:
                raise GraphError(f"{where}: outputs: expected names of layers; found {out!r} "
                                 f"(output '{out}' is not a layer of the graph)")
        self._shape_cache: dict[int, dict[str, Shape]] = {}

    # ------------------------------------------------------------------ container protocol
    def __getitem__(self, name: str) -> Node:
        try:
            return self._index[name]
        except KeyError:
            import difflib

            near = difflib.get_close_matches(name, self._index, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise KeyError(f"no layer '{name}' in graph '{self.name}'{hint}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.nodes)} nodes, inputs={self.inputs}, outputs={self.outputs})"

    @property
    def inputs(self) -> list[str]:
        return [n.name for n in self.nodes if n.op == "input"]

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def copy(self) -> "Graph":
        """A deep copy (parameters included) that transforms may modify."""
        return Graph(self.name, copy.deepcopy(self.nodes), list(self.outputs), self.source)

    @property
    def has_params(self) -> bool:
        return any(n.params for n in self.nodes if n.op in ("conv2d", "linear"))

    # ------------------------------------------------------------------ shapes and counts
    def shapes(self, batch: int = 1) -> dict[str, Shape]:
        """Output shape of every node at batch size `batch`."""
        import numbers

        if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or not 1 <= batch <= 2**31 - 1:
            from ..config.validate import describe

            raise GraphError(f"batch: expected an integer in 1..{2**31 - 1} (batch size must be >= 1); "
                             f"found {describe(batch)}")
        batch = int(batch)
        if batch not in self._shape_cache:
            where = self.source or self.name
            shapes: dict[str, Shape] = {}
            for node in self.nodes:
                in_shapes = [shapes[i] for i in node.inputs]
                try:
                    out = OPS[node.op].infer(node.attrs, in_shapes)
                except GraphError as exc:
                    raise GraphError(f"{where}: layer '{node.name}' ({node.op}): {exc}") from None
                if node.op == "input":
                    out = (batch,) + out
                check_count(math.prod(out), f"{where}: layer '{node.name}' ({node.op}): output elements at batch {batch}")
                shapes[node.name] = out
                for key, shape in _expected_param_shapes(node, in_shapes).items():
                    arr = node.params.get(key)
                    if arr is not None and tuple(arr.shape) != shape:
                        raise GraphError(
                            f"{where}: layer '{node.name}': {key} has shape {tuple(arr.shape)}, expected {shape}"
                        )
            self._shape_cache[batch] = shapes
        return self._shape_cache[batch]

    def layer(self, name: str, batch: int = 1) -> LayerInfo:
        node = self[name]
        shapes = self.shapes(batch)
        in_shapes = [shapes[i] for i in node.inputs]
        out = shapes[name]
        spec = OPS[node.op]
        gemm = spec.gemm(node.attrs, in_shapes, out) if node.op in GEMM_OPS else None
        w, b = _weight_counts(node, in_shapes)
        where = f"{self.source or self.name}: layer '{name}' ({node.op})"
        if gemm is not None:
            check_count(gemm.macs, f"{where}: MACs at batch {batch}")
        check_count(w, f"{where}: weights")
        return LayerInfo(name, node.op, tuple(in_shapes), out, gemm, w, b)

    def layers(self, batch: int = 1, gemm_only: bool = False) -> list[LayerInfo]:
        infos = [self.layer(n.name, batch) for n in self.nodes if n.op != "input"]
        check_count(sum(i.macs for i in infos), f"{self.source or self.name}: MACs of the graph at batch {batch}")
        return [i for i in infos if i.gemm] if gemm_only else infos

    def total_macs(self, batch: int = 1) -> int:
        return sum(info.macs for info in self.layers(batch))

    def table(self, batch: int = 1, gemm_only: bool = False):
        """Per-layer pandas DataFrame: shapes, GEMM view, MACs and parameter counts."""
        import pandas as pd

        rows = []
        for info in self.layers(batch, gemm_only):
            g = info.gemm
            rows.append(
                {
                    "layer": info.name,
                    "op": info.op,
                    "input_shape": "x".join(map(str, info.input_shapes[0])) if info.input_shapes else "",
                    "output_shape": "x".join(map(str, info.output_shape)),
                    "M": g.M if g else 0,
                    "K": g.K if g else 0,
                    "N": g.N if g else 0,
                    "groups": g.groups if g else 0,
                    "macs": info.macs,
                    "weight_elems": info.weight_elems,
                    "bias_elems": info.bias_elems,
                    "ifmap_elems": info.ifmap_elems,
                    "ofmap_elems": info.ofmap_elems,
                }
            )
        columns = ["layer", "op", "input_shape", "output_shape", "M", "K", "N", "groups",
                   "macs", "weight_elems", "bias_elems", "ifmap_elems", "ofmap_elems"]
        return pd.DataFrame(rows, columns=columns)  # the columns even when no layer matches

    # ------------------------------------------------------------------ numerics (FP32 reference)
    def run(self, x: np.ndarray, **kwargs: Any):
        """FP32 numpy reference on input `x` (graphs that carry weights)."""
        from .run import run_graph

        return run_graph(self, x, **kwargs)


def make_node(where: str, name: str, op: str, inputs: Iterable[str], raw_attrs: dict[str, Any] | None = None, params: dict[str, np.ndarray] | None = None) -> Node:
    """Build a node with validated, normalised attributes."""
    attrs = parse_attrs(op, raw_attrs or {}, f"{where}: layer '{name}'")
    return Node(name, op, tuple(inputs), attrs, dict(params or {}))
