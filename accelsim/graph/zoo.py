"""Find and load workloads: zoo names, graph YAML, ONNX files and SCALE-Sim topology CSVs."""
from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import GraphError
from ..paths import find_bundled, find_relative, list_bundled
from .ir import Graph

ZOO_SUFFIXES = (".yaml", ".yml", ".onnx")


def zoo_names() -> list[str]:
    return list_bundled("workloads", ZOO_SUFFIXES)


def find_workload_file(name_or_path: str | Path) -> Path:
    """The file behind a workload: the path as given, or a bundled zoo name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    found = find_bundled("workloads", str(name_or_path), ZOO_SUFFIXES)
    if found is not None:
        return found
    relative = find_relative(path)  # "workloads/resnet50.yaml" from any working directory
    if relative is not None:
        return relative
    if path.suffix or "/" in str(name_or_path):
        raise GraphError(f"{name_or_path}: file not found")
    names = zoo_names()
    near = difflib.get_close_matches(str(name_or_path), names, n=3)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise GraphError(
        f"unknown workload '{name_or_path}'{hint} (bundled: {', '.join(names)}; "
        "or give a .yaml, .onnx or SCALE-Sim .csv file)"
    )


def load_model(name_or_path: str | Path) -> Graph:
    """A zoo name (`resnet50`), a graph YAML, an ONNX file or a SCALE-Sim topology CSV -> Graph."""
    path = find_workload_file(name_or_path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        from .yaml_io import load_graph_yaml

        return load_graph_yaml(path)
    if suffix == ".onnx":
        from .onnx_import import load_onnx

        return load_onnx(path)
    if suffix == ".csv":
        from .scalesim_csv import load_scalesim_csv

        return load_scalesim_csv(path)
    raise GraphError(f"{path}: unknown workload format '{suffix}'; expected .yaml, .onnx or .csv")
