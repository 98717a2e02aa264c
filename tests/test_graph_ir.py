"""Graph IR: shape inference, GEMM views, validation errors and the YAML format."""
import math

import pytest
from hypothesis import given, settings, strategies as st

import accelsim
from accelsim.errors import GraphError
from accelsim.graph.builder import GraphBuilder
from accelsim.graph.yaml_io import dump_graph_yaml, graph_from_dict, load_graph_yaml
from accelsim.graph.zoo import zoo_names


def _window_starts(size, pad_lo, pad_hi, kernel, stride, dilation, ceil_mode=False):
    """Count window positions by enumeration: an independent path to the output size."""
    span = dilation * (kernel - 1) + 1
    starts = []
    pos = -pad_lo
    while pos + span <= size + pad_hi:
        starts.append(pos)
        pos += stride
    covered_end = starts[-1] + span if starts else -pad_lo
    # ceil mode: one more, partial window if elements are left uncovered and it starts inside the input
    if ceil_mode and covered_end < size + pad_hi and pos < size:
        starts.append(pos)
    return len(starts)


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 40), w=st.integers(1, 40), k=st.integers(1, 7), s=st.integers(1, 4),
    d=st.integers(1, 3), pt=st.integers(0, 3), pb=st.integers(0, 3), g=st.sampled_from([1, 2, 4]),
)
def test_conv_output_shape_matches_window_enumeration(h, w, k, s, d, pt, pb, g):
    b = GraphBuilder("t")
    b.input([4 * g, h, w])
    span = d * (k - 1) + 1
    fits = span <= h + pt + pb and span <= w + pb + pt
    if not fits:
        with pytest.raises(GraphError, match="does not fit"):
            b.add("conv2d", "c", out_channels=2 * g, kernel=k, stride=s, dilation=d,
                  padding=[pt, pb, pb, pt], groups=g)
            b.build().shapes()
        return
    b.add("conv2d", "c", out_channels=2 * g, kernel=k, stride=s, dilation=d, padding=[pt, pb, pb, pt], groups=g)
    g_ = b.build()
    info = g_.layer("c", batch=3)
    ho = _window_starts(h, pt, pb, k, s, d)
    wo = _window_starts(w, pb, pt, k, s, d)
    assert info.output_shape == (3, 2 * g, ho, wo)
    assert (info.gemm.M, info.gemm.K, info.gemm.N, info.gemm.groups) == (3 * ho * wo, 4 * k * k, 2, g)
    assert info.macs == 3 * ho * wo * (4 * g) // g * k * k * 2 * g
    assert info.weight_elems == 2 * g * 4 * k * k


@settings(max_examples=100, deadline=None)
@given(h=st.integers(2, 30), k=st.integers(2, 4), s=st.integers(1, 3), p=st.integers(0, 1), ceil=st.booleans())
def test_pool_output_shape_matches_window_enumeration(h, k, s, p, ceil):
    if p * 2 > k or k > h + 2 * p:
        return
    b = GraphBuilder("t")
    b.input([3, h, h])
    b.add("maxpool", "p", kernel=k, stride=s, padding=p, ceil_mode=ceil)
    ho = _window_starts(h, p, p, k, s, 1, ceil)
    assert b.build().shapes()["p"] == (1, 3, ho, ho)


def test_linear_on_tokens_and_flattened_images():
    b = GraphBuilder("t")
    b.input([16, 32])
    b.add("linear", "fc", out_features=8)
    info = b.build().layer("fc", batch=2)
    assert info.output_shape == (2, 16, 8)
    assert (info.gemm.M, info.gemm.K, info.gemm.N) == (32, 32, 8)
    assert info.weight_elems == 256 and info.bias_elems == 8


def test_concat_and_add_shapes():
    b = GraphBuilder("t")
    x = b.input([8, 10, 10])
    a = b.add("conv2d", "a", x, out_channels=4, kernel=1)
    c = b.add("conv2d", "c", x, out_channels=6, kernel=3, padding=1)
    b.add("concat", "cat", [a, c])
    b.add("add", "sum", ["cat", "cat"])
    assert b.build().shapes()["sum"] == (1, 10, 10, 10)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda b: b.add("conv2d", "c", out_channels=4, kernel=3, groups=3), "expected groups dividing both.*found groups=3"),
        (lambda b: b.add("conv2d", "c", out_channels=4, kernel=9), "does not fit"),
        (lambda b: b.add("conv2d", "c", out_channels=4), "needs attribute 'kernel'"),
        (lambda b: b.add("conv2d", "c", out_channels=4, kernel=3, strides=2), "did you mean 'stride'"),
        (lambda b: b.add("conv2d", "c", out_channels=-4, kernel=3), "expected a positive integer"),
        (lambda b: b.add("conv2d", "c", out_channels=4, kernel=3, padding=-1), r"c'\.padding: expected padding >= 0.*; found the integer -1"),
        (lambda b: b.add("conv2d", "c", out_channels=4, kernel=True), "expected an integer or a pair"),
        (lambda b: b.add("convolution", "c"), "unknown op 'convolution'"),
        (lambda b: b.add("relu", "r", inputs=["nowhere"]), "reads 'nowhere', which is not defined"),
        (lambda b: b.add("relu", "input", inputs=["input"]), "used twice"),
        (lambda b: b.add("reshape", "r", shape=[0, 7, -1]), "cannot reshape"),
        (lambda b: b.add("add", "a", inputs=[]), "takes one or more inputs"),
        (
            lambda b: (b.add("reshape", "r0", shape=[0, 6, 25]), b.add("matmul", "m", inputs=["input", "r0"])),
            "do not multiply",
        ),
    ],
)
def test_bad_graphs_raise_graph_errors_naming_the_layer(build, message):
    b = GraphBuilder("bad")
    b.input([6, 5, 5])
    with pytest.raises(GraphError, match=message):
        build(b)
        b.build().shapes()


@pytest.mark.parametrize("name", [n for n in zoo_names() if not n.startswith("tiny_")])
def test_zoo_yaml_round_trips(name, tmp_path):
    g = accelsim.load_model(name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(dump_graph_yaml(g))
    g2 = load_graph_yaml(path)
    assert [(n.name, n.op, n.inputs, n.attrs) for n in g2] == [(n.name, n.op, n.inputs, n.attrs) for n in g]
    assert g2.outputs == g.outputs


def test_yaml_errors_name_file_and_position(tmp_path):
    bad = tmp_path / "net.yaml"
    bad.write_text("name: x\ninputs: [{name: input, shape: [3, 8, 8]}]\nlayers:\n  - {name: c, op: conv2d, kernel: [3\n")
    with pytest.raises(GraphError, match=r"net.yaml: line \d+, column \d+: expected valid YAML; found a syntax error"):
        load_graph_yaml(bad)
    bad.write_text("name: x\ninputs: [{name: input, shape: [3, 8, 8]}]\nlayers:\n  - {name: c, op: conv3d}\n")
    with pytest.raises(GraphError, match=r"net.yaml: layer 'c': unknown op 'conv3d' \(did you mean 'conv2d'\?\)"):
        load_graph_yaml(bad)


def test_graph_dict_rejects_unknown_top_level_key():
    with pytest.raises(GraphError, match="unknown key 'layer'"):
        graph_from_dict({"name": "x", "inputs": [], "layer": []}, "doc")


def test_getitem_suggests_close_names():
    g = accelsim.load_model("resnet18")
    assert g["conv1.conv"].attrs["kernel"] == (7, 7)
    with pytest.raises(KeyError, match="did you mean"):
        g["conv1.cnv"]


def test_unknown_workload_lists_bundled_names():
    with pytest.raises(GraphError, match=r"unknown workload 'resnet5'; did you mean resnet50"):
        accelsim.load_model("resnet5")


def test_copy_is_deep():
    g = accelsim.load_model("alexnet")
    g2 = g.copy()
    g2["conv1"].attrs["stride"] = (1, 1)
    assert g["conv1"].attrs["stride"] == (4, 4)
    assert math.prod(g.shapes()["conv1"]) != math.prod(g2.shapes()["conv1"])
