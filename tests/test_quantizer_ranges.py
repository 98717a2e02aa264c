"""make_qparams' grid choice, range checks and representable ranges, by hand (no ties: the
rounding rule is pinned in tests/test_quantizers.py)."""
import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.quant.quantizers import make_qparams


def test_asymmetric_range_ends_by_hand():
    # [-1, 3] on 8 bits: s = 4 / 255, z = round(1 / s) = round(63.75) = 64
    q = make_qparams(-1.0, 3.0, 8, "asymmetric")
    assert q.scale == pytest.approx(4 / 255) and int(q.zero_point) == 64
    assert q.range_lo == pytest.approx(4 / 255 * (0 - 64))       # -1.0039
    assert q.range_hi == pytest.approx(4 / 255 * (255 - 64))     # 2.9961


def test_symmetric_grid_is_signed_only_if_some_value_is_negative():
    # lo = 0 exactly: nothing negative, the unsigned grid [0, 255]: s = 2 / 255
    q = make_qparams(0.0, 2.0, 8, "symmetric")
    assert (q.qmin, q.qmax) == (0, 255) and q.scale == pytest.approx(2 / 255)
    assert q.range_lo == 0 and q.range_hi == pytest.approx(2.0)
    # per channel: one negative channel makes the whole tensor's grid signed (narrow)
    q = make_qparams(np.array([-1.0, 0.0]), np.array([1.0, 2.0]), 8, "symmetric", axis=0)
    assert (q.qmin, q.qmax) == (-127, 127)
    np.testing.assert_allclose(q.scale, [1 / 127, 2 / 127])
    np.testing.assert_allclose(q.range_lo, [-1.0, -2.0])
    np.testing.assert_allclose(q.range_hi, [1.0, 2.0])


@pytest.mark.parametrize("lo, hi", [(0.0, np.inf), (-np.inf, 1.0), (np.nan, 1.0), (0.0, np.nan)])
def test_a_range_with_one_non_finite_end_is_an_error(lo, hi):
    with pytest.raises(AccelsimError, match="not finite"):
        make_qparams(lo, hi, 8, "asymmetric")


def test_one_non_finite_channel_is_an_error():
    with pytest.raises(AccelsimError, match="not finite"):
        make_qparams(np.array([0.0, np.nan, -1.0]), np.array([1.0, 1.0, 1.0]), 8, "asymmetric", axis=0)
    with pytest.raises(AccelsimError, match="not finite"):
        make_qparams(np.array([0.0, 0.0]), np.array([1.0, np.inf]), 8, "symmetric", axis=0)


def test_an_unsigned_symmetric_grid_takes_zero_but_not_negatives():
    q = make_qparams(0.0, 2.0, 8, "symmetric", signed=False)      # 0 is not negative
    assert (q.qmin, q.qmax) == (0, 255)
    with pytest.raises(ValueError, match="cannot hold negative"):
        make_qparams(-0.5, 2.0, 8, "symmetric", signed=False)


def test_dequantize_subtracts_the_zero_point():
    # [-1, 3] on 8 bits: s = 4 / 255, z = 64 (as above); codes 0, 64, 255 -> s (q - z)
    q = make_qparams(-1.0, 3.0, 8, "asymmetric")
    np.testing.assert_allclose(q.dequantize(np.array([0, 64, 255])), [-64 * 4 / 255, 0.0, 191 * 4 / 255], rtol=1e-6)


@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric"])
def test_a_zero_width_range_gets_scale_one(scheme):
    q = make_qparams(np.array([0.0, -1.0]), np.array([0.0, 1.0]), 8, scheme, axis=0)
    assert q.scale[0] == 1.0 and int(q.zero_point[0]) == 0
