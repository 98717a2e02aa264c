"""The README, verified: its Python block and its example commands run (from another working
directory), its command table names real options, the extras it names exist, and the figures
its comments promise are what the commands print. The README cannot drift from the code."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib

import pytest
from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
SLOW_S = 5.0  # commands measured slower than this (whole process) are marked slow

#: example commands that take longer than SLOW_S: (a prefix of the command) -> marked slow
SLOW = ("accelsim run --model tiny_resnet --set precision.accumulator_bits=16",
        "accelsim run --recipe dfq+powerquant")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def _commands() -> list[tuple[str, str]]:
    """(command line, the comment after it) for every `accelsim ...` line of the sh blocks."""
    out = []
    for block in _blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            code, _, comment = line.partition("  #")
            code = " ".join(code.split())
            if code.startswith("accelsim "):
                out.append((code, comment.strip()))
    return out


def _params():
    for cmd, comment in _commands():
        marks = [pytest.mark.slow] if cmd.startswith(SLOW) else []
        yield pytest.param(cmd, comment, marks=marks, id=cmd[9:60])


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working directory outside the repo, with the README's relative tests/ paths reachable."""
    (tmp_path / "tests").symlink_to(REPO_ROOT / "tests")
    (tmp_path / "reports").symlink_to(REPO_ROOT / "reports")  # the sweep specs the README runs
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_has_examples():
    assert len(_blocks("python")) >= 1 and len(_commands()) >= 5


def test_python_block_runs(tmp_path):
    """Every ```python block, as written, in a fresh interpreter outside the repo."""
    for code in _blocks("python"):
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("cmd, comment", list(_params()))
def test_example_command_runs(cmd, comment, elsewhere, capsys):
    from accelsim.cli import main

    argv = shlex.split(cmd)[1:]
    if argv[0] == "run":
        argv.append("--no-report")
    if argv[0] in ("results", "report") and not (elsewhere / argv[1]).exists():
        # reads a sweep store: first the README's command that writes it, as a reader would run them
        (maker,) = [c for c, _ in _commands() if f"--store {argv[1]}" in c and "--dry-run" not in c]
        assert main(shlex.split(maker)[1:]) == 0
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 0, err
    for figure in re.findall(r"\b\d\.\d{4}\b", comment):  # e.g. "# 0.9870, as torch measured"
        assert figure in out, f"README promises {figure}; the command printed:\n{out}"
    for token in argv:
        if token.endswith((".npz", ".parquet", ".csv", ".json", ".md", ".html")) and "fixtures" not in token:
            assert (elsewhere / token).is_file(), f"{cmd}: wrote no {token}"


def test_quick_start_run_command(elsewhere, capsys):
    """The quick start's `accelsim run`: the defaults, a report written beside it."""
    from accelsim.cli import main

    assert "&& .venv/bin/accelsim run\n" in README
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out or "top1" in out
    assert (elsewhere / "accelsim-run.md").is_file() and (elsewhere / "accelsim-run.json").is_file()


def _table_rows() -> list[tuple[str, list[str]]]:
    rows = []
    for line in README.splitlines():
        m = re.match(r"\| `accelsim (\w+)([^`]*)` \|", line)
        if m:
            rows.append((m.group(1), re.findall(r"--[a-z][a-z-]*", m.group(2))))
    return rows


def _options(name: str) -> set[str]:
    from accelsim.cli import build_parser

    parser = build_parser(only=name)
    sub = parser._subparsers._group_actions[0].choices[name]
    return {s for action in sub._actions for s in action.option_strings}


def test_command_table_names_real_commands_and_options():
    from accelsim.cli import COMMANDS

    rows = _table_rows()
    assert rows
    documented = [name for name, _ in rows]
    assert sorted(set(COMMANDS) - set(documented)) == [], "commands missing from the README's table"
    for name, flags in rows:
        assert name in COMMANDS, f"README documents `accelsim {name}`, which does not exist"
        missing = [f for f in flags if f not in _options(name)]
        assert not missing, f"README: `accelsim {name}` has no option {missing}"


def test_every_command_takes_format():
    """The README says every command takes --format table|csv|json."""
    from accelsim.cli import COMMANDS

    assert "Every command takes `--format table|csv|json`." in README
    assert [name for name in COMMANDS if "--format" not in _options(name)] == []


def test_extras_named_in_readme_exist():
    extras = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = set(re.findall(r"\.\[([a-z,]+)\]", README)) | set(re.findall(r"accelsim\[([a-z,]+)\]", README))
    named = {e for group in named for e in group.split(",")} - {"EXTRA"}
    assert named and named <= extras, f"README names extras that do not exist: {named - extras}"


def test_layout_lists_real_folders():
    block = README.split("## Layout", 1)[1].split("```", 2)[1]
    for folder in re.findall(r"^\s*([a-z_]+/)", block, re.M):
        parent = REPO_ROOT / "accelsim" / folder if (REPO_ROOT / "accelsim" / folder).is_dir() else REPO_ROOT / folder
        assert parent.is_dir(), f"README's layout lists {folder}, which does not exist"
