"""Mapping onto the PE grid, cycle-stepped kernels, closed-form and SCALE-Sim timing."""
from .mapping import LayerMapping, map_gemm, map_layer
from .grid import Result, simulate_grid
from .timing import native_cycles, scalesim_cycles

# the full cost run is `accelsim.simulate` (accelsim.cost.model); this package has the grid alone
__all__ = ["LayerMapping", "Result", "map_gemm", "map_layer", "native_cycles", "scalesim_cycles", "simulate_grid"]
