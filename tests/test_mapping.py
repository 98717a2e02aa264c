"""Mapping a GEMM view onto the PE grid: folds, dims per dataflow, packing of groups."""
import math

import pytest

from accelsim.errors import AccelsimError
from accelsim.graph.ops import GemmView
from accelsim.sim.mapping import groups_per_fold, map_gemm
from accelsim.sim.timing import native_cycles


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


def test_depthwise_packing_minimises_cycles():
    dw = GemmView(M=196, K=9, N=1, groups=64)  # 3x3 depthwise, 64 channels
    # ws on 32x32, serial: a fold costs T + R + cu - 2 + R = 196 + 62 + cu. q groups need 9q rows
    # (folded over 32) and q columns:
    #   q=3:  22 sets x 1 fold: 21 x 261 + 1 x 259 (last set: 1 group)           = 5,740
    #   q=7:  9 sets x 2 folds x 265 + 1 set of 1 group x 1 fold x 259           = 5,029
    #   q=32: 2 sets x 9 folds x 290                                             = 5,220
    assert groups_per_fold("weight_stationary", dw, 32, 32, "packed") == 7
    m = map_gemm(dw, 32, 32, "ws")
    assert (m.group_sets, m.row_folds, m.col_folds, m.folds) == (10, 2, 1, 19)
    assert m.set_sizes == [(9, 7), (1, 1)] and m.last_fold() == (9, 1, 196)
    assert native_cycles(m) == 5029
    # os: groups side by side on columns, their K segments streamed one after another
    m = map_gemm(dw, 32, 32, "os")
    assert (m.groups_per_fold, m.group_sets, m.folds) == (32, 2, 2 * math.ceil(196 / 32))
    assert m.cols_used == 32 and m.stream_len == 32 * 9
    assert groups_per_fold("output_stationary", dw, 32, 32, "one_per_fold") == 1
    # 40 groups: q=7 again; the last set holds the 5 left over, its last row fold 45 - 32 = 13 rows
    m = map_gemm(GemmView(M=196, K=9, N=1, groups=40), 32, 32, "ws")
    assert m.folds == 12
    assert m.set_sizes == [(5, 7), (1, 5)] and m.last_fold() == (13, 5, 196)


def test_packing_never_costs_cycles_and_beats_one_group_per_fold_on_depthwise():
    dw = GemmView(M=196, K=9, N=1, groups=64)
    for df in ("ws", "os", "is"):
        for size in (8, 16, 32):
            for preload in ("serial", "double_buffered"):
                packed = map_gemm(dw, size, size, df, "packed")
                alone = map_gemm(dw, size, size, df, "one_per_fold")
                assert alone.folds == 64 * alone.row_folds * alone.col_folds
                assert packed.folds < alone.folds
                # the closed form (== the cycle-stepped kernel) is the judge, not the estimate
                assert native_cycles(packed, preload) < native_cycles(alone, preload)
    big = GemmView(M=50, K=600, N=40, groups=4)  # a group exceeds the array: nothing to gain
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
