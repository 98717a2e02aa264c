"""Progress bars: drawn on stderr when it is a terminal, never otherwise (pipes, logs, tests)."""
from __future__ import annotations

import io
import types

import pytest

import accelsim
from accelsim import progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def fake_tty(monkeypatch):
    err = _Tty()  # the bars' stderr (sys.stderr itself is pytest's until the test body runs)
    monkeypatch.setattr(progress, "sys", types.SimpleNamespace(stderr=err))
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    return err


@pytest.fixture
def pipe(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(progress, "sys", types.SimpleNamespace(stderr=err))
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    return err


def test_evaluate_draws_a_bar_on_a_terminal_only(fake_tty):
    from accelsim.explore.evaluate import evaluate_detailed

    r = evaluate_detailed("tiny_resnet", "mnist5k", limit=40, batch_size=20, progress=True)
    assert r.total == 40
    text = fake_tty.getvalue()
    assert "evaluate tiny_resnet" in text and "/40 " in text


def test_no_bar_when_stderr_is_not_a_terminal(pipe):
    from accelsim.explore.evaluate import evaluate_detailed

    evaluate_detailed("tiny_resnet", "mnist5k", limit=40, batch_size=20, progress=True)
    assert pipe.getvalue() == ""


def test_no_bar_when_disabled(fake_tty):
    from accelsim.explore.evaluate import evaluate_detailed

    evaluate_detailed("tiny_resnet", "mnist5k", limit=20, progress=False)
    assert fake_tty.getvalue() == ""


def test_quantize_stages(fake_tty):
    from accelsim.quant.pipeline import quantize

    quantize(accelsim.load_model("tiny_resnet"), "dfq", progress=True)
    text = fake_tty.getvalue()
    assert "quantize tiny_resnet" in text and "/5 " in text


def test_track_and_stages_count_what_they_saw(fake_tty):
    assert list(progress.track(range(3), "loop")) == [0, 1, 2]
    assert "loop" in fake_tty.getvalue() and "/3 " in fake_tty.getvalue()
    with progress.stages("job", ["a", "b"]) as step:
        step("a")
        step("b")
    assert "job" in fake_tty.getvalue() and "/2 " in fake_tty.getvalue()
