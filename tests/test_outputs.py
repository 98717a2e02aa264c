"""What the commands print and write: one vocabulary, integer byte counts, tables whose columns
add up, totals with the energy breakdown, one JSON shape with provenance, --format everywhere,
and `bench NAME` merging its section into the report."""
from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
from conftest import REPO_ROOT

from accelsim.cli import main


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert status == 0, err
    return out


def _json(capsys, *argv):
    return json.loads(_run(capsys, *argv, "--format", "json"))


def _brief_rows(text: str) -> pd.DataFrame:
    """The brief simulate table parsed back (names and ops have no spaces)."""
    lines = text.split("\n\ntotals")[0].splitlines()[1:]  # drop the title
    header, body = lines[0].split(), [ln.split() for ln in lines[1:] if ln.strip()]
    return pd.DataFrame(body, columns=header)


@pytest.mark.parametrize("sets", [[], ["--set", "quantization.weight_scheme=asymmetric",
                                        "--set", "quantization.zero_point_unit=extra_column"]])
def test_brief_simulate_table_cycle_columns_add_up(capsys, sets):
    text = _run(capsys, "simulate", "mobilenet_v2", *sets)
    df = _brief_rows(text)
    cycles = [c for c in df.columns if c.endswith("_cycles") and c != "total_cycles"]
    assert cycles[0] == "compute_cycles" and cycles[-1] == "stall_cycles"
    if sets:
        assert "zero_point_cycles" in cycles  # shown because it is not zero here
    assert "tiling_cycles" in cycles  # mobilenet_v2 on 64 KiB buffers tiles some layers
    parts = df[cycles].astype(int).sum(axis=1)
    assert (parts == df["total_cycles"].astype(int)).all()
    # and against the full table (an independent path: the csv)
    full = pd.read_csv(__import__("io").StringIO(_run(capsys, "simulate", "mobilenet_v2", *sets, "--format", "csv")))
    assert full["total_cycles"].tolist() == df["total_cycles"].astype(int).tolist()


def test_simulate_totals_add_up_and_carry_the_energy_breakdown(capsys):
    doc = _json(capsys, "simulate", "resnet18", "--set", "quantization.weight_scheme=asymmetric")
    t, layers = doc["totals"], pd.DataFrame(doc["layers"])
    assert (t["compute_cycles"] + t["zero_point_cycles"] + t["tiling_cycles"] + t["power_unit_cycles"]
            + t["stall_cycles"]) == t["total_cycles"]
    assert t["overhead_cycles"] == t["zero_point_cycles"] + t["tiling_cycles"] + t["power_unit_cycles"]
    parts = {k: v for k, v in t.items() if k.startswith("energy_") and k.endswith("_uj")}
    assert len(parts) >= 10 and parts["energy_dram_uj"] > 0 and parts["energy_mac_uj"] > 0
    assert sum(parts.values()) == pytest.approx(t["energy_uj_per_inference"], rel=1e-9)
    assert layers["energy_pj"].sum() / 1e6 == pytest.approx(t["energy_uj_per_inference"], rel=1e-9)
    assert t["dram_bytes"] == layers["dram_bytes"].sum()


def test_byte_counts_are_integers_and_add_up(capsys):
    doc = _json(capsys, "simulate", "mobilenet_v2", "--set", "precision.weight_bits=4")
    layers = doc["layers"]
    byte_cols = [c for c in layers[0] if c.endswith("_bytes")]
    assert len(byte_cols) >= 10
    for row in layers:
        for c in byte_cols:
            assert isinstance(row[c], int), (row["layer"], c, row[c])
        assert row["dram_bytes"] == sum(row[c] for c in ("dram_ifmap_bytes", "dram_filter_bytes",
                                                         "dram_ofmap_bytes", "dram_psum_bytes", "dram_params_bytes"))
    csv = _run(capsys, "simulate", "mobilenet_v2", "--format", "csv")
    assert "150527.9999" not in csv and ".9999999" not in csv.split("\n")[1].split(",dram_ifmap")[0]
    df = pd.read_csv(__import__("io").StringIO(csv))
    assert all(pd.api.types.is_integer_dtype(df[c]) for c in df.columns if c.endswith("_bytes"))


def test_describe_speaks_the_simulate_vocabulary(capsys):
    d = _json(capsys, "describe", "mobilenet_v2", "--hw", "edge-npu-16x16")
    s = _json(capsys, "simulate", "mobilenet_v2")
    shared = set(d["layers"][0]) & set(s["layers"][0])
    assert {"layer", "op", "M", "K", "N", "groups", "macs"} <= shared
    for a, b in zip(d["layers"], s["layers"]):  # the same facts under the same names
        assert all(a[k] == b[k] for k in ("layer", "M", "K", "N", "groups", "macs"))
    assert d["totals"]["macs"] == s["totals"]["macs"]
    import re

    for doc in (d, s):
        for key in list(doc["layers"][0]) + list(doc["totals"]):
            assert re.fullmatch(r"[a-z0-9_]+|[MKN]", key), key  # snake_case (and the GEMM's M, K, N)


def test_out_json_is_the_format_json_document(capsys, tmp_path):
    out = tmp_path / "r.json"
    printed = _json(capsys, "simulate", "alexnet", "--set", "precision.weight_bits=4", "--out", str(out))
    written = json.loads(out.read_text())
    for doc in (printed, written):
        doc["provenance"].pop("created")
    assert written == printed


def _git_head():
    try:
        proc = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def test_simulate_provenance(capsys):
    doc = _json(capsys, "simulate", "alexnet", "--hw", "tpu-v1-like", "--set", "precision.weight_bits=4",
                "--batch", "2")
    p = doc["provenance"]
    import accelsim

    assert p["accelsim_version"] == accelsim.__version__
    head = _git_head()
    if head:
        assert p["git_revision"].split("-")[0] == head
    assert p["command"].startswith("accelsim simulate alexnet")
    assert p["workload"]["file"].endswith("alexnet.yaml") and p["workload"]["name"] == "alexnet"
    assert p["hw"]["name"] == "tpu-v1-like" and p["hw"]["file"].endswith("tpu-v1-like.yaml")
    assert p["hw"]["overrides"] == {"precision.weight_bits": 4}
    assert p["hw"]["config"]["precision"]["weight_bits"] == 4  # the resolved config, override applied
    assert p["batch"] == 2 and p["timing"] == "native"


@pytest.mark.parametrize("argv", [
    ["describe", "alexnet"],
    ["validate", "hwconfigs/edge-npu-16x16.yaml"],
    ["simulate", "alexnet"],
    ["evaluate", "tiny_resnet", "--limit", "20"],
    ["quantize", "tiny_resnet"],
    ["bench", "--list"],
])
def test_every_json_output_has_one_shape(capsys, argv):
    doc = _json(capsys, *argv)
    assert list(doc) == ["provenance", "layers", "totals"]
    assert doc["provenance"]["accelsim_version"] and doc["provenance"]["command"].startswith("accelsim " + argv[0])
    assert isinstance(doc["layers"], list) and isinstance(doc["totals"], dict)


def test_run_json_has_the_shape_too(capsys):
    doc = _json(capsys, "run", "--limit", "20", "--no-report")
    assert list(doc)[:3] == ["provenance", "layers", "totals"]
    assert doc["provenance"]["hw"]["config"]["name"] == "edge-npu-16x16" and "recipe" in doc["provenance"]
    assert "git_revision" in doc["provenance"] and doc["provenance"]["command"].startswith("accelsim run")


def test_quantize_provenance_has_the_recipe(capsys):
    doc = _json(capsys, "quantize", "tiny_resnet", "--recipe", "naive", "--weight-bits", "6")
    assert doc["provenance"]["recipe"]["method"] == "naive" and doc["provenance"]["recipe"]["weight_bits"] == 6
    assert {"absorbed_layers", "bias_corrected_layers", "activation_sites"} <= set(doc["totals"])


def test_validate_formats(capsys):
    row = _json(capsys, "validate", "scalesim-32x32-ws")["totals"]
    assert row["valid"] is True and row["array_rows"] == 32 and row["dataflow"] == "weight_stationary"
    csv = pd.read_csv(__import__("io").StringIO(_run(capsys, "validate", "scalesim-32x32-ws", "--format", "csv")))
    assert csv.loc[0, "array_cols"] == 32


# ----------------------------------------------------------------------------- bench merges


@pytest.fixture
def dummy_benchmarks():
    from accelsim import bench

    calls = {"n": 0}

    def make(name):
        @bench.benchmark(name, f"dummy benchmark {name}")
        def run(quick):
            calls["n"] += 1
            return bench.Section(f"Dummy {name}", f"figure {name} = {calls['n']}", {"n": calls["n"]})

    make("zz_dummy_a")
    make("zz_dummy_b")
    yield
    bench.BENCHMARKS.pop("zz_dummy_a")
    bench.BENCHMARKS.pop("zz_dummy_b")


def test_bench_name_merges_its_section(capsys, tmp_path, dummy_benchmarks):
    report = tmp_path / "benchmarks.md"
    report.write_text("# accelsim benchmarks\n\n## Machine\n\nold machine\n\n## Hand-written section\n\nkept\n")
    _run(capsys, "bench", "zz_dummy_a", "zz_dummy_b", "--out", str(report))
    first = report.read_text()
    assert "figure zz_dummy_a = 1" in first and "figure zz_dummy_b = 2" in first
    assert "old machine" not in first  # the machine section is the last run's
    _run(capsys, "bench", "zz_dummy_b", "--out", str(report))
    second = report.read_text()
    assert "figure zz_dummy_b = 3" in second and "figure zz_dummy_b = 2" not in second  # replaced
    a_first = first.split("## Dummy zz_dummy_a")[1].split("## ")[0]
    assert "## Dummy zz_dummy_a" + a_first in second  # the other section, byte for byte
    assert second.index("Dummy zz_dummy_a") < second.index("Dummy zz_dummy_b")  # in place
    assert second.count("## Dummy") == 2


def test_bench_json(capsys, tmp_path, dummy_benchmarks):
    doc = _json(capsys, "bench", "zz_dummy_a", "--out", str(tmp_path / "b.md"))
    assert [r["benchmark"] for r in doc["layers"]] == ["zz_dummy_a"]
    assert doc["totals"]["zz_dummy_a"] == {"n": 1} and "machine" in doc["provenance"]
