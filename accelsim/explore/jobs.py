"""Sweep jobs: resolving points (in the sweep process), measuring and pricing them (in workers).

A point resolves to plain data: its key, its hardware as a dict, its recipe as a dict, and two
accuracy keys. Accuracy depends on the model, the recipe, the numeric configuration
(`precision`, `quantization`) and the data, not on the array's size or the memory: it is
measured once per `accuracy_key`. One exception is kept exact: where a sum may overflow the
accumulator, the executor runs the array in its accumulation order, which depends on
`pe_array`; a measurement that used the array for any row is reused only under the finer
`pe_accuracy_key`.
"""
from __future__ import annotations

import functools
import signal
import threading
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import AccelsimError
from .spec import Point, SweepSpec, content_hash

# The accuracy figures a sweep keeps from a run (accelsim run's summary has them all).
ACCURACY_FIELDS = [
    "images", "top1_fp32", "top1_fake_quant", "top1_integer", "top1_integer_minus_fp32_points",
    "integer_vs_fake_quant_within_1_lsb", "integer_vs_fake_quant_equal", "integer_vs_fake_quant_max_lsb",
    "overflow_events", "overflow_events_per_image", "layers_overflowing", "accumulator_bits_needed",
    "bias_scale_raised_layers", "array_rows", "fast_rows",
]
COST_FIELDS = [
    "total_cycles", "compute_cycles", "overhead_cycles", "stall_cycles", "latency_ms", "inferences_per_s",
    "utilisation", "energy_uj_per_inference", "tops_per_w", "avg_power_w", "dram_mib", "avg_dram_gbps",
    "peak_dram_gbps", "area_mm2", "macs", "layers", "numeric_format",
]
LAYER_FIELDS = ["layer", "op", "M", "K", "N", "groups", "compute_cycles", "zero_point_cycles", "tiling_cycles",
                "power_unit_cycles", "stall_cycles", "total_cycles", "utilisation", "dram_bytes", "energy_pj"]


class PointTimeout(Exception):
    pass


@functools.lru_cache(maxsize=64)
def _workload_identity(ref: str) -> dict[str, Any]:
    from ..graph.zoo import find_workload_file
    from .point import _sha256

    f = find_workload_file(ref)
    return {"ref": ref, "file": f.name, "sha256": _sha256(f)}


@functools.lru_cache(maxsize=16)
def _graph(ref: str):
    from ..graph.zoo import load_model

    return load_model(ref)


@functools.lru_cache(maxsize=4)
def _dataset(name: str):
    from ..data import load_dataset

    return load_dataset(name)


def resolve(spec: SweepSpec, point: Point, version: str) -> dict[str, Any]:
    """A point as plain data for a worker, or a skipped point with its reason."""
    from ..quant.recipe import load_recipe

    ident = _workload_identity(point.workload)
    name = _graph(point.workload).name
    base = {"sweep": spec.name, "idx": point.index, "workload": name, "axes": dict(point.axes), "version": version}
    recipe_ref = point.recipe if isinstance(point.recipe, str) else dict(point.recipe)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an accumulator warning is the point's to report, not the sweep's
            hw = spec.base
            for path, value in point.hw_overrides.items():
                hw = hw.replace(path, value)
            recipe = load_recipe(recipe_ref, hw, point.recipe_overrides or None)
    except AccelsimError as e:
        label = recipe_ref if isinstance(recipe_ref, str) else recipe_ref.get("method", "recipe")
        skip_key = content_hash({"skip": True, "base": spec.base.to_dict(), "workload": ident, "recipe": recipe_ref,
                                 "axes": point.axes, "version": version})
        return {**base, "key": skip_key, "recipe": str(label), "status": "skipped", "error": str(e)}
    needs_accuracy = spec.accuracy == "auto" and _graph(point.workload).has_params and recipe.quantized
    hw_dict = hw.to_dict()
    data = {"data": spec.data, "split": spec.split, "limit": spec.limit,
            "calibration_size": spec.calibration_size} if needs_accuracy else None
    key = content_hash({"hw": hw_dict, "workload": ident, "recipe": recipe.to_dict(), "data": data,
                        "timing": spec.timing, "batch": spec.batch, "version": version})
    out = {**base, "key": key, "recipe": recipe.label, "status": "pending", "hw": hw_dict,
           "recipe_dict": recipe.to_dict(), "workload_ref": point.workload, "timing": spec.timing,
           "batch": spec.batch, "timeout_s": spec.timeout_s, "data": data, "accuracy_key": None,
           "pe_accuracy_key": None}
    if needs_accuracy:
        numeric = {"workload": ident, "recipe": recipe.to_dict(), "data": data, "version": version,
                   "precision": hw_dict["precision"], "quantization": hw_dict["quantization"]}
        out["accuracy_key"] = content_hash(numeric)
        out["pe_accuracy_key"] = content_hash({**numeric, "pe_array": hw_dict["pe_array"]})
    return out


@contextmanager
def _deadline(seconds: float | None):
    """Raise PointTimeout in this thread after `seconds` (a signal timer: the main thread of a
    worker process; elsewhere, e.g. a Dask worker thread, no limit is enforced)."""
    usable = seconds and threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise PointTimeout(f"timed out after {seconds:g} s (timeout_s)")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _failure(e: BaseException) -> tuple[str, str]:
    if isinstance(e, PointTimeout):
        return "timeout", str(e)
    if isinstance(e, AccelsimError):
        return "error", str(e)
    where = traceback.extract_tb(e.__traceback__)[-1]  # an unexpected failure: say where, for a bug report
    return "error", f"{type(e).__name__}: {e} (at {Path(where.filename).name}:{where.lineno} in {where.name})"


def _hw_recipe(task: dict):
    from ..config.validate import hw_from_dict
    from ..quant.recipe import load_recipe

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hw = hw_from_dict(task["hw"], file=f"sweep point {task['idx']}")
    return hw, load_recipe(task["recipe_dict"], hw)


def accuracy_job(task: dict) -> dict:
    """Measure a point's accuracy (quantize, FP32, fake-quant and integer execution on the
    grid). Returns {"status", "summary" | "error", "wall_s"}; never raises for a bad point."""
    from .point import run_point

    t0 = time.perf_counter()
    try:
        with _deadline(task.get("timeout_s")):
            hw, recipe = _hw_recipe(task)
            d = task["data"]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = run_point(_graph(task["workload_ref"]), hw, recipe, _dataset(d["data"]), split=d["split"],
                                limit=d["limit"], calibration_size=d["calibration_size"], progress=False)
        summary = {k: res.summary[k] for k in ACCURACY_FIELDS}
        summary["pe_independent"] = res.summary["array_rows"] == 0
        summary["accuracy_wall_s"] = time.perf_counter() - t0
        summary["accuracy_warnings"] = "; ".join(dict.fromkeys(str(w.message) for w in caught))
        return {"status": "ok", "summary": summary, "wall_s": time.perf_counter() - t0}
    except BaseException as e:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
        if isinstance(e, KeyboardInterrupt):
            raise
        status, msg = _failure(e)
        return {"status": status, "error": msg, "wall_s": time.perf_counter() - t0}


def cost_one(task: dict) -> dict:
    """Price one resolved point (see `price`)."""
    hw, recipe = _hw_recipe(task)
    return price(_graph(task["workload_ref"]), hw, recipe, task["timing"], task["batch"])


def price(graph, hw, recipe, timing: str = "native", batch: int = 1) -> dict:
    """Summary figures, energy by component (uJ per inference) and a compact per-layer table of
    `graph` on `hw` in `recipe`'s numeric format."""
    from ..cost.model import simulate

    res = simulate(graph, hw, timing=timing, batch=batch, recipe=recipe)
    s = res.summary
    summary = {k: s[k] for k in COST_FIELDS if k in s}
    summary["numeric_format"] = s.get("numeric_format", recipe.label)
    summary.update({k: v for k, v in s.items() if k.startswith("energy_") and k.endswith("_uj")})  # by component
    layers = res.layers
    table = layers[[c for c in LAYER_FIELDS if c in layers.columns]]
    return {"summary": summary, "layers": table.to_dict("records")}


def cost_job(tasks: list[dict]) -> list[dict]:
    """Price a chunk of points; each result is {"key", "status", "summary"/"layers" | "error", "wall_s"}."""
    out = []
    for task in tasks:
        t0 = time.perf_counter()
        try:
            with _deadline(task.get("timeout_s")):
                r = cost_one(task)
            out.append({"key": task["key"], "status": "ok", **r, "wall_s": time.perf_counter() - t0})
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            status, msg = _failure(e)
            out.append({"key": task["key"], "status": status, "error": msg, "wall_s": time.perf_counter() - t0})
    return out
