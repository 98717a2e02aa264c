"""The FP32 numpy reference: kernels against naive loops, Graph.run plumbing and its errors."""
import math

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

import accelsim
from accelsim.errors import GraphError
from accelsim.graph import run as R
from accelsim.graph.builder import GraphBuilder


def _naive_conv(x, w, b, stride, pad, dil, groups):
    """Direct definition: out[n,o,p,q] = b[o] + sum_{c,i,j} x[n, g*cg+c, p*s-top+i*d, q*s-left+j*d] w[o,c,i,j]."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    top, left, bottom, right = pad
    ho = (h + top + bottom - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + left + right - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for p in range(ho):
            for q in range(wo):
                acc = np.zeros(n) + (b[oc] if b is not None else 0.0)
                for ci in range(cg):
                    for i in range(kh):
                        for j in range(kw):
                            r, s = p * stride[0] - top + i * dil[0], q * stride[1] - left + j * dil[1]
                            if 0 <= r < h and 0 <= s < wd:
                                acc += x[:, g * cg + ci, r, s] * w[oc, ci, i, j]
                out[:, oc, p, q] = acc
    return out


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3), cg=st.integers(1, 3), og=st.integers(1, 3), groups=st.sampled_from([1, 2, 3]),
    h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 3), kw=st.integers(1, 3),
    sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
    pads=st.tuples(*[st.integers(0, 2)] * 4), bias=st.booleans(), seed=st.integers(0, 2**16),
)
def test_conv_matches_naive_loop(n, cg, og, groups, h, w, kh, kw, sh, sw, dh, dw, pads, bias, seed):
    top, left, bottom, right = pads
    if dh * (kh - 1) + 1 > h + top + bottom or dw * (kw - 1) + 1 > w + left + right:
        return
    rng = np.random.default_rng(seed)
    c, o = cg * groups, og * groups
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((o, cg, kh, kw)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32) if bias else None
    attrs = {"stride": (sh, sw), "padding": pads, "dilation": (dh, dw), "groups": groups}
    ours = R.conv2d_forward(x, wt, b, attrs)
    ref = _naive_conv(x.astype(np.float64), wt.astype(np.float64), b, (sh, sw), pads, (dh, dw), groups)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("mult", [1, 2])
def test_depthwise_path_matches_naive_loop(mult):
    """groups == C takes the per-tap path, with and without a depth multiplier."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 7, 6)).astype(np.float32)
    w = rng.standard_normal((5 * mult, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5 * mult).astype(np.float32)
    attrs = {"stride": (2, 1), "padding": (1, 0, 2, 1), "dilation": (1, 2), "groups": 5}
    ref = _naive_conv(x.astype(np.float64), w.astype(np.float64), b, (2, 1), (1, 0, 2, 1), (1, 2), 5)
    np.testing.assert_allclose(R.conv2d_forward(x, w, b, attrs), ref, rtol=1e-5, atol=1e-5)


def _naive_pool(x, k, s, pad, ceil_mode, kind, include_pad=True):
    """Window enumeration as torch defines it: windows start inside input+left pad; divisor
    counts padding but not the ceil-mode overhang past it."""
    n, c, h, w = x.shape
    top, left, bottom, right = pad

    def starts(size, lo, hi, kk, ss):
        span = size + lo + hi - kk
        count = (math.ceil(span / ss) if ceil_mode else span // ss) + 1
        if ceil_mode and (count - 1) * ss >= size + lo:
            count -= 1
        return [i * ss - lo for i in range(count)]

    rows, cols = starts(h, top, bottom, k[0], s[0]), starts(w, left, right, k[1], s[1])
    out = np.zeros((n, c, len(rows), len(cols)))
    for a, r in enumerate(rows):
        for b, q in enumerate(cols):
            r0, r1, q0, q1 = max(r, 0), min(r + k[0], h), max(q, 0), min(q + k[1], w)
            win = x[:, :, r0:r1, q0:q1]
            if kind == "max":
                out[:, :, a, b] = win.max(axis=(2, 3))
            else:
                if include_pad:
                    div = (min(r + k[0], h + bottom) - r) * (min(q + k[1], w + right) - q)
                else:
                    div = (r1 - r0) * (q1 - q0)
                out[:, :, a, b] = win.sum(axis=(2, 3)) / div
    return out


@settings(max_examples=80, deadline=None)
@example(h=16, w=9, k=3, s=2, p=1, ceil=True, include=True, seed=0)  # ceil-mode windows past the padding
@example(h=9, w=5, k=2, s=2, p=0, ceil=True, include=True, seed=0)
@given(
    h=st.integers(2, 16), w=st.integers(2, 9), k=st.integers(1, 3), s=st.integers(1, 3),
    p=st.integers(0, 1), ceil=st.booleans(), include=st.booleans(), seed=st.integers(0, 999),
)
def test_pools_match_window_enumeration(h, w, k, s, p, ceil, include, seed):
    if 2 * p > k or k > h + 2 * p or k > w + 2 * p:
        return
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w)).astype(np.float32)
    attrs = {"kernel": (k, k), "stride": (s, s), "padding": (p, p, p, p), "ceil_mode": ceil}
    np.testing.assert_allclose(R.maxpool_forward(x, attrs), _naive_pool(x, (k, k), (s, s), (p,) * 4, ceil, "max"), rtol=1e-6)
    ref = _naive_pool(x, (k, k), (s, s), (p,) * 4, ceil, "avg", include)
    got = R.avgpool_forward(x, {**attrs, "count_include_pad": include})
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_elementwise_kernels_against_scalar_math():
    x = np.linspace(-9, 9, 37, dtype=np.float32)
    gelu = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(float)])
    np.testing.assert_allclose(R.gelu_forward(x), gelu, rtol=1e-6, atol=1e-7)
    sig = np.array([1 / (1 + math.exp(-v)) for v in x.astype(float)])
    np.testing.assert_allclose(R.sigmoid_forward(x), sig, rtol=1e-6)
    np.testing.assert_allclose(R.silu_forward(x), x * sig, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(R.relu6_forward(x), np.minimum(np.maximum(x, 0), 6))
    assert np.all(np.isfinite(R.sigmoid_forward(np.array([-1e4, 1e4], np.float32))))
    sm = R.softmax_forward(np.array([[1000.0, 1001.0, 999.0]], np.float32))
    np.testing.assert_allclose(sm.sum(), 1.0, rtol=1e-6)
    assert sm.argmax() == 1


def test_numpy_erf_fallback_is_accurate():
    """The erf used when scipy is missing, against math.erf."""
    xs = np.linspace(-6, 6, 1001)
    exact = np.array([math.erf(v) for v in xs])
    assert np.abs(R._erf_numpy(xs) - exact).max() < 2e-7


def test_batchnorm_and_layernorm_formulas():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5, 2)).astype(np.float32)
    g, b, m, v = (rng.uniform(0.5, 2, 4).astype(np.float32) for _ in range(4))
    ref = (x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-3) * g[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(R.batchnorm_forward(x, g, b, m, v, 1e-3), ref, rtol=1e-5, atol=1e-5)
    y = rng.standard_normal((2, 3, 6)).astype(np.float32) * 4 + 1
    gam, bet = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    out = R.layernorm_forward(y, np.ones(6), np.zeros(6), 1e-5)
    np.testing.assert_allclose(out.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(-1), 1, rtol=1e-3)
    np.testing.assert_allclose(R.layernorm_forward(y, gam, bet), out * gam + bet, rtol=1e-5, atol=1e-5)


def _small_net(seed: int = 0):
    """conv -> bn -> relu6 -> depthwise -> (add residual) -> gap -> flatten -> linear, with weights."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder("small")
    b.input([3, 8, 8], name="img")
    b.add("conv2d", "c1", out_channels=4, kernel=3, padding=1, bias=False,
          params={"weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32)})
    b.add("batchnorm", "bn", params={k: rng.uniform(0.5, 1.5, 4).astype(np.float32) for k in ("gamma", "beta", "mean", "var")})
    b.add("relu6", "a1")
    b.add("conv2d", "dw", out_channels=4, kernel=3, padding=1, groups=4,
          params={"weight": rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "bias": np.zeros(4, np.float32)})
    b.add("add", "res", inputs=["dw", "a1"])
    b.add("globalavgpool", "gap")
    b.add("flatten", "fl")
    b.add("linear", "fc", out_features=5,
          params={"weight": rng.standard_normal((5, 4)).astype(np.float32), "bias": rng.standard_normal(5).astype(np.float32)})
    return b.build()


def test_graph_run_composes_kernels():
    g = _small_net()
    x = np.random.default_rng(1).standard_normal((6, 3, 8, 8)).astype(np.float32)
    p = {n.name: n.params for n in g}
    h = R.conv2d_forward(x, p["c1"]["weight"], None, g["c1"].attrs)
    h = np.clip(R.batchnorm_forward(h, *(p["bn"][k] for k in ("gamma", "beta", "mean", "var"))), 0, 6)
    d = R.conv2d_forward(h, p["dw"]["weight"], p["dw"]["bias"], g["dw"].attrs) + h
    ref = d.mean(axis=(2, 3)) @ p["fc"]["weight"].T + p["fc"]["bias"]
    out = g.run(x)
    assert out.shape == (6, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_chunks_threads_and_return_all_agree():
    g = _small_net()
    x = np.random.default_rng(2).standard_normal((11, 3, 8, 8)).astype(np.float32)
    whole = g.run(x, batch_size=100, threads=1)
    for bs, th in [(3, 1), (4, 2), (1, 3)]:
        np.testing.assert_allclose(g.run(x, batch_size=bs, threads=th), whole, rtol=1e-6, atol=1e-6)
    every = g.run(x, return_all=True, batch_size=4)
    assert set(every) == {n.name for n in g}
    assert every["gap"].shape == (11, 4, 1, 1)
    np.testing.assert_allclose(every["fc"], whole, rtol=1e-6, atol=1e-6)
    picked = g.run(x, outputs=["a1", "fc"])
    assert set(picked) == {"a1", "fc"} and np.all(picked["a1"] >= 0) and np.all(picked["a1"] <= 6)
    assert g.run(x, outputs="gap").shape == (11, 4, 1, 1)


def test_graph_whose_reshape_mixes_the_batch_runs_unchunked():
    b = GraphBuilder("mix")
    b.input([2, 3])
    b.add("reshape", "r", shape=[-1, 3])  # (N, 2, 3) -> (2N, 3): the batch leaves axis 0
    b.add("mul", "m", params={"value": np.float32(2.0)})
    g = b.build()
    x = np.arange(5 * 6, dtype=np.float32).reshape(5, 2, 3)
    np.testing.assert_array_equal(g.run(x, batch_size=2), 2 * x.reshape(10, 3))


def test_multiple_inputs_take_a_dict():
    b = GraphBuilder("two")
    b.input([4, 3], name="a")
    b.input([3, 2], name="b")
    b.add("matmul", "mm", inputs=["a", "b"])
    g = b.build()
    rng = np.random.default_rng(3)
    a, bb = rng.standard_normal((5, 4, 3)), rng.standard_normal((5, 3, 2))
    np.testing.assert_allclose(g.run({"a": a, "b": bb}), a @ bb, rtol=1e-5)
    with pytest.raises(GraphError, match="pass a dict"):
        g.run(a)
    with pytest.raises(GraphError, match="missing"):
        g.run({"a": a})
    with pytest.raises(GraphError, match="different batch sizes"):
        g.run({"a": a, "b": bb[:2]})


def test_input_shape_error_names_expected_and_found():
    g = _small_net()
    with pytest.raises(GraphError, match=r"input 'img' expects shape \(N, 3, 8, 8\), found \(2, 3, 9, 8\)"):
        g.run(np.zeros((2, 3, 9, 8), np.float32))
    with pytest.raises(GraphError, match="found \\(3, 8, 8\\)"):
        g.run(np.zeros((3, 8, 8), np.float32))


def test_shape_only_graph_names_the_layer_without_weights():
    g = accelsim.load_model("resnet18")
    first = next(n.name for n in g if n.op == "conv2d")
    with pytest.raises(GraphError, match=f"layer '{first}' \\(conv2d\\) has no weight"):
        g.run(np.zeros((1, 3, 224, 224), np.float32))


def test_bias_parameter_is_used_when_present():
    g = _small_net()
    x = np.random.default_rng(4).standard_normal((2, 3, 8, 8)).astype(np.float32)
    base = g.run(x)
    g["dw"].bias = None  # a declared bias that is absent counts as zero
    np.testing.assert_allclose(g.run(x), base, rtol=1e-6, atol=1e-6)
    g["c1"].bias = np.full(4, 0.25, np.float32)  # attrs say bias=False; the parameter still applies
    assert np.abs(g.run(x) - base).max() > 1e-3
