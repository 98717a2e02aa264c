"""The cost Result: per-layer cycles, memory and energy columns, the summary, the CLI."""
import io
import json
import pickle
from contextlib import redirect_stderr, redirect_stdout

import pandas as pd
import pytest

import accelsim
from accelsim.cli import main
from accelsim.cost.energy import ENERGY_CATEGORIES, energy_costs
from accelsim.cost.model import ACTION_COLUMNS, CYCLE_COLUMNS, ENERGY_COLUMNS, MEMORY_COLUMNS, WIDTH_COLUMNS, simulate
from accelsim.sim.grid import LAYER_COLUMNS


@pytest.fixture(scope="module")
def hw():
    return accelsim.load_hw("edge-npu-16x16")


@pytest.fixture(scope="module")
def resnet18(hw):
    return simulate(accelsim.load_model("resnet18"), hw)


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_columns_and_cycle_decomposition(resnet18, hw):
    df = resnet18.layers
    assert list(df.columns) == LAYER_COLUMNS + CYCLE_COLUMNS + WIDTH_COLUMNS + MEMORY_COLUMNS + ACTION_COLUMNS + ENERGY_COLUMNS
    assert (df["total_cycles"] == df["compute_cycles"] + df[CYCLE_COLUMNS].sum(axis=1)).all()
    assert (df[CYCLE_COLUMNS] >= 0).all().all()
    assert df["utilisation"].tolist() == pytest.approx((df["macs"] / (256 * df["total_cycles"])).tolist())
    assert (df["avg_dram_gbps"] <= df["peak_dram_gbps"] + 1e-9).all()
    assert (df["peak_dram_gbps"] <= hw.memory.dram_bandwidth_gbps + 1e-9).all()
    # reuse: every operand crosses the DRAM interface at least once
    assert (df["ifmap_dram_passes"] >= 1 - 1e-9).all() and (df["filter_dram_passes"] >= 1 - 1e-9).all()
    back = pickle.loads(pickle.dumps(resnet18))
    assert back.layers.equals(df) and back.summary == resnet18.summary


def test_energy_is_counts_times_per_action_energy(resnet18, hw):
    c = energy_costs(hw)
    df = resnet18.layers
    assert df["energy_mac_pj"].tolist() == pytest.approx((df["array_macs"] * c["mac_pj"]).tolist())
    assert df["energy_acc_add_pj"].tolist() == pytest.approx((df["acc_adds"] * c["acc_add_pj"]).tolist())
    assert df["energy_requant_pj"].tolist() == pytest.approx((df["requants"] * c["requant_pj"]).tolist())
    assert df["energy_dram_pj"].tolist() == pytest.approx((df["dram_bytes"] * 8 * c["dram_pj_per_bit"]).tolist())
    assert df["energy_pe_reg_pj"].tolist() == pytest.approx((df["reg_bytes"] * 8 * c["reg_pj_per_bit"]).tolist())
    parts = df[[f"energy_{k}_pj" for k in ENERGY_CATEGORIES]].sum(axis=1)
    assert df["energy_pj"].tolist() == pytest.approx(parts.tolist())
    # every layer requantizes each output once
    assert (df["requants"] == df["M"] * df["N"] * df["groups"]).all()
    dram = df[["dram_ifmap_bytes", "dram_filter_bytes", "dram_ofmap_bytes", "dram_psum_bytes",
               "dram_params_bytes"]].sum(axis=1)
    assert dram.tolist() == pytest.approx(df["dram_bytes"].tolist())


def test_summary_figures(resnet18, hw):
    s, df = resnet18.summary, resnet18.layers
    energy = df["energy_pj"].sum()
    assert s["total_cycles"] == df["total_cycles"].sum()
    assert s["total_cycles"] == s["compute_cycles"] + s["overhead_cycles"] + s["stall_cycles"]
    assert s["energy_uj_per_inference"] == pytest.approx(energy / 1e6)
    assert s["tops_per_w"] == pytest.approx(2 * s["macs"] / energy)   # ops per pJ = TOPS/W
    assert s["latency_ms"] == pytest.approx(s["total_cycles"] / (hw.clock_mhz * 1e3))
    assert s["inferences_per_s"] == pytest.approx(1e3 / s["latency_ms"])
    assert s["avg_power_w"] == pytest.approx(energy * 1e-12 / (s["latency_ms"] / 1e3))
    assert s["area_mm2"] > 0 and s["energy_table"] == "horowitz45"
    # at batch 1 every weight moves once, at 8 bits: ResNet-18's 11,689,512 parameters
    # (torchvision) less the FC bias (1000) and BN's gamma and beta on 64 + 4 x 64 + (4 x 128
    # + 128) + (4 x 256 + 256) + (4 x 512 + 512) = 4800 channels
    assert df["dram_filter_bytes"].sum() == 11_689_512 - 1000 - 2 * 4800
    assert (df["filter_dram_passes"] == 1).all()


def test_overrides_and_tables_move_energy_not_cycles(resnet18, hw):
    free = simulate(accelsim.load_model("resnet18"), hw.replace("energy.overrides", {"dram_pj_per_bit": 0}))
    assert (free.layers["energy_dram_pj"] == 0).all()
    assert free.layers["energy_pj"].sum() == pytest.approx(
        resnet18.layers["energy_pj"].sum() - resnet18.layers["energy_dram_pj"].sum())
    assert free.summary["total_cycles"] == resnet18.summary["total_cycles"]
    aladdin = simulate(accelsim.load_model("resnet18"), hw.replace("energy.table", "accelergy_aladdin40"))
    assert aladdin.summary["total_cycles"] == resnet18.summary["total_cycles"]
    assert aladdin.layers["energy_mac_pj"].sum() > 3 * resnet18.layers["energy_mac_pj"].sum()


def test_batch_amortises_weight_traffic(hw):
    g = accelsim.load_model("resnet18")
    one, four = simulate(g, hw), simulate(g, hw, batch=4)
    assert four.summary["energy_uj_per_inference"] < one.summary["energy_uj_per_inference"]
    assert four.layers["dram_filter_bytes"].sum() < 4 * one.layers["dram_filter_bytes"].sum()


def test_cli_table_is_brief_and_out_has_every_column(tmp_path):
    out = tmp_path / "r.parquet"
    status, text, _ = run_cli("simulate", "resnet18", "--out", str(out))
    assert status == 0
    for word in ("stall_cycles", "energy_pj", "tops_per_w", "energy_uj_per_inference", "area_mm2"):
        assert word in text
    assert "energy_mac_pj" not in text
    df = pd.read_parquet(out)
    assert "energy_mac_pj" in df.columns and "dram_psum_bytes" in df.columns
    status, text, _ = run_cli("simulate", "resnet18", "--all-columns")
    assert status == 0 and "energy_mac_pj" in text
    status, text, _ = run_cli("simulate", "resnet18", "--format", "json")
    doc = json.loads(text)
    assert "energy_pj" in doc["layers"][0] and doc["totals"]["tops_per_w"] > 0


def test_cli_set_changes_one_field_like_replace(hw):
    status, text, _ = run_cli("simulate", "resnet18", "--format", "json", "--set", "precision.weight_bits=4")
    assert status == 0
    doc = json.loads(text)
    r = simulate(accelsim.load_model("resnet18"), hw.replace("precision.weight_bits", 4))
    assert doc["totals"]["total_cycles"] == r.summary["total_cycles"]
    assert doc["totals"]["energy_uj_per_inference"] == pytest.approx(r.summary["energy_uj_per_inference"])
    status, _, err = run_cli("simulate", "resnet18", "--set", "precision.weight_bit=4")
    assert status == 2 and "did you mean 'weight_bits'" in err
    status, _, err = run_cli("simulate", "resnet18", "--set", "weight_bits")
    assert status == 2 and "expected PATH=VALUE" in err


def test_packed_depthwise_adds_and_accumulator_traffic_skip_the_zero_blocks():
    # 4 depthwise 3x3 channels on a 10x10 input: M = 64 pixels, K = 9, N = 1 per group. On a 4x4
    # ws array the 4 groups pack into 36 rows = 9 row folds of 4 rows and one col fold; group g
    # (rows 9g..9g+8) meets 3 row folds, so 4 x 3 = 12 (row fold, column) pairs carry psums
    from accelsim.config import hw_from_dict
    from accelsim.graph.builder import GraphBuilder

    b = GraphBuilder("dw")
    b.input((4, 10, 10))
    b.add("conv2d", name="dw", out_channels=4, kernel=3, groups=4)
    hw = hw_from_dict({
        "name": "tiny", "clock_mhz": 1000,
        "pe_array": {"rows": 4, "cols": 4, "dataflow": "weight_stationary"},
        "precision": {"weight_bits": 8, "activation_bits": 8},
        "quantization": {"weight_scheme": "symmetric", "weight_granularity": "per_tensor"},
        "memory": {"ifmap_sram_kib": 64, "filter_sram_kib": 64, "ofmap_sram_kib": 64, "dram_bandwidth_gbps": 1e9},
    })
    r = simulate(b.build(), hw).layers.iloc[0]
    assert (r["M"], r["K"], r["N"], r["groups"], r["groups_per_fold"], r["row_folds"]) == (64, 9, 1, 4, 4, 9)
    landed = 12 * 64                                  # not 9 row folds x 4 columns x 64
    assert r["acc_adds"] == 64 * 9 * 4 + landed       # one per MAC, one per psum landing
    assert r["sram_acc_bytes"] == 2 * landed * 4      # read-modify-writes and the read-out, 32 bits
    c = energy_costs(hw)
    assert r["energy_acc_add_pj"] == pytest.approx(r["acc_adds"] * c["acc_add_pj"])
    assert r["energy_acc_sram_pj"] == pytest.approx(2 * landed * 32 * c["acc_sram_pj_per_bit"])
