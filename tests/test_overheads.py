"""The price of numeric formats: each test changes exactly ONE config field on a small layer
and checks the extra actions and cycles against a formula derived by hand here.

The layer: a 3x3 conv, 4 -> 8 channels, on a 6x6 input without padding: 4x4 outputs.
GEMM view: M = 16 output pixels, K = 4*3*3 = 36, N = 8, one group; 128 outputs.
The array: 4x4, weight stationary, serial preload: K over rows (9 row folds), N over
columns (2 col folds), M streams. A weight-stationary fold using cu columns takes
T + R + cu - 2 cycles plus an R-cycle preload (sim/timing.py). Buffers and bandwidth are
ample, so no stream tiling and no stalls: cycle differences are the overheads alone.
"""
import math

import pytest

import accelsim
from accelsim.config import hw_from_dict
from accelsim.cost import tables
from accelsim.cost.energy import energy_costs
from accelsim.cost.model import simulate
from accelsim.graph.builder import GraphBuilder

M, K, N, G = 16, 36, 8, 1
R = C = 4
OUTPUTS = M * N * G
ROW_FOLDS = math.ceil(K / R)      # 9
COL_FOLDS = math.ceil(N / C)      # 2
PAIR_BYTES = (32 + 8) / 8         # int32 multiplier + 8-bit shift
WB = AB = 8                       # small_hw's precision; accumulator_bits defaults to 32
ACC = 32
P = 20                            # power_output_bits default: the per-output unit's input


def fold(t, cu):
    return t + R + cu - 2 + R


BASE_CYCLES = ROW_FOLDS * COL_FOLDS * fold(M, C)   # 9 * 2 * 26 = 468


def small_hw(**quantization):
    return hw_from_dict({
        "name": "tiny", "clock_mhz": 1000,
        "pe_array": {"rows": R, "cols": C, "dataflow": "weight_stationary"},
        "precision": {"weight_bits": 8, "activation_bits": 8},
        "quantization": {"weight_scheme": "symmetric", "activation_scheme": "symmetric",
                         "weight_granularity": "per_tensor", "power_unit": "none", **quantization},
        "memory": {"ifmap_sram_kib": 1024, "filter_sram_kib": 1024, "ofmap_sram_kib": 1024,
                   "dram_bandwidth_gbps": 1e9},
    })


@pytest.fixture(scope="module")
def graph():
    b = GraphBuilder("one_conv")
    b.input((4, 6, 6))
    b.add("conv2d", name="conv", out_channels=8, kernel=3)
    return b.build()


def row(graph, hw):
    return simulate(graph, hw).layers.iloc[0]


def diff(graph, before, after, cols):
    a, b = row(graph, before), row(graph, after)
    return {c: b[c] - a[c] for c in cols}


COLS = ["array_macs", "acc_adds", "zp_window_adds", "zp_mults", "zp_adds", "requants", "power_evals",
        "dram_params_bytes", "compute_cycles", "zero_point_cycles", "tiling_cycles", "power_unit_cycles",
        "stall_cycles", "total_cycles", "dram_filter_bytes", "dram_ofmap_bytes", "dram_bytes"]


def test_the_baseline_is_what_the_header_says(graph):
    r = row(graph, small_hw())
    assert (r["M"], r["K"], r["N"], r["groups"]) == (M, K, N, G)
    assert r["compute_cycles"] == r["total_cycles"] == BASE_CYCLES
    assert r["array_macs"] == r["macs"] == M * K * N
    assert r["requants"] == OUTPUTS
    # params: an int32 bias per output channel and one per-tensor (multiplier, shift) pair
    assert r["dram_params_bytes"] == N * 4 + PAIR_BYTES
    assert r["zp_window_adds"] == r["zp_mults"] == r["zp_adds"] == r["power_evals"] == 0


def test_asymmetric_weights_on_an_extra_column(graph):
    d = diff(graph, small_hw(), small_hw(weight_scheme="asymmetric"), COLS)
    # a filter of ones as column N+1: K MACs per output pixel; N+1 = 9 columns need a third
    # col fold of one column in each of the 9 row folds
    extra_fold_cycles = ROW_FOLDS * fold(M, 1)                 # 9 * 19 = 171
    assert d["array_macs"] == M * K * G                           # 576
    # one accumulate per MAC, and the ones column's psums land in the accumulator every row fold
    assert d["acc_adds"] == M * K * G + ROW_FOLDS * M * G           # 576 + 144
    assert d["zp_mults"] == d["zp_adds"] == OUTPUTS                 # z_w x window sum, + per output
    assert d["zp_window_adds"] == 0                                 # the array does the sums
    assert d["dram_params_bytes"] == 1                              # one 8-bit z_w (per tensor)
    # the ones are generated on chip and the window sums stay in the output stage
    assert d["dram_filter_bytes"] == pytest.approx(0, abs=1e-9)
    assert d["dram_ofmap_bytes"] == pytest.approx(0, abs=1e-9) and d["dram_bytes"] == pytest.approx(1)
    assert d["zero_point_cycles"] == d["total_cycles"] == extra_fold_cycles
    assert d["compute_cycles"] == d["stall_cycles"] == d["tiling_cycles"] == 0
    assert d["requants"] == d["power_evals"] == 0


def test_asymmetric_weights_on_an_adder_tree(graph):
    d = diff(graph, small_hw(zero_point_unit="adder_tree"),
             small_hw(zero_point_unit="adder_tree", weight_scheme="asymmetric"), COLS)
    assert d["zp_window_adds"] == M * G * (K - 1)                   # 560: one window sum per pixel
    assert d["zp_mults"] == d["zp_adds"] == OUTPUTS
    assert d["array_macs"] == d["acc_adds"] == 0
    assert d["dram_params_bytes"] == 1
    assert d["total_cycles"] == d["zero_point_cycles"] == 0          # beside the array


def test_moving_the_window_sums_from_a_column_to_an_adder_tree(graph):
    d = diff(graph, small_hw(weight_scheme="asymmetric"),
             small_hw(weight_scheme="asymmetric", zero_point_unit="adder_tree"), COLS)
    assert d["total_cycles"] == -ROW_FOLDS * fold(M, 1)
    assert d["array_macs"] == -M * K * G and d["zp_window_adds"] == M * G * (K - 1)
    assert d["zp_mults"] == d["zp_adds"] == 0


def test_asymmetric_activations_cost_nothing_at_run_time(graph):
    a = simulate(graph, small_hw()).layers
    b = simulate(graph, small_hw(activation_scheme="asymmetric")).layers
    # the constant terms fold into the bias (loaded anyway); the output zero-point add is part
    # of the fixed requantization pipeline: every column, cycles and energy included, is equal
    assert a.equals(b)


def test_per_channel_scales_fetch_one_pair_per_output_channel(graph):
    d = diff(graph, small_hw(), small_hw(weight_granularity="per_channel"), COLS + ["dram_bytes"])
    assert d["dram_params_bytes"] == d["dram_bytes"] == (N * G - 1) * PAIR_BYTES   # 35
    assert d["requants"] == 0 and d["total_cycles"] == 0
    before = simulate(graph, small_hw()).layers.iloc[0]
    after = simulate(graph, small_hw(weight_granularity="per_channel")).layers.iloc[0]
    # the requantization work per output is the same; only the parameter traffic grows
    assert after["energy_requant_pj"] == before["energy_requant_pj"]
    hw = small_hw()
    c = energy_costs(hw)
    extra = (N * G - 1) * PAIR_BYTES * 8 * (c["dram_pj_per_bit"] + 2 * c["filter_sram_pj_per_bit"])
    assert after["energy_pj"] - before["energy_pj"] == pytest.approx(extra)


def test_per_channel_weight_zero_points_with_asymmetric_weights(graph):
    d = diff(graph, small_hw(weight_scheme="asymmetric"),
             small_hw(weight_scheme="asymmetric", weight_granularity="per_channel"), COLS)
    assert d["dram_params_bytes"] == (N * G - 1) * (PAIR_BYTES + 1)  # pairs and 8-bit z_w
    assert d["total_cycles"] == 0


def test_lut_power_unit(graph):
    # power_unit lut turns on PowerQuant's datapath (its products default to product_lut, priced
    # in the section below); here: the per-output unit, x -> x^a on a P = 20-bit input
    d = diff(graph, small_hw(), small_hw(power_unit="lut"), COLS)
    assert d["power_evals"] == OUTPUTS
    # one evaluation per cycle on each of C lanes: ceil(128 / 4) = 32 cycles, hidden behind 468
    # array cycles; the last evaluation's 1-cycle latency shows (the product LUTs add none)
    assert d["power_unit_cycles"] == d["total_cycles"] == 1
    hw = small_hw(power_unit="lut")
    # one 8-bit read of a 2^20-entry x 8-bit table: 1 MiB, Horowitz's 1 MB anchor (100 pJ / 64 bits)
    per_eval = 8 * 100 / 64
    assert energy_costs(hw)["power_eval_pj"] == pytest.approx(per_eval)
    assert row(graph, hw)["energy_power_pj"] == pytest.approx(OUTPUTS * per_eval)


def test_pipelined_newton_power_unit(graph):
    d = diff(graph, small_hw(), small_hw(power_unit="newton"), COLS)
    # a P = 20-bit input: the worst case is 4 iterations at 8 bits, 6 at 32, linear in log2(bits):
    # 4 + 2 (log2 20 - 3) / 2 = 5.32 -> 6
    worst = 6
    latency = worst * (P + 2)                                         # 6 x 22 = 132
    assert d["power_evals"] == OUTPUTS
    assert d["power_unit_cycles"] == d["total_cycles"] == latency


def test_iterative_newton_power_unit_does_not_keep_pace(graph):
    d = diff(graph, small_hw(power_unit="newton"),
             small_hw(power_unit="newton", power_unit_throughput="iterative"), COLS)
    latency = 6 * (P + 2)                                             # 132
    busy = math.ceil(OUTPUTS / C) * latency                           # 32 x 132 = 4224
    assert d["power_unit_cycles"] == d["total_cycles"] == (busy - BASE_CYCLES + latency) - latency
    assert d["power_evals"] == 0


def test_the_per_output_unit_is_sized_on_power_output_bits(graph):
    # P = 12: a 2^12 x 8-bit LUT (4 KiB: below the 8 KiB anchor, on the first segment's slope 1/2)
    lut = energy_costs(small_hw(power_unit="lut", power_output_bits=12))["power_eval_pj"]
    assert lut == pytest.approx(8 * 10 / 64 * (4 / 8) ** 0.5)
    # Newton at 12 bits: worst 4 + (log2 12 - 3) = 4.58 -> 5 iterations of 12 + 2 cycles
    d = diff(graph, small_hw(), small_hw(power_unit="newton", power_output_bits=12), COLS)
    assert d["power_unit_cycles"] == d["total_cycles"] == 5 * 14


def test_four_bit_weights_move_half_the_filter_bytes(graph):
    a = row(graph, small_hw())
    b = row(graph, hw_from_dict({**small_hw().to_dict(), "precision": {"weight_bits": 4, "activation_bits": 8}}))
    assert a["dram_filter_bytes"] == K * N * 8 / 8 and b["dram_filter_bytes"] == K * N * 4 / 8
    assert b["total_cycles"] == a["total_cycles"]
    assert b["energy_mac_pj"] == pytest.approx(a["energy_mac_pj"] / 2)    # multiplier ~ wb x ab


def test_simulate_is_the_public_cost_run(graph):
    assert accelsim.simulate is simulate or accelsim.simulate.__module__ == "accelsim.cost.model"

