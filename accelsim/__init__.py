"""accelsim: a simulator and cost model for quantized neural-network accelerators."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import AccelsimError, ConfigError, GraphError  # noqa: E402
from .graph.ir import Graph, Node  # noqa: E402
from .graph.zoo import load_model  # noqa: E402
from .sim.simulate import Result, simulate  # noqa: E402
from .data import Dataset, load_dataset  # noqa: E402
from .metrics import evaluate  # noqa: E402
from .quant import QGraph, quantize  # noqa: E402


def load_hw(path_or_name):
    """Load a hardware config (YAML, SCALE-Sim .cfg, or a name in hwconfigs/) -> HwConfig."""
    from .config import load_hw as _load_hw

    return _load_hw(path_or_name)


__all__ = ["AccelsimError", "ConfigError", "Dataset", "Graph", "GraphError", "Node", "QGraph", "Result", "evaluate", "load_dataset", "load_hw",
           "load_model", "quantize", "simulate"]
