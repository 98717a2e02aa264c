"""DFQ ablation on the bundled trained models, in the style of DFQ's Tables 1 and 2.

    python tools/dfq_ablation.py                      # writes reports/dfq-ablation.md
    python tools/dfq_ablation.py --limit 200 --out /tmp/quick.md

Each row adds one step to the one above it (per-tensor weights), then comparison rows.
Accuracy is top-1 on the mnist5k test split (1,000 images). Every row is data-free (BN-based
activation ranges, analytic bias correction) except the one marked "empirical", which uses
calibration images from the train split: a seeded class-balanced subset (`Dataset.calibration`;
the split is sorted by class, so its first 256 images are all of the digit 0). The FP32 column
is the transformed float model before bias correction (ReLU6 replacement and high-bias
absorption change it; folding and equalization do not). The model input's range comes from the dataset's documented
preprocessing (pixels in [0, 1], then (x - mean) / std), which needs no data.

The report's tables sit between markers; text outside them (the interpretation) is kept
when the report is regenerated.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import accelsim
from accelsim.config import hw_from_dict, load_hw
from accelsim.data import load_dataset
from accelsim.quant import quantize
from accelsim.report.output import write_atomic
from accelsim.progress import track

REPO = Path(__file__).resolve().parents[1]
MODELS = ("tiny_mobilenet_v2", "tiny_resnet", "tiny_vgg")
BEGIN, END = "<!-- BEGIN GENERATED: tools/dfq_ablation.py -->", "<!-- END GENERATED -->"
CALIBRATION_IMAGES = 256

NO_STEPS = {"replace_relu6": False, "equalize": False, "absorb_high_bias": False, "bias_correction": "none"}
# (label, recipe fields, weight granularity)
ROWS = [
    ("Original model", {"method": "naive", "steps": NO_STEPS}, "per_tensor"),
    ("+ Replace ReLU6", {"method": "naive", "steps": {**NO_STEPS, "replace_relu6": True}}, "per_tensor"),
    ("+ equalization", {"method": "dfq", "steps": {**NO_STEPS, "replace_relu6": True, "equalize": True}}, "per_tensor"),
    ("+ absorbing bias", {"method": "dfq", "steps": {**NO_STEPS, "replace_relu6": True, "equalize": True,
                                                      "absorb_high_bias": True}}, "per_tensor"),
    ("+ bias correction (= DFQ)", {"method": "dfq"}, "per_tensor"),
    ("Per-channel quantization", {"method": "naive", "steps": NO_STEPS}, "per_channel"),
    ("Original + bias correction only", {"method": "naive", "steps": {**NO_STEPS, "bias_correction": "analytic"}},
     "per_tensor"),
    (f"DFQ, empirical bias correction ({CALIBRATION_IMAGES} images)",
     {"method": "dfq", "steps": {"bias_correction": "empirical"}}, "per_tensor"),
    ("Per-channel + DFQ", {"method": "dfq"}, "per_channel"),
]


def _hw_with(hw, weight_scheme: str):
    d = hw.to_dict()
    d["quantization"]["weight_scheme"] = weight_scheme
    d["quantization"]["weight_granularity"] = "per_channel"  # the recipe picks per-tensor or per-channel
    return hw_from_dict(d)


def _absorption_note(graph, qg) -> str:
    """How many links absorbed a bias, and the largest beta - 3|gamma| the rule saw."""
    from accelsim.quant import equalize, fold_batchnorm, replace_relu6
    from accelsim.quant.patterns import find_cle_sets

    g = equalize(replace_relu6(fold_batchnorm(graph)))
    margins = [float((g[l.a].params["bn_beta"] - 3 * abs(g[l.a].params["bn_gamma"])).max())
               for links in find_cle_sets(g)[0] for l in links if l.has_relu and "bn_beta" in g[l.a].params]
    worst = f"; largest beta - 3|gamma| after equalization: {max(margins):.2f}" if margins else ""
    return f"{len(qg.info.get('absorbed', {}))} of {len(margins)} relu links absorb a bias{worst}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def run(models, bits, hw_name, weight_schemes, limit, model_dir, progress) -> str:
    ds = load_dataset("mnist5k")
    input_range = [(0.0 - ds.mean) / ds.std, (1.0 - ds.mean) / ds.std]
    calib = ds.calibration(CALIBRATION_IMAGES)
    base_hw = load_hw(hw_name)
    lines = []
    t_start = time.perf_counter()
    for scheme in weight_schemes:
        hw = _hw_with(base_hw, scheme)
        lines.append(f"### {scheme.capitalize()} weights, {hw.quantization.activation_scheme} activations\n")
        for name in track(models, f"dfq ablation ({scheme} weights)", unit="model"):
            model = str(Path(model_dir) / f"{name}.onnx") if model_dir else name
            graph = accelsim.load_model(model)
            fp32 = accelsim.evaluate(graph, ds, limit=limit)
            header = f"| {name} | FP32 | " + " | ".join(f"W{b}A8" for b in bits) + " |"
            table = [header, "|" + "---|" * (2 + len(bits))]
            notes = {}
            for label, fields, granularity in ROWS:
                cells, float_acc = [], None
                for b in bits:
                    recipe = {**fields, "weight_bits": b, "activation_bits": 8, "weight_scheme": scheme,
                              "weight_granularity": granularity, "input_range": input_range}
                    needs_data = fields.get("steps", {}).get("bias_correction") == "empirical"
                    if needs_data:
                        recipe["activation_range"] = "bn"  # only the bias correction sees data
                    qg = quantize(graph, recipe, hw=hw, calibration=calib if needs_data else None)
                    if float_acc is None:
                        float_acc = accelsim.evaluate(qg.float_graph, ds, limit=limit)
                        eq = qg.info.get("equalization")
                        if eq is not None:
                            notes["equalization"] = (f"{len(eq.sets)} sets ({sum(len(s) == 2 for s in eq.sets)} triplets), "
                                                     f"{eq.iterations} iterations, converged: {eq.converged}")
                        if label == "+ absorbing bias":
                            notes["absorption"] = _absorption_note(graph, qg)
                    cells.append(_pct(accelsim.evaluate(qg, ds, limit=limit)))
                    progress(f"{scheme} {name} {label} W{b}A8: {cells[-1]}")
                table.append(f"| {label} | {_pct(float_acc)} | " + " | ".join(cells) + " |")
            lines.append("\n".join(table) + "\n")
            lines.append(f"FP32 original: {_pct(fp32)}%. " + "; ".join(f"{k}: {v}" for k, v in notes.items()) + ".\n")
    n_images = limit or len(ds.y_test)
    meta = (f"Top-1 (%) on the mnist5k test split ({n_images} images). Hardware: `{hw_name}` "
            f"(its activation scheme; weight schemes as titled; 8-bit activations). "
            f"Activation ranges: BN-based, beta +- 6 gamma (data-free). "
            f"Empirical bias correction: {CALIBRATION_IMAGES} train images, a seeded class-balanced subset "
            f"(`Dataset.calibration`). "
            f"Generated by `{' '.join(['python', 'tools/dfq_ablation.py'] + sys.argv[1:])}` "
            f"in {time.perf_counter() - t_start:.0f} s.\n")
    return meta + "\n" + "\n".join(lines)


def write_report(path: Path, generated: str) -> None:
    block = f"{BEGIN}\n{generated.rstrip()}\n{END}"
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            new = head + block + tail
        else:
            new = text.rstrip() + "\n\n" + block + "\n"
    else:
        new = ("# DFQ ablation\n\nRegenerate the tables with `python tools/dfq_ablation.py`.\n\n" + block
               + "\n\n## Interpretation\n\n(to be written)\n")
    write_atomic(path, lambda tmp: Path(tmp).write_text(new))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--bits", nargs="+", type=int, default=[8, 6, 4, 3],
                   help="weight bit-widths (activations: 8; default 8 6 4, plus 3 where the methods separate)")
    p.add_argument("--hw", default="edge-npu-16x16")
    p.add_argument("--weight-schemes", nargs="+", default=["symmetric", "asymmetric"], choices=["symmetric", "asymmetric"])
    p.add_argument("--limit", type=int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--model-dir", default=None, help="read <model>.onnx from this directory instead of workloads/")
    p.add_argument("--out", default=str(REPO / "reports" / "dfq-ablation.md"))
    args = p.parse_args(argv)
    generated = run(args.models, args.bits, args.hw, args.weight_schemes, args.limit, args.model_dir,
                    lambda msg: print(msg, file=sys.stderr, flush=True))
    write_report(Path(args.out), generated)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
