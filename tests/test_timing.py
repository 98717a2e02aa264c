"""Closed-form fold timing equals the cycle-stepped kernels, shape by shape."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.graph.ops import GemmView
from accelsim.sim.kernels import run_grouped_gemm
from accelsim.sim.mapping import map_gemm
from accelsim.sim.timing import native_cycles


def _kernel_cycles(g, m, k, n, rows, cols, df, preload, packing="packed"):
    rng = np.random.default_rng(g * 1000 + m * 100 + k * 10 + n)
    a = rng.integers(-9, 10, (g, m, k))
    b = rng.integers(-9, 10, (g, k, n))
    r = run_grouped_gemm(a, b, rows, cols, df, preload, group_packing=packing)
    assert np.array_equal(r.out, np.einsum("gmk,gkn->gmn", a, b))
    return r.cycles


@settings(max_examples=150, deadline=None)
@given(
    g=st.integers(1, 4), m=st.integers(1, 14), k=st.integers(1, 14), n=st.integers(1, 14),
    rows=st.integers(1, 7), cols=st.integers(1, 7),
    df=st.sampled_from(["weight_stationary", "output_stationary", "input_stationary"]),
    preload=st.sampled_from(["serial", "double_buffered"]),
    packing=st.sampled_from(["packed", "one_per_fold"]),
)
def test_closed_form_equals_the_cycle_stepped_kernel(g, m, k, n, rows, cols, df, preload, packing):
    mapping = map_gemm(GemmView(m, k, n, g), rows, cols, df, packing)
    assert native_cycles(mapping, preload) == _kernel_cycles(g, m, k, n, rows, cols, df, preload, packing)


@pytest.mark.parametrize("df, preload, expected", [
    # one fold, M=5 K=3 N=2 on 4x4: ws/is load R=4, then T + R + cu - 2
    ("ws", "serial", 4 + (5 + 4 + 2 - 2)),
    ("ws", "double_buffered", 4 + (5 + 4 + 2 - 2)),
    # os: rows M=5 (ru = 4 then 1): T + ru + cu - 2, each followed by the R-cycle drain
    ("os", "serial", (3 + 4 + 2 - 2) + 4 + (3 + 1 + 2 - 2) + 4),
    ("os", "double_buffered", (3 + 4 + 2 - 2) + max(3 + 1 + 2 - 2, 4) + 4),
    # is: rows K=3, cols M=4 (of 5: two col folds, cu = 4 then 1), T = N = 2
    ("is", "serial", (4 + 2 + 4 + 4 - 2) + (4 + 2 + 4 + 1 - 2)),
    ("is", "double_buffered", 4 + max(2 + 4 + 4 - 2, 4) + (2 + 4 + 1 - 2)),
])
def test_hand_counted_examples(df, preload, expected):
    assert native_cycles(map_gemm(GemmView(5, 3, 2), 4, 4, df), preload) == expected
    assert _kernel_cycles(1, 5, 3, 2, 4, 4, df, preload) == expected


def test_double_buffering_hides_all_but_one_load_and_waits_for_short_folds():
    mapping = map_gemm(GemmView(M=100, K=64, N=64), 16, 16, "ws")  # 16 folds of 100 + 30 cycles
    serial, double = native_cycles(mapping, "serial"), native_cycles(mapping, "double_buffered")
    assert serial - double == (mapping.folds - 1) * 16
    # folds shorter than the 8-cycle load (T=1, one column) must wait for the shadow
    short = map_gemm(GemmView(M=1, K=16, N=1), 8, 8, "ws")  # 2 folds of 1 + 8 + 1 - 2 = 8 cycles
    assert native_cycles(short, "double_buffered") == 8 + 8 + 8
    assert _kernel_cycles(1, 1, 16, 1, 8, 8, "ws", "double_buffered") == 24
    tiny = map_gemm(GemmView(M=1, K=16, N=1), 8, 8, "ws")
    assert native_cycles(tiny, "serial") == 2 * (8 + 8)
