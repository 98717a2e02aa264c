"""PowerQuant's exponent search (accelsim/quant/power.py; issue 10, Build 2 and the first Must-show).

On the three bundled trained models (BN folded), at W4 and W8: a* in (0.1, 1), its error not
above uniform quantization's (a = 1) and strictly below it at W4, the curve locally convex
around a* up to the rounding's steps, and per-layer exponents no worse on the summed error.
Plus eq. 3 on a hand-computed example.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest

import accelsim
from accelsim.quant import fold_batchnorm
from accelsim.quant.fold import WEIGHTED_OPS
from accelsim.quant.power import (
    A_MAX, A_MIN, error_curve, reconstruction_error, search_exponent, search_exponents_per_layer,
    weighted_layers,
)

MODELS = ("tiny_mobilenet_v2", "tiny_resnet", "tiny_vgg")
CASES = [(m, b) for m in MODELS for b in (4, 8)]

# Rounding noise of the curve, relative to the error at a*, measured before writing the test:
# the standard deviation of eps(a) around a quadratic fit, on a in a* +- 0.05 by steps of 0.001,
# the largest over the three models (per model: W4 1.5e-4 to 6.3e-4, W8 2.5e-3 to 4.7e-3).
# On the 13-point grid below the largest step against the trend was 1.9e-4 at W4 and 8.6e-3 at
# W8 (tiny_resnet), and the curve rises 2 % to 7 % from its minimum to the ends of the grid.
NOISE = {4: 6.5e-4, 8: 4.8e-3}
TOL_FACTOR = 2.5        # a step may go against the trend by TOL_FACTOR x NOISE x error(a*)
VALLEY_FACTOR = 2.0     # ...and both ends of the grid must lie VALLEY_FACTOR x that above the minimum


@lru_cache(maxsize=None)
def _weights(model: str) -> tuple[np.ndarray, ...]:
    return tuple(weighted_layers(accelsim.load_model(model)).values())


@lru_cache(maxsize=None)
def _a_star(model: str, bits: int) -> float:
    return search_exponent(list(_weights(model)), bits)


# --- eq. 3 by hand ---------------------------------------------------------------------------

def test_reconstruction_error_by_hand():
    # w = [0.1, -0.5, 1.0], 3 bits, a = 0.5: qmax = 2^2 - 1 = 3, M = max|w| = 1.0.
    #   (|w|/M)^a = [sqrt(0.1), sqrt(0.5), 1] = [0.316228, 0.707107, 1]
    #   x qmax    = [0.948683, 2.121320, 3]  -> round -> |q| = [1, 2, 3], with signs q = [1, -2, 3]
    #   dequantized sign(q) M (|q|/qmax)^(1/a) = [(1/3)^2, -(2/3)^2, 1] = [1/9, -4/9, 1]
    #   W - Q^-1(Q(W)) = [0.1 - 1/9, -0.5 + 4/9, 0] = [-1/90, -1/18, 0] = [-1/90, -5/90, 0]
    #   ||.||_2 = sqrt(1 + 25) / 90 = sqrt(26) / 90 = 0.0566558...
    w = np.array([0.1, -0.5, 1.0])
    expected = math.sqrt(26) / 90
    assert reconstruction_error([w], 3, 0.5, per_channel=False) == pytest.approx(expected, rel=1e-12)
    # one output channel holding the three weights: per channel is the same quantizer
    assert reconstruction_error([w.reshape(1, 3)], 3, 0.5) == pytest.approx(expected, rel=1e-12)
    # a = 1 (uniform): |w|/M x 3 = [0.3, 1.5, 3] -> [0, 2, 3] (half away from zero) -> [0, -2/3, 1];
    # errors [0.1, 1/6, 0], norm sqrt(0.01 + 1/36)
    assert reconstruction_error([w], 3, 1.0, per_channel=False) == pytest.approx(math.sqrt(0.01 + 1 / 36), rel=1e-12)


def test_reconstruction_error_is_a_sum_of_norms():
    # a second layer 2w: the quantizer scales with M, so its error is 2 sqrt(26)/90; eq. 3 adds the
    # norms (3 sqrt(26)/90), it does not take the norm of the concatenation (sqrt(5) sqrt(26)/90)
    w = np.array([[0.1, -0.5, 1.0]])
    one = math.sqrt(26) / 90
    assert reconstruction_error([w, 2 * w], 3, 0.5) == pytest.approx(3 * one, rel=1e-12)
    assert reconstruction_error({"a": w, "b": 2 * w}, 3, 0.5) == pytest.approx(3 * one, rel=1e-12)
    # both rows in one tensor (per channel, each row its own M): one norm, sqrt(1 + 2^2) x one
    assert reconstruction_error([np.vstack([w, 2 * w])], 3, 0.5) == pytest.approx(math.sqrt(5) * one, rel=1e-12)


def test_dead_layer_and_bad_input():
    assert reconstruction_error([np.zeros((4, 3))], 4, 0.5) == 0.0
    assert search_exponent([np.zeros((4, 3))], 4) == 0.5       # nothing to fit: x0 comes back
    with pytest.raises(ValueError):
        reconstruction_error([], 4, 0.5)
    with pytest.raises(ValueError):
        reconstruction_error([np.ones(3)], 4, -1.0)


# --- the bundled models ----------------------------------------------------------------------

def test_weighted_layers_are_the_folded_conv_and_linear_weights():
    g = accelsim.load_model("tiny_resnet")
    folded = fold_batchnorm(g)
    layers = weighted_layers(g)
    expected = [n for n in folded.nodes if n.op in WEIGHTED_OPS and n.weight is not None]
    assert list(layers) == [n.name for n in expected]
    for n in expected:
        np.testing.assert_array_equal(layers[n.name], n.weight)
    raw = weighted_layers(g, fold=False)
    assert list(raw) == list(layers)
    assert any(not np.array_equal(raw[k], layers[k]) for k in layers)   # folding changed the weights


@pytest.mark.parametrize("model,bits", CASES)
def test_exponent_is_below_one(model, bits):
    a = _a_star(model, bits)
    assert 0.1 < a < 1.0
    assert search_exponent(list(_weights(model)), bits) == a            # deterministic


@pytest.mark.parametrize("model,bits", CASES)
def test_error_at_a_star_not_above_uniform(model, bits):
    ws = _weights(model)
    at_star = reconstruction_error(ws, bits, _a_star(model, bits))
    uniform = reconstruction_error(ws, bits, 1.0)
    assert at_star <= uniform
    if bits == 4:
        assert at_star < uniform


@pytest.mark.parametrize("model,bits", CASES)
def test_curve_is_locally_convex_around_a_star(model, bits):
    a = _a_star(model, bits)
    grid = a + np.linspace(-0.15, 0.15, 13)
    step = grid[1] - grid[0]
    curve = error_curve(_weights(model), bits, grid)
    assert list(curve.columns) == ["a", "error"]
    np.testing.assert_allclose(curve["a"], grid)
    e = curve["error"].to_numpy()
    i = int(np.argmin(e))
    assert abs(grid[i] - a) <= step + 1e-12, f"grid minimum at {grid[i]:.3f}, a* = {a:.3f}"
    tol = TOL_FACTOR * NOISE[bits] * e[i]
    d = np.diff(e)
    assert np.all(d[:i] <= tol), f"not decreasing towards the minimum: {d[:i] / e[i]}"
    assert np.all(d[i:] >= -tol), f"not increasing after the minimum: {d[i:] / e[i]}"
    # a valley, not a flat line inside the tolerance
    assert min(e[0], e[-1]) - e[i] >= VALLEY_FACTOR * tol


@pytest.mark.parametrize("model,bits", CASES)
def test_per_layer_exponents_do_not_raise_the_summed_error(model, bits):
    ws = _weights(model)
    per_layer = search_exponents_per_layer(list(ws), bits)
    assert len(per_layer) == len(ws)
    assert all(A_MIN <= a <= A_MAX for a in per_layer)
    summed = sum(reconstruction_error([w], bits, a) for w, a in zip(ws, per_layer))
    assert summed <= reconstruction_error(ws, bits, _a_star(model, bits))
