"""The `accelsim` command: describe and validate, output formats and exit statuses."""
import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import pandas as pd
import pytest

import accelsim
from accelsim.cli import main


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_describe_csv_totals_match_the_graph():
    status, out, _ = run_cli("describe", "resnet50", "--format", "csv")
    assert status == 0
    df = pd.read_csv(io.StringIO(out))
    assert df["macs"].sum() == accelsim.load_model("resnet50").total_macs()
    assert set(df["op"]) == {"conv2d", "linear"}


def test_describe_json_with_hw_adds_bytes_at_the_configured_bit_widths():
    status, out, _ = run_cli("describe", "mobilenet_v2", "--hw", "edge-npu-16x16", "--format", "json")
    assert status == 0
    doc = json.loads(out)
    weights = sum(layer["weight_elems"] for layer in doc["layers"])
    hw = accelsim.load_hw("edge-npu-16x16")
    assert doc["totals"]["weight_bytes"] >= weights * hw.precision.weight_bits // 8
    assert doc["totals"]["macs"] == accelsim.load_model("mobilenet_v2").total_macs()


def test_describe_table_lists_every_node_with_all():
    status, out, _ = run_cli("describe", "resnet18", "--all", "--batch", "2")
    assert status == 0
    assert "conv1.bn" in out and "batchnorm" in out and "totals" in out and "(batch 2)" in out


def test_describe_unknown_workload_exits_2_with_one_line():
    status, out, err = run_cli("describe", "resnet5")
    assert status == 2 and out == ""
    assert err.startswith("error: unknown workload 'resnet5'; did you mean resnet50") and err.count("\n") == 1


def test_describe_scalesim_csv(reference_dir):
    status, out, _ = run_cli("describe", str(reference_dir / "scalesim" / "alexnet.csv"), "--format", "csv")
    assert status == 0
    assert len(pd.read_csv(io.StringIO(out))) == 5


def test_module_entry_point_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "accelsim.cli", "describe", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "bad.yaml: line 2, column 1: expected valid YAML; found a syntax error" in proc.stderr


def test_help_lists_commands():
    proc = subprocess.run([sys.executable, "-m", "accelsim.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in ("describe", "validate"):
        assert name in proc.stdout


@pytest.mark.parametrize("name", ["edge-npu-16x16", "tpu-v1-like", "nvdla-small-like", "scalesim-32x32-ws"])
def test_validate_shipped_configs(name):
    status, out, err = run_cli("validate", f"hwconfigs/{name}.yaml")
    assert status == 0, err
    assert "ok" in out


def test_describe_graph_without_gemm_layers_prints_an_empty_table(tmp_path):
    f = tmp_path / "pool.yaml"
    f.write_text("name: pool\ninputs: [{name: input, shape: [3, 8, 8]}]\nlayers:\n  - {name: p, op: maxpool, kernel: 2}\n")
    status, out, err = run_cli("describe", str(f), "--format", "csv")
    assert status == 0, err
    assert out.startswith("layer,op,") and len(out.strip().splitlines()) == 1
    status, out, _ = run_cli("describe", str(f), "--all", "--format", "json")
    assert status == 0 and json.loads(out)["totals"]["macs"] == 0
