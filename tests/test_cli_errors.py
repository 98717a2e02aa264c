"""Bad command-line input: one `error:` line, exit status 2, no half-written file."""
import subprocess
import sys

import pytest


def accelsim(*argv):
    return subprocess.run([sys.executable, "-m", "accelsim.cli", *argv], capture_output=True, text=True)


@pytest.mark.parametrize("argv, message", [
    (["simulate", "alexnet", "--set", "pe_array.rows=[1"], "--set 'pe_array.rows=[1': VALUE is not valid YAML"),
    (["simulate", "alexnet", "--set", "pe_array.rows"], "expected PATH=VALUE"),
    (["simulate", "alexnet", "--set", "pe_array.rwos=8"], "did you mean 'rows'"),
    (["simulate", "alexnet", "--out", "{tmp}/adir.csv"], "is a directory"),
    (["simulate", "alexnet", "--out", "{tmp}/missing/x.csv"], "does not exist"),
    (["simulate", "alexnet", "--out", "{tmp}/x.xlsx"], "unknown output format '.xlsx'"),
    (["simulate", "alexnet", "--batch", "0"], "batch"),
    (["simulate", "{tmp}/pool.yaml"], "no conv, linear or matmul layer"),
])
def test_bad_simulate_input_is_one_line_and_exit_2(argv, message, tmp_path):
    (tmp_path / "adir.csv").mkdir()
    (tmp_path / "pool.yaml").write_text(
        "name: pool\ninputs: [{name: input, shape: [3, 8, 8]}]\nlayers:\n  - {name: p, op: maxpool, kernel: 2}\n")
    proc = accelsim(*[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.csv", "pool.yaml"]  # nothing written
