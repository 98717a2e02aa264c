"""ONNX import, part 3: pattern fusion. Multi-node patterns an exporter writes for one layer
(SiLU as Sigmoid + Mul, the erf GELU in any association) are found before translation and
become one accelsim node, named after the pattern's last node. Mixed into the importer."""
from __future__ import annotations

import math

import numpy as np


_SQRT2 = math.sqrt(2.0)


class PatternsMixin:
    """Pattern matching over the ONNX node list (needs the importer's state: nodes, consumers, constants)."""

    def _lit(self, t: str) -> np.ndarray | None:
        return self.literal.get(t)

    def _is_scalar(self, t: str, value: float, tol: float = 1e-4) -> bool:
        v = self._lit(t)
        return v is not None and v.size == 1 and abs(float(v.ravel()[0]) - value) <= tol * max(1.0, abs(value))

    def _only_consumer(self, t: str, op_type: str):
        cons = self.consumers.get(t, [])
        if len(cons) == 1 and t not in self.outputs and cons[0].op_type == op_type:
            return cons[0]
        return None

    def _find_patterns(self) -> tuple[set[int], dict[int, tuple[str, str]]]:
        index = {id(n): i for i, n in enumerate(self.g.node)}
        members: set[int] = set()
        anchors: dict[int, tuple[str, str]] = {}

        def claim(nodes: list, anchor, op: str, x: str) -> None:
            ids = [index[id(m)] for m in nodes]
            if any(i in members or i in anchors for i in ids + [index[id(anchor)]]):
                return
            members.update(ids)
            anchors[index[id(anchor)]] = (op, x)

        for n in self.g.node:
            if n.op_type == "Sigmoid":  # x * sigmoid(x)
                x, s = n.input[0], n.output[0]
                m = self._only_consumer(s, "Mul")
                if m is not None and sorted(m.input) == sorted([x, s]) and x != s:
                    claim([n], m, "silu", x)
            elif n.op_type == "Erf":
                match = self._match_gelu(n)
                if match:
                    claim(*match)
        return members, anchors

    def _match_gelu(self, erf):
        d = erf.input[0]
        pre = self.producer.get(d)
        if pre is None or self._only_consumer(d, "Erf") is None or len(pre.input) != 2:
            return None
        a, b = pre.input
        if pre.op_type == "Div" and self._is_scalar(b, _SQRT2):
            x = a
        elif pre.op_type == "Mul" and self._is_scalar(b, 1 / _SQRT2):
            x = a
        elif pre.op_type == "Mul" and self._is_scalar(a, 1 / _SQRT2):
            x = b
        else:
            return None
        add = self._only_consumer(erf.output[0], "Add")
        if add is None or not any(self._is_scalar(t, 1.0) for t in add.input):
            return None
        nodes, have_x, have_half, cur = [pre, erf, add], False, False, add.output[0]
        for _ in range(2):
            m = self._only_consumer(cur, "Mul")
            if m is None or len(m.input) != 2:
                return None
            other = m.input[1] if m.input[0] == cur else m.input[0]
            sub = self.producer.get(other)
            if other == x and not have_x:
                have_x = True
            elif self._is_scalar(other, 0.5) and not have_half:
                have_half = True
            elif (
                sub is not None and sub.op_type == "Mul" and not (have_x or have_half)
                and self._only_consumer(other, "Mul") is m
                and any(t == x for t in sub.input) and any(self._is_scalar(t, 0.5) for t in sub.input)
            ):
                have_x = have_half = True
                nodes.append(sub)
            else:
                return None
            if have_x and have_half:
                return nodes, m, "gelu", x
            nodes.append(m)
            cur = m.output[0]
        return None

    # ------------------------------------------------------------------ one node
