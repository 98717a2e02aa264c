"""`quantize(graph, recipe, hw, calibration) -> QGraph`: the pipeline of DESIGN.md.

fold BN -> (ReLU6 -> ReLU) -> equalize -> absorb high biases -> weight quantizers -> bias
correction -> activation ranges -> integer model. Each step is a switch of the recipe.
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Mapping

import numpy as np

from ..config.hw import HwConfig
from ..errors import AccelsimError, ConfigError, GraphError
from ..graph.ir import Graph
from .absorb import absorb_high_bias
from .bias_correction import correct_bias
from .equalize import equalize
from .fold import WEIGHTED_OPS, fold_batchnorm, replace_relu6
from .qgraph import QGraph, activation_sites, make_layer_quant, make_power_layer_quant, output_site
from .quantizers import QuantParams, channel_minmax, make_power_qparams, make_qparams
from .ranges import cross_entropy_qparams, minmax_qparams, mse_qparams
from .recipe import Recipe, load_recipe
from .stats import ChannelStats, propagate_stats

DEFAULT_HW = "edge-npu-16x16"


def data_needs(r: Recipe) -> list[str]:
    """The recipe fields that need calibration data (activation_range auto only uses data it is given)."""
    needs = ((r.activation_range in ("minmax", "mse"), "activation_range"),
             (r.steps.bias_correction == "empirical", "steps.bias_correction"),
             (r.last_layer_range == "cross_entropy", "last_layer_range"))
    return [field for needed, field in needs if needed]


def resolve_hw(hw: HwConfig | str | os.PathLike | None, default: str | None = None) -> HwConfig:
    """A HwConfig from a HwConfig, a config name or file, or None (`default`, else edge-npu-16x16)."""
    if isinstance(hw, HwConfig):
        return hw
    from ..config import load_hw

    return load_hw(hw or default or DEFAULT_HW)


def weight_quantizer(recipe: Recipe):
    """The per-layer weight quantizer the recipe asks for: weight array -> QuantParams.

    (The slot where a power quantizer will go.)"""
    axis = 0 if recipe.weight_granularity == "per_channel" else None
    fit = mse_qparams if recipe.weight_range == "mse" else minmax_qparams

    def fit_weight(w: np.ndarray) -> QuantParams:
        return fit(w, recipe.weight_bits, recipe.weight_scheme, axis, signed=True)

    return fit_weight


def _as_feeds(graph: Graph, x) -> dict[str, np.ndarray] | None:
    if x is None:
        return None
    if isinstance(x, Mapping):
        return {k: np.asarray(v, np.float32) for k, v in x.items()}
    if len(graph.inputs) != 1:
        raise GraphError(f"graph '{graph.name}' has inputs {graph.inputs}: pass calibration as {{name: array}}")
    return {graph.inputs[0]: np.asarray(x, np.float32)}


def _with_weights(graph: Graph, weights: dict[str, np.ndarray]) -> Graph:
    g = graph.copy()
    for name, w in weights.items():
        g[name].weight = w
    return g


def _input_range(graph: Graph, r: Recipe, data: Any) -> tuple[tuple[float, float] | None, str]:
    """The graph input's range for data-free activation ranges, and where it came from: the
    recipe's input_range, else the documented preprocessing of `data` (a dataset name or
    Dataset), else of the dataset a bundled trained model was trained on, else none (the
    N(0, 1) assumption of propagate_stats)."""
    from ..data import Dataset, known_input_range

    if r.input_range is not None:
        return r.input_range, "recipe input_range"
    if isinstance(data, Dataset):
        if data.input_range is not None:
            return data.input_range, f"dataset {data.name}: preprocessing"
    elif data is not None and known_input_range(data) is not None:
        return known_input_range(data), f"dataset {data}: preprocessing"
    from ..graph.manifest import model_info

    info = model_info(graph.name)
    if info and known_input_range(info.get("dataset")) is not None:
        return known_input_range(info["dataset"]), f"dataset {info['dataset']} (the model's training data): preprocessing"
    return None, "N(0, 1) assumed (no dataset known)"


def quantize(graph: Graph, recipe: str | os.PathLike | Mapping | Recipe = "dfq",
             hw: HwConfig | str | os.PathLike | None = None, calibration: Any = None, data: Any = None, *,
             progress: bool = False) -> QGraph:
    """Quantize `graph` by `recipe` (a name, YAML file or dict) for hardware `hw`
    (a HwConfig, a config name or file; default: the edge-npu-16x16 config).

    `calibration`: input batch (array, or {input: array}) for data-driven steps
    (empirical bias correction, min-max / MSE / cross-entropy ranges); data-free otherwise.
    `data`: the dataset the model will see (a name or Dataset): without calibration data, its
    documented preprocessing gives the input's range (`info["input_range_source"]` says where
    the range came from; a bundled trained model's own dataset is used when `data` is None).
    `progress`: a bar over the pipeline's steps on a terminal (the CLI).
    """
    hw = resolve_hw(hw)
    r = load_recipe(recipe, hw)
    if not r.quantized:
        return QGraph(graph.copy(), r, hw_name=hw.name)
    if not graph.has_params:
        raise GraphError(f"graph '{graph.name}' has no weights: quantization needs a model with parameters (ONNX)")
    feeds = _as_feeds(graph, calibration)
    act_range = r.activation_range if r.activation_range != "auto" else ("minmax" if feeds else "bn")
    needs = data_needs(r)
    if feeds is None and needs:  # the first field that needs data names the problem
        raise ConfigError(r.source, needs[0], "needs calibration data (calibration=... / --calibration); "
                          "for a data-free recipe use activation_range: bn and bias_correction: analytic")

    info: dict[str, Any] = {"activation_range": act_range}
    if feeds is None or r.input_range is not None:
        input_range, info["input_range_source"] = _input_range(graph, r, data)
        if input_range is not None and input_range != r.input_range:
            r = replace(r, input_range=input_range)
    from ..progress import stages

    with stages(f"quantize {graph.name}", ["transforms", "weights", "bias correction", "activation ranges",
                                           "integer layers"], enabled=progress) as step:
        return _quantize_steps(graph, r, hw, feeds, act_range, info, step)


def _quantize_steps(graph: Graph, r: Recipe, hw: HwConfig, feeds, act_range: str, info: dict, step) -> QGraph:
    step("transforms")
    g = graph
    if r.steps.fold_batchnorm:
        g = fold_batchnorm(g)
    if r.steps.replace_relu6:
        g = replace_relu6(g)
    if r.steps.equalize:
        g, info["equalization"] = equalize(g, return_info=True)
    if r.steps.absorb_high_bias:
        g, info["absorbed"] = absorb_high_bias(g, return_amounts=True)

    step("weights")
    weighted = [n.name for n in g.nodes if n.op in WEIGHTED_OPS and n.weight is not None]
    if r.power:
        exponents, act_exponent = _power_exponents(g, weighted, r, info)
        axis = 0 if r.weight_granularity == "per_channel" else None
        wq = {name: make_power_qparams(*channel_minmax(g[name].weight, axis), r.weight_bits, exponents[name],
                                       axis=axis, weights=True) for name in weighted}
    else:
        fit_weight = weight_quantizer(r)
        wq = {name: fit_weight(g[name].weight) for name in weighted}
    float_graph = g
    step("bias correction")
    if r.steps.bias_correction != "none":
        w_fq = {name: wq[name].fake_quant(g[name].weight) for name in weighted}
        g, info["bias_correction"] = correct_bias(g, w_fq, mode=r.steps.bias_correction,
                                                  calibration=feeds, return_amounts=True)

    step("activation ranges")
    sites, grid_of = activation_sites(g)
    activations = _activation_qparams(g, sites, r, act_range, wq, feeds, info)
    if r.power:  # the same ranges on power grids: (x + c)^a, unsigned (eq. 5 for signed ranges)
        activations = {s: make_power_qparams(q.range_lo, q.range_hi, q.bits, act_exponent)
                       for s, q in activations.items()}
    step("integer layers")
    layers = {}
    for name in weighted:
        in_site = grid_of[g[name].inputs[0]]
        if r.power:
            layers[name] = make_power_layer_quant(g, name, wq[name], in_site, output_site(g, name, grid_of),
                                                  activations)
            continue
        layers[name] = make_layer_quant(g, name, wq[name], in_site, output_site(g, name, grid_of), activations,
                                        accumulator_bits=hw.precision.accumulator_bits)
    raised = {name: list(lq.bias_scale_raised) for name, lq in layers.items() if lq.bias_scale_raised}
    if raised:
        info["bias_scale_raised"] = raised
    return QGraph(g, r, layers, activations, info, hw.name, float_graph)


def _power_exponents(g: Graph, weighted: list[str], r: Recipe, info: dict) -> tuple[dict[str, float], float]:
    """(weight exponent per layer, activation exponent). One a* for the network by default
    (searched on the weights' reconstruction error, quant/power.py), or the recipe's number;
    per-layer scope: each layer's own a*, activations keep the network's."""
    weights = [np.asarray(g[name].weight, np.float64) for name in weighted]
    per_channel = r.weight_granularity == "per_channel"
    if r.power_exponent == "auto":
        from .power import search_exponent, search_exponents_per_layer

        a = float(search_exponent(weights, r.weight_bits, per_channel=per_channel))
        source = "searched (sum of weight reconstruction errors, Nelder-Mead)"
    else:
        a = float(r.power_exponent)
        source = "recipe"
    exponents = {name: a for name in weighted}
    if r.power_exponent_scope == "per_layer":
        from .power import search_exponents_per_layer

        exponents = dict(zip(weighted, map(float, search_exponents_per_layer(weights, r.weight_bits,
                                                                             per_channel=per_channel))))
    info["power_exponent"] = a
    info["power_exponent_source"] = source
    if r.power_exponent_scope == "per_layer":
        info["power_exponents"] = exponents
    return exponents, a


def _activation_qparams(g: Graph, sites: list[str], r: Recipe, act_range: str, wq: dict[str, QuantParams],
                        feeds: dict[str, np.ndarray] | None, info: dict) -> dict[str, QuantParams]:
    bits, scheme = r.activation_bits, r.activation_scheme
    values: dict[str, np.ndarray] = {}
    if feeds is not None:
        fq = _with_weights(g, {name: q.fake_quant(g[name].weight) for name, q in wq.items()})
        wanted = [s for s in sites if s not in g.inputs] or sites[:1]
        values = fq.run(feeds if len(feeds) > 1 else next(iter(feeds.values())), outputs=list(wanted))
        values.update(feeds)
    stats: dict[str, ChannelStats | None] = {}
    if act_range == "bn":
        stats = propagate_stats(g)
    out: dict[str, QuantParams] = {}
    fallbacks = []
    logits = {s for s in sites if s in g.outputs and g[s].op in WEIGHTED_OPS}
    for site in sites:
        node = g[site]
        if r.last_layer_range == "cross_entropy" and site in logits:
            out[site] = cross_entropy_qparams(values[site], bits, scheme)
            continue
        if node.op == "input" and r.input_range is not None:
            out[site] = make_qparams(*r.input_range, bits, scheme)
            continue
        if act_range == "bn":
            st = stats.get(site)
            if st is not None:
                lo_c, hi_c = st.range(r.bn_range_n)
                out[site] = make_qparams(lo_c.min(), hi_c.max(), bits, scheme)
                continue
            if site not in values:
                raise AccelsimError(
                    f"layer '{site}' ({node.op}): no BN statistics reach it, so a data-free (bn) activation range "
                    "cannot be set; give calibration data or use activation_range: minmax")
            fallbacks.append(site)
        if act_range == "mse":
            out[site] = mse_qparams(values[site], bits, scheme)
        else:
            lo, hi = channel_minmax(values[site], None)
            out[site] = make_qparams(lo, hi, bits, scheme)
    if fallbacks:
        info["range_fallback_minmax"] = fallbacks
    return out
