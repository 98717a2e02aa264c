"""The price of numeric formats, counted per layer: zero-points, requantization parameters,
power-function units. Each count is a function of the layer's GEMM view and the config.

Asymmetric weights (white paper §2.4.1, eq. 13; reference/energy.md): with
W = s_w (W_int - z_w), every output needs z_w * sum of its input window, a data-dependent term:
- the window sum (K inputs) is shared by all N outputs of a group at that pixel;
- then one multiply (z_w x sum) and one add per output.
Where the window sums run is ``quantization.zero_point_unit``:
- extra_column: a filter of ones rides in the array as output channel N+1 of each group
  (the white paper's "equivalent to adding an extra channel"): K extra MACs per pixel and
  group, and whatever extra folds that costs in cycles;
- adder_tree: an adder tree beside the array sums the inputs as they stream in: K-1 adds per
  pixel and group, no array cycles (it keeps pace with the input stream).
The per-output multiply-add runs in the output stage beside requantization, pipelined: no
cycles.

Asymmetric activations: z_x * sum(W) and K z_w z_x are constants folded into the int32 bias;
the bias is loaded for every layer anyway (BN folding puts one there) and the output
zero-point add is part of the fixed requantization pipeline, so this costs nothing at run time.

Per-channel vs per-tensor weights: the per-output requantization work is the same; per-channel
stores and fetches one (multiplier, shift) pair per output channel instead of one per layer
(and, with asymmetric weights, one weight zero-point per channel).

Power-function units (PowerQuant, Yvinec et al. ICLR 2023 §3.3, Algorithm 2): the
de-quantization power and the next layer's input power fuse with the activation into one
function of each output, so one evaluation per output element. One unit per array column
(like the requantization lanes); lut: 1 cycle; newton: worst-case iterations x (b-cycle
restoring divide + add + shift). Pipelined units accept one evaluation per cycle, iterative
ones one per latency. The units work beside the array: the layer pays the work the array's
cycles cannot hide, plus the latency of the last evaluation.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from accelsim.cost import tables
from accelsim.cost.energy import newton_iterations
from accelsim.graph.ops import GemmView


@dataclass(frozen=True)
class LayerOverheads:
    """Numeric-format extras of one layer (counts; cycles need the array's cycles)."""

    executed_gemm: GemmView      # what the array runs (N+1 per group with an extra column)
    outputs: int                 # output elements: requantizations
    bias_bytes: float
    requant_param_bytes: float   # (multiplier, shift) pairs
    zero_point_param_bytes: float
    zp_window_adds: int          # adder tree: input-window sums
    zp_mults: int                # z_w x window sum, per output
    zp_adds: int                 # adding that correction, per output
    power_evals: int
    power_latency_cycles: int
    power_interval_cycles: int   # initiation interval of one power unit

    @property
    def param_bytes(self) -> float:
        return self.bias_bytes + self.requant_param_bytes + self.zero_point_param_bytes


def has_weights(layer) -> bool:
    """conv / linear carry a weight tensor; a matmul multiplies two activations."""
    return layer.weight_elems > 0


def layer_overheads(layer, hw) -> LayerOverheads:
    """The numeric-format counts of ``layer`` (a LayerInfo with a GEMM view) on ``hw``."""
    g: GemmView = layer.gemm
    q, p = hw.quantization, hw.precision
    outputs = g.M * g.N * g.groups
    channels = g.N * g.groups
    weights = has_weights(layer)
    # a matmul's B operand is an activation: it follows the activation scheme
    b_asym = (q.weight_scheme if weights else q.activation_scheme) == "asymmetric"
    per_channel = weights and q.weight_granularity == "per_channel"

    pair_bits = tables.REQUANT_MULTIPLIER_BITS + tables.REQUANT_SHIFT_BITS
    requant_param_bytes = (channels if per_channel else 1) * pair_bits / 8
    bias_bytes = channels * p.accumulator_bits / 8 if weights else 0.0
    zp_param_bytes = 0.0
    executed = g
    window_adds = zp_mults = zp_adds = 0
    if b_asym:
        if weights:
            zp_param_bytes = (channels if per_channel else 1) * p.weight_bits / 8
        zp_mults = zp_adds = outputs
        if weights and q.zero_point_unit == "extra_column":
            executed = dataclasses.replace(g, N=g.N + 1)
        else:
            window_adds = g.M * g.groups * (g.K - 1)
    if not weights and q.activation_scheme == "asymmetric":
        # A's zero-point times the column sums of B: K-1 adds per column, a multiply-add per output
        window_adds += g.N * g.groups * (g.K - 1)
        zp_mults += outputs
        zp_adds += outputs
    latency, interval = power_unit_timing(hw)
    return LayerOverheads(
        executed_gemm=executed, outputs=outputs, bias_bytes=bias_bytes,
        requant_param_bytes=requant_param_bytes, zero_point_param_bytes=zp_param_bytes,
        zp_window_adds=window_adds, zp_mults=zp_mults, zp_adds=zp_adds,
        power_evals=outputs if q.power_unit != "none" else 0,
        power_latency_cycles=latency, power_interval_cycles=interval,
    )


def power_unit_timing(hw) -> tuple[int, int]:
    """(latency, initiation interval) in cycles of one power unit; (0, 0) without one."""
    q, b = hw.quantization, hw.precision.activation_bits
    if q.power_unit == "none":
        return 0, 0
    if q.power_unit == "lut":
        return 1, 1
    _, worst = newton_iterations(b)
    latency = worst * (b + 2)  # b-cycle restoring divide, an add, a shift per iteration
    return latency, 1 if q.power_unit_throughput == "pipelined" else latency


def power_unit_cycles(ov: LayerOverheads, array_cycles: int, lanes: int) -> int:
    """Cycles the power units add to a layer: the work the array's cycles cannot hide, plus
    the latency of the last evaluation."""
    if ov.power_evals == 0:
        return 0
    busy = math.ceil(ov.power_evals / lanes) * ov.power_interval_cycles
    return max(0, busy - array_cycles) + ov.power_latency_cycles
