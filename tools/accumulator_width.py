"""Accumulator-width study: integer top-1, overflow events, energy and area of each bundled
trained model at accumulator widths 12 to 32 bits, wrap vs saturate.

    python tools/accumulator_width.py            # writes reports/accumulator-width.{md,csv,png}
    python tools/accumulator_width.py --quick    # 200 images, 5 widths (a development run)
    python tools/accumulator_width.py --from-csv reports/accumulator-width.csv   # re-render only

For each model, width b and overflow mode, on the default config (`edge-npu-16x16`) with the
accumulator set to b bits and the mode, and the `dfq` recipe (data-free; the input range from
the dataset's documented preprocessing):

- "quantized for the width" (`fitted_*` columns): the model quantized for the b-bit hardware.
  The quantizer raises the weight scale of every channel whose folded bias b - z_x sum W does
  not fit b bits (`QGraph.info["bias_scale_raised"]`), so this is what a user of a b-bit
  accelerator would deploy; it is then executed in integers on the b-bit grid.
- "32-bit model on a narrow accumulator" (`fixed_*` columns): the model quantized once for
  32 bits, executed on the b-bit grid. Its folded biases may not fit: the executor wraps or
  saturates them when they are loaded and counts that as an overflow event. This isolates
  what overflow alone does.

References: FP32 top-1 (the float model), the 32-bit integer top-1 and its fake-quant top-1,
and the accumulator bits the 32-bit run's exact sums need (the largest over layers). Cost from
`accelsim.simulate(model, hw_b)`: energy per inference (total and per category) and the area
proxy, each as saved against 32 bits. Everything in the Markdown report, its interpretation
included, is computed from the rows written to the CSV beside it.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import accelsim
from accelsim.config.hw import AccumulatorWarning
from accelsim.cost.area import area_breakdown_mm2
from accelsim.cost.energy import ENERGY_CATEGORIES
from accelsim.data import known_input_range
from accelsim.quant.qgraph import BiasRangeWarning
from accelsim.report.output import write_atomic, write_dataframe
from accelsim.progress import track

REPO = Path(__file__).resolve().parents[1]
MODELS = ("tiny_mobilenet_v2", "tiny_resnet", "tiny_vgg")
WIDTHS = (12, 14, 16, 18, 20, 22, 24, 28, 32)
MODES = ("wrap", "saturate")
HW_NAME = "edge-npu-16x16"
RECIPE = "dfq"
DATASET = "mnist5k"
REFERENCE_BITS = 32
QUICK_IMAGES = 200
QUICK_WIDTHS = (12, 16, 20, 24, 32)
CHANCE_TOP1 = 0.12  # ten classes: 10% is chance; at or below 12% a run counts as at chance
TOLERANCE_POINTS = 0.2  # "safe": integer top-1 within this many points of the 32-bit integer top-1
OUT = REPO / "reports" / "accumulator-width.md"


# ----------------------------------------------------------------------------- inputs


def test_images(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mnist5k test split, or n images of it taken at an even stride. The split is sorted
    by class (100 per class), so a stride keeps the classes balanced where x[:n] would not."""
    x, y = accelsim.load_dataset(DATASET).split("test")
    if n is None or n >= len(y):
        return x, y
    idx = np.arange(0, len(y), len(y) // n)[:n]
    return x[idx], y[idx]


def recipe() -> dict:
    """The `dfq` recipe with the network input's range from the dataset's preprocessing."""
    lo, hi = known_input_range(DATASET)
    return {"method": RECIPE, "input_range": [float(lo), float(hi)]}


def hw_at(base, bits: int, mode: str):
    """`base` with a `bits`-bit accumulator that wraps or saturates (no narrow-accumulator warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AccumulatorWarning)
        return base.replace("precision.accumulator_bits", int(bits)).replace("precision.accumulator_overflow", mode)


def quantize_for(graph, hw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BiasRangeWarning)
        return accelsim.quantize(graph, recipe(), hw=hw)


def same_integers(a, b) -> bool:
    """Whether two QGraphs hold the same integer model (weights, folded biases, requantization)."""
    if a.layers.keys() != b.layers.keys():
        return False
    for name, la in a.layers.items():
        lb = b.layers[name]
        for attr in ("weight_int", "accumulator_bias", "requant_multiplier", "requant_shift"):
            if not np.array_equal(getattr(la, attr), getattr(lb, attr)):
                return False
    return a.activations.keys() == b.activations.keys()


def biases_not_fitting(qg, bits: int) -> int:
    """Channels whose folded bias (the accumulator's starting value) does not fit `bits` bits."""
    limit = 2 ** (bits - 1) - 1
    return int(sum(int((np.abs(lq.accumulator_bias) > limit).sum()) for lq in qg.layers.values()))


# ----------------------------------------------------------------------------- cost


def cost_at(graph, hw) -> dict:
    """Energy per inference (total and per category, uJ), area (total and per component, mm2),
    cycles of `graph` on `hw`, from the cost model."""
    r = accelsim.simulate(graph, hw)
    out = {"energy_uj": float(r.summary["energy_uj_per_inference"])}
    for cat in ENERGY_CATEGORIES:
        out[f"energy_{cat}_uj"] = float(r.layers[f"energy_{cat}_pj"].sum()) / 1e6
    out["area_mm2"] = float(r.summary["area_mm2"])
    for comp, mm2 in area_breakdown_mm2(hw).items():
        out[f"area_{comp}_mm2"] = float(mm2)
    out["total_cycles"] = int(r.summary["total_cycles"])
    out["compute_cycles"] = int(r.summary["compute_cycles"])
    out["stall_cycles"] = int(r.summary["stall_cycles"])
    out["dram_mib"] = float(r.summary["dram_mib"])
    return out


def cost_rows(graph, base_hw, widths=WIDTHS, modes=MODES) -> list[dict]:
    """One cost row per (width, mode), with the savings against `REFERENCE_BITS` (same mode)."""
    rows = []
    for mode in modes:
        ref = cost_at(graph, hw_at(base_hw, REFERENCE_BITS, mode))
        for bits in widths:
            c = cost_at(graph, hw_at(base_hw, bits, mode))
            row = {"accumulator_bits": bits, "overflow_mode": mode, **c}
            for key in [k for k in c if k.endswith(("_uj", "_mm2"))]:
                saved = ref[key] - c[key]
                row[key.replace("_uj", "_saved_uj").replace("_mm2", "_saved_mm2")] = saved
            row["energy_saved_pct"] = 100 * row["energy_saved_uj"] / ref["energy_uj"]
            row["area_saved_pct"] = 100 * row["area_saved_mm2"] / ref["area_mm2"]
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------- one model


RUN_COLUMNS = ("top1", "overflow_events", "overflow_per_image", "layers_overflowing", "acc_bits_needed",
               "array_rows_pct", "seconds")


def _run(qg, hw, x, y) -> tuple[dict, np.ndarray]:
    t = time.perf_counter()
    r = accelsim.execute(qg, hw, x, progress=False)
    pred = r.output.argmax(axis=1)
    s = r.summary
    rows = s["array_rows"] + s["fast_rows"]
    return {
        "top1": float((pred == y).mean()),
        "overflow_events": int(s["overflow_events"]),
        "overflow_per_image": s["overflow_events"] / len(y),
        "layers_overflowing": int(s["layers_overflowing"]),
        "acc_bits_needed": int(s["acc_bits_needed"]),
        "array_rows_pct": 100 * s["array_rows"] / rows if rows else 0.0,
        "seconds": time.perf_counter() - t,
        "_pred": pred,
    }, r.output_codes


def measure_model(name: str, x: np.ndarray, y: np.ndarray, widths=WIDTHS, modes=MODES, base_hw=None,
                  progress=lambda msg: None, codes: dict | None = None, skip_below_chance: bool = True) -> list[dict]:
    """The study's rows for one model: one per (width, mode), both variants, references, cost.

    Widths are measured from the widest down. With `skip_below_chance`, once a variant and
    mode is at chance (top-1 <= CHANCE_TOP1) at some width, it is not executed at the
    narrower widths (its cells are NaN and `<variant>_skipped` is True): those runs are the
    slow ones (most rows on the array path), and a narrower accumulator only overflows more
    (a --no-skip run on 200 images found none above chance again).
    `codes`, if given, receives the output codes of every run keyed (variant, bits, mode),
    variant "fitted" (quantized for the width) or "fixed" (the 32-bit model)."""
    base_hw = base_hw or accelsim.load_hw(HW_NAME)
    graph = accelsim.load_model(name)
    fp32 = float((graph.run(x).argmax(axis=1) == y).mean())
    hw32 = hw_at(base_hw, REFERENCE_BITS, "wrap")
    q32 = quantize_for(graph, hw32)
    fq32 = float((q32.run(x).argmax(axis=1) == y).mean())
    cost = {(c["accumulator_bits"], c["overflow_mode"]): c for c in cost_rows(graph, base_hw, widths, modes)}
    cache: dict[tuple, tuple[dict, np.ndarray]] = {}
    chance_at: dict[tuple[str, str], int] = {}  # (variant, mode) -> width at which top-1 was at chance

    def run(tag, qg, bits, mode):
        key = (tag, bits, mode)
        if key not in cache:
            cache[key] = _run(qg, hw_at(base_hw, bits, mode), x, y)
            r = cache[key][0]
            progress(f"{name} {bits:>2}-bit {mode:<8} {tag:<6} top-1 {100 * r['top1']:5.1f}  "
                     f"overflow/img {r['overflow_per_image']:10.1f}  array rows {r['array_rows_pct']:5.1f}%  "
                     f"{r['seconds']:5.1f} s")
        return cache[key]

    ref, ref_codes = run("fixed", q32, REFERENCE_BITS, "wrap")
    rows = []
    for bits in track(sorted(widths, reverse=True), f"accumulator width ({name})", unit="width"):
        qb = q32 if bits == REFERENCE_BITS else quantize_for(graph, hw_at(base_hw, bits, "wrap"))
        raised = qb.info.get("bias_scale_raised", {})
        reuse = same_integers(qb, q32)
        fq_b = fq32 if reuse else float((qb.run(x).argmax(axis=1) == y).mean())
        for mode in modes:
            row = {"model": name, "accumulator_bits": bits, "overflow_mode": mode, "images": len(y),
                   "fp32_top1": fp32, "int32_top1": ref["top1"], "fakequant32_top1": fq32,
                   "acc_bits_needed_32": ref["acc_bits_needed"],
                   "fitted_layers_raised": len(raised), "fitted_channels_raised": sum(len(v) for v in raised.values()),
                   "fitted_same_as_32bit_model": reuse, "fitted_fakequant_top1": fq_b}
            for tag, qg in (("fixed", q32), ("fitted", q32 if reuse else qb)):
                src = "fixed" if qg is q32 else "fitted"
                skipped = skip_below_chance and (tag, mode) in chance_at
                row[f"{tag}_skipped"] = skipped
                if skipped:
                    for k in RUN_COLUMNS:
                        row[f"{tag}_{k}"] = math.nan
                    row[f"{tag}_agree_int32_pct"] = row[f"{tag}_codes_equal_int32_pct"] = math.nan
                    continue
                r, out_codes = run(src, qg, bits, mode)
                if codes is not None:
                    codes[(tag, bits, mode)] = out_codes
                for k in RUN_COLUMNS:
                    row[f"{tag}_{k}"] = r[k]
                row[f"{tag}_agree_int32_pct"] = 100 * float((r["_pred"] == ref["_pred"]).mean())
                row[f"{tag}_codes_equal_int32_pct"] = 100 * float((out_codes == ref_codes).mean())
                if r["top1"] <= CHANCE_TOP1:
                    chance_at.setdefault((tag, mode), bits)
            row["fixed_biases_not_fitting"] = biases_not_fitting(q32, bits)
            c = cost[(bits, mode)]
            row.update({k: v for k, v in c.items() if k not in ("accumulator_bits", "overflow_mode")})
            rows.append(row)
    return sorted(rows, key=lambda r: (r["accumulator_bits"], MODES.index(r["overflow_mode"])))


# ----------------------------------------------------------------------------- analysis


def narrowest_safe(df: pd.DataFrame, col: str) -> int | None:
    """The narrowest width from which every wider width keeps `col` within the tolerance of
    the 32-bit integer top-1 (df: one model and mode, sorted by width)."""
    ok = (df["int32_top1"] - df[col]) * 100 <= TOLERANCE_POINTS + 1e-9
    safe = None
    for bits, good in zip(df["accumulator_bits"][::-1], ok[::-1]):
        if not good:
            break
        safe = int(bits)
    return safe


def overflow_free_from(df: pd.DataFrame, col: str) -> int | None:
    """The narrowest width from which no wider width has overflow events."""
    free = None
    for bits, ev in zip(df["accumulator_bits"][::-1], df[col][::-1]):
        if not ev == 0:  # NaN (not run: at chance at a wider width) counts as overflowing
            break
        free = int(bits)
    return free


def _pct(x: float) -> str:
    return "not run" if math.isnan(x) else f"{100 * x:.1f}"


def _num(x: float) -> str:
    if math.isnan(x):
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.1f}"
    return f"{x:.2g}"


def changed_categories(df: pd.DataFrame) -> list[str]:
    """Energy categories whose energy differs from the 32-bit value at some width."""
    return [c for c in energy_categories(df) if (df[f"energy_{c}_saved_uj"].abs() > 1e-9).any()]


def energy_categories(df: pd.DataFrame) -> list[str]:
    """The energy categories the rows carry (those of the cost model that wrote them)."""
    return [c[len("energy_"):-len("_saved_uj")] for c in df.columns
            if c.startswith("energy_") and c.endswith("_saved_uj") and c != "energy_saved_uj"]


def cost_same_across_modes(df: pd.DataFrame) -> tuple[bool, float]:
    """Whether every cost column is equal for wrap and saturate at each (model, width); the
    largest absolute difference seen."""
    cols = [c for c in df.columns if c.startswith(("energy_", "area_")) or c.endswith("_cycles") or c == "dram_mib"]
    worst = 0.0
    for _, g in df.groupby(["model", "accumulator_bits"]):
        if g["overflow_mode"].nunique() < 2:
            continue
        vals = g[cols].to_numpy(dtype=float)
        worst = max(worst, float(np.abs(vals - vals[0]).max()))
    return worst == 0.0, worst


MAIN_CATEGORIES = ("acc_sram", "pe_reg", "acc_add")  # the rest of the saving is summed as "other"


def model_table(d: pd.DataFrame, cats: list[str]) -> str:
    main = [c for c in MAIN_CATEGORIES if c in cats]
    other = [c for c in cats if c not in main]
    head = ["acc bits", "overflow", "channels raised", "fake-quant top-1 fitted (%)", "top-1 fitted (%)",
            "overflow / img fitted", "top-1 32-bit model (%)", "overflow / img 32-bit model",
            "biases not fitting (32-bit model)", "energy (uJ)", "saved (uJ)", "saved (%)"]
    head += [f"{c} saved (uJ)" for c in main] + ([f"other saved (uJ): {' + '.join(other)}"] if other else [])
    head += ["area (mm2)", "area saved (%)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in d.iterrows():
        cells = [str(r.accumulator_bits), r.overflow_mode, str(r.fitted_channels_raised),
                 _pct(r.fitted_fakequant_top1), _pct(r.fitted_top1), _num(r.fitted_overflow_per_image),
                 _pct(r.fixed_top1), _num(r.fixed_overflow_per_image), str(r.fixed_biases_not_fitting),
                 f"{r.energy_uj:.2f}", f"{r.energy_saved_uj:.2f}", f"{r.energy_saved_pct:.1f}"]
        cells += [f"{r[f'energy_{c}_saved_uj']:.2f}" for c in main]
        if other:
            cells.append(f"{sum(r[f'energy_{c}_saved_uj'] for c in other):.2f}")
        cells += [f"{r.area_mm2:.3f}", f"{r.area_saved_pct:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


VARIANTS = (("fitted", "quantized for the width"), ("fixed", "32-bit model"))


def headline(df: pd.DataFrame) -> list[dict]:
    """Per model, mode and variant: the narrowest safe width, what it saves, where overflow stops."""
    out = []
    for name, dm in df.groupby("model", sort=False):
        for mode in MODES:
            d = dm[dm.overflow_mode == mode].sort_values("accumulator_bits")
            if d.empty:
                continue
            for tag, label in VARIANTS:
                b = narrowest_safe(d, f"{tag}_top1")
                r = d[d.accumulator_bits == b].iloc[0] if b is not None else None
                out.append({"model": name, "mode": mode, "variant": label, "safe_bits": b,
                            "top1": r[f"{tag}_top1"] if r is not None else math.nan,
                            "int32_top1": d.int32_top1.iloc[0],
                            "energy_saved_uj": r.energy_saved_uj if r is not None else math.nan,
                            "energy_saved_pct": r.energy_saved_pct if r is not None else math.nan,
                            "area_saved_mm2": r.area_saved_mm2 if r is not None else math.nan,
                            "area_saved_pct": r.area_saved_pct if r is not None else math.nan,
                            "overflow_free_bits": overflow_free_from(d, f"{tag}_overflow_events")})
    return out


def headline_table(h: list[dict]) -> str:
    head = ["model", "overflow", "model quantized", "narrowest safe width (bits)", "top-1 there (%)",
            "32-bit integer top-1 (%)", "energy saved vs 32 bits", "area saved vs 32 bits",
            "no overflow events from (bits)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in h:
        if r["safe_bits"] is None:
            lines.append(f"| {r['model']} | {r['mode']} | {r['variant']} | none | - | {_pct(r['int32_top1'])} | - | - | "
                         f"{r['overflow_free_bits'] or '-'} |")
            continue
        lines.append(f"| {r['model']} | {r['mode']} | {r['variant']} | {r['safe_bits']} | {_pct(r['top1'])} | "
                     f"{_pct(r['int32_top1'])} | {r['energy_saved_uj']:.2f} uJ ({r['energy_saved_pct']:.1f}%) | "
                     f"{r['area_saved_mm2']:.3f} mm2 ({r['area_saved_pct']:.1f}%) | {r['overflow_free_bits'] or '-'} |")
    return "\n".join(lines)


def _bits_list(bits) -> str:
    bits = [int(b) for b in bits]
    return ", ".join(str(b) for b in bits) + (" bits" if bits else "")


def product_bits(hw) -> int:
    """Signed bits of the largest product the array forms: raw activation codes (unsigned for
    asymmetric activations) times signed weight codes."""
    p, q = hw.precision, hw.quantization
    x_max = 2 ** p.activation_bits - 1 if q.activation_scheme == "asymmetric" else 2 ** (p.activation_bits - 1)
    w_max = 2 ** (p.weight_bits - 1) if q.weight_scheme == "symmetric" else 2 ** p.weight_bits - 1
    return int(x_max * w_max).bit_length() + 1


def interpretation(df: pd.DataFrame, h: list[dict], hw) -> list[str]:
    out = []
    n = int(df["images"].iloc[0])
    widths = sorted(df["accumulator_bits"].unique())
    tol_images = TOLERANCE_POINTS / 100 * n
    out.append(f"Safe means: at that width and at every wider one in the study ({', '.join(map(str, widths))}), "
               f"integer top-1 is within {TOLERANCE_POINTS} points ({tol_images:g} of {n} images) of the 32-bit "
               "integer top-1 (the headline table above).")
    # the safe widths against the bits the 32-bit run needs
    for name, dm in df.groupby("model", sort=False):
        need = int(dm.acc_bits_needed_32.iloc[0])
        hm = [r for r in h if r["model"] == name]
        safe = {(r["mode"], r["variant"]): r["safe_bits"] for r in hm}
        by_mode = "; ".join(f"{mode}: {'/'.join(str(safe.get((mode, v))) for _, v in VARIANTS)} bits"
                            for mode in MODES if (mode, VARIANTS[0][1]) in safe)
        free = {r["overflow_free_bits"] for r in hm}
        out.append(f"**{name}**: the 32-bit run's largest exact sum needs {need} bits; narrowest safe width "
                   f"(quantized for the width / 32-bit model) {by_mode}; no overflow events from "
                   f"{_bits_list(sorted(b for b in free if b is not None))} up.")
    # below the product width nothing can work
    pb = product_bits(hw)
    narrow = df[df.accumulator_bits < pb]
    if not narrow.empty:
        best = np.nanmax(narrow[["fitted_top1", "fixed_top1"]].to_numpy(dtype=float))
        out.append(f"Below {pb} bits not even one product fits (the array multiplies raw codes: activation codes "
                   f"0..{2 ** hw.precision.activation_bits - 1} times signed {hw.precision.weight_bits}-bit weight "
                   f"codes need {pb} bits), so every layer overflows on ordinary inputs; the best top-1 measured below "
                   f"{pb} bits is {_pct(best)}% (chance: 10%).")
    # quantizing for the width vs the 32-bit model
    dd = df[~df.fitted_same_as_32bit_model.astype(bool)]
    same_from = df[df.fitted_same_as_32bit_model.astype(bool)].groupby("model")["accumulator_bits"].min()
    if not dd.empty:
        gain = ((dd.fitted_top1 - dd.fixed_top1) * 100).dropna()
        ev = (dd.fixed_overflow_per_image - dd.fitted_overflow_per_image).dropna()
        first = dd.sort_values("accumulator_bits").groupby("model", sort=False).first()
        fq = {m: (r.fitted_fakequant_top1, int(r.accumulator_bits)) for m, r in first.iterrows()}
        if len(set(same_from)) == 1:
            where = f"below {int(same_from.iloc[0])} bits (from {int(same_from.iloc[0])} bits up no model needs it)"
        else:
            where = "below " + ", ".join(f"{int(b)} bits ({m})" for m, b in same_from.items())
        txt = ("Quantizing for the width (raising weight scales until the folded biases fit) changes the model "
               f"only {where}. There it removes the overflowing bias loads")
        if len(ev):
            i = ev.idxmax()
            txt += (f" (overflow events per image fall by up to {_num(ev.max())}: {_num(dd.loc[i, 'fixed_overflow_per_image'])}"
                    f" -> {_num(dd.loc[i, 'fitted_overflow_per_image'])} for {dd.loc[i, 'model']} at "
                    f"{int(dd.loc[i, 'accumulator_bits'])} bits, {dd.loc[i, 'overflow_mode']})")
        if len(gain):
            j = gain.abs().idxmax()
            txt += (f", but moves top-1 by at most {gain[j]:+.1f} points ({dd.loc[j, 'model']}, "
                    f"{int(dd.loc[j, 'accumulator_bits'])} bits, {dd.loc[j, 'overflow_mode']}): the products still overflow")
        txt += (", and the coarser weights cost accuracy of their own: the fitted model's fake-quant top-1 (no "
                f"overflow at all) is {', '.join(f'{_pct(v)}% ({m}, {b} bits)' for m, (v, b) in fq.items())} at the "
                "narrowest width.")
        out.append(txt)
    # saturate vs wrap
    for name, dm in df.groupby("model", sort=False):
        parts = []
        for tag, label in VARIANTS:
            w = dm[dm.overflow_mode == "wrap"].set_index("accumulator_bits")[f"{tag}_top1"]
            s = dm[dm.overflow_mode == "saturate"].set_index("accumulator_bits")[f"{tag}_top1"]
            if w.empty or s.empty:
                continue
            diff = ((s - w) * 100).dropna()
            better = [b for b in diff.index if diff[b] > 1e-9]
            worse = [b for b in diff.index if diff[b] < -1e-9]
            if not better and not worse:
                parts.append(f"{label}: equal at every width measured in both modes")
                continue
            big = diff.abs().idxmax()
            parts.append(f"{label}: saturate higher at {_bits_list(better) or 'no width'}, lower at "
                         f"{_bits_list(worse) or 'no width'}; largest gap {diff[big]:+.1f} points at {int(big)} bits "
                         f"(saturate {_pct(s[big])}%, wrap {_pct(w[big])}%)")
        out.append(f"Saturate vs wrap, **{name}**: " + "; ".join(parts) + ".")
    # wrap is exact when only intermediate sums overflow
    ex = df[(df.overflow_mode == "wrap") & (df.fixed_overflow_events > 0) & (df.fixed_codes_equal_int32_pct == 100)]
    if not ex.empty:
        cases = ", ".join(f"{r.model} at {int(r.accumulator_bits)} bits ({_num(r.fixed_overflow_per_image)} events "
                          "per image)" for r in ex.itertuples())
        out.append("Wrap can overflow and still be exact: two's-complement sums are exact modulo 2^b, so when "
                   "only partial sums leave the range and the final sum fits, the result is the 32-bit one. "
                   f"Measured: every output code equal to the 32-bit run's despite overflow events for {cases}. "
                   "Saturate has no such property (a clipped partial sum stays wrong), which is where wrap can beat it; "
                   "where final sums overflow, wrap turns a large sum into an unrelated one (often of the other sign) "
                   "while saturate keeps it at the largest value, which is where saturate wins.")
    return out


def savings_table(df: pd.DataFrame, cats: list[str]) -> str:
    """Energy saved per category and area saved per component, per width (one mode), per model."""
    comps = [c[len("area_"):-len("_saved_mm2")] for c in df.columns
             if c.startswith("area_") and c.endswith("_saved_mm2") and c != "area_saved_mm2"
             and (df[c].abs() > 1e-12).any()]
    head = ["model", "acc bits", "energy saved (%)"] + [f"{c} (%)" for c in cats] + [
        f"area: {c} (%)" for c in comps] + ["area saved (%)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, dm in df[df.overflow_mode == df.overflow_mode.iloc[0]].groupby("model", sort=False):
        for _, r in dm.sort_values("accumulator_bits").iterrows():
            if r.accumulator_bits == REFERENCE_BITS:
                continue
            cells = [name, str(r.accumulator_bits), f"{r.energy_saved_pct:.1f}"]
            for c in cats:
                base = r[f"energy_{c}_uj"] + r[f"energy_{c}_saved_uj"]
                cells.append(f"{100 * r[f'energy_{c}_saved_uj'] / base:.1f}" if base else "-")
            for c in comps:
                base = r[f"area_{c}_mm2"] + r[f"area_{c}_saved_mm2"]
                cells.append(f"{100 * r[f'area_{c}_saved_mm2'] / base:.1f}" if base else "-")
            cells.append(f"{r.area_saved_pct:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_notes(df: pd.DataFrame, cats: list[str]) -> list[str]:
    same, worst = cost_same_across_modes(df)
    out = [("Cost does not depend on the overflow mode: every energy, area, cycle and DRAM figure is identical "
            "for wrap and saturate at every width." if same else
            f"Cost depends on the overflow mode: wrap and saturate differ by up to {worst:.3g} in some cost column.")]
    d = df[(df.overflow_mode == df.overflow_mode.iloc[0]) & (df.accumulator_bits < REFERENCE_BITS)]
    if d.empty:
        return out
    shares = {c: float(d[f"energy_{c}_saved_uj"].sum() / d["energy_saved_uj"].sum()) for c in cats}
    top = sorted(shares, key=shares.get, reverse=True)
    unchanged = [c for c in energy_categories(df) if c not in cats]
    out.append("Where the energy saving comes from (summed over models and widths): "
               + ", ".join(f"{c} {100 * shares[c]:.0f}%" for c in top)
               + f"; unchanged: {', '.join(unchanged) or 'none'}. The saving is "
               + ", ".join(f"{m} {g.energy_saved_pct.min():.1f}-{g.energy_saved_pct.max():.1f}%"
                           for m, g in d.groupby("model", sort=False))
               + " of the total, largest where accumulator-SRAM traffic is a large part of the energy; the area "
               f"saving ({d.area_saved_pct.min():.1f}-{d.area_saved_pct.max():.1f}%) is the config's and the same "
               "for every model.")
    cyc = df.groupby("model")["total_cycles"].agg(["min", "max"])
    rel = float(((cyc["max"] - cyc["min"]) / cyc["max"]).max())
    if "compute_cycles" in df:
        fixed = bool((df.groupby("model")["compute_cycles"].nunique() == 1).all())
        why = ("compute cycles are the same at every width; only DRAM stall cycles change (the biases, stored at "
               "accumulator width, are fewer DRAM bytes)" if fixed else "compute cycles change too")
    else:
        why = "see the CSV"
    out.append(f"Cycles change by at most {100 * rel:.2f}% across widths: {why}.")
    return out


def render(df: pd.DataFrame, command: str, seconds: float, plot: str | None, hw) -> str:
    cats = changed_categories(df)
    n = int(df["images"].iloc[0])
    widths = sorted(df["accumulator_bits"].unique())
    dm = df[df.overflow_mode == "wrap"] if (df.overflow_mode == "wrap").any() else df
    h = headline(df)
    skipped = df[df.fitted_skipped.astype(bool) | df.fixed_skipped.astype(bool)]
    lines = [
        "# Accumulator width: integer accuracy, overflow, energy and area",
        "",
        "Each bundled trained model executed bit-exactly in integers on the PE grid at accumulator widths "
        f"{', '.join(map(str, widths))} bits, wrapping or saturating, beside what the cost model says the narrower "
        "accumulator saves: integer execution and cost from one description. Regenerate the report, the raw rows "
        f"(`{Path(OUT).with_suffix('.csv').name}`, beside it){' and the plot' if plot else ''} with:",
        "",
        f"    {command}",
        "",
        f"({f'{seconds / 60:.0f} minutes' if seconds >= 120 else f'{seconds:.0f} s'} on the 2-core development machine, shared with other work; `--quick`: "
        f"{QUICK_IMAGES} images and widths {', '.join(map(str, QUICK_WIDTHS))}.)",
        "",
        "## Setup",
        "",
        f"- Hardware: `{HW_NAME}` ({hw.pe_array.rows}x{hw.pe_array.cols} {hw.pe_array.dataflow.replace('_', '-')} "
        f"array, {hw.precision.weight_bits}-bit {hw.quantization.weight_scheme} {hw.quantization.weight_granularity.replace('_', '-')} "
        f"weights, {hw.precision.activation_bits}-bit {hw.quantization.activation_scheme} activations, "
        f"{hw.tech_nm} nm, `{hw.energy.table}` energy table), with `precision.accumulator_bits` and "
        "`precision.accumulator_overflow` set per row.",
        f"- Recipe: `{RECIPE}` (data-free: BN folding, cross-layer equalization, bias absorption, analytic bias "
        "correction, BN-based activation ranges), the network input's range from the dataset's documented "
        "preprocessing.",
        f"- Data: the {DATASET} test split, {n} images" + (" (all of it)." if n == 1000 else
                                                          " (an even stride over the class-sorted split)."),
        "- **Quantized for the width** (\"fitted\"): the model quantized for the b-bit config. The quantizer raises "
        "the weight scale of each channel whose folded bias b - z_x sum W would not fit b bits (leaving room for "
        "the channel's raw-code products where any scale can); \"channels raised\" counts them, and its fake-quant "
        "top-1 shows what the coarser weights cost before any overflow. This is what a b-bit accelerator would run.",
        "- **32-bit model** (\"fixed\"): the model quantized once for a 32-bit accumulator, executed on the b-bit "
        "grid. \"Biases not fitting\" counts its channels whose folded bias exceeds b bits: the executor wraps or "
        "saturates them as they are loaded (an overflow event per output element). It isolates overflow.",
        "- References: FP32 top-1, the 32-bit integer top-1 and its fake-quant top-1.",
        "- Cost: `accelsim.simulate(model, hw_b)`: energy per inference and the area proxy of the b-bit config, "
        "saved against the same config at 32 bits.",
        f"- Not run: once a model, variant and mode is at chance (top-1 <= {100 * CHANCE_TOP1:.0f}%) at some width, "
        "it is not executed at the narrower widths (\"not run\" in the tables): those are the slowest runs (most "
        "rows on the cycle-stepped array path), and a narrower accumulator only overflows more (a `--no-skip` run "
        "on 200 images found none above chance again). `--no-skip` runs them."
        + (f" Rows with a variant not run here: {len(skipped)} of {len(df)}." if len(skipped) else
           " Nothing was skipped in this run."),
        "",
        "## Headline",
        "",
        headline_table(h),
        "",
    ]
    if plot:
        lines += [f"![integer top-1 and energy saved vs accumulator width]({plot})", ""]
    lines += ["## Interpretation", ""]
    lines += [f"- {p}" for p in interpretation(df, h, hw) + cost_notes(df, cats)]
    lines += ["", "## Per model", ""]
    for name, d in df.groupby("model", sort=False):
        r0 = d.iloc[0]
        lines += [f"### {name}", "",
                  f"FP32 {_pct(r0.fp32_top1)}%, 32-bit integer {_pct(r0.int32_top1)}%, 32-bit fake-quant "
                  f"{_pct(r0.fakequant32_top1)}%; the 32-bit run's largest exact sum needs "
                  f"{int(r0.acc_bits_needed_32)} bits. Overflow events per image; energy per inference.", "",
                  model_table(d.sort_values(["accumulator_bits", "overflow_mode"], ascending=[True, False]), cats),
                  ""]
    lines += ["### What the narrower accumulator saves, by category", "",
              "Each energy category's saving as a share of that category's 32-bit energy, and each area "
              "component's (the same for both modes).", "", savings_table(dm, cats), ""]
    lines += [
        "## Assumptions",
        "",
        "- Cost model, what scales with `accumulator_bits` (b): an accumulator add is an adder of b bits (the "
        "table's 32-bit adder scaled linearly); the PE's partial-sum register traffic is 2b bits per MAC "
        "(read and write); accumulator-SRAM traffic is b bits per partial-sum word (the buffer keeps its KiB, so a "
        "narrower word also lets the memory model pick other tilings); requantization is a b x 32 multiply plus "
        "an add and a shift at b bits; biases are stored and moved at b bits (DRAM and filter-SRAM parameter "
        "bytes). Area proxy: the PE adder and partial-sum register and the requantization lanes scale with b; "
        "SRAMs keep their capacity. MACs and operand traffic do not depend on the accumulator.",
        "- Overflow event (`accelsim/sim/execute.py`): every accumulator add whose exact result leaves "
        "[-2^(b-1), 2^(b-1) - 1]: the adds in the PEs (a row fold's partial sum, one product per row, from zero), "
        "the add of each fold's partial sum into the accumulator buffer, the load of the folded bias into each "
        "output's accumulator, and zero-point corrections (none here: symmetric weights). Under saturate, an add "
        "from a clipped value that would leave the range again counts again, so the two modes' counts differ. Rows "
        "that a bound proves cannot overflow run on the exact BLAS path and count none (they have none).",
        "- Accumulation order: the weight-stationary array's (within a row fold k ascending, then fold after fold "
        "into the buffer). Saturation does not commute: another order gives other saturate results; wrap results "
        "do not depend on the order.",
        "- Bits needed: the largest |exact accumulator value| of any output in the 32-bit run (folded bias "
        "included), as a signed width. Partial sums can exceed it in between, so a width at the bits needed can "
        "still count overflow events.",
        "- MNIST-scale models: longer dot products need wider accumulators; the method carries over, the widths "
        "do not.",
        "",
    ]
    return "\n".join(lines)


def make_plot(df: pd.DataFrame, path: Path) -> bool:
    """Integer top-1 vs accumulator width per model (both variants, both modes) and the energy
    saved on a second axis; False if matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    models = list(dict.fromkeys(df["model"]))
    widths = sorted(df["accumulator_bits"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(4.4 * len(models), 3.6), squeeze=False)
    styles = {("fitted", "wrap"): ("C0", "-"), ("fitted", "saturate"): ("C1", "-"),
              ("fixed", "wrap"): ("C0", ":"), ("fixed", "saturate"): ("C1", ":")}
    labels = dict(VARIANTS)
    for i, (ax, name) in enumerate(zip(axes[0], models)):
        d = df[df.model == name]
        for (tag, mode), (color, ls) in styles.items():
            dd = d[d.overflow_mode == mode].sort_values("accumulator_bits")
            if not dd.empty:
                ax.plot(dd.accumulator_bits, 100 * dd[f"{tag}_top1"], color=color, ls=ls, marker="o", ms=3,
                        label=f"{labels[tag]}, {mode}")
        ax.axhline(100 * d.int32_top1.iloc[0], color="grey", lw=0.8)
        ax.set_title(name)
        ax.set_xlabel("accumulator bits")
        ax.set_xticks(widths)
        ax.set_ylim(0, 102)
        ax.grid(alpha=0.3)
        e = d[d.overflow_mode == d.overflow_mode.iloc[0]].sort_values("accumulator_bits")
        ax2 = ax.twinx()
        ax2.plot(e.accumulator_bits, e.energy_saved_pct, color="C2", ls="--", lw=1, label="energy saved")
        ax2.set_ylim(0, max(5.0, float(df.energy_saved_pct.max()) * 1.1))
        if i == len(models) - 1:
            ax2.set_ylabel("energy saved vs 32 bits (%)", color="C2")
        if i == 0:
            ax.set_ylabel("integer top-1 (%)")
    h1, l1 = axes[0][-1].get_legend_handles_labels()
    fig.legend(h1 + [plt.Line2D([], [], color="C2", ls="--")], l1 + ["energy saved (right axis)"], fontsize=7,
               loc="lower center", ncol=5, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_IMAGES} images and widths {' '.join(map(str, QUICK_WIDTHS))} (development)")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--widths", nargs="+", type=int, default=None)
    p.add_argument("--images", type=int, default=None, help="test images (an even stride over the split)")
    p.add_argument("--out", default=str(OUT), help="the Markdown report; the CSV and plot are written beside it")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--no-skip", action="store_true",
                   help="also execute the widths below one at which a variant and mode is at chance")
    p.add_argument("--from-csv", default=None, help="re-render the report from a CSV this tool wrote (no runs)")
    args = p.parse_args(argv)
    widths = sorted(set(args.widths or (QUICK_WIDTHS if args.quick else WIDTHS)) | {REFERENCE_BITS})
    images = args.images or (QUICK_IMAGES if args.quick else None)
    out = Path(args.out)
    csv_path = out.with_suffix(".csv")
    command = " ".join(["python", "tools/accumulator_width.py"] + (argv if argv is not None else sys.argv[1:]))
    if args.from_csv:
        df = pd.read_csv(args.from_csv)
        seconds, command = float(df["run_seconds"].iloc[0]), str(df["run_command"].iloc[0])
    else:
        x, y = test_images(images)
        t0 = time.perf_counter()
        rows = []
        for name in args.models:
            t = time.perf_counter()
            rows += measure_model(name, x, y, widths, MODES, progress=lambda m: print(m, file=sys.stderr, flush=True),
                                  skip_below_chance=not args.no_skip)
            print(f"{name}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        df = pd.DataFrame(rows)
        seconds = time.perf_counter() - t0
        df["run_seconds"], df["run_command"] = seconds, command
        write_dataframe(df, csv_path)
    plot_path = out.with_suffix(".png")
    plotted = not args.no_plot and make_plot(df, plot_path)
    text = render(df, command, seconds, plot_path.name if plotted else None, accelsim.load_hw(HW_NAME))
    write_atomic(out, lambda tmp: Path(tmp).write_text(text))
    print(f"wrote {out}" + ("" if args.from_csv else f", {csv_path}") + (f", {plot_path}" if plotted else " (no plot: matplotlib not installed)"
                                          if not args.no_plot else ""), file=sys.stderr)
    print(f"total {seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
