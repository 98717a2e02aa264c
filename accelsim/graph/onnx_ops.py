"""ONNX import, part 2: op translation, one method per ONNX op type (``_op_<OpType>``) that
emits the accelsim node(s) for it, with the local folds that belong to one op (a zero Pad into
the Conv's padding, a constant Add into the bias). Mixed into the importer."""
from __future__ import annotations

import math

import numpy as np

from .onnx_parse import PROBES, _attr


class OpsMixin:
    """ONNX op -> accelsim op (needs the importer's emit / input helpers)."""

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

