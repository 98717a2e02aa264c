"""Mapping a GEMM view onto the PE grid: folds, dims per dataflow, packing of groups."""
import math

import pytest

from accelsim.errors import AccelsimError
from accelsim.graph.ops import GemmView
from accelsim.sim.mapping import groups_per_fold, map_gemm


@pytest.mark.parametrize("dataflow, rows_dim, cols_dim, stream", [
    ("ws", "K", "N", "M"), ("os", "M", "N", "K"), ("is", "K", "M", "N"),
])
def test_dims_per_dataflow_follow_scalesim(dataflow, rows_dim, cols_dim, stream):
    dims = {"M": 100, "K": 70, "N": 37}
    m = map_gemm(GemmView(**dims), 16, 8, dataflow)
    assert m.row_folds == math.ceil(dims[rows_dim] / 16)
    assert m.col_folds == math.ceil(dims[cols_dim] / 8)
    assert m.folds == m.row_folds * m.col_folds
    assert m.stream_len == dims[stream]
    assert m.rows_used == min(16, dims[rows_dim]) and m.cols_used == min(8, dims[cols_dim])
    # every fold kind accounted for, partial folds included
    kinds = m.fold_kinds()
    assert sum(k.count for k in kinds) == m.folds
    assert sum(k.count * k.rows_used * k.cols_used for k in kinds) == dims[rows_dim] * dims[cols_dim]


def test_depthwise_packs_block_diagonally_within_both_array_dims():
    dw = GemmView(M=196, K=9, N=1, groups=64)  # 3x3 depthwise, 64 channels
    # ws: each group needs its own 9 rows AND its own column -> min(32 // 9, 32 // 1) = 3
    assert groups_per_fold("weight_stationary", dw, 32, 32, "packed") == 3
    # os: groups side by side on columns (their K segments stream one after another)
    assert groups_per_fold("output_stationary", dw, 32, 32, "packed") == 32
    # is: groups' input windows stacked on rows
    assert groups_per_fold("input_stationary", dw, 32, 32, "packed") == 3
    assert groups_per_fold("output_stationary", dw, 32, 32, "one_per_fold") == 1
    m = map_gemm(dw, 32, 32, "os")
    assert (m.groups_per_fold, m.group_sets, m.folds) == (32, 2, 2 * math.ceil(196 / 32))
    assert m.cols_used == 32 and m.stream_len == 32 * 9
    m = map_gemm(dw, 32, 32, "ws")
    assert (m.group_sets, m.rows_used, m.cols_used, m.folds) == (22, 27, 3, 22)
    assert m.last_fold() == (9, 1, 196)  # 64 = 21 * 3 + 1: the last set holds one group


def test_packing_raises_utilisation_and_never_packs_groups_that_do_not_fit():
    dw = GemmView(M=196, K=9, N=1, groups=64)
    for df in ("ws", "os", "is"):
        packed = map_gemm(dw, 32, 32, df, "packed")
        alone = map_gemm(dw, 32, 32, df, "one_per_fold")
        assert alone.folds == 64 * alone.row_folds * alone.col_folds
        assert packed.folds < alone.folds
        assert packed.stream_cycles == alone.stream_cycles or df == "ws"
        assert 0 < alone.utilisation <= packed.utilisation <= 1
    big = GemmView(M=50, K=600, N=40, groups=4)  # a group exceeds the array: one per fold
    assert map_gemm(big, 32, 32, "ws").groups_per_fold == 1
    assert map_gemm(big, 32, 32, "ws").folds == 4 * 19 * 2


def test_utilisation_is_one_when_the_gemm_tiles_exactly():
    m = map_gemm(GemmView(M=64, K=64, N=32), 32, 16, "ws")
    assert m.utilisation == 1.0


def test_bad_inputs_raise_accelsim_errors():
    with pytest.raises(AccelsimError, match="unknown dataflow"):
        map_gemm(GemmView(2, 2, 2), 4, 4, "row_stationary")
    with pytest.raises(AccelsimError, match="group_packing"):
        map_gemm(GemmView(2, 2, 2, groups=2), 4, 4, "ws", "tight")
    with pytest.raises(AccelsimError, match="at least 1x1"):
        map_gemm(GemmView(2, 2, 2), 0, 4, "ws")
