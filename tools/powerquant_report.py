"""PowerQuant beside uniform quantization: integer accuracy on the grid and the cost of each datapath.

    python tools/powerquant_report.py                 # writes reports/powerquant.md and its plot
    python tools/powerquant_report.py --limit 200 --out /tmp/pq.md

For each bundled model at W8A8, W6A6, W4A8 and W4A4: naive and dfq on the uniform datapath
(edge-npu-16x16, power_unit none), powerquant and dfq+powerquant on the same array with a power
unit (per-output LUT unit) and each product realisation (product_lut, decode_lut; sum_power as
the ablation). Accuracy is integer top-1 from `accelsim.execute` on the mnist5k test split;
cost is `accelsim.simulate(qgraph, hw)` at batch 1 (the numeric format the QGraph uses; area of
the hardware built).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import accelsim
from accelsim.report.output import markdown_table, write_atomic
from accelsim.progress import track

REPO = Path(__file__).resolve().parents[1]
MODELS = ("tiny_mobilenet_v2", "tiny_resnet", "tiny_vgg")
BITS = ((8, 8), (6, 6), (4, 8), (4, 4))
UNIFORM = ("naive", "dfq")
POWER = ("powerquant", "dfq+powerquant")
REALISATIONS = ("product_lut", "decode_lut", "sum_power")


def _hw(products: str | None):
    hw = accelsim.load_hw("edge-npu-16x16")
    if products is None:
        return hw
    return hw.replace("quantization.power_unit", "lut").replace("quantization.power_products", products)


def rows(limit: int | None, realisations=REALISATIONS):
    data = accelsim.load_dataset("mnist5k")
    x, y = data.split("test")
    if limit:
        idx = np.linspace(0, len(y) - 1, limit).astype(int)
        x, y = x[idx], y[idx]
    for model in track(MODELS, "powerquant accuracy", unit="model"):
        g = accelsim.load_model(model)
        fp32 = float((g.run(x).argmax(1) == y).mean())
        for wb, ab in BITS:
            points = [(m, None) for m in UNIFORM] + [(m, p) for m in POWER for p in realisations]
            for method, products in points:
                if products == "sum_power" and method != "dfq+powerquant":
                    continue  # the ablation once per bit-width is enough to show it fails
                hw = _hw(products)
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    qg = accelsim.quantize(g, {"method": method, "weight_bits": wb, "activation_bits": ab}, hw=hw,
                                           data="mnist5k")
                    r = accelsim.execute(qg, hw, x, progress=False)
                    fq = qg.run(x)
                    cost = accelsim.simulate(qg, hw).summary
                yield {
                    "model": model, "bits": f"W{wb}A{ab}", "recipe": method, "datapath": products or "uniform",
                    "a": qg.info.get("power_exponent", float("nan")),
                    "top-1 fp32": fp32, "top-1 fake-quant": float((fq.argmax(1) == y).mean()),
                    "top-1 integer": float((r.output.argmax(1) == y).mean()),
                    "energy uJ": cost["energy_uj_per_inference"], "cycles": int(cost["total_cycles"]),
                    "area mm2": cost["area_mm2"], "seconds": time.perf_counter() - t0,
                }
                print(f"{model} W{wb}A{ab} {method} {products or 'uniform'}: "
                      f"{(r.output.argmax(1) == y).mean():.3f}", file=sys.stderr, flush=True)


def scope_rows(limit: int | None):
    """Appendix H's question: one exponent for the network or one per layer (integer top-1, decode_lut)."""
    data = accelsim.load_dataset("mnist5k")
    x, y = data.split("test")
    if limit:
        idx = np.linspace(0, len(y) - 1, limit).astype(int)
        x, y = x[idx], y[idx]
    hw = _hw("decode_lut")
    for model in track(MODELS, "powerquant exponent scope", unit="model"):
        g = accelsim.load_model(model)
        for wb, ab in ((4, 8), (6, 6)):
            row = {"model": model, "bits": f"W{wb}A{ab}"}
            for scope in ("network", "per_layer"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    qg = accelsim.quantize(g, {"method": "dfq+powerquant", "weight_bits": wb, "activation_bits": ab,
                                               "power_exponent_scope": scope}, hw=hw, data="mnist5k")
                    r = accelsim.execute(qg, hw, x, progress=False)
                row[f"top-1 {scope}"] = float((r.output.argmax(1) == y).mean())
                if scope == "per_layer":
                    a = list(qg.info["power_exponents"].values())
                    row["per-layer a range"] = f"{min(a):.2f}-{max(a):.2f}"
                else:
                    row["network a*"] = qg.info["power_exponent"]
            row["per_layer - network (points)"] = round(100 * (row["top-1 per_layer"] - row["top-1 network"]), 1)
            yield row


def logit_steps() -> list[str]:
    """At 4-bit activations the data-free range of the logits (a linear layer without BN: the
    Cauchy-Schwarz bound of quant/stats.py) can leave the classes one or two codes apart."""
    out = []
    for model in MODELS:
        g = accelsim.load_model(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qg = accelsim.quantize(g, {"method": "dfq", "weight_bits": 4, "activation_bits": 4}, data="mnist5k")
        q = qg.activations[g.outputs[0]]
        out.append(f"{model}: logits' range [{float(q.range_lo):.3g}, {float(q.range_hi):.3g}], "
                   f"one 4-bit step = {float(q.scale):.3g}")
    return out


def _area_lines(df) -> list[str]:
    """The price in silicon (the 8-bit datapath built: the same at every bit-width run on it)."""
    area = {p: float(df[df["datapath"] == p]["area mm2"].iloc[0]) for p in ("uniform", "product_lut", "decode_lut")}
    base = area["uniform"]
    from accelsim.cost.energy import power_datapath

    entries = power_datapath(_hw("product_lut")).product_lut_entries
    return [f"Area of the 8-bit datapath built (the same whatever format runs on it): uniform {base:.3g} mm2, "
            f"product_lut {area['product_lut']:.3g} mm2 ({area['product_lut'] / base:.1f}x: a "
            f"{entries:,}-entry table at each of the 256 PEs), decode_lut {area['decode_lut']:.3g} mm2 "
            f"({area['decode_lut'] / base:.2f}x: 2^8-entry tables at the array edges, wider multipliers). "
            "Where power quantization buys no accuracy, that silicon buys nothing either."]


def _plot(df, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(MODELS), figsize=(13, 4), sharey=True)
    markers = {"uniform": "o", "product_lut": "s", "decode_lut": "^", "sum_power": "x"}
    colors = {"W8A8": "tab:blue", "W6A6": "tab:green", "W4A8": "tab:orange", "W4A4": "tab:red"}
    for ax, model in zip(axes, MODELS):
        sub = df[df["model"] == model]
        for _, row in sub.iterrows():
            ax.scatter(row["energy uJ"], 100 * row["top-1 integer"], marker=markers[row["datapath"]],
                       color=colors[row["bits"]], s=36, alpha=0.8)
        ax.set_xscale("log")
        ax.set_title(model)
        ax.set_xlabel("energy per inference (uJ, log)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("integer top-1 (%)")
    handles = [plt.Line2D([], [], marker=m, linestyle="", color="k", label=k) for k, m in markers.items()]
    handles += [plt.Line2D([], [], marker="o", linestyle="", color=c, label=k) for k, c in colors.items()]
    fig.legend(handles=handles, loc="lower center", ncol=8, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)
    return True


def _interpretation(df) -> list[str]:
    out = []
    for model in MODELS:
        for bits in df["bits"].unique():
            sub = df[(df["model"] == model) & (df["bits"] == bits)]
            best_u = sub[sub["datapath"] == "uniform"].sort_values("top-1 integer").iloc[-1]
            pw = sub[sub["datapath"].isin(("product_lut", "decode_lut"))]
            if pw.empty:
                continue
            cheapest = pw.sort_values(["top-1 integer", "energy uJ"], ascending=[False, True]).iloc[0]
            gain = round(100 * (cheapest["top-1 integer"] - best_u["top-1 integer"]), 1)
            extra = 100 * (cheapest["energy uJ"] / best_u["energy uJ"] - 1)
            # 1,000 images: a top-1 near 98% has a standard error of about 0.4 points
            verdict = ("pays for itself" if gain >= 1.0 else "loses accuracy" if gain <= -1.0
                       else "buys nothing measurable (within the noise of 1,000 images)")
            out.append(f"- {model} {bits}: best uniform {best_u['recipe']} {100 * best_u['top-1 integer']:.1f}%, "
                       f"best power {cheapest['recipe']} on {cheapest['datapath']} "
                       f"{100 * cheapest['top-1 integer']:.1f}% ({gain:+.1f} points) at {extra:+.0f}% energy: "
                       f"power quantization {verdict}.")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="test images (evenly spaced; default: all 1,000)")
    ap.add_argument("--out", default=str(REPO / "reports" / "powerquant.md"))
    args = ap.parse_args(argv)
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.DataFrame(list(rows(args.limit)))
    out = Path(args.out)
    png = out.with_name(out.stem + "-accuracy-energy.png")
    plotted = _plot(df, png)
    n = args.limit or 1000
    cmd = "python tools/powerquant_report.py" + (f" --limit {args.limit}" if args.limit else "")
    uni = df[df["datapath"] == "uniform"].groupby(["model", "bits"])["area mm2"].first()
    md = [
        "# PowerQuant on the grid: accuracy beside the cost of each datapath", "",
        f"Generated by `{cmd}` ({time.perf_counter() - t0:.0f} s, accelsim {accelsim.__version__}); "
        f"{n:,} mnist5k test images per point.", "",
        "Setup: edge-npu-16x16 (16x16 weight stationary, 32-bit accumulators). Uniform recipes run on it as "
        "shipped (power_unit none); PowerQuant recipes on the same array with a per-output LUT power unit and "
        "each product realisation (`quantization.power_products`): `product_lut` (a table at each PE indexed by "
        "|q_w| q_x), `decode_lut` (tables at the array edges, a wider multiplier), and the `sum_power` ablation "
        "(1/a on the accumulated sum). `a`: the network's exponent a*, searched on the weights' reconstruction "
        "error. Top-1 is integer execution on the grid (`accelsim.execute`); cost is `accelsim.simulate` on the "
        "QGraph at batch 1: energy per inference, total cycles, and the area proxy of the hardware built.", "",
        "## Where power quantization pays for itself", "",
        *_interpretation(df), "",
        *_area_lines(df), "",
        "The sum_power ablation's accuracy shows why the 1/a power must be applied to every product: raising "
        f"the accumulated sum instead reaches {100 * df[df['datapath'] == 'sum_power']['top-1 integer'].min():.0f}%"
        f"-{100 * df[df['datapath'] == 'sum_power']['top-1 integer'].max():.0f}% top-1.", "",
    ]
    if plotted:
        md += [f"![accuracy against energy]({png.name})", ""]
    scope = pd.DataFrame(list(scope_rows(args.limit)))
    better = int((scope["per_layer - network (points)"] > 0.2).sum())
    worse = int((scope["per_layer - network (points)"] < -0.2).sum())
    md += ["## W4A4: the data-free logit range, and what power grids add to it", "",
           "Where every recipe collapses at W4A4 (tiny_vgg), the cause is the logits' activation range, which is set "
           "data-free (BN statistics do not reach a classifier without BN; its range is a worst-case bound): "
           + "; ".join(logit_steps()) + " (uniform dfq grids; the power grids cover the same ranges). "
           "Calibrated ranges (dfq_calibrated) or a cross-entropy logit range would be the remedy; "
           "this report keeps every recipe data-free. On tiny_mobilenet_v2 and tiny_resnet the uniform grids "
           "survive W4A4 and the power grids lose a further 14-20 points (the table above); which sites cost "
           "the most was not isolated here.", ""]
    md += ["## One exponent for the network, or one per layer", "",
           "The paper (appendix H) finds per-layer exponents worse for accuracy than one network-wide a*, "
           "although they lower the weights' reconstruction error. Here (dfq+powerquant on decode_lut, "
           f"integer top-1): per-layer is better by more than 0.2 points in {better} of {len(scope)} cases, "
           f"worse in {worse}, within 0.2 points in the rest.", "", markdown_table(scope), ""]
    md += ["## All points", "", markdown_table(df.drop(columns=["seconds"])), ""]
    if len(uni):
        md += [f"Area of the uniform datapath: {uni.iloc[0]:.4g} mm2; power datapaths add their tables and units "
               "(the area column).", ""]
    write_atomic(out, lambda tmp: Path(tmp).write_text("\n".join(md)))
    write_atomic(out.with_suffix(".csv"), lambda tmp: df.to_csv(tmp, index=False))
    print(f"wrote {out}" + (f" and {png}" if plotted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
