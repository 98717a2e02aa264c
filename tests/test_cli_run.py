"""`accelsim run`: the main job end to end, its report files, and its errors."""
import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

from accelsim.cli import main


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_run_reports_accuracy_beside_cost(tmp_path):
    out = tmp_path / "r.md"
    status, text, err = run_cli("run", "--model", "tiny_vgg", "--limit", "200", "--out", str(out))
    assert status == 0, err
    for needle in ("accuracy (top-1)", "integer, on the grid", "cost per inference", "energy by component",
                   "overflow events", "area", "DRAM"):
        assert needle in text
    doc = json.loads((tmp_path / "r.json").read_text())
    s = doc["totals"]
    assert s["images"] == 200 and s["model"] == "tiny_vgg" and s["hw"] == "edge-npu-16x16"
    assert s["integer_vs_fake_quant_within_1_lsb"] >= 0.999
    assert abs(s["top1_integer"] - s["top1_fake_quant"]) <= 0.005
    assert s["overflow_events"] == 0 and s["accumulator_bits_needed"] <= 32
    # the energy components add up to the total
    parts = sum(v for k, v in s.items() if k.startswith("energy_") and k.endswith("_uj") and k != "energy_uj_per_inference")
    assert parts == pytest.approx(s["energy_uj_per_inference"], rel=1e-9)
    p = doc["provenance"]
    assert p["accelsim_version"] and p["model"]["sha256"] and p["recipe"]["method"] == "dfq"
    assert p["dataset"]["name"] == "mnist5k" and p["hw"]["config"]["precision"]["accumulator_bits"] == 32
    assert p["recipe"]["input_range_source"].startswith("dataset mnist5k")
    assert "## per layer" in out.read_text()


def test_run_with_overrides_and_a_narrow_accumulator(tmp_path):
    status, text, err = run_cli("run", "--model", "tiny_vgg", "--limit", "20", "--no-report", "--format", "json",
                                "--set", "precision.accumulator_bits=14", "--set", "precision.accumulator_overflow=saturate")
    assert status == 0, err
    doc = json.loads(text)
    assert doc["provenance"]["hw"]["overrides"] == {"precision.accumulator_bits": 14,
                                                    "precision.accumulator_overflow": "saturate"}
    assert doc["totals"]["accumulator_bits"] == 14 and doc["totals"]["array_rows"] > 0
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, message", [
    (["--model", "tiny_vgg", "--data", "digits"], "expects inputs of shape 1x28x28, but dataset 'digits' has 1x8x8"),
    (["--model", "tiny_vgg", "--recipe", "dfq", "--set", "quantization.weight_scheme=symmetric",
      "--recipe", "{bad"], "recipe"),
    (["--model", "mobilenet_v2"], "carries no weights"),
    (["--model", "tiny_vgg", "--recipe", "fp32"], "quantizes nothing"),
    (["--model", "tiny_vgg", "--limit", "0"], "--limit"),
    (["--model", "tiny_vgg", "--set", "precision.accumulator_bits=99"], "precision.accumulator_bits"),
    (["--model", "tiny_vgg", "--out", "/nonexistent/dir/r.md"], "does not exist"),
])
def test_run_errors_are_one_line_and_exit_2(tmp_path, argv, message):
    status, text, err = run_cli("run", *argv)
    assert status == 2
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_recipe_the_hardware_cannot_run(tmp_path):
    recipe = tmp_path / "asym.yaml"
    recipe.write_text("method: naive\nweight_scheme: asymmetric\n")
    status, _, err = run_cli("run", "--model", "tiny_vgg", "--recipe", str(recipe), "--no-report")
    assert status == 2 and "weight_scheme: expected symmetric" in err


def test_a_saved_quantized_model_runs_and_is_priced_in_its_own_format(tmp_path):
    q = tmp_path / "q4.npz"
    assert run_cli("quantize", "tiny_vgg", "--weight-bits", "4", "--out", str(q))[0] == 0
    status, text, err = run_cli("simulate", str(q), "--format", "json")
    assert status == 0, err
    priced = json.loads(text)
    assert {row["weight_bits"] for row in priced["layers"]} == {4}
    status8, text8, _ = run_cli("simulate", "tiny_vgg", "--format", "json")
    plain = json.loads(text8)
    assert {row["weight_bits"] for row in plain["layers"]} == {8}
    assert sum(r["dram_filter_bytes"] for r in priced["layers"]) == pytest.approx(
        sum(r["dram_filter_bytes"] for r in plain["layers"]) / 2, rel=0.01)
    status, text, err = run_cli("run", "--model", str(q), "--limit", "50", "--no-report", "--format", "json")
    assert status == 0, err
    doc = json.loads(text)
    assert doc["totals"]["recipe"] == "dfq W4A8" and doc["provenance"]["model"]["quantized_file"]
    status, _, err = run_cli("run", "--model", str(q), "--recipe", "naive", "--no-report")
    assert status == 2 and "already quantized" in err


def test_reports_get_the_usual_file_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        out = tmp_path / "r.md"
        assert run_cli("run", "--model", "tiny_vgg", "--limit", "10", "--out", str(out))[0] == 0
    finally:
        os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o644 and ((tmp_path / "r.json").stat().st_mode & 0o777) == 0o644
