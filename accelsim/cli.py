"""The `accelsim` command. Each subcommand parses its arguments and calls the Python API.

Bad input (an AccelsimError) prints one line `error: ...` to stderr and exits with status 2;
warnings print as one line `warning: ...`.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Callable

from . import __version__
from .errors import AccelsimError, ConfigError
from .report.output import FORMATS, format_table

COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str):
    """Register `add_arguments` under `name`; the decorated function runs the command."""

    def register(run):
        COMMANDS[name] = (help, run)
        return run

    return register


def _hw_arg(p: argparse.ArgumentParser, required: bool = False, default: str | None = None) -> None:
    p.add_argument("--hw", required=required, default=default, metavar="FILE",
                   help="hardware config: a YAML or SCALE-Sim .cfg file, or a name in hwconfigs/"
                        + (f" (default: {default})" if default else ""))


def _format_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")


# ----------------------------------------------------------------------------- describe


def _describe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", help="zoo name (e.g. resnet50), graph YAML, ONNX file or SCALE-Sim CSV")
    _hw_arg(p)
    p.add_argument("--batch", type=int, default=1, help="batch size (default: 1)")
    p.add_argument("--all", action="store_true", help="list every node, not only conv/linear/matmul layers")
    _format_arg(p)


@command("describe", "per-layer shapes, GEMM dims, MACs and parameters of a workload")
def cmd_describe(args: argparse.Namespace) -> int:
    from .graph.zoo import load_model

    graph = load_model(args.workload)
    df = graph.table(batch=args.batch, gemm_only=not args.all)
    totals = {
        "layers (conv/linear/matmul)": int((df["gemm_M"] > 0).sum()),
        "MACs": int(df["macs"].sum()),
        "weights": int(df["weight_elems"].sum()),
        "biases": int(df["bias_elems"].sum()),
    }
    title = f"{graph.name} (batch {args.batch})"
    if args.hw:
        from .config import load_hw

        hw = load_hw(args.hw)
        w_bits, a_bits = hw.precision.weight_bits, hw.precision.activation_bits
        df["weight_bytes"] = (df["weight_elems"] * w_bits + 7) // 8
        df["ifmap_bytes"] = (df["ifmap_elems"] * a_bits + 7) // 8
        df["ofmap_bytes"] = (df["ofmap_elems"] * a_bits + 7) // 8
        totals["weight bytes"] = int(df["weight_bytes"].sum())
        title += f" on {hw.name}: W{w_bits}A{a_bits}"
    print(format_table(df, args.format, totals, title), end="")
    return 0


# ----------------------------------------------------------------------------- validate


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="hardware config (YAML or SCALE-Sim .cfg)")


@command("validate", "check a hardware config and print what it describes")
def cmd_validate(args: argparse.Namespace) -> int:
    from .config import load_hw

    hw = load_hw(args.file)
    pe, p = hw.pe_array, hw.precision
    print(
        f"{args.file}: ok: {hw.name}: {pe.rows}x{pe.cols} {pe.dataflow}, W{p.weight_bits}A{p.activation_bits}"
        f" acc{p.accumulator_bits} ({p.accumulator_overflow}), {hw.clock_mhz:g} MHz, {hw.tech_nm:g} nm"
    )
    return 0


_ARGS = {"describe": _describe_args, "validate": _validate_args}


# ----------------------------------------------------------------------------- evaluate


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="trained model: a bundled name (e.g. tiny_resnet) or an ONNX file")
    p.add_argument("--data", default="mnist5k", metavar="NAME|FILE.npz",
                   help="dataset: mnist5k, digits, or an .npz file with arrays x and y (default: mnist5k)")
    p.add_argument("--split", choices=("test", "train"), default="test", help="dataset split (default: test)")
    p.add_argument("--batch-size", type=int, default=500, help="images per run call (default: 500)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate only the first N images")
    _format_arg(p)


@command("evaluate", "top-1 accuracy of a trained model on a labelled dataset (FP32 reference)")
def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from .metrics import evaluate_detailed

    r = evaluate_detailed(args.model, args.data, args.split, args.batch_size, args.limit)
    row = r.summary()
    info = r.manifest
    if info and r.data == info.get("dataset") and args.split == "test" and args.limit is None:
        row["manifest_top1"] = info.get("fp32_test_top1")  # torch's figure when the model was trained
    if args.format == "json":
        print(json.dumps(row, indent=2))
    elif args.format == "csv":
        print(pd.DataFrame([row]).to_csv(index=False), end="")
    else:
        ref = f"; manifest (torch): {row['manifest_top1']:.4f}" if "manifest_top1" in row else ""
        print(f"{r.model} on {r.data} ({r.split}): top-1 {r.top1:.4f} ({r.correct} / {r.total} correct), "
              f"{r.images_per_s:,.0f} images/s{ref}")
    return 0


_ARGS["evaluate"] = _evaluate_args


# ----------------------------------------------------------------------------- simulate


def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", help="zoo name (e.g. resnet50), graph YAML, ONNX file, SCALE-Sim CSV, or a quantized "
                                    "model saved by `accelsim quantize --out` (priced in its own numeric format)")
    _hw_arg(p, default="edge-npu-16x16")
    p.add_argument("--timing", choices=("native", "scalesim"), default="native",
                   help="native: the configured microarchitecture; scalesim: SCALE-Sim 3.0's cycle counts "
                        "(default: native)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default: 1)")
    _format_arg(p)
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="change one hardware field, e.g. --set quantization.weight_scheme=asymmetric "
                        "(repeatable; VALUE is read as YAML)")
    p.add_argument("--all-columns", action="store_true",
                   help="table format: every column (csv, json and --out always have them all)")
    p.add_argument("--out", metavar="FILE", help="also write the per-layer table to FILE (.csv, .parquet or .json)")


SIMULATE_BRIEF = ["layer", "op", "M", "K", "N", "groups", "folds", "utilisation", "compute_cycles", "stall_cycles",
                  "total_cycles", "dram_bytes", "avg_dram_gbps", "peak_dram_gbps", "energy_pj"]
SIMULATE_TOTALS = ("layers", "total_cycles", "compute_cycles", "overhead_cycles", "stall_cycles", "macs",
                   "utilisation", "latency_ms", "inferences_per_s", "dram_mib", "avg_dram_gbps",
                   "energy_uj_per_inference", "tops_per_w", "avg_power_w", "area_mm2")


@command("simulate", "per-layer cycles, memory traffic, stalls and energy of a workload on a PE array")
def cmd_simulate(args: argparse.Namespace) -> int:
    from .config import load_hw
    from .cost.model import simulate
    from .quant.qgraph_io import load_model_or_qgraph
    from .report.output import check_writable, write_dataframe

    if args.out:
        check_writable(args.out)  # before the run, not after it
    graph = load_model_or_qgraph(args.workload)  # a quantized model is priced in its own numeric format
    hw = _apply_sets(load_hw(args.hw), args.set)
    result = simulate(graph, hw, timing=args.timing, batch=args.batch)
    s = result.summary
    totals = {k: s[k] for k in SIMULATE_TOTALS}
    if "numeric_format" in s:
        totals["numeric_format"] = s["numeric_format"]
    pe = hw.pe_array
    title = (f"{graph.name} (batch {args.batch}) on {hw.name}: {pe.rows}x{pe.cols} {pe.dataflow}, "
             f"{pe.weight_preload} preload, {args.timing} timing, {hw.clock_mhz:g} MHz")
    if args.out:
        write_dataframe(result.layers, args.out)
    shown = result.layers if args.format != "table" or args.all_columns else result.layers[SIMULATE_BRIEF]
    print(format_table(shown, args.format, totals, title), end="")
    return 0


_ARGS["simulate"] = _simulate_args


def _parse_sets(sets: list[str]) -> dict:
    """``--set PATH=VALUE`` items as {path: value}, VALUE read as YAML."""
    import yaml

    out = {}
    for item in sets:
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise AccelsimError(f"--set {item!r}: expected PATH=VALUE, e.g. precision.weight_bits=4")
        try:
            out[path.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise AccelsimError(f"--set {item!r}: VALUE is not valid YAML: {problem}") from None
    return out


def _apply_sets(hw, sets: list[str]):
    """Apply ``--set PATH=VALUE`` changes through HwConfig.replace (validated like YAML)."""
    for path, value in _parse_sets(sets).items():
        hw = hw.replace(path, value)
    return hw


# ----------------------------------------------------------------------------- bench


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all); see --list")
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    p.add_argument("--out", default="reports/benchmarks.md", metavar="FILE",
                   help="Markdown report to write (default: reports/benchmarks.md)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")


@command("bench", "run named benchmarks and write reports/benchmarks.md")
def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import available, command_line, run_benchmarks

    if args.list:
        for name, b in available().items():
            print(f"{name:<28} {b.help}")
        return 0
    run_benchmarks(args.names, args.quick, args.out, command_line(),
                   progress=lambda name: print(f"running {name} ...", file=sys.stderr, flush=True))
    print(f"wrote {args.out}")
    return 0


_ARGS["bench"] = _bench_args


# ----------------------------------------------------------------------------- quantize


def _quantize_args(p: argparse.ArgumentParser) -> None:
    from .quant.recipe import METHODS

    p.add_argument("model", help="trained model: a bundled name (e.g. tiny_resnet) or an ONNX file")
    p.add_argument("--recipe", default="dfq", metavar="NAME|FILE.yaml",
                   help=f"recipe: {', '.join(METHODS)}, or a recipe YAML (default: dfq)")
    _hw_arg(p, default="edge-npu-16x16")
    p.add_argument("--weight-bits", type=int, metavar="N", help="override the recipe's weight bits")
    p.add_argument("--activation-bits", type=int, metavar="N", help="override the recipe's activation bits")
    p.add_argument("--input-range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="known range of the model input (e.g. from its preprocessing)")
    p.add_argument("--calibration", metavar="NAME|FILE.npz",
                   help="calibration images (a dataset's train split, or an .npz with x): needed by "
                        "dfq_calibrated and by min-max / MSE activation ranges")
    p.add_argument("--calibration-size", type=int, default=256, metavar="N", help="calibration images (default: 256)")
    p.add_argument("--out", metavar="FILE.npz", help="write the integer model (.npz) and its description (.json)")
    _format_arg(p)


@command("quantize", "quantize a trained model by a recipe (dfq, naive, ...): integer weights, scales, ranges")
def cmd_quantize(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from .config import load_hw
    from .graph.zoo import load_model
    from .quant import load_recipe, quantize
    from .report.output import write_atomic

    hw = load_hw(args.hw)
    options = {"weight_bits": "--weight-bits", "activation_bits": "--activation-bits", "input_range": "--input-range"}
    overrides = {k: getattr(args, k) for k in options if getattr(args, k) is not None}
    try:
        recipe = load_recipe(args.recipe, hw, overrides)
    except ConfigError as exc:
        if exc.field in overrides:  # the bad value came from the command line: name the option
            raise ConfigError(options[exc.field], None, exc.detail) from None
        raise
    if args.out and not recipe.quantized:
        raise AccelsimError(f"recipe {recipe.method} quantizes nothing: nothing to write to --out")
    calib = None
    if args.calibration:
        from .data import load_dataset

        ds = load_dataset(args.calibration)
        calib = ds.calibration(args.calibration_size)
    graph = load_model(args.model)
    qg = quantize(graph, recipe, hw=hw, calibration=calib)
    eq = qg.info.get("equalization")
    totals = {
        "recipe": f"{recipe.label}: {recipe.weight_scheme} {recipe.weight_granularity} weights, "
                  f"{recipe.activation_scheme} activations, {qg.info.get('activation_range', '-')} activation ranges",
        "equalization": "off" if eq is None else
        f"{len(eq.sets)} sets, {eq.iterations} iterations{'' if eq.converged else ' (not converged)'}",
        "absorbed layers": len(qg.info.get("absorbed", {})),
        "bias-corrected layers": len(qg.info.get("bias_correction", {})),
        "activation sites": len(qg.activations),
    }
    if args.out:
        from .quant.qgraph_io import save_qgraph

        out = save_qgraph(qg, args.out)  # one self-contained .npz (accelsim.load_qgraph) and a readable .json
        totals["written"] = f"{out}, {out.with_suffix('.json')}"
    print(format_table(qg.table(), args.format, totals, f"{graph.name} quantized for {hw.name}"), end="")
    if args.format == "table":
        print("\n" + format_table(qg.activation_table(), "table", None, "activation sites"), end="")
    return 0


_ARGS["quantize"] = _quantize_args


# ----------------------------------------------------------------------------- run


def _run_args(p: argparse.ArgumentParser) -> None:
    from .quant.recipe import METHODS

    p.add_argument("--model", default=None, metavar="NAME|FILE",
                   help="trained model: a bundled name, an ONNX file, or a quantized model saved by "
                        "`accelsim quantize --out` (default: tiny_mobilenet_v2)")
    _hw_arg(p, default="edge-npu-16x16")
    p.add_argument("--recipe", default=None, metavar="NAME|FILE.yaml",
                   help=f"recipe: {', '.join(m for m in METHODS if m != 'fp32')}, or a recipe YAML (default: dfq)")
    p.add_argument("--data", default="mnist5k", metavar="NAME|FILE.npz",
                   help="labelled data: mnist5k, digits, or an .npz with x and y (default: mnist5k)")
    p.add_argument("--split", choices=("test", "train"), default="test", help="dataset split (default: test)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N images")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="change one hardware field, e.g. --set precision.accumulator_bits=16 (repeatable)")
    p.add_argument("--path", choices=("auto", "array"), default="auto",
                   help="integer execution: auto (exact BLAS where no overflow is provable, the numba array "
                        "elsewhere) or array (every layer through the cycle-stepped kernels; slow)")
    p.add_argument("--out", default="accelsim-run.md", metavar="FILE.md",
                   help="report to write: FILE.md and FILE.json beside it (default: accelsim-run.md)")
    p.add_argument("--no-report", action="store_true", help="print only; write no report files")
    _format_arg(p)


@command("run", "quantize a trained model, execute it in integers on the PE grid, report accuracy beside cost")
def cmd_run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .explore.point import run_point
    from .report import run_report
    from .report.output import check_writable, write_atomic

    md_path = json_path = None
    if not args.no_report:
        out = Path(args.out)
        md_path = out if out.suffix.lower() == ".md" else out.with_name(out.name + ".md")
        if out.suffix.lower() == ".json":
            md_path = out.with_suffix(".md")
        json_path = md_path.with_suffix(".json")
        check_writable(md_path, suffixes=(".md",))
        check_writable(json_path, suffixes=(".json",))
    if args.limit is not None and args.limit < 1:
        raise AccelsimError(f"--limit: expected a positive integer; found {args.limit}")
    overrides = _parse_sets(args.set)
    result = run_point(args.model, args.hw, args.recipe, args.data, overrides, split=args.split, limit=args.limit,
                       path=args.path, progress=True)
    command = "accelsim " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("accelsim") else None
    doc = run_report.as_json(result, command)
    if md_path is not None:
        text = run_report.markdown(result, command)
        write_atomic(md_path, lambda tmp: Path(tmp).write_text(text))
        write_atomic(json_path, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1, default=str) + "\n"))
    if args.format == "json":
        print(json.dumps(doc, indent=1, default=str))
    elif args.format == "csv":
        import pandas as pd

        print(pd.DataFrame([result.summary]).to_csv(index=False), end="")
    else:
        print(run_report.console(result), end="")
        if md_path is not None:
            print(f"\nwrote {md_path} and {json_path}")
    return 0


_ARGS["run"] = _run_args


# ----------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accelsim",
        description="Simulate quantized neural networks on accelerator designs: accuracy, cycles, energy, bandwidth.",
    )
    parser.add_argument("--version", action="version", version=f"accelsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _ARGS[name](p)
        p.set_defaults(run=run)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    warnings.showwarning = _one_line_warning
    try:
        return args.run(args)
    except AccelsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
