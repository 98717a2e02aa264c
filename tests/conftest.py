"""Shared test fixtures. Reference data from other tools is copied into tests/fixtures/reference
(from ../shared/reference) so that a clean checkout runs the tests on its own."""
from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).resolve().parent / "fixtures" / "reference"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE_DIR
