"""`accelsim bench`: named benchmarks, their sections merged into reports/benchmarks.md.

The registry and the runner live here; the benchmarks in the modules of this package
(``grid``: the PE grid and its kernels, ``cost``: the full cost model, ``numerics``: the
numpy references and integer execution). Add a benchmark by decorating a function
``f(quick: bool) -> Section`` with ``@benchmark("name", "what it measures")`` in a module of
this package, in a top-level ``accelsim.bench_*`` module, or in a module listed in
``_PLUGINS``: all are imported when the registry is read.
"""
from __future__ import annotations

import importlib
import math
import os
import platform
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import AccelsimError
from ..paths import REPO_ROOT

# SCALE-Sim 3.0.0, all 54 ResNet-50 layers, 32x32 ws, no traces: measured by
# reference/scalesim/README.md (copied to tests/fixtures/reference/scalesim/README.md)
SCALESIM_RESNET50_CPU_S = 1291.0
REFERENCE_DIR = REPO_ROOT / "tests" / "fixtures" / "reference" / "scalesim"


@dataclass
class Section:
    title: str
    markdown: str
    figures: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    name: str
    help: str
    run: Callable[[bool], Section]


BENCHMARKS: dict[str, Benchmark] = {}
#: modules that register benchmarks when imported, in report order (then any other module of
#: this package, then top-level accelsim.bench_* modules)
_PLUGINS: list[str] = ["accelsim.bench.grid", "accelsim.bench.cost", "accelsim.bench.numerics"]


def benchmark(name: str, help: str):
    def register(fn: Callable[[bool], Section]):
        BENCHMARKS[name] = Benchmark(name, help, fn)
        return fn

    return register


def _load_plugins() -> None:
    import pkgutil

    import accelsim

    found = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)]
    found += [f"accelsim.{m.name}" for m in pkgutil.iter_modules(accelsim.__path__) if m.name.startswith("bench_")]
    for mod in dict.fromkeys([*_PLUGINS, *found]):
        importlib.import_module(mod)


def available() -> dict[str, Benchmark]:
    _load_plugins()
    return dict(BENCHMARKS)


# ----------------------------------------------------------------------------- helpers


def _best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """(best wall s, CPU s of that run, last result) over `repeat` runs."""
    best, best_cpu, out = math.inf, math.inf, None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        if w < best:
            best, best_cpu = w, c
    return best, best_cpu, out


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _reference(name: str) -> Path:
    path = REFERENCE_DIR / name
    if not path.is_file():
        raise AccelsimError(f"{path}: reference file not found (benchmarks run from a repo checkout)")
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    import numba
    import pandas

    info = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "pandas": pandas.__version__,
    }
    if hasattr(os, "getloadavg"):
        info["load average at start (1 min)"] = f"{os.getloadavg()[0]:.2f}"
    return info


# ----------------------------------------------------------------------------- runner


def run_benchmarks(names: list[str] | None = None, quick: bool = False,
                   out: str | Path | None = None, command: str | None = None,
                   progress: Callable[[str], None] | None = None, results: dict | None = None) -> str:
    """Run benchmarks (all by default) and merge their sections into the Markdown report `out`
    (if given): a section of a benchmark run now replaces that benchmark's section, the others
    stay as they were, each saying when and by which command it was measured. Returns the text
    written; `results`, when given, receives {name: {"title", "wall_s", "figures"}}."""
    registry = available()
    names = list(names or registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise AccelsimError(f"unknown benchmark '{unknown[0]}'; known: {', '.join(registry)}")
    info = machine()
    command = command or "accelsim bench" + (" --quick" if quick else "") + "".join(f" {n}" for n in names)
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    from ..progress import progress_bar

    fresh: dict[str, str] = {}
    bar = progress_bar(total=len(names), desc="bench", unit="benchmark", delay=0.0, enabled=progress is not None)
    for name in names:
        if progress and bar.disable:  # no terminal: one line per benchmark instead of the bar
            progress(name)
        bar.set_postfix_str(name)
        w0 = time.perf_counter()
        section = registry[name].run(quick)
        wall = time.perf_counter() - w0
        bar.update(1)
        fresh[name] = "\n".join([f"## {section.title}", "", f"`{name}`: {registry[name].help} "
                                 f"(measured {when} by `{command}`; benchmark wall time {wall:.1f} s)", "",
                                 section.markdown, ""])
        if results is not None:
            results[name] = {"title": section.title, "wall_s": wall, "figures": section.figures}
    bar.close()
    old = _sections(Path(out).read_text(encoding="utf-8")) if out is not None and Path(out).is_file() else {}
    order = list(old) + [n for n in registry if n in fresh and n not in old]  # new sections in registry order
    merged = [fresh.get(n, old.get(n)) for n in order]
    parts = ["# accelsim benchmarks", "",
             "Written by `accelsim bench`; each section says when and by which command it was measured "
             "(the figures inside one section are measured side by side in one run). "
             f"Last run: `{command}` on {when}.", "",
             "## Machine (of the last run)", "", _table(["", ""], [[k, v] for k, v in info.items()]), ""]
    text = "\n".join(parts + [m.rstrip("\n") + "\n" for m in merged if m])
    if out is not None:
        from ..report.output import write_atomic

        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return text


_SECTION_NAME = re.compile(r"^`([A-Za-z0-9_]+)`: ", re.M)


def _sections(text: str) -> dict[str, str]:
    """{benchmark name: its section} of an existing report: a `## ` heading whose first
    paragraph starts with the benchmark's name in backticks (the Machine section has none)."""
    out: dict[str, str] = {}
    for chunk in re.split(r"(?m)^(?=## )", text):
        if not chunk.startswith("## "):
            continue
        body = chunk.split("\n", 2)
        m = _SECTION_NAME.match(body[2].lstrip("\n")) if len(body) > 2 else None
        if m:
            out[m.group(1)] = chunk
    return out


def command_line(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    return "accelsim " + " ".join(shlex.quote(a) for a in argv)
