"""Top-1 accuracy on a labelled dataset (`accelsim.evaluate`, `accelsim evaluate`).

The model is a Graph, a workload name or file (anything `load_model` takes), or any object
with `.run(x) -> logits` (e.g. a quantized QGraph). The data come out of `accelsim.data`
already preprocessed the way tools/train.py trained the bundled models, so nothing is
transformed here.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset, load_dataset
from ..errors import AccelsimError
from ..graph.ir import Graph
from ..graph.manifest import model_info

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class EvalResult:
    model: str
    data: str
    split: str
    correct: int
    total: int
    seconds: float
    predictions: np.ndarray = field(repr=False)
    manifest: dict[str, Any] | None = field(default=None, repr=False)  # entry of a bundled trained model

    @property
    def top1(self) -> float:
        return self.correct / self.total

    @property
    def images_per_s(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": self.data,
            "split": self.split,
            "top1": self.top1,
            "correct": self.correct,
            "images": self.total,  # the names `run` uses too
            "wall_s": self.seconds,
            "images_per_s": self.images_per_s,
        }


# ----------------------------------------------------------------------------- evaluation


def _resolve_model(model: Any) -> tuple[Any, str, dict[str, Any] | None]:
    """(runner, display name, manifest entry when `model` names a bundled trained model)."""
    if isinstance(model, (str, Path)):
        from ..graph.zoo import load_model

        path = Path(model)
        if path.is_file() or path.suffix:
            return load_model(model), path.stem, None
        return load_model(model), str(model), model_info(str(model))
    if not callable(getattr(model, "run", None)):
        raise AccelsimError(
            f"cannot evaluate a {type(model).__name__}: expected a Graph, a workload name or file, "
            "or an object with a .run(x) method"
        )
    return model, getattr(model, "name", type(model).__name__), None


def _check_input_shape(graph: Graph, data: Dataset) -> None:
    if not graph.has_params:
        raise AccelsimError(f"{graph.name} carries no weights (a shape-only workload): it cannot be evaluated")
    inputs = graph.inputs
    if len(inputs) != 1:
        raise AccelsimError(f"{graph.name}: evaluation needs a graph with one input, found {len(inputs)}")
    expected = tuple(graph.shapes(1)[inputs[0]][1:])
    if expected != data.input_shape:
        shape = "x".join(map(str, expected))
        raise AccelsimError(
            f"{graph.name} expects inputs of shape {shape}, but dataset '{data.name}' has "
            f"{'x'.join(map(str, data.input_shape))}"
        )


def _logits(out: Any, n: int, where: str) -> np.ndarray:
    if isinstance(out, dict):
        if len(out) != 1:
            raise AccelsimError(f"{where} returned {len(out)} outputs ({', '.join(out)}); evaluation needs one")
        out = next(iter(out.values()))
    elif isinstance(out, (list, tuple)):
        out = out[0]
    out = np.asarray(out)
    if out.ndim < 2 or out.shape[0] != n:
        raise AccelsimError(f"{where} returned shape {out.shape} for {n} images; expected (N, classes)")
    return out.reshape(n, -1)


def evaluate_detailed(
    model: Any,
    data: str | Path | Dataset = "mnist5k",
    split: str = "test",
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    progress: bool = False,
) -> EvalResult:
    """Top-1 with counts, predictions and throughput. `limit` takes the first N images;
    `progress`: a progress bar on a terminal (the CLI)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise AccelsimError(f"batch_size must be a positive integer, found {batch_size!r}")
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    x, y = dataset.split(split)
    if limit is not None:
        if limit < 1:
            raise AccelsimError(f"limit must be >= 1, found {limit}")
        x, y = x[:limit], y[:limit]
    runner, name, info = _resolve_model(model)
    if isinstance(runner, Graph):
        _check_input_shape(runner, dataset)
    if info and dataset.name != info.get("dataset") and dataset.preprocessing != info.get("preprocessing"):
        warnings.warn(
            f"{name} was trained on {info.get('dataset')} with preprocessing '{info.get('preprocessing')}'; "
            f"'{dataset.name}' may be preprocessed differently"
        )
    from ..progress import progress_bar

    preds = np.empty(len(y), dtype=np.int64)
    t0 = time.perf_counter()
    with progress_bar(total=len(y), desc=f"evaluate {name}", unit="img", enabled=progress) as bar:
        for start in range(0, len(y), batch_size):
            chunk = x[start : start + batch_size]
            logits = _logits(runner.run(chunk), len(chunk), f"{name}.run")
            if start == 0 and int(y.max()) >= logits.shape[1]:
                raise AccelsimError(
                    f"{name} has {logits.shape[1]} outputs but '{dataset.name}' has labels up to {int(y.max())}"
                )
            preds[start : start + len(chunk)] = logits.argmax(axis=1)
            bar.update(len(chunk))
    seconds = time.perf_counter() - t0
    return EvalResult(name, dataset.name, split, int((preds == y).sum()), len(y), seconds, preds, info)


def evaluate(
    model: Any,
    data: str | Path | Dataset = "mnist5k",
    split: str = "test",
    batch_size: int = DEFAULT_BATCH_SIZE,
    return_predictions: bool = False,
    limit: int | None = None,
):
    """Top-1 accuracy in [0, 1] of `model` on a dataset split; with `return_predictions=True`,
    (top1, predicted labels)."""
    result = evaluate_detailed(model, data, split, batch_size, limit)
    return (result.top1, result.predictions) if return_predictions else result.top1
