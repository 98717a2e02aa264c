"""The house rules, checked on the source: imports point downward (DESIGN.md: config, graph <-
quant <- sim <- cost <- explore, report <- cli), one name per concept, and the public names
other code relies on stay where they were."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "accelsim"

#: layer of each top-level module or package of accelsim (lower may not import higher); the
#: base modules (errors, paths, files, progress) hold no model code and sit below everything
RANK = {"errors": -1, "paths": -1, "files": -1, "progress": -1,
        "config": 0, "graph": 0, "data": 0.5, "quant": 1, "sim": 2, "cost": 3,
        "explore": 4, "report": 4, "provenance": 4, "bench": 5, "cli": 6}


def _modules():
    for f in sorted(PKG.rglob("*.py")):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        mod = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield f, mod, (mod if f.name == "__init__.py" else mod.rsplit(".", 1)[0])


def _imports(f: Path, pkg: str):
    """Every accelsim module `f` imports, at module level or inside functions."""
    for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "accelsim":
                yield from (f"accelsim.{a.name}" for a in node.names)
            else:
                yield name


def test_every_module_has_a_layer():
    tops = {mod.split(".")[1] for _, mod, _ in _modules() if mod != "accelsim"}
    assert tops <= set(RANK), f"give these a layer in RANK: {sorted(tops - set(RANK))}"


def test_imports_point_downward():
    upward = []
    for f, mod, pkg in _modules():
        if mod == "accelsim":
            continue  # the public facade, lazy by design
        me = mod.split(".")[1]
        for target in _imports(f, pkg):
            parts = target.split(".")
            if parts[0] == "accelsim" and len(parts) > 1 and RANK.get(parts[1], -1) > RANK[me]:
                upward.append(f"{mod} imports {target}")
    assert upward == []


def test_the_rule_can_fail():
    """The checker sees a function-level upward import (as config -> cost was)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "x.py"
        f.write_text("def f():\n    from ..cost.tables import TABLE_NAMES\n")
        assert list(_imports(f, "accelsim.config")) == ["accelsim.cost.tables"]


def test_one_name_per_concept():
    import accelsim
    import accelsim.sim as sim
    from accelsim.cost.model import simulate
    from accelsim.sim.grid import simulate_grid

    assert accelsim.simulate.__wrapped__ is simulate  # the full cost
    assert sim.simulate_grid is simulate_grid and not hasattr(sim, "simulate")


@pytest.mark.parametrize("module, names", [
    ("accelsim.graph.onnx_import", ["load_onnx", "SUPPORTED", "CONST_OPS", "PROBES", "MAX_ONNX_BYTES",
                                    "MAX_TENSOR_ELEMS", "MAX_CONST_ELEMS"]),
    ("accelsim.bench", ["benchmark", "Section", "available", "run_benchmarks", "command_line", "machine"]),
    ("accelsim.report.output", ["format_table", "write_atomic", "write_together", "check_writable",
                                "write_dataframe", "FORMATS"]),
    ("accelsim.explore.point", ["run_point", "apply_overrides"]),
])
def test_public_names_stay_importable(module, names):
    m = importlib.import_module(module)
    assert [n for n in names if not hasattr(m, n)] == []


def test_onnx_importer_split_by_concern():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PKG / "graph").glob("onnx_*.py")}
    assert {"onnx_import.py", "onnx_parse.py", "onnx_ops.py", "onnx_patterns.py"} <= set(sizes)
    assert max(sizes.values()) < 600, sizes


def test_bench_registry_takes_benchmarks_from_other_modules():
    from accelsim import bench

    names = list(bench.available())
    assert names[:4] == ["scalesim_resnet50", "kernel_throughput", "kernel_resnet50_layers", "cost_model_scaling"]
    assert {"cost_resnet50", "interpreter_throughput", "integer_execution", "run_default"} <= set(names)
