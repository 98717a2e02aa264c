"""Mapping onto the PE grid, cycle-stepped kernels, closed-form and SCALE-Sim timing."""
from .mapping import LayerMapping, map_gemm, map_layer
from .simulate import Result, simulate
from .timing import native_cycles, scalesim_cycles

__all__ = ["LayerMapping", "Result", "map_gemm", "map_layer", "native_cycles", "scalesim_cycles", "simulate"]
