"""One design point, end to end: quantize, execute in integers on the grid, measure accuracy,
price the cost. `accelsim run` is this for one point; a sweep runs it for many.

`run_point` returns a `RunResult` (plain data: it pickles to a worker and back) with
- accuracy: FP32, fake-quant and integer top-1 on the dataset's split, and the agreement of
  integer execution with the fake-quant reference (output elements within one LSB);
- cost per inference at batch 1: cycles by cause, latency, energy by component, DRAM traffic
  and bandwidth, area (`accelsim.simulate` on the QGraph: the numeric format it really uses);
- integer execution: overflow events, the accumulator bits the sums needed, rows per path;
- provenance: model, config with overrides, recipe, dataset, accelsim version;
- wall time split into load, quantize, execute (FP32, fake-quant and integer), cost.
"""
from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import AccelsimError

DEFAULTS = {"model": "tiny_mobilenet_v2", "hw": "edge-npu-16x16", "recipe": "dfq", "data": "mnist5k"}


@dataclass
class RunResult:
    summary: dict[str, Any]
    provenance: dict[str, Any]
    timings_s: dict[str, float]
    cost_layers: pd.DataFrame = field(repr=False)
    exec_layers: pd.DataFrame = field(repr=False)
    warnings: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _load_model(model):
    """(Graph or QGraph, provenance)."""
    from ..graph.ir import Graph
    from ..quant.qgraph import QGraph

    if isinstance(model, (Graph, QGraph)):
        return model, {"name": model.name, "source": getattr(model, "source", None)}
    from ..quant.qgraph_io import load_model_or_qgraph

    loaded = load_model_or_qgraph(model)
    if isinstance(loaded, QGraph):
        path = Path(str(model))
        return loaded, {"name": loaded.name, "file": str(path), "sha256": _sha256(path), "quantized_file": True}
    from ..graph.zoo import find_workload_file

    g = loaded
    prov: dict[str, Any] = {"name": g.name}
    try:
        f = find_workload_file(model)
        prov.update(file=str(f), sha256=_sha256(f))
    except AccelsimError:
        pass
    return g, prov


def apply_overrides(hw, overrides: Mapping[str, Any] | None):
    for path, value in (overrides or {}).items():
        hw = hw.replace(path, value)
    return hw


def run_point(model=None, hw=None, recipe=None, data=None, overrides: Mapping[str, Any] | None = None, *,
              split: str = "test", limit: int | None = None, calibration_size: int = 256,
              path: str = "auto", progress: bool = True) -> RunResult:
    """Quantize `model` by `recipe` for `hw` (with `overrides`, {dotted.path: value}), execute it
    in integers on the grid over `data`'s split, and price it. Defaults: tiny_mobilenet_v2,
    edge-npu-16x16, dfq, mnist5k. A model that is already a QGraph (or a saved one) is not
    re-quantized (then `recipe` must be None)."""
    from .. import __version__
    from ..cost.model import simulate
    from ..data import Dataset, load_dataset
    from ..quant import load_recipe, quantize
    from ..quant.pipeline import data_needs, resolve_hw
    from ..quant.qgraph import QGraph
    from ..sim.execute import check_runs_on, execute

    t = {"load": time.perf_counter()}
    caught: list[str] = []
    base_hw = resolve_hw(hw, DEFAULTS["hw"])
    hw = apply_overrides(base_hw, overrides)
    m, model_prov = _load_model(model or DEFAULTS["model"])
    ds = data if isinstance(data, Dataset) else load_dataset(data or DEFAULTS["data"])
    x, y = ds.split(split)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise AccelsimError(f"limit: expected a positive integer, found {limit!r}")
        x, y = x[:limit], y[:limit]
    float_graph = m.float_graph if isinstance(m, QGraph) else m
    if not float_graph.has_params:
        raise AccelsimError(f"{m.name} carries no weights (a shape-only workload): `run` needs a trained model "
                            "(e.g. tiny_mobilenet_v2, an ONNX file); `accelsim simulate` prices shape-only workloads")
    want = tuple(float_graph.shapes(1)[float_graph.inputs[0]][1:]) if len(float_graph.inputs) == 1 else None
    if want is None:
        raise AccelsimError(f"{m.name}: `run` needs a model with one input, found {len(float_graph.inputs)}")
    if want != ds.input_shape:
        raise AccelsimError(f"{m.name} expects inputs of shape {'x'.join(map(str, want))}, but dataset '{ds.name}' "
                            f"has {'x'.join(map(str, ds.input_shape))}")
    from ..progress import stages

    t["quantize"] = time.perf_counter()
    with warnings.catch_warnings(record=True) as w, \
            stages(f"run {m.name}", ["quantize", "fp32", "fake-quant", "integer execution", "cost"],
                   enabled=progress) as step:
        warnings.simplefilter("always")
        step("quantize")
        if isinstance(m, QGraph):
            if recipe is not None:
                raise AccelsimError(f"{model_prov.get('file', m.name)} is already quantized "
                                    f"({m.recipe.label}): drop --recipe")
            qg = m
            check_runs_on(qg, hw)
        else:
            r = load_recipe(recipe or DEFAULTS["recipe"], hw)
            if not r.quantized:
                raise AccelsimError("recipe fp32 quantizes nothing: `run` executes a quantized model "
                                    "(use `accelsim evaluate` for FP32 accuracy)")
            calib = ds.calibration(calibration_size) if data_needs(r) else None
            qg = quantize(m, r, hw=hw, calibration=calib, data=ds)
        t["fp32"] = time.perf_counter()
        step("fp32")
        fp32_logits = float_graph.run(x)
        t["fake_quant"] = time.perf_counter()
        step("fake-quant")
        fq_logits = qg.run(x)
        t["execute"] = time.perf_counter()
        step("integer execution")
        ex = execute(qg, hw, x, path=path, progress=progress)
        t["cost"] = time.perf_counter()
        step("cost")
        cost = simulate(qg, hw)
        t["end"] = time.perf_counter()
    caught = [str(item.message) for item in w]
    for msg in dict.fromkeys(caught):
        warnings.warn(msg, stacklevel=2)

    out_site = qg.graph.outputs[0]
    lsb = float(qg.activations[out_site].scale)
    lsb_diff = np.rint(np.abs(ex.output.astype(np.float64) - fq_logits) / lsb)
    top1 = {k: float((v.reshape(len(y), -1).argmax(1) == y).mean())
            for k, v in (("fp32", fp32_logits), ("fake_quant", fq_logits), ("integer", ex.output))}
    from ..cost.energy import ENERGY_CATEGORIES

    cs = cost.summary
    energy_uj = {c: float(cs[f"energy_{c}_uj"]) for c in ENERGY_CATEGORIES}  # per inference, batch 1
    r = qg.recipe
    summary = {
        "model": qg.name, "hw": hw.name, "recipe": r.label, "data": ds.name, "split": split, "images": int(len(y)),
        "numeric_format": cs.get("numeric_format", r.label),
        "top1_fp32": top1["fp32"], "top1_fake_quant": top1["fake_quant"], "top1_integer": top1["integer"],
        "top1_integer_minus_fp32_points": 100 * (top1["integer"] - top1["fp32"]),
        "integer_vs_fake_quant_within_1_lsb": float((lsb_diff <= 1).mean()),
        "integer_vs_fake_quant_equal": float((lsb_diff == 0).mean()),
        "integer_vs_fake_quant_max_lsb": int(lsb_diff.max(initial=0)),
        "total_cycles": int(cs["total_cycles"]), "compute_cycles": int(cs["compute_cycles"]),
        "overhead_cycles": int(cs["overhead_cycles"]), "stall_cycles": int(cs["stall_cycles"]),
        "latency_ms": float(cs["latency_ms"]), "utilisation": float(cs["utilisation"]),
        "energy_uj_per_inference": float(cs["energy_uj_per_inference"]),
        **{f"energy_{k}_uj": v for k, v in energy_uj.items()},
        "dram_mib": float(cs["dram_mib"]), "avg_dram_gbps": float(cs["avg_dram_gbps"]),
        "peak_dram_gbps": float(cs["peak_dram_gbps"]), "area_mm2": float(cs["area_mm2"]),
        "tops_per_w": float(cs["tops_per_w"]), "macs": int(cs["macs"]),
        "overflow_events": int(ex.summary["overflow_events"]),
        "overflow_events_per_image": ex.summary["overflow_events"] / len(y),
        "layers_overflowing": int(ex.summary["layers_overflowing"]),
        "accumulator_bits": int(hw.precision.accumulator_bits),
        "accumulator_overflow": hw.precision.accumulator_overflow,
        "accumulator_bits_needed": int(ex.summary["acc_bits_needed"]),
        "bias_scale_raised_layers": len(qg.info.get("bias_scale_raised", {})),
        "array_rows": int(ex.summary["array_rows"]), "fast_rows": int(ex.summary["fast_rows"]),
    }
    timings = {
        "load": t["quantize"] - t["load"], "quantize": t["fp32"] - t["quantize"],
        "fp32": t["fake_quant"] - t["fp32"], "fake_quant": t["execute"] - t["fake_quant"],
        "execute": t["cost"] - t["execute"], "cost": t["end"] - t["cost"], "total": t["end"] - t["load"],
    }
    from ..provenance import git_revision

    provenance = {
        "accelsim_version": __version__,
        "git_revision": git_revision(),
        "model": model_prov,
        "hw": {"name": hw.name, "file": base_hw.source_file, "overrides": dict(overrides or {}),
               "config": hw.to_dict()},
        "recipe": {**r.to_dict(), "source": r.source,
                   "input_range_source": qg.info.get("input_range_source"),
                   "activation_range": qg.info.get("activation_range")},
        "dataset": {"name": ds.name, "split": split, "images": int(len(y)), "source": ds.source,
                    "preprocessing": ds.preprocessing},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return RunResult(summary, provenance, timings, cost.layers, ex.layers, list(dict.fromkeys(caught)))
