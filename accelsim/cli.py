"""The `accelsim` command. Each subcommand parses its arguments and calls the Python API.

Bad input (an AccelsimError) prints one line `error: ...` to stderr and exits with status 2;
warnings print as one line `warning: ...`.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import AccelsimError, ConfigError
from .report.output import FORMATS, format_table  # light: pandas is imported when a table is made

INT_MAX = 2**31 - 1


def _int_in(lo: int, hi: int = INT_MAX):
    """An argparse type: an integer in lo..hi, so that 10**30 or 1e3 is a one-line error."""

    def parse(text: str) -> int:
        from .config.validate import describe

        try:
            value = int(text.strip(), 10) if len(text) <= 40 else None
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            found = describe(value) if value is not None else f"{text[:40]!r}"
            raise argparse.ArgumentTypeError(f"expected an integer in {lo}..{hi}; found {found}")
        return value

    parse.__name__ = "integer"
    return parse


class _Parser(argparse.ArgumentParser):
    """argparse with accelsim's one-line errors: `error: argument --batch: expected ...; found ...`."""

    def error(self, message: str):  # noqa: D401
        print(f"error: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)

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


def _command_line(args: argparse.Namespace) -> str | None:
    """The command line that made an output (provenance); None when main() was not the caller."""
    return getattr(args, "command_line", None)


# ----------------------------------------------------------------------------- describe


def _describe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", help="zoo name (e.g. resnet50), graph YAML, ONNX file or SCALE-Sim CSV")
    _hw_arg(p)
    p.add_argument("--batch", type=_int_in(1), default=1, help="batch size (default: 1)")
    p.add_argument("--all", action="store_true", help="list every node, not only conv/linear/matmul layers")
    _format_arg(p)


def _quantized_onnx(name):
    """The QGraph of a quantized ONNX file (QDQ / QOperator), else None."""
    if str(name).lower().endswith(".onnx"):
        from .quant.onnx_qdq import is_quantized_onnx, load_quantized_onnx

        if is_quantized_onnx(name):
            return load_quantized_onnx(name)
    return None


@command("describe", "per-layer shapes, GEMM dims, MACs and parameters of a workload")
def cmd_describe(args: argparse.Namespace) -> int:
    from .graph.zoo import load_model

    from .provenance import hw_provenance, provenance, workload_provenance

    quantized = _quantized_onnx(args.workload)  # a quantized ONNX file: its layers
    graph = quantized.graph if quantized is not None else load_model(args.workload)
    df = graph.table(batch=args.batch, gemm_only=not args.all)
    totals = {
        "gemm_layers": int((df["M"] > 0).sum()),  # conv / linear / matmul
        "macs": int(df["macs"].sum()),
        "weight_elems": int(df["weight_elems"].sum()),
        "bias_elems": int(df["bias_elems"].sum()),
    }
    title = f"{graph.name} (batch {args.batch})"
    prov = provenance(_command_line(args), workload=workload_provenance(args.workload, graph), batch=args.batch)
    if args.hw:
        from .config import load_hw

        hw = load_hw(args.hw)
        prov["hw"] = hw_provenance(hw)
        w_bits, a_bits = hw.precision.weight_bits, hw.precision.activation_bits
        df["weight_bytes"] = (df["weight_elems"] * w_bits + 7) // 8
        df["ifmap_bytes"] = (df["ifmap_elems"] * a_bits + 7) // 8
        df["ofmap_bytes"] = (df["ofmap_elems"] * a_bits + 7) // 8
        totals["weight_bytes"] = int(df["weight_bytes"].sum())
        title += f" on {hw.name}: W{w_bits}A{a_bits}"
    print(format_table(df, args.format, totals, title, prov), end="")
    return 0


# ----------------------------------------------------------------------------- validate


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="hardware config (YAML or SCALE-Sim .cfg)")
    _format_arg(p)


@command("validate", "check a hardware config and print what it describes")
def cmd_validate(args: argparse.Namespace) -> int:
    from .config import load_hw

    hw = load_hw(args.file)
    pe, p = hw.pe_array, hw.precision
    if args.format == "table":
        print(
            f"{args.file}: ok: {hw.name}: {pe.rows}x{pe.cols} {pe.dataflow}, W{p.weight_bits}A{p.activation_bits}"
            f" acc{p.accumulator_bits} ({p.accumulator_overflow}), {hw.clock_mhz:g} MHz, {hw.tech_nm:g} nm"
        )
        return 0
    from .provenance import hw_provenance, provenance

    row = {"file": str(args.file), "valid": True, "name": hw.name, "array_rows": pe.rows, "array_cols": pe.cols,
           "dataflow": pe.dataflow, "weight_bits": p.weight_bits, "activation_bits": p.activation_bits,
           "accumulator_bits": p.accumulator_bits, "accumulator_overflow": p.accumulator_overflow,
           "clock_mhz": hw.clock_mhz, "tech_nm": hw.tech_nm}
    print(_one_row(row, args.format, provenance(_command_line(args), hw=hw_provenance(hw))), end="")
    return 0


def _one_row(row: dict, fmt: str, prov: dict) -> str:
    """A one-row result (validate, evaluate) as csv, or as the one JSON shape (no layers)."""
    import pandas as pd

    if fmt == "csv":
        return pd.DataFrame([row]).to_csv(index=False)
    return format_table(pd.DataFrame(), "json", row, "", prov)


_ARGS = {"describe": _describe_args, "validate": _validate_args}


# ----------------------------------------------------------------------------- evaluate


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="trained model: a bundled name (e.g. tiny_resnet) or an ONNX file")
    p.add_argument("--data", default="mnist5k", metavar="NAME|FILE.npz",
                   help="dataset: mnist5k, digits, or an .npz file with arrays x and y (default: mnist5k)")
    p.add_argument("--split", choices=("test", "train"), default="test", help="dataset split (default: test)")
    p.add_argument("--batch-size", type=_int_in(1), default=500, help="images per run call (default: 500)")
    p.add_argument("--limit", type=_int_in(1), default=None, metavar="N", help="evaluate only the first N images")
    _format_arg(p)


@command("evaluate", "top-1 accuracy of a trained model on a labelled dataset (FP32 reference)")
def cmd_evaluate(args: argparse.Namespace) -> int:
    from .explore.evaluate import evaluate_detailed

    model = _quantized_onnx(args.model) or args.model  # a quantized ONNX file: its fake-quant reference
    r = evaluate_detailed(model, args.data, args.split, args.batch_size, args.limit, progress=True)
    row = r.summary()
    info = r.manifest
    if info and r.data == info.get("dataset") and args.split == "test" and args.limit is None:
        row["manifest_top1"] = info.get("fp32_test_top1")  # torch's figure when the model was trained
    if args.format != "table":
        from .provenance import provenance, workload_provenance

        prov = provenance(_command_line(args), workload=workload_provenance(args.model),
                          dataset={"name": r.data, "split": args.split, "limit": args.limit})
        print(_one_row(row, args.format, prov), end="")
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
    p.add_argument("--batch", type=_int_in(1), default=1, help="batch size (default: 1)")
    _format_arg(p)
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="change one hardware field, e.g. --set quantization.weight_scheme=asymmetric "
                        "(repeatable; VALUE is read as YAML)")
    p.add_argument("--all-columns", action="store_true",
                   help="table format: every column (csv, json and --out always have them all)")
    p.add_argument("--out", metavar="FILE", help="also write the per-layer table to FILE (.csv, .parquet or .json)")
    _nearest_arg(p)


# the brief table: every cycle column that is not zero in the run, so that they add up to total_cycles
SIMULATE_BRIEF = ["layer", "op", "M", "K", "N", "groups", "folds", "utilisation", "compute_cycles",
                  "zero_point_cycles", "tiling_cycles", "power_unit_cycles", "stall_cycles", "total_cycles",
                  "dram_bytes", "avg_dram_gbps", "peak_dram_gbps", "energy_pj"]
OPTIONAL_CYCLES = ("zero_point_cycles", "tiling_cycles", "power_unit_cycles")
SIMULATE_TOTALS = ("layers", "total_cycles", "compute_cycles", "zero_point_cycles", "tiling_cycles",
                   "power_unit_cycles", "overhead_cycles", "stall_cycles", "macs", "utilisation", "latency_ms",
                   "inferences_per_s", "dram_bytes", "dram_mib", "avg_dram_gbps", "energy_uj_per_inference")
SIMULATE_TOTALS_AFTER = ("tops_per_w", "avg_power_w", "area_mm2")


def simulate_totals(result) -> dict:
    """The totals of `simulate` (table and JSON alike): cycles by kind (compute + overheads +
    stalls = total), traffic, and energy with its breakdown by component."""
    from .cost.energy import ENERGY_CATEGORIES

    s, df = result.summary, result.layers
    per_kind = {c: int(df[c].sum()) for c in OPTIONAL_CYCLES}
    totals = {k: per_kind[k] if k in per_kind else s[k] for k in SIMULATE_TOTALS}
    totals.update({f"energy_{c}_uj": s[f"energy_{c}_uj"] for c in ENERGY_CATEGORIES})
    totals.update({k: s[k] for k in SIMULATE_TOTALS_AFTER})
    return totals


@command("simulate", "per-layer cycles, memory traffic, stalls and energy of a workload on a PE array")
def cmd_simulate(args: argparse.Namespace) -> int:
    from .config import load_hw
    from .cost.model import simulate
    from .quant.qgraph_io import load_model_or_qgraph
    from .report.output import check_writable, write_dataframe

    if args.out:
        check_writable(args.out)  # before the run, not after it
    from .provenance import hw_provenance, provenance, workload_provenance
    from .report.output import json_document

    graph = load_model_or_qgraph(args.workload)  # a quantized model is priced in its own numeric format
    base_hw = load_hw(args.hw)
    overrides = _parse_sets(args.set)
    from .explore.point import apply_overrides

    hw = apply_overrides(base_hw, overrides)
    graph = _fit_imported(graph, hw, args.nearest_format)
    result = simulate(graph, hw, timing=args.timing, batch=args.batch)
    s = result.summary
    totals = simulate_totals(result)
    if "numeric_format" in s:
        totals["numeric_format"] = s["numeric_format"]
    pe = hw.pe_array
    title = (f"{graph.name} (batch {args.batch}) on {hw.name}: {pe.rows}x{pe.cols} {pe.dataflow}, "
             f"{pe.weight_preload} preload, {args.timing} timing, {hw.clock_mhz:g} MHz")
    prov = provenance(_command_line(args), workload=workload_provenance(args.workload, graph),
                      hw=hw_provenance(hw, overrides, base_hw.source_file), timing=args.timing, batch=args.batch)
    recipe = getattr(graph, "recipe", None)
    if recipe is not None:
        prov["recipe"] = recipe.to_dict()
    if args.out:
        if str(args.out).lower().endswith(".json"):  # the same document as --format json
            from .report.output import write_atomic

            text = json_document(result.layers, totals, prov)
            write_atomic(args.out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        else:
            write_dataframe(result.layers, args.out)
    shown = result.layers
    if args.format == "table" and not args.all_columns:
        brief = [c for c in SIMULATE_BRIEF if c not in OPTIONAL_CYCLES or result.layers[c].any()]
        shown = result.layers[brief]
    print(format_table(shown, args.format, totals, title, prov), end="")
    return 0


_ARGS["simulate"] = _simulate_args


def _parse_sets(sets: list[str]) -> dict:
    """``--set PATH=VALUE`` items as {path: value}, VALUE read as YAML by accelsim's one strict
    loader (so 1e3 is a float, and an integer literal beyond 40 digits is an error)."""
    from .config.load import parse_yaml

    out = {}
    for item in sets:
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            raise AccelsimError(f"--set {item[:60]!r}: expected PATH=VALUE, e.g. precision.weight_bits=4")
        try:
            out[path.strip()] = parse_yaml(text, None)
        except ConfigError as exc:
            detail = exc.detail.split("; found ", 1)[-1]
            raise AccelsimError(f"--set {item[:60]!r}: VALUE is not valid YAML: expected a YAML value; "
                                f"found {detail}") from None
    return out


def _apply_sets(hw, sets: list[str]):
    """Apply ``--set PATH=VALUE`` changes through HwConfig.replace (validated like YAML)."""
    from .explore.point import apply_overrides

    return apply_overrides(hw, _parse_sets(sets))


# ----------------------------------------------------------------------------- bench


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all); see --list")
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    p.add_argument("--out", default="reports/benchmarks.md", metavar="FILE",
                   help="Markdown report to write (default: reports/benchmarks.md)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    _format_arg(p)


@command("bench", "run named benchmarks and merge their sections into reports/benchmarks.md")
def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import available, command_line, machine, run_benchmarks

    import pandas as pd

    if args.list:
        rows = pd.DataFrame([{"benchmark": name, "help": b.help} for name, b in available().items()])
        if args.format == "table":
            for name, b in available().items():
                print(f"{name:<28} {b.help}")
        else:
            from .provenance import provenance

            print(format_table(rows, args.format, {"benchmarks": len(rows)}, "", provenance(_command_line(args))),
                  end="")
        return 0
    from .report.output import check_writable

    check_writable(args.out, suffixes=(".md",))  # before minutes of benchmarks, not after
    results: dict = {}
    run_benchmarks(args.names, args.quick, args.out, command_line(),
                   progress=lambda name: print(f"running {name} ...", file=sys.stderr, flush=True), results=results)
    if args.format == "table":
        print(f"wrote {args.out}")
        return 0
    from .provenance import provenance

    rows = pd.DataFrame([{"benchmark": n, "title": r["title"], "wall_s": r["wall_s"]} for n, r in results.items()])
    totals = {"report": str(args.out), **{f"{n}": r["figures"] for n, r in results.items()}}
    print(format_table(rows, args.format, totals, "", provenance(_command_line(args), machine=machine(),
                                                                  quick=args.quick)), end="")
    return 0


_ARGS["bench"] = _bench_args


# ----------------------------------------------------------------------------- quantize


def _quantize_args(p: argparse.ArgumentParser) -> None:
    from .quant.recipe import METHODS

    p.add_argument("model", help="trained model: a bundled name (e.g. tiny_resnet) or an ONNX file")
    p.add_argument("--recipe", default="dfq", metavar="NAME|FILE.yaml",
                   help=f"recipe: {', '.join(METHODS)}, or a recipe YAML (default: dfq)")
    _hw_arg(p, default="edge-npu-16x16")
    p.add_argument("--weight-bits", type=_int_in(1, 64), metavar="N", help="override the recipe's weight bits")
    p.add_argument("--activation-bits", type=_int_in(1, 64), metavar="N", help="override the recipe's activation bits")
    p.add_argument("--input-range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="known range of the model input (e.g. from its preprocessing)")
    p.add_argument("--calibration", metavar="NAME|FILE.npz",
                   help="calibration images (a dataset's train split, or an .npz with x): needed by "
                        "dfq_calibrated and by min-max / MSE activation ranges")
    p.add_argument("--calibration-size", type=_int_in(1), default=256, metavar="N", help="calibration images (default: 256)")
    p.add_argument("--out", metavar="FILE.npz|FILE.onnx",
                   help="write the integer model: .npz (and its description, .json) for accelsim, or .onnx: a QDQ "
                        "model that onnxruntime and other tools run (PowerQuant as explicit Pow nodes)")
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

    out_npz = out_onnx = None
    if args.out and Path(args.out).suffix.lower() == ".onnx":
        from .report.output import check_writable

        out_onnx = Path(args.out)
        check_writable(out_onnx, suffixes=(".onnx",))  # before the work, not after it
    elif args.out:
        from .report.output import check_writable

        out_npz = Path(args.out) if Path(args.out).suffix.lower() == ".npz" else Path(args.out + ".npz")
        check_writable(out_npz, suffixes=(".npz",))  # before the work, not after it
        check_writable(out_npz.with_suffix(".json"), suffixes=(".json",))
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
    qg = quantize(graph, recipe, hw=hw, calibration=calib, progress=True)
    eq = qg.info.get("equalization")
    totals = {
        "recipe": f"{recipe.label}: {recipe.weight_scheme} {recipe.weight_granularity} weights, "
                  f"{recipe.activation_scheme} activations, {qg.info.get('activation_range', '-')} activation ranges",
        "equalization": "off" if eq is None else
        f"{len(eq.sets)} sets, {eq.iterations} iterations{'' if eq.converged else ' (not converged)'}",
        "absorbed_layers": len(qg.info.get("absorbed", {})),
        "bias_corrected_layers": len(qg.info.get("bias_correction", {})),
        "activation_sites": len(qg.activations),
    }
    if out_onnx is not None:
        totals["written"] = str(qg.save_onnx(out_onnx))  # QDQ ONNX, checked by onnx.checker
    elif args.out:
        from .quant.qgraph_io import save_qgraph

        out = save_qgraph(qg, out_npz)  # one self-contained .npz and a readable .json, all or nothing
        totals["written"] = f"{out}, {out.with_suffix('.json')}"
    from .provenance import hw_provenance, provenance, workload_provenance

    prov = provenance(_command_line(args), workload=workload_provenance(args.model, graph), hw=hw_provenance(hw),
                      recipe={**recipe.to_dict(), "source": recipe.source},
                      calibration={"data": args.calibration, "images": args.calibration_size} if calib is not None
                      else None)
    print(format_table(qg.table(), args.format, totals, f"{graph.name} quantized for {hw.name}", prov), end="")
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
    p.add_argument("--limit", type=_int_in(1), default=None, metavar="N", help="use only the first N images")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="change one hardware field, e.g. --set precision.accumulator_bits=16 (repeatable)")
    p.add_argument("--path", choices=("auto", "array"), default="auto",
                   help="integer execution: auto (exact BLAS where no overflow is provable, the numba array "
                        "elsewhere) or array (every layer through the cycle-stepped kernels; slow)")
    p.add_argument("--out", default="accelsim-run.md", metavar="FILE.md",
                   help="report to write: FILE.md and FILE.json beside it (default: accelsim-run.md)")
    p.add_argument("--no-report", action="store_true", help="print only; write no report files")
    _nearest_arg(p)
    _format_arg(p)


def _nearest_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nearest-format", action="store_true",
                   help="a quantized ONNX model in a format the hardware cannot run (e.g. asymmetric weights on a "
                        "symmetric datapath, 16-bit activations on 8 bits): warn and re-quantize it to the nearest "
                        "format the hardware runs, instead of an error naming the layer")


def _fit_imported(model, hw, nearest: bool):
    """A QGraph imported from a quantized ONNX file, fitted to `hw` (`onnx_qdq.fit_to_hw`); else `model`."""
    from .quant.qgraph import QGraph

    if isinstance(model, QGraph) and "imported_from" in model.info:
        from .quant.onnx_qdq import fit_to_hw

        return fit_to_hw(model, hw, nearest=nearest)
    return model


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
    model = args.model
    if model is not None and str(model).lower().endswith(".onnx"):
        from .explore.point import apply_overrides
        from .quant.onnx_qdq import is_quantized_onnx
        from .quant.pipeline import resolve_hw

        if is_quantized_onnx(model):  # checked against the hardware here, so that the error names the layer
            from .quant.onnx_qdq import load_quantized_onnx

            hw = apply_overrides(resolve_hw(args.hw, "edge-npu-16x16"), overrides)
            model = _fit_imported(load_quantized_onnx(model), hw, args.nearest_format)
    result = run_point(model, args.hw, args.recipe, args.data, overrides, split=args.split, limit=args.limit,
                       path=args.path, progress=True)
    command = _command_line(args)
    doc = run_report.as_json(result, command)
    if md_path is not None:
        from .report.output import write_together

        text = run_report.markdown(result, command)
        body = json.dumps(doc, indent=1, default=str) + "\n"

        def write_both(tmp: Path) -> None:  # the report and its JSON: both or neither
            (tmp / md_path.name).write_text(text)
            (tmp / json_path.name).write_text(body)

        write_together([md_path, json_path], write_both)
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


# ----------------------------------------------------------------------------- sweeps


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC.yaml", help="sweep spec: base config, workloads, recipes, grid/zip/random axes")
    p.add_argument("--store", metavar="FILE", default=None,
                   help="SQLite result store (default: SPEC's name with .db); a rerun computes only missing points")
    p.add_argument("--workers", type=_int_in(0, 1024), default=None, metavar="N",
                   help="worker processes (default: the machine's cores; 0: in this process)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                       help="run on an existing Dask cluster (dask.distributed)")
    where.add_argument("--dask", choices=("local",), default=None,
                       help="start a Dask LocalCluster of --workers processes and run on it")
    p.add_argument("--retry-errors", action="store_true", help="recompute points recorded as failed or timed out")
    p.add_argument("--dry-run", action="store_true",
                   help="only say how many points there are, how many the store has, and what is left to compute")
    _format_arg(p)


@command("sweep", "run a design-space sweep (local processes or Dask) into a resumable result store")
def cmd_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .explore.analysis import objectives_for, pareto_front
    from .explore.runner import run_sweep
    from .explore.spec import load_sweep
    from .explore.store import Store, results_frame

    spec = load_sweep(args.spec)
    store = Path(args.store) if args.store else Path(Path(args.spec).stem + ".db")
    if args.dry_run:
        from .explore.runner import plan_sweep

        plan = plan_sweep(spec, store)
        if args.format == "table":
            width = max(map(len, plan))
            print(f"sweep {spec.name} (dry run: nothing computed or written)")
            print("\n".join(f"  {k:<{width}}  {v:,}" if isinstance(v, int) else f"  {k:<{width}}  {v}"
                            for k, v in plan.items()))
        else:
            import pandas as pd

            print(format_table(pd.DataFrame([plan]), args.format), end="")
        return 0
    stats = run_sweep(spec, store, workers=args.workers, dask="local" if args.dask else args.scheduler)
    summary = {"sweep": spec.name, "store": str(store), "points": stats.points, **stats.by_status,
               "computed_now": stats.computed, "already_in_store": stats.already_done,
               "accuracy_measured": stats.accuracy_measured, "accuracy_reused": stats.accuracy_reused,
               "wall_s": round(stats.wall_s, 2),
               "points_per_s": round(stats.computed / stats.wall_s, 2) if stats.wall_s else 0.0}
    with Store(store, create=False) as st:
        df = results_frame(st, spec.name)
    front = pareto_front(df, objectives_for(spec.objectives)) if len(df) else df
    show = [c for c in ("workload", "recipe", *spec.axis_names, "top1_integer", "energy_uj_per_inference",
                        "latency_ms", "area_mm2") if c in front.columns]
    print(format_table(front[show] if len(front) else front, args.format, summary,
                       f"sweep {spec.name}: the Pareto front ({', '.join(objectives_for(spec.objectives))}), per workload"), end="")
    bad = df[df["status"].isin(["error", "timeout"])] if len(df) else df
    for _, row in bad.head(5).iterrows():
        print(f"warning: point {row['point']} ({row['workload']}, {row['recipe']}) {row['status']}: "
              f"{str(row['error'])[:300]}", file=sys.stderr)
    return 0


_ARGS["sweep"] = _sweep_args


def _results_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE", help="a result store written by accelsim sweep")
    p.add_argument("-o", "--out", metavar="FILE", default=None,
                   help="write one row per point, every axis a column (.csv, .parquet or .json)")
    p.add_argument("--sweep", metavar="NAME", default=None, help="only this sweep's points (default: all)")
    p.add_argument("--layers", action="store_true", help="the per-layer table instead (one row per point and layer)")
    _format_arg(p)


@command("results", "export a sweep result store: one row per point with every axis as a column")
def cmd_results(args: argparse.Namespace) -> int:
    from .explore.store import Store, layers_frame, results_frame
    from .report.output import check_writable, write_dataframe

    if args.out:
        check_writable(args.out)
    with Store(args.store, create=False) as st:
        df = layers_frame(st, args.sweep) if args.layers else results_frame(st, args.sweep)
    if args.out:
        write_dataframe(df, args.out)
        print(f"wrote {len(df)} rows to {args.out}")
        return 0
    print(format_table(df, args.format), end="")
    return 0


_ARGS["results"] = _results_args


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE", help="a result store written by accelsim sweep")
    p.add_argument("-o", "--out", metavar="FILE", required=True,
                   help="FILE.html (one self-contained file, interactive plots) or FILE.md (Markdown, PNG plots)")
    p.add_argument("--sweep", metavar="NAME", default=None, help="only this sweep's points (default: all)")
    _format_arg(p)


@command("report", "an HTML or Markdown report of a sweep: Pareto fronts, energy breakdown, per-layer cycles")
def cmd_report(args: argparse.Namespace) -> int:
    from .report.sweep_report import write_report

    out = write_report(args.store, args.out, sweep=args.sweep)
    if args.format == "table":
        print(f"wrote {out}")
    else:
        import pandas as pd

        print(format_table(pd.DataFrame([{"store": args.store, "sweep": args.sweep, "wrote": str(out)}]),
                           args.format), end="")
    return 0


_ARGS["report"] = _report_args


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="the first hardware config (YAML, SCALE-Sim .cfg or a name in hwconfigs/)")
    p.add_argument("b", metavar="B", help="the second hardware config")
    p.add_argument("--model", default="tiny_mobilenet_v2",
                   help="a trained model (accuracy and cost) or a zoo workload (cost only); default tiny_mobilenet_v2")
    p.add_argument("--recipe", default=None, help="quantization recipe for both (default: dfq)")
    p.add_argument("--data", default="mnist5k", help="dataset for a trained model (default: mnist5k)")
    p.add_argument("--limit", type=_int_in(1), default=None, metavar="N", help="use only the first N test images")
    _format_arg(p)


@command("compare", "two hardware configs side by side on one model: accuracy and cost, with the differences")
def cmd_compare(args: argparse.Namespace) -> int:
    from .explore.analysis import compare_table
    from .explore.jobs import price
    from .explore.point import run_point
    from .graph.zoo import load_model
    from .quant.pipeline import resolve_hw
    from .quant.recipe import load_recipe

    g = load_model(args.model)
    summaries, names = [], []
    for ref in (args.a, args.b):
        hw = resolve_hw(ref)
        names.append(hw.name)
        recipe = load_recipe(args.recipe or "dfq", hw)
        if g.has_params:
            summaries.append(run_point(g, hw, recipe, args.data, limit=args.limit, progress=True).summary)
        else:
            summaries.append(price(g, hw, recipe)["summary"])
    name_a, name_b = names
    if name_a == name_b:
        name_a, name_b = f"A ({name_a})", f"B ({name_b})"
    df = compare_table(*summaries, name_a, name_b)
    print(format_table(df, args.format, title=f"{g.name}, {summaries[0].get('numeric_format', '')}: "
                                                f"{name_a} vs {name_b}"), end="")
    return 0


_ARGS["compare"] = _compare_args


# ----------------------------------------------------------------------------- entry point


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `only` (a command name, or "" for none), only that command's
    arguments are built: the others are listed by name and help, which is all that
    `accelsim --help` shows, so start-up imports nothing a command's arguments need."""
    parser = _Parser(
        prog="accelsim",
        description="Simulate quantized neural networks on accelerator designs: accuracy, cycles, energy, bandwidth.",
    )
    parser.add_argument("--version", action="version", version=f"accelsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            _ARGS[name](p)
        p.set_defaults(run=run)
    return parser


def _selected_command(argv: list[str]) -> str:
    """The command named on the command line ("" when there is none): the first word that is
    not an option (the top-level parser has only --help and --version)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else ""
    return ""


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def _stdout_failed(exc: OSError) -> int:
    """stdout is closed or full: one line on stderr, exit 2, and no second error at exit."""
    import errno
    import os

    why = {errno.EPIPE: "the reader closed the pipe", errno.ENOSPC: "no space left on the device"}.get(
        exc.errno, exc.strerror or str(exc))
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit must not fail again
    except (OSError, ValueError, AttributeError):
        pass
    print(f"error: <stdout>: expected a writable standard output; found {why}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """The `accelsim` command. Bad input: one `error:` line and exit 2; Ctrl-C (also during
    start-up, while the heavy modules load): `interrupted` and exit 130."""
    saved_showwarning = warnings.showwarning
    try:
        if sys.stdout is None:
            print("error: <stdout>: expected an open standard output; found it closed", file=sys.stderr)
            return 2
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(only=_selected_command(argv))
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2, one line printed)
            if exc.code not in (0, 2):
                raise
            return exc.code
        if not getattr(args, "run", None):
            parser.print_help()
            return 2
        import shlex

        args.command_line = "accelsim " + shlex.join(argv)  # for the outputs' provenance
        warnings.showwarning = _one_line_warning
        status = args.run(args)
        sys.stdout.flush()
        return status
    except AccelsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except TypeError as exc:  # an argument of the wrong type reached the API: name it, no traceback
        if "argument '" not in str(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        import errno

        if exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EBADF) and _is_stdout_error(exc):
            return _stdout_failed(exc)
        raise
    finally:
        warnings.showwarning = saved_showwarning


def _is_stdout_error(exc: OSError) -> bool:
    """Whether the OSError came from writing stdout: files accelsim writes go through
    report.output, which turns their OSErrors into AccelsimErrors naming the file."""
    return isinstance(exc, BrokenPipeError) or not getattr(exc, "filename", None)


if __name__ == "__main__":
    sys.exit(main())
