"""The manifest of the bundled trained models (workloads/models.json): per model, its dataset,
preprocessing, FP32 accuracy, training command and checksum. It lives beside the zoo, which
finds the models; quantization (the data-free input range) and evaluation read it."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..errors import AccelsimError
from ..paths import find_bundled

MANIFEST = "models"  # workloads/models.json (JSON, so the zoo does not take it for a graph YAML)


@functools.lru_cache(maxsize=None)
def _manifest_at(path: Path, mtime_ns: int) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AccelsimError(f"{path}: not valid JSON ({exc})") from None
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict):
        raise AccelsimError(f"{path}: expected a mapping 'models: {{name: {{...}}}}'")
    return models


def load_manifest() -> dict[str, dict[str, Any]]:
    """workloads/models.json: per bundled trained model, its dataset, preprocessing, FP32 accuracy, ..."""
    path = find_bundled("workloads", MANIFEST, (".json",))
    if path is None:
        return {}
    return _manifest_at(path.resolve(), path.stat().st_mtime_ns)


def model_info(name: str) -> dict[str, Any] | None:
    """The manifest entry of a bundled trained model, or None."""
    return load_manifest().get(str(name))
