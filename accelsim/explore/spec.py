"""A sweep spec: a base hardware config, workloads, recipes and axes, expanded into points.

```yaml
name: dse-edge-npu                   # default: the file's stem
base: edge-npu-16x16                 # a config name or file (relative to the spec)
workloads: [resnet50, tiny_resnet]   # zoo networks are priced; trained models also get accuracy
recipes: [naive, dfq, {method: dfq, weight_bits: 4}]
data: mnist5k                        # the dataset trained models are measured on
limit: 1000                          # test images per accuracy measurement (default: the whole split)
accuracy: auto                       # auto (trained models) | off (cost only)
grid:                                # every combination
  pe_array.rows: [8, 16, 32]
  recipe.weight_bits: [4, 8]         # `recipe.` fields change the recipe, the rest the config
zip:                                 # lists of one length, varied together
  pe_array.rows: [8, 16]
  pe_array.cols: [8, 16]
random:                              # seeded samples
  samples: 20
  seed: 0
  axes:
    memory.ifmap_sram_kib: [16, 32, 64, 128]       # a list: one value drawn uniformly
    memory.dram_bandwidth_gbps: {low: 4, high: 64, log: true}
timing: native
timeout_s: 600                       # per point (local worker processes)
objectives: [energy_uj_per_inference, latency_ms, top1_integer]   # the Pareto front's (default: also area_mm2)
```

Points are workloads x recipes x grid x zip x random samples. Every axis value is checked
against the base config when the spec loads (a bad value is an error naming its field); a
combination the hardware cannot run (e.g. an asymmetric-weight recipe on symmetric hardware)
becomes a point skipped with its reason.
"""
from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AccelsimError, ConfigError

SPEC_FIELDS = ("name", "base", "workloads", "recipes", "data", "split", "limit", "accuracy", "grid", "zip",
               "random", "timing", "batch", "timeout_s", "calibration_size", "objectives", "title", "notes")
ACCURACY_MODES = ("auto", "off")
RANDOM_FIELDS = ("samples", "seed", "axes")
RECIPE_PREFIX = "recipe."
MAX_POINTS = 1_000_000


@dataclass(frozen=True)
class Point:
    """One design point: a workload, a recipe, and the axis values that make its config."""

    workload: str
    recipe: Any                          # a name, a file or a dict, as the spec gives it
    axes: dict[str, Any]                 # {dotted path: value}; `recipe.` paths change the recipe
    index: int = 0

    @property
    def hw_overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.axes.items() if not k.startswith(RECIPE_PREFIX)}

    @property
    def recipe_overrides(self) -> dict[str, Any]:
        return {k[len(RECIPE_PREFIX):]: v for k, v in self.axes.items() if k.startswith(RECIPE_PREFIX)}


@dataclass
class SweepSpec:
    name: str
    base: Any                            # HwConfig
    base_ref: str
    workloads: list[str]
    recipes: list[Any]
    data: str = "mnist5k"
    split: str = "test"
    limit: int | None = None
    accuracy: str = "auto"
    grid: dict[str, list] = field(default_factory=dict)
    zip: dict[str, list] = field(default_factory=dict)
    random: dict[str, Any] = field(default_factory=dict)
    timing: str = "native"
    batch: int = 1
    timeout_s: float | None = 600.0
    calibration_size: int = 256
    objectives: list[str] = field(default_factory=list)   # empty: analysis.OBJECTIVES
    title: str = ""
    notes: str = ""
    file: str | None = None

    @property
    def axis_names(self) -> list[str]:
        names = list(self.grid) + [k for k in self.zip if k not in self.grid]
        names += [k for k in self.random.get("axes", {}) if k not in names]
        return names

    def points(self) -> list[Point]:
        """Every point, in a stable order (workload, recipe, grid, zip, samples)."""
        grid_keys = list(self.grid)
        grid_rows = [dict(zip(grid_keys, vals)) for vals in itertools.product(*self.grid.values())] or [{}]
        n_zip = len(next(iter(self.zip.values()))) if self.zip else 0
        zip_rows = [{k: v[i] for k, v in self.zip.items()} for i in range(n_zip)] or [{}]
        rand_rows = _random_rows(self.random) or [{}]
        out = []
        for w, r, g, z, s in itertools.product(self.workloads, self.recipes, grid_rows, zip_rows, rand_rows):
            out.append(Point(w, r, {**g, **z, **s}, len(out)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base_ref, "workloads": self.workloads, "recipes": self.recipes,
                "data": self.data, "split": self.split, "limit": self.limit, "accuracy": self.accuracy,
                "grid": self.grid, "zip": self.zip, "random": self.random, "timing": self.timing,
                "batch": self.batch, "timeout_s": self.timeout_s, "calibration_size": self.calibration_size,
                "objectives": self.objectives, "title": self.title, "notes": self.notes}


def _random_rows(rand: dict[str, Any]) -> list[dict[str, Any]]:
    if not rand:
        return []
    rng = random.Random(rand.get("seed", 0))
    rows = []
    for _ in range(rand["samples"]):
        row = {}
        for path, dist in rand["axes"].items():
            if isinstance(dist, list):
                row[path] = dist[rng.randrange(len(dist))]
            else:
                lo, hi = dist["low"], dist["high"]
                u = rng.random()
                v = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if dist.get("log") else lo + u * (hi - lo)
                row[path] = int(round(v)) if dist.get("int") else v
        rows.append(row)
    return rows


def _hint(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _hw_paths(hw) -> list[str]:
    def walk(d: dict, prefix: str):
        for k, v in d.items():
            p = f"{prefix}{k}"
            if isinstance(v, dict) and k != "overrides":
                yield from walk(v, p + ".")
            else:
                yield p
    return [p for p in walk(hw.to_dict(), "") if p != "name"]


def load_sweep(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a sweep spec file; errors name the field (ConfigError, exit 2 at the CLI)."""
    from ..config.load import load_yaml_file

    p = Path(path)
    if not p.is_file():
        raise AccelsimError(f"{path}: sweep spec not found")
    return sweep_from_dict(load_yaml_file(p), file=str(p))


def sweep_from_dict(doc: Any, file: str | None = None) -> SweepSpec:
    from ..config.validate import describe
    from ..quant.pipeline import resolve_hw
    from ..quant.recipe import _FIELDS as RECIPE_FIELDS

    src = file or "sweep"
    if not isinstance(doc, dict):
        raise ConfigError(src, None, f"expected a mapping of sweep fields; found {describe(doc)}")
    for key in doc:
        if key not in SPEC_FIELDS:
            raise ConfigError(src, str(key), f"unknown field{_hint(key, SPEC_FIELDS)}; expected one of "
                              f"{', '.join(SPEC_FIELDS)}")
    here = Path(file).parent if file else Path(".")

    def rel(ref: str) -> str:
        cand = here / ref
        return str(cand) if (cand.suffix and cand.is_file()) else ref

    base_ref = doc.get("base", "edge-npu-16x16")
    if not isinstance(base_ref, str):
        raise ConfigError(src, "base", f"expected a config name or file; found {describe(base_ref)}")
    try:
        base = resolve_hw(rel(base_ref))
    except AccelsimError as e:
        raise ConfigError(src, "base", str(e)) from None

    def str_list(name: str, default=None) -> list:
        v = doc.get(name, default)
        if isinstance(v, (str, dict)):
            v = [v]
        if not isinstance(v, list) or not v:
            raise ConfigError(src, name, f"expected a non-empty list; found {describe(v)}")
        return v

    workloads = str_list("workloads")
    for i, w in enumerate(workloads):
        if not isinstance(w, str):
            raise ConfigError(src, f"workloads[{i}]", f"expected a workload name or file; found {describe(w)}")
        from ..graph.zoo import find_workload_file

        try:
            found = find_workload_file(rel(w))
        except AccelsimError as e:
            raise ConfigError(src, f"workloads[{i}]", str(e)) from None
        if found.suffix.lower() == ".onnx":
            from ..quant.onnx_qdq import is_quantized_onnx

            if is_quantized_onnx(found):
                raise ConfigError(src, f"workloads[{i}]", f"expected a float model (a sweep quantizes it by its "
                                  f"recipes); found {w!r}, already quantized (price or run it as it is with "
                                  f"`accelsim simulate {w}` or `accelsim run --model {w}`)")
    workloads = [rel(w) for w in workloads]
    recipes = str_list("recipes", ["dfq"])
    from ..quant.recipe import load_recipe

    for i, r in enumerate(recipes):
        if not isinstance(r, (str, dict)):
            raise ConfigError(src, f"recipes[{i}]", f"expected a recipe name, file or mapping; found {describe(r)}")
        try:  # the recipe's own fields; whether a point's hardware runs it is decided per point
            load_recipe(rel(r) if isinstance(r, str) else r, _permissive(base))
        except AccelsimError as e:
            raise ConfigError(src, f"recipes[{i}]", str(e)) from None
    recipes = [rel(r) if isinstance(r, str) else r for r in recipes]

    hw_paths = _hw_paths(base)

    def check_axis(where: str, path: Any, values: list) -> None:
        if not isinstance(path, str):
            raise ConfigError(src, where, f"expected a dotted field path; found {describe(path)}")
        if path.startswith(RECIPE_PREFIX):
            f = path[len(RECIPE_PREFIX):]
            if f not in RECIPE_FIELDS:
                raise ConfigError(src, f"{where}.{path}", f"unknown recipe field{_hint(path, [RECIPE_PREFIX + x for x in RECIPE_FIELDS])}; expected "
                                  f"one of {', '.join(RECIPE_PREFIX + x for x in RECIPE_FIELDS)}")
            for j, v in enumerate(values):
                try:
                    load_recipe({"method": "dfq" if f != "method" else v, **({f: v} if f != "method" else {})},
                                _permissive(base))
                except AccelsimError as e:
                    raise ConfigError(src, f"{where}.{path}[{j}]", str(e).split(": ", 1)[-1]) from None
            return
        if path not in hw_paths and not path.startswith("energy.overrides."):
            raise ConfigError(src, f"{where}.{path}", f"unknown config field{_hint(path, hw_paths)}; expected a "
                              f"field of the hardware config (e.g. pe_array.rows) or recipe.<field>")
        for j, v in enumerate(values):
            try:
                base.replace(path, v)
            except AccelsimError as e:
                raise ConfigError(src, f"{where}.{path}[{j}]", e.detail if isinstance(e, ConfigError) else str(e)) \
                    from None

    def axis_map(name: str) -> dict[str, list]:
        m = doc.get(name) or {}
        if not isinstance(m, dict):
            raise ConfigError(src, name, f"expected a mapping of field path -> list of values; found {describe(m)}")
        for path, values in m.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(src, f"{name}.{path}", f"expected a non-empty list of values; found {describe(values)}")
            check_axis(name, path, values)
        return dict(m)

    grid, zipped = axis_map("grid"), axis_map("zip")
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        raise ConfigError(src, "zip", "expected lists of one length (they vary together); found lengths "
                          + ", ".join(f"{k}: {len(v)}" for k, v in zipped.items()))
    both = set(grid) & set(zipped)
    if both:
        raise ConfigError(src, f"zip.{sorted(both)[0]}", "a field is an axis of grid and zip at once")
    rand = doc.get("random") or {}
    if rand:
        if not isinstance(rand, dict):
            raise ConfigError(src, "random", f"expected a mapping with samples, seed, axes; found {describe(rand)}")
        for k in rand:
            if k not in RANDOM_FIELDS:
                raise ConfigError(src, f"random.{k}", f"unknown field{_hint(k, RANDOM_FIELDS)}; expected one of "
                                  f"{', '.join(RANDOM_FIELDS)}")
        n = rand.get("samples")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_POINTS:
            raise ConfigError(src, "random.samples", f"expected an integer in 1..{MAX_POINTS}; found {describe(n)}")
        seed = rand.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(src, "random.seed", f"expected an integer; found {describe(seed)}")
        axes = rand.get("axes")
        if not isinstance(axes, dict) or not axes:
            raise ConfigError(src, "random.axes", f"expected a mapping of field path -> list or "
                              f"{{low, high, log, int}}; found {describe(axes)}")
        for path, dist in axes.items():
            where = f"random.axes.{path}"
            if isinstance(dist, list) and dist:
                check_axis("random.axes", path, dist)
                continue
            if not isinstance(dist, dict) or set(dist) - {"low", "high", "log", "int"} or \
                    not all(isinstance(dist.get(k), (int, float)) and not isinstance(dist.get(k), bool)
                            for k in ("low", "high")):
                raise ConfigError(src, where, f"expected a non-empty list, or {{low: number, high: number, log: bool, "
                                  f"int: bool}}; found {describe(dist)}")
            lo, hi = dist["low"], dist["high"]
            if not lo < hi or (dist.get("log") and lo <= 0):
                raise ConfigError(src, where, f"expected low < high (and low > 0 with log); found low {lo}, high {hi}")
            for v in (lo, hi):
                check_axis("random.axes", path, [int(round(v)) if dist.get("int") else v])
        rand = {"samples": n, "seed": seed, "axes": dict(axes)}
    overlap = (set(grid) | set(zipped)) & set(rand.get("axes", {}))
    if overlap:
        raise ConfigError(src, f"random.axes.{sorted(overlap)[0]}", "a field is a random axis and a grid/zip axis")

    def opt(name: str, kind, default, check=lambda v: True, expect=""):
        v = doc.get(name, default)
        if v is None and default is None:
            return None
        if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool or not check(v):
            raise ConfigError(src, name, f"expected {expect}; found {describe(v)}")
        return v

    from .analysis import OBJECTIVE_CHOICES

    objectives = doc.get("objectives") or []
    if not isinstance(objectives, list) or not all(isinstance(o, str) for o in objectives):
        raise ConfigError(src, "objectives", f"expected a list of figure names; found {describe(objectives)}")
    for i, o in enumerate(objectives):
        if o not in OBJECTIVE_CHOICES:
            raise ConfigError(src, f"objectives[{i}]", f"unknown figure{_hint(o, OBJECTIVE_CHOICES)}; expected one "
                              f"of {', '.join(OBJECTIVE_CHOICES)}")

    from ..data.datasets import DATASETS

    data = opt("data", str, "mnist5k", expect="a dataset name or .npz file")
    if data not in DATASETS:
        data = rel(data)
        if not Path(data).is_file():
            raise ConfigError(src, "data", f"expected one of {', '.join(DATASETS)} or an .npz file; found {data!r}")
    spec = SweepSpec(
        name=opt("name", str, Path(file).stem if file else "sweep", lambda v: bool(v.strip()), "a non-empty name"),
        base=base, base_ref=base_ref, workloads=workloads, recipes=recipes, data=data,
        split=opt("split", str, "test", lambda v: v in ("test", "train"), "test or train"),
        limit=opt("limit", int, None, lambda v: v >= 1, "a positive integer (test images per measurement)"),
        accuracy=opt("accuracy", str, "auto", lambda v: v in ACCURACY_MODES, " or ".join(ACCURACY_MODES)),
        grid=grid, zip=zipped, random=rand,
        timing=opt("timing", str, "native", lambda v: v in ("native", "scalesim"), "native or scalesim"),
        batch=opt("batch", int, 1, lambda v: 1 <= v <= 1 << 20, "a positive integer"),
        timeout_s=opt("timeout_s", (int, float), 600.0, lambda v: v > 0, "a positive number of seconds"),
        calibration_size=opt("calibration_size", int, 256, lambda v: 1 <= v <= 1 << 20, "a positive integer"),
        objectives=list(dict.fromkeys(objectives)), title=opt("title", str, ""), notes=opt("notes", str, ""), file=file,
    )
    n = len(spec.workloads) * len(spec.recipes) * math.prod(len(v) for v in grid.values()) * \
        max(1, len(next(iter(zipped.values()))) if zipped else 1) * max(1, rand.get("samples", 1))
    if n > MAX_POINTS:
        raise ConfigError(src, "grid", f"expected at most {MAX_POINTS:,} points; the axes make {n:,}")
    return spec


def _permissive(hw):
    """The base config with every numeric format allowed: a recipe's own fields are checked
    against it; whether a point's hardware runs the recipe is decided per point."""
    import warnings

    q = hw.quantization
    out = hw
    for path, value in (("precision.weight_bits", 16), ("precision.activation_bits", 16),
                        ("precision.accumulator_bits", 32), ("quantization.weight_scheme", "asymmetric"), ("quantization.activation_scheme", "asymmetric"),
                        ("quantization.weight_granularity", "per_channel")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = out.replace(path, value)
        except AccelsimError:
            pass
    if q.power_unit == "none":
        try:
            out = out.replace("quantization.power_unit", "lut")
        except AccelsimError:
            pass
    return out


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:32]
