"""The malformed-input corpus (issue 13): every input a user can hand accelsim gets one clear
error line `error: <file>: <field>: ...`, exit status 2, no traceback, nothing left on disk.

Most cases call `accelsim.cli.main` in-process (an exception escaping it fails the test, so
"no traceback" is checked); a few run the real command in a subprocess. Peak memory and time
of the alias bomb and of the huge-header .npz are measured in a subprocess (marked slow).
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import accelsim
from accelsim.errors import AccelsimError
from conftest import run_cli

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

GOOD_LAYERS = "layers:\n  - {name: c1, op: conv2d, out_channels: 4, kernel: 3}\n  - {name: r1, op: relu}\n"
HEAD = "name: net\ninputs: [{name: input, shape: [3, 8, 8]}]\n"


run = run_cli  # accelsim ARGV in-process from a folder: (status, stdout, stderr)


def assert_clean(status, err, file: str, field: str | None, before: set, cwd: Path):
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: "), line
    assert len(line) < 600, line
    if file:
        assert f"error: {file}: " in line or f"error: {file} " in line, line
    if field:
        assert re.search(field, line), (field, line)
    assert "expected" in line, line
    after = {p.name for p in cwd.iterdir()}
    assert after == before, after - before  # nothing left on disk


def _write(tmp: Path, name: str, content) -> Path:
    p = tmp / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p


# ----------------------------------------------------------------------------- graph YAML

BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))

GRAPH_CASES = [
    ("duplicate key", HEAD + "name: other\n" + GOOD_LAYERS, r"line 3, column 1: .*duplicate key 'name'"),
    ("duplicate layer key", HEAD + "layers:\n  - {name: c, op: conv2d, out_channels: 4, out_channels: 8, kernel: 3}\n",
     r"line \d+, column \d+: .*duplicate key 'out_channels'"),
    ("alias bomb", BOMB, r"line \d+, column \d+: expected valid YAML; found a document that expands"),
    ("recursive alias", "name: &n [*n]\n", "recursive alias"),
    ("control character", 'name: "net\\x1b[31m"\n' + HEAD[10:] + GOOD_LAYERS, r"line 1, column 7: .*control character"),
    ("zero channels", HEAD + "layers:\n  - {name: c, op: conv2d, out_channels: 0, kernel: 3}\n",
     r"layer 'c'\.out_channels: expected a positive integer.*found the integer 0"),
    ("float kernel", HEAD + "layers:\n  - {name: c, op: conv2d, out_channels: 4, kernel: 2.5}\n",
     r"layer 'c'\.kernel: expected .*found the float 2\.5"),
    ("string stride", HEAD + "layers:\n  - {name: c, op: conv2d, out_channels: 4, kernel: 3, stride: two}\n",
     r"layer 'c'\.stride: expected .*found the string 'two'"),
    ("absurd channels", HEAD + "layers:\n  - {name: c, op: conv2d, out_channels: 99999999999999, kernel: 3}\n",
     r"layer 'c'\.out_channels: expected a positive integer \(at most"),
    ("MACs beyond 2^53", "name: n\ninputs: [{name: input, shape: [4096, 100000, 100000]}]\n"
     "layers:\n  - {name: c, op: conv2d, out_channels: 4096, kernel: 3, padding: 1}\n", r"layer 'c'.*expected at most"),
    ("input shape zero", "name: n\ninputs: [{name: input, shape: [3, 0, 8]}]\n" + GOOD_LAYERS, r"layer 'input'\.shape: expected"),
    ("inputs not a list", "name: n\ninputs: {name: input, shape: [3, 8, 8]}\n" + GOOD_LAYERS, r"inputs: expected a list; found a mapping"),
    ("layer inputs a mapping", HEAD + "layers:\n  - {name: r, op: relu, inputs: {a: 1}}\n", r"layer 'r'\.inputs: expected a list of layer names"),
    ("undefined reference", HEAD + "layers:\n  - {name: r, op: relu, inputs: [nowhere]}\n",
     r"layer 'r'\.inputs\[0\]: expected the name of a layer defined before it; found 'nowhere'"),
    ("outputs unknown", HEAD + GOOD_LAYERS + "outputs: [fc]\n", r"outputs\[0\]: expected the name of a layer; found 'fc'"),
    ("outputs a string list of lists", HEAD + GOOD_LAYERS + "outputs: [[c1]]\n", r"outputs\[0\]: expected a name"),
    ("name a list", "name: [a, b]\n" + HEAD[10:] + GOOD_LAYERS, r"name: expected a name"),
    ("op a list", HEAD + "layers:\n  - {name: c, op: [conv2d]}\n", r"layer 'c'\.op: expected an op name; found a list"),
    ("unknown attribute", HEAD + "layers:\n  - {name: c, op: conv2d, out_channels: 4, kernel: 3, strides: 2}\n",
     r"layer 'c'\.strides: expected an attribute of op 'conv2d'"),
    ("missing attribute", HEAD + "layers:\n  - {name: c, op: conv2d, kernel: 3}\n", r"layer 'c'\.out_channels: expected out_channels"),
    ("huge int literal", HEAD + "layers:\n  - {name: c, op: conv2d, out_channels: " + "9" * 5000 + ", kernel: 3}\n",
     r"line 4, column \d+: expected valid YAML; found an integer literal"),
    ("deep nesting", "name: " + "[" * 300 + "]" * 300 + "\n", r"line 1, column \d+: .*nesting deeper"),
    ("duplicate layer name", HEAD + "layers:\n  - {name: c, op: relu}\n  - {name: c, op: relu}\n",
     r"layers\[1\] \('c'\): expected a unique layer name"),
    ("empty document", "", r"\(top level\): expected a mapping"),
    ("a list document", "- 1\n- 2\n", r"\(top level\): expected a mapping .* found a list of 2 items"),
    ("kernel larger than input", HEAD + "layers:\n  - {name: c, op: conv2d, out_channels: 4, kernel: 9}\n", r"layer 'c' \(conv2d\)"),
    ("eps negative", HEAD + "layers:\n  - {name: b, op: batchnorm, eps: -1}\n", r"layer 'b'\.eps: expected a positive finite number"),
    ("binary file", b"\x00\x01\x02\xff\xfe", r"expected a UTF-8 text file|expected a text file"),
]


@pytest.mark.parametrize("content, field", [c[1:] for c in GRAPH_CASES], ids=[c[0] for c in GRAPH_CASES])
def test_graph_yaml(tmp_path, content, field):
    path = _write(tmp_path, "net.yaml", content)
    before = {p.name for p in tmp_path.iterdir()}
    status, _, err = run(["describe", path], tmp_path)
    assert_clean(status, err, str(path), field, before, tmp_path)


def test_graph_yaml_floats_in_1_2_form_and_good_graph_load(tmp_path):
    path = _write(tmp_path, "net.yaml", HEAD + "layers:\n  - {name: b, op: batchnorm, eps: 1e-3}\n  - {name: c, op: conv2d, out_channels: 4, kernel: 3}\n")
    g = accelsim.load_model(path)
    assert g["b"].attrs["eps"] == 1e-3


# ----------------------------------------------------------------------------- recipes

RECIPE_CASES = [
    ("method a list", "method: [dfq]\n", r"method: expected one of .*found a list of 1 item"),
    ("method a mapping", "method: {a: 1}\n", r"method: expected one of .*found a mapping"),
    ("method unknown", "method: dfqq\n", r"method: expected one of .*did you mean 'dfq'"),
    ("method missing", "weight_bits: 4\n", r"method: expected one of .*\(required\)"),
    ("weight bits string", "method: dfq\nweight_bits: four\n", r"weight_bits: expected an integer from"),
    ("weight bits float", "method: dfq\nweight_bits: 4.5\n", r"weight_bits: expected an integer from .*float 4\.5"),
    ("weight bits huge", "method: dfq\nweight_bits: 99999999999999999999999\n", r"weight_bits: expected an integer from .*beyond int64"),
    ("weight bits bool", "method: dfq\nweight_bits: true\n", r"weight_bits: expected an integer .*boolean true"),
    ("scheme a list", "method: naive\nweight_scheme: [symmetric]\n", r"weight_scheme: expected one of"),
    ("granularity mapping", "method: naive\nweight_granularity: {a: b}\n", r"weight_granularity: expected one of"),
    ("range list", "method: naive\nweight_range: [mse]\n", r"weight_range: expected one of"),
    ("bn_range_n string", "method: dfq\nbn_range_n: six\n", r"bn_range_n: expected a positive finite number"),
    ("bn_range_n inf", "method: dfq\nbn_range_n: .inf\n", r"bn_range_n: expected a positive finite number"),
    ("input_range three", "method: dfq\ninput_range: [0, 1, 2]\n", r"input_range: expected \[lo, hi\]"),
    ("input_range reversed", "method: dfq\ninput_range: [1, 0]\n", r"input_range: expected \[lo, hi\]"),
    ("steps a list", "method: dfq\nsteps: [equalize]\n", r"steps: expected a mapping"),
    ("step value string", "method: dfq\nsteps: {equalize: yes please}\n", r"steps\.equalize: expected true or false"),
    ("step unknown", "method: dfq\nsteps: {equalise: true}\n", r"steps\.equalise: "),
    ("bias correction list", "method: dfq\nsteps: {bias_correction: [analytic]}\n", r"steps\.bias_correction: expected one of"),
    ("unknown field", "method: dfq\nweight_bitz: 4\n", r"weight_bitz: expected one of the fields"),
    ("duplicate key", "method: dfq\nmethod: naive\n", r"line 2, column 1: .*duplicate key 'method'"),
    ("document a list", "- dfq\n", r"\(top level\): expected a mapping of recipe fields"),
    ("power exponent list", "method: dfq\npower_exponent: [1]\n", r"power_exponent: expected auto or a number"),
    ("alias bomb", BOMB, r"line \d+, column \d+: .*expands"),
]


@pytest.mark.parametrize("content, field", [c[1:] for c in RECIPE_CASES], ids=[c[0] for c in RECIPE_CASES])
def test_recipe_yaml(tmp_path, content, field):
    path = _write(tmp_path, "r.yaml", content)
    before = {p.name for p in tmp_path.iterdir()}
    status, _, err = run(["quantize", "tiny_resnet", "--recipe", path, "--out", tmp_path / "q.npz"], tmp_path)
    assert_clean(status, err, str(path), field, before, tmp_path)


def test_recipe_accepts_numpy_numbers():
    from accelsim.quant.recipe import load_recipe

    hw = accelsim.load_hw("edge-npu-16x16")
    r = load_recipe({"method": "dfq", "weight_bits": np.int64(6), "activation_bits": np.int32(8),
                     "bn_range_n": np.float32(5.0), "input_range": np.array([-1.0, 2.0])}, hw)
    assert (r.weight_bits, r.activation_bits, r.bn_range_n, r.input_range) == (6, 8, 5.0, (-1.0, 2.0))
    assert type(r.weight_bits) is int


# ----------------------------------------------------------------------------- ONNX


def _model(nodes, inits=(), shape=(1, 3, 8, 8), opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _w(name="w", shape=(4, 3, 3, 3)):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def _truncated():
    t = _w()
    t.raw_data = t.raw_data[:10]
    return t


def _mistyped():
    t = _w()
    t.data_type = TensorProto.STRING
    return t


def _external(location):
    t = _w()
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "432")):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def _conv(**attrs):
    return helper.make_node("Conv", ["x", "w"], ["y"], name="conv1", **attrs)


ONNX_CASES = [
    ("conv one input", lambda: _model([helper.make_node("Conv", ["x"], ["y"], name="conv1")]), r"node 'conv1' \(Conv\): expected a valid Conv node.*input size 1"),
    ("concat no axis", lambda: _model([helper.make_node("Concat", ["x", "x"], ["y"], name="cat")]), r"node 'cat' \(Concat\): .*Required attribute 'axis'"),
    ("maxpool no kernel", lambda: _model([helper.make_node("MaxPool", ["x"], ["y"], name="mp")]), r"node 'mp' \(MaxPool\): .*kernel_shape"),
    ("attribute mistyped", lambda: _model([helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=1.5)]), r"node 'cat' \(Concat\): .*Mismatched attribute type"),
    ("unknown attribute", lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="r", alpha=1.0)]), r"node 'r' \(Relu\): .*Unrecognized attribute"),
    ("concat axis beyond rank", lambda: _model([helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=9)]), r"node 'cat' \(Concat\): axis: expected an axis in -4\.\.3"),
    ("softmax axis beyond rank", lambda: _model([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=-7)]), r"node 'sm' \(Softmax\): axis: expected an axis"),
    ("flatten axis beyond rank", lambda: _model([helper.make_node("Flatten", ["x"], ["y"], name="fl", axis=6)]), r"node 'fl' \(Flatten\): axis: expected an axis"),
    ("zero strides", lambda: _model([_conv(strides=[0, 0])], [_w()]), r"layer 'conv1'\.stride: expected an integer >= 1"),
    ("zero group", lambda: _model([_conv(group=0)], [_w()]), r"layer 'conv1'\.groups: expected a positive integer"),
    ("negative pads", lambda: _model([_conv(pads=[-1, 0, 0, 0])], [_w()]), r"layer 'conv1'\.padding: expected padding >= 0"),
    ("truncated initializer", lambda: _model([_conv()], [_truncated()]), r"initializer 'w': expected 432 bytes of data"),
    ("mistyped initializer", lambda: _model([_conv()], [_mistyped()]), r"initializer 'w': expected a numeric tensor; found data type STRING"),
    ("external data outside", lambda: _model([_conv()], [_external("../secret.bin")]), r"initializer 'w': expected external data in a file inside the model's folder"),
    ("external data absolute", lambda: _model([_conv()], [_external("/etc/passwd")]), r"initializer 'w': expected external data in a file inside"),
    ("external data missing", lambda: _model([_conv()], [_external("weights.bin")]), r"initializer 'w': expected an existing external data file"),
    ("huge ConstantOfShape", lambda: _model([
        helper.make_node("Constant", [], ["s"], name="shape_c", value=numpy_helper.from_array(np.array([10**6, 10**6], np.int64))),
        helper.make_node("ConstantOfShape", ["s"], ["z"], name="zeros"),
        helper.make_node("Add", ["x", "z"], ["y"], name="add")]), r"node 'zeros' \(ConstantOfShape\): .*expected a constant of at most"),
    ("huge input dims", lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="r")], shape=(1, 2**30, 2**30, 2**30)), r"layer 'x'\.shape: expected at most"),
    ("not protobuf", b"this is not an onnx file at all" * 3, r"expected an ONNX model"),
    ("empty file", b"", r"expected an ONNX model with nodes|expected an ONNX model"),
    ("unsupported op", lambda: _model([helper.make_node("LeakyRelu", ["x"], ["y"], name="leaky")]), r"node 'leaky'"),
]


@pytest.mark.parametrize("make, field", [c[1:] for c in ONNX_CASES], ids=[c[0] for c in ONNX_CASES])
def test_onnx(tmp_path, make, field):
    sub = tmp_path / "models"
    sub.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 432)
    path = sub / "m.onnx"
    data = make() if callable(make) else make
    path.write_bytes(data if isinstance(data, bytes) else data.SerializeToString())
    before = {p.name for p in tmp_path.iterdir()}
    status, _, err = run(["describe", path], tmp_path)
    assert_clean(status, err, str(path), field, before, tmp_path)


def test_onnx_external_data_inside_the_folder_loads(tmp_path):
    (tmp_path / "weights.bin").write_bytes(np.ones((4, 3, 3, 3), np.float32).tobytes())
    path = tmp_path / "m.onnx"
    path.write_bytes(_model([_conv()], [_external("weights.bin")]).SerializeToString())
    g = accelsim.load_onnx(path)
    assert g["conv1"].weight.shape == (4, 3, 3, 3) and float(g["conv1"].weight.sum()) == 108.0


# ----------------------------------------------------------------------------- datasets (.npz)


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _huge_header_npz() -> bytes:
    """An .npz whose x.npy header claims a (10^6, 1, 10^4, 10^4) float64 array: 8e14 bytes."""
    from numpy.lib import format as npy

    head = io.BytesIO()
    npy.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 1, 10**4, 10**4)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.npy", head.getvalue() + b"\0" * 64)
        zf.writestr("y.npy", _npy(np.zeros(3, np.int64)))
    return buf.getvalue()


def _npy(a) -> bytes:
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def _truncated_npz() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.npy", _npy(np.zeros((3, 1, 4, 4), np.float32))[:-20])
        zf.writestr("y.npy", _npy(np.zeros(3, np.int64)))
    return buf.getvalue()


X = np.zeros((3, 1, 4, 4), np.float32)
NPZ_CASES = [
    ("empty file", b"", r"expected a readable \.npz file .*found an empty file"),
    ("not a zip", b"PK-not-really" * 10, r"expected a readable \.npz file .*not a zip archive"),
    ("truncated zip", _npz_bytes(x=X, y=np.zeros(3, int))[:200], r"expected a readable \.npz"),
    ("huge header", _huge_header_npz(), r"x: expected an array of at most .* found a header claiming shape"),
    ("truncated array", _truncated_npz(), r"x: expected 192 bytes of data"),
    ("missing y", _npz_bytes(x=X), r"y: expected arrays x .* missing array y"),
    ("missing both", _npz_bytes(a=X), r"x: expected arrays x"),
    ("object dtype", None, r"x: expected an array of numbers; found dtype"),
    ("string labels", _npz_bytes(x=X, y=np.array(["a", "b", "c"])), r"y: expected an array of numbers"),
    ("x 2-D", _npz_bytes(x=np.zeros((3, 16)), y=np.zeros(3, int)), r"x: expected \(N, C, H, W\)"),
    ("y 2-D", _npz_bytes(x=X, y=np.zeros((3, 1), int)), r"y: expected one label per sample"),
    ("length mismatch", _npz_bytes(x=X, y=np.zeros(4, int)), r"y: expected 3 labels"),
    ("no samples", _npz_bytes(x=np.zeros((0, 1, 4, 4)), y=np.zeros(0, int)), r"x: expected at least one sample"),
    ("fractional labels", _npz_bytes(x=X, y=np.array([0.5, 1.0, 2.0])), r"y: expected integer class labels"),
    ("labels beyond int64 after cast", _npz_bytes(x=X, y=np.array([0.0, 1e30, 2.0])), r"y: expected labels at most"),
    ("uint64 labels", _npz_bytes(x=X, y=np.array([0, 2**63 + 5, 1], np.uint64)), r"y: expected labels at most"),
    ("negative labels", _npz_bytes(x=X, y=np.array([0, -1, 2])), r"y: expected labels >= 0"),
    ("bool labels", _npz_bytes(x=X, y=np.array([True, False, True])), r"y: expected integer class labels"),
    ("NaN pixels", _npz_bytes(x=np.full((3, 1, 4, 4), np.nan), y=np.zeros(3, int)), r"x: expected finite values"),
    ("overflows float32", _npz_bytes(x=np.full((3, 1, 4, 4), 1e300), y=np.zeros(3, int)), r"x: expected values within float32"),
]


@pytest.mark.parametrize("content, field", [c[1:] for c in NPZ_CASES], ids=[c[0] for c in NPZ_CASES])
def test_npz(tmp_path, content, field):
    if content is None:  # an object array (a pickle): written by hand, numpy refuses to load it
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            b = io.BytesIO()
            np.save(b, np.array([{}, {}, {}], dtype=object), allow_pickle=True)
            zf.writestr("x.npy", b.getvalue())
            zf.writestr("y.npy", _npy(np.zeros(3, np.int64)))
        content = buf.getvalue()
    path = _write(tmp_path, "d.npz", content)
    before = {p.name for p in tmp_path.iterdir()}
    status, _, err = run(["evaluate", "tiny_resnet", "--data", path], tmp_path)
    assert_clean(status, err, str(path), field, before, tmp_path)


# ----------------------------------------------------------------------------- CLI and outputs

CLI_CASES = [
    ("set int beyond int64", ["simulate", "alexnet", "--set", "pe_array.rows=99999999999999999999"], None, r"pe_array\.rows: expected a positive integer of at most"),
    ("set huge literal", ["simulate", "alexnet", "--set", "pe_array.rows=" + "9" * 60], None, r"--set .*expected a YAML value; found an integer literal"),
    ("set float for int", ["simulate", "alexnet", "--set", "pe_array.rows=1e3"], None, r"pe_array\.rows: expected a positive integer; found the float 1000\.0"),
    ("set list", ["simulate", "alexnet", "--set", "precision.weight_bits=[4]"], None, r"precision\.weight_bits: expected an integer in 1\.\.32; found a list"),
    ("set no value", ["simulate", "alexnet", "--set", "=4"], None, r"--set '=4': expected PATH=VALUE"),
    ("set bad yaml", ["simulate", "alexnet", "--set", "pe_array.rows={"], None, r"--set .*VALUE is not valid YAML: expected"),
    ("set unknown field", ["simulate", "alexnet", "--set", "pe_array.rowz=4"], None, r"pe_array\.rowz: expected one of the keys"),
    ("batch beyond int64", ["simulate", "alexnet", "--batch", "99999999999999999999"], None, r"argument --batch: expected an integer in 1\.\."),
    ("batch zero", ["describe", "alexnet", "--batch", "0"], None, r"argument --batch: expected an integer in 1\.\..*found the integer 0"),
    ("batch float", ["describe", "alexnet", "--batch", "1e3"], None, r"argument --batch: expected an integer .*found '1e3'"),
    ("batch overflows counts", ["describe", "vgg16", "--batch", "2000000000"], None, r"expected at most"),
    ("limit negative", ["evaluate", "tiny_resnet", "--limit", "-5"], None, r"argument --limit: expected an integer"),
    ("weight bits huge", ["quantize", "tiny_resnet", "--weight-bits", "100000000000000000000"], None, r"argument --weight-bits: expected an integer in 1\.\.64"),
    ("simulate out missing dir", ["simulate", "alexnet", "--out", "{tmp}/no/x.csv"], "{tmp}/no/x.csv", r"directory .* does not exist"),
    ("quantize json sidecar is a dir", ["quantize", "tiny_resnet", "--out", "{tmp}/q2.npz"], "{tmp}/q2.json", r"is a directory"),
    ("quantize out missing dir", ["quantize", "tiny_resnet", "--out", "{tmp}/no/q.npz"], "{tmp}/no/q.npz", r"directory .* does not exist"),
    ("quantize out is a dir", ["quantize", "tiny_resnet", "--out", "{tmp}/adir.npz"], "{tmp}/adir.npz", r"is a directory"),
    ("bench out missing dir", ["bench", "scalesim_resnet50", "--out", "{tmp}/no/b.md"], "{tmp}/no/b.md", r"directory .* does not exist"),
    ("bench out bad suffix", ["bench", "scalesim_resnet50", "--out", "{tmp}/b.csv"], "{tmp}/b.csv", r"expected a file name ending in \.md; found unknown output format '\.csv'"),
    ("run out missing dir", ["run", "--out", "{tmp}/no/r.md"], "{tmp}/no/r.md", r"directory .* does not exist"),
    ("unknown hw", ["simulate", "alexnet", "--hw", "no-such-hw"], "no-such-hw", r"expected an existing file or a config name"),
    ("unknown option", ["simulate", "alexnet", "--bogus"], None, r"unrecognized arguments"),
]


def _hint_expected(line):  # argparse's own errors (unknown options) carry no "expected"
    return line


@pytest.mark.parametrize("argv, file, field", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli(tmp_path, argv, file, field):
    (tmp_path / "adir.npz").mkdir()
    (tmp_path / "q2.json").mkdir()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    file = file.replace("{tmp}", str(tmp_path)) if file else None
    before = {p.name for p in tmp_path.iterdir()}
    status, _, err = run(argv, tmp_path)
    if "unrecognized" in field:
        assert status == 2 and err.count("\n") == 1 and err.startswith("error: ") and re.search(field, err)
        return
    assert_clean(status, err, file, field, before, tmp_path)


def test_quantize_out_writes_both_files_0644_and_nothing_else(tmp_path):
    old = os.umask(0o022)
    try:
        status, _, err = run(["quantize", "tiny_resnet", "--out", tmp_path / "q.npz", "--format", "csv"], tmp_path)
    finally:
        os.umask(old)
    assert status == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.json", "q.npz"]
    for p in tmp_path.iterdir():
        assert p.stat().st_mode & 0o777 == 0o644
    assert json.loads((tmp_path / "q.json").read_text())


def test_multi_file_output_is_all_or_nothing(tmp_path):
    from accelsim.report.output import write_together

    def fails(tmp):
        (tmp / "a.npz").write_bytes(b"1")
        raise AccelsimError("disk full (simulated)")

    with pytest.raises(AccelsimError, match="simulated"):
        write_together([tmp_path / "a.npz", tmp_path / "a.json"], fails)
    assert list(tmp_path.iterdir()) == []

    def partial(tmp):
        (tmp / "a.npz").write_bytes(b"1")

    with pytest.raises(AccelsimError, match="a.json: expected the writer to produce it"):
        write_together([tmp_path / "a.npz", tmp_path / "a.json"], partial)
    assert list(tmp_path.iterdir()) == []


def _cmd(*argv, **kw):
    return subprocess.run([sys.executable, "-m", "accelsim.cli", *argv], capture_output=True, text=True, **kw)


def test_full_and_closed_stdout_are_clean_errors(tmp_path):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "accelsim.cli", "describe", "alexnet"], stdout=full,
                              stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: <stdout>: expected a writable standard output; found no space left on the device"
    proc = subprocess.run([sys.executable, "-m", "accelsim.cli", "describe", "alexnet"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 2 and proc.stderr.strip() == "error: <stdout>: expected an open standard output; found it closed"


INTERRUPT_AT_IMPORT = """
import sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
sys.argv = ["accelsim", "describe", "alexnet"]
from accelsim.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("module", ["numpy", "yaml", "pandas"])
def test_ctrl_c_during_start_up_prints_interrupted_and_exits_130(module):
    proc = subprocess.run([sys.executable, "-c", INTERRUPT_AT_IMPORT.format(module=module)],
                          capture_output=True, text=True)
    assert proc.returncode == 130 and proc.stderr == "interrupted\n", proc.stderr


def test_cli_start_up_is_light():
    code = "import sys, accelsim.cli; print(sorted(m for m in ('numpy', 'pandas', 'numba') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- Python API

G = None


def _g():
    global G
    if G is None:
        G = accelsim.load_model("alexnet")
    return G


API_CASES = [
    ("load_model int", lambda: accelsim.load_model(42), TypeError, r"load_model\(\): argument 'name_or_path'"),
    ("load_model None", lambda: accelsim.load_model(None), TypeError, r"argument 'name_or_path'"),
    ("load_hw dict", lambda: accelsim.load_hw({"name": "x"}), TypeError, r"load_hw\(\): argument 'path_or_name'"),
    ("load_hw int", lambda: accelsim.load_hw(3), TypeError, r"argument 'path_or_name'"),
    ("load_dataset int", lambda: accelsim.load_dataset(5), TypeError, r"load_dataset\(\): argument 'name'"),
    ("load_qgraph list", lambda: accelsim.load_qgraph(["q.npz"]), TypeError, r"load_qgraph\(\): argument 'path'"),
    ("load_onnx int", lambda: accelsim.load_onnx(7), TypeError, r"load_onnx\(\): argument 'path_or_model'"),
    ("simulate int graph", lambda: accelsim.simulate(42), TypeError, r"simulate\(\): argument 'graph'"),
    ("simulate hw int", lambda: accelsim.simulate(_g(), 5), TypeError, r"simulate\(\): argument 'hw'"),
    ("simulate hw bad dict", lambda: accelsim.simulate(_g(), {"name": "x"}), AccelsimError, r"simulate\(hw=\.\.\.\): pe_array: expected"),
    ("simulate batch str", lambda: accelsim.simulate(_g(), batch="2"), TypeError, r"argument 'batch'"),
    ("simulate batch huge", lambda: accelsim.simulate(_g(), batch=10**30), AccelsimError, r"batch: expected an integer in 1\.\."),
    ("simulate timing", lambda: accelsim.simulate(_g(), timing=3), TypeError, r"argument 'timing'"),
    ("quantize int graph", lambda: accelsim.quantize(3), TypeError, r"quantize\(\): argument 'graph'"),
    ("quantize recipe int", lambda: accelsim.quantize(_g(), 5), TypeError, r"quantize\(\): argument 'recipe'"),
    ("quantize hw list", lambda: accelsim.quantize(_g(), "dfq", hw=[1]), TypeError, r"quantize\(\): argument 'hw'"),
    ("execute a Graph", lambda: accelsim.execute(_g(), None, np.zeros(1)), TypeError, r"execute\(\): argument 'qgraph'"),
    ("evaluate int", lambda: accelsim.evaluate(12), AccelsimError, r"cannot evaluate a int"),
    ("save_onnx str", lambda: accelsim.save_onnx("alexnet", "x.onnx"), TypeError, r"save_onnx\(\): argument 'graph'"),
    ("shapes batch str", lambda: _g().shapes("2"), AccelsimError, r"batch: expected an integer"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_python_api(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_python_api_accepts_names_as_the_cli_does():
    r = accelsim.simulate("alexnet", "edge-npu-16x16")
    r2 = accelsim.simulate(_g(), accelsim.load_hw("edge-npu-16x16").to_dict())
    assert r.summary["total_cycles"] == r2.summary["total_cycles"]


# ----------------------------------------------------------------------------- end to end, and bounds


def test_subprocess_end_to_end_alias_bomb_and_huge_header(tmp_path):
    bomb = _write(tmp_path, "bomb.yaml", BOMB)
    proc = _cmd("describe", bomb)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"error: {bomb}: line ") and len(proc.stderr) < 300
    npz = _write(tmp_path, "huge.npz", _huge_header_npz())
    proc = _cmd("evaluate", "tiny_resnet", "--data", npz)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {npz}: x: expected an array of at most")


MEASURE = """
import resource, sys, time
t0 = time.perf_counter()
try:
    {call}
except Exception as exc:
    print(type(exc).__name__, file=sys.stderr)
seconds = time.perf_counter() - t0
try:  # this process's own high-water mark: ru_maxrss keeps the parent's across fork + exec on Linux
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    mib = int(hwm.split()[1]) / 1024
except (OSError, StopIteration):
    mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(seconds, mib)
"""


def _measure(call: str) -> tuple[float, float]:
    proc = subprocess.run([sys.executable, "-c", MEASURE.format(call=call)], capture_output=True, text=True)
    seconds, mib = map(float, proc.stdout.split())
    return seconds, mib


@pytest.mark.slow
def test_alias_bomb_and_huge_header_stay_small_and_fast(tmp_path):
    """Peak RSS of the whole process (Python, numpy and accelsim included) and the time of the
    load itself: goal under 200 MB and under a second (issue 13)."""
    bomb = _write(tmp_path, "bomb.yaml", BOMB + "j: &j [" + ", ".join(["*i"] * 9) + "]\n")
    npz = _write(tmp_path, "huge.npz", _huge_header_npz())
    results = {
        "alias bomb (graph YAML)": _measure(f"from accelsim.graph.zoo import load_model; load_model({str(bomb)!r})"),
        "huge-header .npz": _measure(f"from accelsim.data import load_dataset; load_dataset({str(npz)!r})"),
    }
    for what, (seconds, mib) in results.items():
        print(f"{what}: {seconds:.3f} s, peak RSS {mib:.0f} MiB")
        assert seconds < 1.0 and mib < 200, (what, seconds, mib)
