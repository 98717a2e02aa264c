"""Bundled trained models: files match the manifest, accelsim's FP32 interpreter matches
onnxruntime and reproduces torch's test accuracy exactly; `evaluate` and its CLI."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from accelsim import evaluate, load_dataset, load_model
from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.explore.evaluate import evaluate_detailed
from accelsim.graph.manifest import load_manifest, model_info
from accelsim.paths import find_bundled

MODELS = ["tiny_mobilenet_v2", "tiny_resnet", "tiny_vgg"]


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def logits(mnist):
    """name -> (accelsim Graph.run logits, onnxruntime logits) on the 1,000 test images, computed once."""
    ort = pytest.importorskip("onnxruntime")
    out = {}
    for name in MODELS:
        path = find_bundled("workloads", name, (".onnx",))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        ref = session.run(None, {"input": np.ascontiguousarray(mnist.x_test)})[0]
        out[name] = (load_model(name).run(mnist.x_test), ref)
    return out


def test_manifest_lists_the_bundled_models():
    manifest = load_manifest()
    assert set(MODELS) <= set(manifest)
    for name in MODELS:
        info = manifest[name]
        assert info["dataset"] == "mnist5k"
        assert info["preprocessing"] == load_dataset("mnist5k").preprocessing
        assert info["test_images"] == 1000
        assert info["fp32_test_top1"] == pytest.approx(info["fp32_test_correct"] / 1000, abs=5e-5)
        assert info["fp32_test_correct"] >= 970  # the models are trained, not random
        assert info["opset"] == 17
        for key in ("command", "seed", "torch_version", "epochs", "train_time_s", "params"):
            assert key in info, f"{name}: manifest lacks {key}"


def test_models_md_shows_the_manifest_figures():
    text = find_bundled("workloads", "MODELS", (".md",)).read_text()
    for name in MODELS:
        info = model_info(name)
        assert f"| {name} | {info['params']:,} | {info['file_bytes']:,} | {info['fp32_test_top1']:.4f} | " \
               f"{info['fp32_test_correct']} / 1000 |" in text


def test_manifest_is_not_a_zoo_workload():
    from accelsim.graph.zoo import zoo_names

    names = zoo_names()
    assert set(MODELS) <= set(names) and "models" not in names


@pytest.mark.parametrize("name", MODELS)
def test_onnx_file_matches_manifest(name):
    onnx = pytest.importorskip("onnx")
    info = model_info(name)
    path = find_bundled("workloads", name, (".onnx",))
    blob = path.read_bytes()
    assert len(blob) == info["file_bytes"] < 1_000_000
    assert hashlib.sha256(blob).hexdigest() == info["sha256"], "ONNX file changed without rerunning tools/train.py"
    model = onnx.load_from_string(blob)
    ops = [n.op_type for n in model.graph.node]
    assert "BatchNormalization" in ops  # kept for BN folding and data-free quantization
    (inp,) = model.graph.input
    assert inp.name == "input"
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer if "running_" not in t.name
                 and "num_batches" not in t.name)
    # deduplicated identical initializers (an ONNX Identity) can make the file hold fewer
    assert params <= info["params"]


@pytest.mark.parametrize("name", MODELS)
def test_graph_run_matches_onnxruntime(name, logits):
    ours, ref = logits[name]
    assert ours.shape == ref.shape == (1000, 10)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("name", MODELS)
def test_graph_run_reproduces_torch_accuracy(name, logits, mnist):
    ours, ref = logits[name]
    correct = int((ours.argmax(1) == mnist.y_test).sum())
    assert correct == model_info(name)["fp32_test_correct"]
    assert np.array_equal(ours.argmax(1), ref.argmax(1))


# ----------------------------------------------------------------------------- evaluate API


class ConstantModel:
    """Always predicts class 3: exactly 10% on a balanced 10-class split."""

    name = "always3"

    def run(self, x):
        out = np.zeros((len(x), 10), np.float32)
        out[:, 3] = 1.0
        return out


def test_evaluate_any_object_with_run(mnist):
    assert evaluate(ConstantModel()) == pytest.approx(0.1)
    top1, preds = evaluate(ConstantModel(), data=mnist, split="train", return_predictions=True)
    assert top1 == pytest.approx(0.1) and preds.shape == (4000,) and set(preds.tolist()) == {3}
    r = evaluate_detailed(ConstantModel(), "digits", batch_size=7)
    assert (r.correct, r.total) == (36, 360)


def test_evaluate_graph_equals_name(mnist):
    g = load_model("tiny_vgg")
    top1, preds = evaluate(g, mnist, limit=200, return_predictions=True)
    assert evaluate("tiny_vgg", limit=200, batch_size=64) == top1
    assert len(preds) == 200


def test_evaluate_rejects_mismatched_inputs():
    with pytest.raises(AccelsimError, match="expects inputs of shape 1x28x28.*digits.*1x8x8"):
        evaluate("tiny_resnet", data="digits")
    with pytest.raises(AccelsimError, match="carries no weights"):
        evaluate("resnet18", data="mnist5k")
    with pytest.raises(AccelsimError, match="expected a Graph"):
        evaluate(42)


def test_evaluate_rejects_bad_logits_and_labels(tmp_path):
    class Wrong:
        def run(self, x):
            return np.zeros(len(x) + 1)

    with pytest.raises(AccelsimError, match="expected \\(N, classes\\)"):
        evaluate(Wrong(), limit=10)
    path = tmp_path / "many.npz"
    np.savez(path, x=np.zeros((5, 1, 28, 28), np.float32), y=np.array([0, 1, 2, 3, 12]))
    with pytest.raises(AccelsimError, match="has 10 outputs but 'many.npz' has labels up to 12"):
        evaluate(ConstantModel(), data=path)


# ----------------------------------------------------------------------------- CLI


def test_cli_evaluate_prints_accuracy(capsys):
    assert main(["evaluate", "tiny_resnet", "--data", "mnist5k"]) == 0
    out = capsys.readouterr().out
    correct = model_info("tiny_resnet")["fp32_test_correct"]
    assert f"top-1 {correct / 1000:.4f} ({correct} / 1000 correct)" in out
    assert "images/s" in out


def test_cli_evaluate_json_and_npz(tmp_path, capsys, mnist):
    import json

    path = tmp_path / "sub.npz"
    np.savez(path, x=mnist.x_test[:50], y=mnist.y_test[:50])
    assert main(["evaluate", "tiny_vgg", "--data", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["layers"] == [] and doc["provenance"]["dataset"]["name"] == "sub.npz"
    row = doc["totals"]
    assert row["images"] == 50 and row["data"] == "sub.npz" and 0 <= row["correct"] <= 50
    assert row["top1"] == pytest.approx(evaluate("tiny_vgg", data=mnist, limit=50))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "mnist"], "unknown dataset 'mnist'"),
        (["--data", "missing.npz"], "file not found"),
        (["--data", "digits"], "expects inputs of shape"),
    ],
)
def test_cli_evaluate_bad_data_exits_2(args, message, capsys):
    assert main(["evaluate", "tiny_resnet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
