"""Saving and loading a quantized model (`QGraph`) as one self-contained ``.npz`` file.

`save_qgraph(qg, "q.npz")` writes everything the integer model and its fake-quant reference
need, so that `load_qgraph("q.npz")` rebuilds the QGraph without re-running quantization:
the same `run(x)` outputs bit for bit, the same integer codes from `accelsim.execute`, the
same recipe, layers, activation quantizers and float graphs. A human-readable ``q.json``
with the same metadata is written next to it; the loader never reads it.

Inside the npz (``np.savez_compressed``; never pickled, loaded with ``allow_pickle=False``):

``__meta__``
    uint8 array: the UTF-8 JSON metadata. ``format`` (``accelsim-qgraph-2``),
    ``accelsim_version``, ``name``, ``hw`` (the config name it was quantized for), ``recipe``
    (`Recipe.to_dict()`) and ``recipe_source``, ``graph`` (`graph_to_dict`) and
    ``graph_source``, ``params`` (node -> parameter names), ``float_graph`` (null when it is
    the graph itself, else its structure where it differs and which parameters it has of its
    own), ``inputs``/``outputs``/``sites`` (graph inputs and outputs, activation sites in
    order), ``layers`` (per conv/linear layer: op, fused activation, input and output site,
    the weight, input and output quantizers' bits, scheme, qmin, qmax, axis, the channels
    whose bias raised the weight scale, the in-memory dtypes of its integer arrays),
    ``activations`` (per site: bits, scheme, qmin, qmax, axis), ``fused_activations``,
    ``bias_scale_raised``, ``equalization`` (sets, skipped, iterations, converged, the scaled
    pairs), ``absorbed``, ``bias_corrected``, ``info`` (the JSON-able entries of
    ``QGraph.info``), ``info_arrays`` (entries stored as arrays), ``info_dropped``
    (entries that are neither), ``info_order``, and ``arrays``: the manifest, key ->
    [dtype, shape] of every array below, checked on load.
``graph/<node>/<param>``
    the float parameters of every node of ``qg.graph`` (weights, biases, BN statistics), in
    their own dtype.
``float_graph/<node>/<param>``
    the parameters of ``qg.float_graph`` (the FP32 model before bias correction) that differ
    from the graph's; the others are the graph's.
``layer/<name>/weight_int``
    integer weights in the smallest dtype holding the grid (int8 / uint8 for 8 bits);
``layer/<name>/weight_scale``, ``weight_zero_point``, ``bias_int32`` (int32),
``accumulator_bias`` (int32 where it fits, else int64), ``requant_multiplier``,
``requant_shift`` (int32), ``input_scale``, ``input_zero_point``, ``output_scale``,
``output_zero_point``
    the rest of each integer layer.
``act/<site>/scale``, ``act/<site>/zero_point``
    every activation site's quantizer.
``cle/<A>-><B>``
    the cumulative cross-layer equalization scale of each equalized pair.
``info/<entry>/<layer>``, ``info/<entry>``
    the other array parts of ``QGraph.info`` (absorbed amounts, bias corrections).

The ``layer/``, ``act/`` and ``cle/`` arrays are those of `QGraph.arrays()` (what format 1
held), in the same dtypes.

A file written by another accelsim version or format is refused (an `AccelsimError` naming
the file and both versions): quantization may have changed between versions, and a file's
integers are only meaningful to the code that made them.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AccelsimError, GraphError
from ..graph.ir import Graph
from .qgraph import LayerQuant, QGraph, _int_dtype
from .quantizers import QuantParams

FORMAT = "accelsim-qgraph-2"
FORMAT_PREFIX = "accelsim-qgraph"
META_KEY = "__meta__"
_LAYER_INT_FIELDS = ("weight_int", "bias_int32", "accumulator_bias", "requant_multiplier", "requant_shift")


class _Corrupt(Exception):
    """A file that says it is an accelsim QGraph of this format but does not hold together."""


# ----------------------------------------------------------------------------- helpers


def _version() -> str:
    from .. import __version__

    return __version__


def _npz_path(path: str | os.PathLike) -> Path:
    out = Path(path)
    return out if out.suffix == ".npz" else out.with_name(out.name + ".npz")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical arrays (dtype, shape and bytes: -0.0 and NaNs included)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _json_able(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _plain_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype != object and value.dtype.kind in "biufc"


def _qp_meta(q: QuantParams) -> dict[str, Any]:
    m = {"bits": int(q.bits), "scheme": q.scheme, "qmin": int(q.qmin), "qmax": int(q.qmax),
         "axis": None if q.axis is None else int(q.axis),
         "granularity": "per_channel" if q.per_channel else "per_tensor"}
    if q.power is not None:  # PowerQuant grids
        m.update(power=float(q.power), offset=float(q.offset))
    return m


def _same_qp(a: QuantParams, b: QuantParams) -> bool:
    return (_qp_meta(a) == _qp_meta(b) and _same(a.scale, b.scale) and _same(a.zero_point, b.zero_point))


def _smallest_int(values: np.ndarray, candidates=(np.int32, np.int64)) -> np.ndarray:
    values = np.asarray(values)
    if values.size == 0:
        return values.astype(candidates[0])
    lo, hi = int(values.min()), int(values.max())
    for dtype in candidates:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return values.astype(dtype)
    return values


# ----------------------------------------------------------------------------- saving


def _encode(qg: QGraph) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, metadata) of a QGraph: what `save_qgraph` writes."""
    from ..graph.yaml_io import graph_to_dict
    from .equalize import EqualizationInfo

    arrays: dict[str, np.ndarray] = {}

    def put(key: str, value) -> None:
        if key in arrays or key == META_KEY:
            raise AccelsimError(f"cannot save {qg.name}: two arrays would share the key '{key}' "
                                "(layer names that differ only by a '/' suffix)")
        value = np.asarray(value)
        if not _plain_array(value):
            raise AccelsimError(f"cannot save {qg.name}: '{key}' is not a numeric array ({value.dtype})")
        arrays[key] = value

    g = qg.graph
    params: dict[str, list[str]] = {}
    for node in g.nodes:
        if node.params:
            params[node.name] = list(node.params)
            for key, value in node.params.items():
                put(f"graph/{node.name}/{key}", value)

    fg = qg.float_graph
    float_meta = None
    if fg is not None and fg is not g:
        structure = graph_to_dict(fg)
        float_meta = {"graph": None if structure == graph_to_dict(g) else structure, "source": fg.source,
                      "params": {}}
        for node in fg.nodes:
            if not node.params:
                continue
            own = g[node.name].params if node.name in g else {}
            entry = {}
            for key, value in node.params.items():
                if key in own and _same(own[key], value):
                    entry[key] = "shared"
                else:
                    entry[key] = "own"
                    put(f"float_graph/{node.name}/{key}", value)
            float_meta["params"][node.name] = entry

    layers_meta: dict[str, Any] = {}
    for name, lq in qg.layers.items():
        p = f"layer/{name}/"
        wq = lq.weight_q
        put(p + "weight_int", np.asarray(lq.weight_int).astype(_int_dtype(wq.qmin, wq.qmax)))
        put(p + "weight_scale", wq.scale)
        put(p + "weight_zero_point", wq.zero_point)
        put(p + "bias_int32", np.asarray(lq.bias_int32).astype(np.int32))
        put(p + "accumulator_bias", _smallest_int(lq.accumulator_bias))
        put(p + "requant_multiplier", np.asarray(lq.requant_multiplier).astype(np.int32))
        put(p + "requant_shift", np.asarray(lq.requant_shift).astype(np.int32))
        put(p + "input_scale", lq.input_q.scale)
        put(p + "input_zero_point", lq.input_q.zero_point)
        put(p + "output_scale", lq.output_q.scale)
        put(p + "output_zero_point", lq.output_q.zero_point)
        if lq.bias_float is not None:
            put(p + "bias_float", np.asarray(lq.bias_float, np.float64))
        for field_name in _LAYER_INT_FIELDS:  # loaded back into exactly these dtypes
            stored = arrays[p + field_name]
            if not _same(stored.astype(np.asarray(getattr(lq, field_name)).dtype), getattr(lq, field_name)):
                raise AccelsimError(f"cannot save {qg.name}: layer '{name}': {field_name} does not fit "
                                    f"{stored.dtype}")
        layers_meta[name] = {
            "op": lq.op, "fused_activation": lq.fused_activation,
            "input_site": lq.input_site, "output_site": lq.output_site,
            "weight": _qp_meta(wq), "input": _qp_meta(lq.input_q), "output": _qp_meta(lq.output_q),
            "bias_scale_raised": [int(c) for c in lq.bias_scale_raised],
            "dtypes": {f: str(np.asarray(getattr(lq, f)).dtype) for f in _LAYER_INT_FIELDS},
            "requant": "y = z_out + round(acc * multiplier / 2^shift), clamped",
        }

    acts_meta: dict[str, Any] = {}
    for site, q in qg.activations.items():
        put(f"act/{site}/scale", q.scale)
        put(f"act/{site}/zero_point", q.zero_point)
        acts_meta[site] = _qp_meta(q)

    info_json: dict[str, Any] = {}
    info_arrays: dict[str, Any] = {}
    dropped: list[str] = []
    eq_meta = None
    for key, value in qg.info.items():
        if key == "equalization" and isinstance(value, EqualizationInfo):
            pairs = []
            for (a, b), s in value.scales.items():
                put(f"cle/{a}->{b}", s)
                pairs.append([a, b])
            eq_meta = {"iterations": int(value.iterations), "converged": bool(value.converged),
                       "sets": [[[l.a, l.b, list(l.between)] for l in links] for links in value.sets],
                       "skipped": [list(s) for s in value.skipped], "scales": pairs}
        elif _plain_array(value):
            put(f"info/{key}", value)
            info_arrays[key] = "array"
        elif (isinstance(value, dict) and all(isinstance(k, str) for k in value)
              and all(_plain_array(v) for v in value.values())):
            for k, v in value.items():
                put(f"info/{key}/{k}", v)
            info_arrays[key] = list(value)
        elif _json_able(value):
            info_json[key] = value
        else:
            dropped.append(key)

    recipe = qg.recipe
    meta: dict[str, Any] = {
        "format": FORMAT,
        "accelsim_version": _version(),
        "name": g.name,
        "hw": qg.hw_name,
        "recipe": recipe.to_dict() if hasattr(recipe, "to_dict") else str(recipe),
        "recipe_source": getattr(recipe, "source", None),
        "graph": graph_to_dict(g),
        "graph_source": g.source,
        "params": params,
        "float_graph": float_meta,
        "inputs": list(g.inputs),
        "outputs": list(g.outputs),
        "sites": list(qg.activations),
        "layers": layers_meta,
        "activations": acts_meta,
        "fused_activations": {n: lq.fused_activation for n, lq in qg.layers.items() if lq.fused_activation},
        "bias_scale_raised": qg.info.get("bias_scale_raised", {}),
        "equalization": eq_meta,
        "absorbed": sorted(qg.info.get("absorbed", {}) or {}),
        "bias_corrected": sorted(qg.info.get("bias_correction", {}) or {}),
        "info": info_json,
        "info_arrays": info_arrays,
        "info_dropped": dropped,
        "info_order": [k for k in qg.info if k not in dropped],
        "arrays": {k: [str(v.dtype), list(v.shape)] for k, v in arrays.items()},
    }
    return arrays, meta


def save_qgraph(qg: QGraph, path: str | os.PathLike, sidecar: bool = True) -> Path:
    """Write `qg` as one self-contained ``.npz`` (".npz" is appended when `path` lacks it), and,
    with `sidecar`, its metadata as readable JSON next to it (``q.npz`` -> ``q.json``).
    Both are written all or nothing (`write_together`), with the mode of a normal file (0666
    less the umask). Returns the path of the npz."""
    from ..files import write_atomic, write_together

    out = _npz_path(path)
    arrays, meta = _encode(qg)
    text = json.dumps(meta, indent=1) + "\n"
    payload = {META_KEY: np.frombuffer(text.encode("utf-8"), np.uint8), **arrays}

    def write_npz(tmp) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **payload)

    if not sidecar:
        write_atomic(out, write_npz)
        return out
    json_path = out.with_suffix(".json")

    def write_both(folder: Path) -> None:
        write_npz(folder / out.name)
        (folder / json_path.name).write_text(text, encoding="utf-8")

    write_together([out, json_path], write_both)
    return out


# ----------------------------------------------------------------------------- loading


def _read_meta_bytes(raw: np.ndarray) -> dict[str, Any] | None:
    try:
        meta = json.loads(np.asarray(raw, np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, TypeError):
        return None
    return meta if isinstance(meta, dict) else None


def _is_format1(keys) -> bool:
    """An npz written by `accelsim quantize --out` before the format had its metadata inside."""
    return any(k.startswith("layer/") and k.endswith("/weight_int") for k in keys)


def is_qgraph_file(path: str | os.PathLike) -> bool:
    """True when `path` is an npz written by accelsim for a quantized model (any format or
    version: `load_qgraph` then says whether this version can read it). Never raises."""
    try:
        p = Path(path)
        if not p.is_file() or not zipfile.is_zipfile(p):
            return False
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
            if META_KEY + ".npy" in names:
                with zf.open(META_KEY + ".npy") as f:
                    raw = np.lib.format.read_array(f, allow_pickle=False)
                meta = _read_meta_bytes(raw)
                return bool(meta) and str(meta.get("format", "")).startswith(FORMAT_PREFIX)
            return _is_format1(n[:-4] for n in names if n.endswith(".npy"))
    except Exception:  # noqa: BLE001 - a probe: anything unreadable is not a QGraph file
        return False


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(metadata, arrays) of an npz, with errors that name the file."""
    not_ours = f"{path}: not an accelsim quantized model"
    if not path.exists():
        raise AccelsimError(f"{path}: file not found")
    if path.is_dir():
        raise AccelsimError(f"{path}: is a directory; expected an .npz file written by accelsim quantize --out")
    try:
        if not zipfile.is_zipfile(path):
            raise AccelsimError(f"{not_ours} (not an .npz archive, or a truncated one)")
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            if META_KEY not in keys:
                if _is_format1(keys):
                    raise AccelsimError(
                        f"{path}: saved by an earlier accelsim (format accelsim-qgraph-1, metadata in a .json "
                        f"beside it); this is accelsim {_version()} (format {FORMAT}): re-run accelsim quantize")
                raise AccelsimError(f"{not_ours} (no {META_KEY} entry)")
            meta = _read_meta_bytes(z[META_KEY])
            if meta is None or not str(meta.get("format", "")).startswith(FORMAT_PREFIX):
                raise AccelsimError(f"{not_ours} ({META_KEY} is not accelsim-qgraph metadata)")
            _check_format(path, meta)
            arrays = {k: z[k] for k in keys if k != META_KEY}
    except AccelsimError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AccelsimError(f"{not_ours} (unreadable or truncated: {detail})") from None
    return meta, arrays


def _check_format(path: Path, meta: dict[str, Any]) -> None:
    fmt, version = meta.get("format"), meta.get("accelsim_version")
    if fmt != FORMAT or version != _version():
        saved = f"accelsim {version}" if version else "an earlier accelsim"
        raise AccelsimError(f"{path}: saved by {saved} (format {fmt}); this is accelsim {_version()} "
                            f"(format {FORMAT}): re-run accelsim quantize")


def _check_manifest(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    manifest = meta.get("arrays")
    if not isinstance(manifest, dict):
        raise _Corrupt("the metadata has no array manifest")
    for key, entry in manifest.items():
        if key not in arrays:
            raise _Corrupt(f"array '{key}' is missing (a truncated or edited file)")
        dtype, shape = entry
        arr = arrays[key]
        if tuple(arr.shape) != tuple(shape):
            raise _Corrupt(f"array '{key}' has shape {tuple(arr.shape)}, expected {tuple(shape)}")
        if str(arr.dtype) != dtype:
            raise _Corrupt(f"array '{key}' has dtype {arr.dtype}, expected {dtype}")


class _Arrays:
    """Lookup with shape checks: `get(key, shape)` raises _Corrupt naming the array."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    def get(self, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        if key not in self.arrays:
            raise _Corrupt(f"array '{key}' is missing")
        arr = self.arrays[key]
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise _Corrupt(f"array '{key}' has shape {tuple(arr.shape)}, expected {tuple(shape)}")
        return arr


def _qp(m: dict[str, Any], scale: np.ndarray, zero_point: np.ndarray, where: str,
        channels: int | None = None) -> QuantParams:
    axis = m["axis"]
    want = () if axis is None else ((channels,) if channels is not None else None)
    if want is not None and scale.shape != want:
        raise _Corrupt(f"{where}: scale has shape {scale.shape}, expected {want}")
    if axis is not None and scale.ndim != 1:
        raise _Corrupt(f"{where}: a per-channel scale must be 1-D, found shape {scale.shape}")
    if zero_point.shape not in ((), scale.shape):
        raise _Corrupt(f"{where}: zero_point has shape {zero_point.shape}, expected {scale.shape}")
    if scale.dtype.kind != "f" or zero_point.dtype.kind not in "iu":
        raise _Corrupt(f"{where}: scale must be float and zero_point integer; found {scale.dtype}, {zero_point.dtype}")
    return QuantParams(int(m["bits"]), str(m["scheme"]), scale, zero_point, int(m["qmin"]), int(m["qmax"]),
                       None if axis is None else int(axis), power=m.get("power"), offset=float(m.get("offset", 0.0)))


def _build_graph(structure: dict, source: str | None, params: dict[str, list[str] | dict[str, str]],
                 fetch, what: str) -> Graph:
    from ..graph.yaml_io import graph_from_dict

    g = graph_from_dict(structure, what)
    g.source = source
    for node_name, keys in params.items():
        if node_name not in g:
            raise _Corrupt(f"{what}: parameters for '{node_name}', which is not a node")
        node = g[node_name]
        for key in keys:
            node.params[key] = fetch(node_name, key, keys)
    g.shapes(1)  # checks conv/linear/BN parameter shapes against the structure
    return g


def _build(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> QGraph:
    from .equalize import EqualizationInfo
    from .patterns import Link
    from .recipe import Recipe, Steps

    _check_manifest(meta, arrays)
    a = _Arrays(arrays)

    graph = _build_graph(meta["graph"], meta.get("graph_source"), meta["params"],
                         lambda n, k, _: a.get(f"graph/{n}/{k}"), "graph")
    fm = meta.get("float_graph")
    float_graph = None
    if fm is not None:
        def fetch_float(n: str, k: str, keys: dict[str, str]) -> np.ndarray:
            if keys[k] == "own":
                return a.get(f"float_graph/{n}/{k}")
            if n not in graph or k not in graph[n].params:
                raise _Corrupt(f"float_graph: '{n}' shares parameter '{k}' with the graph, which has none")
            return graph[n].params[k].copy()

        float_graph = _build_graph(fm["graph"] or meta["graph"], fm.get("source"), fm["params"], fetch_float,
                                   "float_graph")

    activations: dict[str, QuantParams] = {}
    for site, m in meta["activations"].items():
        if site not in graph:
            raise _Corrupt(f"activation site '{site}' is not a node of the graph")
        activations[site] = _qp(m, a.get(f"act/{site}/scale"), a.get(f"act/{site}/zero_point"), f"site '{site}'")

    layers: dict[str, LayerQuant] = {}
    for name, m in meta["layers"].items():
        if name not in graph:
            raise _Corrupt(f"layer '{name}' is not a node of the graph")
        node = graph[name]
        if node.op != m["op"] or node.weight is None:
            raise _Corrupt(f"layer '{name}': the graph has a {node.op} node without the weights of a {m['op']}")
        w_shape = tuple(node.weight.shape)
        c = w_shape[0]
        p = f"layer/{name}/"
        dtypes = m["dtypes"]
        where = f"layer '{name}'"
        wm = m["weight"]
        channels = None if wm["axis"] is None else w_shape[int(wm["axis"])]
        weight_q = _qp(wm, a.get(p + "weight_scale"), a.get(p + "weight_zero_point"), where + " weight", channels)
        ints = {f: a.get(p + f, w_shape if f == "weight_int" else (c,)).astype(np.dtype(dtypes[f]))
                for f in _LAYER_INT_FIELDS}
        for site_key in ("input_site", "output_site"):
            if m[site_key] not in activations:
                raise _Corrupt(f"{where}: {site_key} '{m[site_key]}' is not an activation site")
        qs = {}
        for side in ("input", "output"):
            q = _qp(m[side], a.get(p + f"{side}_scale"), a.get(p + f"{side}_zero_point"), f"{where} {side}")
            shared = activations[m[f"{side}_site"]]
            qs[side] = shared if _same_qp(q, shared) else q  # the site's own object, as quantize() links them
        layers[name] = LayerQuant(
            name, m["op"], weight_q, ints["weight_int"], ints["bias_int32"], m["input_site"], m["output_site"],
            qs["input"], qs["output"], ints["requant_multiplier"], ints["requant_shift"], m["fused_activation"],
            tuple(int(ch) for ch in m["bias_scale_raised"]), ints["accumulator_bias"],
            a.get(p + "bias_float") if p + "bias_float" in a.arrays else None)

    info: dict[str, Any] = dict(meta.get("info") or {})
    for key, spec in (meta.get("info_arrays") or {}).items():
        info[key] = a.get(f"info/{key}") if spec == "array" else {k: a.get(f"info/{key}/{k}") for k in spec}
    eq = meta.get("equalization")
    if eq is not None:
        sets = [tuple(Link(str(x), str(y), tuple(between)) for x, y, between in links) for links in eq["sets"]]
        scales = {(str(x), str(y)): a.get(f"cle/{x}->{y}") for x, y in eq["scales"]}
        info["equalization"] = EqualizationInfo(sets, [tuple(s) for s in eq["skipped"]], int(eq["iterations"]),
                                                bool(eq["converged"]), scales)
    order = list(meta.get("info_order") or [])
    if order:
        info = {k: info[k] for k in order if k in info} | info

    rm = meta["recipe"]
    if isinstance(rm, dict):
        rm = dict(rm)
        steps = Steps(**rm.pop("steps"))
        if rm.get("input_range") is not None:
            rm["input_range"] = tuple(float(v) for v in rm["input_range"])
        recipe: Any = Recipe(**rm, steps=steps, source=meta.get("recipe_source") or "recipe")
    else:
        recipe = rm
    return QGraph(graph, recipe, layers, activations, info, meta.get("hw"), float_graph)


def load_qgraph(path: str | os.PathLike) -> QGraph:
    """The QGraph saved in `path` by `save_qgraph` / `QGraph.save` / ``accelsim quantize --out``,
    rebuilt from the file alone (no re-quantization). Raises AccelsimError, one line naming
    the file, for anything that is not such a file, a file of another accelsim version or
    format, and arrays that do not fit the model they belong to."""
    path = Path(path)
    meta, arrays = _read(path)
    try:
        return _build(meta, arrays)
    except _Corrupt as exc:
        raise AccelsimError(f"{path}: corrupt accelsim quantized model: {exc}") from None
    except GraphError as exc:
        raise AccelsimError(f"{path}: corrupt accelsim quantized model: {str(exc).splitlines()[0]}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        raise AccelsimError(f"{path}: corrupt accelsim quantized model: {detail}") from None


__all__ = ["FORMAT", "is_qgraph_file", "load_qgraph", "save_qgraph"]


def load_model_or_qgraph(name_or_path):
    """A quantized model saved by accelsim (an .npz) or a quantized ONNX file (QDQ or QOperator
    form, `onnx_qdq`) as a QGraph; anything else `load_model` takes (zoo name, graph YAML,
    ONNX, SCALE-Sim CSV) as a Graph."""
    from ..errors import AccelsimError
    from ..graph.zoo import load_model

    path = Path(str(name_or_path))
    if path.suffix.lower() == ".onnx":
        from .onnx_qdq import is_quantized_onnx, load_quantized_onnx

        if is_quantized_onnx(path):
            return load_quantized_onnx(path)
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise AccelsimError(f"{path}: no such file")
        if not is_qgraph_file(path):
            raise AccelsimError(f"{path}: not a quantized model saved by accelsim (accelsim quantize --out)")
        return load_qgraph(path)
    return load_model(name_or_path)
