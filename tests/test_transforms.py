"""BN folding, ReLU6 replacement, cross-layer equalization and high-bias absorption on graphs
built in Python: FP32 outputs preserved where the maths says so, and not elsewhere."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.graph.builder import GraphBuilder
from accelsim.quant import absorb_high_bias, equalize, fold_batchnorm, replace_relu6
from accelsim.quant.equalize import _in_range, _out_range
from accelsim.quant.patterns import find_cle_sets


def _bn(rng, c, beta_scale=1.0):
    return {"gamma": rng.uniform(0.3, 2.0, c).astype(np.float32) * rng.choice([-1, 1], c).astype(np.float32),
            "beta": (rng.normal(0, 1, c) * beta_scale).astype(np.float32),
            "mean": rng.normal(0, 0.5, c).astype(np.float32), "var": rng.uniform(0.3, 2, c).astype(np.float32)}


def _w(rng, *shape, spread=False):
    w = rng.normal(0, 0.5, shape).astype(np.float32)
    if spread:  # per-output-channel ranges over three decades, the case equalization is for
        w *= np.logspace(-2, 1, shape[0]).astype(np.float32)[rng.permutation(shape[0])].reshape((-1,) + (1,) * (len(shape) - 1))
    return w


def _close(a, b, rel=1e-4):
    scale = max(np.abs(b).max(), 1e-6)
    assert np.abs(a - b).max() <= rel * scale, np.abs(a - b).max() / scale


def _mobilenet_like(rng, act="relu", c=6):
    b = GraphBuilder("mbv2ish")
    b.input((3, 10, 10))
    b.add("conv2d", "stem", out_channels=c, kernel=3, padding=1, bias=False, params={"weight": _w(rng, c, 3, 3, 3, spread=True)})
    b.add("batchnorm", "stem_bn", params=_bn(rng, c))
    b.add(act, "stem_act")
    b.add("conv2d", "dw", out_channels=c, kernel=3, padding=1, groups=c, bias=False, params={"weight": _w(rng, c, 1, 3, 3, spread=True)})
    b.add("batchnorm", "dw_bn", params=_bn(rng, c))
    b.add(act, "dw_act")
    b.add("conv2d", "project", out_channels=c, kernel=1, bias=False, params={"weight": _w(rng, c, c, 1, 1)})
    b.add("batchnorm", "project_bn", params=_bn(rng, c))
    b.add("add", "res", inputs=("project_bn", "stem_act"))
    b.add("conv2d", "head", out_channels=8, kernel=1, params={"weight": _w(rng, 8, c, 1, 1), "bias": _w(rng, 8)})
    b.add("globalavgpool", "gap")
    b.add("flatten", "flat")
    b.add("linear", "fc", out_features=5, params={"weight": _w(rng, 5, 8), "bias": _w(rng, 5)})
    return b.build()


# ----------------------------------------------------------------------------- folding


def test_fold_preserves_outputs_and_keeps_bn_statistics():
    rng = np.random.default_rng(0)
    g = _mobilenet_like(rng)
    x = rng.normal(size=(4, 3, 10, 10)).astype(np.float32)
    f = fold_batchnorm(g)
    assert [n.op for n in f.nodes].count("batchnorm") == 0
    _close(f.run(x), g.run(x))
    np.testing.assert_array_equal(f["stem"].params["bn_beta"], g["stem_bn"].params["beta"])
    np.testing.assert_array_equal(f["dw"].params["bn_gamma"], g["dw_bn"].params["gamma"])
    assert f["res"].inputs == ("project", "stem_act")
    assert f["stem"].attrs["bias"] is True


def test_fold_linear_bn_and_graph_output_bn():
    rng = np.random.default_rng(1)
    b = GraphBuilder("lin")
    b.input((6,))
    b.add("linear", "fc", out_features=4, params={"weight": _w(rng, 4, 6), "bias": _w(rng, 4)})
    b.add("batchnorm", "bn", params=_bn(rng, 4))
    g = b.build()
    f = fold_batchnorm(g)
    assert f.outputs == ["fc"]
    x = rng.normal(size=(5, 6)).astype(np.float32)
    _close(f.run(x), g.run(x))


def test_bn_not_folded_after_add_or_shared_conv():
    rng = np.random.default_rng(2)
    b = GraphBuilder("nofold")
    b.input((3, 6, 6))
    b.add("conv2d", "c", out_channels=3, kernel=1, params={"weight": _w(rng, 3, 3, 1, 1), "bias": _w(rng, 3)})
    b.add("batchnorm", "bn_shared", params=_bn(rng, 3))
    b.add("add", "sum", inputs=("c", "bn_shared"))  # c feeds two consumers
    b.add("batchnorm", "bn_after_add", params=_bn(rng, 3))
    g = b.build()
    f = fold_batchnorm(g)
    assert [n.op for n in f.nodes].count("batchnorm") == 2


# ----------------------------------------------------------------------------- relu6


def test_replace_relu6_changes_only_values_above_six():
    rng = np.random.default_rng(3)
    b = GraphBuilder("r6")
    b.input((4,))
    b.add("linear", "fc", out_features=4, params={"weight": np.eye(4, dtype=np.float32) * 4, "bias": np.zeros(4, np.float32)})
    b.add("relu6", "act")
    g = b.build()
    r = replace_relu6(g)
    assert g["act"].op == "relu6" and r["act"].op == "relu"
    x = rng.normal(0, 1, size=(100, 4)).astype(np.float32)
    y, yr = g.run(x), r.run(x)
    np.testing.assert_array_equal(y[4 * x <= 6], yr[4 * x <= 6])
    assert np.all(yr[4 * x > 6] > 6)


# ----------------------------------------------------------------------------- equalization


def test_sets_respect_residuals_relu6_and_graph_structure():
    rng = np.random.default_rng(4)
    f = fold_batchnorm(_mobilenet_like(rng))
    sets, skipped = find_cle_sets(f)
    # stem's relu output feeds dw AND the residual add: no set may start at stem
    reasons = dict(skipped)
    assert "stem" in reasons and "2 consumers" in reasons["stem"]
    assert [[(l.a, l.b) for l in s] for s in sets] == [[("dw", "project")]]
    assert "project" in reasons  # its output goes to the add
    f6 = fold_batchnorm(_mobilenet_like(rng, act="relu6"))
    sets6, skipped6 = find_cle_sets(f6)
    assert sets6 == [] and "relu6" in dict(skipped6)["dw"]


def _chain(rng, depth, kinds, acts, spread=True):
    """A chain of conv layers: kinds[i] in {'conv', 'dw'}, acts[i] in {'relu', 'identity', 'maxpool', 'none'}."""
    b = GraphBuilder("chain")
    c = 4
    b.input((c, 9, 9))
    for i in range(depth):
        if kinds[i] == "dw":
            b.add("conv2d", f"l{i}", out_channels=c, kernel=3, padding=1, groups=c,
                  params={"weight": _w(rng, c, 1, 3, 3, spread=spread), "bias": _w(rng, c)})
        else:
            b.add("conv2d", f"l{i}", out_channels=c, kernel=3, padding=1,
                  params={"weight": _w(rng, c, c, 3, 3, spread=spread), "bias": _w(rng, c)})
        if acts[i] == "relu":
            b.add("relu", f"a{i}")
        elif acts[i] == "maxpool":
            b.add("relu", f"a{i}")
            b.add("maxpool", f"p{i}", kernel=3, stride=1, padding=1)
        elif acts[i] == "identity":
            b.add("identity", f"a{i}")
    return b.build()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), depth=st.integers(2, 5),
       kinds=st.lists(st.sampled_from(["conv", "dw"]), min_size=5, max_size=5),
       acts=st.lists(st.sampled_from(["relu", "identity", "maxpool", "none"]), min_size=5, max_size=5))
def test_equalization_preserves_outputs_on_random_graphs(seed, depth, kinds, acts):
    rng = np.random.default_rng(seed)
    g = _chain(rng, depth, kinds, acts)
    x = rng.normal(size=(2, 4, 9, 9)).astype(np.float32)
    e, info = equalize(g, return_info=True)
    assert info.converged
    _close(e.run(x), g.run(x), rel=1e-4)
    # at convergence each pair's ranges match (a triplet's three ranges match)
    for links in info.sets:
        if len(links) == 1:
            np.testing.assert_allclose(_out_range(e[links[0].a]), _in_range(e[links[0].b]), rtol=1e-4)
        else:
            r0, r1, r2 = _out_range(e[links[0].a]), _out_range(e[links[0].b]), _in_range(e[links[1].b])
            np.testing.assert_allclose(r0, r1, rtol=1e-4)
            np.testing.assert_allclose(r1, r2, rtol=1e-4)


def test_chains_need_several_passes_and_improve_per_tensor_precision():
    rng = np.random.default_rng(5)
    g = _chain(rng, 4, ["conv"] * 4, ["relu"] * 4)
    e, info = equalize(g, return_info=True)
    assert len(info.sets) == 3 and info.converged and 3 <= info.iterations < 100
    # DFQ eq. 8: precision of a channel = its range / the tensor's range; equalization raises it
    prec = lambda w: (_out_range_arr(w) / np.abs(w).max()).mean()  # noqa: E731
    for name in ("l0", "l1", "l2"):
        assert prec(e[name].weight) > prec(g[name].weight)


def _out_range_arr(w):
    return np.abs(w).reshape(w.shape[0], -1).max(axis=1)


def test_equalization_scales_bn_statistics_with_the_channels():
    rng = np.random.default_rng(6)
    f = fold_batchnorm(_mobilenet_like(rng))
    e, info = equalize(f, return_info=True)
    s = info.scale("dw", "project")
    np.testing.assert_allclose(e["dw"].params["bn_beta"], f["dw"].params["bn_beta"] / s)
    np.testing.assert_allclose(e["dw"].params["bn_gamma"], f["dw"].params["bn_gamma"] / s)


def test_dead_channel_keeps_scale_one():
    rng = np.random.default_rng(7)
    g = _chain(rng, 2, ["conv", "conv"], ["relu", "none"])
    g["l0"].weight[1] = 0.0
    e, info = equalize(g, return_info=True)
    assert info.scale("l0", "l1")[1] == 1.0 and np.all(np.isfinite(e["l1"].weight))


# ----------------------------------------------------------------------------- absorption


def _absorb_graph(rng, kernel_b):
    b = GraphBuilder("absorb")
    b.input((3, 8, 8))
    b.add("conv2d", "a", out_channels=4, kernel=3, padding=1, params={"weight": _w(rng, 4, 3, 3, 3) * 0.1, "bias": np.zeros(4, np.float32)})
    bn = _bn(rng, 4)
    bn["beta"] = np.array([8.0, 0.5, 6.0, -3.0], np.float32)
    bn["gamma"] = np.array([1.0, 1.0, -0.5, 1.0], np.float32)
    b.add("batchnorm", "bn", params=bn)
    b.add("relu", "r")
    b.add("conv2d", "b", out_channels=5, kernel=kernel_b, padding=kernel_b // 2, params={"weight": _w(rng, 5, 4, kernel_b, kernel_b), "bias": _w(rng, 5)})
    return b.build()


@pytest.mark.parametrize("kernel_b", [1, 3])
def test_absorption_amount_and_interior_outputs(kernel_b):
    rng = np.random.default_rng(8)
    f = fold_batchnorm(_absorb_graph(rng, kernel_b))
    h, amounts = absorb_high_bias(f, return_amounts=True)
    np.testing.assert_allclose(amounts["a"], [5.0, 0.0, 4.5, 0.0])  # max(0, beta - 3|gamma|)
    np.testing.assert_allclose(h["a"].params["bn_beta"], f["a"].params["bn_beta"] - amounts["a"])
    x = rng.normal(0, 1, size=(3, 3, 8, 8)).astype(np.float32)
    pre = f.run(x, outputs="a")
    assert np.all(pre[:, [0, 2]] > amounts["a"][[0, 2], None, None])  # the regime where absorption is exact
    y, yh = f.run(x), h.run(x)
    if kernel_b == 1:
        _close(yh, y, rel=1e-5)
    else:  # zero padding: exact only off the border (as AIMET)
        _close(yh[:, :, 1:-1, 1:-1], y[:, :, 1:-1, 1:-1], rel=1e-5)
        assert np.abs(yh - y).max() > 1e-2 * np.abs(y).max()
    # the point of it: the activation range (beta + 6 gamma) of A's output shrinks
    assert np.max(h["a"].params["bn_beta"] + 6 * np.abs(h["a"].params["bn_gamma"])) < \
        np.max(f["a"].params["bn_beta"] + 6 * np.abs(f["a"].params["bn_gamma"]))


def test_absorption_without_relu_moves_the_whole_mean_exactly():
    rng = np.random.default_rng(9)
    b = GraphBuilder("lin")
    b.input((6,))
    b.add("linear", "a", out_features=4, params={"weight": _w(rng, 4, 6), "bias": _w(rng, 4)})
    b.add("batchnorm", "bn", params=_bn(rng, 4, beta_scale=5))
    b.add("linear", "b", out_features=3, params={"weight": _w(rng, 3, 4), "bias": _w(rng, 3)})
    f = fold_batchnorm(b.build())
    h, amounts = absorb_high_bias(f, return_amounts=True)
    np.testing.assert_allclose(amounts["a"], f["a"].params["bn_beta"])
    x = rng.normal(size=(10, 6)).astype(np.float32) * 10
    _close(h.run(x), f.run(x), rel=1e-5)
