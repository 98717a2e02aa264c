"""A small builder for writing graphs in Python (zoo generator, importers, tests)."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .ir import Graph, Node, make_node


class GraphBuilder:
    """Appends nodes in order; a node reads the previous one unless `inputs` says otherwise."""

    def __init__(self, name: str, source: str | None = None):
        self.name = name
        self.source = source
        self.nodes: list[Node] = []
        self._count: dict[str, int] = {}

    @property
    def last(self) -> str:
        return self.nodes[-1].name

    def input(self, shape: Iterable[int], name: str = "input") -> str:
        return self.add("input", name=name, inputs=(), shape=list(shape))

    def add(
        self,
        op: str,
        name: str | None = None,
        inputs: Iterable[str] | str | None = None,
        params: dict[str, np.ndarray] | None = None,
        **attrs: Any,
    ) -> str:
        if name is None:
            self._count[op] = self._count.get(op, 0) + 1
            name = f"{op}{self._count[op]}"
        if inputs is None:
            inputs = (self.last,)
        elif isinstance(inputs, str):
            inputs = (inputs,)
        self.nodes.append(make_node(self.source or self.name, name, op, inputs, attrs, params))
        return name

    def build(self, outputs: Iterable[str] | None = None) -> Graph:
        return Graph(self.name, self.nodes, outputs, self.source)
