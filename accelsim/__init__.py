"""accelsim: a simulator and cost model for quantized neural-network accelerators."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import AccelsimError, ConfigError, GraphError  # noqa: E402
from .graph.ir import Graph, Node  # noqa: E402
from .graph.zoo import load_model  # noqa: E402
from .sim.simulate import Result  # noqa: E402
from .cost.model import simulate  # noqa: E402  (cycles, memory, energy: the full cost run)
from .data import Dataset, load_dataset  # noqa: E402
from .metrics import evaluate  # noqa: E402
from .quant import QGraph, quantize  # noqa: E402


def execute(qgraph, hw=None, x=None, **kwargs):
    """Bit-exact integer execution of a QGraph on the PE grid -> ExecResult (see accelsim.sim.execute)."""
    from .sim.execute import execute as _execute

    return _execute(qgraph, hw, x, **kwargs)


def load_hw(path_or_name):
    """Load a hardware config (YAML, SCALE-Sim .cfg, or a name in hwconfigs/) -> HwConfig."""
    from .config import load_hw as _load_hw

    return _load_hw(path_or_name)


def load_qgraph(path):
    """Load a quantized model written by QGraph.save / `accelsim quantize --out` (.npz) -> QGraph."""
    from .quant.qgraph_io import load_qgraph as _load_qgraph

    return _load_qgraph(path)


def load_onnx(path_or_model, input_shapes=None):
    """Import an ONNX model with its weights -> Graph (needs the `onnx` package)."""
    from .graph.onnx_import import load_onnx as _load_onnx

    return _load_onnx(path_or_model, input_shapes)


def save_onnx(graph, path, opset=17):
    """Write a Graph with its current weights as an ONNX file (needs the `onnx` package)."""
    from .graph.onnx_export import save_onnx as _save_onnx

    return _save_onnx(graph, path, opset)


__all__ = ["AccelsimError", "ConfigError", "Dataset", "Graph", "GraphError", "Node", "QGraph", "Result", "evaluate", "execute", "load_dataset", "load_hw",
           "load_model", "load_onnx", "load_qgraph", "save_onnx", "quantize", "simulate"]
