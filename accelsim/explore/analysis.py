"""What a sweep teaches: Pareto fronts, per-axis sensitivity, and two points side by side."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

# objective -> direction; accuracy is maximised, the costs minimised
OBJECTIVES = {"energy_uj_per_inference": "min", "latency_ms": "min", "area_mm2": "min", "top1_integer": "max"}
# what a spec's `objectives` may name (figures of every finished point, or of every measured one)
MAXIMISED = ("top1_integer", "top1_fake_quant", "top1_fp32", "tops_per_w", "utilisation", "inferences_per_s",
             "integer_vs_fake_quant_within_1_lsb")
MINIMISED = ("energy_uj_per_inference", "latency_ms", "area_mm2", "total_cycles", "stall_cycles", "dram_mib",
             "avg_power_w", "peak_dram_gbps", "avg_dram_gbps", "overflow_events")
OBJECTIVE_CHOICES = MINIMISED + MAXIMISED


def objectives_for(names) -> dict[str, str]:
    """{figure: "min" | "max"} for a spec's `objectives` (None: the default four)."""
    if not names:
        return dict(OBJECTIVES)
    return {n: "max" if n in MAXIMISED else "min" for n in names}
META_COLUMNS = ["sweep", "point", "key", "status", "error", "workload", "recipe", "method", "accelsim_version",
                "wall_s"]


def axis_columns(df: pd.DataFrame, spec_axes: Sequence[str] | None = None) -> list[str]:
    """The swept axes present in a results table (dotted field paths)."""
    if spec_axes is not None:
        return [a for a in spec_axes if a in df.columns]
    return [c for c in df.columns if "." in c and c not in META_COLUMNS]


def pareto_mask(df: pd.DataFrame, objectives: dict[str, str] | None = None) -> np.ndarray:
    """True for the points no other point dominates (as good in every objective, better in one).
    Objectives missing from the table, or all NaN (cost-only points have no accuracy), are left out."""
    objectives = objectives or OBJECTIVES
    cols = [c for c in objectives if c in df.columns and df[c].notna().any()]
    if not cols or df.empty:
        return np.zeros(len(df), dtype=bool)
    # as minimisation; a missing value is the worst
    v = np.column_stack([(df[c] if objectives[c] == "min" else -df[c]).astype(float).to_numpy() for c in cols])
    v = np.where(np.isnan(v), np.inf, v)
    n = len(v)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated_by = np.all(v <= v[i], axis=1) & np.any(v < v[i], axis=1)
        if dominated_by.any():
            mask[i] = False
        else:  # i dominates: drop what it dominates
            mask &= ~(np.all(v[i] <= v, axis=1) & np.any(v[i] < v, axis=1))
            mask[i] = True
    return mask


def pareto_front(df: pd.DataFrame, objectives: dict[str, str] | None = None, by: str | None = "workload") -> pd.DataFrame:
    """The non-dominated finished points, per workload (different networks are not compared)."""
    ok = df[df["status"] == "ok"] if "status" in df else df
    if by and by in ok.columns:
        parts = [g[pareto_mask(g, objectives)] for _, g in ok.groupby(by, sort=False)]
        return pd.concat(parts) if parts else ok.iloc[:0]
    return ok[pareto_mask(ok, objectives)]


def sensitivity(df: pd.DataFrame, axes: Sequence[str], metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Per axis and value: each metric's mean over the finished points with that value, relative
    to the axis's first value, per workload (in %; accuracy in points). The spread between an
    axis's best and worst value says how much that choice matters, other axes averaged out."""
    metrics = [m for m in (metrics or OBJECTIVES) if m in df.columns and df[m].notna().any()]
    ok = df[df["status"] == "ok"] if "status" in df else df
    rows = []
    for workload, g in ok.groupby("workload", sort=False):
        # the quantization method, not the recipe's label (its bit-widths are axes of their own)
        for axis in ("method" if "method" in g else "recipe", *axes):
            if axis not in g or g[axis].astype(str).nunique() < 2:
                continue
            keyed = g.assign(_v=g[axis].astype(str))
            means = keyed.groupby("_v", sort=False)[metrics].mean()
            ref = means.iloc[0]
            for value, m in means.iterrows():
                row: dict[str, Any] = {"workload": workload, "axis": axis, "value": value,
                                       "points": int((keyed["_v"] == value).sum())}
                for metric in metrics:
                    if metric.startswith("top1"):
                        row[f"{metric}_points_vs_first"] = 100 * (m[metric] - ref[metric])
                    else:
                        row[f"{metric}_pct_vs_first"] = 100 * (m[metric] / ref[metric] - 1) if ref[metric] else np.nan
                    row[metric] = m[metric]
                rows.append(row)
    return pd.DataFrame(rows)


COMPARE_FIELDS = [
    "top1_fp32", "top1_fake_quant", "top1_integer", "integer_vs_fake_quant_within_1_lsb", "total_cycles",
    "compute_cycles", "overhead_cycles", "stall_cycles", "latency_ms", "utilisation", "energy_uj_per_inference",
    "tops_per_w", "dram_mib", "avg_dram_gbps", "peak_dram_gbps", "area_mm2", "overflow_events",
    "accumulator_bits_needed",
]


def compare_table(a: dict[str, Any], b: dict[str, Any], name_a: str = "A", name_b: str = "B") -> pd.DataFrame:
    """Two summaries side by side with their differences (B - A, and B / A - 1 in %)."""
    keys = [k for k in COMPARE_FIELDS if k in a or k in b]
    keys += sorted(k for k in set(a) | set(b) if k.startswith("energy_") and k.endswith("_uj")
                   and k != "energy_uj_per_inference" and k not in keys)
    rows = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        num = isinstance(va, (int, float)) and isinstance(vb, (int, float)) and not isinstance(va, bool)
        diff = vb - va if num else None
        rel = 100 * (vb / va - 1) if num and va else None
        rows.append({"figure": k, name_a: va, name_b: vb, "difference": diff, "change_pct": rel})
    return pd.DataFrame(rows)
