"""Quantized ONNX in and out (accelsim/quant/onnx_qdq.py, onnx_qdq_export.py).

Hand-built QDQ models whose integers are known are imported and checked against the arrays
the test wrote, and executed in integers against onnxruntime running the same file (an
independent implementation); malformed files give one `error:` line naming the node."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import accelsim
from accelsim.errors import AccelsimError
from conftest import run_cli

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(12)


def ort_run(path, x, optimize=True):
    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.log_severity_level = 3
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"input": x.astype(np.float32)})[0]


def qdq_conv_model(path, *, w_dtype=np.int8, w_zp=None, per_channel=True, act_dtype=np.uint8, act_zp=7,
                   opset=17, relu=False, bias=True, scale_in=0.02, out_zp=None):
    """input (1x3x6x6) -> Q/DQ -> Conv 3x3 (4 filters, pad 1) [-> Relu] -> Q/DQ -> output.
    Returns (path, stored arrays)."""
    o, c = 4, 3
    info = np.iinfo(w_dtype)
    w_int = RNG.integers(max(info.min, -100), min(info.max, 100) + 1, size=(o, c, 3, 3)).astype(w_dtype)
    w_scale = (RNG.uniform(0.002, 0.01, size=o) if per_channel else np.array(0.005)).astype(np.float32)
    if w_zp is None:
        w_zp_arr = np.zeros(w_scale.shape, w_dtype)
    else:
        w_zp_arr = np.full(w_scale.shape, w_zp, w_dtype)
    act_info = np.iinfo(act_dtype)
    s_out = np.float32(0.05)
    z_out = act_dtype(out_zp if out_zp is not None else (act_info.min if relu else act_zp))
    b_scale = (np.float32(scale_in) * w_scale).astype(np.float32)
    b_int = RNG.integers(-2000, 2000, size=o).astype(np.int32)
    inits = [
        numpy_helper.from_array(np.array(scale_in, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(act_zp, act_dtype), "x_zp"),
        numpy_helper.from_array(w_int, "w_q"), numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(w_zp_arr, "w_zp"),
        numpy_helper.from_array(b_int, "b_q"), numpy_helper.from_array(np.broadcast_to(b_scale, (o,)).copy(), "b_scale"),
        numpy_helper.from_array(np.zeros(o, np.int32), "b_zp"),
        numpy_helper.from_array(np.array(s_out, np.float32), "y_scale"), numpy_helper.from_array(np.array(z_out), "y_zp"),
    ]
    ax = {"axis": 0} if per_channel else {}
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "x_scale", "x_zp"], ["x_q"], name="in_q"),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"], name="in_dq"),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="w_dq", **ax),
        helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zp"], ["b"], name="b_dq", axis=0),
        helper.make_node("Conv", ["x_dq", "w"] + (["b"] if bias else []), ["conv_out"], name="conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    last = "conv_out"
    if relu:
        nodes.append(helper.make_node("Relu", ["conv_out"], ["relu_out"], name="relu"))
        last = "relu_out"
    nodes += [helper.make_node("QuantizeLinear", [last, "y_scale", "y_zp"], ["y_q"], name="out_q"),
              helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"], ["output"], name="out_dq")]
    graph = helper.make_graph(nodes, "qconv", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 6, 6])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4, 6, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path, {"w_int": w_int, "w_scale": w_scale, "w_zp": w_zp_arr, "b_int": b_int, "z_out": int(z_out),
                  "s_out": float(s_out)}


def inputs(n=16):
    return RNG.normal(0, 1, size=(n, 3, 6, 6)).astype(np.float32)


def lsb_diff(a, b, lsb):
    return np.rint(np.abs(np.asarray(a, np.float64) - b) / lsb)


# ----------------------------------------------------------------------------- import


def test_qdq_import_keeps_the_stored_integers_and_matches_onnxruntime(tmp_path):
    path, st = qdq_conv_model(tmp_path / "m.onnx")
    qg = accelsim.load_model(path)
    assert isinstance(qg, accelsim.QGraph)
    lq = qg.layers["conv"]
    np.testing.assert_array_equal(lq.weight_int, st["w_int"])
    np.testing.assert_array_equal(lq.weight_q.scale, st["w_scale"].astype(np.float64))
    np.testing.assert_array_equal(lq.bias_int32, st["b_int"])
    assert lq.weight_q.per_channel and lq.weight_q.scheme == "symmetric"
    assert int(lq.input_q.zero_point) == 7 and float(lq.input_q.scale) == np.float32(0.02)
    x = inputs()
    hw = accelsim.load_hw("edge-npu-16x16")
    yi = accelsim.execute(qg, hw, x).output
    d = lsb_diff(yi, ort_run(path, x), st["s_out"])
    assert (d <= 1).mean() >= 0.999 and (d == 0).mean() > 0.95


def test_signed_asymmetric_activations_move_onto_the_unsigned_grid_with_the_same_values(tmp_path):
    path, st = qdq_conv_model(tmp_path / "m.onnx", act_dtype=np.int8, act_zp=-20, out_zp=5)
    qg = accelsim.load_model(path)
    q_in = qg.activations["input"]
    assert (q_in.qmin, q_in.qmax, int(q_in.zero_point)) == (0, 255, 108)
    codes = np.arange(-128, 128)  # every stored code: the same value on accelsim's grid
    np.testing.assert_allclose(q_in.dequantize(codes + 128), (codes - (-20)) * np.float32(0.02), rtol=1e-6)
    x = inputs()
    yi = accelsim.execute(qg, accelsim.load_hw("edge-npu-16x16"), x).output
    assert (lsb_diff(yi, ort_run(path, x), st["s_out"]) <= 1).mean() >= 0.999


def test_relu_folded_into_the_grid_is_restored_in_the_float_reference(tmp_path):
    # no Relu node, but the output grid starts at 0 (zero-point at qmin): onnxruntime's quantizer's form
    path, st = qdq_conv_model(tmp_path / "m.onnx", act_dtype=np.int8, out_zp=-128)
    qg = accelsim.load_model(path)
    assert qg.info["restored_activations"]
    x = inputs()
    assert qg.float_graph.run(x).min() >= 0  # the float model has its ReLU back
    yi = accelsim.execute(qg, accelsim.load_hw("edge-npu-16x16"), x).output
    assert (lsb_diff(yi, ort_run(path, x), st["s_out"]) <= 1).mean() >= 0.999


def test_asymmetric_weights_need_an_asymmetric_datapath_or_the_nearest_format(tmp_path):
    from accelsim.quant.onnx_qdq import QdqImportWarning, fit_to_hw

    path, st = qdq_conv_model(tmp_path / "m.onnx", w_zp=3, per_channel=False)
    qg = accelsim.load_model(path)
    lq = qg.layers["conv"]
    assert lq.weight_q.scheme == "asymmetric"
    # the stored values, however they are encoded
    np.testing.assert_allclose(lq.weight_dequant, (st["w_int"].astype(np.int64) - 3) * st["w_scale"], rtol=1e-6)
    sym = accelsim.load_hw("edge-npu-16x16")
    with pytest.raises(AccelsimError, match=r"layer 'conv': asymmetric weights on a symmetric datapath"):
        fit_to_hw(qg, sym)
    with pytest.warns(QdqImportWarning, match="re-quantized conv"):
        near = fit_to_hw(qg, sym, nearest=True)
    assert near.layers["conv"].weight_q.scheme == "symmetric"
    accelsim.execute(near, sym, inputs(2))
    asym = sym.replace("quantization.weight_scheme", "asymmetric")
    assert fit_to_hw(qg, asym) is qg
    x = inputs()
    yi = accelsim.execute(qg, asym, x).output
    assert (lsb_diff(yi, ort_run(path, x), st["s_out"]) <= 1).mean() >= 0.999
    # priced at what it uses: asymmetric weights cost zero-point work the symmetric variant does not
    assert accelsim.simulate(qg, asym).summary["total_cycles"] > accelsim.simulate(near, asym).summary["total_cycles"]


def test_uint8_per_tensor_weights(tmp_path):
    path, st = qdq_conv_model(tmp_path / "m.onnx", w_dtype=np.uint8, w_zp=128, per_channel=False)
    qg = accelsim.load_model(path)
    assert not qg.layers["conv"].weight_q.per_channel
    asym = accelsim.load_hw("edge-npu-16x16").replace("quantization.weight_scheme", "asymmetric")
    x = inputs()
    yi = accelsim.execute(qg, asym, x).output
    assert (lsb_diff(yi, ort_run(path, x), st["s_out"]) <= 1).mean() >= 0.999


def test_16_bit_activations_on_an_8_bit_datapath(tmp_path):
    from accelsim.quant.onnx_qdq import QdqImportWarning, fit_to_hw

    path, st = qdq_conv_model(tmp_path / "m.onnx", act_dtype=np.uint16, act_zp=30000, opset=21)
    qg = accelsim.load_model(path)
    assert qg.activations["input"].bits == 16
    hw8 = accelsim.load_hw("edge-npu-16x16")
    with pytest.raises(AccelsimError, match=r"site 'input': 16-bit activations on a 8-bit datapath"):
        fit_to_hw(qg, hw8)
    with pytest.warns(QdqImportWarning):
        near = fit_to_hw(qg, hw8, nearest=True)
    assert max(q.bits for q in near.activations.values()) == 8
    hw16 = hw8.replace("precision.activation_bits", 16)
    x = inputs()
    yi = accelsim.execute(qg, hw16, x).output
    assert (lsb_diff(yi, ort_run(path, x), st["s_out"]) <= 1).mean() >= 0.999
    # the cost model prices the 16-bit operands it executes
    r16 = accelsim.simulate(qg, hw16).layers
    assert int(r16["activation_bits"].iloc[0]) == 16



def _quantize_static(src, out, xs, fmt: str) -> None:
    """onnxruntime's static quantizer (per-channel weights, `fmt` QDQ or QOperator), calibrated on xs."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": xs[i:i + 1]} for i in range(len(xs))])

        def get_next(self):
            return next(self.it, None)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(str(src), str(out), Reader(), quant_format=getattr(QuantFormat, fmt), per_channel=True)


def test_qoperator_form_loads_and_agrees_with_onnxruntime(tmp_path):
    fp = tmp_path / "f.onnx"
    # a float conv -> relu -> conv model to quantize
    w1 = RNG.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    w2 = RNG.normal(0, 0.3, (2, 4, 1, 1)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["input", "w1"], ["a"], name="c1", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["a"], ["r"], name="r1"),
         helper.make_node("Conv", ["r", "w2"], ["output"], name="c2")],
        "f", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2, 6, 6])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(fp))
    xs = inputs(32)
    out = tmp_path / "q.onnx"
    _quantize_static(fp, out, xs, "QOperator")
    assert any(n.op_type == "QLinearConv" for n in onnx.load(str(out)).graph.node)
    qg = accelsim.load_model(out)
    assert set(qg.layers) == {"c1_quant", "c2_quant"}
    lsb = float(qg.activations[qg.graph.outputs[0]].scale)
    x = xs[:1]
    yi = accelsim.execute(qg, accelsim.load_hw("edge-npu-16x16"), xs).output
    assert (lsb_diff(yi, np.concatenate([ort_run(out, xs[i:i + 1]) for i in range(len(xs))]), lsb) <= 1).mean() >= 0.999
    assert x.shape == (1, 3, 6, 6)


def test_a_float_model_still_loads_as_a_graph():
    g = accelsim.load_model("tiny_resnet")
    assert not isinstance(g, accelsim.QGraph)


# ----------------------------------------------------------------------------- export


def test_export_round_trip_reimports_to_the_same_integers(tmp_path):
    hw = accelsim.load_hw("edge-npu-16x16")
    qg = accelsim.quantize(accelsim.load_model("tiny_vgg"), "dfq", hw=hw)
    path = qg.save_onnx(tmp_path / "vgg.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    back = accelsim.load_model(path)
    assert isinstance(back, accelsim.QGraph) and set(back.layers) == set(qg.layers)
    for name, lq in qg.layers.items():
        np.testing.assert_array_equal(back.layers[name].weight_int, lq.weight_int)
        np.testing.assert_array_equal(back.layers[name].bias_int32, lq.bias_int32)
    x, _ = accelsim.load_dataset("mnist5k").split("test")
    x = x[:200]
    a = accelsim.execute(qg, hw, x).output_codes
    b = accelsim.execute(back, hw, x).output_codes  # scales went through float32 in the file
    assert (np.abs(a.astype(int) - b) <= 1).all() and (a == b).mean() >= 0.999


@pytest.mark.parametrize("bits", [6, 4])
def test_narrow_grids_get_the_clamp_of_their_bits(tmp_path, bits):
    hw = accelsim.load_hw("edge-npu-16x16")
    qg = accelsim.quantize(accelsim.load_model("tiny_resnet"), {"method": "naive", "activation_bits": bits,
                                                                 "weight_bits": bits}, hw=hw)
    path = qg.save_onnx(tmp_path / "r.onnx")
    assert any(n.op_type == "Clip" and n.name.endswith("/Clip") for n in onnx.load(str(path)).graph.node)
    x, _ = accelsim.load_dataset("mnist5k").split("test")
    x = x[:200]
    lsb = float(qg.activations[qg.graph.outputs[0]].scale)
    yi = accelsim.execute(qg, hw, x).output
    for optimize in (True, False):
        assert (lsb_diff(yi, ort_run(path, x, optimize), lsb) <= 1).mean() >= 0.999


def test_powerquant_exports_as_pow_nodes_that_onnxruntime_runs_like_the_fake_quant_reference(tmp_path):
    hw = accelsim.load_hw("edge-npu-16x16").replace("quantization.power_unit", "lut")
    qg = accelsim.quantize(accelsim.load_model("tiny_vgg"), "powerquant", hw=hw)
    path = qg.save_onnx(tmp_path / "pq.onnx")
    model = onnx.load(str(path))
    assert all(o.domain in ("", "ai.onnx") for o in model.opset_import)  # no custom domain
    assert sum(n.op_type == "Pow" for n in model.graph.node) >= 2 * len(qg.activations)
    x, _ = accelsim.load_dataset("mnist5k").split("test")
    x = x[:200]
    grid = qg.activations[qg.graph.outputs[0]]  # a power-domain grid: compare codes
    d = np.abs(grid.quantize(qg.run(x)).astype(int) - grid.quantize(ort_run(path, x, optimize=False)))
    assert (d <= 1).mean() >= 0.999


def test_quantize_cli_writes_qdq_onnx(tmp_path):
    out = tmp_path / "m.onnx"
    status, _, err = run(["quantize", "tiny_resnet", "--recipe", "per_channel", "--out", out], tmp_path)
    assert status == 0, err
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    x, _ = accelsim.load_dataset("mnist5k").split("test")
    assert ort_run(out, x[:4]).shape == (4, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


# ----------------------------------------------------------------------------- malformed


run = run_cli  # accelsim ARGV in-process from a folder: (status, stdout, stderr)


def _edit(path, fn):
    m = onnx.load(str(path))
    fn(m)
    onnx.save(m, str(path))


def _drop_scale(m):
    n = next(n for n in m.graph.node if n.name == "w_dq")
    del n.input[1:]


def _bad_zero_point(m):
    init = next(i for i in m.graph.initializer if i.name == "w_zp")
    init.CopyFrom(numpy_helper.from_array(np.zeros(3, np.int8), "w_zp"))


def _unsupported_op(m):
    n = next(n for n in m.graph.node if n.name == "in_dq")
    i = list(m.graph.node).index(n)
    sig = helper.make_node("QLinearSigmoid", ["x_q", "x_scale", "x_zp", "x_scale", "x_zp"], ["x_sig"],
                           name="sigmoid_q", domain="com.microsoft")
    m.graph.node.insert(i, sig)
    n.input[0] = "x_sig"
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def _unquantized_site(m):  # the conv output goes straight to the model output
    keep = [n for n in m.graph.node if n.name not in ("out_q", "out_dq")]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    m.graph.output[0].name = "conv_out"


@pytest.mark.parametrize("edit, pattern", [
    (_drop_scale, r"node 'w_dq' \(DequantizeLinear\): no scale"),
    (_bad_zero_point, r"node 'w_dq' \(DequantizeLinear\): zero-point shape \(3,\) does not match scale shape \(4,\)"),
    (_unsupported_op, r"node 'sigmoid_q' \(QLinearSigmoid\): this quantized op has no integer form"),
    (_unquantized_site, r"layer 'conv' \(conv2d\): .*does not quantize it"),
])
@pytest.mark.parametrize("command", ["run", "simulate"])
def test_malformed_qdq_models_are_one_error_line_naming_the_node(tmp_path, edit, pattern, command):
    path, _ = qdq_conv_model(tmp_path / "bad.onnx")
    _edit(path, edit)
    argv = ["run", "--model", path, "--no-report", "--limit", "4"] if command == "run" else ["simulate", path]
    before = {p.name for p in tmp_path.iterdir()}
    status, _, err = run(argv, tmp_path)
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), err
    assert re.search(pattern, lines[0]), lines[0]
    assert {p.name for p in tmp_path.iterdir()} == before


def test_unrunnable_format_names_the_layer_and_the_flag(tmp_path):
    path, _ = qdq_conv_model(tmp_path / "asym.onnx", w_zp=3, per_channel=False)
    status, _, err = run(["simulate", path], tmp_path)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "layer 'conv'" in lines[0] and "--nearest-format" in lines[0], err
    status, out, err = run(["simulate", path, "--nearest-format"], tmp_path)
    assert status == 0, err
    assert err.startswith("warning: ") and "re-quantized conv" in err


@pytest.mark.parametrize("fmt", ["QOperator", "QDQ"])
def test_concat_models_from_quantize_static_agree_with_onnxruntime(fmt, tmp_path):
    w = [RNG.normal(0, 0.3, s).astype(np.float32) for s in ((4, 3, 3, 3), (4, 3, 1, 1), (2, 8, 1, 1))]
    g = helper.make_graph(
        [helper.make_node("Conv", ["input", "w1"], ["a"], name="c1", pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["input", "w2"], ["b"], name="c2"),
         helper.make_node("Concat", ["a", "b"], ["c"], name="cat", axis=1),
         helper.make_node("Conv", ["c", "w3"], ["output"], name="c3")], "f",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2, 6, 6])],
        [numpy_helper.from_array(v, f"w{i + 1}") for i, v in enumerate(w)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "f.onnx"))
    xs = inputs(32)
    out = tmp_path / "q.onnx"
    _quantize_static(tmp_path / "f.onnx", out, xs, fmt)
    if fmt == "QOperator":
        assert any(n.op_type == "QLinearConcat" for n in onnx.load(str(out)).graph.node)
    qg = accelsim.load_model(out)
    lsb = float(qg.activations[qg.graph.outputs[0]].scale)
    yi = accelsim.execute(qg, accelsim.load_hw("edge-npu-16x16"), xs).output
    yo = np.concatenate([ort_run(out, xs[i:i + 1]) for i in range(len(xs))])
    assert (lsb_diff(yi, yo, lsb) <= 1).mean() >= 0.999


def test_an_imported_model_saves_as_npz_and_loads_back_with_the_same_integers(tmp_path):
    path, _ = qdq_conv_model(tmp_path / "m.onnx", act_dtype=np.int8, act_zp=-20, out_zp=5)
    qg = accelsim.load_model(path)
    back = accelsim.load_qgraph(qg.save(tmp_path / "m.npz"))
    hw = accelsim.load_hw("edge-npu-16x16")
    x = inputs()
    np.testing.assert_array_equal(accelsim.execute(back, hw, x).output_codes, accelsim.execute(qg, hw, x).output_codes)


def test_conv_integer_after_a_static_quantizer_loads_and_agrees_with_onnxruntime(tmp_path):
    w_int = RNG.integers(0, 256, size=(4, 3, 3, 3)).astype(np.uint8)
    s_x, z_x, s_w, z_w = np.float32(0.02), np.uint8(100), np.float32(0.004), np.uint8(128)
    inits = [numpy_helper.from_array(np.array(s_x), "x_scale"), numpy_helper.from_array(np.array(z_x), "x_zp"),
             numpy_helper.from_array(w_int, "w_q"), numpy_helper.from_array(np.array(z_w), "w_zp"),
             numpy_helper.from_array(np.array(s_x * s_w, np.float32), "s_xw"),
             numpy_helper.from_array(np.array(0.05, np.float32), "y_scale"),
             numpy_helper.from_array(np.array(120, np.uint8), "y_zp")]
    nodes = [helper.make_node("QuantizeLinear", ["input", "x_scale", "x_zp"], ["x_q"], name="in_q"),
             helper.make_node("ConvInteger", ["x_q", "w_q", "x_zp", "w_zp"], ["acc"], name="convi", pads=[1, 1, 1, 1]),
             helper.make_node("Cast", ["acc"], ["acc_f"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Mul", ["acc_f", "s_xw"], ["conv_out"], name="rescale"),
             helper.make_node("QuantizeLinear", ["conv_out", "y_scale", "y_zp"], ["y_q"], name="out_q"),
             helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"], ["output"], name="out_dq")]
    g = helper.make_graph(nodes, "ci", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 6, 6])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4, 6, 6])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "ci.onnx"
    onnx.save(m, str(path))
    qg = accelsim.load_model(path)
    lq = qg.layers["convi"]
    np.testing.assert_allclose(float(lq.weight_q.scale), s_w, rtol=1e-6)  # s_w = (s_x s_w) / s_x
    assert lq.weight_q.scheme == "asymmetric" and int(lq.weight_q.zero_point) == 128
    hw = accelsim.load_hw("edge-npu-16x16").replace("quantization.weight_scheme", "asymmetric")
    x = inputs()
    yi = accelsim.execute(qg, hw, x).output
    assert (lsb_diff(yi, ort_run(path, x), 0.05) <= 1).mean() >= 0.999


def test_run_takes_a_qdq_file_and_the_nearest_format_flag(tmp_path):
    path, _ = qdq_conv_model(tmp_path / "asym.onnx", w_zp=3, per_channel=False)
    data = tmp_path / "d.npz"
    np.savez(data, x=inputs(8), y=np.arange(8) % 4)
    status, _, err = run(["run", "--model", path, "--data", data, "--no-report"], tmp_path)
    assert status == 2 and "layer 'conv'" in err and "--nearest-format" in err, err
    status, out, err = run(["run", "--model", path, "--data", data, "--no-report", "--nearest-format",
                            "--format", "json"], tmp_path)
    assert status == 0, err
    assert "re-quantized conv" in err
    import json

    assert json.loads(out)["totals"]["images"] == 8


def test_describe_and_evaluate_take_a_qdq_file(tmp_path):
    path, _ = qdq_conv_model(tmp_path / "m.onnx")
    status, out, err = run(["describe", path, "--format", "csv"], tmp_path)
    assert status == 0, err
    assert "conv" in out and "conv2d" in out
    data = tmp_path / "d.npz"
    x = inputs(8)
    qg = accelsim.load_model(path)
    y = qg.run(x).reshape(8, -1).argmax(1) % 4  # labels the fake-quant reference gets partly right
    np.savez(data, x=x, y=y)
    status, out, err = run(["evaluate", path, "--data", data, "--format", "json"], tmp_path)
    assert status == 0, err
    import json

    want = float((ort_run(path, x).reshape(8, -1).argmax(1) == y).mean())  # onnxruntime on the same file
    assert json.loads(out)["totals"]["top1"] == pytest.approx(want)


def test_matmul_integer_after_a_static_quantizer_loads_and_agrees_with_onnxruntime(tmp_path):
    w_int = RNG.integers(0, 256, size=(8, 5)).astype(np.uint8)  # MatMul layout (in, out)
    s_x, s_w = np.float32(0.03), np.float32(0.006)
    inits = [numpy_helper.from_array(np.array(s_x), "x_scale"), numpy_helper.from_array(np.array(90, np.uint8), "x_zp"),
             numpy_helper.from_array(w_int, "w_q"), numpy_helper.from_array(np.array(120, np.uint8), "w_zp"),
             numpy_helper.from_array(np.array(s_x * s_w, np.float32), "s_xw"),
             numpy_helper.from_array(np.array(0.1, np.float32), "y_scale"),
             numpy_helper.from_array(np.array(128, np.uint8), "y_zp")]
    nodes = [helper.make_node("QuantizeLinear", ["input", "x_scale", "x_zp"], ["x_q"], name="in_q"),
             helper.make_node("MatMulInteger", ["x_q", "w_q", "x_zp", "w_zp"], ["acc"], name="mmi"),
             helper.make_node("Cast", ["acc"], ["acc_f"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Mul", ["acc_f", "s_xw"], ["mm_out"], name="rescale"),
             helper.make_node("QuantizeLinear", ["mm_out", "y_scale", "y_zp"], ["y_q"], name="out_q"),
             helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"], ["output"], name="out_dq")]
    g = helper.make_graph(nodes, "mmi", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 8])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 5])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "mmi.onnx"
    onnx.save(m, str(path))
    qg = accelsim.load_model(path)
    lq = qg.layers["mmi"]
    np.testing.assert_array_equal(lq.weight_int, w_int.T)  # accelsim keeps linear weights (out, in)
    hw = accelsim.load_hw("edge-npu-16x16").replace("quantization.weight_scheme", "asymmetric")
    x = RNG.normal(0, 1, (64, 8)).astype(np.float32)
    yi = accelsim.execute(qg, hw, x).output
    assert (lsb_diff(yi, ort_run(path, x), 0.1) <= 1).mean() >= 0.999


def test_float_weights_quantized_in_the_graph_load_as_the_codes_the_runtime_computes(tmp_path):
    # NNCF / ModelOpt / torch fake-quant exports: QuantizeLinear on a float weight, then DequantizeLinear
    path, st = qdq_conv_model(tmp_path / "m.onnx")
    m = onnx.load(str(path))
    st["w_scale"][0] = 2.0**-8  # a power of two, so that 2.5 scale is an exact tie
    scale_init = next(i for i in m.graph.initializer if i.name == "w_scale")
    scale_init.CopyFrom(numpy_helper.from_array(st["w_scale"], "w_scale"))
    w_float = (st["w_int"].astype(np.float64) + RNG.uniform(-0.5, 0.5, st["w_int"].shape)) \
        * st["w_scale"].reshape(-1, 1, 1, 1)
    w_float[0, 0, 0, 0] = 2.5 * 2.0**-8  # a tie: ONNX rounds it half to even (2), accelsim's rule would give 3
    init = next(i for i in m.graph.initializer if i.name == "w_q")
    init.CopyFrom(numpy_helper.from_array(w_float.astype(np.float32), "w_float"))
    m.graph.node.insert(0, helper.make_node("QuantizeLinear", ["w_float", "w_scale", "w_zp"], ["w_q"], name="w_quant",
                                            axis=0))
    onnx.save(m, str(path))
    qg = accelsim.load_model(path)
    want = np.clip(np.rint(w_float.astype(np.float32) / st["w_scale"].reshape(-1, 1, 1, 1)), -128, 127)
    np.testing.assert_array_equal(qg.layers["conv"].weight_int, want)
    assert qg.layers["conv"].weight_int[0, 0, 0, 0] == 2
    x = inputs()
    yi = accelsim.execute(qg, accelsim.load_hw("edge-npu-16x16"), x).output
    assert (lsb_diff(yi, ort_run(path, x), st["s_out"]) <= 1).mean() >= 0.999
