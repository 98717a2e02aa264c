"""Uniform quantizers and range setting."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import AccelsimError
from accelsim.quant import make_qparams
from accelsim.quant.quantizers import grid_limits
from accelsim.quant.ranges import bn_range, cross_entropy_qparams, minmax_qparams, mse_qparams

bits_st = st.integers(2, 16)
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def ranges(draw):
    lo = draw(finite)
    width = draw(st.floats(1e-3, 1e4, allow_nan=False))
    return lo, lo + width


@settings(max_examples=300, deadline=None)
@given(r=ranges(), bits=bits_st, scheme=st.sampled_from(["symmetric", "asymmetric"]),
       narrow=st.booleans(), u=st.lists(st.floats(0, 1), min_size=1, max_size=50))
def test_error_at_most_half_a_step_inside_the_range(r, bits, scheme, narrow, u):
    lo, hi = r
    qp = make_qparams(lo, hi, bits, scheme, narrow=narrow)
    x = lo + (hi - lo) * np.asarray(u)
    err = np.abs(qp.dequantize(qp.quantize(x), np.float64) - x)
    assert np.all(err <= 0.5 * qp.scale * (1 + 1e-9) + 1e-12 * np.abs(x))
    q = qp.quantize(x)
    assert q.min() >= qp.qmin and q.max() <= qp.qmax


@settings(max_examples=300, deadline=None)
@given(r=ranges(), bits=bits_st, scheme=st.sampled_from(["symmetric", "asymmetric"]))
def test_zero_is_exact(r, bits, scheme):
    qp = make_qparams(*r, bits, scheme)
    assert qp.dequantize(qp.quantize(np.zeros(3)), np.float64).tolist() == [0.0, 0.0, 0.0]
    assert qp.qmin <= int(qp.zero_point) <= qp.qmax


@settings(max_examples=100, deadline=None)
@given(r=ranges(), bits=bits_st)
def test_fake_quant_equals_quantize_dequantize(r, bits):
    qp = make_qparams(*r, bits, "asymmetric")
    x = np.linspace(r[0] - 1, r[1] + 1, 101)
    np.testing.assert_allclose(qp.fake_quant(x), qp.dequantize(qp.quantize(x), np.float64), rtol=1e-12, atol=1e-12 * qp.scale)


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_grids(bits):
    assert grid_limits(bits, "asymmetric") == (0, 2**bits - 1)
    assert grid_limits(bits, "symmetric") == (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1)
    assert grid_limits(bits, "symmetric", narrow=False) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    assert grid_limits(bits, "symmetric", signed=False) == (0, 2**bits - 1)


def test_symmetric_narrow_is_odd_and_hits_the_max():
    qp = make_qparams(-0.5, 2.0, 8, "symmetric")
    assert (qp.qmin, qp.qmax) == (-127, 127) and int(qp.zero_point) == 0
    x = np.array([-2.0, -0.3, 0.3, 2.0])
    np.testing.assert_array_equal(qp.quantize(x), -qp.quantize(-x))
    assert qp.fake_quant(np.array([2.0]))[0] == pytest.approx(2.0)


def test_symmetric_nonnegative_range_uses_the_unsigned_grid():
    qp = make_qparams(0.0, 6.0, 8, "symmetric")
    assert (qp.qmin, qp.qmax) == (0, 255)
    assert qp.scale == pytest.approx(6.0 / 255)


def test_asymmetric_known_values():
    qp = make_qparams(-1.0, 3.0, 8, "asymmetric")
    assert qp.scale == pytest.approx(4.0 / 255)
    assert int(qp.zero_point) == round(255 / 4)
    # a range not containing 0 is widened to contain it
    qp = make_qparams(2.0, 3.0, 4, "asymmetric")
    assert int(qp.zero_point) == 0 and qp.scale == pytest.approx(3.0 / 15)


def test_per_channel_scales_broadcast_along_axis():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3)) * np.array([0.01, 0.1, 1, 10])[:, None, None, None]
    qp = minmax_qparams(w, 8, "symmetric", axis=0, signed=True)
    assert qp.scale.shape == (4,)
    np.testing.assert_allclose(qp.scale, np.abs(w).reshape(4, -1).max(1) / 127)
    err = np.abs(qp.fake_quant(w) - w).reshape(4, -1).max(1)
    assert np.all(err <= qp.scale / 2 + 1e-12)
    # per-tensor: the small channels lose (nearly) everything
    pt = minmax_qparams(w, 8, "symmetric", signed=True)
    assert np.abs(pt.fake_quant(w[0]) - w[0]).max() > 0.5 * np.abs(w[0]).max()


def test_dead_channel_quantizes_to_zero():
    w = np.zeros((2, 4))
    w[1] = [1, -2, 3, 0.5]
    qp = minmax_qparams(w, 8, "asymmetric", axis=0)
    np.testing.assert_array_equal(qp.fake_quant(w)[0], 0.0)


@pytest.mark.parametrize("bits", [0, 1, 17, 8.0, True])
def test_bits_out_of_range(bits):
    with pytest.raises(AccelsimError, match="2 to 16"):
        make_qparams(-1, 1, bits, "symmetric")


def test_unknown_scheme():
    with pytest.raises(AccelsimError, match="unknown quantization scheme"):
        make_qparams(-1, 1, 8, "affine")
    for signed in (True, False):  # the unsigned grid is no excuse to skip the scheme check
        with pytest.raises(AccelsimError, match="unknown quantization scheme 'bogus'"):
            grid_limits(8, "bogus", signed=signed)
    assert grid_limits(8, "symmetric", signed=False) == (0, 255)


def test_mse_beats_minmax_on_heavy_tails_and_never_loses():
    rng = np.random.default_rng(1)
    x = rng.laplace(size=20000)  # weight-like: peaked, with tails
    for bits in (3, 4, 8):
        mm = minmax_qparams(x, bits, "symmetric")
        ms = mse_qparams(x, bits, "symmetric")
        e_mm = np.mean((mm.fake_quant(x) - x) ** 2)
        e_ms = np.mean((ms.fake_quant(x) - x) ** 2)
        assert e_ms <= e_mm
        if bits <= 4:
            assert e_ms < 0.5 * e_mm  # clipping the tails pays off at low bit-widths (~0.2-0.3x here)


def test_mse_per_channel_is_per_channel_optimal_on_the_grid():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 500)) * np.array([[0.1], [1], [10]])
    qp = mse_qparams(w, 4, "asymmetric", axis=0)
    for c in range(3):
        one = mse_qparams(w[c], 4, "asymmetric")
        np.testing.assert_allclose(qp.scale[c], one.scale, rtol=1e-12)


def test_bn_range_clips_to_the_activation():
    lo, hi = bn_range(np.array([1.0, -20.0, 3.0]), np.array([0.5, 1.0, -2.0]), 6, clip=(0.0, 6.0))
    np.testing.assert_allclose(lo, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(hi, [4.0, 0.0, 6.0])
    lo, hi = bn_range(np.array([1.0]), np.array([-0.5]), 6)
    assert (lo[0], hi[0]) == (-2.0, 4.0)


def test_cross_entropy_range_keeps_the_argmax_better_than_minmax():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1, size=(2000, 10))
    logits[np.arange(2000), rng.integers(0, 10, 2000)] += 4.0
    logits[:5] *= 12  # a few outliers stretch the min-max range
    ce = cross_entropy_qparams(logits, 3, "asymmetric")
    mm = minmax_qparams(logits, 3, "asymmetric")
    assert ce.scale < mm.scale
    agree = lambda qp: np.mean(np.argmax(qp.fake_quant(logits), 1) == np.argmax(logits, 1))  # noqa: E731
    assert agree(ce) > agree(mm)
