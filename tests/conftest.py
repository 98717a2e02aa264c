"""Shared test fixtures. Reference data from other tools is copied into tests/fixtures/reference
(from ../shared/reference) so that a clean checkout runs the tests on its own."""
import io
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).resolve().parent / "fixtures" / "reference"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE_DIR


def run_cli(argv, cwd: Path) -> tuple[int, str, str]:
    """`accelsim ARGV` in-process from `cwd`: (exit status, stdout, stderr)."""
    from accelsim.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = main([str(a) for a in argv])
    finally:
        os.chdir(old)
    return status, out.getvalue(), err.getvalue()
