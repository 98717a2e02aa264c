"""The full cost run: the PE grid (``accelsim.sim.simulate_grid``), numeric-format overheads, the
memory hierarchy (``accelsim.sim.memory``) and energy, in one per-layer table.

Cycles per layer: ``compute_cycles`` (the PE grid, as ``sim.simulate_grid`` counts it)
+ ``zero_point_cycles`` (an extra array column for asymmetric weights)
+ ``tiling_cycles`` (extra folds of the stream tiling chosen to fit the buffers)
+ ``power_unit_cycles`` (power-function work the array cannot hide)
+ ``stall_cycles`` (waiting for DRAM) = ``total_cycles``.
"""
from __future__ import annotations

import dataclasses
import math
import os

import pandas as pd

from accelsim.cost.actions import count_actions
from accelsim.cost.area import area_mm2
from accelsim.cost.energy import ENERGY_CATEGORIES, energy_by_action, energy_costs
from accelsim.cost.overheads import has_weights, layer_overheads, power_unit_cycles
from accelsim.sim.mapping import map_layer
from accelsim.sim.memory import OperandBits, layer_memory, plan_layer, simulate_dram
from accelsim.sim.grid import Result, simulate_grid
from accelsim.sim.timing import native_cycles, scalesim_cycles, scalesim_gemm, scalesim_mapping

CYCLE_COLUMNS = ["zero_point_cycles", "tiling_cycles", "power_unit_cycles", "stall_cycles"]
WIDTH_COLUMNS = ["weight_bits", "activation_bits", "accumulator_bits"]
MEMORY_COLUMNS = [
    "stream_tile", "stream_tiles", "dram_tiles", "ifmap_dram_passes", "filter_dram_passes",
    "dram_ifmap_bytes", "dram_filter_bytes", "dram_ofmap_bytes", "dram_psum_bytes", "dram_params_bytes",
    "dram_bytes", "sram_ifmap_bytes", "sram_filter_bytes", "sram_ofmap_bytes", "sram_acc_bytes",
    "reg_bytes", "avg_dram_gbps", "peak_dram_gbps",
]
# action counts beside the bytes above (array_macs: the MACs the array runs, an extra
# zero-point column included; macs: the layer's own; power_evals: the per-output power unit;
# then PowerQuant's product powers, see accelsim.cost.actions)
ACTION_COLUMNS = ["array_macs", "acc_adds", "requants", "zp_window_adds", "zp_mults", "zp_adds", "power_evals",
                  "product_lut_reads", "decode_weight_reads", "decode_act_reads", "sum_power_evals"]
ENERGY_COLUMNS = [f"energy_{c}_pj" for c in ENERGY_CATEGORIES] + ["energy_pj"]


def whole_bytes(n: float) -> int:
    """A byte count as the integer it is: the memory model's fractions of a pass are float
    arithmetic (150527.99999999997 is 150528), and a sub-byte operand's last partial byte is
    still moved (ceil). Energy is priced from the exact counts, not from these."""
    return int(math.ceil(round(float(n), 6)))


def numeric_format_hw(hw, recipe):
    """`hw` running the numeric format a recipe really uses: its weight and activation bits,
    schemes and granularity, and the power units only for a PowerQuant recipe (never more than
    the datapath supports: the recipe was checked).
    The cost model prices operands at these widths, as the integer executor computes them."""
    d = hw.to_dict()
    d["precision"].update(weight_bits=recipe.weight_bits, activation_bits=recipe.activation_bits)
    d["quantization"].update(weight_scheme=recipe.weight_scheme, activation_scheme=recipe.activation_scheme,
                             weight_granularity=recipe.weight_granularity)
    if not getattr(recipe, "power", False):  # a uniform format leaves the power units idle (their area stays)
        d["quantization"]["power_unit"] = "none"
    from accelsim.config.validate import hw_from_dict

    return hw_from_dict(d, file=f"{hw.name} running {recipe.label}")


def _resolve(graph, hw):
    """(Graph, hardware priced, hardware whose area counts, QGraph or None) from what the CLI takes:
    a Graph, a QGraph or a saved quantized model, a workload name or file; a HwConfig or a config name or file."""
    from accelsim.quant.pipeline import resolve_hw
    from accelsim.quant.qgraph import QGraph

    hw = resolve_hw(hw)
    if isinstance(graph, (str, os.PathLike)):
        from accelsim.quant.qgraph_io import load_model_or_qgraph

        graph = load_model_or_qgraph(graph)
    if isinstance(graph, QGraph):
        if not graph.recipe.quantized:
            return graph.graph, hw, hw, graph
        from accelsim.sim.execute import check_runs_on

        check_runs_on(graph, hw)
        return graph.graph, numeric_format_hw(hw, graph.recipe), hw, graph
    return graph, hw, hw, None


# A layer's cost is a pure function of its shapes (not its name) and the priced config (not
# its name): identical layers, within a network (ResNet-50: 54 GEMM layers, 21 distinct) and
# across the points of a sweep, are costed once per process. Bounded, so memory stays flat.
LAYER_CACHE_ENTRIES = 20_000
_layer_cache: dict = {}


def clear_layer_cache() -> None:
    """Forget every cached layer cost (and the memory model's cached traffic)."""
    from accelsim.sim.memory import clear_traffic_cache

    _layer_cache.clear()
    clear_traffic_cache()


def simulate(graph, hw=None, timing: str = "native", batch: int = 1, recipe=None, layer_cache: bool = True) -> Result:
    """Cycles, memory traffic and stalls, and energy of every GEMM layer of ``graph`` on ``hw``.

    graph: a Graph, a workload name or file, or a QGraph: then the layers are priced in the
    numeric format the QGraph really uses (`numeric_format_hw`: the recipe's bit-widths,
    schemes and granularity), the area stays the hardware's. hw: a HwConfig, a config name or
    file (default edge-npu-16x16).
    timing: "native" (the configured microarchitecture; the memory model picks the stream
    tiling with the fewest total cycles) or "scalesim" (SCALE-Sim 3.0's compute cycles,
    untiled). recipe: price a Graph in a recipe's numeric format, as if quantized by it (a
    Recipe for `hw`; a QGraph brings its own). Returns the grid's columns, then cycles, memory
    and energy columns."""
    graph, hw, area_hw, qgraph = _resolve(graph, hw)
    if recipe is not None and qgraph is None and recipe.quantized:
        hw = numeric_format_hw(hw, recipe)
    base = simulate_grid(graph, hw, timing=timing, batch=batch)
    costs = energy_costs(hw)
    rows = []
    hw_key = dataclasses.replace(hw, name="")
    for info, row in zip(graph.layers(batch, gemm_only=True), base.layers.to_dict("records")):
        key = (dataclasses.replace(info, name=""), hw_key, timing,
               repr(sorted(graph[info.name].attrs.items())) if timing == "scalesim" else None)
        cached = _layer_cache.get(key) if layer_cache else None
        if cached is None:
            cached = _layer_cost(graph, info, row, hw, costs, timing)
            if layer_cache:
                if len(_layer_cache) >= LAYER_CACHE_ENTRIES:
                    _layer_cache.pop(next(iter(_layer_cache)))
                _layer_cache[key] = cached
        rows.append({**row, **cached})
    columns = list(base.layers.columns) + CYCLE_COLUMNS + WIDTH_COLUMNS + MEMORY_COLUMNS + ACTION_COLUMNS + ENERGY_COLUMNS
    layers = pd.DataFrame(rows, columns=columns)
    summary = _summary(base.summary, layers, hw, batch, area_hw)
    if qgraph is not None or (recipe is not None and recipe.quantized):
        summary["hw"] = area_hw.name
        q = hw.quantization
        r = qgraph.recipe if qgraph is not None else recipe
        if getattr(r, "power", False):
            a = qgraph.info.get("power_exponent") if qgraph is not None else None
            exponent = f" (a = {a:.3g})" if isinstance(a, (int, float)) else ""
            summary["numeric_format"] = (f"{r.label}: power grids{exponent}, "
                                         f"{q.weight_granularity} weights, products by {q.power_products}, "
                                         f"per-output {q.power_unit} unit")
        else:
            summary["numeric_format"] = (f"{r.label}: {q.weight_scheme} {q.weight_granularity} weights, "
                                         f"{q.activation_scheme} activations")
    return Result(layers, summary)


def _layer_cost(graph, info, row: dict, hw, costs, timing: str) -> dict:
    """The cost columns of one layer beyond the grid's `row` (which gives its compute cycles)."""
    pe, p = hw.pe_array, hw.precision
    ov = layer_overheads(info, hw)
    ex = ov.executed_gemm
    bits = OperandBits(p.weight_bits if has_weights(info) else p.activation_bits,
                       p.activation_bits, p.accumulator_bits)
    if timing == "scalesim":
        mapping = scalesim_mapping(scalesim_gemm(info.op, graph[info.name].attrs, info.input_shapes, ex),
                                   pe.rows, pe.cols, pe.dataflow)
        grid = scalesim_cycles(mapping)
    else:
        mapping = map_layer(ex, pe)
        grid = native_cycles(mapping, pe.weight_preload)
    power = power_unit_cycles(ov, grid, pe.cols)
    n_scale = info.gemm.N / ex.N  # an extra zero-point column moves no data
    if timing == "scalesim":
        lm = layer_memory([(mapping, 1)], info.ifmap_elems, bits, grid, hw.memory, ov.param_bytes, power,
                          n_scale)
        simulate_dram(lm, hw.memory, hw.clock_mhz)
    else:
        def traffic_energy_pj(candidate) -> float:  # for memory.tiling_objective: energy
            return math.fsum(energy_by_action(count_actions(ov, candidate, mapping.dataflow), costs).values())

        lm = plan_layer(ex, info.ifmap_elems, bits, hw, ov.param_bytes, power, n_scale, traffic_energy_pj)
    acts = count_actions(ov, lm, mapping.dataflow)
    energy = energy_by_action(acts, costs)
    cyc = {
        "zero_point_cycles": grid - row["compute_cycles"],
        "tiling_cycles": lm.compute_cycles - power - grid,
        "power_unit_cycles": power,
        "stall_cycles": lm.stall_cycles,
    }
    total = row["compute_cycles"] + sum(cyc.values())
    assert total == lm.total_cycles, (info.name, total, lm.total_cycles)
    dr, dw = lm.dram_read_bytes, lm.dram_write_bytes
    sram = {b: lm.sram_read_bytes[b] + lm.sram_write_bytes[b] for b in lm.sram_read_bytes}
    dram = {"dram_ifmap_bytes": whole_bytes(dr["ifmap"]), "dram_filter_bytes": whole_bytes(dr["filter"]),
            "dram_ofmap_bytes": whole_bytes(dw["ofmap"]), "dram_psum_bytes": whole_bytes(dr["psum"] + dw["psum"]),
            "dram_params_bytes": whole_bytes(dr["params"])}
    mem = {
        "stream_tile": lm.stream_tile, "stream_tiles": lm.stream_tiles, "dram_tiles": lm.tiles,
        # reuse: how many times each operand crosses the DRAM interface (1: read once)
        "ifmap_dram_passes": round(dr["ifmap"] / lm.unique_bytes["ifmap"], 9),
        "filter_dram_passes": round(dr["filter"] / lm.unique_bytes["filter"], 9) if lm.unique_bytes["filter"] else 0.0,
        **dram, "dram_bytes": sum(dram.values()),  # the parts, so they add up exactly
        "sram_ifmap_bytes": whole_bytes(sram["ifmap"]), "sram_filter_bytes": whole_bytes(sram["filter"]),
        "sram_ofmap_bytes": whole_bytes(sram["ofmap"]), "sram_acc_bytes": whole_bytes(sram["acc"]),
        # at the widths the PE registers hold (PowerQuant's decode_lut: decoded values)
        "reg_bytes": whole_bytes(acts.reg_bits / 8), "avg_dram_gbps": lm.avg_dram_gbps,
        "peak_dram_gbps": lm.peak_dram_gbps,
    }
    counts = acts.as_dict()
    counts["array_macs"] = counts.pop("macs")
    act = {k: counts[k] for k in ACTION_COLUMNS}
    e = {f"energy_{k}_pj": v for k, v in energy.items()}
    e["energy_pj"] = math.fsum(energy.values())
    own = {**cyc, "total_cycles": total,
           "utilisation": info.macs / (pe.num_pes * total),
           # operand widths of the multipliers and the accumulator, as the executor computes them
           "weight_bits": bits.weight, "activation_bits": bits.activation, "accumulator_bits": bits.accumulator}
    return {**own, **mem, **act, **e}


def _summary(grid: dict, layers: pd.DataFrame, hw, batch: int, area_hw) -> dict:
    total = int(layers["total_cycles"].sum())
    macs = int(layers["macs"].sum())
    energy_pj = float(layers["energy_pj"].sum())
    latency_s = total / (hw.clock_mhz * 1e6)
    s = dict(grid)
    s.update({
        "total_cycles": total,
        "compute_cycles": int(layers["compute_cycles"].sum()),
        "stall_cycles": int(layers["stall_cycles"].sum()),
        "overhead_cycles": int(layers[["zero_point_cycles", "tiling_cycles", "power_unit_cycles"]].sum().sum()),
        "utilisation": macs / (hw.pe_array.num_pes * total) if total else 0.0,
        "latency_ms": latency_s * 1e3,
        "inferences_per_s": batch / latency_s if total else float("inf"),
        "dram_bytes": int(layers["dram_bytes"].sum()),
        "dram_mib": float(layers["dram_bytes"].sum()) / 2**20,
        "avg_dram_gbps": float(layers["dram_bytes"].sum()) / latency_s / 1e9 if total else 0.0,
        "peak_dram_gbps": float(layers["peak_dram_gbps"].max()) if len(layers) else 0.0,
        "energy_uj_per_inference": energy_pj / batch / 1e6,
        # the same energy by component, per inference (they add up to energy_uj_per_inference)
        **{f"energy_{c}_uj": float(layers[f"energy_{c}_pj"].sum()) / batch / 1e6 for c in ENERGY_CATEGORIES},
        # 2 ops per MAC; ops / pJ = 1e12 ops/J = TOPS/W
        "tops_per_w": 2 * macs / energy_pj if energy_pj else 0.0,
        "avg_power_w": energy_pj * 1e-12 / latency_s if total else 0.0,
        "area_mm2": area_mm2(area_hw),  # the silicon built, whatever format runs on it
        "energy_table": hw.energy.table,
        "tech_nm": hw.tech_nm,
    })
    return s
