"""The report of one `accelsim run`: a compact console table, Markdown, and JSON with provenance."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from .output import markdown_table

ENERGY_ORDER = ("mac", "acc_add", "pe_reg", "ifmap_sram", "filter_sram", "ofmap_sram", "acc_sram", "dram",
                "requant", "zero_point", "power", "power_products")


def _n(v: float) -> str:
    return f"{v:,.0f}"


def _energy_parts(s: dict[str, Any]) -> str:
    total = s["energy_uj_per_inference"]
    parts = [(k, s.get(f"energy_{k}_uj", 0.0)) for k in ENERGY_ORDER]
    return ", ".join(f"{k} {v:.3g} ({100 * v / total:.0f}%)" for k, v in parts if v > 0)


def sections(result) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section, [(label, value)]) rows shared by the console table and the Markdown report."""
    s, t = result.summary, result.timings_s
    hwc = result.provenance["hw"]["config"]
    pe = hwc["pe_array"]
    return [
        ("point", [
            ("model", s["model"]),
            ("hardware", f"{s['hw']}: {pe['rows']}x{pe['cols']} {pe['dataflow']}, {hwc['clock_mhz']:g} MHz, "
                         f"{hwc['tech_nm']:g} nm, {s['accumulator_bits']}-bit accumulators ({s['accumulator_overflow']})"),
            ("overrides", ", ".join(f"{k}={v}" for k, v in result.provenance["hw"]["overrides"].items()) or "none"),
            ("numeric format", s["numeric_format"]),
            ("data", f"{s['data']} {s['split']} split, {s['images']:,} images"),
        ]),
        ("accuracy (top-1)", [
            ("fp32", f"{s['top1_fp32']:.4f}"),
            ("fake-quant", f"{s['top1_fake_quant']:.4f}"),
            ("integer, on the grid", f"{s['top1_integer']:.4f} ({s['top1_integer_minus_fp32_points']:+.2f} points vs fp32)"),
            ("integer vs fake-quant", f"{100 * s['integer_vs_fake_quant_within_1_lsb']:.2f}% of outputs within 1 LSB, "
                                      f"{100 * s['integer_vs_fake_quant_equal']:.2f}% equal, max {s['integer_vs_fake_quant_max_lsb']} LSB"),
        ]),
        ("cost per inference (batch 1)", [
            ("cycles", f"{_n(s['total_cycles'])} (compute {_n(s['compute_cycles'])}, overheads "
                       f"{_n(s['overhead_cycles'])}, stalls {_n(s['stall_cycles'])}); utilisation {100 * s['utilisation']:.1f}%"),
            ("latency", f"{s['latency_ms']:.4g} ms"),
            ("energy", f"{s['energy_uj_per_inference']:.4g} uJ ({s['tops_per_w']:.3g} TOPS/W)"),
            ("energy by component (uJ)", _energy_parts(s)),
            ("DRAM", f"{s['dram_mib']:.4g} MiB; bandwidth {s['avg_dram_gbps']:.3g} GB/s average, "
                     f"{s['peak_dram_gbps']:.3g} GB/s peak"),
            ("area", f"{s['area_mm2']:.4g} mm2"),
        ]),
        ("integer execution", [
            ("overflow events", f"{_n(s['overflow_events'])} in {s['layers_overflowing']} layers "
                                f"({s['overflow_events_per_image']:.3g} per image)"),
            ("accumulator bits needed", f"{s['accumulator_bits_needed']} of {s['accumulator_bits']}"),
            ("paths", f"fast (bound proves no overflow) {_n(s['fast_rows'])} rows, array (numba kernels in the "
                      f"array's accumulation order) {_n(s['array_rows'])} rows"),
        ]),
        ("time (s)", [
            ("wall", f"{t['total']:.2f}: load {t['load']:.2f}, quantize {t['quantize']:.2f}, fp32 {t['fp32']:.2f}, "
                     f"fake-quant {t['fake_quant']:.2f}, execute {t['execute']:.2f}, cost {t['cost']:.2f}"),
        ]),
    ]


def console(result) -> str:
    rows = sections(result)
    width = max(len(label) for _, items in rows for label, _ in items)
    lines = [f"accelsim run: {result.summary['model']} on {result.summary['hw']}, {result.summary['recipe']}"]
    for title, items in rows:
        lines.append("")
        lines.append(title)
        lines.extend(f"  {label:<{width}}  {value}" for label, value in items)
    return "\n".join(lines) + "\n"


LAYER_COLUMNS = ["layer", "op", "M", "K", "N", "groups", "weight_bits", "activation_bits", "total_cycles",
                 "energy_pj", "dram_bytes"]
EXEC_COLUMNS = ["layer", "overflow_events", "acc_bits_needed", "array_rows", "fast_rows", "zero_point_unit"]


def markdown(result, command: str | None = None) -> str:
    s = result.summary
    md = [f"# accelsim run: {s['model']} on {s['hw']}, {s['recipe']}", ""]
    if command:
        md += ["Regenerate with:", "", "```sh", command, "```", ""]
    for title, items in sections(result):
        md += [f"## {title}", "", "| | |", "|---|---|"]
        md += [f"| {label} | {value} |" for label, value in items]
        md.append("")
    layers = result.cost_layers[LAYER_COLUMNS].merge(result.exec_layers[EXEC_COLUMNS], on="layer", how="left")
    md += ["## per layer", "", markdown_table(layers), ""]
    if result.warnings:
        md += ["## warnings", ""] + [f"- {w}" for w in result.warnings] + [""]
    md += ["## provenance", "", "```json", json.dumps(result.provenance, indent=1, default=str), "```", ""]
    return "\n".join(md)


def as_json(result, command: str | None = None) -> dict[str, Any]:
    """The one JSON shape of accelsim's outputs (provenance, layers, totals), plus the run's
    timings and warnings."""
    return {
        "provenance": {**result.provenance, "command": command},
        "layers": json.loads(pd.DataFrame(result.cost_layers).merge(
            result.exec_layers, on="layer", how="left", suffixes=("", "_exec")).to_json(orient="records")),
        "totals": result.summary,
        "timings_s": result.timings_s,
        "warnings": result.warnings,
        "format": "accelsim-run-2",
    }
