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
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import GraphError, MissingExtraError
from .ir import Graph, Node, make_node
from .ops import OPS

PROBES = (2, 3)  # two batch sizes: a value that differs between them depends on the batch
_SQRT2 = math.sqrt(2.0)


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise MissingExtraError("onnx", "onnx", "importing ONNX models") from None
    return onnx, numpy_helper


def load_onnx(path_or_model: Any, input_shapes: dict[str, Iterable[int]] | None = None) -> Graph:
    """Import an ONNX model (a path or an `onnx.ModelProto`) as a Graph with its weights.

    `input_shapes` ({input name: shape without batch}) fixes inputs with dynamic
    non-batch dimensions.
    """
    onnx, _ = _onnx()
    if isinstance(path_or_model, (str, Path)):
        path = Path(path_or_model)
        if not path.is_file():
            raise GraphError(f"{path}: expected an existing ONNX file; found no such file (file not found)")
        if path.stat().st_size > MAX_ONNX_BYTES:
            raise GraphError(f"{path}: expected an ONNX file of at most {MAX_ONNX_BYTES:,} bytes (larger "
                             f"weights belong in external data); found {path.stat().st_size:,} bytes")
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # protobuf decode errors have no common base class
            raise GraphError(f"{path}: expected an ONNX model; found a file protobuf cannot decode "
                             f"({_one_line(exc)}) (not a readable ONNX model)") from None
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
MAX_ONNX_BYTES = 2 * 1024**3  # protobuf's own limit
MAX_TENSOR_ELEMS = 2**31 - 1  # one initializer or folded constant
MAX_CONST_ELEMS = 2**25  # a constant computed at import (ConstantOfShape, Expand, Range, Tile)


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _node_label(n) -> str:
    return f"node '{n.name or (n.output[0] if n.output else '?')}' ({n.op_type})"


def _check_nodes(model, where: str) -> None:
    """onnx.checker's schema check of every node of the default domain: arity, required
    attributes and attribute types, before the importer reads them. The node stands in for the
    field: `<file>: node '<name>' (<Op>): expected a valid <Op> node; found <what the checker says>`."""
    onnx, _ = _onnx()
    from onnx import checker

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    ctx = checker.C.CheckerContext()
    ctx.ir_version = model.ir_version or onnx.IR_VERSION
    ctx.opset_imports = {"": opset}
    lex = checker.C.LexicalScopeContext()
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx"):
            continue  # the importer names the domain it does not support
        try:
            checker.check_node(n, ctx, lex)
        except checker.ValidationError as exc:
            text = _one_line(exc)
            if text.startswith("No Op registered") or text.startswith("No opset import"):
                continue  # the importer's own message lists the supported ops
            raise GraphError(f"{where}: {_node_label(n)}: expected a valid {n.op_type} node (opset {opset}); "
                             f"found {text}") from None
        except Exception as exc:  # the checker's C++ side may raise other types
            raise GraphError(f"{where}: {_node_label(n)}: expected a valid {n.op_type} node; found "
                             f"{_one_line(exc)}") from None


def _external_tensors(model) -> list:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    return [t for t in _get_all_tensors(model) if uses_external_data(t)]


def _load_external_data(model, path: Path, where: str) -> None:
    """Read external tensor data only from files inside the model's folder: an untrusted model
    must not make accelsim read other files (absolute paths, .., symlinks out are refused)."""
    tensors = _external_tensors(model)
    if not tensors:
        return
    from onnx.external_data_helper import load_external_data_for_tensor

    base = path.resolve().parent
    for t in tensors:
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        field = f"initializer '{t.name}'"
        target = (base / loc).resolve() if loc and not Path(loc).is_absolute() else None
        if target is None or (target != base and base not in target.parents):
            raise GraphError(f"{where}: {field}: expected external data in a file inside the model's folder "
                             f"({base}); found location {loc!r} (refused: outside the model's folder)")
        if not target.is_file():
            raise GraphError(f"{where}: {field}: expected an existing external data file; found no file {loc!r}")
        try:
            offset, length = int(info.get("offset", 0) or 0), info.get("length")
            length = None if length in (None, "") else int(length)
        except ValueError:
            raise GraphError(f"{where}: {field}: expected integer offset and length; found "
                             f"{info.get('offset')!r}, {info.get('length')!r}") from None
        size = target.stat().st_size
        need = _tensor_nbytes(t)
        if offset < 0 or (length is not None and (length < 0 or offset + length > size)) or (
                need is not None and offset + (length if length is not None else need) > size):
            raise GraphError(f"{where}: {field}: expected {need if need is not None else length} bytes at offset "
                             f"{offset} of {loc!r}; found a file of {size} bytes (truncated external data)")
        try:
            load_external_data_for_tensor(t, str(base))
        except Exception as exc:
            raise GraphError(f"{where}: {field}: expected readable external data; found {_one_line(exc)}") from None


def _tensor_nbytes(t) -> int | None:
    onnx, _ = _onnx()
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
    except Exception:
        return None
    return math.prod(t.dims) * dtype.itemsize


def _tensor_value(t, where: str, field: str) -> np.ndarray:
    """An initializer or Constant tensor as an array, checked before it is converted:
    a known numeric data type, dims >= 0 and bounded, data of exactly the size the dims claim."""
    onnx, numpy_helper = _onnx()
    TP = onnx.TensorProto
    if t.data_type in (TP.UNDEFINED, TP.STRING) or t.data_type not in TP.DataType.values():
        name = TP.DataType.Name(t.data_type) if t.data_type in TP.DataType.values() else str(t.data_type)
        raise GraphError(f"{where}: {field}: expected a numeric tensor; found data type {name}")
    dims = list(t.dims)
    if any(d < 0 for d in dims) or len(dims) > 8:
        raise GraphError(f"{where}: {field}: expected up to 8 dims >= 0; found dims {dims}")
    count = math.prod(dims)
    if count > MAX_TENSOR_ELEMS:
        raise GraphError(f"{where}: {field}: expected at most {MAX_TENSOR_ELEMS:,} elements; found dims {dims}")
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except Exception:
        raise GraphError(f"{where}: {field}: expected a numeric tensor; found data type "
                         f"{TP.DataType.Name(t.data_type)}") from None
    if t.HasField("raw_data") and t.data_type not in (TP.INT4, TP.UINT4) and \
            t.data_type in TP.DataType.values() and itemsize and len(t.raw_data) != count * itemsize:
        raise GraphError(f"{where}: {field}: expected {count * itemsize:,} bytes of data for dims {dims}; "
                         f"found {len(t.raw_data):,} (a truncated or mistyped tensor)")
    try:
        return numpy_helper.to_array(t)
    except Exception as exc:
        raise GraphError(f"{where}: {field}: expected tensor data matching dims {dims}; found "
                         f"{_one_line(exc)}") from None


# ----------------------------------------------------------------------------- constant evaluation


def _attr(node, name: str, default: Any = None) -> Any:
    onnx, _ = _onnx()
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _constant_value(node, where: str = "model") -> np.ndarray:
    _, numpy_helper = _onnx()
    for a in node.attribute:
        if a.name == "value":
            return _tensor_value(a.t, where, f"{_node_label(node)}.value")
        if a.name == "value_float":
            return np.array(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), dtype=np.float32)
        if a.name == "value_int":
            return np.array(a.i, dtype=np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), dtype=np.int64)
    raise GraphError(f"Constant node '{node.name}': unsupported value kind ({[a.name for a in node.attribute]})")


def _axes(node, vals: list, pos: int, opset: int, since: int) -> list[int] | None:
    """Axes from an input (opset >= `since`) or from the attribute (older opsets)."""
    if opset >= since:
        return [int(a) for a in np.ravel(vals[pos])] if len(vals) > pos and vals[pos] is not None else None
    axes = _attr(node, "axes")
    return list(axes) if axes is not None else None


def _reshape_const(x: np.ndarray, target: np.ndarray, allowzero: int) -> np.ndarray:
    t = [int(v) for v in target]
    if not allowzero:
        t = [x.shape[i] if v == 0 else v for i, v in enumerate(t)]
    return x.reshape(t)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        return (np.trunc(a / b)).astype(np.result_type(a, b))  # ONNX integer Div truncates
    return a / b


def _slice(node, vals: list, opset: int) -> np.ndarray:
    x = vals[0]
    if opset >= 10:
        starts, ends = np.ravel(vals[1]), np.ravel(vals[2])
        axes = np.ravel(vals[3]) if len(vals) > 3 and vals[3] is not None else np.arange(len(starts))
        steps = np.ravel(vals[4]) if len(vals) > 4 and vals[4] is not None else np.ones(len(starts), int)
    else:
        starts, ends = _attr(node, "starts"), _attr(node, "ends")
        axes = _attr(node, "axes", list(range(len(starts))))
        steps = [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _check_const_size(node, op: str, vals: list) -> None:
    """A constant computed at import is bounded before numpy allocates it."""
    try:
        if op == "ConstantOfShape":
            count = math.prod(int(v) for v in np.ravel(vals[0]))
        elif op == "Expand":
            count = math.prod(max(int(a), int(b)) for a, b in zip(
                (1,) * max(0, np.size(vals[1]) - vals[0].ndim) + tuple(vals[0].shape), np.ravel(vals[1])))
        elif op == "Range":
            start, limit, delta = (float(np.ravel(v)[0]) for v in vals[:3])
            count = math.ceil((limit - start) / delta) if delta else math.inf
        else:
            return
    except (TypeError, ValueError, IndexError, OverflowError):
        return  # malformed: numpy's own error is reported
    if not count <= MAX_CONST_ELEMS:
        raise GraphError(f"{op}: expected a constant of at most {MAX_CONST_ELEMS:,} elements; found {count:.3g}")


def _const_op(node, vals: list, opset: int) -> np.ndarray:
    onnx, numpy_helper = _onnx()
    op = node.op_type
    x = vals[0] if vals else None
    if op == "Identity":
        return x
    if op == "Cast":
        return x.astype(onnx.helper.tensor_dtype_to_np_dtype(_attr(node, "to")))
    if op == "Shape":
        start, end = _attr(node, "start", 0), _attr(node, "end")
        return np.array(x.shape[start:end], dtype=np.int64)
    if op == "Size":
        return np.array(x.size, dtype=np.int64)
    if op == "Gather":
        return np.take(x, vals[1].astype(np.int64), axis=_attr(node, "axis", 0))
    if op == "Unsqueeze":
        axes = _axes(node, vals, 1, opset, 13)
        rank = x.ndim + len(axes)
        return np.expand_dims(x, tuple(sorted(a % rank for a in axes)))
    if op == "Squeeze":
        axes = _axes(node, vals, 1, opset, 13)
        return np.squeeze(x, axis=None if axes is None else tuple(a % x.ndim for a in axes))
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in vals], axis=_attr(node, "axis"))
    if op == "Slice":
        return _slice(node, vals, opset)
    if op == "Reshape":
        return _reshape_const(x, vals[1], _attr(node, "allowzero", 0))
    if op == "Transpose":
        return np.transpose(x, _attr(node, "perm"))
    if op == "Flatten":
        axis = _attr(node, "axis", 1) % max(x.ndim, 1)
        return x.reshape(math.prod(x.shape[:axis]), -1)
    if op in ("ConstantOfShape", "Expand", "Range", "Tile"):
        _check_const_size(node, op, vals)
    if op == "ConstantOfShape":
        value = _attr(node, "value")
        fill = numpy_helper.to_array(value).ravel() if value is not None else np.zeros(1, np.float32)
        return np.full([int(v) for v in x], fill[0], dtype=fill.dtype)
    if op == "Expand":
        return x * np.ones([int(v) for v in vals[1]], dtype=x.dtype)
    if op == "Range":
        return np.arange(x, vals[1], vals[2]).astype(x.dtype)
    if op == "Where":
        return np.where(x, vals[1], vals[2])
    binary: dict[str, Callable] = {
        "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": _div, "Pow": np.power,
        "Equal": np.equal, "Less": np.less, "Greater": np.greater, "And": np.logical_and,
        "Or": np.logical_or, "Mod": np.mod,
    }
    if op in binary:
        out = binary[op](x, vals[1])
        return out.astype(x.dtype) if op in ("Add", "Sub", "Mul", "Pow") else out
    unary: dict[str, Callable] = {
        "Neg": np.negative, "Sqrt": np.sqrt, "Reciprocal": np.reciprocal, "Abs": np.abs,
        "Floor": np.floor, "Ceil": np.ceil, "Not": np.logical_not, "Exp": np.exp, "Erf": None,
        "Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Relu": lambda v: np.maximum(v, 0),
    }
    if op in unary and unary[op] is not None:
        return unary[op](x).astype(x.dtype)
    if op in ("Min", "Max", "Sum"):
        fn = {"Min": np.minimum, "Max": np.maximum, "Sum": np.add}[op]
        out = vals[0]
        for v in vals[1:]:
            out = fn(out, v)
        return out
    raise KeyError(op)


CONST_OPS = frozenset(
    "Identity Cast Shape Size Gather Unsqueeze Squeeze Concat Slice Reshape Transpose Flatten "
    "ConstantOfShape Expand Range Where Add Sub Mul Div Pow Equal Less Greater And Or Mod Neg "
    "Sqrt Reciprocal Abs Floor Ceil Not Exp Sigmoid Relu Min Max Sum".split()
)

SUPPORTED = sorted([
    "Conv", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization", "Relu", "Clip", "Sigmoid", "Gelu",
    "Erf (GELU pattern)", "Mul", "Div", "Add", "Sub", "Sum", "Concat", "MaxPool", "AveragePool",
    "GlobalAveragePool", "Flatten", "Reshape", "Transpose", "Softmax", "Identity", "Dropout",
    "Pad (zero, before Conv/AveragePool)", "ReduceMean (axes 2, 3)", "Unsqueeze", "Squeeze", "Constant",
    "Shape", "Gather", "Slice", "Cast", "ConstantOfShape (on constants)",
])


# ----------------------------------------------------------------------------- the importer


class _Importer:
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
    def _conv_pads(self, n, src: str, kernel: tuple[int, int], stride, dilation) -> tuple[int, int, int, int]:
        auto = _attr(n, "auto_pad", "NOTSET")
        if auto in ("NOTSET", ""):
            pads = _attr(n, "pads", [0, 0, 0, 0])
            if len(pads) != 4:
                raise self._err(n, f"expected 2-D pads, found {pads}")
            return tuple(int(p) for p in pads)  # [top, left, bottom, right] = ONNX [x1_b, x2_b, x1_e, x2_e]
        if auto == "VALID":
            return (0, 0, 0, 0)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            h, w = self.shape[src][0][2:4]
            pads = []
            for size, k, s, d in zip((h, w), kernel, stride, dilation):
                total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
                small = total // 2
                pads.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
            return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
        raise self._err(n, f"auto_pad '{auto}' is not supported")

    def _padded_input(self, n) -> tuple[str, tuple[int, int, int, int]]:
        t = n.input[0]
        if t in self.pending_pad:
            src, pads = self.pending_pad[t]
            return src, pads
        return self._act_in(n, 0), (0, 0, 0, 0)

    def _op_Conv(self, n) -> None:
        src, extra = self._padded_input(n)
        w = self._param(n, 1)
        b = self._param(n, 2, required=False)
        if w.ndim != 4:
            raise self._err(n, f"only 2-D convolutions are supported (weight shape {w.shape})")
        kernel = tuple(int(k) for k in w.shape[2:])
        if tuple(_attr(n, "kernel_shape", kernel)) != kernel:
            raise self._err(n, f"kernel_shape {_attr(n, 'kernel_shape')} differs from the weight {w.shape}")
        stride = tuple(_attr(n, "strides", [1, 1]))
        dilation = tuple(_attr(n, "dilations", [1, 1]))
        pads = self._conv_pads(n, src, kernel, stride, dilation)
        pads = tuple(p + e for p, e in zip(pads, extra))
        params = {"weight": w}
        if b is not None:
            params["bias"] = b
        self._emit(n, "conv2d", [src], {
            "out_channels": int(w.shape[0]), "kernel": list(kernel), "stride": list(stride),
            "padding": list(pads), "dilation": list(dilation), "groups": int(_attr(n, "group", 1)),
            "bias": b is not None,
        }, params)

    def _op_Pad(self, n) -> None:
        src = self._act_in(n, 0)
        mode = _attr(n, "mode", "constant")
        if self.opset >= 11:
            pads = self._const_in(n, 1)
            value = self._const_in(n, 2, required=False)
            axes = self._const_in(n, 3, required=False)
        else:
            pads, value, axes = np.array(_attr(n, "pads")), np.array(_attr(n, "value", 0.0)), None
        rank = len(self.shape[src][0])
        pads = [int(p) for p in np.ravel(pads)]
        if axes is not None:
            full = [0] * (2 * rank)
            ax = [int(a) % rank for a in np.ravel(axes)]
            for i, a in enumerate(ax):
                full[a], full[a + rank] = pads[i], pads[i + len(ax)]
            pads = full
        if mode != "constant" or (value is not None and np.any(np.asarray(value) != 0)):
            raise self._err(n, f"only zero padding is supported (mode {mode!r}, value {value})")
        if rank != 4 or pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
            raise self._err(n, f"only non-negative padding of H and W of a 4-D tensor is supported (pads {pads})")
        out = n.output[0]
        cons = self.consumers.get(out, [])
        if out in self.outputs or not cons or any(
            c.op_type not in ("Conv", "AveragePool") or c.input[0] != out for c in cons
        ):
            raise self._err(n, "Pad is supported only when it feeds Conv or AveragePool (it is folded into their padding)")
        self.pending_pad[out] = (src, (pads[2], pads[3], pads[6], pads[7]))

    def _pool_attrs(self, n, src: str) -> dict:
        kernel = tuple(_attr(n, "kernel_shape"))
        if len(kernel) != 2:
            raise self._err(n, f"only 2-D pooling is supported (kernel_shape {kernel})")
        stride = tuple(_attr(n, "strides", [1, 1]))
        if tuple(_attr(n, "dilations", [1, 1])) != (1, 1):
            raise self._err(n, f"pooling dilations {_attr(n, 'dilations')} are not supported")
        pads = self._conv_pads(n, src, kernel, stride, (1, 1))
        return {"kernel": list(kernel), "stride": list(stride), "padding": list(pads),
                "ceil_mode": bool(_attr(n, "ceil_mode", 0))}

    def _op_MaxPool(self, n) -> None:
        self._unused_extra_outputs(n, "indices")
        src = self._act_in(n, 0)
        self._emit(n, "maxpool", [src], self._pool_attrs(n, src))

    def _op_AveragePool(self, n) -> None:
        src, extra = self._padded_input(n)
        attrs = self._pool_attrs(n, src)
        attrs["count_include_pad"] = bool(_attr(n, "count_include_pad", 0))
        if any(extra):
            if attrs["ceil_mode"]:
                raise self._err(n, "a Pad in front of an AveragePool with ceil_mode=1 is not supported")
            if any(attrs["padding"]) and not attrs["count_include_pad"]:
                raise self._err(n, "a Pad in front of an AveragePool with pads and count_include_pad=0 is not supported")
            attrs["padding"] = [p + e for p, e in zip(attrs["padding"], extra)]
            attrs["count_include_pad"] = True  # the Pad's zeros are real input values
        self._emit(n, "avgpool", [src], attrs)

    def _op_GlobalAveragePool(self, n) -> None:
        self._emit(n, "globalavgpool", [self._act_in(n, 0)])

    def _op_BatchNormalization(self, n) -> None:
        if _attr(n, "training_mode", 0):
            raise self._err(n, "training_mode=1 is not supported (export the model in eval mode)")
        self._unused_extra_outputs(n, "running statistics")
        src = self._act_in(n, 0)
        params = {k: self._param(n, i) for i, k in enumerate(("gamma", "beta", "mean", "var"), start=1)}
        self._emit(n, "batchnorm", [src], {"eps": float(_attr(n, "epsilon", 1e-5))}, params)

    def _op_LayerNormalization(self, n) -> None:
        self._unused_extra_outputs(n, "mean / inverse std")
        src = self._act_in(n, 0)
        rank = len(self.shape[src][0])
        if self._axis(n, "axis", rank, -1) != rank - 1:
            raise self._err(n, f"only normalisation over the last axis is supported (axis {_attr(n, 'axis')})")
        gamma = self._param(n, 1)
        beta = self._param(n, 2, required=False)
        d = self.shape[src][0][-1]
        gamma = np.broadcast_to(gamma, (d,)).astype(np.float32)
        beta = np.zeros(d, np.float32) if beta is None else np.broadcast_to(beta, (d,)).astype(np.float32)
        self._emit(n, "layernorm", [src], {"eps": float(_attr(n, "epsilon", 1e-5))}, {"gamma": gamma, "beta": beta})

    def _op_Relu(self, n) -> None:
        self._emit(n, "relu", [self._act_in(n, 0)])

    def _op_Sigmoid(self, n) -> None:
        self._emit(n, "sigmoid", [self._act_in(n, 0)])

    def _op_Gelu(self, n) -> None:
        if _attr(n, "approximate", "none") != "none":
            raise self._err(n, f"approximate='{_attr(n, 'approximate')}' is not supported; accelsim's gelu is the exact erf form")
        self._emit(n, "gelu", [self._act_in(n, 0)])

    def _op_Clip(self, n) -> None:
        src = self._act_in(n, 0)
        if self.opset >= 11:
            lo, hi = self._const_in(n, 1, required=False), self._const_in(n, 2, required=False)
        else:
            lo, hi = _attr(n, "min"), _attr(n, "max")
        lo = -math.inf if lo is None else float(np.ravel(lo)[0])
        hi = math.inf if hi is None else float(np.ravel(hi)[0])
        if lo == 0 and hi == 6:
            self._emit(n, "relu6", [src])
        elif lo == 0 and hi == math.inf:
            self._emit(n, "relu", [src])
        else:
            raise self._err(n, f"Clip to [{lo}, {hi}] is not supported (only [0, 6] as relu6 and [0, inf) as relu)")

    def _op_Softmax(self, n) -> None:
        src = self._act_in(n, 0)
        rank = len(self.shape[src][0])
        axis = self._axis(n, "axis", rank, -1 if self.opset >= 13 else 1)
        if self.opset < 13 and axis != rank - 1:
            raise self._err(n, f"opset {self.opset} Softmax over axes {axis}.. (flattened) is only supported on the last axis")
        self._emit(n, "softmax", [src], {"axis": int(axis)})

    def _bypass(self, n) -> None:
        src = self._act_in(n, 0)
        out = n.output[0]
        if out in self.outputs and self.by_name[src].op == "input":
            self._emit(n, "identity", [src])  # an output must be a layer, not the input
        else:
            self._alias(out, n.input[0])

    _op_Identity = _bypass

    def _op_Dropout(self, n) -> None:
        self._unused_extra_outputs(n, "mask")
        self._bypass(n)

    def _op_Flatten(self, n) -> None:
        src = self._act_in(n, 0)
        rank = len(self.shape[src][0])
        axis = self._axis(n, "axis", rank, 1, allow_end=True)
        self._emit(n, "flatten", [src], {"axis": axis})

    def _op_Transpose(self, n) -> None:
        src = self._act_in(n, 0)
        rank = len(self.shape[src][0])
        perm = _attr(n, "perm", list(range(rank))[::-1])
        self._emit(n, "transpose", [src], {"perm": list(perm)})

    def _op_Concat(self, n) -> None:
        srcs = [self._act_in(n, i) for i in range(len(n.input))]
        rank = len(self.shape[srcs[0]][0])
        self._emit(n, "concat", srcs, {"axis": self._axis(n, "axis", rank)})

    def _op_Reshape(self, n) -> None:
        src = self._act_in(n, 0)
        if self.opset < 5:
            raise self._err(n, "Reshape with a shape attribute (opset < 5) is not supported")
        if n.input[1] not in self.const:
            raise self._err(n, "the target shape must be computable at import time")
        t1, t2 = ([int(v) for v in np.ravel(t)] for t in self.const[n.input[1]])
        if _attr(n, "allowzero", 0) and (0 in t1 or 0 in t2):
            raise self._err(n, "allowzero=1 with a zero in the target shape is not supported")
        self._emit_reshape(n, src, t1, t2)

    def _emit_reshape(self, n, src: str, t1: list[int], t2: list[int], name: str | None = None,
                      out: str | None = None) -> None:
        """A reshape to ONNX targets t1, t2 (at the two probe batches), made batch-independent."""
        s1, s2 = self.shape[src]
        if len(t1) != len(t2):
            raise self._err(n, "the rank of the target shape depends on the batch size")
        batch_in = s1[0] == PROBES[0] and s2[0] == PROBES[1]
        target: list[int | None] = []
        for i, (a, b) in enumerate(zip(t1, t2)):
            if a != b:
                target.append(None)
            elif i == 0 and batch_in and self.fixed_batch is not None and a == self.fixed_batch:
                target.append(0)  # a batch the exporter folded into a literal
            else:
                target.append(a)
        for i, v in enumerate(target):
            if v is not None:
                continue
            if i == 0 and batch_in and (t1[0], t2[0]) == PROBES:
                target[0] = 0
            elif -1 not in target and target.count(None) == 1:
                target[i] = -1
            else:
                raise self._err(n, f"target shape {t1} depends on the batch size in a way accelsim cannot represent")
        node = self._emit(n, "reshape", [src], {"shape": target}, name=name, out=out)
        for k, (s, t) in enumerate(((s1, t1), (s2, t2))):  # cross-check against ONNX semantics
            t = [s[0]] + t[1:] if target[0] == 0 and t[0] != 0 else t  # the probe batch for a literal one
            resolved = [s[i] if v == 0 else v for i, v in enumerate(t)]
            if -1 in resolved:
                known = math.prod(v for v in resolved if v != -1)
                resolved[resolved.index(-1)] = math.prod(s) // known if known else -1
            if self.shape[node.name][k] != tuple(resolved) or math.prod(resolved) != math.prod(s):
                raise self._err(n, f"target shape {t} could not be made batch-independent")

    def _op_Unsqueeze(self, n) -> None:
        src = self._act_in(n, 0)
        axes = self._const_in(n, 1) if self.opset >= 13 else _attr(n, "axes")
        targets = []
        for s in self.shape[src]:
            rank = len(s) + len(np.ravel(axes))
            t = list(s)
            for a in sorted(int(a) % rank for a in np.ravel(axes)):
                t.insert(a, 1)
            targets.append(t)
        self._emit_reshape(n, src, *targets)

    def _op_Squeeze(self, n) -> None:
        src = self._act_in(n, 0)
        axes = self._const_in(n, 1, required=False) if self.opset >= 13 else _attr(n, "axes")
        targets = []
        for s in self.shape[src]:
            drop = {i for i, d in enumerate(s) if d == 1} if axes is None else {int(a) % len(s) for a in np.ravel(axes)}
            if any(s[i] != 1 for i in drop):
                raise self._err(n, f"cannot squeeze axes {sorted(drop)} of shape {s}")
            targets.append([d for i, d in enumerate(s) if i not in drop])
        self._emit_reshape(n, src, *targets)

    def _op_ReduceMean(self, n) -> None:
        """Mean over H and W (torch's x.mean((2, 3))) is a global average pool."""
        src = self._act_in(n, 0)
        axes = self._const_in(n, 1, required=False) if self.opset >= 18 else _attr(n, "axes")
        rank = len(self.shape[src][0])
        if rank != 4 or axes is None or sorted(int(a) % rank for a in np.ravel(axes)) != [2, 3]:
            raise self._err(n, f"only a mean over axes (2, 3) of a 4-D tensor is supported (axes {axes})")
        if _attr(n, "keepdims", 1):
            self._emit(n, "globalavgpool", [src])
            return
        pooled = f"{n.output[0]}::pooled"
        self._emit(n, "globalavgpool", [src], out=pooled)
        t1, t2 = ([s[0], s[1]] for s in self.shape[src])
        self._emit_reshape(n, self.act[pooled], t1, t2, name=f"{n.name or n.output[0]}/squeeze")

    # arithmetic
    def _split_const(self, n) -> tuple[int, str, np.ndarray] | None:
        """For a binary op: (activation index, activation tensor, constant) if exactly one is constant."""
        a, b = n.input[0], n.input[1]
        if a in self.const and b not in self.const:
            return 1, b, self._param(n, 0)
        if b in self.const and a not in self.const:
            return 0, a, self._param(n, 1)
        return None

    def _op_Add(self, n, sign: float = 1.0) -> None:
        split = self._split_const(n)
        if split is None:
            if sign < 0:
                raise self._err(n, "subtracting two tensors is not supported")
            srcs = [self._act_in(n, 0), self._act_in(n, 1)]
            self._emit(n, "add", srcs)
            return
        idx, tensor, c = split
        if sign < 0 and idx == 1:
            raise self._err(n, "a constant minus a tensor is not supported")
        self._act_in(n, idx)
        self._fold_bias(n, tensor, sign * c)

    def _op_Sub(self, n) -> None:
        self._op_Add(n, sign=-1.0)

    def _op_Sum(self, n) -> None:
        if len(n.input) == 1:
            self._bypass(n)
            return
        self._emit(n, "add", [self._act_in(n, i) for i in range(len(n.input))])

    def _fold_bias(self, n, tensor: str, c: np.ndarray) -> None:
        name = self.act[tensor]
        node = self.by_name[name]
        if node.op not in ("conv2d", "linear") or self.refs[name] != 1:
            why = "it is not a conv or linear" if node.op not in ("conv2d", "linear") else "its output has other uses"
            raise self._err(
                n, f"adding a constant to the output of '{name}' ({node.op}) is not supported: "
                f"it can only be folded into a conv/linear bias, and {why}"
            )
        out_shape = self.shape[name][0]
        channels = node.attrs["out_channels"] if node.op == "conv2d" else node.attrs["out_features"]
        axis = 1 if node.op == "conv2d" else len(out_shape) - 1
        padded = (1,) * (len(out_shape) - c.ndim) + c.shape
        ok = len(padded) == len(out_shape) and all(
            d == 1 or (i == axis and d == channels) for i, d in enumerate(padded)
        )
        if not ok:
            raise self._err(n, f"constant of shape {c.shape} is not a per-channel bias for '{name}' (output {out_shape})")
        vec = np.broadcast_to(c.reshape(-1) if c.size == channels else c.reshape(()), (channels,)).astype(np.float32)
        old = node.params.get("bias") if node.attrs.get("bias") else None
        node.params["bias"] = vec.copy() if old is None else (old + vec).astype(np.float32)
        node.attrs["bias"] = True
        self._alias(n.output[0], tensor)

    def _op_Mul(self, n, divide: bool = False) -> None:
        split = self._split_const(n)
        if split is None:
            raise self._err(n, "multiplying two tensors is not supported (only x*sigmoid(x) as SiLU and the erf GELU pattern)")
        idx, tensor, c = split
        if divide:
            if idx == 1:
                raise self._err(n, "dividing a constant by a tensor is not supported")
            c = (1.0 / c).astype(np.float32)
        src = self._act_in(n, idx)
        for s in self.shape[src]:
            try:
                fits = np.broadcast_shapes(c.shape, s) == s
            except ValueError:
                fits = False
            if not fits:
                raise self._err(n, f"constant of shape {c.shape} does not broadcast onto the tensor {s}")
        self._emit(n, "mul", [src], params={"value": c})

    def _op_Div(self, n) -> None:
        self._op_Mul(n, divide=True)

    def _op_Gemm(self, n) -> None:
        src = self._act_in(n, 0)
        if _attr(n, "transA", 0):
            raise self._err(n, "transA=1 is not supported")
        w = self._param(n, 1)
        if w.ndim != 2:
            raise self._err(n, f"weight must be 2-D, found {w.shape}")
        w = w if _attr(n, "transB", 0) else w.T
        w = (np.float32(_attr(n, "alpha", 1.0)) * w).astype(np.float32)
        out_f = int(w.shape[0])
        c = self._param(n, 2, required=False)
        params = {"weight": np.ascontiguousarray(w)}
        if c is not None:
            if c.size not in (1, out_f) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
                raise self._err(n, f"bias C of shape {c.shape} is not a per-output vector of length {out_f}")
            c = np.broadcast_to(c.reshape(-1) if c.size == out_f else c.reshape(()), (out_f,))
            params["bias"] = (np.float32(_attr(n, "beta", 1.0)) * c).astype(np.float32)
        self._emit(n, "linear", [src], {"out_features": out_f, "bias": c is not None}, params)

    def _op_MatMul(self, n) -> None:
        a, b = n.input
        if a in self.const:
            raise self._err(n, "a constant left operand is not supported")
        if b in self.const:
            w = self._param(n, 1)
            if w.ndim != 2:
                raise self._err(n, f"a constant right operand must be 2-D (a linear weight), found {w.shape}")
            src = self._act_in(n, 0)
            self._emit(n, "linear", [src], {"out_features": int(w.shape[1]), "bias": False},
                       {"weight": np.ascontiguousarray(w.T)})
            return
        self._emit(n, "matmul", [self._act_in(n, 0), self._act_in(n, 1)])
