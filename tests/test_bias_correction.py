"""Clipped-normal moments (analytic vs quadrature vs Monte Carlo) and bias correction."""
from __future__ import annotations

import numpy as np
import pytest

from accelsim.graph.builder import GraphBuilder
from accelsim.graph.run import conv2d_forward
from accelsim.quant import clipped_normal_mean, clipped_normal_var, correct_bias, fold_batchnorm, minmax_qparams
from accelsim.quant.bias_correction import expected_output_error
from accelsim.quant.stats import propagate_stats

ACTS = {"relu": (0.0, np.inf), "relu6": (0.0, 6.0), "identity": (-np.inf, np.inf)}
GRID = [(beta, gamma) for beta in (-4.0, -1.0, 0.0, 0.7, 3.0, 5.5, 9.0) for gamma in (0.1, 1.0, 2.5)]


def _quadrature(mu, sigma, a, b, n=400_001):
    """E[f] and Var[f] by the trapezoid rule over mu +- 12 sigma (independent of the closed form)."""
    x = np.linspace(mu - 12 * sigma, mu + 12 * sigma, n)
    p = np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    f = np.clip(x, a, b)
    m = np.trapezoid(f * p, x)
    return m, np.trapezoid((f - m) ** 2 * p, x)


@pytest.mark.parametrize("act", list(ACTS))
def test_clipped_normal_matches_quadrature(act):
    a, b = ACTS[act]
    for beta, gamma in GRID:
        m, v = _quadrature(beta, gamma, a, b)
        assert abs(clipped_normal_mean(beta, gamma, a, b) - m) <= 1e-7 * gamma, (act, beta, gamma)
        assert abs(clipped_normal_var(beta, gamma, a, b) - v) <= 1e-7 * gamma**2, (act, beta, gamma)


@pytest.fixture(scope="module")
def standard_samples():
    # one set of 1e7 standard normals reused for every (beta, gamma): x = beta + gamma z
    return np.random.default_rng(12345).standard_normal(10_000_000, dtype=np.float32)


@pytest.mark.parametrize("act", list(ACTS))
def test_clipped_normal_mean_matches_monte_carlo(act, standard_samples):
    """1e7 samples: clipping never increases the spread, so the standard error of the mean is at
    most gamma / sqrt(1e7) = 3.2e-4 gamma, and a tolerance of 1e-3 gamma is >= 3 standard
    errors (the seed is fixed, so the test is deterministic)."""
    a, b = ACTS[act]
    z = standard_samples
    buf = np.empty_like(z)
    for beta, gamma in GRID:
        np.multiply(z, np.float32(gamma), out=buf)
        buf += np.float32(beta)
        np.clip(buf, a, b, out=buf)
        mc = buf.mean(dtype=np.float64)
        analytic = clipped_normal_mean(beta, gamma, a, b)
        assert abs(analytic - mc) <= 1e-3 * gamma, (act, beta, gamma, analytic, mc)


def test_degenerate_sigma_and_dead_channels():
    assert clipped_normal_mean(-3.0, 0.0, 0.0, np.inf) == 0.0
    assert clipped_normal_mean(7.0, 0.0, 0.0, 6.0) == 6.0
    assert clipped_normal_mean(-50.0, 1.0, 0.0, np.inf) == pytest.approx(0.0, abs=1e-300)
    assert clipped_normal_var(2.0, 0.0, 0.0, 6.0) == 0.0


def test_conv_expected_error_is_the_conv_of_a_constant_input():
    """Appendix B: with E[x_c] the same at every pixel and no padding, eps * E[x] per output
    channel is sum over c and taps of eps[o, c, taps] E[x_c]; check against the conv itself."""
    rng = np.random.default_rng(0)
    for groups, c_in, c_out in ((1, 5, 7), (2, 6, 4), (6, 6, 6)):
        eps = rng.normal(size=(c_out, c_in // groups, 3, 3))
        mean = rng.uniform(0, 2, c_in)
        b = GraphBuilder("c")
        b.input((c_in, 5, 5))
        b.add("conv2d", "c", out_channels=c_out, kernel=3, groups=groups, params={"weight": eps.astype(np.float32), "bias": np.zeros(c_out, np.float32)})
        node = b.build()["c"]
        x = np.broadcast_to(mean[None, :, None, None], (1, c_in, 5, 5))
        by_conv = conv2d_forward(x, eps, None, {"groups": groups})[0, :, 1, 1]
        np.testing.assert_allclose(expected_output_error(node, eps, mean), by_conv, rtol=1e-5)


@pytest.mark.parametrize("padding, stride, dilation, hw", [(1, 1, 1, (7, 7)), (1, 2, 1, (8, 5)), ((0, 2), 1, 2, (6, 9)),
                                                           ((1, 0, 2, 1), 2, 1, (7, 6))])
def test_padding_aware_error_is_the_map_average_of_the_padded_conv(padding, stride, dilation, hw):
    """With zero padding, border outputs see fewer real pixels: the correction we subtract is
    the output error averaged over the whole map."""
    from accelsim.graph.ops import parse_attrs

    rng = np.random.default_rng(1)
    c_in, c_out = 3, 4
    eps = rng.normal(size=(c_out, c_in, 3, 3))
    mean = rng.uniform(0.5, 2, c_in)
    attrs = parse_attrs("conv2d", {"out_channels": c_out, "kernel": 3, "padding": padding, "stride": stride,
                                   "dilation": dilation}, "test")
    b = GraphBuilder("c")
    b.input((c_in, *hw))
    b.add("conv2d", "c", params={"weight": eps.astype(np.float32)}, bias=False,
          **{k: v for k, v in attrs.items() if k != "bias"})
    node = b.build()["c"]
    x = np.broadcast_to(mean[None, :, None, None], (1, c_in, *hw))
    by_conv = conv2d_forward(x, eps, None, attrs)[0].mean(axis=(1, 2))
    np.testing.assert_allclose(expected_output_error(node, eps, mean, hw), by_conv, rtol=1e-5)
    assert not np.allclose(expected_output_error(node, eps, mean), by_conv, rtol=1e-3)


def _bn_relu_linear(rng, c=16, out=8):
    b = GraphBuilder("bc")
    b.input((c,))
    b.add("linear", "l1", out_features=c, params={"weight": np.eye(c, dtype=np.float32), "bias": np.zeros(c, np.float32)})
    b.add("batchnorm", "bn", params={"gamma": rng.uniform(0.5, 2, c).astype(np.float32), "beta": rng.normal(1, 1, c).astype(np.float32),
                                     "mean": np.zeros(c, np.float32), "var": np.ones(c, np.float32) - 1e-5})
    b.add("relu", "r")
    b.add("linear", "l2", out_features=out, params={"weight": rng.normal(0, 1, (out, c)).astype(np.float32), "bias": np.zeros(out, np.float32)})
    return fold_batchnorm(b.build())


def test_analytic_bias_correction_removes_the_mean_output_error():
    """Inputs drawn so that l1's output really is N(beta, gamma^2): after correction the mean
    error of l2's output (quantized weights vs float) is ~0, before it is eps E[x]."""
    rng = np.random.default_rng(1)
    g = _bn_relu_linear(rng)
    w = g["l2"].weight
    wq = minmax_qparams(w, 3, "asymmetric").fake_quant(w)  # coarse, so the error is biased
    corrected, amounts = correct_bias(g, {"l2": wq}, return_amounts=True)
    x = rng.standard_normal((200_000, 16)).astype(np.float32)  # l1 output = beta + gamma x
    h = g.run(x, outputs="r").astype(np.float64)
    y = h @ w.T.astype(np.float64) + g["l2"].bias
    before = (h @ wq.T.astype(np.float64) + g["l2"].bias - y).mean(axis=0)
    after = (h @ wq.T.astype(np.float64) + corrected["l2"].bias - y).mean(axis=0)
    se = (h @ (wq - w).T.astype(np.float64)).std(axis=0) / np.sqrt(len(x))
    np.testing.assert_allclose(amounts["l2"], before, atol=float(5 * se.max()))
    assert np.all(np.abs(after) <= 5 * se + 1e-6)
    assert np.abs(before).max() > 20 * se.max()  # there was something to correct
    # the layer fed by the graph input (N(0,1) assumed, mean 0) gets no correction
    wq1 = minmax_qparams(g["l1"].weight, 3, "asymmetric").fake_quant(g["l1"].weight)
    _, amounts1 = correct_bias(g, {"l1": wq1}, return_amounts=True)
    np.testing.assert_allclose(amounts1["l1"], 0.0, atol=1e-12)


def test_empirical_bias_correction_matches_means_layer_by_layer():
    rng = np.random.default_rng(2)
    b = GraphBuilder("emp")
    b.input((3, 8, 8))
    b.add("conv2d", "c1", out_channels=6, kernel=3, padding=1, params={"weight": rng.normal(0, 0.5, (6, 3, 3, 3)).astype(np.float32), "bias": np.zeros(6, np.float32)})
    b.add("relu", "r1")
    b.add("conv2d", "c2", out_channels=4, kernel=3, params={"weight": rng.normal(0, 0.5, (4, 6, 3, 3)).astype(np.float32), "bias": np.zeros(4, np.float32)})
    b.add("globalavgpool", "gap")
    b.add("flatten", "f")
    b.add("linear", "fc", out_features=3, params={"weight": rng.normal(0, 1, (3, 4)).astype(np.float32), "bias": np.zeros(3, np.float32)})
    g = b.build()
    x = (rng.normal(size=(64, 3, 8, 8)) + 0.5).astype(np.float32)
    wq = {n: minmax_qparams(g[n].weight, 3, "symmetric", signed=True).fake_quant(g[n].weight) for n in ("c1", "c2", "fc")}
    corrected, amounts = correct_bias(g, wq, mode="empirical", calibration=x, return_amounts=True)
    qg = corrected.copy()
    for n, w in wq.items():
        qg[n].weight = w
    for name, axes in (("c1", (0, 2, 3)), ("c2", (0, 2, 3)), ("fc", (0,))):
        mq = qg.run(x, outputs=name).mean(axis=axes)
        mf = g.run(x, outputs=name).mean(axis=axes)
        np.testing.assert_allclose(mq, mf, atol=1e-4 * np.abs(mf).max() + 1e-5)
    uncorrected = g.copy()
    for n, w in wq.items():
        uncorrected[n].weight = w
    assert np.abs(uncorrected.run(x).mean(0) - g.run(x).mean(0)).max() > 1e-2


def test_stats_propagation_through_residual_and_pooling():
    rng = np.random.default_rng(3)
    b = GraphBuilder("prop")
    b.input((2, 4, 4))
    for name in ("a", "b"):
        b.add("conv2d", name, inputs="input", out_channels=3, kernel=1, params={"weight": rng.normal(size=(3, 2, 1, 1)).astype(np.float32), "bias": np.zeros(3, np.float32)})
        b.add("batchnorm", f"{name}_bn", params={"gamma": np.array([1, 2, 3], np.float32), "beta": np.array([0, 1, -1], np.float32),
                                                 "mean": np.zeros(3, np.float32), "var": np.ones(3, np.float32)})
    b.add("relu", "ra", inputs="a_bn")
    b.add("add", "sum", inputs=("ra", "b_bn"))
    b.add("globalavgpool", "gap")
    b.add("flatten", "flat")
    st = propagate_stats(fold_batchnorm(b.build()))
    relu_mean = clipped_normal_mean(np.array([0, 1, -1.0]), np.array([1, 2, 3.0]), 0, np.inf)
    np.testing.assert_allclose(st["sum"].mu, relu_mean + np.array([0, 1, -1.0]))
    relu_var = clipped_normal_var(np.array([0, 1, -1.0]), np.array([1, 2, 3.0]), 0, np.inf)
    np.testing.assert_allclose(st["sum"].sigma ** 2, relu_var + np.array([1, 4, 9.0]))
    np.testing.assert_allclose(st["flat"].mean(), st["sum"].mu)
