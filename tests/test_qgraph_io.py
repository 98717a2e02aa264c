"""save_qgraph / load_qgraph: one self-contained .npz round-trips the integer model.

A loaded QGraph gives bit-identical fake-quant outputs, identical integer codes from
accelsim.execute, the same FP32 outputs from its float graph, and the same layers,
quantizers, recipe and metadata; files of another version, truncated, foreign or
inconsistent files give one-line AccelsimErrors naming the file."""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import fields

import numpy as np
import pytest

import accelsim
import accelsim.cli
from accelsim.errors import AccelsimError
from accelsim.quant import LayerQuant, QGraph, QuantParams, Recipe
from accelsim.quant.qgraph_io import FORMAT, is_qgraph_file, load_qgraph, save_qgraph

MODELS = ("tiny_resnet", "tiny_vgg", "tiny_mobilenet_v2")
N_IMAGES = 64


@pytest.fixture(scope="module")
def dataset():
    return accelsim.load_dataset("mnist5k")


@pytest.fixture(scope="module")
def images(dataset):
    x, _ = dataset.split("test")
    return x[:N_IMAGES]


@pytest.fixture(scope="module")
def hw():
    return accelsim.load_hw("edge-npu-16x16")


@pytest.fixture(scope="module")
def hw_asym(hw):
    return hw.replace("quantization.weight_scheme", "asymmetric")


@pytest.fixture(scope="module")
def models():
    return {m: accelsim.load_model(m) for m in MODELS}


@pytest.fixture(scope="module")
def tiny_qgraph(models, hw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return accelsim.quantize(models["tiny_resnet"], "dfq", hw=hw)


# ----------------------------------------------------------------------------- helpers


def _same_array(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _assert_same_qp(a: QuantParams, b: QuantParams, where: str) -> None:
    for f in ("bits", "scheme", "qmin", "qmax", "axis"):
        assert getattr(a, f) == getattr(b, f), f"{where}: {f}"
    assert _same_array(a.scale, b.scale), f"{where}: scale"
    assert _same_array(a.zero_point, b.zero_point), f"{where}: zero_point"


def _assert_same_graph(a, b, where: str) -> None:
    assert a.name == b.name and a.outputs == b.outputs and a.source == b.source, where
    assert [n.name for n in a.nodes] == [n.name for n in b.nodes], where
    for na, nb in zip(a.nodes, b.nodes):
        assert (na.op, na.inputs, na.attrs) == (nb.op, nb.inputs, nb.attrs), f"{where}: {na.name}"
        assert set(na.params) == set(nb.params), f"{where}: {na.name} params"
        for k in na.params:
            assert _same_array(na.params[k], nb.params[k]), f"{where}: {na.name}.{k}"


def _assert_same_info(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key, va in a.items():
        vb = b[key]
        if key == "equalization":
            assert (va.sets, va.skipped, va.iterations, va.converged) == (vb.sets, vb.skipped, vb.iterations,
                                                                          vb.converged)
            assert list(va.scales) == list(vb.scales)
            assert all(_same_array(va.scales[p], vb.scales[p]) for p in va.scales)
        elif isinstance(va, dict) and va and all(isinstance(v, np.ndarray) for v in va.values()):
            assert list(va) == list(vb) and all(_same_array(va[k], vb[k]) for k in va), key
        else:
            assert va == vb, key


def assert_same_qgraph(a: QGraph, b: QGraph) -> None:
    assert isinstance(b.recipe, Recipe) and b.recipe == a.recipe and b.recipe.source == a.recipe.source
    assert b.hw_name == a.hw_name
    _assert_same_graph(a.graph, b.graph, "graph")
    assert (a.float_graph is a.graph) == (b.float_graph is b.graph)
    _assert_same_graph(a.float_graph, b.float_graph, "float_graph")
    assert list(a.activations) == list(b.activations)
    for site in a.activations:
        _assert_same_qp(a.activations[site], b.activations[site], f"site {site}")
    assert list(a.layers) == list(b.layers)
    for name, la in a.layers.items():
        lb = b.layers[name]
        for f in fields(LayerQuant):
            va, vb = getattr(la, f.name), getattr(lb, f.name)
            if isinstance(va, QuantParams):
                _assert_same_qp(va, vb, f"{name}.{f.name}")
            elif isinstance(va, np.ndarray):
                assert _same_array(va, vb), f"{name}.{f.name}"
            else:
                assert va == vb, f"{name}.{f.name}"
        # quantize() links a layer's input/output quantizers to the sites' objects; so does the loader
        assert (la.input_q is a.activations[la.input_site]) == (lb.input_q is b.activations[lb.input_site])
        assert (la.output_q is a.activations[la.output_site]) == (lb.output_q is b.activations[lb.output_site])
    _assert_same_info(a.info, b.info)
    assert b.metadata() == a.metadata()


def _rewrite(path, change) -> None:
    """Rewrite an npz after change(arrays: dict, meta: dict) edits it in place."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    change(arrays, meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


# ----------------------------------------------------------------------------- round trips

RECIPES = {
    "dfq": ("dfq", False, False),
    "naive_asymmetric": ({"method": "naive", "weight_scheme": "asymmetric"}, True, False),
    "per_tensor": ({"method": "naive", "weight_granularity": "per_tensor"}, False, False),
    "w4a8": ({"method": "dfq", "weight_bits": 4, "activation_bits": 8}, False, False),
    "dfq_calibrated": ("dfq_calibrated", False, True),
}


# empirical bias correction over 256 images is the slow part (1-2.5 s a model): the default run
# covers it on one model, -m slow on the other two
CASES = [pytest.param(m, r, marks=pytest.mark.slow) if r == "dfq_calibrated" and m != "tiny_mobilenet_v2"
         else (m, r) for m in MODELS for r in RECIPES]


@pytest.mark.parametrize("model, recipe_id", CASES)
def test_round_trip(model, recipe_id, models, dataset, images, hw, hw_asym, tmp_path):
    recipe, asymmetric, calibrated = RECIPES[recipe_id]
    target = hw_asym if asymmetric else hw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a BiasRangeWarning is part of some recipes' story, not of this test
        qg = accelsim.quantize(models[model], recipe, hw=target,
                               calibration=dataset.calibration(256) if calibrated else None)
    path = qg.save(tmp_path / "q.npz")
    assert path == tmp_path / "q.npz" and is_qgraph_file(path)
    loaded = accelsim.load_qgraph(path)

    assert_same_qgraph(qg, loaded)
    assert _same_array(qg.run(images), loaded.run(images))  # fake-quant reference, bit for bit
    assert _same_array(qg.float_graph.run(images), loaded.float_graph.run(images))  # FP32 from the file alone
    codes = accelsim.execute(qg, target, images, progress=False).output_codes
    assert _same_array(codes, accelsim.execute(loaded, target, images, progress=False).output_codes)


def test_no_requantization_on_load(tiny_qgraph, tmp_path, monkeypatch):
    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")
    import accelsim.quant.pipeline as pipeline
    import accelsim.quant.qgraph as qgraph

    def fail(*args, **kwargs):
        raise AssertionError("load_qgraph re-ran quantization")

    monkeypatch.setattr(pipeline, "quantize", fail)
    monkeypatch.setattr(qgraph, "make_layer_quant", fail)
    monkeypatch.setattr(qgraph, "fit_bias_scale", fail)
    monkeypatch.setattr(qgraph, "folded_bias", fail)  # the accumulator bias comes from the file
    assert list(load_qgraph(path).layers) == list(tiny_qgraph.layers)


def test_file_contents(tiny_qgraph, tmp_path):
    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")
    with np.load(path, allow_pickle=False) as z:  # nothing pickled
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes())
    assert meta["format"] == FORMAT == "accelsim-qgraph-2" and meta["accelsim_version"] == accelsim.__version__
    assert meta["hw"] == "edge-npu-16x16" and meta["recipe"] == tiny_qgraph.recipe.to_dict()
    assert meta["graph"]["name"] == "tiny_resnet" and meta["sites"] == list(tiny_qgraph.activations)
    assert set(meta["arrays"]) == set(arrays)  # the manifest lists every array
    g, fg = tiny_qgraph.graph, tiny_qgraph.float_graph
    name = next(n for n in tiny_qgraph.layers if not _same_array(g[n].bias, fg[n].bias))  # bias-corrected
    assert arrays[f"layer/{name}/weight_int"].dtype == np.int8  # the smallest dtype of the 8-bit grid
    assert arrays[f"layer/{name}/bias_int32"].dtype == np.int32
    assert f"graph/{name}/weight" in arrays and f"float_graph/{name}/bias" in arrays  # differs: stored
    assert f"float_graph/{name}/weight" not in arrays  # equal to the graph's: stored once
    # the sidecar holds the same metadata, but the loader does not need it
    sidecar = tmp_path / "q.json"
    assert json.loads(sidecar.read_text()) == meta
    sidecar.unlink()
    assert load_qgraph(path).hw_name == "edge-npu-16x16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.npz"]  # no temporary files left behind


def test_suffix_added(tiny_qgraph, tmp_path):
    assert save_qgraph(tiny_qgraph, tmp_path / "model") == tmp_path / "model.npz"
    assert (tmp_path / "model.json").is_file()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_file_mode_follows_umask(tiny_qgraph, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
    assert (tmp_path / "q.json").stat().st_mode & 0o777 == mode


# ----------------------------------------------------------------------------- bad files


def _error(path) -> str:
    with pytest.raises(AccelsimError) as exc:
        load_qgraph(path)
    text = str(exc.value)
    assert "\n" not in text and str(path) in text
    return text


@pytest.mark.parametrize("version, fmt", [("0.0.9", "accelsim-qgraph-1"), ("0.0.9", FORMAT),
                                          (accelsim.__version__, "accelsim-qgraph-3")])
def test_other_version_or_format(tiny_qgraph, tmp_path, version, fmt):
    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")

    def change(arrays, meta):
        meta["accelsim_version"], meta["format"] = version, fmt

    _rewrite(path, change)
    assert is_qgraph_file(path)  # the CLI sends it to load_qgraph, which explains
    assert _error(path) == (f"{path}: saved by accelsim {version} (format {fmt}); this is accelsim "
                            f"{accelsim.__version__} (format accelsim-qgraph-2): re-run accelsim quantize")


def test_format1_file(tiny_qgraph, tmp_path):
    """What `accelsim quantize --out` wrote before: arrays only, the metadata in a .json beside it."""
    path = tmp_path / "old.npz"
    np.savez_compressed(path, **tiny_qgraph.arrays())
    assert is_qgraph_file(path)
    assert "format accelsim-qgraph-1" in _error(path) and "re-run accelsim quantize" in _error(path)


def test_truncated_file(tiny_qgraph, tmp_path):
    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        path.write_bytes(data[:cut])
        assert "not an accelsim quantized model" in _error(path)
        assert not is_qgraph_file(path)


def test_corrupted_bytes(tiny_qgraph, tmp_path):
    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 64] = bytes(64)  # the directory is intact: a member fails its CRC or inflate
    path.write_bytes(bytes(data))
    _error(path)


@pytest.mark.parametrize("content", [b"", b"hello, not a model\n", b"PK\x03\x04 broken zip"])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    assert "not an accelsim quantized model" in _error(path)
    assert not is_qgraph_file(path)


def test_foreign_npz_and_npy(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((2, 3)), y=np.arange(2))  # e.g. a dataset file
    assert "not an accelsim quantized model" in _error(path)
    assert not is_qgraph_file(path)
    npy = tmp_path / "a.npy"
    np.save(npy, np.arange(3))
    assert "not an accelsim quantized model" in _error(npy)
    assert not is_qgraph_file(npy) and not is_qgraph_file(tmp_path / "missing.npz")
    assert not is_qgraph_file("tiny_resnet") and not is_qgraph_file(tmp_path)
    assert "file not found" in _error(tmp_path / "missing.npz")


def test_missing_array(tiny_qgraph, tmp_path):
    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")
    name = next(iter(tiny_qgraph.layers))
    _rewrite(path, lambda arrays, meta: arrays.pop(f"layer/{name}/requant_shift"))
    assert f"layer/{name}/requant_shift' is missing" in _error(path)


def test_wrong_shapes(tiny_qgraph, tmp_path):
    name = next(iter(tiny_qgraph.layers))
    key = f"layer/{name}/bias_int32"
    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")

    def shorter(arrays, meta):  # the array no longer matches the manifest
        arrays[key] = arrays[key][:-1]

    _rewrite(path, shorter)
    assert "corrupt accelsim quantized model" in _error(path) and "has shape" in _error(path)

    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")

    def consistent_but_wrong(arrays, meta):  # manifest edited too: the model's own shapes catch it
        arrays[key] = arrays[key][:-1]
        meta["arrays"][key][1] = list(arrays[key].shape)

    _rewrite(path, consistent_but_wrong)
    text = _error(path)
    assert key in text and "has shape" in text

    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")
    wkey = f"graph/{list(tiny_qgraph.layers)[1]}/weight"  # 16 input channels

    def wrong_weight(arrays, meta):  # a float weight that does not fit the graph's conv
        arrays[wkey] = arrays[wkey][:, :1]
        meta["arrays"][wkey][1] = list(arrays[wkey].shape)

    _rewrite(path, wrong_weight)
    assert "weight has shape" in _error(path)


def test_bad_metadata(tiny_qgraph, tmp_path):
    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")
    _rewrite(path, lambda arrays, meta: meta.pop("layers"))
    assert "corrupt accelsim quantized model: missing field 'layers'" in _error(path)
    path = save_qgraph(tiny_qgraph, tmp_path / "q.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["__meta__"] = np.frombuffer(b"{not json", np.uint8)
    np.savez_compressed(path, **arrays)
    assert "not an accelsim quantized model" in _error(path)


# ----------------------------------------------------------------------------- CLI


def test_cli_quantize_out_loads(tmp_path, capsys, images, hw):
    out = tmp_path / "X.npz"
    assert accelsim.cli.main(["quantize", "tiny_resnet", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out  # the totals say what was written
    qg = load_qgraph(out)
    assert qg.recipe.method == "dfq" and qg.hw_name == "edge-npu-16x16" and (tmp_path / "X.json").is_file()
    codes = accelsim.execute(qg, hw, images, progress=False).output_codes
    assert codes.shape == (len(images), 10) and qg.run(images).shape == (len(images), 10)


def test_cli_quantize_out_mode(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert accelsim.cli.main(["quantize", "tiny_resnet", "--out", str(tmp_path / "X.npz"), "--format", "csv"]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    assert (tmp_path / "X.npz").stat().st_mode & 0o777 == 0o644


def test_fp32_qgraph_round_trip(models, images, tmp_path):
    """A QGraph of the fp32 recipe (no integer layers) is only its graph: saved and loaded too."""
    qg = accelsim.quantize(models["tiny_vgg"], "fp32")
    loaded = load_qgraph(save_qgraph(qg, tmp_path / "fp.npz"))
    assert loaded.float_graph is loaded.graph and not loaded.layers and not loaded.activations
    assert_same_qgraph(qg, loaded)
    assert _same_array(qg.run(images), loaded.run(images))
