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
from accelsim.cost.area import area_breakdown_mm2
from accelsim.cost.energy import energy_costs, power_datapath
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
P = 20                            # power_output_bits set by small_hw: the per-output unit's input


def fold(t, cu):
    return t + R + cu - 2 + R


BASE_CYCLES = ROW_FOLDS * COL_FOLDS * fold(M, C)   # 9 * 2 * 26 = 468


def small_hw(**quantization):
    return hw_from_dict({
        "name": "tiny", "clock_mhz": 1000,
        "pe_array": {"rows": R, "cols": C, "dataflow": "weight_stationary"},
        "precision": {"weight_bits": 8, "activation_bits": 8},
        "quantization": {"weight_scheme": "symmetric", "activation_scheme": "symmetric",
                         "weight_granularity": "per_tensor", "power_unit": "none",
                         "power_output_bits": 20, **quantization},  # P = 20 here (the shipped default is 12)
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


# ----------------------------------------------------------------------------- PowerQuant's datapath
#
# power_unit lut or newton runs PowerQuant (issue 10; the paper's eq. 5 and appendix F): each
# product gets its 1/a power before it is accumulated, in one of three realisations
# (quantization.power_products), and each output its power a in the per-output unit. The
# prices below are derived from the table entries at 45 nm (small_hw's node), with the scaling
# rules of accelsim/cost/energy.py: multiplier x product of widths / 64, adder and shifter x
# width / 32, Aladdin's 40 nm entries divided by the 40 nm energy factor, SRAM per bit on
# Horowitz's curve at the table's own capacity; areas likewise (tables.AREA).

F, FD = 16, 10                                   # power_product_frac_bits, power_decode_frac_bits
F40 = 0.659 + (40 - 32) / (45 - 32) * (1.0 - 0.659)   # energy factor at 40 nm (45 nm = 1)
A40 = 0.46 + (40 - 32) / (45 - 32) * (1.0 - 0.46)     # area factor at 40 nm
REG_PJ = 0.009 / F40                             # Aladdin register, per bit
SHIFT32_PJ = 0.417 / F40
SRAM_UM2 = 0.346 / 0.5                           # per bit (45 nm)
REG_UM2, ADD32_UM2, SHIFT32_UM2 = 5.98 / A40, 278 / A40, 250 / A40
MACS = M * K * N * G                             # 4608


def mult_pj(a, b):
    return 0.2 * a * b / 64


def mult_um2(a, b):
    return 6350 * a * b / (32 * 32) / A40


def sram_pj_per_bit(kib):
    """Horowitz's 64-bit reads (10 / 20 / 100 pJ at 8 KB / 32 KB / 1 MB) per bit, log-log."""
    curve = tables.ENERGY_TABLES["horowitz45"]["sram"]
    assert curve.anchors == ((8.0, 10 / 64), (32.0, 20 / 64), (1024.0, 100 / 64)) and curve.node_nm == 45
    if kib <= 32:
        return 10 / 64 * (kib / 8) ** 0.5
    return 20 / 64 * (kib / 32) ** (math.log(5) / math.log(32))


def read_pj(entries, bits):
    """One ``bits``-bit read of a table of ``entries`` words."""
    return bits * sram_pj_per_bit(entries * bits / 8 / 1024)


OUTPUT_LUT_PJ = 8 * 100 / 64                     # the per-output unit: 2^20 x 8 bits = 1 MiB
OUTPUT_LUT_UM2 = C * 2 ** P * 8 * SRAM_UM2       # one per column lane
POWER_COLS = COLS + ["product_lut_reads", "decode_weight_reads", "decode_act_reads", "sum_power_evals",
                     "reg_bytes", "sram_ifmap_bytes", "sram_filter_bytes", "energy_mac_pj", "energy_pe_reg_pj",
                     "energy_acc_add_pj", "energy_power_pj", "energy_power_products_pj", "energy_pj"]


def power_hw(products, dataflow="weight_stationary", rows=R, cols=C, **quantization):
    d = small_hw(power_unit="lut", power_products=products, **quantization).to_dict()
    d["pe_array"].update(dataflow=dataflow, rows=rows, cols=cols)
    return hw_from_dict(d)


def off_hw(dataflow="weight_stationary", rows=R, cols=C):
    d = small_hw().to_dict()
    d["pe_array"].update(dataflow=dataflow, rows=rows, cols=cols)
    return hw_from_dict(d)


def area_diff(before, after):
    a, b = area_breakdown_mm2(before), area_breakdown_mm2(after)
    return {k: (b[k] - a[k]) * 1e6 for k in b}      # µm²


def test_without_a_power_unit_the_power_fields_change_nothing(graph):
    off = small_hw()
    other = small_hw(power_products="decode_lut", power_product_frac_bits=8, power_decode_frac_bits=6,
                     power_output_bits=12)
    assert simulate(graph, off).layers.equals(simulate(graph, other).layers)
    assert area_breakdown_mm2(off) == area_breakdown_mm2(other)
    assert area_breakdown_mm2(off)["power_products"] == area_breakdown_mm2(off)["power_unit"] == 0
    assert energy_costs(off).pj == energy_costs(other).pj


def test_product_lut_reads_one_table_entry_per_mac(graph):
    hw = power_hw("product_lut")
    # the table: |q_w| q_x for |q_w| <= 2^7 - 1 = 127 and q_x <= 2^8 - 1 = 255, 0 included
    entries = 127 * 255 + 1                                          # 32386
    pd = power_datapath(hw)
    assert (pd.product_lut_entries, pd.product_lut_bits) == (entries, F)
    assert pd.mult_bits == (WB - 1, AB) and pd.pipe_reg_bits == F + 1
    assert (pd.decode_weight_entries, pd.decode_act_entries, pd.sum_power_bits) == (0, 0, 0)
    d = diff(graph, small_hw(), hw, POWER_COLS)
    assert d["product_lut_reads"] == MACS
    assert d["decode_weight_reads"] == d["decode_act_reads"] == d["sum_power_evals"] == 0
    assert d["power_evals"] == OUTPUTS
    assert d["array_macs"] == d["acc_adds"] == d["requants"] == 0
    # the lookup is pipelined in the PE: no cycles; only the per-output LUT's 1-cycle latency
    assert d["compute_cycles"] == d["zero_point_cycles"] == d["tiling_cycles"] == d["stall_cycles"] == 0
    assert d["power_unit_cycles"] == d["total_cycles"] == 1
    # the pipeline register between lookup and adder, F + 1 = 17 bits, written and read per MAC
    assert d["reg_bytes"] == MACS * 2 * (F + 1) / 8                   # 19584
    assert d["sram_ifmap_bytes"] == d["sram_filter_bytes"] == d["dram_bytes"] == 0
    # energy: one 16-bit read of a 32386 x 16-bit table (63.25 KiB: between the 32 KiB and 1 MB
    # anchors) per MAC; the multiplier is unsigned 7 x 8 bits
    lut_read = 16 * 20 / 64 * (entries * 16 / 8 / 1024 / 32) ** (math.log(5) / math.log(32))
    assert lut_read == pytest.approx(read_pj(entries, F))
    r = row(graph, hw)
    assert energy_costs(hw)["product_lut_read_pj"] == pytest.approx(lut_read)
    assert r["energy_power_products_pj"] == pytest.approx(MACS * lut_read)
    assert r["energy_mac_pj"] == pytest.approx(MACS * mult_pj(7, 8))
    assert d["energy_mac_pj"] == pytest.approx(MACS * (mult_pj(7, 8) - mult_pj(8, 8)))
    assert d["energy_pe_reg_pj"] == pytest.approx(MACS * 2 * (F + 1) * REG_PJ)
    assert d["energy_power_pj"] == pytest.approx(OUTPUTS * OUTPUT_LUT_PJ)
    assert d["energy_acc_add_pj"] == 0          # the F-bit powers add into the 32-bit accumulator
    assert d["energy_pj"] == pytest.approx(MACS * lut_read + d["energy_mac_pj"] + d["energy_pe_reg_pj"]
                                           + OUTPUTS * OUTPUT_LUT_PJ)
    # area: a table (SRAM bits) and the 17-bit register at each of the R x C PEs; the smaller
    # multiplier; the per-output LUT on each column lane
    a = area_diff(small_hw(), hw)
    assert a["power_products"] == pytest.approx(R * C * (entries * F * SRAM_UM2 + (F + 1) * REG_UM2))
    assert a["pe_array"] == pytest.approx(R * C * (mult_um2(7, 8) - mult_um2(8, 8)))
    assert a["power_unit"] == pytest.approx(OUTPUT_LUT_UM2)
    assert a["sram"] == a["requant"] == a["zero_point"] == 0


def test_product_lut_is_small_at_four_bits():
    d = small_hw(power_unit="lut").to_dict()
    d["precision"].update(weight_bits=4, activation_bits=4)
    hw = hw_from_dict(d)
    entries = 7 * 15 + 1                                              # 106
    assert power_datapath(hw).product_lut_entries == entries
    # 106 x 16 bits = 212 B: below the 8 KiB anchor, on the first segment (slope 1/2)
    assert energy_costs(hw)["product_lut_read_pj"] == pytest.approx(16 * 10 / 64 * (212 / 1024 / 8) ** 0.5)
    assert energy_costs(hw)["mac_pj"] == pytest.approx(mult_pj(3, 4))


def test_decode_lut_decodes_every_operand_entering_the_array(graph):
    hw = power_hw("decode_lut")
    pd = power_datapath(hw)
    # weights: 2^8 codes -> Fd + 1 = 11 bits (with the sign); activations: 2^8 codes -> Fd = 10 bits
    assert (pd.decode_weight_entries, pd.decode_weight_bits) == (256, FD + 1)
    assert (pd.decode_act_entries, pd.decode_act_bits) == (256, FD)
    assert pd.mult_bits == (FD + 1, FD) and (pd.weight_reg_bits, pd.act_reg_bits) == (FD + 1, FD)
    assert pd.product_lut_entries == pd.pipe_reg_bits == 0
    d = diff(graph, small_hw(), hw, POWER_COLS)
    # ws: the filter is stationary, fetched into the array once (K x N); the ifmap's im2col
    # stream (M x K) is fetched once per col fold (2)
    assert d["decode_weight_reads"] == K * N                          # 288
    assert d["decode_act_reads"] == COL_FOLDS * M * K                 # 1152
    assert d["product_lut_reads"] == d["sum_power_evals"] == 0 and d["power_evals"] == OUTPUTS
    assert d["power_unit_cycles"] == d["total_cycles"] == 1           # edge decode: no cycles
    # SRAM and DRAM still hold 8-bit codes
    assert d["sram_ifmap_bytes"] == d["sram_filter_bytes"] == d["dram_bytes"] == 0
    # registers hold decoded widths: ws moves per MAC a weight read (11 instead of 8 bits) and an
    # activation read and passed on (2 x 10 instead of 2 x 8); each weight shifts in once (11 bits)
    assert d["reg_bytes"] == (MACS * (3 + 2 * 2) + K * N * 3) / 8      # 4140
    w_read, a_read = read_pj(256, FD + 1), read_pj(256, FD)           # 352 B and 320 B tables
    assert w_read == pytest.approx(11 * 10 / 64 * (256 * 11 / 8 / 1024 / 8) ** 0.5)
    c = energy_costs(hw)
    assert (c["decode_weight_read_pj"], c["decode_act_read_pj"]) == (pytest.approx(w_read), pytest.approx(a_read))
    r = row(graph, hw)
    assert r["energy_power_products_pj"] == pytest.approx(K * N * w_read + COL_FOLDS * M * K * a_read)
    assert r["energy_mac_pj"] == pytest.approx(MACS * mult_pj(11, 10))       # a wider multiplier
    assert d["energy_pe_reg_pj"] == pytest.approx((MACS * 7 + K * N * 3) * REG_PJ)
    assert d["energy_power_pj"] == pytest.approx(OUTPUTS * OUTPUT_LUT_PJ)
    # area: ws puts activations on the row edge (R tables of 256 x 10 bits) and weights on the
    # column edge (C tables of 256 x 11 bits); each PE: an 11 x 10 multiplier, 3 + 2 more register bits
    a = area_diff(small_hw(), hw)
    assert a["power_products"] == pytest.approx((R * 256 * FD + C * 256 * (FD + 1)) * SRAM_UM2)
    assert a["pe_array"] == pytest.approx(R * C * (mult_um2(11, 10) - mult_um2(8, 8) + 5 * REG_UM2))
    assert a["power_unit"] == pytest.approx(OUTPUT_LUT_UM2)


def test_decode_reads_in_the_other_dataflows(graph):
    # os: M = 16 on rows (4 row folds), N = 8 on columns (2 col folds), K streams. The ifmap
    # (row x stream) is fetched once per col fold, a col fold's filter slice once per row fold.
    d = diff(graph, off_hw("output_stationary"), power_hw("decode_lut", "output_stationary"), POWER_COLS)
    assert d["decode_act_reads"] == 2 * M * K and d["decode_weight_reads"] == 4 * K * N        # 1152, 1152
    # os registers: weight and activation each read and passed on: 2 x 3 + 2 x 2 bits per MAC
    assert d["reg_bytes"] == MACS * 10 / 8
    # is: K on rows (9 row folds), M = 16 on columns (4 col folds), N streams. The ifmap is
    # stationary (fetched once), the filter (row x stream) once per col fold.
    d = diff(graph, off_hw("input_stationary"), power_hw("decode_lut", "input_stationary"), POWER_COLS)
    assert d["decode_act_reads"] == M * K and d["decode_weight_reads"] == 4 * K * N            # 576, 1152
    # is registers: activation read (2 more bits), weight read and passed on (2 x 3), per MAC;
    # each activation shifted into its PE once (2 more bits)
    assert d["reg_bytes"] == (MACS * (2 + 6) + M * K * 2) / 8
    assert d["total_cycles"] == 1


def test_decode_tables_sit_on_the_edges_the_operands_enter():
    # an 8 x 2 array tells the edges apart: weight tables 256 x 11 bits, activation tables 256 x 10
    w, a = 256 * (FD + 1) * SRAM_UM2, 256 * FD * SRAM_UM2
    for dataflow, want in (("weight_stationary", 8 * a + 2 * w), ("output_stationary", 8 * a + 2 * w),
                           ("input_stationary", 8 * w + 2 * a)):
        got = area_breakdown_mm2(power_hw("decode_lut", dataflow, rows=8, cols=2))["power_products"] * 1e6
        assert got == pytest.approx(want), dataflow


def test_sum_power_adds_one_evaluation_per_output(graph):
    hw = power_hw("sum_power")
    pd = power_datapath(hw)
    assert pd.mult_bits == (WB, AB) and pd.sum_power_bits == ACC and pd.product_lut_entries == 0
    d = diff(graph, small_hw(), hw, POWER_COLS)
    assert d["sum_power_evals"] == OUTPUTS and d["power_evals"] == OUTPUTS
    assert d["product_lut_reads"] == d["decode_weight_reads"] == d["decode_act_reads"] == 0
    # ordinary products: multiplier and registers as without a power unit
    assert d["energy_mac_pj"] == d["reg_bytes"] == d["energy_pe_reg_pj"] == 0
    # a Newton unit on the 32-bit sum, in series with the per-output LUT in each lane: 6
    # iterations worst case at 32 bits x (32-cycle divide + add + shift) = 204 cycles, then the
    # LUT's 1; one output per cycle per lane (32 busy cycles, hidden)
    assert d["power_unit_cycles"] == d["total_cycles"] == 6 * (ACC + 2) + 1
    # energy per sum: 4.0 iterations on average at 32 bits x (32 adds + add + shift), 32-bit adds
    per_sum = 4.0 * (32 * 0.1 + 0.1 + SHIFT32_PJ)
    assert energy_costs(hw)["sum_power_eval_pj"] == pytest.approx(per_sum)
    assert row(graph, hw)["energy_power_products_pj"] == pytest.approx(OUTPUTS * per_sum)
    assert d["energy_pj"] == pytest.approx(OUTPUTS * (per_sum + OUTPUT_LUT_PJ))
    # area: no tables in the PEs; a pipelined Newton unit per lane: 6 stages of 33 adders, a
    # shifter and three 32-bit registers
    a = area_diff(small_hw(), hw)
    assert a["pe_array"] == 0
    assert a["power_products"] == pytest.approx(C * 6 * (33 * ADD32_UM2 + SHIFT32_UM2 + 3 * 32 * REG_UM2))
    assert a["power_unit"] == pytest.approx(OUTPUT_LUT_UM2)


def test_sum_power_iterative_units_in_series(graph):
    hw = small_hw(power_unit="newton", power_products="sum_power", power_unit_throughput="iterative")
    d = diff(graph, small_hw(), hw, POWER_COLS)
    # each lane: the sum's unit (204-cycle latency, one sum per 204 cycles) then the per-output
    # Newton unit (6 x 22 = 132 cycles): a new output every 204 cycles, 336 cycles through both
    busy = math.ceil(OUTPUTS / C) * 204                               # 6528
    assert d["power_unit_cycles"] == d["total_cycles"] == busy - BASE_CYCLES + 204 + 132
    a = area_diff(small_hw(), hw)
    assert a["power_products"] == pytest.approx(C * (2 * ADD32_UM2 + SHIFT32_UM2 + 3 * 32 * REG_UM2))
