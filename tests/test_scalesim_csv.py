"""SCALE-Sim topology CSV import and export."""
import pytest

import accelsim
from accelsim.errors import GraphError
from accelsim.graph.scalesim_csv import load_scalesim_csv, parse_scalesim_csv, to_scalesim_csv

from conftest import REFERENCE_DIR

REF = REFERENCE_DIR / "scalesim"


def _layers(graph):
    return [(n.name, n.op, n.attrs) for n in graph if n.op != "input"]


def _shapes(graph):
    return {n.name: graph.shapes()[n.name] for n in graph}


@pytest.mark.parametrize("csv", ["Resnet50_mlperf.csv", "alexnet.csv", "test.csv"])
def test_reference_topologies_round_trip(csv, tmp_path):
    g = load_scalesim_csv(REF / csv)
    out = tmp_path / "out.csv"
    out.write_text(to_scalesim_csv(g))
    g2 = load_scalesim_csv(out)
    assert _layers(g2) == _layers(g)
    assert _shapes(g2) == _shapes(g)


def test_resnet50_mlperf_has_54_layers_with_known_first_layer():
    g = load_scalesim_csv(REF / "Resnet50_mlperf.csv")
    layers = g.layers(gemm_only=True)
    assert len(layers) == 54
    conv1 = g["Conv1"]
    assert conv1.attrs["kernel"] == (7, 7) and conv1.attrs["stride"] == (2, 2) and conv1.attrs["padding"] == (0, 0, 0, 0)
    assert g.shapes()["Conv1.ifmap"] == (1, 3, 224, 224)


def test_with_and_without_trailing_comma_and_padded_columns():
    with_comma = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\nc1 ,  9, 9, 3 ,3, 4, 8, 2,\n"
    without = "Layer name,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,Strides\nc1,9,9,3,3,4,8,2\n\n"
    assert _layers(parse_scalesim_csv(with_comma, "a")) == _layers(parse_scalesim_csv(without, "b"))


def test_gemm_form_gives_exact_gemm_view_and_round_trips():
    text = "Layer, M, N, K,\nqkv, 128, 2304, 768,\nffn, 128, 3072, 768\n"
    g = parse_scalesim_csv(text, "gemm.csv")
    gemm = g.layer("qkv").gemm
    assert (gemm.M, gemm.K, gemm.N) == (128, 768, 2304)
    g2 = parse_scalesim_csv(to_scalesim_csv(g), "again")
    assert [g2.layer(n).gemm for n in ("qkv", "ffn")] == [g.layer(n).gemm for n in ("qkv", "ffn")]


def test_export_writes_padding_as_larger_ifmap_and_splits_groups():
    g = accelsim.load_model("mobilenet_v2")
    text = to_scalesim_csv(g)
    first = text.splitlines()[1]
    assert first.startswith("features.0.conv, 226, 226, 3, 3, 3, 32, 2")
    assert text.count("features.1.dw.conv_g") == 32
    g2 = parse_scalesim_csv(text, "mbv2.csv")
    # every multiply survives the export: padding is in the ifmap, groups are rows
    assert g2.total_macs() >= g.total_macs()


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty topology file"),
        ("Layer name, A, B\nx, 1, 2\n", "expected a header of 8 conv columns"),
        ("Layer, M, N, K,\nx, 4, 4\n", r"line 2: expected 4 fields, found 3"),
        ("Layer, M, N, K,\nx, 4, four, 4\n", "expected integers"),
        ("Layer, M, N, K,\nx, 4, 0, 4\n", "sizes must be >= 1"),
        ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\nc, 2, 2, 3, 3, 1, 1, 1,\n", "larger than the ifmap"),
    ],
)
def test_bad_topologies_name_the_line(text, message):
    with pytest.raises(GraphError, match=message):
        parse_scalesim_csv(text, "topo.csv")
