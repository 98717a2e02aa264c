"""Progress bars for long work: tqdm on standard error, shown only when it is a terminal (a
pipe, a log file or a test run sees nothing), gone when the work is done.

    with progress_bar(total=len(x), desc="evaluate", unit="img") as bar: ... bar.update(n)
    with stages("quantize", ["fold", "equalize", ...]) as step: step("fold"); ...
    for item in track(items, "dfq ablation"): ...
"""
from __future__ import annotations

import contextlib
import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

DELAY_S = 0.5  # a bar appears only for work that takes longer than this


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it", enabled: bool = True,
                 delay: float | None = None, leave: bool = False):
    """A tqdm bar on stderr; disabled when `enabled` is false or stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None if enabled else True,
                delay=DELAY_S if delay is None else delay, leave=leave, dynamic_ncols=True)


def track(items: Iterable[T], desc: str, unit: str = "it", enabled: bool = True,
          total: int | None = None) -> Iterator[T]:
    """Iterate `items` with a bar (the tools' loops)."""
    items = list(items) if total is None and not hasattr(items, "__len__") else items
    with progress_bar(total=total if total is not None else len(items), desc=desc, unit=unit,
                      enabled=enabled) as bar:
        for item in items:
            bar.set_postfix_str(str(item)[:40], refresh=False)
            yield item
            bar.update(1)


@contextlib.contextmanager
def stages(desc: str, names: list[str], enabled: bool = True):
    """A bar over named stages: ``step(name)`` marks the start of a stage (the previous one is
    done); the bar completes when the block ends."""
    bar = progress_bar(total=len(names), desc=desc, unit="step", enabled=enabled)
    started = [False]

    def step(name: str) -> None:
        if started[0]:
            bar.update(1)
        started[0] = True
        bar.set_postfix_str(name)

    try:
        yield step
        bar.n = bar.total
        bar.refresh()
    finally:
        bar.close()
