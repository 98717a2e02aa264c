"""Cross-layer equalization of a single pair, by hand (DFQ, Nagel et al. ICCV 2019, eq. 11:
s_i = (1 / r2_i) sqrt(r1_i r2_i) = sqrt(r1_i / r2_i); W1' = S^-1 W1, b1' = S^-1 b1, W2' = W2 S).

The weights are built so that each channel's range is a number chosen here: every entry is
below 1 in magnitude, then one entry per channel is set to the range (with a sign), so the
expected scales, ranges and weights follow from those numbers alone.
"""
import numpy as np
import pytest

from accelsim.graph.builder import GraphBuilder
from accelsim.quant import equalize

R_A = np.array([1.0, 8.0, 0.5, 9.0])        # max |W_A| over output channel i (A: 3 -> 4, 3x3)
R_B = np.array([4.0, 2.0, 2.0, 1.0])        # max |W_B| over input channel i (B: 4 -> 5)
S = np.array([0.5, 2.0, 0.5, 3.0])          # sqrt(R_A / R_B) = sqrt(1/4), sqrt(4), sqrt(1/4), sqrt(9)
R_EQ = np.array([2.0, 4.0, 1.0, 3.0])       # both ranges after one step: sqrt(R_A R_B)


def _weights(rng, shape, ranges, axis):
    w = rng.uniform(-0.9, 0.9, size=shape) * 0.99
    w = np.moveaxis(w, axis, 0)
    for i, r in enumerate(ranges):
        w[i] *= r                               # every entry of channel i below its range ...
        at = np.unravel_index((3 * i + 1) % w[i].size, w[i].shape)
        w[i][at] = r * (-1) ** i                        # ... and one entry on it
    return np.moveaxis(w, 0, axis).astype(np.float32)


def pair_graph(kernel_b=1, depthwise_b=False, act="relu"):
    rng = np.random.default_rng(15)
    b = GraphBuilder("pair")
    b.input((3, 8, 8))
    wa = _weights(rng, (4, 3, 3, 3), R_A, axis=0)
    bias_a = np.array([0.3, -1.0, 2.0, 0.1], np.float32)
    b.add("conv2d", "a", out_channels=4, kernel=3, padding=1, params={"weight": wa, "bias": bias_a})
    if act:
        b.add(act, "act")
    if depthwise_b:
        wb = _weights(rng, (4, 1, kernel_b, kernel_b), R_B, axis=0)
        b.add("conv2d", "b", out_channels=4, kernel=kernel_b, padding=kernel_b // 2, groups=4,
              params={"weight": wb, "bias": np.zeros(4, np.float32)})
    else:
        wb = _weights(rng, (5, 4, kernel_b, kernel_b), R_B, axis=1)
        b.add("conv2d", "b", out_channels=5, kernel=kernel_b, padding=kernel_b // 2,
              params={"weight": wb, "bias": np.full(5, 0.2, np.float32)})
    return b.build()


def _out_ranges(w):
    return np.abs(w).reshape(w.shape[0], -1).max(axis=1)


def _in_ranges(w):
    return np.abs(np.moveaxis(w, 1, 0)).reshape(w.shape[1], -1).max(axis=1)


def test_the_fixture_has_the_ranges_it_says():
    g = pair_graph()
    np.testing.assert_allclose(_out_ranges(g["a"].weight), R_A, rtol=1e-7)
    np.testing.assert_allclose(_in_ranges(g["b"].weight), R_B, rtol=1e-7)


@pytest.mark.parametrize("kernel_b", [1, 3])
def test_pair_scale_is_sqrt_of_the_range_ratio_and_converges_in_two_passes(kernel_b):
    g = pair_graph(kernel_b)
    e, info = equalize(g, return_info=True)
    assert [tuple((link.a, link.b) for link in s) for s in info.sets] == [(("a", "b"),)]
    np.testing.assert_allclose(info.scale("a", "b"), S, rtol=1e-7)
    # W_A[i] /= s_i, b_A[i] /= s_i, W_B[:, i] *= s_i
    np.testing.assert_allclose(e["a"].weight, g["a"].weight / S[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(e["a"].bias, g["a"].bias / S, rtol=1e-6)
    np.testing.assert_allclose(e["b"].weight, g["b"].weight * S[None, :, None, None], rtol=1e-6)
    np.testing.assert_array_equal(e["b"].bias, g["b"].bias)           # B's bias is untouched
    # one step makes both ranges sqrt(r_A r_B); the second pass finds every scale within
    # tol (1e-6) of 1 and stops: the documented "after one step the ranges of a set are equal"
    np.testing.assert_allclose(_out_ranges(e["a"].weight), R_EQ, rtol=1e-6)
    np.testing.assert_allclose(_in_ranges(e["b"].weight), R_EQ, rtol=1e-6)
    assert info.converged and info.iterations == 2
    # relu commutes with a positive per-channel scale: FP32 outputs unchanged
    x = np.random.default_rng(1).normal(size=(2, 3, 8, 8)).astype(np.float32)
    y, ye = g.run(x), e.run(x)
    assert np.abs(ye - y).max() <= 1e-5 * np.abs(y).max()


def test_pair_into_a_depthwise_conv_uses_its_per_channel_ranges():
    # a depthwise B with nothing after it is a pair: r_B[i] is the range of its channel i
    g = pair_graph(kernel_b=3, depthwise_b=True)
    np.testing.assert_allclose(_out_ranges(g["b"].weight), R_B, rtol=1e-7)
    e, info = equalize(g, return_info=True)
    assert [tuple((link.a, link.b) for link in s) for s in info.sets] == [(("a", "b"),)]
    np.testing.assert_allclose(info.scale("a", "b"), S, rtol=1e-7)
    np.testing.assert_allclose(e["b"].weight, g["b"].weight * S[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(_out_ranges(e["b"].weight), R_EQ, rtol=1e-6)
    assert info.converged and info.iterations == 2


def test_max_iter_caps_the_passes_and_reports_no_convergence():
    # one pass equalizes, but convergence is only known after a pass whose scales are all 1
    e, info = equalize(pair_graph(), max_iter=1, return_info=True)
    assert info.iterations == 1 and not info.converged
    np.testing.assert_allclose(info.scale("a", "b"), S, rtol=1e-7)


def test_a_loose_tolerance_stops_after_the_first_pass_only_if_the_scales_are_within_it():
    # the first pass's scales deviate from 1 by at most |3 - 1| = 2: tol 2 stops there
    _, info = equalize(pair_graph(), tol=2.0, return_info=True)
    assert info.iterations == 1 and info.converged
    _, info = equalize(pair_graph(), tol=1.99, return_info=True)
    assert info.iterations == 2 and info.converged


def test_a_dead_channel_in_b_keeps_scale_one():
    g = pair_graph()
    g["b"].weight[:, 2] = 0.0                 # r_B[2] = 0: s_2 = 1, the rest as before
    e, info = equalize(g, return_info=True)
    np.testing.assert_allclose(info.scale("a", "b"), [0.5, 2.0, 1.0, 3.0], rtol=1e-7)
    np.testing.assert_array_equal(e["a"].weight[2], g["a"].weight[2])


def test_a_triplet_with_dead_channels_keeps_their_scales_one():
    # conv A -> relu -> depthwise D -> relu -> conv C (DFQ's triplet rule, equalize's docstring):
    # cube = (r0 r1 r2)^(1/3), s1 = r0 / cube, s2 = cube / r2; a channel dead in A (r0 = 0,
    # channel 2) or in C (r2 = 0, channel 3) keeps s1 = s2 = 1
    r0, r1, r2 = [8.0, 1.0, 0.0, 2.0], [1.0, 8.0, 5.0, 4.0], [1.0, 1.0, 3.0, 0.0]
    rng = np.random.default_rng(3)
    b = GraphBuilder("triplet")
    b.input((3, 6, 6))
    wa = _weights(rng, (4, 3, 3, 3), [max(r, 1.0) for r in r0], axis=0)
    wa[2] = 0.0
    b.add("conv2d", "a", out_channels=4, kernel=3, padding=1, params={"weight": wa, "bias": np.ones(4, np.float32)})
    b.add("relu", "r1")
    b.add("conv2d", "d", out_channels=4, kernel=3, padding=1, groups=4,
          params={"weight": _weights(rng, (4, 1, 3, 3), r1, axis=0), "bias": np.zeros(4, np.float32)})
    b.add("relu", "r2")
    wc = _weights(rng, (5, 4, 1, 1), [max(r, 1.0) for r in r2], axis=1)
    wc[:, 3] = 0.0
    b.add("conv2d", "c", out_channels=5, kernel=1, params={"weight": wc, "bias": np.zeros(5, np.float32)})
    g = b.build()
    np.testing.assert_allclose(_out_ranges(g["a"].weight), r0, rtol=1e-7)
    np.testing.assert_allclose(_in_ranges(g["c"].weight), r2, rtol=1e-7)
    e, info = equalize(g, return_info=True)
    assert [tuple((link.a, link.b) for link in s) for s in info.sets] == [(("a", "d"), ("d", "c"))]
    # live channels 0 and 1: cube = 8^(1/3) = 2 for both
    np.testing.assert_allclose(info.scale("a", "d"), [4.0, 0.5, 1.0, 1.0], rtol=1e-7)
    np.testing.assert_allclose(info.scale("d", "c"), [2.0, 2.0, 1.0, 1.0], rtol=1e-7)
    assert info.converged and info.iterations == 2
    assert np.all(np.isfinite(e["a"].weight)) and np.all(np.isfinite(e["d"].weight))
