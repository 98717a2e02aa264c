"""The DRAM timeline's recurrence (sim.memory.run_tiles) against the simpy event simulation it
replaces on the hot path, and the per-layer cost cache against uncached pricing."""
import numpy as np
import pandas as pd
import pytest

import accelsim as acs
from accelsim.cost import model
from accelsim.sim.memory import run_tiles, run_tiles_simpy


def test_recurrence_equals_simpy_on_random_schedules():
    rng = np.random.default_rng(7)
    for _ in range(1500):
        n = int(rng.integers(1, 14))
        reads = rng.choice([0.0, 1.0, 7.0, 256.0, 4096.5], n) * rng.random(n)
        writes = rng.choice([0.0, 3.0, 64.0, 2048.0], n) * rng.random(n)
        cycles = rng.integers(0, 800, n).astype(float)
        bpc = float(rng.choice([0.25, 1.0, 3.7, 20.0]))
        end, starts, log = run_tiles(reads, writes, cycles, bpc)
        end_ref, starts_ref, log_ref = run_tiles_simpy(reads, writes, cycles, bpc)
        assert end == end_ref
        assert np.array_equal(starts, starts_ref)
        assert log == log_ref


def test_recurrence_stalls_when_dram_is_the_bottleneck():
    # one tile of 1000 bytes at 1 byte/cycle with 10 compute cycles: the read alone takes 1000
    end, starts, _ = run_tiles(np.array([1000.0]), np.array([0.0]), np.array([10.0]), 1.0)
    assert starts[0] == 1000.0 and end == 1010.0


@pytest.mark.parametrize("workload", ["resnet50", "mobilenet_v2"])
def test_layer_cache_gives_the_uncached_table(workload):
    g = acs.load_model(workload)
    hw = acs.load_hw("edge-npu-16x16")
    model.clear_layer_cache()
    cold = model.simulate(g, hw, layer_cache=False)
    for rows in (16, 8):  # the second config must not be served the first one's entries
        h = hw.replace("pe_array.rows", rows)
        ref = model.simulate(g, h, layer_cache=False)
        got = model.simulate(g, h)
        again = model.simulate(g, h)
        pd.testing.assert_frame_equal(ref.layers, got.layers)
        pd.testing.assert_frame_equal(ref.layers, again.layers)
        assert ref.summary == got.summary
    assert not cold.layers.equals(ref.layers)


def test_traffic_reused_across_bandwidths_gives_the_fresh_result():
    g = acs.load_model("resnet18")
    hw = acs.load_hw("edge-npu-16x16")
    fresh = {}
    for bw in (4, 64):
        model.clear_layer_cache()
        fresh[bw] = model.simulate(g, hw.replace("memory.dram_bandwidth_gbps", bw), layer_cache=False)
    model.clear_layer_cache()
    for bw in (64, 4):  # 4 GB/s served the traffic computed for 64 GB/s
        got = model.simulate(g, hw.replace("memory.dram_bandwidth_gbps", bw), layer_cache=False)
        pd.testing.assert_frame_equal(got.layers, fresh[bw].layers)
    assert fresh[4].summary["stall_cycles"] > fresh[64].summary["stall_cycles"]
