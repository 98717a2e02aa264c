"""Quantized ONNX (QDQ and QOperator form) -> QGraph, without re-quantizing.

onnxruntime's quantizer, AIMET, NNCF and TensorRT ModelOpt export the QDQ form: a
QuantizeLinear / DequantizeLinear pair on every quantized activation, a DequantizeLinear on
every integer weight and bias. onnxruntime's QOperator form (QLinearConv, QLinearMatMul,
QGemm, QLinearAdd, QLinearGlobalAveragePool, QLinearConcat, ConvInteger / MatMulInteger after
a static QuantizeLinear) is first rewritten into the same annotations.

How a file becomes a QGraph:
  1. *strip*: every Q/DQ is removed and recorded: integer initializers behind a
     DequantizeLinear become float initializers (their dequantized values) with their integers,
     scales and zero-points kept (`_Const`) (a float weight behind a QuantizeLinear, as NNCF,
     ModelOpt and torch's fake-quant exports write it, gets the codes the runtime computes:
     ONNX's round half to even, saturated); a Q -> DQ pair on an activation is bypassed and its
     scale / zero-point recorded on the float tensor it quantizes. Integer-domain shape ops
     (Flatten, MaxPool, Reshape, ...) on quantized tensors carry their input's grid.
  2. the float model left is imported by `graph.onnx_import.load_onnx` (node names kept, so
     ONNX tensors map back onto accelsim layers);
  3. every accelsim activation site (`qgraph.activation_sites`) takes the grid recorded on its
     tensor, every conv / linear layer its stored integer weights and int32 bias, and the
     requantization multiplier and shift are derived from the stored scales.

Numbers are kept as stored, with one exact re-encoding: a signed int8 grid with a nonzero
zero-point (onnxruntime's default activations) becomes the unsigned grid accelsim's
datapath uses, codes + 128 and zero-point + 128, which represents the same values (likewise
int8 asymmetric weights). A per-channel activation grid, a weight quantized along its input
channels, a dynamic (run-time) activation scale and quantized ops with no integer form here
are errors naming the node.

`fit_to_hw(qg, hw)` checks the imported format against a datapath (bits, schemes,
granularity): an error naming the first layer it cannot run, or with ``nearest=True`` a
warning per change and the nearest format the hardware runs (weights and activations
re-quantized from their stored dequantized values by accelsim's own quantizers).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GraphError, MissingExtraError
from .qgraph import LayerQuant, QGraph, activation_sites, folded_bias, output_site, quantize_multiplier
from .quantizers import QuantParams, make_qparams, channel_minmax
from .recipe import Recipe
from .rounding import round_half_away

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
QOPERATOR_OPS = ("QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearGlobalAveragePool", "QLinearConcat",
                 "QGemm", "ConvInteger", "MatMulInteger")
#: quantized ops accelsim recognises but cannot run in integers (named in the error)
UNSUPPORTED_QUANT_OPS = ("QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "QLinearAveragePool",
                         "QLinearReduceMean", "QLinearWhere", "QAttention", "DynamicQuantizeLinear",
                         "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QLinearConvTranspose", "QOrderedMatMul",
                         "DequantizeLinearFixedPoint", "QuantizeBFP", "DequantizeBFP")
#: ops that move integer codes without changing values: their output carries the input's grid
INT_DOMAIN_OPS = ("Flatten", "Reshape", "Transpose", "MaxPool", "Squeeze", "Unsqueeze", "Identity")


class QdqImportWarning(UserWarning):
    """Something in a quantized ONNX file that accelsim's datapath does differently (named)."""


class ImportedRecipe(Recipe):
    """The numeric format an imported quantized model uses, as a recipe the hardware checks
    (method ``naive``: no accelsim transform ran; the fields are what the file stores)."""

    @property
    def label(self) -> str:
        return f"imported W{self.weight_bits}A{self.activation_bits}"


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise MissingExtraError("onnx", "onnx", "importing quantized ONNX models") from None
    return onnx, helper, numpy_helper


# ----------------------------------------------------------------------------- detection


def _quant_op_types(model) -> set[str]:
    return {n.op_type for n in model.graph.node
            if n.op_type in QDQ_OPS + QOPERATOR_OPS + UNSUPPORTED_QUANT_OPS}


def is_quantized_onnx(path) -> bool:
    """True when `path` is an ONNX file with quantized nodes (Q/DQ, QLinear*, *Integer). Never raises."""
    try:
        p = Path(str(path))
        if p.suffix.lower() != ".onnx" or not p.is_file():
            return False
        onnx, _, _ = _onnx()
        model = onnx.load(str(p), load_external_data=False)
        return bool(_quant_op_types(model))
    except Exception:  # noqa: BLE001 - a probe: anything unreadable is left to the float importer's errors
        return False


# ----------------------------------------------------------------------------- grids


_ELEM = {}  # ONNX elem type -> (bits, signed), filled on first use


def _elem_info(elem: int) -> tuple[int, bool] | None:
    if not _ELEM:
        onnx, _, _ = _onnx()
        T = onnx.TensorProto
        _ELEM.update({T.INT8: (8, True), T.UINT8: (8, False), T.INT16: (16, True), T.UINT16: (16, False),
                      T.INT32: (32, True)})
        for name, info in (("INT4", (4, True)), ("UINT4", (4, False))):
            if hasattr(T, name):
                _ELEM[getattr(T, name)] = info
    return _ELEM.get(elem)


@dataclass
class _Grid:
    """A stored quantizer: scale, zero-point, storage type, axis (None: per tensor)."""

    scale: np.ndarray      # float64
    zero_point: np.ndarray  # int64, scale's shape
    bits: int
    signed: bool
    axis: int | None

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    def same(self, other: "_Grid") -> bool:
        return (self.bits == other.bits and self.signed == other.signed and self.scale.shape == other.scale.shape
                and np.array_equal(self.scale, other.scale) and np.array_equal(self.zero_point, other.zero_point))

    def quant_params(self, codes: np.ndarray | None = None) -> tuple[QuantParams, np.ndarray | None]:
        """(QuantParams on accelsim's grid, codes re-encoded): a signed grid with a nonzero
        zero-point moves to the unsigned one (codes and zero-point + 2^(b-1)): the same values."""
        zp = self.zero_point.astype(np.int64)
        qmin, qmax = self.qmin, self.qmax
        if self.signed and np.any(zp != 0):
            off = 2 ** (self.bits - 1)
            zp, qmin, qmax = zp + off, 0, 2**self.bits - 1
            codes = None if codes is None else np.asarray(codes, np.int64) + off
        scheme = "asymmetric" if np.any(zp != 0) else "symmetric"
        q = QuantParams(self.bits, scheme, np.asarray(self.scale, np.float64), np.asarray(zp, np.int64), qmin, qmax,
                        self.axis)
        return q, codes


@dataclass
class _Const:
    """An integer initializer behind a DequantizeLinear: its codes and grid."""

    codes: np.ndarray
    grid: _Grid
    node: str  # the DequantizeLinear's name, for errors


# ----------------------------------------------------------------------------- step 1: strip


class _Stripper:
    """Removes Q/DQ (rewriting QOperator nodes first), records the grids, returns a float model."""

    def __init__(self, model, where: str):
        self.onnx, self.helper, self.nh = _onnx()
        self.model, self.where = model, where
        g = model.graph
        self.init = {i.name: i for i in g.initializer}
        self.literal: dict[str, np.ndarray] = {}
        for n in g.node:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                for a in n.attribute:
                    if a.name == "value":
                        self.literal[n.output[0]] = self.nh.to_array(a.t)
        self.inputs = {i.name for i in g.input if i.name not in self.init}
        self.consumers: dict[str, list] = {}
        for n in g.node:
            for t in n.input:
                self.consumers.setdefault(t, []).append(n)
        self.subst: dict[str, str] = {}             # tensor -> the float tensor it now reads
        self.int_of: dict[str, tuple[str, _Grid]] = {}  # integer tensor -> (float tensor, its grid)
        self.act: dict[str, _Grid] = {}              # float tensor -> its activation grid
        self.consts: dict[str, _Const] = {}          # float initializer -> integers behind it
        self.nodes: list = []
        self.new_inits: list = []
        self.float_inputs: set[str] = set()
        self.dropped: set[str] = set()  # node names already consumed by a pattern
        self.names: set[str] = set()
        self.form: set[str] = set()
        self.emitted: set[str] = set()  # names of the nodes written so far
        self.const_grid: dict[str, _Grid] = {}  # weight codes made by a QuantizeLinear of a float constant
        self.restored: list[str] = []  # ReLU / ReLU6 put back (`_restore_activations`)

    # -------------------------------------------------------------- helpers
    def err(self, n, msg: str) -> GraphError:
        label = f"node '{n.name}' ({n.op_type})" if n.name else f"a {n.op_type} node (output '{n.output[0]}')"
        return GraphError(f"{self.where}: {label}: {msg}")

    def const(self, t: str) -> np.ndarray | None:
        if t in self.init:
            return self.nh.to_array(self.init[t])
        return self.literal.get(t)

    def elem(self, t: str) -> int | None:
        if t in self.init:
            return self.init[t].data_type
        return None

    def attr(self, n, name: str, default=None):
        for a in n.attribute:
            if a.name == name:
                return self.helper.get_attribute_value(a)
        return default

    def grid(self, n, scale_t: str | None, zp_t: str | None, data_elem: int | None = None,
             axis_default: int = 1, rank: int | None = None) -> _Grid:
        """The grid of (scale, zero-point) inputs of node n, checked."""
        if not scale_t:
            raise self.err(n, "no scale (input 'x_scale' is missing): a quantizer needs one")
        scale = self.const(scale_t)
        if scale is None:
            raise self.err(n, f"scale '{scale_t}' is not a constant: accelsim needs static quantization "
                              "(a scale computed at run time is dynamic quantization)")
        scale = np.asarray(scale, np.float64)
        if zp_t:
            zp = self.const(zp_t)
            if zp is None:
                raise self.err(n, f"zero-point '{zp_t}' is not a constant")
            elem = self.elem(zp_t)
            if elem is None:
                elem = self._elem_of_array(zp)
        else:
            zp = np.zeros(scale.shape, np.int64)
            elem = data_elem if data_elem is not None else self.onnx.TensorProto.UINT8  # ONNX's default: uint8
        info = _elem_info(elem)
        if info is None or info[0] == 32 and n.op_type == "QuantizeLinear":
            raise self.err(n, f"zero-point type {self.onnx.TensorProto.DataType.Name(elem)}: expected int8, uint8, "
                              "int16, uint16, int4 or uint4")
        zp = np.asarray(zp, np.int64)
        if zp.size == 1 and scale.size == 1:  # () beside (1,): one quantizer either way (onnxruntime writes it)
            zp, scale = zp.reshape(()), scale.reshape(())
        if zp.shape != scale.shape:
            raise self.err(n, f"zero-point shape {tuple(zp.shape)} does not match scale shape {tuple(scale.shape)}")
        if scale.ndim > 1:
            raise self.err(n, f"scale of shape {tuple(scale.shape)}: expected a scalar or a 1-D per-channel scale "
                              "(blocked quantization is not supported)")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise self.err(n, "scale must be positive and finite")
        axis = None
        if scale.ndim == 1 and scale.size > 1:
            axis = int(self.attr(n, "axis", axis_default))
            if rank is not None and axis < 0:
                axis += rank
        elif scale.ndim == 1:  # a one-element 1-D scale is per tensor
            scale, zp = scale.reshape(()), zp.reshape(())
        return _Grid(scale, zp, info[0], info[1], axis)

    def _elem_of_array(self, a: np.ndarray) -> int:
        T = self.onnx.TensorProto
        return {np.dtype(np.int8): T.INT8, np.dtype(np.uint8): T.UINT8, np.dtype(np.int16): T.INT16,
                np.dtype(np.uint16): T.UINT16, np.dtype(np.int32): T.INT32}.get(np.asarray(a).dtype, T.UINT8)

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def emit(self, op_type: str, inputs: list[str], outputs: list[str], name: str, attrs=None, domain: str = ""):
        if name and name not in self.emitted:  # the node it replaces keeps its name
            node_name = name
        else:
            node_name = self.fresh(name or f"{op_type}_{outputs[0]}")
        self.emitted.add(node_name)
        node = self.helper.make_node(op_type, inputs, outputs, name=node_name, domain=domain or None)
        if attrs:
            node.attribute.extend(attrs)
        self.nodes.append(node)
        return node

    def float_const(self, name: str, value: np.ndarray) -> str:
        self.new_inits.append(self.nh.from_array(np.ascontiguousarray(value.astype(np.float32)), name))
        return name

    def read(self, t: str) -> str:
        return self.subst.get(t, t)

    def act_of(self, n, t: str, grid: _Grid) -> str:
        """The float tensor behind integer activation t (QOperator input), its grid checked."""
        if t in self.int_of:
            f, g = self.int_of[t]
            if not g.same(grid):
                raise self.err(n, f"input '{t}' is read with a scale / zero-point that differ from the ones it was "
                                  "quantized with")
            return f
        if t in self.inputs:  # an integer model input: the model now takes floats
            self.float_inputs.add(t)
            self.int_of[t] = (t, grid)
            self._record(n, t, grid)
            return t
        raise self.err(n, f"input '{t}' is not a quantized activation (no QuantizeLinear or quantized op produces it)")

    def _record(self, n, t: str, grid: _Grid) -> None:
        if grid.axis is not None:
            raise self.err(n, "per-channel activation quantization is not supported by accelsim's integer datapath "
                              "(one scale per activation tensor)")
        old = self.act.get(t)
        if old is not None and not old.same(grid):
            raise self.err(n, f"tensor '{t}' is quantized twice with different scales / zero-points")
        self.act[t] = grid

    def weight(self, n, w_t: str, s_t: str, z_t: str, axis: int, out_name: str) -> str:
        codes = self.const(w_t)
        if codes is None:
            raise self.err(n, f"weight '{w_t}' is not a constant")
        g = self.grid(n, s_t, z_t, self.elem(w_t), axis_default=axis, rank=codes.ndim)
        if g.axis is not None and g.scale.size == codes.shape[axis]:
            g.axis = axis
        return self._const_out(n, codes, g, out_name)

    def _const_out(self, n, codes: np.ndarray, g: _Grid, out_name: str) -> str:
        codes = np.asarray(codes, np.int64)
        if g.axis is not None and (g.axis >= codes.ndim or codes.shape[g.axis] != g.scale.size):
            raise self.err(n, f"per-channel scale of {g.scale.size} entries does not match axis {g.axis} of the "
                              f"integer tensor of shape {tuple(codes.shape)}")
        shape = [1] * codes.ndim
        if g.axis is not None:
            shape[g.axis] = -1
        values = (codes - g.zero_point.reshape(shape)) * g.scale.reshape(shape)
        name = self.float_const(out_name, values)
        self.consts[name] = _Const(codes, g, n.name)
        return name

    # -------------------------------------------------------------- main pass
    def run(self):
        for n in self.model.graph.node:
            if n.name:
                self.names.add(n.name)
        for n in self.model.graph.node:
            if n.op_type == "Constant" or id(n) in self.dropped:
                continue
            if n.op_type in UNSUPPORTED_QUANT_OPS:
                raise self.err(n, "this quantized op has no integer form in accelsim (supported: "
                                  f"{', '.join(QDQ_OPS + QOPERATOR_OPS)}, and float ops between Q/DQ pairs)")
            handler = getattr(self, f"_op_{n.op_type}", None)
            if n.op_type in INT_DOMAIN_OPS and n.domain in ("", "ai.onnx"):
                if not self._int_domain(n):
                    self._float_node(n)
            elif handler is not None and n.domain in ("", "ai.onnx", "com.microsoft"):
                handler(n)
            elif n.domain not in ("", "ai.onnx"):
                raise self.err(n, f"op of domain '{n.domain}' is not supported")
            else:
                self._float_node(n)
        return self._finish()

    def _float_node(self, n) -> None:
        ins = [self.read(t) for t in n.input]
        for t_old, t in zip(n.input, ins):
            if t in self.int_of and self.int_of[t][0] != t:
                raise self.err(n, f"reads the quantized tensor '{t_old}' without a DequantizeLinear")
        out = list(n.output)
        node = self.helper.make_node(n.op_type, ins, out, name=n.name or self.fresh(f"{n.op_type}_{out[0]}"))
        node.attribute.extend(n.attribute)
        self.names.add(node.name)
        self.nodes.append(node)

    def _int_domain(self, n) -> bool:
        """A shape op on an integer tensor: the same op on its float, the output on the same grid."""
        t = n.input[0] if n.input else ""
        if t not in self.int_of or self.int_of[t][0] == t and t not in self.float_inputs:
            return False
        f, g = self.int_of[t]
        out_f = f"{n.output[0]}/float"
        node = self.helper.make_node(n.op_type, [f] + [self.read(x) for x in n.input[1:]], [out_f],
                                     name=n.name or self.fresh(f"{n.op_type}_{n.output[0]}"))
        node.attribute.extend(n.attribute)
        self.names.add(node.name)
        self.nodes.append(node)
        self.int_of[n.output[0]] = (out_f, g)
        self._record(n, out_f, g)
        return True

    def _op_QuantizeLinear(self, n) -> None:
        self.form.add("QDQ")
        x = self.read(n.input[0])
        if x in self.int_of and self.int_of[x][0] != x:
            raise self.err(n, f"input '{n.input[0]}' is already quantized")
        w = self.const(n.input[0])
        if w is not None:  # a float weight quantized in the graph (NNCF, ModelOpt, torch fake-quant exports)
            w = np.asarray(w, np.float64)
            g = self.grid(n, n.input[1] if len(n.input) > 1 else None, n.input[2] if len(n.input) > 2 else None,
                          axis_default=1, rank=w.ndim)
            shape = [1] * w.ndim
            if g.axis is not None:
                shape[g.axis] = -1
            # what the runtime computes: ONNX QuantizeLinear rounds half to even and saturates
            codes = np.clip(np.rint(w / g.scale.reshape(shape)) + g.zero_point.reshape(shape), g.qmin, g.qmax)
            self.literal[n.output[0]] = codes.astype(np.int64)
            self.const_grid[n.output[0]] = g
            return
        g = self.grid(n, n.input[1] if len(n.input) > 1 else None, n.input[2] if len(n.input) > 2 else None)
        self._record(n, x, g)
        self.int_of[n.output[0]] = (x, g)

    def _op_DequantizeLinear(self, n) -> None:
        self.form.add("QDQ")
        q = n.input[0]
        scale_t = n.input[1] if len(n.input) > 1 else None
        zp_t = n.input[2] if len(n.input) > 2 else None
        codes = self.const(q)
        if codes is not None:  # a weight or a bias
            g = self.grid(n, scale_t, zp_t, self.elem(q), axis_default=1 if np.ndim(codes) > 1 else 0,
                          rank=np.ndim(codes))
            if q in self.const_grid and not self.const_grid[q].same(g):
                raise self.err(n, f"scale / zero-point differ from those of the QuantizeLinear that produced '{q}'")
            self._const_out(n, codes, g, n.output[0])
            return
        g = self.grid(n, scale_t, zp_t)
        if q in self.int_of:
            f, g0 = self.int_of[q]
            if not g0.same(g):
                raise self.err(n, f"scale / zero-point differ from those of the QuantizeLinear that produced '{q}'")
            self.subst[n.output[0]] = f
            return
        if q in self.inputs:
            self.float_inputs.add(q)
            self.int_of[q] = (q, g)
            self._record(n, q, g)
            self.subst[n.output[0]] = q
            return
        raise self.err(n, f"input '{q}' is neither an integer initializer nor produced by a QuantizeLinear")

    # -------------------------------------------------------------- QOperator nodes
    def _q_out(self, n, float_out: str, s_t: str, z_t: str) -> None:
        g = self.grid(n, s_t, z_t)
        self._record(n, float_out, g)
        self.int_of[n.output[0]] = (float_out, g)

    def _op_QLinearConv(self, n) -> None:
        self.form.add("QOperator")
        x, xs, xz, w, ws, wz, ys, yz = list(n.input[:8])
        xg = self.grid(n, xs, xz)
        xf = self.act_of(n, x, xg)
        wf = self.weight(n, w, ws, wz, 0, f"{n.name or n.output[0]}.weight")
        ins = [xf, wf]
        if len(n.input) > 8 and n.input[8]:
            ins.append(self._bias(n, n.input[8], xg, wf))
        out_f = f"{n.output[0]}/float"
        self.emit("Conv", ins, [out_f], n.name, list(n.attribute))
        self._q_out(n, out_f, ys, yz)

    def _bias(self, n, b_t: str, xg: _Grid, w_float: str) -> str:
        """A QOperator node's int32 bias, on the accumulator's grid s_x s_w (per channel)."""
        codes = self.const(b_t)
        if codes is None:
            raise self.err(n, f"bias '{b_t}' is not a constant")
        wc = self.consts[w_float].grid
        scale = np.broadcast_to(wc.scale * float(xg.scale), np.shape(codes)).astype(np.float64)
        g = _Grid(np.asarray(scale), np.zeros(scale.shape, np.int64), 32, True, 0 if scale.ndim else None)
        return self._const_out(n, codes, g, f"{b_t}/float")

    def _op_QLinearMatMul(self, n) -> None:
        self.form.add("QOperator")
        a, as_, az, b, bs, bz, ys, yz = list(n.input[:8])
        ag = self.grid(n, as_, az)
        af = self.act_of(n, a, ag)
        if self.const(b) is not None:
            bf = self.weight(n, b, bs, bz, 1, f"{n.name or n.output[0]}.weight")
        else:
            bf = self.act_of(n, b, self.grid(n, bs, bz))
        out_f = f"{n.output[0]}/float"
        self.emit("MatMul", [af, bf], [out_f], n.name)
        self._q_out(n, out_f, ys, yz)

    def _op_QGemm(self, n) -> None:
        self.form.add("QOperator")
        a, as_, az, b, bs, bz = list(n.input[:6])
        c = n.input[6] if len(n.input) > 6 else ""
        ag = self.grid(n, as_, az)
        af = self.act_of(n, a, ag)
        trans_b = int(self.attr(n, "transB", 0))
        bf = self.weight(n, b, bs, bz, 0 if trans_b else 1, f"{n.name or n.output[0]}.weight")
        ins = [af, bf]
        if c:
            ins.append(self._bias(n, c, ag, bf))
        quant_out = len(n.input) > 7 and n.input[7]
        out_f = f"{n.output[0]}/float" if quant_out else n.output[0]
        attrs = [self.helper.make_attribute(k, v) for k, v in (("transA", int(self.attr(n, "transA", 0))),
                                                                  ("transB", trans_b),
                                                                  ("alpha", float(self.attr(n, "alpha", 1.0))))]
        self.emit("Gemm", ins, [out_f], n.name, attrs)
        if quant_out:
            self._q_out(n, out_f, n.input[7], n.input[8] if len(n.input) > 8 else "")

    def _op_QLinearAdd(self, n) -> None:
        self.form.add("QOperator")
        a, as_, az, b, bs, bz, ys = list(n.input[:7])
        yz = n.input[7] if len(n.input) > 7 else ""
        af = self.act_of(n, a, self.grid(n, as_, az))
        bf = self.act_of(n, b, self.grid(n, bs, bz))
        out_f = f"{n.output[0]}/float"
        self.emit("Add", [af, bf], [out_f], n.name)
        self._q_out(n, out_f, ys, yz)

    def _op_QLinearGlobalAveragePool(self, n) -> None:
        self.form.add("QOperator")
        if int(self.attr(n, "channels_last", 0)):
            raise self.err(n, "channels_last=1 is not supported (accelsim is NCHW)")
        x, xs, xz, ys, yz = list(n.input[:5])
        xf = self.act_of(n, x, self.grid(n, xs, xz))
        out_f = f"{n.output[0]}/float"
        self.emit("GlobalAveragePool", [xf], [out_f], n.name)
        self._q_out(n, out_f, ys, yz)

    def _op_QLinearConcat(self, n) -> None:
        self.form.add("QOperator")
        ys, yz, *rest = list(n.input)
        if len(rest) % 3:
            raise self.err(n, "expected (tensor, scale, zero-point) triples after the output's scale and zero-point")
        ins = [self.act_of(n, rest[i], self.grid(n, rest[i + 1], rest[i + 2])) for i in range(0, len(rest), 3)]
        out_f = f"{n.output[0]}/float"
        self.emit("Concat", ins, [out_f], n.name, [self.helper.make_attribute("axis", int(self.attr(n, "axis", 1)))])
        self._q_out(n, out_f, ys, yz)

    def _integer_gemm(self, n, op: str) -> None:
        """ConvInteger / MatMulInteger after a static QuantizeLinear, followed by Cast(float) and
        Mul by a constant (s_x s_w): the float op, with s_w = constant / s_x."""
        self.form.add("QOperator")
        x, w = n.input[0], n.input[1]
        xz = n.input[2] if len(n.input) > 2 else ""
        wz = n.input[3] if len(n.input) > 3 else ""
        if x not in self.int_of:
            raise self.err(n, f"input '{x}' is not produced by a static QuantizeLinear (dynamic quantization "
                              "computes scales at run time; accelsim needs static scales)")
        xf, xg = self.int_of[x]
        if xz and not np.array_equal(np.asarray(self.const(xz), np.int64).reshape(()), xg.zero_point):
            raise self.err(n, "x_zero_point differs from the zero-point of the QuantizeLinear that produced its input")
        cast = self._only(n.output[0], "Cast")
        mul = self._only(cast.output[0], "Mul") if cast is not None else None
        scale = None
        if mul is not None:
            other = mul.input[1] if mul.input[0] == cast.output[0] else mul.input[0]
            scale = self.const(other)
        if scale is None:
            raise self.err(n, "expected its int32 output to be cast to float and multiplied by a constant scale "
                              "(s_x s_w)")
        scale = np.asarray(scale, np.float64).reshape(-1) / float(xg.scale)
        codes = self.const(w)
        if codes is None:
            raise self.err(n, f"weight '{w}' is not a constant")
        axis = 0 if op == "Conv" else 1
        zp = np.asarray(self.const(wz), np.int64) if wz else np.zeros(scale.shape, np.int64)
        if scale.size == 1:
            scale, zp = scale.reshape(()), zp.reshape(())
        elif zp.size == 1:
            zp = np.broadcast_to(zp.reshape(()), scale.shape).copy()
        info = _elem_info(self.elem(w) or self._elem_of_array(codes))
        g = _Grid(scale, zp.reshape(scale.shape), info[0], info[1], None if scale.ndim == 0 else axis)
        wf = self._const_out(n, codes, g, f"{n.name or n.output[0]}.weight")
        attrs = list(n.attribute) if op == "Conv" else None
        self.emit(op, [xf, wf], [mul.output[0]], n.name, attrs)
        self.dropped.update((id(cast), id(mul)))

    def _op_ConvInteger(self, n) -> None:
        self._integer_gemm(n, "Conv")

    def _op_MatMulInteger(self, n) -> None:
        self._integer_gemm(n, "MatMul")

    def _only(self, t: str, op_type: str):
        cons = self.consumers.get(t, [])
        return cons[0] if len(cons) == 1 and cons[0].op_type == op_type else None

    # -------------------------------------------------------------- the float model
    def _restore_activations(self) -> None:
        """Put back the ReLU / ReLU6 an exporter folded into a quantizer: onnxruntime's removes a
        Relu or Clip(0, 6) after a Conv / Gemm / MatMul / Add when the output grid's lowest value
        is 0 (its clamp is the ReLU). The float reference needs it back; the integer execution
        is the same either way (accelsim fuses it into the layer's clamp)."""
        consumers: dict[str, list] = {}
        for node in self.nodes:
            for t in node.input:
                consumers.setdefault(t, []).append(node)
        out: list = []
        for node in self.nodes:
            out.append(node)
            t = node.output[0] if node.output else ""
            g = self.act.get(t)
            if node.op_type not in ("Conv", "Gemm", "MatMul", "Add") or g is None or g.axis is not None:
                continue
            if int(g.zero_point) != g.qmin or any(c.op_type in ("Relu", "Clip") for c in consumers.get(t, [])):
                continue
            top = float(g.scale) * (g.qmax - int(g.zero_point))
            relu6 = abs(top - 6.0) <= 1e-5 * 6.0
            pre = f"{t}/before_activation"
            node.output[0] = pre
            name = self.fresh(f"{node.name}/restored_{'relu6' if relu6 else 'relu'}")
            if relu6:
                lo = self.float_const(f"{name}/min", np.zeros(()))
                hi = self.float_const(f"{name}/max", np.full((), 6.0))
                act = self.helper.make_node("Clip", [pre, lo, hi], [t], name=name)
            else:
                act = self.helper.make_node("Relu", [pre], [t], name=name)
            out.append(act)
            self.restored.append(name)
        self.nodes = out

    def _finish(self):
        onnx, helper = self.onnx, self.helper
        g = self.model.graph
        for node in self.nodes:  # late substitutions (a DQ seen after its consumer cannot happen: ONNX is sorted)
            for i, t in enumerate(node.input):
                node.input[i] = self.read(t)
        self._restore_activations()
        outputs = []
        rename: dict[str, str] = {}
        for o in g.output:
            t = self.read(o.name)
            if o.name in self.int_of:  # an integer model output: its float value is the output
                t = self.int_of[o.name][0]
            if t != o.name:
                rename[t] = o.name
            outputs.append(helper.make_tensor_value_info(o.name, onnx.TensorProto.FLOAT, None))
        for node in self.nodes:
            for i, t in enumerate(node.input):
                node.input[i] = rename.get(t, t)
            for i, t in enumerate(node.output):
                node.output[i] = rename.get(t, t)
        self.act = {rename.get(t, t): v for t, v in self.act.items()}
        inputs = []
        for i in g.input:
            if i.name in self.init:
                continue
            if i.name in self.float_inputs:
                dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                        for d in i.type.tensor_type.shape.dim]
                inputs.append(helper.make_tensor_value_info(i.name, onnx.TensorProto.FLOAT, dims))
            else:
                inputs.append(i)
        used = {t for node in self.nodes for t in node.input}
        inits = [i for i in g.initializer if i.name in used] + [i for i in self.new_inits if i.name in used]
        consts = [helper.make_node("Constant", [], [t], name=self.fresh(f"Constant_{t}"),
                                   value=self.nh.from_array(v, t)) for t, v in self.literal.items() if t in used]
        graph = helper.make_graph(consts + self.nodes, g.name or "model", inputs, outputs, inits)
        opsets = [o for o in self.model.opset_import if o.domain in ("", "ai.onnx")]
        model = helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)])
        model.ir_version = self.model.ir_version
        return model


# ----------------------------------------------------------------------------- steps 2 and 3


def load_quantized_onnx(path_or_model, input_shapes=None) -> QGraph:
    """A quantized ONNX model (QDQ or QOperator form; a path or an onnx.ModelProto) as a QGraph
    with its stored integers, scales and zero-points (see the module docstring)."""
    onnx, _, _ = _onnx()
    from ..graph.onnx_import import load_onnx
    from ..graph.onnx_parse import read_onnx_file

    if isinstance(path_or_model, (str, Path)):
        path = Path(path_or_model)
        model = read_onnx_file(path)
        where, name = str(path), path.stem
    else:
        model, where, name = path_or_model, path_or_model.graph.name or "onnx_model", path_or_model.graph.name
    stripper = _Stripper(model, where)
    float_model = stripper.run()
    float_model.graph.name = name or "onnx_model"
    try:
        graph = load_onnx(float_model, input_shapes)
    except GraphError as exc:  # name the file, not the intermediate model
        msg = str(exc)
        prefix = f"{float_model.graph.name}: "
        raise GraphError(f"{where}: {msg[len(prefix):] if msg.startswith(prefix) else msg}") from None
    graph.source = where
    return _build_qgraph(graph, float_model, stripper, where)


def _tensor_nodes(graph, float_model) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(ONNX tensor -> accelsim node producing its value, node -> its tensors, latest last)."""
    producer = {}
    for n in float_model.graph.node:
        for t in n.output:
            producer[t] = n
    of: dict[str, str] = {i: i for i in graph.inputs}

    def find(t: str, depth: int = 0) -> str | None:
        if t in of:
            return of[t]
        n = producer.get(t)
        if n is None or depth > 50:
            return None
        if n.name in graph and n.op_type != "Constant":
            return n.name
        acts = [i for i in n.input if i in producer or i in graph.inputs]  # bypassed / folded into its producer
        return find(acts[0], depth + 1) if len(acts) == 1 else None

    for n in float_model.graph.node:
        for t in n.output:
            hit = find(t)
            if hit is not None:
                of[t] = hit
    tensors: dict[str, list[str]] = {}
    for t, node in of.items():
        tensors.setdefault(node, []).append(t)
    return of, tensors


def _build_qgraph(graph, float_model, st: _Stripper, where: str) -> QGraph:
    sites, grid_of = activation_sites(graph)
    of, tensors = _tensor_nodes(graph, float_model)
    onnx_node = {n.name: n for n in float_model.graph.node}
    dropped: list[str] = []

    activations: dict[str, QuantParams] = {}
    for s in sites:
        grids = [st.act[t] for t in tensors.get(s, []) if t in st.act]
        if not grids:
            node = graph[s]
            shown = tensors.get(s, [s])[-1]
            raise GraphError(f"{where}: layer '{s}' ({node.op}): its output is an activation site of accelsim's "
                             f"integer datapath, but the model does not quantize it (no QuantizeLinear on '{shown}')")
        activations[s] = grids[-1].quant_params()[0]
    # grids recorded on tensors that are not sites: the same grid passes through, or it is dropped
    for t, g in st.act.items():
        node = of.get(t)
        if node is None or node in activations and g.same(_grid_of_site(st, tensors[node])):
            continue
        site = grid_of.get(node)
        if site is not None and site in activations and _same_qp(g.quant_params()[0], activations[site]):
            continue
        dropped.append(t)
    if dropped:
        warnings.warn(f"{where}: {len(dropped)} quantizer(s) on tensors accelsim keeps on another grid (before a "
                      f"fused relu, or after a max pool / reshape) are not applied: {', '.join(dropped[:4])}"
                      f"{', ...' if len(dropped) > 4 else ''}", QdqImportWarning, stacklevel=3)

    layers: dict[str, LayerQuant] = {}
    for node in graph.nodes:
        if node.op not in ("conv2d", "linear") or node.weight is None:
            continue
        layers[node.name] = _layer(graph, node, onnx_node.get(node.name), st, activations, grid_of, where)

    recipe = _recipe(layers, activations, where)
    info: dict[str, Any] = {"imported_from": where, "onnx_form": "+".join(sorted(st.form)) or "float",
                            "activation_range": "stored in the file", "qdq_dropped": dropped,
                            "restored_activations": list(st.restored)}
    return QGraph(graph, recipe, layers, activations, info, None, graph)


def _recipe(layers: dict[str, LayerQuant], activations: dict[str, QuantParams], source: str) -> ImportedRecipe:
    """The numeric format the integer layers and activation grids really use (what the
    hardware check and the cost model read): the widest bits, any asymmetric grid, any per-channel scale."""
    wq = [lq.weight_q for lq in layers.values()]
    acts = list(activations.values())
    return ImportedRecipe(
        method="naive", weight_bits=max((q.bits for q in wq), default=8),
        activation_bits=max((q.bits for q in acts), default=8),
        weight_scheme="asymmetric" if any(q.scheme == "asymmetric" for q in wq) else "symmetric",
        activation_scheme="asymmetric" if any(q.scheme == "asymmetric" for q in acts) else "symmetric",
        weight_granularity="per_channel" if any(q.per_channel for q in wq) else "per_tensor",
        activation_range="minmax", source=source)


def _grid_of_site(st: _Stripper, ts: list[str]) -> _Grid:
    return [st.act[t] for t in ts if t in st.act][-1]


def _same_qp(a: QuantParams, b: QuantParams) -> bool:
    return (a.bits == b.bits and a.qmin == b.qmin and a.qmax == b.qmax and np.array_equal(a.scale, b.scale)
            and np.array_equal(a.zero_point, b.zero_point))


def _layer(graph, node, onode, st: _Stripper, activations, grid_of, where: str) -> LayerQuant:
    name = node.name
    label = f"{where}: layer '{name}' ({node.op})"
    w_t = onode.input[1] if onode is not None and len(onode.input) > 1 else None
    c = st.consts.get(w_t) if w_t else None
    if c is None:
        raise GraphError(f"{label}: its weights are not quantized (no DequantizeLinear on an integer initializer); "
                         "accelsim's datapath multiplies integer weights")
    codes, axis = c.codes, c.grid.axis
    w_shape = tuple(node.weight.shape)
    if codes.shape != w_shape:
        if codes.ndim == 2 and codes.T.shape == w_shape:  # Gemm transB=0 / MatMul: accelsim keeps (out, in)
            codes = codes.T
            axis = None if axis is None else 1 - axis
        else:
            raise GraphError(f"{label}: integer weights of shape {tuple(codes.shape)} do not match the layer's "
                             f"{w_shape}")
    if axis not in (None, 0):
        raise GraphError(f"{label}: weights are quantized per input channel (axis {axis}); accelsim's datapath "
                         "requantizes per output channel")
    grid = replace(c.grid, axis=axis)
    weight_q, codes = grid.quant_params(codes)
    codes = np.asarray(codes, np.int64)
    if np.any(codes < weight_q.qmin) or np.any(codes > weight_q.qmax):
        raise GraphError(f"{label}: integer weights outside their {weight_q.bits}-bit grid")
    in_site = grid_of[node.inputs[0]]
    out_site = output_site(graph, name, grid_of)
    in_q, out_q = activations[in_site], activations[out_site]
    s_acc = np.broadcast_to(weight_q.scale * float(in_q.scale), (w_shape[0],)).astype(np.float64)
    b_t = onode.input[2] if len(onode.input) > 2 and onode.input[2] else None
    bias = np.asarray(node.bias, np.float64) if node.bias is not None and node.attrs.get("bias", True) else None
    bc = st.consts.get(b_t) if b_t else None
    if bc is not None and bc.grid.bits == 32 and np.allclose(np.broadcast_to(bc.grid.scale, s_acc.shape), s_acc,
                                                                rtol=1e-6, atol=0):
        b_int = np.broadcast_to(bc.codes, (w_shape[0],)).astype(np.int64)  # the int32 bias as stored
    elif bias is not None:  # a float bias (or one at another scale): onto the accumulator's grid
        b_int = round_half_away(bias / s_acc).astype(np.int64)
    else:
        b_int = np.zeros(w_shape[0], np.int64)
    mult, shift = quantize_multiplier(s_acc / float(out_q.scale))
    fused = graph[out_site].op if out_site != name else None
    return LayerQuant(name, node.op, weight_q, codes.astype(np.int32), b_int, in_site, out_site, in_q, out_q, mult,
                      shift, fused, (), folded_bias(b_int, codes, weight_q.zero_point, int(in_q.zero_point)))


# ----------------------------------------------------------------------------- fitting to a datapath


def fit_to_hw(qg: QGraph, hw, nearest: bool = False) -> QGraph:
    """`qg` if `hw`'s datapath runs its numeric format; else an AccelsimError naming the first
    layer (or site) it cannot run, or with `nearest`, a QGraph re-quantized to the nearest
    format the datapath runs (one warning per kind of change, naming the layers)."""
    from ..errors import ConfigError

    p, q = hw.precision, hw.quantization
    flag = "pass --nearest-format to re-quantize it to the nearest format the hardware runs"
    where = qg.info.get("imported_from", qg.name)
    changes: dict[str, list[str]] = {}
    activations = dict(qg.activations)
    for s, a in qg.activations.items():
        why = None
        if a.bits > p.activation_bits:
            why = f"{a.bits}-bit activations on a {p.activation_bits}-bit datapath (precision.activation_bits)"
        elif a.scheme == "asymmetric" and q.activation_scheme == "symmetric":
            why = "asymmetric activations on a symmetric datapath (quantization.activation_scheme: symmetric)"
        if why is None:
            continue
        if not nearest:
            raise ConfigError(where, f"site '{s}'", f"{why} on '{hw.name}'; {flag}")
        bits = min(a.bits, p.activation_bits)
        scheme = "asymmetric" if q.activation_scheme == "asymmetric" else "symmetric"
        activations[s] = make_qparams(float(a.range_lo), float(a.range_hi), bits, scheme, narrow=False)
        changes.setdefault(why, []).append(s)
    layers = {}
    for name, lq in qg.layers.items():
        wq, why = lq.weight_q, []
        if wq.bits > p.weight_bits:
            why.append(f"{wq.bits}-bit weights on a {p.weight_bits}-bit datapath (precision.weight_bits)")
        if wq.scheme == "asymmetric" and q.weight_scheme == "symmetric":
            why.append("asymmetric weights on a symmetric datapath (quantization.weight_scheme: symmetric)")
        if wq.per_channel and q.weight_granularity == "per_tensor":
            why.append("per-channel weight scales on a per-tensor datapath (quantization.weight_granularity)")
        if why and not nearest:
            raise ConfigError(where, f"layer '{name}'", f"{why[0]} on '{hw.name}'; {flag}")
        for w in why:
            changes.setdefault(w, []).append(name)
        in_q, out_q = activations[lq.input_site], activations[lq.output_site]
        if not why and in_q is lq.input_q and out_q is lq.output_q:
            layers[name] = lq
            continue
        if why:
            axis = 0 if (wq.per_channel and q.weight_granularity == "per_channel") else None
            scheme = q.weight_scheme if wq.scheme == "asymmetric" else "symmetric"
            new_wq = make_qparams(*channel_minmax(lq.weight_dequant, axis), min(wq.bits, p.weight_bits), scheme,
                                  axis=axis)
            codes = new_wq.quantize(lq.weight_dequant)
        else:
            new_wq, codes = wq, lq.weight_int
        o = len(codes)
        s_acc = np.broadcast_to(new_wq.scale * float(in_q.scale), (o,)).astype(np.float64)
        b_int = round_half_away(np.asarray(lq.bias_dequant, np.float64) / s_acc).astype(np.int64)
        mult, shift = quantize_multiplier(s_acc / float(out_q.scale))
        layers[name] = LayerQuant(name, lq.op, new_wq, np.asarray(codes, np.int32), b_int, lq.input_site,
                                  lq.output_site, in_q, out_q, mult, shift, lq.fused_activation, (),
                                  folded_bias(b_int, codes, new_wq.zero_point, int(in_q.zero_point)))
    if not changes:
        return qg
    for why, names in changes.items():
        warnings.warn(f"{where}: {why} on '{hw.name}': re-quantized {', '.join(names[:6])}"
                      f"{', ...' if len(names) > 6 else ''} to the nearest format it runs", QdqImportWarning,
                      stacklevel=2)
    recipe = _recipe(layers, activations, getattr(qg.recipe, "source", where))
    info = {**qg.info, "nearest_format": {w: n for w, n in changes.items()}}
    return QGraph(qg.graph, recipe, layers, activations, info, hw.name, qg.float_graph)


__all__ = ["QdqImportWarning", "ImportedRecipe", "fit_to_hw", "is_quantized_onnx", "load_quantized_onnx"]
