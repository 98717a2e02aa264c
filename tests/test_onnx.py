"""ONNX import and export, checked against onnxruntime (and torch's own outputs for the fixtures)."""
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import accelsim  # noqa: E402
from accelsim.errors import GraphError, MissingExtraError  # noqa: E402
from accelsim.graph.onnx_export import save_onnx, to_onnx  # noqa: E402
from accelsim.graph.onnx_import import load_onnx  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"
FILES = sorted(FIXTURES.glob("*.onnx"))
AIMET = Path(__file__).resolve().parent / "fixtures" / "reference" / "aimet"   # shipped in the repo


def _close(ours, ref):
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


def _ort(model_or_path, x, name="x"):
    src = model_or_path if isinstance(model_or_path, (str, Path)) else model_or_path.SerializeToString()
    sess = ort.InferenceSession(str(src) if isinstance(src, Path) else src, providers=["CPUExecutionProvider"])
    return sess.run(None, {name: x})[0]


@pytest.fixture(scope="module")
def data():
    return dict(np.load(FIXTURES / "inputs.npz"))


def _family(path: Path) -> str:
    return path.name.split("_op")[0]


def test_fixture_set_is_small_and_complete():
    assert len(FILES) >= 40
    assert all(f.stat().st_size < 100_000 for f in FILES)
    assert sum(f.stat().st_size for f in FIXTURES.iterdir()) < 2_000_000
    for fam in {_family(f) for f in FILES}:
        for fold in ("fold", "nofold"):
            assert any(f.name.endswith(f"_{fold}.onnx") and _family(f) == fam for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_fixture_matches_onnxruntime_and_torch(path, data):
    g = load_onnx(path)
    x = data[f"{_family(path)}/x"]
    ref = _ort(path, x)
    ours = g.run(x)
    _close(ours, ref)
    _close(ours, data[f"{_family(path)}/y_torch"])
    # the batch is free even when the file fixes it: rows are independent
    extra = np.random.default_rng(0).standard_normal((3,) + x.shape[1:]).astype(np.float32)
    _close(g.run(np.concatenate([x, extra]))[: len(x)], ref)


def test_convnet_structure_and_names():
    g = load_onnx(FIXTURES / "convnet_op17_nofold.onnx")
    ops = [n.op for n in g]
    assert ops.count("conv2d") == 7 and ops.count("batchnorm") == 3 and ops.count("relu6") == 1
    assert g["/conv1/Conv"].weight.shape == (8, 3, 3, 3) and g["/conv1/Conv"].bias is None
    assert g["/dw/Conv"].attrs["groups"] == 8 and g["/dw/Conv"].attrs["stride"] == (2, 2)
    assert g["/gconv/Conv"].attrs["dilation"] == (2, 2) and g["/gconv/Conv"].attrs["groups"] == 4
    # ZeroPad2d((1, 0, 0, 2)) = (left, right, top, bottom) folds into (top, left, bottom, right)
    assert g["/down/Conv"].attrs["padding"] == (0, 1, 2, 0)
    assert g["/bn1/BatchNormalization"].attrs["eps"] == pytest.approx(1e-5)
    m = onnx.load(str(FIXTURES / "convnet_op17_nofold.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    np.testing.assert_array_equal(g["/bn1/BatchNormalization"].params["var"], inits["bn1.running_var"])
    np.testing.assert_array_equal(g["/fc/Gemm"].weight, inits["fc.weight"])
    assert g.outputs == ["/fc/Gemm"] and g["x"].attrs["shape"] == (3, 16, 16)
    assert g.layer("/dw/Conv", batch=2).gemm.groups == 8


def test_actnet_patterns_and_bias_folding():
    path = FIXTURES / "actnet_op18_nofold.onnx"
    g = load_onnx(path)
    ops = [n.op for n in g]
    assert ops.count("silu") == 3 and ops.count("gelu") == 3 and ops.count("sigmoid") == 1
    assert ops.count("relu6") == 1 and ops.count("relu") == 1 and ops.count("mul") == 2
    assert "/silu/Mul" in g and g["/silu/Mul"].op == "silu"
    assert g["/gelu/Mul_1"].op == "gelu"
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    # conv1 has no bias in torch; the Add of the buffer `offset` became its bias
    np.testing.assert_allclose(g["/conv1/Conv"].bias, inits["offset"].reshape(-1))
    np.testing.assert_allclose(g["/Div"].params["value"], 0.5)
    assert g["/Reshape"].attrs["shape"] == (0, -1)


def test_attention_and_mlp_linears():
    g = load_onnx(FIXTURES / "attention_op15_fold.onnx")  # fixed batch 4, folded reshape targets
    assert [n.op for n in g].count("matmul") == 2 and [n.op for n in g].count("linear") == 5
    assert g["/Reshape"].attrs["shape"] == (0, 8, 2, 8)  # the literal batch 4 became "copy"
    assert g["/q/MatMul"].bias is not None
    mlp = load_onnx(FIXTURES / "mlp_op13_nofold.onnx")
    m = onnx.load(str(FIXTURES / "mlp_op13_nofold.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    np.testing.assert_array_equal(mlp["/MatMul"].weight, inits["W"].T)  # (in, out) -> (out, in)
    np.testing.assert_array_equal(mlp["/MatMul"].bias, inits["b"])
    assert mlp["/fc2/MatMul"].bias is None and mlp["/fc1/Gemm"].attrs["out_features"] == 64


def test_aimet_reference_model():
    g = accelsim.load_model(AIMET / "conv_dw_pw.onnx")
    for name in ("/conv1/Conv", "/dw/Conv", "/pw/Conv"):
        assert g[name].op == "conv2d"
    ref = np.load(AIMET / "conv_dw_pw_expected.npz")
    np.testing.assert_array_equal(g["/dw/Conv"].weight, ref["orig//dw/Conv/w"])
    _close(g.run(ref["x"]), ref["y_onnxruntime"])


# ----------------------------------------------------------------------------- hand-built models


def _model(nodes, inits=None, in_shape=("N", 3, 7, 7), out_name="y", opset=17, in_type=TensorProto.FLOAT):
    graph = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info("x", in_type, list(in_shape))],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    return model


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _check_vs_ort(model, x):
    g = load_onnx(model)
    _close(g.run(x), _ort(model, x))
    return g


@pytest.mark.parametrize("attrs, padding", [
    ({"pads": [1, 0, 2, 1], "strides": [2, 1], "dilations": [1, 2]}, (1, 0, 2, 1)),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (1, 1, 1, 1)),
    ({"auto_pad": "SAME_LOWER", "strides": [1, 1], "kernel_shape": [2, 2]}, None),
    ({"auto_pad": "VALID"}, (0, 0, 0, 0)),
])
def test_conv_padding_modes(attrs, padding):
    k = attrs.get("kernel_shape", [3, 3])
    w = _rand(4, 3, *k, seed=1)
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)], {"w": w})
    g = _check_vs_ort(model, _rand(2, 3, 7, 7))
    if padding is not None:
        assert g["conv"].attrs["padding"] == padding
    else:  # SAME_LOWER with an even kernel puts the extra pad first
        assert g["conv"].attrs["padding"] == (1, 1, 0, 0)


def test_gemm_alpha_beta_transb0_and_bias_folds():
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "B", "C"], ["g"], name="gemm", alpha=0.5, beta=2.0),
        helper.make_node("MatMul", ["g", "W"], ["m"], name="mm"),
        helper.make_node("Add", ["bias", "m"], ["a"], name="addb"),
        helper.make_node("Sub", ["a", "c2"], ["y"], name="subc"),
    ]
    inits = {"B": _rand(12, 5), "C": _rand(1, 5), "W": _rand(5, 4), "bias": _rand(4), "c2": _rand(1, 4)}
    g = _check_vs_ort(_model(nodes, inits, in_shape=("N", 3, 2, 2)), _rand(3, 3, 2, 2))
    np.testing.assert_allclose(g["gemm"].weight, 0.5 * inits["B"].T)
    np.testing.assert_allclose(g["mm"].bias, inits["bias"] - inits["c2"][0])
    assert [n.op for n in g] == ["input", "flatten", "linear", "linear"]


def test_gelu_op_opset20_and_its_tanh_form():
    model = _model([helper.make_node("Gelu", ["x"], ["y"], name="g")], opset=20)
    x = _rand(2, 3, 7, 7) * 3
    g = load_onnx(model)
    assert g["g"].op == "gelu"
    try:
        ref = _ort(model, x)
    except Exception:  # an onnxruntime without opset 20
        import math

        ref = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    _close(g.run(x), ref)
    tanh = _model([helper.make_node("Gelu", ["x"], ["y"], name="gt", approximate="tanh")], opset=20)
    with pytest.raises(GraphError, match="gt.*tanh"):
        load_onnx(tanh)


def test_pad_folds_into_avgpool_and_sum_of_three():
    nodes = [
        helper.make_node("Pad", ["x", "pads", "zero"], ["p"], name="pad"),
        helper.make_node("AveragePool", ["p"], ["a"], name="avg", kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("AveragePool", ["x"], ["b"], name="avg2", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["x"], ["c"], name="maxp", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Sum", ["a", "b", "c"], ["y"], name="sum3"),
    ]
    # ONNX pads [N, C, H, W begins, N, C, H, W ends]: top 0, left 1, bottom 2, right 2
    inits = {"pads": np.array([0, 0, 0, 1, 0, 0, 2, 2], np.int64), "zero": np.array(0.0, np.float32)}
    g = _check_vs_ort(_model(nodes, inits), _rand(2, 3, 7, 7))
    assert g["avg"].attrs["padding"] == (0, 1, 2, 2) and g["avg"].attrs["count_include_pad"]
    assert not g["avg2"].attrs["count_include_pad"]  # the ONNX default
    assert g["sum3"].op == "add" and len(g["sum3"].inputs) == 3


def test_identity_dropout_are_bypassed_and_clip_min_only_is_relu():
    nodes = [
        helper.make_node("Identity", ["x"], ["i"], name="id"),
        helper.make_node("Clip", ["i", "lo"], ["c"], name="clip"),
        helper.make_node("Dropout", ["c"], ["d"], name="drop"),
        helper.make_node("Identity", ["d"], ["y"], name="id2"),
    ]
    g = _check_vs_ort(_model(nodes, {"lo": np.array(0.0, np.float32)}), _rand(2, 3, 7, 7))
    assert [n.op for n in g] == ["input", "relu"] and g.outputs == ["clip"]


def _error(nodes, inits=None, **kw):
    with pytest.raises(GraphError) as err:
        load_onnx(_model(nodes, inits, **kw))
    return str(err.value)


def test_unsupported_op_names_the_op_and_the_node():
    msg = _error([helper.make_node("LeakyRelu", ["x"], ["y"], name="leaky_7")])
    assert "'LeakyRelu'" in msg and "'leaky_7'" in msg


@pytest.mark.parametrize("nodes, inits, needle", [
    ([helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clipper")],
     {"lo": np.array(-1.0, np.float32), "hi": np.array(1.0, np.float32)}, "clipper.*Clip to \\[-1.0, 1.0\\]"),
    ([helper.make_node("Relu", ["x"], ["r"], name="r"), helper.make_node("Mul", ["x", "r"], ["y"], name="mul2")],
     None, "mul2.*two tensors"),
    ([helper.make_node("Relu", ["x"], ["r"], name="r"), helper.make_node("Add", ["r", "c"], ["y"], name="addc")],
     {"c": np.ones(3, np.float32)}, "addc.*'r' \\(relu\\)"),
    ([helper.make_node("Pad", ["x", "pads"], ["p"], name="padm"),
      helper.make_node("MaxPool", ["p"], ["y"], name="mp", kernel_shape=[2, 2])],
     {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}, "padm.*Conv or AveragePool"),
])
def test_rejected_constructs_say_why(nodes, inits, needle):
    import re

    assert re.search(needle, _error(nodes, inits))


def test_dynamic_non_batch_dim_needs_input_shapes():
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], in_shape=("N", 3, "H", 7))
    with pytest.raises(GraphError, match="dynamic dimension 'H' at axis 2"):
        load_onnx(model)
    g = load_onnx(model, input_shapes={"x": [3, 5, 7]})
    assert g["x"].attrs["shape"] == (3, 5, 7)


def test_missing_onnx_package_gives_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingExtraError, match="pip install"):
        load_onnx(FILES[0])


def test_bad_files():
    with pytest.raises(GraphError, match="file not found"):
        load_onnx("/nonexistent/model.onnx")


def test_load_model_dispatches_onnx():
    g = accelsim.load_model(FIXTURES / "mlp_op17_fold.onnx")
    assert g.name == "mlp_op17_fold" and g.has_params


# ----------------------------------------------------------------------------- export


ROUND_TRIP = [f for f in FILES if f.name.endswith(("op17_fold.onnx", "op18_nofold.onnx"))]


@pytest.mark.parametrize("path", ROUND_TRIP, ids=lambda p: p.stem)
@pytest.mark.parametrize("opset", [13, 17, 20])
def test_export_round_trip(path, opset, data, tmp_path):
    g = load_onnx(path)
    if opset < 17 and any(n.op == "layernorm" for n in g):
        with pytest.raises(GraphError, match="opset >= 17"):
            to_onnx(g, opset)
        return
    out = save_onnx(g, tmp_path / "m.onnx", opset=opset)
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    x = data[f"{_family(path)}/x"]
    xs = np.concatenate([x, x[:1]])  # the exported batch is dynamic
    try:
        exported = _ort(out, xs)
    except Exception as exc:  # pragma: no cover - only an onnxruntime without opset 20
        pytest.skip(f"onnxruntime cannot run opset {opset}: {exc}")
    _close(exported[: len(x)], _ort(path, x))
    again = load_onnx(out)
    assert [(n.name, n.op, n.attrs) for n in again] == [(n.name, n.op, n.attrs) for n in g]
    for a, b in zip(again, g):
        assert a.params.keys() == b.params.keys()
        for k in a.params:
            np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-6)


def test_export_writes_current_weights(data, tmp_path):
    g = load_onnx(FIXTURES / "convnet_op17_fold.onnx")
    x = data["convnet/x"]
    before = g.run(x)
    g["/conv1/Conv"].weight = g["/conv1/Conv"].weight * 1.5
    g["/fc/Gemm"].bias = g["/fc/Gemm"].bias + 1.0
    after = g.run(x)
    assert np.abs(after - before).max() > 0.5
    _close(_ort(save_onnx(g, tmp_path / "changed.onnx"), x), after)
    names = {n.name for n in to_onnx(g).graph.node}
    assert {n.name for n in g if n.op != "input"} <= names


def test_export_rejects_shape_only_graphs_and_bad_opsets():
    g = accelsim.load_model("resnet18")
    with pytest.raises(GraphError, match="no 'weight'"):
        to_onnx(g)
    with pytest.raises(GraphError, match="opset"):
        to_onnx(load_onnx(FILES[0]), opset=9)


def test_top_level_api(tmp_path):
    g = accelsim.load_onnx(FIXTURES / "poolnet_op17_fold.onnx")
    path = accelsim.save_onnx(g, tmp_path / "p.onnx", opset=18)
    assert [n.name for n in accelsim.load_onnx(path)] == [n.name for n in g]


def test_reducemean_squeeze_unsqueeze_and_fold_next_to_shape_reader():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Add", ["c", "off"], ["a"], name="add_off"),
        helper.make_node("Shape", ["c"], ["shp"], name="shape_of_c"),  # reads only the shape
        helper.make_node("ReduceMean", ["a"], ["m"], name="mean", axes=[-1, 2], keepdims=0),
        helper.make_node("Unsqueeze", ["m", "ax"], ["u"], name="unsq"),
        helper.make_node("Squeeze", ["u", "ax"], ["s"], name="sq"),
        helper.make_node("Gather", ["shp", "one"], ["ch"], name="g"),
        helper.make_node("Unsqueeze", ["ch", "zero"], ["ch1"], name="u1"),
        helper.make_node("Concat", ["minus1", "ch1"], ["tgt"], name="cat", axis=0),
        helper.make_node("Reshape", ["s", "tgt"], ["y"], name="resh"),
    ]
    inits = {"w": _rand(4, 3, 3, 3), "off": _rand(1, 4, 1, 1), "ax": np.array([1], np.int64),
             "one": np.array(1, np.int64), "zero": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    g = _check_vs_ort(_model(nodes, inits, opset=17), _rand(3, 3, 7, 7))
    np.testing.assert_allclose(g["conv"].bias, inits["off"].ravel())
    assert g["mean"].op == "globalavgpool" and g["mean/squeeze"].attrs["shape"] == (0, 4)
    assert g["unsq"].op == "reshape" and g["unsq"].attrs["shape"] == (0, 1, 4)
    assert g["resh"].attrs["shape"] == (-1, 4)
    with pytest.raises(GraphError, match="only a mean over axes"):
        load_onnx(_model([helper.make_node("ReduceMean", ["x"], ["y"], name="rm", axes=[1])]))
