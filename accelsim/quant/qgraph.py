"""The quantized model: integer weights and biases, scales, zero-points, requantization, and
the fake-quant numpy reference `QGraph.run`.

Where activations are quantized (*sites*), as an accelerator does it:
  - the graph input;
  - the output of every op that computes new values (conv, linear, matmul, add, concat,
    avg pools, an unfolded batchnorm, softmax, ...), except that a relu / relu6 that is the
    only consumer of such an op is fused into it: conv -> relu is one quantized output;
  - a relu6 on an already quantized tensor (its clip at 6 may fall off the grid).
Max pooling, flatten, reshape, transpose, identity, and relu on a quantized tensor keep
values on their input's grid, so they are not sites.

Per conv/linear layer the integer model stores what bit-exact execution needs: integer
weights and their scale(s)/zero-point(s), the input and output activation scale/zero-point,
the int32 bias round(b / (s_w s_x)), the accumulator's starting value (`folded_bias`:
b - z_x sum W + K z_w z_x, the constant zero-point terms, so that the array multiplies raw
codes and asymmetric activations cost nothing at run time), and the requantization
M = s_w s_x / s_y as an integer multiplier and right shift: M ~= multiplier * 2^-shift with
multiplier in [2^30, 2^31). Rounding everywhere is half away from zero (`rounding.py`).

The folded bias is the accumulator's first value, so it must fit there: |folded| <=
2^(bits-1) - 1 with bits = min(accumulator_bits, 32). A channel whose weight scale is tiny
(a nearly dead channel) with an ordinary bias does not fit, nor, in a narrow accumulator, a
channel whose input zero-point times its weight sum is large; clipping would make that
channel's output wrong by a large factor, so instead (as TFLite does) the channel's weight
scale is raised until the folded bias fits, with room left for the channel's products where
possible (`fit_bias_scale`), and its weights are requantized with it (per-tensor weights: the
layer's one scale is raised). The layers and channels so adjusted are listed in
``QGraph.info["bias_scale_raised"]`` and a `BiasRangeWarning` names each layer. Bias
correction, which ran before the activation scales were known, saw the weights before this
adjustment.
The fake-quant run uses the dequantized weights and the dequantized int32 bias, so it is the
float image of that integer model.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from ..graph.ir import Graph
from .quantizers import QuantParams
from .rounding import round_half_away

FUSABLE = ("relu", "relu6")
KEEPS_GRID = ("maxpool", "flatten", "reshape", "transpose", "identity")
BIAS_STORAGE_BITS = 32  # the bias is stored as int32 (bias_int32), whatever the accumulator width


class BiasRangeWarning(UserWarning):
    """A bias did not fit the accumulator at its layer's weight scale: the weight scale was raised."""


def activation_sites(graph: Graph) -> tuple[list[str], dict[str, str | None]]:
    """(sites in order, grid_of): grid_of[t] is the site whose grid tensor t lies on, None
    for a conv/add/... output that is quantized after its fused activation."""
    outputs = set(graph.outputs)
    sites: list[str] = []
    grid_of: dict[str, str | None] = {}
    for node in graph.nodes:
        src = grid_of.get(node.inputs[0]) if node.inputs else None
        if node.op == "input":
            grid = node.name
        elif node.op in KEEPS_GRID or (node.op == "relu" and src is not None):
            grid = src
        elif node.op in FUSABLE:
            grid = node.name  # fused with a pending producer, or a relu6 that re-quantizes
        else:
            consumers = graph.consumers(node.name)
            fused = len(consumers) == 1 and consumers[0].op in FUSABLE and node.name not in outputs
            grid = None if fused else node.name
        if grid == node.name:
            sites.append(node.name)
        grid_of[node.name] = grid
    return sites, grid_of


def output_site(graph: Graph, name: str, grid_of: Mapping[str, str | None]) -> str:
    """The site where layer `name`'s output is quantized (itself or its fused activation)."""
    if grid_of[name] is not None:
        return grid_of[name]
    return graph.consumers(name)[0].name


def quantize_multiplier(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Real multipliers m > 0 as (multiplier int64 in [2^30, 2^31), shift): m ~= multiplier * 2^-shift."""
    m = np.atleast_1d(np.asarray(m, np.float64))
    mult = np.zeros(m.shape, np.int64)
    shift = np.zeros(m.shape, np.int64)
    for i, v in enumerate(m):
        if v <= 0:
            continue
        frac, exp = math.frexp(float(v))  # v = frac * 2^exp, frac in [0.5, 1)
        q = round(frac * 2**31)
        if q == 2**31:
            q //= 2
            exp += 1
        mult[i], shift[i] = q, 31 - exp
    return mult, shift


@dataclass(eq=False)
class LayerQuant:
    """One conv/linear layer of the integer model."""

    name: str
    op: str
    weight_q: QuantParams
    weight_int: np.ndarray
    bias_int32: np.ndarray
    input_site: str
    output_site: str
    input_q: QuantParams
    output_q: QuantParams
    requant_multiplier: np.ndarray
    requant_shift: np.ndarray
    fused_activation: str | None = None
    #: channels whose bias forced a larger weight scale (see the module docstring)
    bias_scale_raised: tuple[int, ...] = ()
    #: the accumulator's starting value per channel (`folded_bias`): the bias with the constant
    #: zero-point terms folded in; the array adds the raw-code products to it
    accumulator_bias: np.ndarray | None = None
    #: PowerQuant layers: the float bias (the integer pipeline's fixed-point units depend on the
    #: power datapath, so the program lowering derives them; uniform layers: None)
    bias_float: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.accumulator_bias is None:
            self.accumulator_bias = folded_bias(self.bias_int32, self.weight_int, self.weight_q.zero_point,
                                                int(self.input_q.zero_point))

    @property
    def weight_dequant(self) -> np.ndarray:
        return self.weight_q.dequantize(self.weight_int)

    @property
    def bias_dequant(self) -> np.ndarray:
        if self.bias_float is not None:
            return np.asarray(self.bias_float, np.float32)
        s = self.weight_q.scale * float(self.input_q.scale)
        return (self.bias_int32 * s).astype(np.float32)


def folded_bias(bias_int: np.ndarray, weight_int: np.ndarray, weight_zero_point, input_zero_point: int) -> np.ndarray:
    """The accumulator's starting value per output channel: the int32 bias with the constant
    zero-point terms of sum_k (w_k - z_w)(x_k - z_x) folded in, b - z_x sum_k w_k + K z_w z_x.
    The array then multiplies raw codes (sum_k w_k x_k) and, with asymmetric weights, the
    run-time term -z_w sum_k x_k is added by the zero-point unit (DESIGN.md, Numerics)."""
    w = np.asarray(weight_int, np.int64).reshape(len(weight_int), -1)
    k = w.shape[1]
    z_w = np.broadcast_to(np.asarray(weight_zero_point, np.int64), (len(w),))
    z_x = int(input_zero_point)
    return np.asarray(bias_int, np.int64) - z_x * w.sum(axis=1) + k * z_w * z_x


def _raw_code_max(q: QuantParams) -> int:
    """Largest |code| of a grid: the array multiplies raw codes, not zero-point-subtracted ones."""
    return max(abs(int(q.qmin)), abs(int(q.qmax)))


def fit_bias_scale(weight_q: QuantParams, weight: np.ndarray, bias: np.ndarray, input_q: QuantParams,
                   bias_bits: int) -> tuple[QuantParams, np.ndarray]:
    """(weight quantizer, channels raised): the weight scale raised where the folded bias
    (`folded_bias`: what the accumulator starts from) would not fit a signed `bias_bits`
    integer (limit L = 2^(bias_bits-1) - 1).

    TFLite raises such a scale until the bias alone fits, which puts it at L: the first product
    then overflows. Here the raised scale also leaves room for the channel's worst-case raw-code
    products, so the channel's sum provably fits in any order (wrap or saturate): with
    F = b/s_x - z_x sum_k w_k (the folded bias in units of s) and X the largest raw input code,
    |F|/s + 1/2 + K z_x/2 + X sum_k (|w_k|/s + 1/2 + z_w) <= L, i.e.
    s = (|F| + X sum_k |w_k|) / (L - 1/2 - K (z_x + X) / 2 - K X Z), Z the largest weight
    code for asymmetric weights (bounding z_w), 0 for symmetric ones. When no scale can
    guarantee that (a narrow accumulator: the denominator <= 0), the scale is sized for the folded bias
    alone, s = 2|F| / L. Either way the result is checked on the integers and raised further
    (x1.25 steps) until every folded bias fits. Per-tensor weights raise their one scale;
    asymmetric weights keep their float range (the zero-point is recomputed for the new scale)."""
    limit = 2 ** (bias_bits - 1) - 1
    s_x = float(input_q.scale)
    z_x = int(input_q.zero_point)
    bias = np.asarray(bias, np.float64)
    w = np.asarray(weight, np.float64).reshape(weight.shape[0], -1)

    def overflowing(q: QuantParams) -> np.ndarray:
        s_acc = np.broadcast_to(q.scale, bias.shape) * s_x
        b_int = round_half_away(bias / s_acc)
        folded = folded_bias(b_int, q.quantize(weight), q.zero_point, z_x)
        return np.abs(folded) > limit

    over = np.flatnonzero(overflowing(weight_q))
    if over.size == 0:
        return weight_q, over
    x_max = _raw_code_max(input_q)
    f_abs = np.abs(bias / s_x - z_x * w.sum(axis=1))
    room = limit - 0.5 - 0.5 * w.shape[1] * (abs(z_x) + x_max)
    if weight_q.scheme == "asymmetric":  # raw weight codes carry z_w: K z_w X more in the array's sums
        room -= w.shape[1] * _raw_code_max(weight_q) * x_max
    needed = (f_abs + x_max * np.abs(w).sum(axis=1)) / room if room > 0 else 2 * f_abs / limit

    def with_scale(scale: np.ndarray) -> QuantParams:
        zp = weight_q.zero_point  # symmetric: 0
        if weight_q.scheme == "asymmetric":
            lo = weight_q.range_lo  # <= 0: the grid always holds 0
            new_zp = np.clip(round_half_away(weight_q.qmin - lo / scale), weight_q.qmin, weight_q.qmax).astype(np.int64)
            zp = np.where(scale == weight_q.scale, zp, new_zp)  # untouched channels keep theirs exactly
        return replace(weight_q, scale=scale, zero_point=np.asarray(zp, np.int64))

    if weight_q.per_channel:
        scale = weight_q.scale.copy()
        scale[over] = np.maximum(scale[over], needed[over])
    else:
        scale = np.asarray(max(float(weight_q.scale), float(needed[over].max())), np.float64)
    fitted = with_scale(scale)
    for _ in range(200):  # rounding of the codes can leave a channel just over the limit
        still = overflowing(fitted)
        if not still.any():
            break
        scale = np.where(still, scale * 1.25, scale) if weight_q.per_channel else scale * 1.25
        fitted = with_scale(np.asarray(scale, np.float64))
    return fitted, over


def make_layer_quant(graph: Graph, name: str, weight_q: QuantParams, input_site: str, out_site: str,
                     activations: Mapping[str, QuantParams], accumulator_bits: int = 32) -> LayerQuant:
    """The integer layer. Its folded bias must fit min(accumulator_bits, 32) bits: where it would
    not, the weight scale is raised (`fit_bias_scale`) and a `BiasRangeWarning` names the layer."""
    node = graph[name]
    in_q, out_q = activations[input_site], activations[out_site]
    bias = node.bias if node.bias is not None and node.attrs.get("bias", True) else np.zeros(node.weight.shape[0])
    bias_bits = min(int(accumulator_bits), BIAS_STORAGE_BITS)
    fitted, raised = fit_bias_scale(weight_q, node.weight, bias, in_q, bias_bits)
    if raised.size:
        ratio = float(np.max(fitted.scale / weight_q.scale))
        shown = ", ".join(str(c) for c in raised[:8]) + (", ..." if raised.size > 8 else "")
        channels = f"channel{'s' if raised.size > 1 else ''} {shown}"
        where = channels if weight_q.per_channel else f"the whole layer (one per-tensor scale; for {channels})"
        warnings.warn(f"layer '{name}': the folded bias (b - z_x sum W) does not fit the {bias_bits}-bit accumulator "
                      f"at the weight scale; raised the weight scale of {where} by up to {ratio:.3g}x and requantized "
                      "those weights", BiasRangeWarning, stacklevel=2)
    weight_q = fitted
    w_int = weight_q.quantize(node.weight)
    s_acc = weight_q.scale * float(in_q.scale)  # scale of the accumulator, per channel or scalar
    limit = 2 ** (BIAS_STORAGE_BITS - 1) - 1
    b_int = np.clip(round_half_away(np.asarray(bias, np.float64) / s_acc), -limit, limit).astype(np.int64)
    acc_bias = folded_bias(b_int, w_int, weight_q.zero_point, int(in_q.zero_point))
    mult, shift = quantize_multiplier(np.broadcast_to(s_acc / float(out_q.scale), (node.weight.shape[0],)))
    fused = graph[out_site].op if out_site != name else None
    return LayerQuant(name, node.op, weight_q, w_int, b_int, input_site, out_site, in_q, out_q, mult, shift, fused,
                      tuple(int(c) for c in raised), acc_bias)


def make_power_layer_quant(graph: Graph, name: str, weight_q: QuantParams, input_site: str, out_site: str,
                           activations: Mapping[str, QuantParams]) -> LayerQuant:
    """A PowerQuant layer: power-domain weight codes, the float bias (the input offset's term
    -c sum W is folded in by the program lowering, eq. 5), no uniform requantization."""
    node = graph[name]
    in_q, out_q = activations[input_site], activations[out_site]
    bias = node.bias if node.bias is not None and node.attrs.get("bias", True) else np.zeros(node.weight.shape[0])
    w_int = weight_q.quantize(node.weight)
    o = node.weight.shape[0]
    zeros = np.zeros(o, np.int64)
    fused = graph[out_site].op if out_site != name else None
    return LayerQuant(name, node.op, weight_q, w_int, zeros, input_site, out_site, in_q, out_q, zeros.copy(),
                      zeros.copy(), fused, (), zeros.copy(), np.asarray(bias, np.float64))


@dataclass(eq=False)
class QGraph:
    """A quantized model.

    `graph`: the float graph the integers were made from (folded, equalized, absorbed, and with
    bias-corrected biases, which are meant for the quantized weights); `float_graph`: the same
    before bias correction, i.e. the FP32 model the quantized one approximates; `layers`: the
    integer conv/linear layers; `activations`: the quantizer of every activation site;
    `info`: what each step did.
    """

    graph: Graph
    recipe: Any
    layers: dict[str, LayerQuant] = field(default_factory=dict)
    activations: dict[str, QuantParams] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    hw_name: str | None = None
    float_graph: Graph | None = None

    def __post_init__(self) -> None:
        if self.float_graph is None:
            self.float_graph = self.graph
        self._fq = self.graph.copy()
        for name, lq in self.layers.items():
            node = self._fq[name]
            node.weight = lq.weight_dequant
            node.bias = lq.bias_dequant
            node.attrs = {**node.attrs, "bias": True}

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def fake_quant_graph(self) -> Graph:
        """The graph with dequantized weights and biases (activations in float)."""
        return self._fq

    def __repr__(self) -> str:
        label = getattr(self.recipe, "label", str(self.recipe))
        return f"QGraph({self.graph.name!r}, {label}, {len(self.layers)} layers, {len(self.activations)} activation sites)"

    # ------------------------------------------------------------------ fake-quant reference
    def run(self, x, batch_size: int | None = None, threads: int | None = None):
        """Fake-quant numpy reference: dequantized weights, activations quantized-dequantized at
        every site. Batching and threading as `Graph.run` (chunks on threads, single-threaded BLAS)."""
        return self._fq.run(x, batch_size=batch_size, threads=threads,
                            transform=self._quantize_activation if self.activations else None)

    def _quantize_activation(self, name: str, value: np.ndarray) -> np.ndarray:
        q = self.activations.get(name)
        return q.fake_quant(value) if q is not None else value

    # ------------------------------------------------------------------ reporting
    def table(self):
        """Per-layer pandas DataFrame: weight ranges, scales, zero-points, activation ranges."""
        import pandas as pd

        eq = self.info.get("equalization")
        cle_scale = {}
        if eq is not None:
            for (a, b), s in eq.scales.items():
                cle_scale.setdefault(a, s)
        rows = []
        for name, lq in self.layers.items():
            w = self.graph[name].weight
            wq = lq.weight_q
            rows.append({
                "layer": name,
                "op": lq.op + (f"+{lq.fused_activation}" if lq.fused_activation else ""),
                "weight_min": float(w.min()),
                "weight_max": float(w.max()),
                "weight_bits": wq.bits,
                "weight_scale_max": float(np.max(wq.scale)),
                "weight_scale_max_over_min": float(np.max(wq.scale) / np.min(wq.scale)),
                "weight_zero_point_max_abs": int(np.max(np.abs(wq.zero_point))),
                "input_scale": float(lq.input_q.scale),
                "output_lo": float(lq.output_q.range_lo),
                "output_hi": float(lq.output_q.range_hi),
                "output_scale": float(lq.output_q.scale),
                "output_zero_point": int(lq.output_q.zero_point),
                "cle_scale_min": float(cle_scale[name].min()) if name in cle_scale else float("nan"),
                "cle_scale_max": float(cle_scale[name].max()) if name in cle_scale else float("nan"),
            })
        return pd.DataFrame(rows)

    def activation_table(self):
        import pandas as pd

        return pd.DataFrame([
            {"site": s, "op": self.graph[s].op, "bits": q.bits, "lo": float(q.range_lo), "hi": float(q.range_hi),
             "scale": float(q.scale), "zero_point": int(q.zero_point), "qmin": q.qmin, "qmax": q.qmax}
            for s, q in self.activations.items()
        ])

    # ------------------------------------------------------------------ saving
    def save(self, path):
        """Write the integer model as one self-contained .npz (and a readable .json beside it);
        `accelsim.load_qgraph` reads it back. Returns the npz path (see `qgraph_io`)."""
        from .qgraph_io import save_qgraph

        return save_qgraph(self, path)

    def save_onnx(self, path, opset: int | None = None):
        """Write the integer model as a QDQ ONNX file (onnx.checker-valid, runs in onnxruntime; opset
        17, or 21 where 16-bit grids need it;
        PowerQuant grids as explicit Pow nodes): see `onnx_qdq_export`. Returns the path."""
        from .onnx_qdq_export import save_qdq_onnx

        return save_qdq_onnx(self, path, opset=opset)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the integer model, keyed `layer/<name>/<what>`, `act/<site>/<what>`, `cle/<A>-><B>`."""
        out: dict[str, np.ndarray] = {}
        for name, lq in self.layers.items():
            p = f"layer/{name}/"
            out[p + "weight_int"] = lq.weight_int.astype(_int_dtype(lq.weight_q.qmin, lq.weight_q.qmax))
            out[p + "weight_scale"] = np.asarray(lq.weight_q.scale)
            out[p + "weight_zero_point"] = np.asarray(lq.weight_q.zero_point)
            out[p + "bias_int32"] = lq.bias_int32.astype(np.int32)
            out[p + "input_scale"] = np.asarray(lq.input_q.scale)
            out[p + "input_zero_point"] = np.asarray(lq.input_q.zero_point)
            out[p + "output_scale"] = np.asarray(lq.output_q.scale)
            out[p + "output_zero_point"] = np.asarray(lq.output_q.zero_point)
            out[p + "requant_multiplier"] = lq.requant_multiplier.astype(np.int32)
            out[p + "requant_shift"] = lq.requant_shift.astype(np.int32)
        for site, q in self.activations.items():
            out[f"act/{site}/scale"] = np.asarray(q.scale)
            out[f"act/{site}/zero_point"] = np.asarray(q.zero_point)
        eq = self.info.get("equalization")
        if eq is not None:
            for (a, b), s in eq.scales.items():
                out[f"cle/{a}->{b}"] = s
        return out

    def metadata(self) -> dict[str, Any]:
        """JSON-ready description: recipe, hardware, graph structure, per-layer and per-site quantizers."""
        from ..graph.yaml_io import graph_to_dict

        eq = self.info.get("equalization")
        return {
            "format": "accelsim-qgraph-1",
            "graph": graph_to_dict(self.graph),
            "hw": self.hw_name,
            "recipe": self.recipe.to_dict() if hasattr(self.recipe, "to_dict") else str(self.recipe),
            "layers": {
                name: {"op": lq.op, "fused_activation": lq.fused_activation, "input_site": lq.input_site,
                       "output_site": lq.output_site, "weight": _qp_meta(lq.weight_q),
                       "requant": "y = z_out + round(acc * multiplier / 2^shift), clamped"}
                for name, lq in self.layers.items()
            },
            "activations": {s: _qp_meta(q) for s, q in self.activations.items()},
            "equalization": None if eq is None else {
                "iterations": eq.iterations, "converged": eq.converged,
                "sets": [[[l.a, l.b, list(l.between)] for l in links] for links in eq.sets],
                "skipped": [list(s) for s in eq.skipped],
            },
            "absorbed": sorted(self.info.get("absorbed", {})),
            "bias_corrected": sorted(self.info.get("bias_correction", {})),
            "bias_scale_raised": self.info.get("bias_scale_raised", {}),
        }


def _int_dtype(qmin: int, qmax: int) -> np.dtype:
    """The smallest integer dtype holding the grid [qmin, qmax]."""
    for dtype in ((np.int8, np.int16, np.int32) if qmin < 0 else (np.uint8, np.uint16, np.int32)):
        info = np.iinfo(dtype)
        if info.min <= qmin and qmax <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _qp_meta(q: QuantParams) -> dict[str, Any]:
    return {"bits": q.bits, "scheme": q.scheme, "qmin": q.qmin, "qmax": q.qmax,
            "granularity": "per_channel" if q.per_channel else "per_tensor"}


