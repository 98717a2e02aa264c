"""accelsim's integer execution against onnxruntime on the bundled models, both ways
(tools/ort_agreement.py writes the full report: reports/ort-agreement.md).

- onnxruntime's quantize_static models (static QDQ, per-channel weights, calibrated on mnist5k
  training images) run through `accelsim run --model FILE`: integer top-1 within 0.2 points
  of onnxruntime's for the same file, and per-element agreement;
- accelsim's own QGraphs exported as QDQ: at least 99.9% of output elements within one LSB of
  onnxruntime, with its integer kernels (optimisations on) and with its float QDQ arithmetic (off).
"""
from __future__ import annotations

import importlib.util
import io
import json
import warnings
from contextlib import redirect_stderr, redirect_stdout
from functools import lru_cache
from pathlib import Path

import pytest

import accelsim

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ort_agreement", REPO / "tools" / "ort_agreement.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)

MODELS = ("tiny_mobilenet_v2", "tiny_resnet", "tiny_vgg")


@lru_cache(maxsize=None)
def data():
    ds = accelsim.load_dataset("mnist5k")
    x, y = ds.split("test")
    return ds, x, y


@pytest.fixture(scope="module")
def ort_models(tmp_path_factory):
    ds, _, _ = data()
    tmp = tmp_path_factory.mktemp("ort")
    return {m: tool.quantize_with_ort(m, tmp, ds.calibration(tool.CALIBRATION_IMAGES)) for m in MODELS}


@pytest.mark.parametrize("model", MODELS)
def test_quantize_static_model_runs_on_the_grid_within_0_2_points_of_onnxruntime(model, ort_models, tmp_path):
    from accelsim.cli import main

    path = ort_models[model]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(["run", "--model", str(path), "--no-report", "--format", "json"])
    assert status == 0, err.getvalue()
    summary = json.loads(out.getvalue())["totals"]
    _, x, y = data()
    assert summary["images"] == len(y)
    for optimize in (True, False):
        ort_top1 = tool.top1(tool.ort_outputs(path, x, optimize), y)
        assert abs(summary["top1_integer"] - ort_top1) <= 0.002 + 1e-12, (optimize, summary["top1_integer"], ort_top1)
    assert summary["top1_integer"] > 0.95  # a working model, not two equally broken ones
    # per element: accelsim's integers against onnxruntime's integer kernels
    qg = accelsim.load_model(path)
    lsb = qg.activations[qg.graph.outputs[0]]  # the output grid
    yi = accelsim.execute(qg, accelsim.load_hw("edge-npu-16x16"), x).output
    agree = tool.lsb_agreement(yi, tool.ort_outputs(path, x, True), lsb)
    assert agree["within_1"] >= 0.999 and agree["max_lsb"] <= 2, agree


def test_onnxruntime_uses_its_integer_kernels_on_the_quantize_static_model(ort_models):
    kernels = tool.ort_kernels(ort_models["tiny_vgg"])
    assert kernels.get("QLinearConv", 0) == 5 and kernels.get("QGemm", 0) == 2, kernels


def _round_trip(model: str, recipe: str, tmp_path, n: int):
    ds, x, _ = data()
    x = x[:n]
    hw = accelsim.load_hw("edge-npu-16x16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qg = accelsim.quantize(accelsim.load_model(model), recipe, hw=hw,
                               calibration=ds.calibration(256) if recipe == "dfq_calibrated" else None)
    path = qg.save_onnx(tmp_path / f"{model}_{recipe}.onnx")
    lsb = qg.activations[qg.graph.outputs[0]]
    yi = accelsim.execute(qg, hw, x).output
    for optimize in (True, False):
        agree = tool.lsb_agreement(yi, tool.ort_outputs(path, x, optimize), lsb)
        assert agree["within_1"] >= 0.999, (model, recipe, optimize, agree)


@pytest.mark.parametrize("model", MODELS)
def test_exported_dfq_runs_in_onnxruntime_within_one_lsb(model, tmp_path):
    _round_trip(model, "dfq", tmp_path, 300)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["naive", "per_channel", "dfq", "dfq_calibrated"])
@pytest.mark.parametrize("model", MODELS)
def test_every_uniform_recipe_runs_in_onnxruntime_within_one_lsb(model, recipe, tmp_path):
    _round_trip(model, recipe, tmp_path, 1000)


@pytest.mark.parametrize("variant", [v[0] for v in tool.variants()][2:])
def test_other_quantize_static_variants_agree_with_onnxruntime(variant, tmp_path):
    label, fmt, per_channel, kw, scheme = next(v for v in tool.variants() if v[0] == variant)
    ds, x, y = data()
    x, y = x[:300], y[:300]
    path = tool.quantize_with_ort("tiny_resnet", tmp_path, ds.calibration(tool.CALIBRATION_IMAGES), fmt, per_channel,
                                  **kw)
    qg = accelsim.load_model(path)
    assert qg.recipe.weight_scheme == scheme
    assert qg.recipe.weight_granularity == ("per_channel" if per_channel else "per_tensor")
    hw = accelsim.load_hw("edge-npu-16x16").replace("quantization.weight_scheme", scheme)
    yi = accelsim.execute(qg, hw, x).output
    on = tool.ort_outputs(path, x, True)
    assert tool.lsb_agreement(yi, on, qg.activations[qg.graph.outputs[0]])["within_1"] >= 0.999
    assert abs(tool.top1(yi, y) - tool.top1(on, y)) <= 0.002 + 1e-12
