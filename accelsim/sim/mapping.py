"""Mapping a layer's GEMM view onto an R x C PE grid: folds, packing of groups, utilisation.

Which GEMM dims sit on rows and columns follows SCALE-Sim's conventions:

| dataflow          | stationary | rows | cols | streams (T) |
|-------------------|------------|------|------|-------------|
| weight_stationary | weights    | K    | N    | M           |
| output_stationary | outputs    | M    | N    | K           |
| input_stationary  | inputs     | K    | M    | N           |

A grouped conv is `groups` independent GEMMs. With ``group_packing: packed``, q groups share
a fold as one block-diagonal GEMM, M x (q*Kg) @ (q*Kg) x (q*Ng): group i's weights sit in
their own row block and column block and read only their own inputs, the zero blocks add
nothing. q minimises the layer's cycles (see `groups_per_fold`); rows hold q*Kg for ws and is,
columns q*Ng for ws and os (os streams q*Kg, is streams q*Ng), and a packed set may fold over
the array like any GEMM. ``one_per_fold`` runs each group alone.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

from ..errors import AccelsimError
from ..graph.ops import GemmView

DATAFLOW_SHORT = {"weight_stationary": "ws", "output_stationary": "os", "input_stationary": "is"}
_LONG = {v: k for k, v in DATAFLOW_SHORT.items()}


def dataflow_name(dataflow: str) -> str:
    """Accept ws/os/is or the long names; return the long name."""
    name = _LONG.get(dataflow, dataflow)
    if name not in DATAFLOW_SHORT:
        raise AccelsimError(f"unknown dataflow '{dataflow}'; expected one of "
                            f"{', '.join(DATAFLOW_SHORT)} (or ws, os, is)")
    return name


@dataclass(frozen=True)
class FoldKind:
    """`count` folds with the same rows/cols used and streaming length (cycles of operands)."""

    count: int
    rows_used: int
    cols_used: int
    stream_len: int


@dataclass(frozen=True)
class LayerMapping:
    dataflow: str            # long name
    array_rows: int
    array_cols: int
    M: int
    K: int                   # per group
    N: int                   # per group
    groups: int
    groups_per_fold: int     # q: groups packed block-diagonally into one fold
    group_sets: int          # ceil(groups / q): packed GEMMs run one after another
    row_folds: int           # per group set
    col_folds: int           # per group set
    folds: int               # total, all group sets
    rows_used: int           # in the largest fold
    cols_used: int
    stream_len: int          # T of a full group set's folds
    macs: int

    # ---------------------------------------------------------------- per group set
    def set_dims(self, q: int) -> tuple[int, int, int]:
        """(row dim, col dim, stream length) of a packed GEMM of q groups."""
        return _set_dims(self.dataflow, self.M, self.K, self.N, q)

    @property
    def set_sizes(self) -> list[tuple[int, int]]:
        """[(number of sets, groups in each)] in execution order: full sets, then the rest."""
        q = self.groups_per_fold
        full, rest = divmod(self.groups, q)
        sizes = [(full, q)] if full else []
        if rest:
            sizes.append((1, rest))
        return sizes

    def fold_kinds(self) -> list[FoldKind]:
        """All folds grouped by shape (order within the list is not the execution order)."""
        kinds: dict[tuple[int, int, int], int] = {}
        for n_sets, q in self.set_sizes:
            for count, ru, cu, t in _set_fold_kinds(self.set_dims(q), self.array_rows, self.array_cols):
                key = (ru, cu, t)
                kinds[key] = kinds.get(key, 0) + count * n_sets
        return [FoldKind(c, *k) for k, c in kinds.items()]

    def first_fold(self) -> tuple[int, int, int]:
        """(rows used, cols used, T) of the first fold executed."""
        rows, cols, t = self.set_dims(self.set_sizes[0][1])
        return min(rows, self.array_rows), min(cols, self.array_cols), t

    def last_fold(self) -> tuple[int, int, int]:
        """(rows used, cols used, T) of the last fold executed (last row and col fold)."""
        rows, cols, t = self.set_dims(self.set_sizes[-1][1])
        return _last_chunk(rows, self.array_rows), _last_chunk(cols, self.array_cols), t

    @property
    def stream_cycles(self) -> int:
        """Sum of T over all folds: the steady-state cycles, without fill, drain or preload."""
        return sum(k.count * k.stream_len for k in self.fold_kinds())

    @property
    def utilisation(self) -> float:
        """Useful MACs / (PEs x streaming cycles): mapping efficiency, packing zeros included."""
        return self.macs / (self.array_rows * self.array_cols * self.stream_cycles)


def _set_dims(dataflow: str, m: int, k: int, n: int, q: int) -> tuple[int, int, int]:
    if dataflow == "weight_stationary":
        return q * k, q * n, m
    if dataflow == "output_stationary":
        return m, q * n, q * k
    return q * k, m, q * n  # input_stationary


def _last_chunk(size: int, tile: int) -> int:
    return size - (math.ceil(size / tile) - 1) * tile


def _set_fold_kinds(dims: tuple[int, int, int], r: int, c: int) -> list[tuple[int, int, int, int]]:
    """[(count, rows used, cols used, T)] for one packed GEMM: full and partial folds per dim."""
    rows, cols, t = dims
    out = []
    for n_r, ru in _chunks(rows, r):
        for n_c, cu in _chunks(cols, c):
            out.append((n_r * n_c, ru, cu, t))
    return out


def _chunks(size: int, tile: int) -> list[tuple[int, int]]:
    full, rest = divmod(size, tile)
    return ([(full, tile)] if full else []) + ([(1, rest)] if rest else [])


def fold_compute_cycles(dataflow: str, rows: int, cols: int, ru: int, cu: int, t: int) -> int:
    """Cycles from a fold's first operand entering to its last result (os: last MAC).

    ws/is: the last partial sum leaves the bottom edge after passing all R rows; os: the last
    MAC happens at PE(ru-1, cu-1). See `timing` for the load/drain added per fold.
    """
    if dataflow == "output_stationary":
        return t + ru + cu - 2
    return t + rows + cu - 2


def groups_per_fold(dataflow: str, gemm: GemmView, rows: int, cols: int, packing: str) -> int:
    """How many groups share one fold (block-diagonally) under the packing policy.

    `packed` picks the q with the fewest cycles with serial preload (each fold's compute plus
    its R-cycle load or drain). A packed set may itself fold over the array (a 3x3 depthwise
    set of 16 groups on a 16-row ws array spans 9 row folds), so packing pays even where one
    group's K alone fills most of the rows. Ties go to the smaller q (fewer zero PEs).
    """
    if packing == "one_per_fold" or gemm.groups == 1:
        return 1
    if packing != "packed":
        raise AccelsimError(f"unknown group_packing '{packing}'; expected packed or one_per_fold")
    return _best_packing(dataflow, gemm.M, gemm.K, gemm.N, gemm.groups, rows, cols)


@functools.lru_cache(maxsize=4096)
def _best_packing(dataflow: str, m: int, k: int, n: int, groups: int, rows: int, cols: int) -> int:
    def serial_cycles(q: int) -> int:
        full, rest = divmod(groups, q)
        total = 0
        for n_sets, size in ((full, q), (1, rest)) if rest else ((full, q),):
            for count, ru, cu, t in _set_fold_kinds(_set_dims(dataflow, m, k, n, size), rows, cols):
                total += n_sets * count * (fold_compute_cycles(dataflow, rows, cols, ru, cu, t) + rows)
        return total

    # beyond R*C groups in one set nothing more fits side by side
    return min(range(1, min(groups, rows * cols) + 1), key=lambda q: (serial_cycles(q), q))


def map_gemm(gemm: GemmView, rows: int, cols: int, dataflow: str, packing: str = "packed") -> LayerMapping:
    """Map a GEMM view (all its groups) onto a rows x cols grid."""
    dataflow = dataflow_name(dataflow)
    if rows < 1 or cols < 1:
        raise AccelsimError(f"PE array must be at least 1x1, found {rows}x{cols}")
    q = groups_per_fold(dataflow, gemm, rows, cols, packing)
    row_dim, col_dim, t = _set_dims(dataflow, gemm.M, gemm.K, gemm.N, q)
    row_folds, col_folds = math.ceil(row_dim / rows), math.ceil(col_dim / cols)
    sets = math.ceil(gemm.groups / q)
    mapping = LayerMapping(
        dataflow=dataflow, array_rows=rows, array_cols=cols, M=gemm.M, K=gemm.K, N=gemm.N,
        groups=gemm.groups, groups_per_fold=q, group_sets=sets, row_folds=row_folds,
        col_folds=col_folds, folds=0, rows_used=min(rows, row_dim), cols_used=min(cols, col_dim),
        stream_len=t, macs=gemm.macs,
    )
    return dataclasses.replace(mapping, folds=sum(k.count for k in mapping.fold_kinds()))


def map_layer(gemm: GemmView, pe_array) -> LayerMapping:
    """Map with a config's `pe_array` section (rows, cols, dataflow, group_packing)."""
    return map_gemm(gemm, pe_array.rows, pe_array.cols, pe_array.dataflow, pe_array.group_packing)
