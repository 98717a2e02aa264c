"""The memory hierarchy: residency and traffic per operand, psum spills, tiles, the simpy
DMA/DRAM timeline, and the bandwidth properties of the whole layer cost."""
import math
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.config import hw_from_dict
from accelsim.cost.model import simulate
from accelsim.graph.builder import GraphBuilder
from accelsim.graph.ops import GemmView
from accelsim.sim import memory
from accelsim.sim.mapping import map_gemm, map_layer
from accelsim.sim.memory import (KIB, OperandBits, layer_memory, plan_layer, run_tiles, simulate_dram,
                                 split_runs, stream_tile_candidates)
from accelsim.sim.timing import native_cycles

BITS8 = OperandBits(weight=8, activation=8, accumulator=32)


def mem(ifmap_kib=1024, filter_kib=1024, ofmap_kib=1024, acc_kib=None, gbps=1e9, interface="user"):
    return SimpleNamespace(ifmap_sram_kib=ifmap_kib, filter_sram_kib=filter_kib, ofmap_sram_kib=ofmap_kib,
                           accumulator_kib=ofmap_kib if acc_kib is None else acc_kib,
                           dram_bandwidth_gbps=gbps, interface_bandwidth=interface)


def one_pass(gemm, dataflow, m, bits=BITS8, ifmap_elems=None, rows=4, cols=4, params=0.0):
    mapping = map_gemm(gemm, rows, cols, dataflow)
    cycles = native_cycles(mapping)
    elems = gemm.M * gemm.K * gemm.groups if ifmap_elems is None else ifmap_elems
    return layer_memory([(mapping, 1)], elems, bits, cycles, m, params), mapping


# ----------------------------------------------------------------------------- traffic rules

def test_everything_fits_every_operand_moves_once():
    g = GemmView(M=64, K=32, N=24)
    lm, _ = one_pass(g, "weight_stationary", mem())
    assert lm.dram_read_bytes == {"ifmap": 64 * 32, "filter": 32 * 24, "psum": 0, "params": 0}
    assert lm.dram_write_bytes == {"ofmap": 64 * 24, "psum": 0}
    assert lm.psum_spill_bytes == 0 and lm.ifmap_pinned_fraction == 1.0


def test_an_ifmap_too_big_is_re_read_by_every_col_fold_but_its_pinned_half():
    # ws: the ifmap (row x stream) is swept once per col fold; N = 24 on 4 columns: 6 sweeps
    g = GemmView(M=64, K=32, N=24)
    size = 64 * 32                     # bytes, 8-bit
    cap = 1 * KIB                      # 1 KiB < 2 KiB
    lm, m = one_pass(g, "weight_stationary", mem(ifmap_kib=1))
    assert m.col_folds == 6
    assert lm.dram_read_bytes["ifmap"] == pytest.approx(size + 5 * (size - cap / 2))
    assert lm.ifmap_pinned_fraction == pytest.approx((cap / 2) / size)
    assert lm.dram_read_bytes["filter"] == 32 * 24  # stationary: once


def test_conv_ifmap_traffic_is_the_input_tensor_not_its_im2col_matrix():
    g = GemmView(M=16, K=36, N=8)
    lm, _ = one_pass(g, "weight_stationary", mem(), ifmap_elems=4 * 6 * 6)
    assert lm.dram_read_bytes["ifmap"] == 4 * 6 * 6
    # the array still reads the im2col stream from the ifmap SRAM, once per col fold
    assert lm.sram_read_bytes["ifmap"] == 16 * 36 * 2


def test_operand_widths_set_the_bytes():
    g = GemmView(M=64, K=32, N=24)
    four = OperandBits(weight=4, activation=8, accumulator=32)
    lm8, _ = one_pass(g, "weight_stationary", mem())
    lm4, _ = one_pass(g, "weight_stationary", mem(), bits=four)
    assert lm4.dram_read_bytes["filter"] == lm8.dram_read_bytes["filter"] / 2 == 32 * 24 / 2


def test_psums_that_do_not_fit_the_accumulator_spill_between_row_folds():
    # ws, untiled: a col fold's psums are M x cu 32-bit words, accumulated over K / R row folds
    M, K, N, R, C = 256, 16, 8, 4, 4
    g = GemmView(M=M, K=K, N=N)
    acc_kib = 2                                     # 2048 B < 256 x 4 x 4 B = 4096 B
    lm, m = one_pass(g, "weight_stationary", mem(acc_kib=acc_kib), rows=R, cols=C)
    row_folds, col_folds = K // R, N // C
    excess = M * C * 4 - acc_kib * KIB              # bytes per col fold that do not fit
    assert lm.psum_spill_bytes == col_folds * (row_folds - 1) * excess
    assert lm.dram_write_bytes["psum"] == lm.dram_read_bytes["psum"] == lm.psum_spill_bytes
    # accumulator buffer: every row fold writes its psums (read-modify-write) and the last is read out
    assert lm.sram_write_bytes["acc"] == lm.sram_read_bytes["acc"] == row_folds * M * N * 4
    # 16-bit accumulators move half as many psum bytes
    lm16, _ = one_pass(g, "weight_stationary", mem(acc_kib=acc_kib),
                       bits=OperandBits(8, 8, 16), rows=R, cols=C)
    assert lm16.psum_spill_bytes == col_folds * (row_folds - 1) * (M * C * 2 - acc_kib * KIB)


def test_os_keeps_psums_in_the_pes_and_re_reads_filter_slices_that_do_not_fit():
    # os: rows = M, cols = N, K streams; the filter (col x stream) slice of a col fold is used by
    # all M / R row folds
    M, K, N = 64, 64, 8
    g = GemmView(M=M, K=K, N=N)
    lm, m = one_pass(g, "output_stationary", mem(filter_kib=0.125))   # 128 B < 256 B slices
    slice_bytes = K * 4
    assert lm.dram_read_bytes["filter"] == pytest.approx(
        m.col_folds * (slice_bytes + (m.row_folds - 1) * (slice_bytes - 64)))
    assert lm.psum_spill_bytes == 0 and lm.sram_read_bytes["acc"] == 0


def test_is_reads_its_stationary_ifmap_once_and_sweeps_the_filter_per_col_fold():
    M, K, N = 32, 16, 64
    g = GemmView(M=M, K=K, N=N)
    lm, m = one_pass(g, "input_stationary", mem(filter_kib=0.25))     # 256 B < 1 KiB of filter
    assert lm.dram_read_bytes["ifmap"] == M * K
    size = K * N
    assert lm.dram_read_bytes["filter"] == pytest.approx(size + (m.col_folds - 1) * (size - 128))


def test_tiles_partition_the_traffic_and_the_cycles():
    g = GemmView(M=300, K=40, N=20)
    lm, m = one_pass(g, "weight_stationary", mem(ifmap_kib=2, filter_kib=1, acc_kib=4), params=100)
    assert lm.tile_reads.sum() == pytest.approx(sum(lm.dram_read_bytes.values()))
    assert lm.tile_writes.sum() == pytest.approx(sum(lm.dram_write_bytes.values()))
    assert lm.tile_cycles.sum() == pytest.approx(native_cycles(m))
    assert lm.tiles == len(lm.tile_cycles) >= 2


# ----------------------------------------------------------------------------- the simpy timeline

def test_timeline_of_three_tiles_by_hand():
    # 1 byte per cycle. DMA order: r0, r1, [tile 0 done] r2, w0, [tile 1 done] w1, [tile 2 done] w2
    # r0 0-100, r1 100-200, r2 200-300, w0 300-310, w1 310-320; compute 100-150, 200-250,
    # 300-350; w2 350-360
    end, starts, log = run_tiles(np.array([100.0, 100, 100]), np.array([10.0, 10, 10]),
                                 np.array([50.0, 50, 50]), 1.0)
    assert end == 360 and starts.tolist() == [100, 200, 300]
    assert [(a, b) for a, b, _ in log] == [(0, 100), (100, 200), (200, 300), (300, 310), (310, 320), (350, 360)]


def test_compute_bound_tiles_hide_their_transfers():
    # reads of tile i+1 (10 bytes) fit in tile i's compute (100 cycles): only the first read
    # and the last write show
    end, _, _ = run_tiles(np.full(5, 10.0), np.full(5, 10.0), np.full(5, 100.0), 1.0)
    assert end == 10 + 5 * 100 + 10


def test_stalls_and_bandwidth_figures():
    g = GemmView(M=64, K=32, N=24)
    lm, m = one_pass(g, "weight_stationary", mem(ifmap_kib=1, gbps=1.0))
    simulate_dram(lm, mem(gbps=1.0), clock_mhz=1000)     # 1 byte per cycle
    total_bytes = lm.dram_bytes
    assert lm.stall_cycles >= total_bytes - lm.compute_cycles     # the channel moves 1 B/cycle
    assert lm.avg_dram_gbps == pytest.approx(total_bytes / lm.total_cycles * 1.0)
    assert lm.avg_dram_gbps <= lm.peak_dram_gbps <= 1.0 + 1e-9


def test_calc_interface_is_stall_free_and_reports_the_bandwidth_it_needs():
    g = GemmView(M=64, K=32, N=24)
    lm, _ = one_pass(g, "weight_stationary", mem(ifmap_kib=1))
    simulate_dram(lm, mem(interface="calc"), clock_mhz=1000)
    assert lm.stall_cycles == 0
    # tile i must hide tile i+1's reads and tile i-1's writes behind its own compute
    r, w, c = lm.tile_reads, lm.tile_writes, lm.tile_cycles
    need = [((r[i + 1] if i + 1 < len(c) else 0) + (w[i - 1] if i else 0)) / c[i] for i in range(len(c))]
    assert lm.peak_dram_gbps == pytest.approx(max(need) * 1.0)   # bytes/cycle x 1000 MHz / 1000


# ----------------------------------------------------------------------------- stream tiling

def hw_dict(**memory):
    return {"name": "t", "clock_mhz": 1000,
            "pe_array": {"rows": 4, "cols": 4, "dataflow": "weight_stationary"},
            "precision": {"weight_bits": 8, "activation_bits": 8},
            "memory": {"ifmap_sram_kib": 64, "filter_sram_kib": 64, "ofmap_sram_kib": 64, **memory}}


def test_the_planner_tiles_the_stream_when_psums_would_spill():
    hw = hw_from_dict(hw_dict(accumulator_sram_kib=1, dram_bandwidth_gbps=1))
    g = GemmView(M=1024, K=64, N=16)
    # largest M tile whose psums fit: 1 KiB / (4 cols x 4 B) = 64 rows; then 128, 256, 512
    assert stream_tile_candidates(g, hw.pe_array, 1 * KIB, 32) == [1024, 64, 128, 256, 512]
    # and the largest tile whose ifmap slice fits the ifmap SRAM (64 B per output pixel here)
    assert stream_tile_candidates(g, hw.pe_array, 1 * KIB, 32, 64.0, 20 * KIB) == [1024, 64, 128, 256, 512, 320]
    # (a whole ifmap that fits needs no such tile)
    assert stream_tile_candidates(g, hw.pe_array, 1 * KIB, 32, 64.0, 64 * KIB) == [1024, 64, 128, 256, 512]
    lm = plan_layer(g, g.M * g.K, BITS8, hw)
    assert lm.stream_tile < 1024 and lm.psum_spill_bytes == 0
    untiled = native_cycles(map_layer(g, hw.pe_array))
    assert lm.compute_cycles > untiled                      # more folds ...
    assert lm.total_cycles < _untiled_total(g, hw)          # ... but far fewer stalls


def _untiled_total(g, hw):
    m = map_layer(g, hw.pe_array)
    lm = layer_memory([(m, 1)], g.M * g.K, BITS8, native_cycles(m), hw.memory)
    return simulate_dram(lm, hw.memory, hw.clock_mhz).total_cycles


# ----------------------------------------------------------------------------- properties

def one_layer(kind, c, hw_out, k, n):
    b = GraphBuilder("p")
    if kind == "linear":
        b.input((c,))
        b.add("linear", name="l", out_features=n)
    else:
        b.input((c, hw_out + k - 1, hw_out + k - 1))
        b.add("conv2d", name="l", out_channels=n, kernel=k, groups=c if kind == "depthwise" else 1)
    return b.build()


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["conv", "depthwise", "linear"]), c=st.integers(1, 24), hw_out=st.integers(1, 12),
       k=st.integers(1, 3), n=st.integers(1, 40), rows=st.integers(2, 8), cols=st.integers(2, 8),
       dataflow=st.sampled_from(["weight_stationary", "output_stationary", "input_stationary"]),
       kib=st.sampled_from([0.25, 1, 16]), acc=st.sampled_from([None, 0.5, 4]),
       gbps=st.lists(st.floats(0.05, 50), min_size=2, max_size=4), batch=st.integers(1, 3),
       max_tiles=st.sampled_from([memory.MAX_TILES, 3]))
def test_total_cycles_never_fall_as_bandwidth_falls_and_ample_bandwidth_leaves_the_grid(
        kind, c, hw_out, k, n, rows, cols, dataflow, kib, acc, gbps, batch, max_tiles):
    # max_tiles 3: every layer's folds grouped into a few large tiles, as at a large batch
    with mock.patch.object(memory, "MAX_TILES", max_tiles):
        _bandwidth_property(kind, c, hw_out, k, n, rows, cols, dataflow, kib, acc, gbps, batch)


def _bandwidth_property(kind, c, hw_out, k, n, rows, cols, dataflow, kib, acc, gbps, batch):
    if kind == "depthwise":
        n = c
    g = one_layer(kind, c, hw_out, k, n)
    d = {"name": "p", "clock_mhz": 500,
         "pe_array": {"rows": rows, "cols": cols, "dataflow": dataflow},
         "precision": {"weight_bits": 8, "activation_bits": 8},
         "memory": {"ifmap_sram_kib": kib, "filter_sram_kib": kib, "ofmap_sram_kib": kib,
                    "accumulator_sram_kib": acc, "dram_bandwidth_gbps": 1.0}}
    base = hw_from_dict(d)
    totals = []
    for bw in sorted(gbps, reverse=True) + [1e-3]:
        r = simulate(g, base.replace("memory.dram_bandwidth_gbps", bw), batch=batch).layers.iloc[0]
        totals.append(r["total_cycles"])
    assert totals == sorted(totals)
    ample = simulate(g, base.replace("memory.dram_bandwidth_gbps", 1e9), batch=batch).layers.iloc[0]
    info = g.layers(batch, gemm_only=True)[0]
    grid = native_cycles(map_layer(info.gemm, base.pe_array), base.pe_array.weight_preload)
    assert ample["total_cycles"] == ample["compute_cycles"] == grid
    assert ample["stall_cycles"] == 0


def test_resnet_block_stalls_fall_with_bandwidth():
    import accelsim

    g = accelsim.load_model("resnet18")
    hw = accelsim.load_hw("edge-npu-16x16")
    stalls = [simulate(g, hw.replace("memory.dram_bandwidth_gbps", bw)).summary["stall_cycles"]
              for bw in (2, 8, 32, 128)]
    assert stalls == sorted(stalls, reverse=True) and stalls[0] > 10 * stalls[-1]
    assert math.isfinite(stalls[0])


# ----------------------------------------------------------------------------- bounded work at any batch

def _expand_seq(x):
    """The reference: a compressed fold sequence written out fold by fold."""
    if isinstance(x, np.ndarray):
        return [x]
    return [leaf for y, k in x.items for _ in range(k) for leaf in _expand_seq(y)]


def _tiles_by_hand(folds, budget):
    """Fold 0 alone; fold i >= 1 in tile floor(bytes of folds 1..i-1 / budget)."""
    tiles, keys, before = [folds[0].copy()], [-1], 0.0
    for f in folds[1:]:
        key = math.floor(before / budget)
        if key == keys[-1]:
            tiles[-1] = tiles[-1] + f
        else:
            tiles.append(f.copy())
            keys.append(key)
        before += f[0] + f[1] + f[2]
    return np.array([[t[0] + t[1], t[2], t[3]] for t in tiles])


@settings(max_examples=60, deadline=None)
@given(data=st.data(), budget=st.sampled_from([1.0, 7.0, 30.0, 250.0]))
def test_tiling_a_compressed_fold_sequence_equals_tiling_it_written_out(data, budget):
    # integer bytes keep the cumulative sums exact, so both sides must agree fold for fold
    from accelsim.sim.memory import _Seq, _tile_seq

    leaf = st.lists(st.integers(0, 40), min_size=4, max_size=4).map(lambda v: np.array(v, dtype=float))

    def node(depth):
        if depth == 0:
            return leaf
        return st.lists(st.tuples(st.one_of(leaf, node(depth - 1)), st.integers(1, 6)), min_size=1,
                        max_size=3).map(_Seq)

    seq = data.draw(node(3))
    got = _tile_seq(seq, budget)
    want = _tiles_by_hand(_expand_seq(seq), budget)
    assert got.shape == want.shape
    assert np.array_equal(got, want)


def test_a_layer_of_a_million_stream_tiles_keeps_a_bounded_timeline():
    # ws 4x4, K = 64 (16 row folds), N = 16 (4 col folds); 1 KiB of accumulator holds the psums
    # of 64 output pixels x 4 columns x 4 B: stream tiles of M = 64, 10^6 of them, 64 folds each
    M, K, N, tile = 64 * 10**6, 64, 16, 64
    pe = SimpleNamespace(rows=4, cols=4, dataflow="weight_stationary", group_packing="packed",
                         weight_preload="serial")
    runs = split_runs(GemmView(M=M, K=K, N=N), pe, tile)
    assert [(m.M, n) for m, n in runs] == [(tile, 10**6)]
    compute = 10**6 * native_cycles(runs[0][0])
    m = mem(ifmap_kib=64, filter_kib=64, acc_kib=1, gbps=0.5)
    lm = layer_memory(runs, M * K, BITS8, compute, m)
    # each tile's 4 KiB ifmap slice fits its SRAM (read once), the 1 KiB filter stays, psums fit
    assert lm.dram_read_bytes == {"ifmap": M * K, "filter": K * N, "psum": 0, "params": 0}
    assert lm.dram_write_bytes == {"ofmap": M * N, "psum": 0}
    # 64 x 10^6 folds, but the timeline has at most ~MAX_TILES tiles, which still carry it all
    assert lm.tiles <= memory.MAX_TILES + 2
    assert lm.tile_reads.sum() == pytest.approx(M * K + K * N)
    assert lm.tile_writes.sum() == pytest.approx(M * N)
    assert lm.tile_cycles.sum() == pytest.approx(compute)
    # at 0.5 B/cycle the layer is bandwidth-bound: it ends once the channel has moved every byte,
    # plus at most one tile's compute (the last tile, whose writes wait for it)
    simulate_dram(lm, m, clock_mhz=1000)
    busy = (M * K + K * N + M * N) / 0.5
    assert busy <= lm.total_cycles <= busy + lm.tile_cycles.max() + 1


# ----------------------------------------------------------------------------- packed groups

def test_packed_depthwise_psums_touch_only_the_row_folds_of_their_group():
    # 4 depthwise 3x3 groups (K = 9, N = 1), M = 64, ws on 4x4: packed as one block-diagonal
    # set of 36 rows (9 row folds) x 4 columns (1 col fold). Group g's rows are [9g, 9g + 9):
    #   g0: rows 0-8   -> row folds 0, 1, 2      g1: rows 9-17  -> row folds 2, 3, 4
    #   g2: rows 18-26 -> row folds 4, 5, 6      g3: rows 27-35 -> row folds 6, 7, 8
    # 12 (row fold, column) pairs hold non-zero psums, not 9 x 4 = 36.
    M, K, N, G = 64, 9, 1, 4
    g = GemmView(M=M, K=K, N=N, groups=G)
    lm, m = one_pass(g, "weight_stationary", mem())
    assert (m.groups_per_fold, m.row_folds, m.col_folds, m.group_sets) == (4, 9, 1, 1)
    pairs = 12
    assert lm.acc_writes == pairs * M
    assert lm.sram_write_bytes["acc"] == lm.sram_read_bytes["acc"] == pairs * M * 4
    # spills: between row folds i and i+1 (i = 0..7) exactly one group is live (g0 after folds
    # 0 and 1, g1 after 2 and 3, ...): 64 psums x 4 B = 256 B against a 128 B buffer
    lm, _ = one_pass(g, "weight_stationary", mem(acc_kib=128 / KIB))
    assert lm.psum_spill_bytes == lm.dram_write_bytes["psum"] == lm.dram_read_bytes["psum"] == 8 * (256 - 128)
    # 8 groups: two such sets, one after the other
    lm, m = one_pass(GemmView(M=M, K=K, N=N, groups=8), "weight_stationary", mem())
    assert (m.groups_per_fold, m.group_sets) == (4, 2) and lm.acc_writes == 2 * pairs * M


def test_packed_depthwise_psums_on_an_input_stationary_array():
    # is on 4x4: rows hold q*K, columns the 64 output pixels (16 col folds), the q*N outputs
    # stream. The packer takes q = 2: 18 rows in 5 row folds (0-3, 4-7, 8-11, 12-15, 16-17);
    # g0 (rows 0-8) meets folds 0-2, g1 (rows 9-17) folds 2-4: 6 (row fold, group) pairs of
    # the 10, each 64 pixels x N = 1 psums; two sets for 4 groups
    M, K, N, G = 64, 9, 1, 4
    lm, m = one_pass(GemmView(M=M, K=K, N=N, groups=G), "input_stationary", mem())
    assert (m.groups_per_fold, m.row_folds, m.col_folds, m.group_sets) == (2, 5, 16, 2)
    assert lm.acc_writes == 2 * 6 * M
    assert lm.sram_write_bytes["acc"] == lm.sram_read_bytes["acc"] == 2 * 6 * M * 4
    # a col fold's 4 pixels carry one live group between row folds (g0 after 0, 1; g1 after
    # 2, 3): 4 x 4 B = 16 B against an 8 B buffer, at 4 boundaries of 16 col folds, 2 sets
    lm, _ = one_pass(GemmView(M=M, K=K, N=N, groups=G), "input_stationary", mem(acc_kib=8 / KIB))
    assert lm.psum_spill_bytes == 2 * 16 * 4 * (16 - 8)
