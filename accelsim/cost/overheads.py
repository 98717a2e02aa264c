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

PowerQuant (Yvinec et al. ICLR 2023, eq. 5 and appendix F; issue 10): with power-domain codes
each product needs its 1/a power before it is accumulated, and each output its power a before
it is quantized for the next layer. The datapath's widths and tables are
``accelsim.cost.energy.power_datapath``; the counts per layer (M, K, N per group, g groups):
- the per-output unit (every realisation): one evaluation per output element, M N g, input
  width power_output_bits = P. One unit per array column (like the requantization lanes);
  lut: 1 cycle; newton: worst-case iterations of a P-bit input x (P-cycle restoring divide +
  add + shift). Pipelined units accept one evaluation per cycle, iterative ones one per latency.
- product_lut: one product-LUT read per MAC the array runs (M K N g); the lookup is one more
  pipeline stage in each PE in front of the adder: it delays every PE's schedule by the same
  one cycle, so it costs no cycles (the one cycle of fill per fold is not counted, as the
  multiplier's own stage is not).
- decode_lut: one decode-table read per operand element entering the array, counted in
  ``accelsim.cost.actions`` from the memory model's SRAM reads (each SRAM read of the ifmap
  and filter buffers is an element fetched into the array); the decode is a pipeline stage at
  the edge, no cycles (same argument).
- sum_power (the ablation): one more evaluation per output element, M N g, of the accumulated
  sum (input width accumulator_bits) on a Newton unit per lane, in front of the per-output
  unit: in series, so a lane accepts a new output at the slower unit's initiation interval
  and an output leaves after both latencies.
The units work beside the array: the layer pays the work the array's cycles cannot hide, plus
the latency of the last evaluation.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from accelsim.cost import tables
from accelsim.cost.energy import newton_iterations, power_datapath
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
    power_evals: int             # the per-output unit (x -> x^a), one per output element
    power_latency_cycles: int
    power_interval_cycles: int   # initiation interval of one power unit
    # PowerQuant's products (zero / "none" without a power unit; see the module docstring)
    power_products: str = "none"       # none | product_lut | decode_lut | sum_power
    product_lut_reads: int = 0         # one per MAC the array runs
    sum_power_evals: int = 0           # one per output element
    sum_power_latency_cycles: int = 0
    sum_power_interval_cycles: int = 0
    # operand widths of this layer: the codes in memory (the B operand: weight_bits, or
    # activation_bits for a matmul of two activations) and what the PE registers hold
    b_code_bits: int = 0
    a_code_bits: int = 0
    b_reg_bits: int = 0
    a_reg_bits: int = 0
    pipe_reg_bits: int = 0             # product_lut: the lookup's pipeline register, per MAC

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
    sum_latency, sum_interval = sum_power_timing(hw)
    pd = power_datapath(hw)
    b_code = p.weight_bits if weights else p.activation_bits
    # decode_lut: a matmul's B operand is decoded like a weight (signed, Fd + 1 bits)
    b_reg = pd.weight_reg_bits if pd.products == "decode_lut" else b_code
    return LayerOverheads(
        executed_gemm=executed, outputs=outputs, bias_bytes=bias_bytes,
        requant_param_bytes=requant_param_bytes, zero_point_param_bytes=zp_param_bytes,
        zp_window_adds=window_adds, zp_mults=zp_mults, zp_adds=zp_adds,
        power_evals=outputs if q.power_unit != "none" else 0,
        power_latency_cycles=latency, power_interval_cycles=interval,
        power_products=pd.products,
        product_lut_reads=executed.macs if pd.products == "product_lut" else 0,
        sum_power_evals=outputs if pd.products == "sum_power" else 0,
        sum_power_latency_cycles=sum_latency, sum_power_interval_cycles=sum_interval,
        b_code_bits=b_code, a_code_bits=p.activation_bits, b_reg_bits=b_reg, a_reg_bits=pd.act_reg_bits,
        pipe_reg_bits=pd.pipe_reg_bits,
    )


def _unit_timing(unit: str, bits: int, throughput: str) -> tuple[int, int]:
    if unit == "none":
        return 0, 0
    if unit == "lut":
        return 1, 1
    _, worst = newton_iterations(bits)
    latency = worst * (bits + 2)  # b-cycle restoring divide, an add, a shift per iteration
    return latency, 1 if throughput == "pipelined" else latency


def power_unit_timing(hw) -> tuple[int, int]:
    """(latency, initiation interval) in cycles of one per-output power unit (input width
    ``power_output_bits``); (0, 0) without one."""
    q = hw.quantization
    return _unit_timing(q.power_unit, q.power_output_bits, q.power_unit_throughput)


def sum_power_timing(hw) -> tuple[int, int]:
    """(latency, initiation interval) of one sum_power unit (a Newton unit on an
    accumulator_bits-bit sum); (0, 0) in the other realisations."""
    q = hw.quantization
    if q.power_unit == "none" or q.power_products != "sum_power":
        return 0, 0
    return _unit_timing("newton", hw.precision.accumulator_bits, q.power_unit_throughput)


def power_unit_cycles(ov: LayerOverheads, array_cycles: int, lanes: int) -> int:
    """Cycles the power units add to a layer: the work the array's cycles cannot hide, plus
    the latency of the last evaluation (sum_power: its unit and the per-output unit in series
    in each lane: the slower initiation interval, both latencies)."""
    if ov.power_evals == 0:
        return 0
    interval = max(ov.power_interval_cycles, ov.sum_power_interval_cycles if ov.sum_power_evals else 0)
    latency = ov.power_latency_cycles + (ov.sum_power_latency_cycles if ov.sum_power_evals else 0)
    busy = math.ceil(ov.power_evals / lanes) * interval
    return max(0, busy - array_cycles) + latency
