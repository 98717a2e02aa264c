"""PowerQuant's quantizers (quantizers.make_power_qparams) by hand: eq. 2 for weights, (x + c)^a
on an unsigned grid for activations, the code of 0.0 exact."""
import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.quant.quantizers import make_power_qparams, pad_code


def test_activation_grid_after_a_relu():
    q = make_power_qparams(0.0, 4.0, 8, 0.5)
    assert (q.qmin, q.qmax, q.offset, q.power) == (0, 255, 0.0, 0.5)
    assert float(q.scale) == pytest.approx(4.0 ** 0.5 / 255)           # hi^a / qmax
    assert float(q.range_lo) == 0.0 and float(q.range_hi) == pytest.approx(4.0)
    # x = 1: (1)^0.5 / s = 255 / 2 = 127.5 -> 128 (ties away); dequantized (128 s)^2
    assert q.quantize(np.array([1.0])).tolist() == [128]
    assert q.dequantize(np.array([128]), np.float64)[0] == pytest.approx((128 * 2 / 255) ** 2)
    assert pad_code(q) == 0


def test_signed_activations_get_an_offset_with_zero_on_the_grid():
    q = make_power_qparams(-1.0, 3.0, 8, 0.6)
    assert q.offset == 1.0 and q.qmin == 0 and q.qmax == 255
    z = pad_code(q)
    assert z == int(np.floor(1.0 / ((4.0 ** 0.6) / 255)))                # floor(c^a / s0): the top stays covered
    assert float(q.scale) == pytest.approx(1.0 / z)                      # c^a / z: 0.0 exactly on the grid
    assert abs(float(q.dequantize(np.array([z]), np.float64)[0])) < 1e-12
    assert float(q.range_lo) == pytest.approx(-1.0) and float(q.range_hi) >= 3.0
    assert q.quantize(np.array([-5.0, 100.0])).tolist() == [0, 255]      # clamped at both ends


def test_weight_grid_is_eq_2_per_channel():
    w = np.array([[0.1, -0.5, 1.0], [0.2, -0.2, 0.05]])
    q = make_power_qparams(w.min(axis=1), w.max(axis=1), 3, 0.5, axis=0, weights=True)
    assert (q.qmin, q.qmax, q.offset) == (-3, 3, 0.0)
    np.testing.assert_allclose(q.scale, [1.0 ** 0.5 / 3, 0.2 ** 0.5 / 3])  # M^a / qmax per channel
    # channel 0: round(3 sign(w) (|w| / 1)^0.5) = [0.95 -> 1, -2.12 -> -2, 3]
    assert q.quantize(w)[0].tolist() == [1, -2, 3]
    assert q.quantize(w)[1].tolist() == [3, -3, round(3 * (0.05 / 0.2) ** 0.5)]
    with pytest.raises(AccelsimError, match="power exponent"):
        make_power_qparams(0.0, 1.0, 8, -1.0)
    with pytest.raises(ValueError, match="per tensor"):
        make_power_qparams(np.zeros(2), np.ones(2), 8, 0.5, axis=0)
