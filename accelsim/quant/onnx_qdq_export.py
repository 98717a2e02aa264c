"""QGraph -> QDQ ONNX: accelsim's integer model in the form other tools deploy.

The float graph of the QGraph's fake-quant reference is exported by
`graph.onnx_export.to_onnx` (every accelsim node an ONNX node of the same name, its output
tensor named after it), then quantized in place:

- **weights**: the integer codes as an int8 / uint8 initializer (int16 above 8 bits) with a
  DequantizeLinear (per-channel: axis 0 of the conv / Gemm weight, axis 1 of a transposed
  MatMul weight) in place of the float weight;
- **biases**: the int32 bias as stored, DequantizeLinear with scale s_w s_x (per channel),
  so that onnxruntime's QDQ fusion feeds it to its integer kernels unchanged;
- **activations**: a QuantizeLinear -> DequantizeLinear pair on every tensor on a grid: every
  activation site, and the outputs of ops that keep their input's grid (max pool, flatten,
  reshape, ...) with that same grid, as onnxruntime's own quantizer writes them, so that its
  optimiser finds a quantized op on both sides. A grid narrower than its storage type (e.g. 6
  bits in a uint8) gets a Clip to the grid's range in front of its QuantizeLinear, which is
  then exactly accelsim's clamp; a ReLU6 whose grid already clamps to [0, <= 6] is left to its
  QuantizeLinear (onnxruntime fuses Conv -> QuantizeLinear only without a Clip between) (int4 / uint4 storage is not used: onnxruntime 1.32's QDQ
  fusion rejects 4-bit activations). 16-bit grids use opset 21's int16 / uint16.
- **PowerQuant** grids (Yvinec et al. 2023) as explicit ONNX ops, no custom domain: an
  activation site is Add(c) -> Relu -> Pow(a) -> QuantizeLinear(s, 0) -> DequantizeLinear ->
  Pow(1/a) -> Sub(c) (T(x) = (x + c)^a, quantized uniformly in the power domain, and back);
  a weight is its power-domain codes -> DequantizeLinear -> sign(t) |t|^(1/a) (Sign, Abs,
  Pow, Mul). The bias stays float (PowerQuant's accumulator units depend on the datapath).

Rounding: onnxruntime's QuantizeLinear rounds half to even, accelsim half away from zero, and
onnxruntime's integer kernels requantize with a float multiplier where accelsim uses an
integer multiplier and shift; `tools/ort_agreement.py` measures what that does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AccelsimError, MissingExtraError
from .qgraph import QGraph, activation_sites
from .quantizers import QuantParams


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise MissingExtraError("onnx", "onnx", "exporting quantized ONNX models") from None
    return onnx, helper, numpy_helper


def _storage(q: QuantParams, activation: bool, where: str) -> tuple[np.dtype, int]:
    """(numpy dtype, minimum opset) holding the grid [qmin, qmax]."""
    lo, hi = int(q.qmin), int(q.qmax)
    # grids below 8 bits live in int8 / uint8 with a Clip to their range: onnxruntime's QDQ fusion
    # rejects int4 / uint4 activations (QLinearConv has no 4-bit input type), 8-bit storage it runs
    for dtype, opset in ((np.uint8, 13), (np.int8, 13), (np.uint16, 21), (np.int16, 21)):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype), opset
    raise AccelsimError(f"{where}: a {q.bits}-bit grid [{lo}, {hi}] has no QDQ storage type (int8 to int16)")


def to_qdq_onnx(qg: QGraph, opset: int | None = None):
    """The QGraph as a QDQ `onnx.ModelProto` (checked with onnx.checker). `opset`: default 17,
    or 21 where a 16-bit grid needs it."""
    onnx, helper, nh = _onnx()
    from ..graph.onnx_export import to_onnx

    if not qg.layers and not qg.activations:
        raise AccelsimError(f"{qg.name}: not quantized (recipe {getattr(qg.recipe, 'method', qg.recipe)}): "
                            "nothing to write as QDQ")
    g = qg.fake_quant_graph
    _, grid_of = activation_sites(g)
    grids: dict[str, QuantParams] = {}  # tensor -> the grid its Q/DQ pair uses
    for node in g.nodes:
        site = grid_of.get(node.name)
        if site is not None and site in qg.activations:
            grids[node.name] = qg.activations[site]
    need = 17
    for t, q in grids.items():
        need = max(need, _storage(q, True, f"{qg.name}: tensor '{t}'")[1])
    for name, lq in qg.layers.items():
        need = max(need, _storage(lq.weight_q, False, f"{qg.name}: layer '{name}'")[1])
    opset = need if opset is None else opset
    if opset < need:
        raise AccelsimError(f"{qg.name}: its grids need opset {need} (16-bit types); asked for {opset}")
    model = to_onnx(g, min(opset, 21))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_nodes: list = []
    new_inits: list = []

    def const(name: str, value, dtype) -> str:
        t = nh.from_array(np.ascontiguousarray(np.asarray(value).astype(dtype)), name)
        new_inits.append(t)
        return name

    def drop_init(name: str) -> None:
        if name in inits:
            graph.initializer.remove(inits.pop(name))

    # --- weights and biases
    for name, lq in qg.layers.items():
        wq = lq.weight_q
        w_name = f"{name}.weight" if f"{name}.weight" in inits else f"{name}.weight_t"
        transposed = w_name.endswith("_t")
        codes = np.asarray(lq.weight_int, np.int64)
        if transposed:
            codes = codes.T
        dtype, _ = _storage(wq, False, f"{qg.name}: layer '{name}'")
        axis = (1 if transposed else 0) if wq.per_channel else None
        drop_init(w_name)
        scale = np.asarray(wq.scale, np.float32)
        zp = np.asarray(wq.zero_point, np.int64)
        if wq.per_channel:
            zp = np.broadcast_to(zp, scale.shape)
        ins = [const(f"{name}.weight_quantized", codes, dtype), const(f"{name}.weight_scale", scale, np.float32),
               const(f"{name}.weight_zero_point", zp, dtype)]
        kw = {"axis": axis} if axis is not None else {}
        if wq.is_power:  # power-domain codes: w = sign(t) |t|^(1/a)
            t = f"{name}.weight_power"
            new_nodes.append(helper.make_node("DequantizeLinear", ins, [t], name=f"{name}.weight_DequantizeLinear", **kw))
            inv = const(f"{name}.weight_inv_power", np.asarray(1.0 / float(wq.power)), np.float32)
            new_nodes += [helper.make_node("Abs", [t], [f"{t}/abs"], name=f"{name}.weight_Abs"),
                          helper.make_node("Pow", [f"{t}/abs", inv], [f"{t}/pow"], name=f"{name}.weight_Pow"),
                          helper.make_node("Sign", [t], [f"{t}/sign"], name=f"{name}.weight_Sign"),
                          helper.make_node("Mul", [f"{t}/pow", f"{t}/sign"], [w_name], name=f"{name}.weight_Mul")]
        else:
            new_nodes.append(helper.make_node("DequantizeLinear", ins, [w_name], name=f"{name}.weight_DequantizeLinear",
                                              **kw))
        b_name = f"{name}.bias"
        if b_name in inits and not wq.is_power:
            drop_init(b_name)
            s_acc = np.broadcast_to(np.asarray(wq.scale, np.float64) * float(lq.input_q.scale),
                                    (len(codes) if not transposed else codes.shape[1],))
            b = np.asarray(lq.bias_int32, np.int64)
            new_nodes.append(helper.make_node(
                "DequantizeLinear",
                [const(f"{name}.bias_quantized", b, np.int32), const(f"{name}.bias_scale", s_acc, np.float32),
                 const(f"{name}.bias_zero_point", np.zeros(len(b)), np.int32)],
                [b_name], name=f"{name}.bias_DequantizeLinear", axis=0))

    # --- activations
    producer = {n.output[0]: n for n in graph.node}
    for t, q in grids.items():
        where = f"{qg.name}: tensor '{t}'"
        dtype, _ = _storage(q, True, where)
        if t in producer and _redundant_clip(producer[t], q, g):
            # Clip(0, 6) before a grid on [0, <= 6]: the QuantizeLinear's saturation is that clamp, and
            # onnxruntime fuses Conv -> QuantizeLinear into QLinearConv only without a Clip between them
            src, out = producer[t].input[0], t
            graph.node.remove(producer[t])
        elif t in producer:
            src = f"{t}/float"
            producer[t].output[0] = src
            out = t
        else:  # a graph input: its consumers read the dequantized copy
            src, out = t, f"{t}/dequantized"
            for n in graph.node:
                for i, x in enumerate(n.input):
                    if x == t:
                        n.input[i] = out
        scale = const(f"{t}/scale", np.asarray(q.scale, np.float32), np.float32)
        zp = const(f"{t}/zero_point", np.asarray(q.zero_point, np.int64), dtype)
        x = src
        if q.is_power:  # T(x) = relu(x + c)^a: the power domain, uniform there
            c = const(f"{t}/offset", np.asarray(q.offset), np.float32)
            a = const(f"{t}/power", np.asarray(q.power), np.float32)
            new_nodes += [helper.make_node("Add", [x, c], [f"{t}/shifted"], name=f"{t}/Add"),
                          helper.make_node("Relu", [f"{t}/shifted"], [f"{t}/nonneg"], name=f"{t}/Relu"),
                          helper.make_node("Pow", [f"{t}/nonneg", a], [f"{t}/power_domain"], name=f"{t}/Pow")]
            x = f"{t}/power_domain"
        elif (q.qmin, q.qmax) != _range(dtype):
            lo = const(f"{t}/clip_lo", np.asarray(float(q.range_lo)), np.float32)
            hi = const(f"{t}/clip_hi", np.asarray(float(q.range_hi)), np.float32)
            new_nodes.append(helper.make_node("Clip", [x, lo, hi], [f"{t}/clipped"], name=f"{t}/Clip"))
            x = f"{t}/clipped"
        dq_out = f"{t}/power_dequantized" if q.is_power else out
        new_nodes += [helper.make_node("QuantizeLinear", [x, scale, zp], [f"{t}/quantized"], name=f"{t}/QuantizeLinear"),
                      helper.make_node("DequantizeLinear", [f"{t}/quantized", scale, zp], [dq_out],
                                       name=f"{t}/DequantizeLinear")]
        if q.is_power:
            inv = const(f"{t}/inv_power", np.asarray(1.0 / float(q.power)), np.float32)
            c = f"{t}/offset"
            new_nodes += [helper.make_node("Pow", [dq_out, inv], [f"{t}/value_shifted"], name=f"{t}/Pow_inv"),
                          helper.make_node("Sub", [f"{t}/value_shifted", c], [out], name=f"{t}/Sub")]

    graph.initializer.extend(new_inits)
    nodes = list(graph.node) + new_nodes
    del graph.node[:]
    graph.node.extend(_topological(nodes, {i.name for i in graph.input} | {i.name for i in graph.initializer}))
    model.producer_name = "accelsim"
    model.doc_string = (f"accelsim QDQ export of {qg.name} ({getattr(qg.recipe, 'label', qg.recipe)}); "
                        "PowerQuant grids as explicit Pow nodes")
    onnx.checker.check_model(model, full_check=True)
    return model


def _redundant_clip(node, q: QuantParams, g) -> bool:
    """A relu6's Clip whose output grid already clamps to [0, <= 6] (zero-point at qmin)."""
    return (node.op_type == "Clip" and node.name in g and g[node.name].op == "relu6" and not q.is_power
            and int(q.zero_point) == q.qmin and float(q.range_hi) <= 6.0)


def _range(dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _topological(nodes: list, available: set[str]) -> list:
    """Nodes sorted so that each comes after the producers of its inputs (ONNX requires it)."""
    have = set(available) | {""}
    out, pending = [], list(nodes)
    while pending:
        rest = []
        for n in pending:
            if all(t in have for t in n.input):
                out.append(n)
                have.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):  # pragma: no cover - the export builds an acyclic graph
            raise AccelsimError(f"QDQ export: nodes {[n.name for n in rest[:3]]} have unproduced inputs")
        pending = rest
    return out


def save_qdq_onnx(qg: QGraph, path, opset: int | None = None) -> Path:
    """Write `qg` as a QDQ ONNX file, all or nothing; returns the path."""
    onnx, _, _ = _onnx()
    from ..files import write_atomic

    model = to_qdq_onnx(qg, opset)
    path = Path(path)
    write_atomic(path, lambda tmp: onnx.save(model, str(tmp)))
    return path


__all__ = ["save_qdq_onnx", "to_qdq_onnx"]
