"""accelsim.simulate and the `simulate` / `bench` commands."""
import io
import json
import pickle
from contextlib import redirect_stderr, redirect_stdout

import pandas as pd
import pytest

import accelsim
from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.sim import Result, map_layer, native_cycles
from accelsim.sim.grid import LAYER_COLUMNS


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def hw():
    return accelsim.load_hw("edge-npu-16x16")


def test_result_is_plain_picklable_data_with_one_row_per_gemm_layer(hw):
    g = accelsim.load_model("mobilenet_v2")
    r = accelsim.simulate(g, hw)
    # the grid's columns first, then the cost model's (cycles, memory, energy)
    assert isinstance(r, Result) and list(r.layers.columns)[:len(LAYER_COLUMNS)] == LAYER_COLUMNS
    assert len(r.layers) == len(g.layers(1, gemm_only=True))
    assert r.layers["macs"].sum() == g.total_macs() == r.summary["macs"]
    assert (r.layers["total_cycles"] >= r.layers["compute_cycles"]).all()
    back = pickle.loads(pickle.dumps(r))
    assert back.summary == r.summary and back.layers.equals(r.layers)


def test_summary_figures_follow_from_the_cycles_and_clock(hw):
    r = accelsim.simulate(accelsim.load_model("resnet18"), hw, batch=4)
    s = r.summary
    assert s["total_cycles"] == r.layers["total_cycles"].sum()
    assert s["latency_ms"] == pytest.approx(s["total_cycles"] / (hw.clock_mhz * 1e3))
    assert s["inferences_per_s"] == pytest.approx(4 * 1e3 / s["latency_ms"])
    assert s["utilisation"] == pytest.approx(s["macs"] / (256 * s["total_cycles"]))
    assert 0 < r.layers["utilisation"].max() <= 1


def test_per_layer_cycles_come_from_the_mapping_and_closed_form(hw):
    g = accelsim.load_model("resnet18")
    r = accelsim.simulate(g, hw)
    for info, (_, row) in zip(g.layers(1, gemm_only=True), r.layers.iterrows()):
        m = map_layer(info.gemm, hw.pe_array)
        assert row["compute_cycles"] == native_cycles(m, hw.pe_array.weight_preload)
        assert (row["M"], row["K"], row["N"], row["folds"]) == (info.gemm.M, info.gemm.K, info.gemm.N, m.folds)


def test_batch_scales_m_and_bigger_arrays_are_not_slower_on_resnet50(hw):
    g = accelsim.load_model("resnet50")
    one, four = accelsim.simulate(g, hw), accelsim.simulate(g, hw, batch=4)
    assert (four.layers["M"] == 4 * one.layers["M"]).all()
    assert one.summary["total_cycles"] < four.summary["total_cycles"] < 4 * one.summary["total_cycles"]
    big = accelsim.simulate(g, hw.replace("pe_array.rows", 32).replace("pe_array.cols", 32))
    assert big.summary["total_cycles"] < one.summary["total_cycles"]


def test_bad_arguments_raise(hw):
    g = accelsim.load_model("resnet18")
    with pytest.raises(AccelsimError, match="timing"):
        accelsim.simulate(g, hw, timing="fast")
    with pytest.raises(AccelsimError, match="batch"):
        accelsim.simulate(g, hw, batch=0)


def test_cli_csv_has_total_cycles_per_layer_and_writes_out(tmp_path, reference_dir):
    out = tmp_path / "alex.csv"
    status, text, _ = run_cli("simulate", str(reference_dir / "scalesim" / "alexnet.csv"),
                              "--hw", str(reference_dir / "scalesim" / "r32x32_ws_calc.cfg"),
                              "--timing", "scalesim", "--format", "csv", "--out", str(out))
    assert status == 0
    df = pd.read_csv(io.StringIO(text))
    assert df["total_cycles"].tolist() == [112_283, 373_799, 185_759, 278_639, 185_759]
    assert pd.read_csv(out)["total_cycles"].tolist() == df["total_cycles"].tolist()


def test_cli_defaults_json_and_table(hw):
    status, text, _ = run_cli("simulate", "resnet18", "--format", "json", "--batch", "2")
    assert status == 0
    doc = json.loads(text)
    r = accelsim.simulate(accelsim.load_model("resnet18"), hw, batch=2)
    assert doc["totals"]["total_cycles"] == r.summary["total_cycles"]
    status, text, _ = run_cli("simulate", "resnet18")
    assert status == 0 and "edge-npu-16x16" in text and "total_cycles" in text


def test_cli_errors_exit_2_with_one_line(tmp_path):
    status, out, err = run_cli("simulate", "resnet18", "--hw", "no-such-hw")
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1
    status, _, err = run_cli("simulate", "resnet18", "--batch", "0")
    assert status == 2 and "batch" in err
    status, _, err = run_cli("simulate", "resnet18", "--out", str(tmp_path / "x.xlsx"))
    assert status == 2 and "unknown output format" in err


def test_bench_lists_and_runs_one_benchmark(tmp_path):
    status, text, _ = run_cli("bench", "--list")
    assert status == 0
    for name in ("scalesim_resnet50", "kernel_throughput", "kernel_resnet50_layers", "cost_model_scaling"):
        assert name in text
    report = tmp_path / "bench.md"
    status, text, _ = run_cli("bench", "--quick", "scalesim_resnet50", "--out", str(report))
    assert status == 0
    md = report.read_text()
    assert "## Machine" in md and "numba" in md and "1,291" in md and "54 layers" in md
    status, _, err = run_cli("bench", "nope", "--out", str(report))
    assert status == 2 and "unknown benchmark 'nope'" in err
