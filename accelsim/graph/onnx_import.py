"""ONNX -> Graph, with the `onnx` package only (no onnxruntime at run time).

What is mapped (ONNX op -> accelsim op):

- Conv -> conv2d (pads, strides, dilations, group, auto_pad); a constant-zero Pad in front
  of a Conv (torch's ZeroPad2d) or an AveragePool without ceil_mode is folded into its padding.
- Gemm (transA=0, alpha, beta) and MatMul with a constant 2-D weight -> linear (weight in
  torch layout (out, in)); an Add/Sub of a constant right after a conv or linear is folded
  into its bias. MatMul between two activations -> matmul.
- BatchNormalization -> batchnorm, LayerNormalization (last axis) -> layernorm.
- Relu -> relu; Clip [0, 6] -> relu6 and Clip [0, inf) -> relu (other ranges are rejected).
- Sigmoid + Mul(x, sigmoid(x)) -> silu, named after the Mul; the erf GELU
  x * 0.5 * (1 + erf(x / sqrt 2)) in any association -> gelu, named after its last Mul;
  Gelu (opset 20, approximate="none") -> gelu. Sigmoid alone -> sigmoid.
- Mul/Div by a constant -> mul (param `value`); Add/Sum of tensors -> add.
- Concat, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Transpose, Softmax;
  ReduceMean over (H, W) -> globalavgpool (+ reshape without keepdims); Squeeze and
  Unsqueeze of an activation -> reshape.
- Identity and Dropout are bypassed (consumers rewired).
- Constant subgraphs (Shape, Gather, Unsqueeze, Concat, Cast, Slice, arithmetic, ...) are
  evaluated at import; Shape of an activation is known because input shapes are static
  except the batch.

The batch is free: the graph is traced at two probe batch sizes, and a Reshape target entry
that follows the batch becomes 0 (copy) at axis 0 or -1 elsewhere. A Reshape whose target
was folded to a literal batch by the exporter (a fixed-batch model) gets 0 at axis 0 when
that literal equals the model's fixed batch and the reshaped tensor carries the batch.
Layers keep their ONNX node names.

The importer is split by concern: ``onnx_parse`` reads the model and folds constants,
``onnx_ops`` translates one ONNX op at a time, ``onnx_patterns`` fuses multi-node patterns;
this module has ``load_onnx`` and the driver that walks the graph (and keeps the public names).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import GraphError
from .ir import Graph, Node, make_node
from .ops import OPS

from .onnx_ops import OpsMixin
from .onnx_parse import (  # noqa: F401  (the public names stay importable from here)
    CONST_OPS, MAX_CONST_ELEMS, MAX_ONNX_BYTES, MAX_TENSOR_ELEMS, PROBES, SUPPORTED, _attr, _check_nodes,
    _const_op, _constant_value, _external_tensors, _load_external_data, _node_label, _onnx, _one_line, read_onnx_file,
    _tensor_value,
)
from .onnx_patterns import PatternsMixin


def load_onnx(path_or_model: Any, input_shapes: dict[str, Iterable[int]] | None = None) -> Graph:
    """Import an ONNX model (a path or an `onnx.ModelProto`) as a Graph with its weights.

    `input_shapes` ({input name: shape without batch}) fixes inputs with dynamic
    non-batch dimensions.
    """
    onnx, _ = _onnx()
    if isinstance(path_or_model, (str, Path)):
        path = Path(path_or_model)
        model = read_onnx_file(path)
        where, name = str(path), path.stem  # exporters' graph names are generic ("main_graph")
        if not model.graph.node:
            raise GraphError(f"{path}: expected an ONNX model with nodes; found none (not an ONNX model with nodes)")
        _load_external_data(model, path, where)
    elif isinstance(path_or_model, onnx.ModelProto):
        model = path_or_model
        name = model.graph.name or "onnx_model"
        where = name
        if _external_tensors(model):
            raise GraphError(f"{where}: expected tensors with their data inside the model; found external data "
                             "(load the model from its file: load_onnx(path))")
    else:
        raise TypeError(f"load_onnx(): argument 'path_or_model': expected a path or an onnx.ModelProto; "
                        f"found {type(path_or_model).__name__}")
    if input_shapes is not None and not isinstance(input_shapes, dict):
        raise TypeError(f"load_onnx(): argument 'input_shapes': expected a dict {{input name: shape}}; "
                        f"found {type(input_shapes).__name__}")
    shapes = {}
    for key, shape in (input_shapes or {}).items():
        from .ops import _shape

        shapes[key] = _shape(list(shape) if isinstance(shape, (list, tuple)) else shape,
                             f"{where}: input_shapes[{key!r}]")
    _check_nodes(model, where)
    return _Importer(model, where, name, shapes).run()


#: bounds checked before anything is allocated

class _Importer(OpsMixin, PatternsMixin):
    def __init__(self, model, where: str, name: str, input_shapes: dict[str, Iterable[int]]):
        _, self.numpy_helper = _onnx()
        self.model, self.g, self.where, self.name = model, model.graph, where, name
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13
        )
        self.input_shapes = {k: tuple(int(v) for v in s) for k, s in input_shapes.items()}
        self.const: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # tensor -> value at each probe
        self.act: dict[str, str] = {}  # ONNX tensor -> accelsim node producing it
        self.shape: dict[str, tuple[tuple, tuple]] = {}  # accelsim node -> output shape at each probe
        self.nodes: list[Node] = []
        self.by_name: dict[str, Node] = {}
        self.refs: dict[str, int] = {}  # accelsim node -> ONNX uses of the tensors it produces
        self.pending_pad: dict[str, tuple[str, tuple[int, int, int, int]]] = {}
        self.fixed_batch: int | None = None
        self.outputs = {o.name for o in self.g.output}
        self.consumers: dict[str, list] = {}
        self.producer: dict[str, Any] = {}
        for n in self.g.node:
            for t in n.input:
                if t:
                    self.consumers.setdefault(t, []).append(n)
            for t in n.output:
                self.producer[t] = n
        self.literal: dict[str, np.ndarray] = {
            init.name: _tensor_value(init, where, f"initializer '{init.name}'") for init in self.g.initializer
        }
        for n in self.g.node:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                self.literal[n.output[0]] = _constant_value(n, where)

    # ------------------------------------------------------------------ helpers
    def _axis(self, n, name: str, rank: int, default: Any = None, allow_end: bool = False) -> int:
        """Attribute `name` as an axis of a rank-`rank` tensor, checked at import."""
        value = _attr(n, name, default)
        hi = rank + 1 if allow_end else rank
        if isinstance(value, bool) or not isinstance(value, int) or not -hi <= value < hi:
            from ..config.validate import describe

            raise self._err(n, f"{name}: expected an axis in {-hi}..{hi - 1} (the input has rank {rank}); "
                            f"found {describe(value)}")
        return value + hi if value < 0 else value

    def _err(self, n, message: str) -> GraphError:
        return GraphError(f"{self.where}: {_node_label(n)}: {message}")

    def _uses(self, tensor: str) -> int:
        """Consumers that read the values (Shape/Size read only the shape, which folding keeps)."""
        cons = [c for c in self.consumers.get(tensor, ()) if c.op_type not in ("Shape", "Size")]
        return len(cons) + (tensor in self.outputs)

    def _act_in(self, n, i: int) -> str:
        t = n.input[i] if i < len(n.input) else ""
        if t in self.act:
            return self.act[t]
        if t in self.pending_pad:
            raise self._err(n, "a Pad feeds this node; accelsim folds Pad only into Conv or AveragePool")
        if t in self.const:
            raise self._err(n, f"input '{t}' is a constant where accelsim expects an activation")
        raise self._err(n, f"input '{t}' is not produced by any supported node")

    def _const_in(self, n, i: int, required: bool = True) -> np.ndarray | None:
        t = n.input[i] if i < len(n.input) else ""
        if not t:
            if required:
                raise self._err(n, f"input {i} is missing")
            return None
        if t not in self.const:
            raise self._err(n, f"input '{t}' must be a constant (initializer or constant subgraph)")
        v1, v2 = self.const[t]
        if v1 is not v2 and not (v1.shape == v2.shape and np.array_equal(v1, v2)):
            raise self._err(n, f"constant input '{t}' depends on the batch size")
        return v1

    def _param(self, n, i: int, required: bool = True) -> np.ndarray | None:
        v = self._const_in(n, i, required)
        return None if v is None else np.array(v, dtype=np.float32)

    def _unique(self, name: str) -> str:
        base, k = name, 0
        while name in self.by_name:
            k += 1
            name = f"{base}_{k}"
        return name

    def _emit(self, n, op: str, inputs: list[str], attrs: dict | None = None, params: dict | None = None,
              name: str | None = None, out: str | None = None) -> Node:
        name = self._unique(name or n.name or f"{n.op_type}_{n.output[0]}")
        node = make_node(self.where, name, op, inputs, attrs or {}, params)
        try:
            shapes = tuple(
                OPS[op].infer(node.attrs, [self.shape[i][k] for i in inputs]) for k in range(2)
            )
        except GraphError as exc:
            raise self._err(n, str(exc)) from None
        self.nodes.append(node)
        self.by_name[name] = node
        self.shape[name] = shapes
        out = out or n.output[0]
        self.act[out] = name
        self.refs[name] = self._uses(out)
        return node

    def _alias(self, out: str, src_tensor: str) -> None:
        """Rewire: tensor `out` is the same value as `src_tensor` (a bypassed node)."""
        name = self.act[src_tensor]
        self.act[out] = name
        self.refs[name] += self._uses(out) - 1

    def _unused_extra_outputs(self, n, what: str) -> None:
        for t in list(n.output)[1:]:
            if t and self._uses(t):
                raise self._err(n, f"its output '{t}' ({what}) is used; accelsim supports inference only")

    # ------------------------------------------------------------------ main loop
    def run(self) -> Graph:
        self._inputs()
        members, anchors = self._find_patterns()
        for idx, n in enumerate(self.g.node):
            if idx in members:
                continue
            try:
                self._one(idx, n, anchors)
            except GraphError:
                raise
            except (ValueError, TypeError, IndexError, KeyError, AttributeError, ArithmeticError) as exc:
                raise self._err(n, f"expected a node accelsim can import; found {type(exc).__name__}: "
                                f"{_one_line(exc)}") from None
        return self._finish()

    def _one(self, idx: int, n, anchors) -> None:
        if True:
            if idx in anchors:
                op, x = anchors[idx]
                self._emit(n, op, [self._act_in_tensor(n, x)])
                return
            if n.domain not in ("", "ai.onnx"):
                raise self._err(n, f"op type '{n.op_type}' of domain '{n.domain}' is not supported")
            self._node(n)

    def _act_in_tensor(self, n, t: str) -> str:
        if t not in self.act:
            raise self._err(n, f"input '{t}' is not an activation")
        return self.act[t]

    def _inputs(self) -> None:
        inits = {i.name for i in self.g.initializer}
        for init in self.g.initializer:
            v = self.literal[init.name]
            self.const[init.name] = (v, v)
        for inp in self.g.input:
            if inp.name in inits:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in inp.type.tensor_type.shape.dim]
            if inp.name in self.input_shapes:
                shape = self.input_shapes[inp.name]
            else:
                if len(dims) < 2:
                    raise GraphError(
                        f"{self.where}: input '{inp.name}' has shape {dims}; accelsim needs (batch, ...) with rank >= 2"
                    )
                shape = dims[1:]
                bad = [(i + 1, d) for i, d in enumerate(shape) if not isinstance(d, int) or d < 1]
                if bad:
                    raise GraphError(
                        f"{self.where}: input '{inp.name}' has a dynamic dimension {bad[0][1]!r} at axis {bad[0][0]} "
                        f"(shape {dims}); only the batch may be dynamic: pass input_shapes={{'{inp.name}': [...]}}"
                    )
            if isinstance(dims[0] if dims else None, int) and dims[0] > 0 and self.fixed_batch is None:
                self.fixed_batch = dims[0]
            name = self._unique(inp.name)
            node = make_node(self.where, name, "input", (), {"shape": list(shape)})
            self.nodes.append(node)
            self.by_name[name] = node
            self.shape[name] = tuple((p,) + tuple(shape) for p in PROBES)
            self.act[inp.name] = name
            self.refs[name] = self._uses(inp.name)
        if not any(n.op == "input" for n in self.nodes):
            raise GraphError(f"{self.where}: the model has no (non-initializer) input")

    def _finish(self) -> Graph:
        outs: list[str] = []
        for o in self.g.output:
            if o.name in self.const:
                raise GraphError(f"{self.where}: output '{o.name}' is a constant")
            if o.name not in self.act:
                raise GraphError(f"{self.where}: output '{o.name}' is not produced by any node")
            if self.act[o.name] not in outs:
                outs.append(self.act[o.name])
        live = set(outs)  # drop nodes no output depends on
        for node in reversed(self.nodes):
            if node.name in live:
                live.update(node.inputs)
        nodes = [nd for nd in self.nodes if nd.name in live or nd.op == "input"]
        return Graph(self.name, nodes, outs, source=self.where)

    # ------------------------------------------------------------------ patterns
    def _node(self, n) -> None:
        op = n.op_type
        if op == "Constant":
            v = self.literal[n.output[0]]
            self.const[n.output[0]] = (v, v)
            return
        present = [t for t in n.input if t]
        if op == "Shape" and present and present[0] in self.act:
            s = self.shape[self.act[present[0]]]
            start, end = _attr(n, "start", 0), _attr(n, "end")
            v = tuple(np.array(s[k][start:end], dtype=np.int64) for k in range(2))
            self.const[n.output[0]] = v
            return
        if op in CONST_OPS and present and all(t in self.const for t in present):
            self._eval_const(n)
            return
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            raise self._err(n, f"expected an op type accelsim can import ({', '.join(SUPPORTED)}); "
                            f"found op type '{op}'")
        handler(n)

    def _eval_const(self, n) -> None:
        pairs = [self.const[t] if t else (None, None) for t in n.input]
        try:
            if all(p[0] is p[1] for p in pairs):
                v = _const_op(n, [p[0] for p in pairs], self.opset)
                out = (v, v)
            else:
                out = tuple(_const_op(n, [p[k] for p in pairs], self.opset) for k in range(2))
        except GraphError as exc:
            raise self._err(n, str(exc)) from None
        except Exception as exc:
            raise self._err(n, f"expected a constant expression numpy can evaluate; found {_one_line(exc)} "
                            "(cannot evaluate this constant expression)") from None
        self.const[n.output[0]] = out

    # ------------------------------------------------------------------ op handlers
