"""accelsim: a simulator and cost model for quantized neural-network accelerators.

Import-light: the public names below load their modules on first use (PEP 562), so that
``import accelsim`` (and the ``accelsim`` command's start-up) costs milliseconds, and a
Ctrl-C during start-up reaches the command's handler.

The public functions check their arguments: names and paths work where the CLI takes them
(a workload name for a Graph, a config name or dict for a HwConfig), and anything else
raises a TypeError naming the argument, never an AttributeError from deep inside.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"

from .errors import AccelsimError, ConfigError, GraphError  # noqa: E402  (light: no imports)

_LAZY = {
    "Graph": "accelsim.graph.ir",
    "Node": "accelsim.graph.ir",
    "Result": "accelsim.sim.grid",
    "Dataset": "accelsim.data",
    "QGraph": "accelsim.quant",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name == "simulate":
        value = _simulate()
    else:
        try:  # a subpackage (accelsim.quant, accelsim.graph, ...) reached as an attribute
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'accelsim' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# ----------------------------------------------------------------------------- argument checks


def _type_error(func: str, arg: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"{func}(): argument '{arg}': expected {expected}; found {type(value).__name__}")


def _is_pathlike(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _as_graph(func: str, value: Any, arg: str = "graph", allow_qgraph: bool = True):
    """A Graph (or QGraph) from a Graph, a QGraph, a workload name or file."""
    from .graph.ir import Graph
    from .quant.qgraph import QGraph

    if isinstance(value, Graph) or (allow_qgraph and isinstance(value, QGraph)):
        return value
    if _is_pathlike(value):
        if allow_qgraph:
            from .quant.qgraph_io import load_model_or_qgraph

            return load_model_or_qgraph(value)
        from .graph.zoo import load_model as _load

        return _load(value)
    expected = "a Graph, a QGraph, a workload name or file" if allow_qgraph else "a Graph, a workload name or file"
    raise _type_error(func, arg, expected, value)


def _as_hw(func: str, value: Any, arg: str = "hw", optional: bool = True):
    """A HwConfig from a HwConfig, a config name or file, or a YAML-shaped dict."""
    from .config import HwConfig, hw_from_dict
    from .config import load_hw as _load

    if value is None and optional:
        return None
    if isinstance(value, HwConfig):
        return value
    if _is_pathlike(value):
        return _load(value)
    if isinstance(value, dict):
        return hw_from_dict(value, file=f"{func}(hw=...)")
    expected = "a HwConfig, a config name or file, or a dict" + (" (or None)" if optional else "")
    raise _type_error(func, arg, expected, value)


def _simulate():
    import functools

    from .cost.model import simulate as _sim

    @functools.wraps(_sim)
    def simulate(graph, hw=None, timing: str = "native", batch: int = 1):
        graph = _as_graph("simulate", graph)
        hw = _as_hw("simulate", hw)
        if not isinstance(timing, str):
            raise _type_error("simulate", "timing", "'native' or 'scalesim'", timing)
        if timing not in ("native", "scalesim"):
            raise AccelsimError(f"simulate(): timing: expected native or scalesim; found {timing!r}")
        batch = _batch("simulate", batch)
        return _sim(graph, hw, timing=timing, batch=batch)

    return simulate


def _batch(func: str, batch: Any) -> int:
    import numbers

    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral):
        raise _type_error(func, "batch", "a positive integer", batch)
    if not 1 <= int(batch) <= 2**31 - 1:
        from .config.validate import describe

        raise AccelsimError(f"{func}(): batch: expected an integer in 1..{2**31 - 1}; found {describe(batch)}")
    return int(batch)


def load_model(name_or_path):
    """A zoo name (`resnet50`), a graph YAML, an ONNX file or a SCALE-Sim topology CSV -> Graph;
    a quantized ONNX file (QDQ or QOperator form) -> QGraph with its stored integers."""
    if not _is_pathlike(name_or_path):
        raise _type_error("load_model", "name_or_path", "a workload name or a file path", name_or_path)
    if str(name_or_path).lower().endswith(".onnx"):
        from .quant.onnx_qdq import is_quantized_onnx, load_quantized_onnx

        if is_quantized_onnx(name_or_path):
            return load_quantized_onnx(name_or_path)
    from .graph.zoo import load_model as _load

    return _load(name_or_path)


def load_dataset(name):
    """A bundled dataset by name (`mnist5k`, `digits`) or a user `.npz` file -> Dataset."""
    if not _is_pathlike(name):
        raise _type_error("load_dataset", "name", "a dataset name or an .npz path", name)
    from .data import load_dataset as _load

    return _load(name)


def evaluate(model, data="mnist5k", split="test", batch_size=500, return_predictions=False, limit=None):
    """Top-1 accuracy in [0, 1] of `model` (a Graph, QGraph, name or file) on a dataset split."""
    from .explore.evaluate import evaluate as _evaluate

    return _evaluate(model, data, split, batch_size, return_predictions, limit)


def quantize(graph, recipe="dfq", hw=None, calibration=None, data=None):
    """Quantize `graph` (a Graph, a trained model's name or file) by `recipe` (a name, YAML file,
    dict or Recipe) for `hw` (a HwConfig, a config name, file or dict) -> QGraph."""
    from collections.abc import Mapping

    from .quant import quantize as _quantize
    from .quant.recipe import Recipe

    graph = _as_graph("quantize", graph, allow_qgraph=False)
    if not (_is_pathlike(recipe) or isinstance(recipe, (Mapping, Recipe))):
        raise _type_error("quantize", "recipe", "a recipe name, a YAML file, a dict or a Recipe", recipe)
    return _quantize(graph, recipe, hw=_as_hw("quantize", hw), calibration=calibration, data=data)


def execute(qgraph, hw=None, x=None, **kwargs):
    """Bit-exact integer execution of a QGraph on the PE grid -> ExecResult (see accelsim.sim.execute)."""
    from .quant.qgraph import QGraph
    from .sim.execute import execute as _execute

    if _is_pathlike(qgraph):
        from .quant.qgraph_io import load_qgraph as _load

        qgraph = _load(qgraph)
    if not isinstance(qgraph, QGraph):
        raise _type_error("execute", "qgraph", "a QGraph (accelsim.quantize) or a saved .npz", qgraph)
    return _execute(qgraph, _as_hw("execute", hw), x, **kwargs)


def load_hw(path_or_name):
    """Load a hardware config (YAML, SCALE-Sim .cfg, or a name in hwconfigs/) -> HwConfig."""
    if not _is_pathlike(path_or_name):
        raise _type_error("load_hw", "path_or_name", "a config name or a file path", path_or_name)
    from .config import load_hw as _load_hw

    return _load_hw(path_or_name)


def load_qgraph(path):
    """Load a quantized model written by QGraph.save / `accelsim quantize --out` (.npz) -> QGraph."""
    if not _is_pathlike(path):
        raise _type_error("load_qgraph", "path", "a file path", path)
    from .quant.qgraph_io import load_qgraph as _load_qgraph

    return _load_qgraph(path)


def load_onnx(path_or_model, input_shapes=None):
    """Import an ONNX model with its weights -> Graph (needs the `onnx` package)."""
    from .graph.onnx_import import load_onnx as _load_onnx

    return _load_onnx(path_or_model, input_shapes)


def save_onnx(graph, path, opset=17):
    """Write a Graph with its current weights as an ONNX file (needs the `onnx` package)."""
    from .graph.ir import Graph
    from .graph.onnx_export import save_onnx as _save_onnx

    if not isinstance(graph, Graph):
        raise _type_error("save_onnx", "graph", "a Graph", graph)
    if not _is_pathlike(path):
        raise _type_error("save_onnx", "path", "a file path", path)
    return _save_onnx(graph, path, opset)


__all__ = ["AccelsimError", "ConfigError", "Dataset", "Graph", "GraphError", "Node", "QGraph", "Result", "evaluate", "execute", "load_dataset", "load_hw",
           "load_model", "load_onnx", "load_qgraph", "save_onnx", "quantize", "simulate"]
