"""The report of a sweep: one self-contained HTML file (interactive Plotly plots, sortable
tables) or Markdown with PNG plots (matplotlib) beside it.

Both are drawn from one digest of the store (`_digest`): the finished points, their Pareto
front per workload, per-axis sensitivity, each workload's representative point (its
lowest-energy front point) with its per-layer cycles, and the points that did not finish
with their reasons. The HTML inlines plotly.js, so it opens offline.
"""
from __future__ import annotations

import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import AccelsimError
from .output import check_writable, markdown_table, write_together
from .run_report import ENERGY_ORDER

HTML_SUFFIXES = (".html", ".htm")
MD_SUFFIXES = (".md",)
MISSING_EXTRA = "accelsim report needs plotly and matplotlib: pip install 'accelsim[report]'"
STATUS_ORDER = ("ok", "skipped", "error", "timeout")

# one colour per workload, the same in the HTML and the PNGs
WORKLOAD_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                    "#bcbd22", "#17becf"]
COMPONENT_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                     "#9c755f", "#bab0ac", "#86bcb6", "#d37295"]
CYCLE_PARTS = (("compute", "#4e79a7"), ("stall", "#e15759"), ("overhead", "#f28e2b"))

# the figures shown per point in tables and hover text, in this order
FIGURES = ["energy_uj_per_inference", "latency_ms", "total_cycles", "utilisation", "tops_per_w", "dram_mib",
           "peak_dram_gbps", "area_mm2", "top1_fp32", "top1_fake_quant", "top1_integer"]
ACCURACY = "top1_integer"
ENERGY = "energy_uj_per_inference"
LATENCY = "latency_ms"
LABELS = {ENERGY: "energy per inference (uJ)", LATENCY: "latency (ms)", ACCURACY: "top-1, integer execution"}
MAX_TABLE_ROWS = 2000          # a table longer than this shows its first rows and says so
MAX_BAR_POINTS = 30            # front points per workload in the energy breakdown
MAX_LAYER_CHOICES = 15         # points offered in the per-layer drop-down


# ---------------------------------------------------------------------- the digest


@dataclass
class _Digest:
    title: str
    notes: list[str]
    store: str
    sweep_names: list[str]
    counts: dict[str, int]
    axes: list[str]
    ok: pd.DataFrame                       # finished points, with `on_front`
    front: pd.DataFrame                    # Pareto front per workload, by energy
    problems: pd.DataFrame                 # skipped / failed points and why
    sensitivity: pd.DataFrame
    components: list[str]                  # energy component names with any energy
    objectives: dict[str, str] = field(default_factory=dict)            # the front's: figure -> min | max
    layer_choices: dict[str, list[str]] = field(default_factory=dict)   # workload -> point keys, first shown
    layers: pd.DataFrame | None = None     # per-layer rows of those points, with overhead_cycles

    @property
    def workloads(self) -> list[str]:
        return list(dict.fromkeys(self.ok["workload"])) if not self.ok.empty else []

    @property
    def has_accuracy(self) -> bool:
        return ACCURACY in self.ok.columns and self.ok[ACCURACY].notna().any()

    def colour(self, workload: str) -> str:
        return WORKLOAD_COLOURS[self.workloads.index(workload) % len(WORKLOAD_COLOURS)]

    def table_columns(self, df: pd.DataFrame) -> list[str]:
        cols = ["point"] + (["sweep"] if len(self.sweep_names) > 1 else []) + ["workload", "recipe"]
        cols += self.axes + [f for f in FIGURES if f in df.columns and df[f].notna().any()]
        return [c for c in cols if c in df.columns]


def _spec_axes(spec: dict) -> list[str]:
    axes = list(spec.get("grid") or {}) + list(spec.get("zip") or {})
    return axes + list((spec.get("random") or {}).get("axes") or {})


def _digest(results: pd.DataFrame, layers: pd.DataFrame, meta: dict) -> _Digest:
    from ..explore.analysis import axis_columns, objectives_for, pareto_mask, sensitivity

    sweeps = meta.get("sweeps") or {}
    chosen = [meta["sweep"]] if meta.get("sweep") else list(sweeps)
    specs = [sweeps[n] for n in chosen if n in sweeps]
    titles = [s["title"] for s in specs if s.get("title")]
    title = "; ".join(titles) or f"Sweep report: {', '.join(chosen) or 'no sweeps'}"
    notes = [s["notes"] for s in specs if s.get("notes")]

    status = results["status"] if "status" in results else pd.Series([], dtype=object)
    counts = {s: int((status == s).sum()) for s in STATUS_ORDER}
    counts.update({s: int((status == s).sum()) for s in status.unique() if s not in counts})

    spec_axes = list(dict.fromkeys(a for s in specs for a in _spec_axes(s))) or None
    axes = axis_columns(results, spec_axes) if not results.empty else []

    objectives = objectives_for(next((s["objectives"] for s in specs if s.get("objectives")), None))
    ok = results[status == "ok"].copy() if not results.empty else results.copy()
    if not ok.empty:
        ok["on_front"] = False
        for _, g in ok.groupby("workload", sort=False):
            ok.loc[g.index[pareto_mask(g, objectives)], "on_front"] = True
    front = ok[ok["on_front"]].sort_values(["workload", ENERGY], kind="stable") if not ok.empty else ok

    bad = results[status != "ok"] if not results.empty else results
    sweep_col = ["sweep"] if len(chosen) > 1 else []
    problem_cols = [c for c in ["point", *sweep_col, "workload", "recipe", *axes, "status", "error"] if c in bad]
    problems = bad[problem_cols]

    sens = sensitivity(ok, axes) if not ok.empty else pd.DataFrame()

    components = []
    if not ok.empty:
        present = [c[len("energy_"):-len("_uj")] for c in ok.columns
                   if c.startswith("energy_") and c.endswith("_uj") and c != ENERGY]
        ordered = [c for c in ENERGY_ORDER if c in present] + [c for c in present if c not in ENERGY_ORDER]
        components = [c for c in ordered if ok[f"energy_{c}_uj"].fillna(0).abs().sum() > 0]

    d = _Digest(title, notes, str(meta.get("store", "")), chosen, counts, axes, ok, front, problems, sens,
                components, objectives)
    if not ok.empty and layers is not None and not layers.empty:
        for w in d.workloads:
            choice = front[front["workload"] == w]
            if choice.empty:
                choice = ok[ok["workload"] == w].sort_values(ENERGY)
            keys = [k for k in choice["key"] if (layers["key"] == k).any()][:MAX_LAYER_CHOICES]
            if keys:
                d.layer_choices[w] = keys
        wanted = {k for ks in d.layer_choices.values() for k in ks}
        sel = layers[layers["key"].isin(wanted)].copy()
        # zero-point, tiling and power-unit cycles: what the layer costs beyond compute and stalls
        sel["overhead_cycles"] = sel["total_cycles"] - sel["compute_cycles"] - sel["stall_cycles"]
        d.layers = sel
    return d


def _point_label(row: pd.Series, axes: list[str]) -> str:
    parts = [f"{a}={_fmt(row[a])}" for a in axes if a in row and not _blank(row[a])]
    return f"#{row['point']} {row['recipe']}" + (f" ({', '.join(parts)})" if parts else "")


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt(v) -> str:
    if _blank(v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4g}"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def _summary_lines(d: _Digest) -> list[str]:
    """Store, sweeps and point counts, as plain text lines."""
    total = sum(d.counts.values())
    by_status = ", ".join(f"{n} {s}" for s, n in d.counts.items() if n or s == "ok")
    lines = [f"store: {d.store}", f"sweeps: {', '.join(d.sweep_names) or 'none'}",
             f"points: {total} ({by_status})"]
    if d.axes:
        lines.append(f"axes: {', '.join(d.axes)}")
    if not d.ok.empty:
        lines.append(f"Pareto front: {len(d.front)} points, per workload, over "
                     f"{', '.join(_front_objectives(d))}")
    return lines


def _front_objectives(d: _Digest) -> list[str]:
    df = d.ok
    return [f"{c} ({v})" for c, v in d.objectives.items() if c in df.columns and df[c].notna().any()]


def _capped(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if len(df) <= MAX_TABLE_ROWS:
        return df, ""
    return df.head(MAX_TABLE_ROWS), f"first {MAX_TABLE_ROWS} of {len(df)} rows; the store holds them all"


# ---------------------------------------------------------------------- HTML


def _require_plotly():
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        raise AccelsimError(MISSING_EXTRA) from None
    return go, make_subplots


def _hover(row: pd.Series, axes: list[str]) -> str:
    lines = [f"<b>{html.escape(str(row['workload']))}</b> point #{row['point']}",
             f"recipe: {html.escape(str(row['recipe']))}"]
    lines += [f"{html.escape(a)}: {html.escape(_fmt(row[a]))}" for a in axes if a in row and not _blank(row[a])]
    lines += [f"{f}: {_fmt(row[f])}" for f in FIGURES if f in row and not _blank(row[f])]
    lines.append("on the Pareto front" if row.get("on_front") else "dominated")
    return "<br>".join(lines)


def _log_if_wide(values: pd.Series) -> str:
    v = values.dropna()
    v = v[v > 0]
    return "log" if len(v) and v.max() / v.min() > 10 else "linear"


def _accuracy_range(values: pd.Series) -> list[float]:
    """A little beyond the measured accuracies (never below 0): equal accuracies get a narrow band
    instead of the plotting library's default span."""
    lo, hi = float(values.min()), float(values.max())
    pad = max(0.1 * (hi - lo), 0.02)
    return [max(0.0, lo - pad), hi + pad]


def _scatter_figure(d: _Digest, x: str, y: str, title: str, rows: pd.DataFrame):
    go, _ = _require_plotly()
    fig = go.Figure()
    for w, g in rows.groupby("workload", sort=False):
        for on_front, part in g.groupby("on_front", sort=False):
            fig.add_trace(go.Scatter(
                x=part[x], y=part[y], mode="markers", legendgroup=w,
                name=f"{w}: {'Pareto front' if on_front else 'dominated'}",
                text=[_hover(r, d.axes) for _, r in part.iterrows()], hovertemplate="%{text}<extra></extra>",
                marker=dict(color=d.colour(w), size=12 if on_front else 8, symbol="diamond" if on_front else "circle",
                            opacity=1.0 if on_front else 0.45,
                            line=dict(color="#000000", width=1.5 if on_front else 0))))
    fig.update_layout(title=title, xaxis_title=LABELS[x], yaxis_title=LABELS[y], height=520, template="plotly_white",
                      legend=dict(orientation="h", y=-0.18), margin=dict(t=60, b=40))
    fig.update_xaxes(type=_log_if_wide(rows[x]))
    if y == ACCURACY:
        fig.update_yaxes(range=_accuracy_range(rows[y]))
    else:
        fig.update_yaxes(type=_log_if_wide(rows[y]))
    return fig


def _energy_figure(d: _Digest):
    go, make_subplots = _require_plotly()
    ws = d.workloads
    fig = make_subplots(rows=1, cols=len(ws), subplot_titles=ws, shared_yaxes=False, horizontal_spacing=0.06)
    for i, w in enumerate(ws, start=1):
        pts = d.front[d.front["workload"] == w].head(MAX_BAR_POINTS)
        labels = [f"#{p}" for p in pts["point"]]
        hover = [_hover(r, d.axes) for _, r in pts.iterrows()]
        for j, c in enumerate(d.components):
            fig.add_trace(go.Bar(x=labels, y=pts[f"energy_{c}_uj"], name=c, legendgroup=c, showlegend=i == 1,
                                 marker_color=COMPONENT_COLOURS[j % len(COMPONENT_COLOURS)],
                                 customdata=hover,
                                 hovertemplate=f"{c}: %{{y:.4g}} uJ<br>%{{customdata}}<extra></extra>"),
                          row=1, col=i)
        fig.update_yaxes(title_text="energy per inference (uJ)" if i == 1 else None, row=1, col=i)
        fig.update_xaxes(title_text="front point", row=1, col=i)
    fig.update_layout(barmode="stack", height=480, template="plotly_white",
                      title="Energy by component, Pareto-front points (lowest energy first)")
    return fig


def _layers_figure(d: _Digest, w: str):
    """Stacked compute / stall / overhead cycles per layer of one point; a drop-down picks among
    the workload's front points (lowest energy first)."""
    go, _ = _require_plotly()
    keys = d.layer_choices[w]
    by_key = {k: d.layers[d.layers["key"] == k] for k in keys}
    rows = d.ok.set_index("key")
    first = by_key[keys[0]]
    fig = go.Figure()
    for part, colour in CYCLE_PARTS:
        fig.add_trace(go.Bar(x=first["layer"], y=first[f"{part}_cycles"], name=part, marker_color=colour,
                             hovertemplate=f"%{{x}}<br>{part}: %{{y:,}} cycles<extra></extra>"))

    def title(k: str) -> str:
        return f"Cycles per layer, {w}: {html.escape(_point_label(rows.loc[k], d.axes))}"

    buttons = [dict(label=_point_label(rows.loc[k], d.axes)[:80], method="update",
                    args=[{"x": [by_key[k]["layer"]] * len(CYCLE_PARTS),
                           "y": [by_key[k][f"{p}_cycles"] for p, _ in CYCLE_PARTS]}, {"title": title(k)}])
               for k in keys]
    fig.update_layout(barmode="stack", height=480, template="plotly_white", title=title(keys[0]),
                      xaxis_title="layer", yaxis_title="cycles", margin=dict(t=110),
                      updatemenus=[dict(buttons=buttons, x=0, xanchor="left", y=1.2, yanchor="top")]
                      if len(buttons) > 1 else [])
    return fig


def _html_table(df: pd.DataFrame, table_id: str) -> str:
    """A table whose header cells sort it on click; numbers carry their raw value in data-v."""
    if df.empty:
        return "<p>none</p>"
    df, note = _capped(df)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) \
                    and not _blank(v):
                cells.append(f'<td class="n" data-v="{float(v)!r}">{html.escape(_fmt(v))}</td>')
            else:
                text = _fmt(v)
                cells.append(f'<td class="wrap">{html.escape(text)}</td>' if len(text) > 60
                             else f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{html.escape(note)}</caption>" if note else ""
    return (f'<div class="scroll"><table class="sortable" id="{table_id}">{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { margin-bottom: 0.2em; } .notes { color: #444; max-width: 70em; white-space: pre-wrap; }
ul.meta { color: #333; } .figure { margin: 1em 0; } .empty { color: #a00; font-weight: bold; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; white-space: nowrap; }
td.n { text-align: right; } td.wrap { white-space: normal; min-width: 30em; } .scroll { overflow-x: auto; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
th[data-order=asc]::after { content: " \\25B2"; } th[data-order=desc]::after { content: " \\25BC"; }
caption { caption-side: bottom; text-align: left; color: #666; }
"""

# click a header: sort by that column, ascending then descending; blanks stay last
_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var up = th.dataset.order !== "asc";
      heads.forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = up ? "asc" : "desc";
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var val = function (r) { var c = r.cells[col]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; };
      var numeric = rows.every(function (r) { var v = val(r); return v === "" || !isNaN(Number(v)); });
      rows.sort(function (a, b) {
        var x = val(a), y = val(b);
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var c = numeric ? Number(x) - Number(y) : x.localeCompare(y, undefined, {numeric: true});
        return up ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def render_html(results: pd.DataFrame, layers: pd.DataFrame, meta: dict) -> str:
    """The whole report as one self-contained HTML page (plotly.js inlined once)."""
    _require_plotly()
    d = _digest(results, layers, meta)
    esc = html.escape
    parts = [f"<h1>{esc(d.title)}</h1>"]
    parts += [f'<p class="notes">{esc(n)}</p>' for n in d.notes]
    parts.append('<ul class="meta">' + "".join(f"<li>{esc(s)}</li>" for s in _summary_lines(d)) + "</ul>")

    figures: list[tuple[str, str, Any]] = []       # (section heading, element id, figure)
    if d.ok.empty:
        parts.append('<p class="empty">No finished points in this store: nothing to plot.</p>')
    else:
        figures.append(("Pareto front", "fig-pareto",
                        _scatter_figure(d, LATENCY, ENERGY, "Energy against latency", d.ok)))
        if d.has_accuracy:
            acc = d.ok[d.ok[ACCURACY].notna()]
            figures.append(("", "fig-accuracy", _scatter_figure(d, ENERGY, ACCURACY, "Accuracy against energy", acc)))
        if d.components:
            figures.append(("Energy by component", "fig-energy", _energy_figure(d)))
        for i, w in enumerate(d.layer_choices):
            figures.append(("Cycles per layer" if i == 0 else "", f"fig-layers-{i}", _layers_figure(d, w)))
    first = True
    for heading, fig_id, fig in figures:
        if heading:
            parts.append(f"<h2>{esc(heading)}</h2>")
        if fig_id == "fig-pareto":
            parts.append("<p>Diamonds with a black edge are on the Pareto front of their workload, over "
                         f"{esc(', '.join(_front_objectives(d)))}: a front point may look dominated in one "
                         "plot if it wins on an objective the plot does not show. Hover a point for its "
                         "configuration.</p>")
        if fig_id == "fig-layers-0":
            parts.append("<p>Compute, stall and overhead (zero-point, tiling, power-unit) cycles per layer of each "
                         "workload's lowest-energy front point; the menu shows another front point.</p>")
        div = fig.to_html(full_html=False, include_plotlyjs=first, div_id=f"{fig_id}-plot",
                          config={"displaylogo": False, "responsive": True})
        parts.append(f'<div class="figure" id="{fig_id}">{div}</div>')
        first = False

    if not d.ok.empty:
        parts.append("<h2>Pareto-front points</h2>")
        parts.append(_html_table(d.front[d.table_columns(d.front)], "table-front"))
        parts.append("<h2>Sensitivity</h2><p>Per axis value: each objective's mean over the finished points "
                     "with that value, against the axis's first value (in %; accuracy in points).</p>")
        parts.append(_html_table(d.sensitivity, "table-sensitivity"))
    parts.append("<h2>Skipped and failed points</h2>")
    parts.append(_html_table(d.problems, "table-problems"))
    if not d.ok.empty:
        parts.append("<h2>All finished points</h2><p>Click a column header to sort.</p>")
        table = d.ok.sort_values(["workload", ENERGY], kind="stable")
        parts.append(_html_table(table[d.table_columns(table) + ["on_front"]], "table-results"))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(d.title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(parts) + f"\n<script>{_SORT_JS}</script>\n</body></html>\n")


# ---------------------------------------------------------------------- Markdown + PNG


def _require_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise AccelsimError(MISSING_EXTRA) from None
    return Figure, FigureCanvasAgg


def _png(fig) -> bytes:
    _, canvas = _require_matplotlib()
    canvas(fig)   # Agg, whatever backend pyplot may have chosen
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)   # constrained layout already fits the labels
    return buf.getvalue()


def _png_scatter(d: _Digest, x: str, y: str, title: str, rows: pd.DataFrame) -> bytes:
    Figure, _ = _require_matplotlib()
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.add_subplot()
    for w, g in rows.groupby("workload", sort=False):
        dom, fr = g[~g["on_front"]], g[g["on_front"]]
        ax.scatter(dom[x], dom[y], s=25, color=d.colour(w), alpha=0.45, label=f"{w}: dominated")
        ax.scatter(fr[x], fr[y], s=60, color=d.colour(w), marker="D", edgecolors="black", label=f"{w}: Pareto front")
    ax.set_xscale(_log_if_wide(rows[x]))
    if y == ACCURACY:
        ax.set_ylim(*_accuracy_range(rows[y]))
    else:
        ax.set_yscale(_log_if_wide(rows[y]))
    ax.set(xlabel=LABELS[x], ylabel=LABELS[y], title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _png_energy(d: _Digest) -> bytes:
    Figure, _ = _require_matplotlib()
    ws = d.workloads
    fig = Figure(figsize=(max(6, 4.5 * len(ws)) + 1.5, 4.8), layout="constrained")
    axes = fig.subplots(1, len(ws), squeeze=False)[0]
    for ax, w in zip(axes, ws):
        pts = d.front[d.front["workload"] == w].head(MAX_BAR_POINTS)
        labels = [f"#{p}" for p in pts["point"]]
        bottom = np.zeros(len(pts))
        for j, c in enumerate(d.components):
            v = pts[f"energy_{c}_uj"].fillna(0).to_numpy(dtype=float)
            ax.bar(labels, v, bottom=bottom, color=COMPONENT_COLOURS[j % len(COMPONENT_COLOURS)], label=c)
            bottom += v
        ax.set(title=w, xlabel="front point", ylabel="energy per inference (uJ)")
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right upper", fontsize=8)
    fig.suptitle("Energy by component, Pareto-front points (lowest energy first)")
    return _png(fig)


def _png_layers(d: _Digest) -> bytes:
    Figure, _ = _require_matplotlib()
    ws = list(d.layer_choices)
    n_layers = max(int((d.layers["key"] == d.layer_choices[w][0]).sum()) for w in ws)
    fig = Figure(figsize=(max(8, 0.2 * n_layers), 5 * len(ws)), layout="constrained")
    axes = fig.subplots(len(ws), 1, squeeze=False)[:, 0]
    rows = d.ok.set_index("key")
    for ax, w in zip(axes, ws):
        key = d.layer_choices[w][0]
        lay = d.layers[d.layers["key"] == key]
        bottom = np.zeros(len(lay))
        for part, colour in CYCLE_PARTS:
            v = lay[f"{part}_cycles"].to_numpy(dtype=float)
            ax.bar(lay["layer"], v, bottom=bottom, color=colour, label=part)
            bottom += v
        ax.set(title=f"{w}: {_point_label(rows.loc[key], d.axes)}", ylabel="cycles")
        ax.tick_params(axis="x", labelrotation=90, labelsize=6)
        ax.legend(fontsize=8)
    return _png(fig)


def render_markdown(results: pd.DataFrame, layers: pd.DataFrame, meta: dict,
                    png_prefix: Path) -> tuple[str, dict[Path, bytes]]:
    """The report as Markdown and its PNG plots ({path: bytes}), named `<png_prefix>-<plot>.png`;
    the text links them by file name, so they belong beside the .md."""
    _require_matplotlib()
    d = _digest(results, layers, meta)
    png_prefix = Path(png_prefix)
    pngs: dict[Path, bytes] = {}

    def image(name: str, data: bytes, alt: str) -> str:
        path = png_prefix.parent / f"{png_prefix.name}-{name}.png"
        pngs[path] = data
        return f"![{alt}]({path.name})"

    out = [f"# {d.title}", ""]
    for n in d.notes:
        out += [n, ""]
    out += [f"- {s}" for s in _summary_lines(d)] + [""]
    if d.ok.empty:
        out += ["**No finished points in this store: nothing to plot.**", ""]
    else:
        out += ["## Pareto front", "",
                f"Diamonds are on the Pareto front of their workload, over {', '.join(_front_objectives(d))}.", "",
                image("pareto", _png_scatter(d, LATENCY, ENERGY, "Energy against latency", d.ok),
                      "energy against latency"), ""]
        if d.has_accuracy:
            acc = d.ok[d.ok[ACCURACY].notna()]
            out += [image("accuracy", _png_scatter(d, ENERGY, ACCURACY, "Accuracy against energy", acc),
                          "accuracy against energy"), ""]
        out += _md_table(d.front[d.table_columns(d.front)])
        if d.components:
            out += ["## Energy by component", "", image("energy", _png_energy(d), "energy by component"), ""]
        if d.layer_choices:
            out += ["## Cycles per layer", "", "Each workload's lowest-energy Pareto-front point.", "",
                    image("layers", _png_layers(d), "cycles per layer"), ""]
        out += ["## Sensitivity", "", "Per axis value: each objective's mean over the finished points with that "
                "value, against the axis's first value (in %; accuracy in points).", ""]
        out += _md_table(d.sensitivity)
    out += ["## Skipped and failed points", ""] + _md_table(d.problems)
    if not d.ok.empty:
        table = d.ok.sort_values(["workload", ENERGY], kind="stable")
        out += ["## All finished points", ""] + _md_table(table[d.table_columns(table) + ["on_front"]])
    return "\n".join(out), pngs


def _md_table(df: pd.DataFrame) -> list[str]:
    if df.empty:
        return ["none", ""]
    df, note = _capped(df)
    # cells: one line each, no stray pipes
    shown = df.apply(lambda col: col.map(lambda v: _fmt(v).replace("|", "\\|").replace("\n", " ")))
    return [markdown_table(shown)] + ([f"\n_{note}_"] if note else []) + [""]


# ---------------------------------------------------------------------- writing


def write_report(store_path, out_path, sweep: str | None = None) -> Path:
    """Write the report of the store at `store_path` to `out_path` (.html/.htm or .md, the .md's
    PNGs beside it), all files or none."""
    from ..explore.store import Store, layers_frame, results_frame

    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in HTML_SUFFIXES + MD_SUFFIXES:
        raise AccelsimError(f"{out_path}: expected a report file name ending in "
                            f"{', '.join(HTML_SUFFIXES + MD_SUFFIXES)}; found '{suffix or 'no suffix'}'")
    check_writable(out_path, suffixes=())
    (_require_plotly if suffix in HTML_SUFFIXES else _require_matplotlib)()
    with Store(store_path, create=False) as store:
        results, layers = results_frame(store, sweep), layers_frame(store, sweep)
        meta = {"store": str(store_path), "sweeps": store.sweeps(), "sweep": sweep}
    if suffix in HTML_SUFFIXES:
        files = {out_path: render_html(results, layers, meta).encode("utf-8")}
    else:
        text, pngs = render_markdown(results, layers, meta, out_path.with_suffix(""))
        files = {out_path: text.encode("utf-8"), **pngs}

    def write(tmp: Path) -> None:
        for path, data in files.items():
            (tmp / path.name).write_bytes(data)

    write_together(list(files), write)
    return out_path
