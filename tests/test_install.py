"""Bundled files ship as package data: a built wheel carries every file of hwconfigs/ and
workloads/ under accelsim/_bundled/, and accelsim finds them there from any directory."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from accelsim import paths


def _bundled_files() -> dict[str, list[str]]:
    return {folder: sorted(p.name for p in (REPO_ROOT / folder).iterdir() if p.is_file())
            for folder in paths.BUNDLED_FOLDERS}


def _build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the worktree
    shutil.copytree(REPO_ROOT, src, ignore=shutil.ignore_patterns(".venv*", ".git", "build", "*.egg-info",
                                                                  "__pycache__", ".pytest_cache", ".hypothesis",
                                                                  "tests", "reports", "tools"))
    out = tmp_path / "wheel"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        unreachable = ("No matching distribution", "Could not find a version", "Network is unreachable")
        if any(s in proc.stderr for s in unreachable):  # no index to fetch setuptools from: not our bug
            pytest.skip(f"cannot fetch the build backend here: {proc.stderr.strip()[-300:]}")
        pytest.fail(f"the wheel does not build:\n{proc.stderr[-3000:]}")
    (wheel,) = out.glob("accelsim-*.whl")
    return wheel


def test_wheel_ships_every_bundled_file(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = {folder: sorted(n.rsplit("/", 1)[1] for n in names if n.startswith(f"accelsim/_bundled/{folder}/"))
                   for folder in paths.BUNDLED_FOLDERS}
        assert shipped == _bundled_files()  # none left out (a new file type would be), none invented
        for folder, files in shipped.items():  # byte for byte the repo's files
            for name in files:
                assert zf.read(f"accelsim/_bundled/{folder}/{name}") == (REPO_ROOT / folder / name).read_bytes()
        assert "accelsim/cli.py" in names


def test_bundled_files_found_through_the_package_copy(tmp_path, monkeypatch):
    """What a non-editable install sees: no ./hwconfigs, no repo beside the package, only the copy."""
    for folder in paths.BUNDLED_FOLDERS:
        shutil.copytree(REPO_ROOT / folder, tmp_path / "pkg" / folder)
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path / "no-repo")
    monkeypatch.setattr(paths, "package_dir", lambda folder: tmp_path / "pkg" / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACCELSIM_HOME", raising=False)
    from accelsim.config import load_hw
    from accelsim.graph.zoo import find_workload_file, zoo_names

    assert find_workload_file("mobilenet_v2") == tmp_path / "pkg" / "workloads" / "mobilenet_v2.yaml"
    assert "tiny_resnet" in zoo_names() and "resnet50" in zoo_names()
    assert load_hw("edge-npu-16x16").name == "edge-npu-16x16"
    # the README's relative paths work from any directory too
    assert load_hw("hwconfigs/tpu-v1-like.yaml").name == load_hw("tpu-v1-like").name
    assert find_workload_file("workloads/resnet50.yaml") == tmp_path / "pkg" / "workloads" / "resnet50.yaml"


def test_nothing_found_without_any_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path / "no-repo")
    monkeypatch.setattr(paths, "package_dir", lambda folder: None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACCELSIM_HOME", raising=False)
    from accelsim.errors import GraphError
    from accelsim.graph.zoo import find_workload_file

    with pytest.raises(GraphError, match=r"unknown workload 'mobilenet_v2' \(bundled: ;"):
        find_workload_file("mobilenet_v2")


@pytest.mark.slow
def test_fresh_non_editable_install_runs_the_first_commands_anywhere(tmp_path):
    """The issue's must-show: a fresh venv, `pip install` of the built package (not editable),
    and from a directory outside the checkout: run, simulate mobilenet_v2, evaluate tiny_resnet."""
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[data]"], capture_output=True,
                         text=True)
    if pip.returncode != 0 and any(s in pip.stderr for s in ("No matching distribution", "Network is unreachable")):
        pytest.skip(f"cannot fetch the dependencies here: {pip.stderr.strip()[-300:]}")
    assert pip.returncode == 0, pip.stderr[-3000:]
    away = tmp_path / "elsewhere"
    away.mkdir()
    exe = str(venv / "bin" / "accelsim")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "ACCELSIM_CACHE_DIR": str(tmp_path / "c")}
    for argv, expect in ((["run", "--limit", "100"], "integer, on the grid"),
                         (["simulate", "mobilenet_v2"], "total_cycles"),
                         (["evaluate", "tiny_resnet", "--data", "mnist5k"], "0.9870")):
        r = subprocess.run([exe, *argv], cwd=away, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (argv, r.stderr[-2000:])
        assert expect in r.stdout, (argv, r.stdout[-2000:])
    assert (away / "accelsim-run.md").is_file()
    site = next((venv / "lib").glob("python*/site-packages"))
    assert not (site / "accelsim" / "__init__.py").resolve().is_relative_to(REPO_ROOT)  # not the checkout's code
