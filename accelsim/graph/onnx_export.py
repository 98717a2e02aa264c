"""Graph -> ONNX, with the graph's current weights, so that a transformed (equalized,
quantized-then-dequantized) model can be inspected in other tools.

Every accelsim node becomes the ONNX node of the same name whose output tensor is also
named after it; ops with no single ONNX equivalent (silu, gelu before opset 20, linear with
a bias on a rank > 2 input) become a few nodes named so that `load_onnx` maps them back to
the same layers. The batch dimension is dynamic ("N").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import GraphError, MissingExtraError
from .ir import Graph

MIN_OPSET, MAX_OPSET = 13, 21


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise MissingExtraError("onnx", "onnx", "exporting ONNX models") from None
    return onnx, helper, numpy_helper


def to_onnx(graph: Graph, opset: int = 17):
    """The graph as an `onnx.ModelProto` (checked with onnx.checker)."""
    onnx, helper, numpy_helper = _onnx()
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise GraphError(f"save_onnx: opset must be in {MIN_OPSET}..{MAX_OPSET}, found {opset}")
    shapes = graph.shapes(1)
    nodes, inits = [], []
    where = graph.source or graph.name

    def const(name: str, value, dtype=np.float32) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(value, dtype=dtype)), name))
        return name

    def need(node, key: str) -> np.ndarray:
        arr = node.params.get(key)
        if arr is None:
            raise GraphError(f"{where}: layer '{node.name}' ({node.op}) has no '{key}': cannot export a shape-only graph")
        return arr

    for node in graph.nodes:
        if node.op == "input":
            continue
        name, a, ins = node.name, node.attrs, list(node.inputs)
        add = lambda op_type, inputs, out=name, node_name=name, **kw: nodes.append(  # noqa: E731
            helper.make_node(op_type, inputs, [out], name=node_name, **kw)
        )
        op = node.op
        if op == "conv2d":
            inputs = ins + [const(f"{name}.weight", need(node, "weight"))]
            if node.bias is not None:  # as in Graph.run: the parameter, when present, applies
                inputs.append(const(f"{name}.bias", node.bias))
            add("Conv", inputs, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                pads=list(a["padding"]), dilations=list(a["dilation"]), group=a["groups"])
        elif op == "linear":
            w = need(node, "weight")
            bias = node.bias
            if len(shapes[ins[0]]) == 2:
                inputs = ins + [const(f"{name}.weight", w)]
                if bias is not None:
                    inputs.append(const(f"{name}.bias", bias))
                add("Gemm", inputs, transB=1)
            elif bias is None:
                add("MatMul", ins + [const(f"{name}.weight_t", np.asarray(w).T)])
            else:  # MatMul (named after the layer) + Add: load_onnx folds the Add back into its bias
                add("MatMul", ins + [const(f"{name}.weight_t", np.asarray(w).T)], out=f"{name}/MatMul")
                add("Add", [f"{name}/MatMul", const(f"{name}.bias", bias)], node_name=f"{name}/Add")
        elif op == "matmul":
            add("MatMul", ins)
        elif op == "batchnorm":
            add("BatchNormalization", ins + [const(f"{name}.{k}", need(node, k)) for k in ("gamma", "beta", "mean", "var")],
                epsilon=float(a["eps"]))
        elif op == "layernorm":
            if opset < 17:
                raise GraphError(f"{where}: layer '{name}' (layernorm) needs opset >= 17 (LayerNormalization)")
            add("LayerNormalization", ins + [const(f"{name}.gamma", need(node, "gamma")), const(f"{name}.beta", need(node, "beta"))],
                axis=-1, epsilon=float(a["eps"]))
        elif op == "relu":
            add("Relu", ins)
        elif op == "relu6":
            add("Clip", ins + [const(f"{name}.min", 0.0), const(f"{name}.max", 6.0)])
        elif op == "sigmoid":
            add("Sigmoid", ins)
        elif op == "silu":
            add("Sigmoid", ins, out=f"{name}/Sigmoid", node_name=f"{name}/Sigmoid")
            add("Mul", [ins[0], f"{name}/Sigmoid"])
        elif op == "gelu":
            if opset >= 20:
                add("Gelu", ins)
            else:  # torch's decomposition, which load_onnx recognises
                p = name
                add("Div", [ins[0], const(f"{p}.sqrt2", np.sqrt(2.0))], out=f"{p}/Div", node_name=f"{p}/Div")
                add("Erf", [f"{p}/Div"], out=f"{p}/Erf", node_name=f"{p}/Erf")
                add("Add", [f"{p}/Erf", const(f"{p}.one", 1.0)], out=f"{p}/Add", node_name=f"{p}/Add")
                add("Mul", [ins[0], f"{p}/Add"], out=f"{p}/Mul", node_name=f"{p}/Mul")
                add("Mul", [f"{p}/Mul", const(f"{p}.half", 0.5)])
        elif op == "softmax":
            add("Softmax", ins, axis=a["axis"])
        elif op == "identity":
            add("Identity", ins)
        elif op == "add":
            add("Add" if len(ins) == 2 else "Sum", ins)
        elif op == "mul":
            add("Mul", ins + [const(f"{name}.value", need(node, "value"))])
        elif op == "concat":
            add("Concat", ins, axis=a["axis"])
        elif op in ("maxpool", "avgpool"):
            kw = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]), pads=list(a["padding"]),
                      ceil_mode=int(a["ceil_mode"]))
            if op == "avgpool":
                kw["count_include_pad"] = int(a["count_include_pad"])
            add("MaxPool" if op == "maxpool" else "AveragePool", ins, **kw)
        elif op == "globalavgpool":
            add("GlobalAveragePool", ins)
        elif op == "flatten":
            add("Flatten", ins, axis=a["axis"])
        elif op == "reshape":
            add("Reshape", ins + [const(f"{name}.shape", list(a["shape"]), np.int64)])
        elif op == "transpose":
            add("Transpose", ins, perm=list(a["perm"]))
        else:  # pragma: no cover - every op in ops.OPS is handled above
            raise GraphError(f"{where}: layer '{name}': op '{op}' cannot be exported to ONNX")

    def value_info(name: str, shape) -> object:
        return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["N", *shape[1:]])

    inputs = [value_info(n, shapes[n]) for n in graph.inputs]
    outputs = [value_info(n, shapes[n]) for n in graph.outputs]
    for n in graph.outputs:
        if n in graph.inputs:
            raise GraphError(f"{where}: output '{n}' is a graph input; ONNX needs a node in between")
    model = helper.make_model(
        helper.make_graph(nodes, graph.name, inputs, outputs, inits),
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="accelsim",
    )
    # the oldest IR version that holds this opset, so that older runtimes load the file
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    return model


def save_onnx(graph: Graph, path: str | Path, opset: int = 17) -> Path:
    """Write `graph` with its current weights as an ONNX file; returns the path."""
    onnx, _, _ = _onnx()
    model = to_onnx(graph, opset)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
