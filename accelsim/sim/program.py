"""Lowering a QGraph to its integer program: what the datapath computes, step by step.

Every tensor is a grid of codes with a scale, zero-point and range (the `QuantParams` of an
activation site). Each step stores every integer constant the executor needs, so nothing is
re-derived at run time (DESIGN.md, "Numerics"):

- `InputStep`: float input -> codes, round half away from zero, clamp.
- `GemmStep` (conv / linear): the array multiplies raw codes (padding carries the input's
  zero-point, so padded taps contribute nothing once the constant terms are folded); the
  accumulator starts from the folded bias b - z_x sum W + K z_w z_x; with asymmetric weights
  the run-time term -z_w sum_k x_k comes from the zero-point unit (`extra_column`: a filter of
  ones in the array, at accumulator width; `adder_tree`: an exact adder tree beside it);
  requantization y = z_y + round(acc * multiplier / 2^shift) per output channel, then a clamp
  that also applies a fused ReLU (lower bound z_y) or ReLU6 (upper bound z_y + round(6 / s_y)).
- `RescaleStep` (add, concat): each input's (x - z_i) times an integer multiplier, on one
  common shift, summed (add) or stacked (concat), rounded, plus z_y, clamped.
- `PoolStep`: max pooling on codes (it commutes with the monotone dequantization); average
  and global average pooling as integer window sums of (x - z_x) (padding adds 0) followed by
  a rounding multiply by s_x / (s_y * count), one multiplier per distinct window count.
- `LutStep`: an elementwise activation (relu6 on a quantized tensor, sigmoid, silu, gelu) as
  a table over the input codes: table[c] = quantize_y(f(dequantize_x(c))).
- `ReluStep`: relu on a quantized tensor: max(code, z).
- `ShapeStep`: flatten, reshape, transpose, identity: codes move, values do not change.

Ops without an integer form here (softmax, layernorm, unfolded batchnorm, mul, matmul) are a
clear error naming the layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AccelsimError
from ..graph.ops import GemmView
from ..quant.qgraph import QGraph, activation_sites, quantize_multiplier
from ..quant.quantizers import QuantParams, pad_code
from ..quant.rounding import round_half_away

LUT_OPS = ("relu6", "sigmoid", "silu", "gelu")
SHAPE_OPS = ("flatten", "reshape", "transpose", "identity")
REQUANT_BITS = 31  # multipliers in [2^30, 2^31): an int32 multiplier


@dataclass(eq=False)
class Step:
    name: str
    op: str
    inputs: tuple[str, ...]
    out_grid: QuantParams  # the grid of this step's output codes


@dataclass(eq=False)
class InputStep(Step):
    pass


@dataclass(eq=False)
class GemmStep(Step):
    attrs: dict[str, Any]
    gemm: GemmView                 # at batch 1 (M scales with the batch)
    in_grid: QuantParams
    weight_codes: np.ndarray       # (O, K) int64, K = C/groups * kh * kw
    weight_shape: tuple[int, ...]  # (O, C/groups, kh, kw) or (O, D)
    weight_zero_point: np.ndarray  # (O,) int64; 0 for symmetric weights
    accumulator_bias: np.ndarray   # (O,) int64: the accumulator's starting value
    zero_point_unit: str           # none | extra_column | adder_tree
    multiplier: np.ndarray         # (O,) int64
    shift: np.ndarray              # (O,) int64
    clamp_lo: int
    clamp_hi: int
    weight_bits: int               # operand widths the multipliers see
    activation_bits: int
    fused_activation: str | None = None

    @property
    def groups(self) -> int:
        return self.gemm.groups

    @property
    def asymmetric_weights(self) -> bool:
        return self.zero_point_unit != "none"


@dataclass(eq=False)
class PowerGemmStep(Step):
    """A PowerQuant conv / linear (Yvinec et al. 2023, eq. 5 and appendix F): each product gets
    its 1/a power before it is accumulated. acc = start + sum_k sign(q_w) V[|q_w|, q_x] at
    accumulator width in the array's order, V from the realisation's tables:
    product_lut: V[i, j] = round(2^F ((i j) / (qmax_w qmax_x))^(1/a)) (a table at each PE
    indexed by the integer product); decode_lut: V[i, j] = Dw[i] Dx[j], Dw / Dx =
    round(2^Fd (|q| / qmax)^(1/a)) (tables at the array edges, a wider multiplier);
    sum_power (ablation): the plain sum of q_w q_x, raised to 1/a afterwards.
    Output stage: r = round(acc * C_n / u) (int multiplier and shift) is y + c_y in units u of
    the output grid's top / (2^R - 1), clamped (fused ReLU / ReLU6), then the per-output power
    unit gives the code round((r u)^a / s_y)."""

    attrs: dict[str, Any]
    gemm: GemmView
    in_grid: QuantParams
    weight_codes: np.ndarray       # (O, K) int64, signed
    weight_shape: tuple[int, ...]
    products: str                  # product_lut | decode_lut | sum_power
    table: np.ndarray | None = field(default=None, repr=False)  # (qmax_w + 1, qmax_x + 1) int64
    accumulator_bias: np.ndarray | None = None  # (O,) int64, in accumulator units
    multiplier: np.ndarray | None = None        # (O,) C_n / u
    shift: np.ndarray | None = None
    r_lo: int = 0
    r_hi: int = 0
    unit: float = 1.0              # u: the output-stage fixed-point unit
    channel_scale: np.ndarray | None = None     # (O,) C_n (sum_power: M_n X_top / (qmax_w qmax_x)^(1/a))
    bias_real: np.ndarray | None = None         # (O,) b - c_x sum W + c_y (sum_power's float stage)
    weight_bits: int = 8
    activation_bits: int = 8
    fused_activation: str | None = None

    @property
    def groups(self) -> int:
        return self.gemm.groups


@dataclass(eq=False)
class PowerJoinStep(Step):
    """add / concat / average pools on power grids: each input code leaves the power domain
    through a decode table D_i[code] = round(x_hat / u) (fixed point, unit u of the output), the
    values are summed, stacked or averaged (rounding division), offset by c_y / u, clamped, and
    re-enter it through the per-output power unit."""

    in_grids: tuple[QuantParams, ...]
    decode: tuple[np.ndarray, ...] = field(repr=False)
    unit: float = 1.0
    r_offset: int = 0
    r_lo: int = 0
    r_hi: int = 0
    kind: str = "add"              # add | concat | avg | global
    axis: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    counts: np.ndarray | None = None  # avg: divisor per output position


@dataclass(eq=False)
class RescaleStep(Step):
    in_grids: tuple[QuantParams, ...]
    multipliers: tuple[int, ...]   # one per input, on the common shift
    shift: int
    clamp_lo: int
    clamp_hi: int
    axis: int | None = None        # concat axis; None: add


@dataclass(eq=False)
class PoolStep(Step):
    attrs: dict[str, Any]
    in_grid: QuantParams
    kind: str = "max"              # max | avg | global
    # avg / global: per output position (Ho, Wo) the multiplier and shift of s_x / (s_y * count)
    multiplier: np.ndarray | None = None
    shift: np.ndarray | None = None
    clamp_lo: int = 0
    clamp_hi: int = 0


@dataclass(eq=False)
class LutStep(Step):
    in_grid: QuantParams
    table: np.ndarray = field(repr=False)  # codes of the output, indexed by input code - qmin


@dataclass(eq=False)
class ReluStep(Step):
    pass


@dataclass(eq=False)
class ShapeStep(Step):
    node: Any = field(repr=False)  # the graph node (its shape attributes)


@dataclass(eq=False)
class IntegerProgram:
    name: str
    steps: list[Step]
    outputs: list[str]
    input_shapes: dict[str, tuple[int, ...]]  # per input, one sample's shape
    accumulator_bits: int
    accumulator_overflow: str
    hw_name: str

    @property
    def gemm_steps(self) -> list:
        return [s for s in self.steps if isinstance(s, (GemmStep, PowerGemmStep))]


# ----------------------------------------------------------------------------- helpers


def clamp_bounds(grid: QuantParams, activation: str | None) -> tuple[int, int]:
    """[lo, hi] codes of `grid`, narrowed by a fused relu (0 -> z) or relu6 (also 6 -> z + round(6/s))."""
    lo, hi = int(grid.qmin), int(grid.qmax)
    z = pad_code(grid)  # the code of 0.0
    if activation in ("relu", "relu6"):
        lo = max(lo, z)
    if activation == "relu6":
        hi = min(hi, int(grid.quantize(np.array([6.0]))[0]))
    return lo, hi


def common_multipliers(reals: list[float]) -> tuple[tuple[int, ...], int]:
    """Integer multipliers on one shift for real multipliers > 0: m_i ~= mult_i * 2^-shift.

    The largest takes the full 31-bit multiplier; the others share its shift."""
    mult, shift = quantize_multiplier(np.array([max(reals)]))
    s = int(shift[0])
    if s < 0:
        raise AccelsimError(f"rescale multiplier {max(reals):.3g} is too large for a {REQUANT_BITS}-bit multiplier")
    return tuple(int(round_half_away(r * 2.0 ** s)) for r in reals), s


def _scalar_grid(q: QuantParams, where: str) -> QuantParams:
    if q.per_channel:
        raise AccelsimError(f"{where}: per-channel activation grids are not supported by the integer executor")
    return q


def lower(qg: QGraph, hw) -> IntegerProgram:
    """The integer program of `qg` on `hw` (zero-point unit, accumulator width and overflow)."""
    if not qg.layers and not qg.activations:
        raise AccelsimError(f"{qg.name}: recipe {getattr(qg.recipe, 'method', qg.recipe)} is not quantized: "
                            "nothing to execute in integers")
    g = qg.graph
    sites, grid_of = activation_sites(g)
    grids = {s: _scalar_grid(qg.activations[s], f"site '{s}'") for s in sites}
    # a producer whose output is quantized after its fused relu/relu6: the consumer's grid
    fused_into: dict[str, str] = {}
    for node in g.nodes:
        if node.op != "input" and grid_of.get(node.name) is None:
            fused_into[node.name] = g.consumers(node.name)[0].name

    def grid_of_tensor(name: str) -> QuantParams:
        site = grid_of.get(name) or fused_into.get(name)
        if site is None:
            raise AccelsimError(f"{qg.name}: tensor '{name}' is on no quantization grid")
        return grids[site]

    def out_grid_and_clamp(name: str) -> tuple[QuantParams, int, int]:
        if name in fused_into:
            consumer = fused_into[name]
            grid = grids[consumer]
            return (grid, *clamp_bounds(grid, g[consumer].op))
        grid = grids[grid_of[name]]
        return (grid, *clamp_bounds(grid, None))

    zp_unit = hw.quantization.zero_point_unit
    steps: list[Step] = []
    shapes = g.shapes(1)
    for node in g.nodes:
        name, op, ins = node.name, node.op, tuple(node.inputs)
        where = f"{qg.name}: layer '{name}' ({op})"
        if op == "input":
            steps.append(InputStep(name, op, ins, grids[name]))
        elif name in qg.layers and lq_is_power(qg.layers[name]):
            grid, _, _ = out_grid_and_clamp(name)
            act = g[fused_into[name]].op if name in fused_into else None
            steps.append(_power_gemm_step(qg.layers[name], node, g.layer(name, 1).gemm, grid, act, hw))
        elif name in qg.layers:
            lq = qg.layers[name]
            grid, lo, hi = out_grid_and_clamp(name)
            asym = lq.weight_q.scheme == "asymmetric"
            info = g.layer(name, 1)
            w = np.asarray(lq.weight_int, np.int64)
            steps.append(GemmStep(
                name, op, ins, grid, attrs=dict(node.attrs), gemm=info.gemm, in_grid=lq.input_q,
                weight_codes=w.reshape(len(w), -1), weight_shape=tuple(w.shape),
                weight_zero_point=np.broadcast_to(np.asarray(lq.weight_q.zero_point, np.int64), (len(w),)).copy(),
                accumulator_bias=np.asarray(lq.accumulator_bias, np.int64),
                zero_point_unit=zp_unit if asym else "none",
                multiplier=np.asarray(lq.requant_multiplier, np.int64), shift=np.asarray(lq.requant_shift, np.int64),
                clamp_lo=lo, clamp_hi=hi, weight_bits=lq.weight_q.bits, activation_bits=lq.input_q.bits,
                fused_activation=lq.fused_activation))
        elif op in ("conv2d", "linear"):
            raise AccelsimError(f"{where}: has no integer weights in the quantized model")
        elif op in ("relu", "relu6") and grid_of.get(ins[0]) is None:
            # the producer already clamped onto this site's grid
            steps.append(ShapeStep(name, "identity", ins, grids[name], node=node))
        elif op == "relu":  # on a quantized tensor: it keeps the grid
            steps.append(ReluStep(name, op, ins, grid_of_tensor(ins[0])))
        elif op in SHAPE_OPS or op == "maxpool":
            grid = grid_of_tensor(ins[0])
            if op == "maxpool":
                steps.append(PoolStep(name, op, ins, grid, attrs=dict(node.attrs), in_grid=grid, kind="max"))
            else:
                steps.append(ShapeStep(name, op, ins, grid, node=node))
        elif op in LUT_OPS:
            steps.append(_lut_step(node, grid_of_tensor(ins[0]), grids[name]))
        elif op in ("add", "concat", "avgpool", "globalavgpool") and grid_of_tensor(ins[0]).is_power:
            grid, _, _ = out_grid_and_clamp(name)
            act = g[fused_into[name]].op if name in fused_into else None
            steps.append(_power_join_step(node, tuple(grid_of_tensor(i) for i in ins), grid, act, hw, shapes))
        elif op in ("add", "concat"):
            grid, lo, hi = out_grid_and_clamp(name)
            in_grids = tuple(grid_of_tensor(i) for i in ins)
            mults, shift = common_multipliers([float(q.scale) / float(grid.scale) for q in in_grids])
            axis = None
            if op == "concat":
                axis = node.attrs["axis"] % len(shapes[name])
            steps.append(RescaleStep(name, op, ins, grid, in_grids=in_grids, multipliers=mults, shift=shift,
                                     clamp_lo=lo, clamp_hi=hi, axis=axis))
        elif op in ("avgpool", "globalavgpool"):
            grid, lo, hi = out_grid_and_clamp(name)
            in_grid = grid_of_tensor(ins[0])
            counts = _window_counts(node, shapes[ins[0]])
            real = float(in_grid.scale) / (float(grid.scale) * counts.astype(np.float64))
            mult, shift = quantize_multiplier(real.reshape(-1))
            steps.append(PoolStep(name, op, ins, grid, attrs=dict(node.attrs), in_grid=in_grid,
                                  kind="avg" if op == "avgpool" else "global",
                                  multiplier=mult.reshape(counts.shape), shift=shift.reshape(counts.shape),
                                  clamp_lo=lo, clamp_hi=hi))
        else:
            raise AccelsimError(f"{where}: the integer executor has no integer form of '{op}' "
                                f"(supported: conv2d, linear, add, concat, pools, relu, {', '.join(LUT_OPS)}, "
                                f"{', '.join(SHAPE_OPS)})")
    p = hw.precision
    return IntegerProgram(qg.name, steps, list(g.outputs),
                          {i: tuple(g[i].attrs["shape"]) for i in g.inputs},
                          p.accumulator_bits, p.accumulator_overflow, hw.name)


def _lut_step(node, in_grid: QuantParams, out_grid: QuantParams) -> LutStep:
    from ..graph.run import run_node

    codes = np.arange(in_grid.qmin, in_grid.qmax + 1, dtype=np.int64)
    x = in_grid.dequantize(codes).reshape(1, -1)  # float32, as the fake-quant reference sees it
    y = run_node(node, [x]).reshape(-1)
    return LutStep(node.name, node.op, tuple(node.inputs), out_grid, in_grid=in_grid,
                   table=out_grid.quantize(y).astype(np.int64))


def _window_counts(node, in_shape: tuple[int, ...]) -> np.ndarray:
    """Divisor per output position (Ho, Wo) of an average pool (global: one position)."""
    h, w = in_shape[2:]
    if node.op == "globalavgpool":
        return np.full((1, 1), h * w, np.int64)
    from ..graph.run import _pool_geometry, _window_counts as counts_1d

    kernel, stride, (t, l, b, r), (ho, wo), _ = _pool_geometry(np.empty((1, 1, h, w), np.float32), node.attrs)
    include = bool(node.attrs.get("count_include_pad", True))
    ch = counts_1d(h, kernel[0], stride[0], t, b, ho, include)
    cw = counts_1d(w, kernel[1], stride[1], l, r, wo, include)
    return (ch[:, None] * cw[None, :]).astype(np.int64)


# ----------------------------------------------------------------------------- PowerQuant


def lq_is_power(lq) -> bool:
    return lq.weight_q.is_power


def _top(q: QuantParams) -> np.ndarray:
    """x + c at the top code: (s qmax)^(1/a) (per channel for weights)."""
    return (np.asarray(q.scale, np.float64) * q.qmax) ** (1.0 / q.power)


def _output_stage(out_grid: QuantParams, activation: str | None, bits: int) -> tuple[float, int, int, int]:
    """(u, r offset for c_y, r_lo, r_hi) of the fixed-point value r = (y + c_y) / u, R = `bits`."""
    r_max = 2**bits - 1
    unit = float(_top(out_grid)) / r_max
    r_off = int(round_half_away(out_grid.offset / unit))
    r_lo = r_off if activation in ("relu", "relu6") else 0  # y >= 0
    r_hi = r_max
    if activation == "relu6":
        r_hi = min(r_hi, int(round_half_away((6.0 + out_grid.offset) / unit)))
    return unit, r_off, r_lo, r_hi


def power_tables(weight_q: QuantParams, in_grid: QuantParams, products: str, hw) -> tuple[np.ndarray | None, int]:
    """(V[|q_w|, q_x] table, its fraction bits) of a power layer's products."""
    qw, qx = int(weight_q.qmax), int(in_grid.qmax)
    aw, ax = float(weight_q.power), float(in_grid.power)
    i = np.arange(qw + 1, dtype=np.float64)[:, None]
    j = np.arange(qx + 1, dtype=np.float64)[None, :]
    q = hw.quantization
    if products == "product_lut":
        f = q.power_product_frac_bits
        if aw == ax:  # indexed by the integer product, as the PE forms it
            v = ((i * j) / (qw * qx)) ** (1.0 / aw)
        else:  # per-layer exponents: a table of the code pair
            v = (i / qw) ** (1.0 / aw) * (j / qx) ** (1.0 / ax)
        return round_half_away(v * 2.0**f).astype(np.int64), f
    if products == "decode_lut":
        fd = q.power_decode_frac_bits
        dw = round_half_away((i / qw) ** (1.0 / aw) * 2.0**fd).astype(np.int64)
        dx = round_half_away((j / qx) ** (1.0 / ax) * 2.0**fd).astype(np.int64)
        return dw * dx, 2 * fd
    return None, 0


def _power_gemm_step(lq, node, gemm: GemmView, out_grid: QuantParams, activation: str | None, hw) -> PowerGemmStep:
    wq, xq = lq.weight_q, lq.input_q
    if not xq.is_power or not out_grid.is_power:
        raise AccelsimError(f"layer '{lq.name}': a PowerQuant layer needs power grids at its input and output")
    products = hw.quantization.power_products
    w = np.asarray(lq.weight_int, np.int64)
    o = len(w)
    table, frac = power_tables(wq, xq, products, hw)
    w_hat = wq.dequantize(w, np.float64).reshape(o, -1)
    # eq. 5: the products see x + c_x, so c_x sum W comes off the bias
    bias_eff = np.asarray(lq.bias_float, np.float64) - xq.offset * w_hat.sum(axis=1)
    unit, r_off, r_lo, r_hi = _output_stage(out_grid, activation, hw.quantization.power_output_bits)
    m_w = _top(wq) * np.ones(o)  # M_n
    x_top = float(_top(xq))
    step = PowerGemmStep(lq.name, node.op, tuple(node.inputs), out_grid, attrs=dict(node.attrs), gemm=gemm,
                         in_grid=xq, weight_codes=w.reshape(o, -1), weight_shape=tuple(w.shape), products=products,
                         table=table, r_lo=r_lo, r_hi=r_hi, unit=unit, weight_bits=wq.bits, activation_bits=xq.bits,
                         fused_activation=activation)
    if products == "sum_power":
        step.channel_scale = m_w * x_top / (float(wq.qmax) * float(xq.qmax)) ** (1.0 / float(wq.power))
        step.bias_real = bias_eff + out_grid.offset
        return step
    c_n = m_w * x_top * 2.0**-frac
    step.channel_scale = c_n
    step.accumulator_bias = round_half_away((bias_eff + out_grid.offset) / c_n).astype(np.int64)
    step.multiplier, step.shift = quantize_multiplier(c_n / unit)
    return step


def _power_join_step(node, in_grids, out_grid: QuantParams, activation: str | None, hw, shapes) -> PowerJoinStep:
    unit, r_off, r_lo, r_hi = _output_stage(out_grid, activation, hw.quantization.power_output_bits)
    decode = tuple(round_half_away(q.dequantize(np.arange(q.qmin, q.qmax + 1), np.float64) / unit).astype(np.int64)
                   for q in in_grids)
    kind = {"add": "add", "concat": "concat", "avgpool": "avg", "globalavgpool": "global"}[node.op]
    axis = node.attrs["axis"] % len(shapes[node.name]) if node.op == "concat" else None
    counts = _window_counts(node, shapes[node.inputs[0]]) if kind in ("avg", "global") else None
    return PowerJoinStep(node.name, node.op, tuple(node.inputs), out_grid, in_grids=in_grids, decode=decode,
                         unit=unit, r_offset=r_off, r_lo=r_lo, r_hi=r_hi, kind=kind, axis=axis,
                         attrs=dict(node.attrs), counts=counts)


def power_encode(r: np.ndarray, unit: float, grid: QuantParams) -> np.ndarray:
    """The per-output power unit: the code round((r u)^a / s) of the fixed-point value r = (y + c) / u."""
    t = (np.asarray(r, np.float64) * unit) ** float(grid.power) / float(grid.scale)
    return np.clip(round_half_away(t), grid.qmin, grid.qmax).astype(np.int32)
