"""Every action and every energy category of three small layers, counted by hand.

The counts follow the documented rules (docstrings of accelsim/sim/memory.py,
accelsim/cost/actions.py, accelsim/cost/overheads.py, accelsim/cost/energy.py); each expected
number is derived in a comment, never by calling the code under test. The prices are derived
here from the table entries (accelsim/cost/tables.py) and the scaling rules: multiplier x
product of operand widths / reference widths, adder / shifter / comparator / register x width
/ reference width, times the technology factor (linear in nm between tabulated nodes), SRAM
log-log interpolated in capacity, DRAM not scaled.

The config is chosen so that every rule shows: weight, activation and accumulator widths all
differ (4, 8, 24), the node is 32 nm (45 nm entries x 0.659; Aladdin's 40 nm entries x
0.659 / f40), and the four buffers have four sizes in four parts of the SRAM curve
(ifmap 16 KiB, filter 8 KiB, ofmap 64 KiB, accumulator 2 KiB), all ample for these layers: no
re-reads, no spills, no stream tiling; DRAM bandwidth ample: no stalls.

Layers, on a 4 x 4 array:
- conv: 3x3, 4 -> 8 channels, 6x6 input, no padding (the layer of tests/test_overheads.py),
  weight stationary; asymmetric weights with an adder tree; a LUT power unit (PowerQuant's
  datapath, with its default product LUTs at the PEs).
- depthwise: 3x3, 4 channels, 6x6 input, weight stationary, per-channel scales; a pipelined
  Newton power unit (product LUTs too).
- linear: 20 -> 6 at batch 3, output stationary.
"""
import math

import numpy as np
import pytest

from accelsim.config import hw_from_dict
from accelsim.cost import tables
from accelsim.cost.energy import ENERGY_CATEGORIES
from accelsim.cost.model import simulate
from accelsim.graph.builder import GraphBuilder

WB, AB, ACC = 4, 8, 24
R = C = 4
KIB = {"ifmap": 16, "filter": 8, "ofmap": 64, "acc": 2}


def hw(dataflow="weight_stationary", **quantization):
    return hw_from_dict({
        "name": "hand", "clock_mhz": 1000, "tech_nm": 32,
        "pe_array": {"rows": R, "cols": C, "dataflow": dataflow, "weight_preload": "serial"},
        "precision": {"weight_bits": WB, "activation_bits": AB, "accumulator_bits": ACC},
        "quantization": {"weight_scheme": "symmetric", "activation_scheme": "symmetric",
                         "weight_granularity": "per_tensor", "power_unit": "none",
                         "power_output_bits": 20, **quantization},  # P = 20 here (the shipped default is 12)
        "memory": {"ifmap_sram_kib": KIB["ifmap"], "filter_sram_kib": KIB["filter"],
                   "ofmap_sram_kib": KIB["ofmap"], "accumulator_sram_kib": KIB["acc"],
                   "dram_bandwidth_gbps": 1e9},
        "energy": {"table": "horowitz45"},
    })


# ----------------------------------------------------------------------------- prices by hand

F32 = 0.659                                   # TECH_ENERGY_FACTOR[32] (45 nm = 1.0)
F40 = 0.659 + (40 - 32) / (45 - 32) * (1.0 - 0.659)   # 40 nm: linear between 32 and 45 nm
T = tables.ENERGY_TABLES["horowitz45"]


def _entry(name, bits, node):
    e = T[name]
    assert (e.bits, e.node_nm) == (bits, node), f"the derivation below assumes {name} at {bits} bits, {node} nm"
    return e.value


MULT = _entry("mult", (8, 8), 45)             # 0.2 pJ, 8x8 bits, 45 nm
ADD = _entry("add", (32,), 45)                # 0.1 pJ, 32 bits
REG = _entry("reg", (1,), 40)                 # 0.009 pJ per bit, Aladdin 40 nm
SHIFT = _entry("shift", (32,), 40)            # 0.417 pJ
CMP = _entry("compare", (32,), 40)            # 0.02947 pJ
DRAM = _entry("dram", (), None)               # 1300 / 64 pJ per bit, off chip


def mult(a, b):
    return MULT * a * b / (8 * 8) * F32


def add(bits):
    return ADD * bits / 32 * F32


def shift(bits):
    return SHIFT * bits / 32 * F32 / F40


def compare(bits):
    return CMP * bits / 32 * F32 / F40


def sram_bit(kib):
    """Horowitz's 64-bit reads: 10 pJ at 8 KB, 20 pJ at 32 KB, 100 pJ at 1 MB, per bit; log-log
    between anchors, the nearest segment's slope outside; at 45 nm, so x F32."""
    assert T["sram"].anchors == ((8.0, 10 / 64), (32.0, 20 / 64), (1024.0, 100 / 64)) and T["sram"].node_nm == 45
    if kib <= 32:   # segment 8 KiB .. 32 KiB (and below 8 KiB): slope log(2) / log(4) = 1/2
        per_bit = 10 / 64 * (kib / 8) ** 0.5
    else:           # segment 32 KiB .. 1 MiB: slope log(5) / log(32)
        per_bit = 20 / 64 * (kib / 32) ** (math.log(5) / math.log(32))
    return per_bit * F32


# PowerQuant's fields: product-LUT outputs F = 16 bits (default), the per-output unit's input P = 20 bits (set by hw())
F, P = 16, 20


def prices(power_unit="none"):
    p = {
        # with a power unit the products go through a LUT at each PE (power_products: product_lut):
        # an unsigned |q_w| x q_x multiplier of (WB - 1) x AB bits
        "mac": mult(WB - 1, AB) if power_unit != "none" else mult(WB, AB),
        "acc_add": add(ACC),
        "reg_bit": REG * F32 / F40,
        **{f"{b}_bit": sram_bit(KIB[b]) for b in KIB},
        "dram_bit": DRAM,
        # requantization: ACC x 32-bit multiply, rounding add and shift at ACC, output zero-point
        # add and two clamp compares at AB
        "requant": mult(ACC, 32) + add(ACC) + shift(ACC) + add(AB) + 2 * compare(AB),
        "zp_mult": mult(WB, ACC),                  # z_w (weight width) x window sum (accumulator width)
    }
    if power_unit == "lut":   # one AB-bit read of a 2^P x AB-bit table: 1 MiB
        p["power"] = AB * sram_bit(2**P * AB / 8 / 1024)
    elif power_unit == "newton":
        # mean iterations at P = 20 bits: 2.4 at 8, 4.0 at 32, linear in log2(bits), x (P adds + add + shift)
        mean = 2.4 + (math.log2(P) - 3) / (5 - 3) * (4.0 - 2.4)
        p["power"] = mean * (P * add(P) + add(P) + shift(P))
    else:
        p["power"] = 0.0
    # the product LUT: |q_w| <= 2^(WB-1) - 1 = 7, q_x <= 255: 7 x 255 + 1 = 1786 entries of F bits
    p["product_lut_read"] = F * sram_bit(1786 * F / 8 / 1024) if power_unit != "none" else 0.0
    return p


def test_hand_prices_match_the_cited_numbers():
    # a sanity anchor for the helpers: the table's own 8x8 multiply and 32-bit add at 45 nm,
    # and the curve at its anchors
    assert mult(8, 8) / F32 == pytest.approx(0.2) and add(32) / F32 == pytest.approx(0.1)
    assert sram_bit(8) / F32 == pytest.approx(10 / 64) and sram_bit(32) / F32 == pytest.approx(20 / 64)
    assert sram_bit(1024) / F32 == pytest.approx(100 / 64)


def expected_energy(n, p):
    """{category: pJ} from hand counts ``n`` and hand prices ``p``."""
    return {
        "mac": n["array_macs"] * p["mac"],
        "acc_add": n["acc_adds"] * p["acc_add"],
        "pe_reg": n["reg_bytes"] * 8 * p["reg_bit"],
        "ifmap_sram": n["sram_ifmap_bytes"] * 8 * p["ifmap_bit"],
        "filter_sram": n["sram_filter_bytes"] * 8 * p["filter_bit"],
        "ofmap_sram": n["sram_ofmap_bytes"] * 8 * p["ofmap_bit"],
        "acc_sram": n["sram_acc_bytes"] * 8 * p["acc_bit"],
        "dram": n["dram_bytes"] * 8 * p["dram_bit"],
        "requant": n["requants"] * p["requant"],
        # window sums and the per-output correction add run at accumulator width
        "zero_point": (n["zp_window_adds"] + n["zp_adds"]) * p["acc_add"] + n["zp_mults"] * p["zp_mult"],
        "power": n["power_evals"] * p["power"],
        "power_products": n.get("product_lut_reads", 0) * p["product_lut_read"],
    }


DRAM_PARTS = ("dram_ifmap_bytes", "dram_filter_bytes", "dram_ofmap_bytes", "dram_psum_bytes", "dram_params_bytes")


def _whole(n):
    """The table's byte columns are the whole bytes moved: a 4-bit operand's last half byte is
    a byte (energy stays priced from the exact bit counts)."""
    return math.ceil(round(n, 6))


def check(row, counts, p):
    for col, want in counts.items():
        if col == "dram_bytes" and all(c in counts for c in DRAM_PARTS):  # the sum of its whole parts
            want = sum(_whole(counts[c]) for c in DRAM_PARTS)
        elif col.endswith("_bytes"):
            want = _whole(want)
            assert isinstance(row[col], (int, np.integer)), col
        assert row[col] == pytest.approx(want, rel=1e-12, abs=1e-12), col
    energy = expected_energy(counts, p)
    assert set(energy) == set(ENERGY_CATEGORIES)
    for cat, want in energy.items():
        assert row[f"energy_{cat}_pj"] == pytest.approx(want, rel=1e-9, abs=1e-12), cat
    assert row["energy_pj"] == pytest.approx(sum(energy.values()), rel=1e-9)


# ----------------------------------------------------------------------------- the conv layer

@pytest.fixture(scope="module")
def conv():
    b = GraphBuilder("one_conv")
    b.input((4, 6, 6))
    b.add("conv2d", name="conv", out_channels=8, kernel=3)
    return b.build()


def conv_counts():
    M, K, N = 16, 36, 8                # 4x4 outputs; 4 * 3 * 3 window; 8 filters
    macs = M * K * N                   # 4608
    row_folds, col_folds = 9, 2        # ws: K = 36 over 4 rows, N = 8 over 4 columns; all folds full
    ifmap = 4 * 6 * 6 * AB / 8         # the input tensor, not its im2col matrix: 144 B
    filt = K * N * WB / 8              # 144 B, stationary: read once
    ofmap = M * N * AB / 8             # requantized outputs, written once: 128 B
    # params: a bias word (accumulator width) per output channel, one per-tensor (int32
    # multiplier, 8-bit shift) pair, one WB-bit weight zero-point (asymmetric, per tensor)
    params = N * ACC / 8 + (32 + 8) / 8 + WB / 8          # 24 + 5 + 0.5
    # every psum word lands in the accumulator once per row fold (one group: every row fold
    # meets every psum), a read-modify-write of an ACC-bit word
    landed = row_folds * M * N                            # 1152
    return {
        "dram_ifmap_bytes": ifmap, "dram_filter_bytes": filt, "dram_ofmap_bytes": ofmap,
        "dram_psum_bytes": 0, "dram_params_bytes": params,
        "dram_bytes": ifmap + filt + ofmap + params,       # 445.5
        # ifmap SRAM: filled from DRAM once, the im2col stream (M x K) read once per col fold
        "sram_ifmap_bytes": ifmap + col_folds * M * K * AB / 8,          # 144 + 1152
        # filter SRAM: filled and read once; the params pass through it (in and out)
        "sram_filter_bytes": 2 * filt + 2 * params,                       # 288 + 59
        "sram_ofmap_bytes": 2 * ofmap,                                    # in from the output stage, out to DRAM
        "sram_acc_bytes": 2 * landed * ACC / 8,                           # 6912
        # ws: weight read, activation read + passed on, psum read + passed on, per MAC; plus
        # each weight shifted into its PE once; the product LUT's pipeline register (F + 1 bits)
        # written and read per MAC
        "reg_bytes": (macs * (WB + 2 * AB + 2 * ACC + 2 * (F + 1)) + K * N * WB) / 8,
        "array_macs": macs,                                               # adder tree: no extra column
        "product_lut_reads": macs, "decode_weight_reads": 0, "decode_act_reads": 0, "sum_power_evals": 0,
        "acc_adds": macs + landed,                                        # 5760
        "requants": M * N,
        "zp_window_adds": M * (K - 1),    # one K-input window sum per output pixel: 560
        "zp_mults": M * N, "zp_adds": M * N,
        "power_evals": M * N,
        # 9 x 2 folds of T + R + cu - 2 = 22 cycles plus a 4-cycle preload; the LUT units (one
        # per column, 1 cycle) are busy 128 / 4 = 32 cycles, hidden: only the last latency shows
        "total_cycles": 18 * (16 + 4 + 4 - 2 + 4) + 1,                    # 469
        "stall_cycles": 0, "stream_tiles": 1,
    }


def conv_hw():
    return hw(weight_scheme="asymmetric", zero_point_unit="adder_tree", power_unit="lut")


def test_conv_every_action_and_energy_by_hand(conv):
    row = simulate(conv, conv_hw()).layers.iloc[0]
    assert (row["M"], row["K"], row["N"], row["groups"]) == (16, 36, 8, 1)
    check(row, conv_counts(), prices("lut"))


def test_conv_symmetric_weights_drop_exactly_the_zero_point_work(conv):
    # the same layer with symmetric weights and no power unit: no window sums, multiplies,
    # correction adds, power evaluations; the 4-bit weight zero-point leaves the params
    row = simulate(conv, hw()).layers.iloc[0]
    n = conv_counts()
    n.update(zp_window_adds=0, zp_mults=0, zp_adds=0, power_evals=0, total_cycles=468,
             dram_params_bytes=24 + 5, dram_bytes=144 + 144 + 128 + 29, sram_filter_bytes=288 + 58,
             product_lut_reads=0, reg_bytes=(4608 * (WB + 2 * AB + 2 * ACC) + 36 * 8 * WB) / 8)
    check(row, n, prices("none"))


def test_conv_on_an_extra_column_runs_the_window_sums_in_the_array(conv):
    # extra_column: a filter of ones as column N + 1 = 9: K more MACs per pixel, a third col
    # fold of one column in each of the 9 row folds; its psums land like the others (9 row
    # folds x 16 pixels); the ones are generated on chip and never move through memory
    row = simulate(conv, hw(weight_scheme="asymmetric", power_unit="lut")).layers.iloc[0]
    n = conv_counts()
    extra_macs = 16 * 36
    n.update(array_macs=4608 + extra_macs, acc_adds=4608 + extra_macs + 1152 + 9 * 16, zp_window_adds=0,
             sram_acc_bytes=2 * (1152 + 9 * 16) * ACC / 8,
             # registers: the extra column's MACs move operands like any other, and its ones are
             # shifted into the PEs of column 9 like weights (made on chip, but still loaded)
             reg_bytes=((4608 + extra_macs) * (WB + 2 * AB + 2 * ACC + 2 * (F + 1)) + 36 * 9 * WB) / 8,
             product_lut_reads=4608 + extra_macs,              # one table read per MAC the array runs
             # the ifmap is swept by three col folds now
             sram_ifmap_bytes=144 + 3 * 16 * 36 * AB / 8,
             total_cycles=18 * 26 + 9 * (16 + 4 + 1 - 2 + 4) + 1)
    check(row, n, prices("lut"))


# ----------------------------------------------------------------------------- depthwise

@pytest.fixture(scope="module")
def depthwise():
    b = GraphBuilder("one_dw")
    b.input((4, 6, 6))
    b.add("conv2d", name="dw", out_channels=4, kernel=3, groups=4)
    return b.build()


def test_depthwise_packed_every_action_and_energy_by_hand(depthwise):
    # GEMM: M = 16 pixels, K = 9, N = 1, 4 groups. Packing (serial cycles per fold: T + R +
    # cu - 2 + R = 22 + cu): q = 1: 4 sets x 3 row folds x 23 = 276; q = 2: 2 x 5 x 24 = 240;
    # q = 3: 7 x 25 + 3 x 23 = 244; q = 4: 9 row folds (36 rows) x 26 = 234, the fewest: one set.
    M, K, N, G = 16, 9, 1, 4
    macs = M * K * N * G                  # 576: the zero blocks are no MACs
    # group g's rows [9g, 9g + 9) meet row folds 0-2, 2-4, 4-6, 6-8: 12 (row fold, group) pairs,
    # each landing its 16 psum words (one column per group)
    landed = 12 * M
    ifmap = 4 * 6 * 6 * AB / 8            # 144 B
    filt = K * N * G * WB / 8             # 18 B
    ofmap = M * N * G * AB / 8            # 64 B
    params = N * G * ACC / 8 + N * G * (32 + 8) / 8      # a bias and a (multiplier, shift) pair per channel
    n = {
        "dram_ifmap_bytes": ifmap, "dram_filter_bytes": filt, "dram_ofmap_bytes": ofmap,
        "dram_psum_bytes": 0, "dram_params_bytes": params, "dram_bytes": ifmap + filt + ofmap + params,
        # one col fold: each group's im2col stream (16 x 9) is read once
        "sram_ifmap_bytes": ifmap + G * M * K * AB / 8,
        "sram_filter_bytes": 2 * filt + 2 * params,
        "sram_ofmap_bytes": 2 * ofmap,
        "sram_acc_bytes": 2 * landed * ACC / 8,
        "reg_bytes": (macs * (WB + 2 * AB + 2 * ACC + 2 * (F + 1)) + K * N * G * WB) / 8,
        "array_macs": macs, "acc_adds": macs + landed,
        "requants": M * N * G, "zp_window_adds": 0, "zp_mults": 0, "zp_adds": 0,
        "power_evals": M * N * G, "product_lut_reads": macs, "decode_weight_reads": 0, "decode_act_reads": 0,
        # 234 array cycles; Newton units on P = 20 bits, pipelined: worst 4 + (log2 20 - 3) = 5.3
        # -> 6 iterations x (20-cycle divide + add + shift) = 132 cycles latency, 64 / 4 = 16 busy
        # cycles hidden: + 132
        "total_cycles": 234 + 132, "stall_cycles": 0,
    }
    row = simulate(depthwise, hw(weight_granularity="per_channel", power_unit="newton")).layers.iloc[0]
    assert (row["M"], row["K"], row["N"], row["groups"]) == (M, K, N, G)
    check(row, n, prices("newton"))


# ----------------------------------------------------------------------------- linear, os

@pytest.fixture(scope="module")
def linear():
    b = GraphBuilder("one_linear")
    b.input((20,))
    b.add("linear", name="fc", out_features=6)
    return b.build()


def test_linear_output_stationary_every_action_and_energy_by_hand(linear):
    # batch 3: M = 3, K = 20, N = 6. os: M on rows (1 row fold of 3), N on columns (col folds
    # of 4 and 2), K streams; the outputs stay in the PEs
    M, K, N = 3, 20, 6
    macs = M * K * N                      # 360
    ifmap = M * K * AB / 8                # 60 B
    filt = K * N * WB / 8                 # 60 B: each col fold's slice read once (one row fold)
    ofmap = M * N * AB / 8                # 18 B
    params = N * ACC / 8 + (32 + 8) / 8   # 18 + 5
    n = {
        "dram_ifmap_bytes": ifmap, "dram_filter_bytes": filt, "dram_ofmap_bytes": ofmap,
        "dram_psum_bytes": 0, "dram_params_bytes": params, "dram_bytes": ifmap + filt + ofmap + params,
        "sram_ifmap_bytes": ifmap + 2 * ifmap,           # the ifmap (row x stream) swept by 2 col folds
        "sram_filter_bytes": 2 * filt + 2 * params,      # the filter slices fetched once by the 1 row fold
        "sram_ofmap_bytes": 2 * ofmap,
        "sram_acc_bytes": 0,                              # psums never leave the PEs
        # os: weight and activation read and passed on, psum read and written, per MAC; the
        # outputs shift out through the PE chain once
        "reg_bytes": (macs * (2 * WB + 2 * AB + 2 * ACC) + M * N * ACC) / 8,
        "array_macs": macs, "acc_adds": macs + M * N,     # the bias joins each output as it drains
        "requants": M * N, "zp_window_adds": 0, "zp_mults": 0, "zp_adds": 0, "power_evals": 0,
        # folds: T + ru + cu - 2 plus an R-cycle drain: (20 + 3 + 4 - 2 + 4) + (20 + 3 + 2 - 2 + 4)
        "total_cycles": 29 + 27, "stall_cycles": 0,
    }
    row = simulate(linear, hw("output_stationary"), batch=3).layers.iloc[0]
    assert (row["M"], row["K"], row["N"], row["groups"]) == (M, K, N, 1)
    check(row, n, prices("none"))


def test_linear_input_stationary_by_hand(linear):
    # is: K on rows (5 row folds), M = 3 on columns (1 col fold of 3), N = 6 streams; the
    # ifmap stays, the filter (row x stream) is swept once per col fold, psums land in the
    # accumulator once per row fold: 5 x 3 x 6 = 90 words
    M, K, N = 3, 20, 6
    macs = M * K * N
    ifmap, filt, ofmap = M * K * AB / 8, K * N * WB / 8, M * N * AB / 8
    params = N * ACC / 8 + 5
    landed = 5 * M * N
    n = {
        "dram_bytes": ifmap + filt + ofmap + params,
        "sram_ifmap_bytes": 2 * ifmap,                   # stationary: filled once, read once
        "sram_filter_bytes": 2 * filt + 2 * params,      # one col fold: one sweep
        "sram_ofmap_bytes": 2 * ofmap,
        "sram_acc_bytes": 2 * landed * ACC / 8,
        # is: activation read, weight read + passed on, psum read + passed on; each input
        # shifted into its PE once
        "reg_bytes": (macs * (AB + 2 * WB + 2 * ACC) + M * K * AB) / 8,
        "array_macs": macs, "acc_adds": macs + landed, "requants": M * N,
        "zp_window_adds": 0, "zp_mults": 0, "zp_adds": 0, "power_evals": 0,
        # 5 folds of T + R + cu - 2 = 6 + 4 + 3 - 2 plus a 4-cycle preload
        "total_cycles": 5 * (6 + 4 + 3 - 2 + 4),
    }
    row = simulate(linear, hw("input_stationary"), batch=3).layers.iloc[0]
    check(row, n, prices("none"))


# ----------------------------------------------------------------------------- DRAM figures

def test_stall_and_bandwidth_figures_of_three_tiles_by_hand():
    # 1 byte per cycle (1 GB/s at 1000 MHz). DMA: r0 0-100, r1 100-200, r2 200-300, w0 300-310,
    # w1 310-320, w2 350-360; compute 100-150, 200-250, 300-350 (tests/test_memory.py)
    from types import SimpleNamespace

    import numpy as np

    from accelsim.sim.memory import simulate_dram

    lm = SimpleNamespace(tile_reads=np.array([100.0, 100, 100]), tile_writes=np.array([10.0, 10, 10]),
                         tile_cycles=np.array([50.0, 50, 50]), compute_cycles=150)
    simulate_dram(lm, SimpleNamespace(interface_bandwidth="user", dram_bandwidth_gbps=1.0), clock_mhz=1000)
    assert lm.stall_cycles == 360 - 150
    assert lm.avg_dram_gbps == pytest.approx(330 / 360)              # bytes over all 360 cycles
    # compute windows 100-200 and 200-300 each carry 100 bytes, 300-350 carries 20: peak 1 B/cycle
    assert lm.peak_dram_gbps == pytest.approx(1.0)
    # calc: stall-free; tile i must hide r[i+1] + w[i-1] in its 50 cycles: (100 + 10) / 50 at most
    lm.compute_cycles = 150
    simulate_dram(lm, SimpleNamespace(interface_bandwidth="calc", dram_bandwidth_gbps=1.0), clock_mhz=1000)
    assert lm.stall_cycles == 0
    assert lm.peak_dram_gbps == pytest.approx(110 / 50) and lm.avg_dram_gbps == pytest.approx(330 / 150)


def test_the_timeline_of_the_conv_carries_exactly_its_traffic_and_cycles(conv):
    # the conv's 18 folds are cut into 2 steps each (at least ~32 steps per layer, MIN_TILES):
    # whatever the tiling, the tiles carry every DRAM byte and every cycle exactly once
    from accelsim.cost.overheads import layer_overheads
    from accelsim.sim.mapping import map_layer
    from accelsim.sim.memory import OperandBits, layer_memory
    from accelsim.sim.timing import native_cycles

    h = conv_hw()
    info = conv.layers(1, gemm_only=True)[0]
    ov = layer_overheads(info, h)
    m = map_layer(info.gemm, h.pe_array)
    lm = layer_memory([(m, 1)], info.ifmap_elems, OperandBits(WB, AB, ACC), native_cycles(m), h.memory,
                      ov.param_bytes)
    n = conv_counts()
    assert lm.tile_reads.sum() == n["dram_ifmap_bytes"] + n["dram_filter_bytes"] + n["dram_params_bytes"]
    assert lm.tile_writes.sum() == n["dram_ofmap_bytes"]
    assert lm.tile_cycles.sum() == 18 * (16 + 4 + 4 - 2 + 4)


# ----------------------------------------------------------------------------- more edges

def test_depthwise_on_output_stationary_adds_the_bias_once_per_output(depthwise):
    # os: the bias joins each of the M x N x G = 16 x 1 x 4 outputs as it drains; 576 MACs
    row = simulate(depthwise, hw("output_stationary")).layers.iloc[0]
    assert row["array_macs"] == 576 and row["requants"] == 64
    assert row["acc_adds"] == 576 + 64
    assert row["sram_acc_bytes"] == 0


def test_an_iterative_power_unit_that_the_array_cannot_hide(linear):
    # the os linear layer (56 array cycles) with iterative Newton units on P = 20-bit inputs:
    # worst iterations 4 at 8 bits, 6 at 32, linear in log2(bits): ceil(4 + 2 (log2 20 - 3) / 2)
    # = 6, each a P-cycle divide, an add and a shift: latency 6 x 22 = 132. 18 evaluations on 4
    # lanes take ceil(18 / 4) = 5 rounds = 660 cycles; the layer pays 660 - 56 beyond the
    # array, plus the last evaluation's latency
    latency = math.ceil(4 + 2 * (math.log2(P) - 3) / 2) * (P + 2)             # 132
    row = simulate(linear, hw("output_stationary", power_unit="newton", power_unit_throughput="iterative"),
                   batch=3).layers.iloc[0]
    assert row["power_evals"] == 18
    assert row["power_unit_cycles"] == (5 * latency - 56) + latency
    assert row["total_cycles"] == 56 + (5 * latency - 56) + latency


@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric"])
def test_a_matmul_of_two_asymmetric_activations_corrects_both_zero_points(scheme):
    # (2 heads) x (5 x 3) @ (3 x 4): M = 5, K = 3, N = 4, 2 groups; 40 outputs, 120 MACs.
    # Both operands follow the activation scheme. B's zero-point: z_B x the row sums of A, one
    # K-input sum per row and group (M G (K - 1) = 20 adds), a multiply-add per output; A's
    # zero-point: z_A x the column sums of B (N G (K - 1) = 16 adds), a multiply-add per output.
    # Nothing of it is a weight: no bias, no weight zero-point, one per-tensor requant pair.
    b = GraphBuilder("mm")
    b.input([2, 5, 3], name="a")
    b.input([2, 3, 4], name="b")
    b.add("matmul", "mm", inputs=["a", "b"])
    row = simulate(b.build(), hw(activation_scheme=scheme)).layers.iloc[0]
    assert (row["M"], row["K"], row["N"], row["groups"]) == (5, 3, 4, 2)
    assert row["array_macs"] == 120 and row["requants"] == 40
    asym = scheme == "asymmetric"
    assert row["zp_window_adds"] == (20 + 16 if asym else 0)
    assert row["zp_mults"] == row["zp_adds"] == (2 * 40 if asym else 0)
    assert row["dram_params_bytes"] == 5


def test_the_timeline_of_two_packed_group_sets_carries_each_parameter_byte_once():
    # 8 depthwise channels: two sets of q = 4 packed groups (the packing above, twice); each
    # set's folds bring the parameters of its own 4 channels: 8 biases (3 B) and 8 pairs (5 B)
    from accelsim.cost.overheads import layer_overheads
    from accelsim.sim.mapping import map_layer
    from accelsim.sim.memory import OperandBits, layer_memory
    from accelsim.sim.timing import native_cycles

    b = GraphBuilder("dw8")
    b.input((8, 6, 6))
    b.add("conv2d", name="dw", out_channels=8, kernel=3, groups=8)
    h = hw(weight_granularity="per_channel")
    info = b.build().layers(1, gemm_only=True)[0]
    ov = layer_overheads(info, h)
    m = map_layer(info.gemm, h.pe_array)
    assert (m.groups_per_fold, m.group_sets) == (4, 2)
    lm = layer_memory([(m, 1)], info.ifmap_elems, OperandBits(WB, AB, ACC), native_cycles(m), h.memory,
                      ov.param_bytes)
    params = 8 * ACC / 8 + 8 * (32 + 8) / 8
    assert lm.dram_read_bytes["params"] == params
    # ifmap 8 x 36 B, filter 8 x 9 x 4 bits, params: all of it read through the timeline once
    assert lm.tile_reads.sum() == pytest.approx(8 * 36 * AB / 8 + 8 * 9 * WB / 8 + params, rel=1e-12)
    assert lm.tile_writes.sum() == pytest.approx(8 * 16 * AB / 8, rel=1e-12)
