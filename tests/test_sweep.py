"""Design-space sweeps: the spec, the store, resuming after SIGKILL, Dask, reuse, analysis."""
from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import accelsim as acs
from accelsim.errors import ConfigError
from accelsim.explore.analysis import pareto_mask, sensitivity
from accelsim.explore.runner import run_sweep
from accelsim.explore.spec import sweep_from_dict
from accelsim.explore.store import Store, layers_frame, results_frame

ACCELSIM = [sys.executable, "-m", "accelsim.cli"]
VOLATILE = {"wall_s", "accuracy_wall_s", "point"}


def _frame(db, sweep=None) -> pd.DataFrame:
    with Store(db, create=False) as st:
        df = results_frame(st, sweep)
    return df.drop(columns=[c for c in VOLATILE if c in df.columns]).sort_values("key").reset_index(drop=True)


COST_SPEC = {
    "name": "cost", "workloads": ["mobilenet_v2"], "recipes": ["dfq"],
    "grid": {"pe_array.rows": [8, 16, 32], "pe_array.cols": [8, 16, 32],
             "memory.dram_bandwidth_gbps": [4, 16, 64], "precision.weight_bits": [4, 8]},
}


# ----------------------------------------------------------------------------- spec


def test_points_are_workloads_x_recipes_x_grid_x_zip_x_samples():
    spec = sweep_from_dict({
        "workloads": ["mobilenet_v2", "resnet18"], "recipes": ["naive", "dfq"],
        "grid": {"pe_array.rows": [8, 16, 32]},
        "zip": {"pe_array.cols": [8, 16], "memory.ifmap_sram_kib": [32, 64]},
        "random": {"samples": 5, "seed": 3, "axes": {"memory.dram_bandwidth_gbps": {"low": 4, "high": 64, "log": True},
                                                     "clock_mhz": [500, 800]}},
    })
    pts = spec.points()
    assert len(pts) == 2 * 2 * 3 * 2 * 5
    assert len({(p.workload, str(p.recipe), tuple(sorted(p.axes.items()))) for p in pts}) == len(pts)
    # zip varies together: cols 8 always with 32 KiB
    assert {(p.axes["pe_array.cols"], p.axes["memory.ifmap_sram_kib"]) for p in pts} == {(8, 32), (16, 64)}
    bw = [p.axes["memory.dram_bandwidth_gbps"] for p in pts]
    assert all(4 <= v <= 64 for v in bw)
    again = sweep_from_dict({"workloads": ["mobilenet_v2"], "random": spec.random})
    rand_axes = list(spec.random["axes"])
    first = [{k: p.axes[k] for k in rand_axes} for p in spec.points()[:5]]
    assert [p.axes for p in again.points()] == first  # seeded: reproducible
    other = sweep_from_dict({"workloads": ["mobilenet_v2"], "random": {**spec.random, "seed": 4}})
    assert [p.axes for p in other.points()] != [p.axes for p in again.points()]


@pytest.mark.parametrize("doc, field, words", [
    ({"workloads": ["resnet50"], "gird": {}}, "gird", "did you mean 'grid'"),
    ({"workloads": ["resnet50"], "grid": {"pe_array.rowz": [8]}}, "grid.pe_array.rowz", "did you mean 'pe_array.rows'"),
    ({"workloads": ["resnet50"], "grid": {"pe_array.rows": [8, -1]}}, "grid.pe_array.rows[1]", "expected"),
    ({"workloads": ["resnet50"], "grid": {"pe_array.dataflow": ["weight_stationary", "diagonal"]}},
     "grid.pe_array.dataflow[1]", "expected"),
    ({"workloads": ["resnet50"], "grid": {"recipe.weight_bitz": [4]}}, "grid.recipe.weight_bitz",
     "did you mean 'recipe.weight_bits'"),
    ({"workloads": ["resnet50"], "grid": {"recipe.weight_bits": [4, 99]}}, "grid.recipe.weight_bits[1]", "expected"),
    ({"workloads": ["resnet50"], "zip": {"pe_array.rows": [8, 16], "pe_array.cols": [8]}}, "zip", "one length"),
    ({"workloads": ["resnet5O"]}, "workloads[0]", "resnet50"),
    ({"workloads": ["resnet50"], "recipes": ["dqf"]}, "recipes[0]", "dfq"),
    ({"workloads": ["resnet50"], "random": {"samples": 0, "axes": {"pe_array.rows": [8]}}}, "random.samples", "expected"),
    ({"workloads": ["resnet50"], "random": {"samples": 3, "axes": {"pe_array.rows": {"low": 9, "high": 2}}}},
     "random.axes.pe_array.rows", "low < high"),
    ({"workloads": ["resnet50"], "base": "edge-npu-61x61"}, "base", "edge-npu-16x16"),
    ({"workloads": ["resnet50"], "limit": 0}, "limit", "positive"),
    ({"workloads": ["resnet50"], "objectives": ["energy_uj_per_inference", "latncy_ms"]}, "objectives[1]",
     "did you mean 'latency_ms'"),
])
def test_spec_errors_name_the_field(doc, field, words):
    with pytest.raises(ConfigError) as e:
        sweep_from_dict(doc, file="s.yaml")
    assert e.value.field == field, str(e.value)
    assert words in str(e.value)


def test_cli_spec_error_is_one_line_exit_2_and_writes_no_store(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("workloads: [resnet50]\ngrid:\n  pe_array.rows: [8, sixteen]\n")
    r = subprocess.run([*ACCELSIM, "sweep", str(spec), "--store", str(tmp_path / "x.db")], capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "grid.pe_array.rows[1]" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_recipe_the_hardware_cannot_run_is_skipped_with_its_reason(tmp_path):
    spec = sweep_from_dict({"name": "sk", "workloads": ["mobilenet_v2"],
                            "recipes": [{"method": "naive", "weight_scheme": "asymmetric"}],
                            "grid": {"quantization.weight_scheme": ["symmetric", "asymmetric"]}})
    stats = run_sweep(spec, tmp_path / "s.db", workers=0, progress=False)
    df = _frame(tmp_path / "s.db")
    assert stats.by_status == {"ok": 1, "skipped": 1}
    skipped = df[df["status"] == "skipped"].iloc[0]
    assert skipped["quantization.weight_scheme"] == "symmetric"
    assert "weight_scheme" in skipped["error"] and "symmetric" in skipped["error"]
    assert df[df["status"] == "ok"].iloc[0]["quantization.weight_scheme"] == "asymmetric"


# ----------------------------------------------------------------------------- numbers


def test_a_cost_point_equals_simulate_on_its_config(tmp_path):
    spec = sweep_from_dict({**COST_SPEC, "grid": {"pe_array.rows": [8, 32], "precision.weight_bits": [4]}})
    run_sweep(spec, tmp_path / "s.db", workers=0, progress=False)
    df = _frame(tmp_path / "s.db")
    g = acs.load_model("mobilenet_v2")
    for _, row in df.iterrows():
        hw = acs.load_hw("edge-npu-16x16").replace("pe_array.rows", int(row["pe_array.rows"])) \
            .replace("precision.weight_bits", 4)
        ref = acs.simulate(g, hw).summary  # dfq at the hardware's widths: the same numeric format
        for k in ("total_cycles", "stall_cycles", "energy_uj_per_inference", "dram_mib", "area_mm2"):
            assert row[k] == pytest.approx(ref[k], rel=1e-12), k


def test_accuracy_is_measured_once_per_numeric_format_and_equals_a_direct_run(tmp_path):
    spec = sweep_from_dict({"name": "acc", "workloads": ["tiny_resnet"], "recipes": ["dfq"], "limit": 60,
                            "grid": {"pe_array.rows": [8, 16], "memory.ifmap_sram_kib": [32, 64],
                                     "quantization.weight_scheme": ["symmetric", "asymmetric"]}})
    stats = run_sweep(spec, tmp_path / "s.db", workers=0, progress=False)
    assert stats.by_status == {"ok": 8}
    assert stats.accuracy_measured == 2 and stats.accuracy_reused == 6  # two numeric formats, four configs each
    df = _frame(tmp_path / "s.db")
    for scheme in ("symmetric", "asymmetric"):
        hw = acs.load_hw("edge-npu-16x16").replace("quantization.weight_scheme", scheme) \
            .replace("pe_array.rows", 8).replace("memory.ifmap_sram_kib", 64)
        direct = acs.explore.point.run_point("tiny_resnet", hw, "dfq", "mnist5k", limit=60, progress=False).summary
        row = df[(df["quantization.weight_scheme"] == scheme) & (df["pe_array.rows"] == 8)
                 & (df["memory.ifmap_sram_kib"] == 64)].iloc[0]
        for k in ("top1_integer", "top1_fake_quant", "integer_vs_fake_quant_equal", "total_cycles",
                  "energy_uj_per_inference"):
            assert row[k] == pytest.approx(direct[k], rel=1e-12), (scheme, k)


def test_failures_and_timeouts_are_recorded_and_the_sweep_goes_on(tmp_path):
    # tiny_resnet reads 28x28 images; digits are 8x8: an error for that point, not for the others
    spec = sweep_from_dict({"name": "f", "workloads": ["tiny_resnet", "mobilenet_v2"], "data": "digits",
                            "recipes": ["dfq"], "grid": {"pe_array.rows": [8, 16]}})
    stats = run_sweep(spec, tmp_path / "s.db", workers=0, progress=False)
    assert stats.by_status == {"error": 2, "ok": 2}
    df = _frame(tmp_path / "s.db")
    assert set(df[df["status"] == "error"]["workload"]) == {"tiny_resnet"}
    assert df[df["status"] == "error"]["error"].str.contains("8x8").all()
    slow = sweep_from_dict({"name": "t", "workloads": ["resnet50"], "timeout_s": 1e-4,
                            "grid": {"pe_array.rows": [8, 16]}})
    stats = run_sweep(slow, tmp_path / "t.db", workers=0, progress=False)
    assert stats.by_status == {"timeout": 2}
    # --retry-errors recomputes them (now with time enough)
    ok = sweep_from_dict({"name": "t", "workloads": ["resnet50"], "timeout_s": 600, "grid": {"pe_array.rows": [8, 16]}})
    assert run_sweep(ok, tmp_path / "t.db", workers=0, progress=False).by_status == {"timeout": 2}  # same keys: kept
    assert run_sweep(ok, tmp_path / "t.db", workers=0, progress=False, retry_errors=True).by_status == {"ok": 2}


# ----------------------------------------------------------------------------- store


def test_sigkill_mid_sweep_then_rerun_completes_it_exactly_once(tmp_path):
    spec_doc = {**COST_SPEC, "name": "kill"}
    spec_file = tmp_path / "kill.yaml"
    import yaml

    spec_file.write_text(yaml.safe_dump(spec_doc))
    db = tmp_path / "killed.db"
    proc = subprocess.Popen([*ACCELSIM, "sweep", str(spec_file), "--store", str(db), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    n_total = 3 * 3 * 3 * 2
    done = 0
    deadline = time.time() + 120
    while time.time() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as c:
                    done = c.execute("SELECT COUNT(*) FROM points").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 3:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, at once
    proc.wait()
    with sqlite3.connect(db) as c:
        partial = c.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    assert 3 <= partial < n_total, "the kill came too late to test anything"
    r = subprocess.run([*ACCELSIM, "sweep", str(spec_file), "--store", str(db), "--workers", "2", "--format", "json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    killed = _frame(db)
    assert len(killed) == n_total and killed["key"].is_unique and (killed["status"] == "ok").all()
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM points").fetchone()[0] == n_total
    clean = tmp_path / "clean.db"
    run_sweep(sweep_from_dict(spec_doc, file=str(spec_file)), clean, workers=0, progress=False)
    pd.testing.assert_frame_equal(killed, _frame(clean))


def test_two_sweeps_writing_one_store_at_once(tmp_path):
    import yaml

    spec_file = tmp_path / "both.yaml"
    spec_file.write_text(yaml.safe_dump({**COST_SPEC, "name": "both"}))
    db = tmp_path / "shared.db"
    procs = [subprocess.Popen([*ACCELSIM, "sweep", str(spec_file), "--store", str(db), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    df = _frame(db)
    assert len(df) == 54 and df["key"].is_unique and (df["status"] == "ok").all()
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_dask_local_cluster_gives_the_local_runners_rows(tmp_path):
    pytest.importorskip("distributed")
    spec = sweep_from_dict({"name": "d", "workloads": ["mobilenet_v2", "tiny_vgg"], "recipes": ["naive", "dfq"],
                            "limit": 40, "grid": {"pe_array.rows": [8, 16], "precision.accumulator_bits": [18, 32]}})
    run_sweep(spec, tmp_path / "local.db", workers=0, progress=False)
    from distributed import LocalCluster

    import yaml

    spec_file = tmp_path / "d.yaml"
    spec_file.write_text(yaml.safe_dump({"name": "d", "workloads": ["mobilenet_v2", "tiny_vgg"],
                                         "recipes": ["naive", "dfq"], "limit": 40,
                                         "grid": {"pe_array.rows": [8, 16], "precision.accumulator_bits": [18, 32]}}))
    # a running cluster, joined by address as `accelsim sweep --scheduler tcp://...` does
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        r = subprocess.run([*ACCELSIM, "sweep", str(spec_file), "--store", str(tmp_path / "dask.db"),
                            "--scheduler", cluster.scheduler_address], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    local, dask = _frame(tmp_path / "local.db"), _frame(tmp_path / "dask.db")
    assert len(local) == 16 and (local["status"] == "ok").all()
    pd.testing.assert_frame_equal(local, dask)
    with Store(tmp_path / "local.db", create=False) as a, Store(tmp_path / "dask.db", create=False) as b:
        la, lb = layers_frame(a), layers_frame(b)
    pd.testing.assert_frame_equal(la.sort_values(["key", "layer"]).reset_index(drop=True),
                                  lb.sort_values(["key", "layer"]).reset_index(drop=True))


def test_results_export_every_axis_as_a_column(tmp_path):
    spec = sweep_from_dict({**COST_SPEC, "grid": {"pe_array.rows": [8, 16], "recipe.weight_bits": [4, 8]}})
    run_sweep(spec, tmp_path / "s.db", workers=0, progress=False)
    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"r{suffix}"
        r = subprocess.run([*ACCELSIM, "results", str(tmp_path / "s.db"), "-o", str(out)], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        df = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
        assert len(df) == 4 and {"pe_array.rows", "recipe.weight_bits", "energy_uj_per_inference"} <= set(df.columns)
        # 4-bit weights move fewer bytes than 8-bit ones on the same array
        by = df.set_index(["pe_array.rows", "recipe.weight_bits"])["dram_mib"]
        assert by[(8, 4)] < by[(8, 8)]
    r = subprocess.run([*ACCELSIM, "results", str(tmp_path / "nothing.db")], capture_output=True, text=True)
    assert r.returncode == 2 and "no result store" in r.stderr
    assert not (tmp_path / "nothing.db").exists()


# ----------------------------------------------------------------------------- analysis


def test_pareto_mask_equals_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(30):
        n = int(rng.integers(1, 40))
        df = pd.DataFrame({"energy_uj_per_inference": rng.integers(1, 6, n).astype(float),
                           "latency_ms": rng.integers(1, 6, n).astype(float),
                           "top1_integer": rng.integers(0, 4, n) / 4})
        v = np.c_[df["energy_uj_per_inference"], df["latency_ms"], -df["top1_integer"]]
        brute = [not any((v[j] <= v[i]).all() and (v[j] < v[i]).any() for j in range(n)) for i in range(n)]
        assert pareto_mask(df).tolist() == brute


def test_sensitivity_sees_what_an_axis_does():
    df = pd.DataFrame([{"status": "ok", "workload": "w", "recipe": "r", "a": a, "b": b,
                        "energy_uj_per_inference": 10.0 * a + b, "latency_ms": 1.0}
                       for a, b in itertools.product([1, 2], [0, 1])])
    s = sensitivity(df, ["a", "b"]).set_index(["axis", "value"])
    # a doubles energy minus a little; b adds 1 uJ on ~15.5 uJ
    assert s.loc[("a", "2"), "energy_uj_per_inference_pct_vs_first"] == pytest.approx(100 * (20.5 / 10.5 - 1))
    assert s.loc[("b", "1"), "energy_uj_per_inference_pct_vs_first"] == pytest.approx(100 * (16 / 15 - 1))


def test_compare_two_configs_side_by_side():
    r = subprocess.run([*ACCELSIM, "compare", "edge-npu-16x16", "tpu-v1-like", "--model", "resnet18",
                        "--format", "csv"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from io import StringIO

    df = pd.read_csv(StringIO(r.stdout)).set_index("figure")
    a, b = (acs.simulate("resnet18", h).summary for h in ("edge-npu-16x16", "tpu-v1-like"))
    assert df.loc["total_cycles", "edge-npu-16x16"] == a["total_cycles"]
    assert df.loc["total_cycles", "difference"] == b["total_cycles"] - a["total_cycles"]
    assert df.loc["area_mm2", "tpu-v1-like"] == pytest.approx(b["area_mm2"])


def test_dry_run_counts_what_is_left_and_writes_nothing(tmp_path):
    import yaml

    doc = {"name": "dry", "workloads": ["mobilenet_v2", "tiny_resnet"], "recipes": ["dfq", "dfq+powerquant"],
           "limit": 30, "grid": {"pe_array.rows": [8, 16], "recipe.weight_bits": [4, 8]}}
    spec_file = tmp_path / "dry.yaml"
    spec_file.write_text(yaml.safe_dump(doc))
    db = tmp_path / "dry.db"

    def plan():
        r = subprocess.run([*ACCELSIM, "sweep", str(spec_file), "--store", str(db), "--dry-run", "--format", "json"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        import json

        return json.loads(r.stdout)["layers"][0]

    before = plan()
    assert not db.exists()
    # powerquant needs a power unit the base lacks: 8 points to skip; tiny_resnet: 2 formats to measure
    assert before["points"] == 16 and before["to_skip"] == 8 and before["to_compute"] == 8
    assert before["accuracy_measurements_at_least"] == 2 and before["in_store"] == 0
    half = sweep_from_dict({**doc, "workloads": ["mobilenet_v2"]})
    run_sweep(half, db, workers=0, progress=False)
    after = plan()
    assert after["in_store"] == 8 and after["to_compute"] == 4 and after["to_skip"] == 4


@pytest.mark.parametrize("spec_text, store_text, argv_tail, words", [
    ("[1, 2]", None, [], "expected a mapping of sweep fields"),
    ("workloads: [mobilenet_v2]\n", "hello, not a database\n", [], "not an accelsim result store"),
    ("workloads: [mobilenet_v2]\nrandom: {samples: 2, axes: {pe_array.rows: {low: 1, high: 8, int: true}}, "
     "sed: 1}\n", None, [], "did you mean 'seed'"),
    ("workloads: [mobilenet_v2]\n", None, ["--workers", "-1"], "expected an integer in 0..1024"),
])
def test_bad_sweep_input_is_one_line_and_loses_nothing(tmp_path, spec_text, store_text, argv_tail, words):
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text)
    store = tmp_path / "s.db"
    if store_text is not None:
        store.write_text(store_text)
    r = subprocess.run([*ACCELSIM, "sweep", str(spec), "--store", str(store), *argv_tail], capture_output=True,
                       text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert words in r.stderr
    if store_text is None:
        assert not store.exists()
    else:
        assert store.read_text() == store_text  # a file that is not a store is left as it was


def test_a_specs_objectives_choose_the_front(tmp_path):
    from accelsim.explore.analysis import objectives_for, pareto_front
    from accelsim.report.sweep_report import write_report

    doc = {**COST_SPEC, "name": "obj", "grid": {"pe_array.rows": [8, 16, 32], "memory.ifmap_sram_kib": [16, 256]}}
    run_sweep(sweep_from_dict(doc), tmp_path / "a.db", workers=0, progress=False)
    df = _frame(tmp_path / "a.db")
    both = pareto_front(df)  # energy, latency and area: a bigger array or buffer buys speed or energy with area
    energy_only = pareto_front(df, objectives_for(["energy_uj_per_inference"]))
    assert len(energy_only) == 1 and energy_only["energy_uj_per_inference"].iloc[0] == df["energy_uj_per_inference"].min()
    assert len(both) > len(energy_only)
    run_sweep(sweep_from_dict({**doc, "objectives": ["energy_uj_per_inference"]}), tmp_path / "a.db", workers=0,
              progress=False)  # the same points: only the spec (its objectives) is recorded again
    out = write_report(tmp_path / "a.db", tmp_path / "r.md", sweep="obj")
    text = out.read_text()
    assert "Pareto front: 1 points" in text and "area_mm2 (min)" not in text.split("## Pareto front")[0]


def test_an_already_quantized_onnx_workload_is_a_spec_error(tmp_path):
    qg = acs.quantize(acs.load_model("tiny_resnet"), "dfq", hw=acs.load_hw("edge-npu-16x16"))
    qg.save_onnx(tmp_path / "q.onnx")
    with pytest.raises(ConfigError) as e:
        sweep_from_dict({"workloads": [str(tmp_path / "q.onnx")]}, file="s.yaml")
    assert e.value.field == "workloads[0]" and "already quantized" in str(e.value)
    sweep_from_dict({"workloads": ["tiny_resnet"]}, file="s.yaml")  # its float model is fine
