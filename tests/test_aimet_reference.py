"""BN folding, cross-layer scaling and high-bias absorption against AIMET 2.42 (fixture README:
tests/fixtures/reference/aimet/README.md). Weights, biases and scales to 1e-5 relative."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import REFERENCE_DIR

from accelsim.graph.builder import GraphBuilder
from accelsim.quant import absorb_high_bias, equalize, fold_batchnorm

AIMET = REFERENCE_DIR / "aimet"
CONVS = ("/conv1/Conv", "/dw/Conv", "/pw/Conv")
RTOL = 1e-5


@pytest.fixture(scope="module")
def ref():
    with np.load(AIMET / "conv_dw_pw_expected.npz") as npz:
        return {k: npz[k] for k in npz.files}


def _graph_from_npz(ref):
    """The fixture model rebuilt from its stored arrays (independent of the ONNX importer)."""
    def bn(name):
        p = f"bn//{name}/BatchNormalization/"
        return {"gamma": ref[p + "scale"], "beta": ref[p + "B"], "mean": ref[p + "input_mean"], "var": ref[p + "input_var"]}

    eps = float(ref["bn//bn1/BatchNormalization/epsilon"])
    b = GraphBuilder("conv_dw_pw")
    b.input((3, 12, 12), name="x")
    b.add("conv2d", "/conv1/Conv", out_channels=8, kernel=3, padding=1, bias=False,
          params={"weight": ref["orig//conv1/Conv/w"]})
    b.add("batchnorm", "/bn1/BatchNormalization", eps=eps, params=bn("bn1"))
    b.add("relu", "/relu1/Relu")
    b.add("conv2d", "/dw/Conv", out_channels=8, kernel=3, padding=1, groups=8, bias=False,
          params={"weight": ref["orig//dw/Conv/w"]})
    b.add("batchnorm", "/bn2/BatchNormalization", eps=eps, params=bn("bn2"))
    b.add("relu", "/relu2/Relu")
    b.add("conv2d", "/pw/Conv", out_channels=16, kernel=1,
          params={"weight": ref["orig//pw/Conv/w"], "bias": ref["orig//pw/Conv/b"]})
    return b.build()


def _load_onnx_graph():
    onnx_import = pytest.importorskip("accelsim.graph.onnx_import")
    pytest.importorskip("onnx")
    return onnx_import.load_onnx(AIMET / "conv_dw_pw.onnx")


def _close(actual, expected, what):
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, what
    scale = np.abs(expected).max()
    err = np.abs(actual - expected).max() / scale
    assert err <= RTOL, f"{what}: max relative error {err:.2e} (|expected| max {scale:.3g})"


def _check_stage(g, ref, stage):
    for conv in CONVS:
        _close(g[conv].weight, ref[f"{stage}/{conv}/w"], f"{stage} {conv} weight")
        _close(g[conv].bias, ref[f"{stage}/{conv}/b"], f"{stage} {conv} bias")


@pytest.fixture(params=["builder", "onnx"])
def graph(request, ref):
    return _graph_from_npz(ref) if request.param == "builder" else _load_onnx_graph()


def test_orig_graph_reproduces_reference_output(graph, ref):
    y = graph.run(ref["x"])
    np.testing.assert_allclose(y, ref["y_ref"], atol=1e-5 * np.abs(ref["y_ref"]).max())


def test_fold_cls_hbf_match_aimet(graph, ref):
    folded = fold_batchnorm(graph)
    assert [n.op for n in folded.nodes] == ["input", "conv2d", "relu", "conv2d", "relu", "conv2d"]
    _check_stage(folded, ref, "after_fold")
    np.testing.assert_allclose(folded.run(ref["x"]), ref["y_after_fold"], atol=1e-5 * np.abs(ref["y_ref"]).max())

    scaled, info = equalize(folded, return_info=True)
    assert [tuple((l.a, l.b) for l in s) for s in info.sets] == [(("/conv1/Conv", "/dw/Conv"), ("/dw/Conv", "/pw/Conv"))]
    assert info.converged and info.iterations == 2  # a triplet is at its fixed point after one step
    _check_stage(scaled, ref, "after_cls")
    for a, b in (("/conv1/Conv", "/dw/Conv"), ("/dw/Conv", "/pw/Conv")):
        _close(info.scale(a, b), ref[f"scale/{a}->{b}"], f"scale {a}->{b}")
    np.testing.assert_allclose(scaled.run(ref["x"]), ref["y_after_cls"], atol=1e-5 * np.abs(ref["y_ref"]).max())

    absorbed, amounts = absorb_high_bias(scaled, return_amounts=True)
    _check_stage(absorbed, ref, "after_hbf")
    for a in ("/conv1/Conv", "/dw/Conv"):
        np.testing.assert_allclose(amounts.get(a, 0.0), ref[f"hbf_c/{a}"], rtol=RTOL, atol=1e-6)
    y = absorbed.run(ref["x"])
    # AIMET ignores zero padding in the absorbed layer: outputs agree with AIMET everywhere,
    # and with the original model only off the 1-pixel border
    np.testing.assert_allclose(y, ref["y_after_hbf"], atol=1e-5 * np.abs(ref["y_ref"]).max())
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(y[inner], ref["y_ref"][inner], atol=1e-5 * np.abs(ref["y_ref"]).max())
    assert np.abs(y - ref["y_ref"]).max() > 1.0  # the border error is real (7.38 in the README)


def test_transforms_do_not_modify_their_input(ref):
    g = _graph_from_npz(ref)
    before = {n.name: {k: v.copy() for k, v in n.params.items()} for n in g.nodes}
    absorb_high_bias(equalize(fold_batchnorm(g)))
    fold_batchnorm(g)
    for n in g.nodes:
        assert set(n.params) == set(before[n.name])
        for k, v in n.params.items():
            np.testing.assert_array_equal(v, before[n.name][k])
    assert [n.op for n in g.nodes].count("batchnorm") == 2
