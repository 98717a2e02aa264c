"""ONNX import, part 1: reading the model (the `onnx` package, external data, bounds checked
before anything is allocated, tensors) and constant folding (the constant subgraphs an
exporter leaves: Shape, Gather, Concat, Cast, Slice, arithmetic, ... evaluated at import).
The importer (`accelsim.graph.onnx_import`) builds on it."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import GraphError, MissingExtraError


PROBES = (2, 3)  # two batch sizes: a value that differs between them depends on the batch


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise MissingExtraError("onnx", "onnx", "importing ONNX models") from None
    return onnx, numpy_helper


MAX_ONNX_BYTES = 2 * 1024**3  # protobuf's own limit
MAX_TENSOR_ELEMS = 2**31 - 1  # one initializer or folded constant
MAX_CONST_ELEMS = 2**25  # a constant computed at import (ConstantOfShape, Expand, Range, Tile)


def read_onnx_file(path: Path):
    """An ONNX file as a ModelProto (external data not loaded): one error line for a missing,
    oversized or undecodable file."""
    from ..errors import GraphError

    onnx, _ = _onnx()
    if not path.is_file():
        raise GraphError(f"{path}: expected an existing ONNX file; found no such file (file not found)")
    if path.stat().st_size > MAX_ONNX_BYTES:
        raise GraphError(f"{path}: expected an ONNX file of at most {MAX_ONNX_BYTES:,} bytes (larger "
                         f"weights belong in external data); found {path.stat().st_size:,} bytes")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have no common base class
        raise GraphError(f"{path}: expected an ONNX model; found a file protobuf cannot decode "
                         f"({_one_line(exc)}) (not a readable ONNX model)") from None


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


