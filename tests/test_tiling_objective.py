"""memory.tiling_objective: the energy objective never spends more energy per layer than the
cycles objective, and the cycles objective never takes more cycles; the default is unchanged."""
import pytest

import accelsim as acs


@pytest.mark.parametrize("workload", ["mobilenet_v2", "resnet18"])
@pytest.mark.parametrize("bandwidth_gbps", [8, 64])
def test_each_objective_wins_its_own_figure_layer_by_layer(workload, bandwidth_gbps):
    g = acs.load_model(workload)
    base = acs.load_hw("edge-npu-16x16").replace("pe_array.rows", 8).replace("pe_array.cols", 8) \
        .replace("memory.dram_bandwidth_gbps", bandwidth_gbps)
    fast = acs.simulate(g, base.replace("memory.tiling_objective", "cycles")).layers
    thrifty = acs.simulate(g, base.replace("memory.tiling_objective", "energy")).layers
    assert (thrifty["energy_pj"] <= fast["energy_pj"] * (1 + 1e-12)).all()
    assert (fast["total_cycles"] <= thrifty["total_cycles"]).all()
    # the MACs and the compute itself are the same work either way
    assert (fast["macs"] == thrifty["macs"]).all() and (fast["compute_cycles"] == thrifty["compute_cycles"]).all()


def test_with_bandwidth_to_spare_the_energy_objective_saves_energy():
    g = acs.load_model("mobilenet_v2")
    base = acs.load_hw("edge-npu-16x16").replace("pe_array.rows", 8).replace("pe_array.cols", 8) \
        .replace("memory.ifmap_sram_kib", 32).replace("memory.dram_bandwidth_gbps", 32)
    fast = acs.simulate(g, base).summary  # the default: cycles
    thrifty = acs.simulate(g, base.replace("memory.tiling_objective", "energy")).summary
    assert acs.load_hw("edge-npu-16x16").memory.tiling_objective == "cycles"
    assert thrifty["energy_uj_per_inference"] < fast["energy_uj_per_inference"]
    assert thrifty["dram_mib"] < fast["dram_mib"]  # the saving is DRAM re-reads
    assert thrifty["latency_ms"] >= fast["latency_ms"]
