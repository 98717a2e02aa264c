"""Start-up: `accelsim --help`, a command's --help and argument errors load no heavy module
(numba, pandas, scipy, onnx, the quantization pipeline); only a command that runs does."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numba", "pandas", "scipy", "onnx", "mlxtend", "accelsim.quant.pipeline", "accelsim.sim.kernels",
         "accelsim.graph.run")


def _loaded_after(argv: list[str]) -> tuple[int, set[str], str]:
    code = (
        "import json, sys\n"
        "from accelsim.cli import main\n"
        f"status = main({argv!r})\n"
        "print(json.dumps([status, sorted(sys.modules)]), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    last = proc.stderr.strip().splitlines()[-1]
    status, modules = json.loads(last)
    return status, set(modules), proc.stdout


@pytest.mark.parametrize("argv", [["--help"], ["quantize", "--help"], ["run", "--help"], ["simulate"],
                                  ["simulate", "resnet50", "--batch", "0"], ["nosuchcommand"]])
def test_help_and_argument_errors_import_nothing_heavy(argv):
    status, modules, out = _loaded_after(argv)
    assert status in (0, 2)
    assert not [m for m in HEAVY if m in modules], sorted(m for m in HEAVY if m in modules)
    if argv == ["--help"]:
        for name in ("describe", "validate", "simulate", "evaluate", "quantize", "run", "bench"):
            assert name in out  # every command still listed
    if argv == ["quantize", "--help"]:
        assert "dfq+powerquant" in out  # the recipe names, from quant.recipe


def test_a_command_that_runs_still_gets_its_modules():
    status, modules, out = _loaded_after(["simulate", "alexnet"])
    assert status == 0 and "pandas" in modules and "total_cycles" in out


def test_full_parser_builds_every_command():
    from accelsim.cli import COMMANDS, build_parser

    parser = build_parser()
    for name in COMMANDS:  # each subparser has its arguments (its --help lists more than -h)
        sub = parser._subparsers._group_actions[0].choices[name]
        assert len(sub._actions) > 1, name


def test_lazy_quant_names_are_the_functions_after_every_submodule_loaded():
    """accelsim.quant loads its names lazily; a name shared with a submodule (equalize) must
    still be the function once the submodules are imported."""
    import importlib
    import pkgutil
    import types

    import accelsim.quant as q

    for m in pkgutil.iter_modules(q.__path__):
        importlib.import_module(f"accelsim.quant.{m.name}")
    for name in q.__all__:
        value = getattr(q, name)
        assert not isinstance(value, types.ModuleType), name
        assert getattr(importlib.import_module(f"accelsim.quant.{q._LAZY[name]}"), name) is value
