"""accelsim's integer execution against onnxruntime, in both directions, on every bundled model.

    python tools/ort_agreement.py                      # writes reports/ort-agreement.md (1,000 images)
    python tools/ort_agreement.py --limit 200 --out /tmp/quick.md

1. *Their models on our grid*: each bundled FP32 model is quantized by onnxruntime's
   `quantize_static` (after its `quant_pre_process`, which folds BatchNorm: QDQ form,
   per-channel int8 weights, int8 activations (its defaults), min-max calibration on 256
   class-balanced mnist5k training images), and also in its QOperator form. accelsim imports
   the file (`accelsim.load_model`) and executes it in integers on edge-npu-16x16; onnxruntime
   runs the same file with graph optimisations on (its integer kernels: QLinearConv, QGemm, ...)
   and off (the QDQ arithmetic in float).
2. *Our models in their runtime*: each model x recipe quantized by accelsim, written as QDQ
   (`QGraph.save_onnx`) and run by onnxruntime (optimisations on and off), against accelsim's
   integer execution and its fake-quant reference.

Agreement is per output element (the logits) in codes of the output grid, |q(a) - q(b)|
(LSBs; on PowerQuant's power-domain grid a code is not a fixed step in value), and in top-1 on the mnist5k test split.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import accelsim
from accelsim.report.output import markdown_table, write_atomic

REPO = Path(__file__).resolve().parents[1]
MODELS = ("tiny_mobilenet_v2", "tiny_resnet", "tiny_vgg")
RECIPES = ("naive", "per_channel", "dfq", "dfq_calibrated", "powerquant", "dfq+powerquant")
CALIBRATION_IMAGES = 256
COMMAND = "python tools/ort_agreement.py"


# ----------------------------------------------------------------------------- helpers (tests use them)


def ort_outputs(path, x: np.ndarray, optimize: bool) -> np.ndarray:
    """onnxruntime's output for `x`: optimize=True is ORT_ENABLE_ALL (QDQ fused into its
    integer kernels), False is ORT_DISABLE_ALL (each QuantizeLinear / DequantizeLinear in float)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]


def ort_kernels(path) -> dict[str, int]:
    """The op types onnxruntime runs after its optimisations (which integer kernels it fused)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        counts: dict[str, int] = {}
        for n in onnx.load(so.optimized_model_filepath).graph.node:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


class _Reader:
    def __init__(self, x: np.ndarray, input_name: str):
        self._it = iter([{input_name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self._it, None)


def quantize_with_ort(model: str, out_dir, calibration: np.ndarray, fmt: str = "QDQ", per_channel: bool = True,
                      tag: str = "", **kw) -> Path:
    """`model` (a bundled name) quantized by onnxruntime's quantize_static after its
    quant_pre_process (BatchNorm folded); returns the quantized file in `out_dir`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from accelsim.graph.zoo import find_workload_file

    class Reader(_Reader, CalibrationDataReader):
        pass

    out_dir = Path(out_dir)
    pre = out_dir / f"{model}_pre.onnx"
    out = out_dir / f"{model}_ort_{fmt.lower()}{tag}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant_pre_process(str(find_workload_file(model)), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), Reader(calibration, "input"), quant_format=getattr(QuantFormat, fmt),
                        per_channel=per_channel, **kw)
    return out


def lsb_agreement(a: np.ndarray, b: np.ndarray, grid) -> dict[str, float]:
    """Per element, how many codes of the output grid (`QuantParams`) a and b are apart: the
    fraction equal, within one, the largest. Codes, not value / scale: on a PowerQuant grid one
    code is not a fixed step in value."""
    d = np.abs(grid.quantize(np.asarray(a, np.float64)).astype(np.int64)
               - grid.quantize(np.asarray(b, np.float64)).astype(np.int64))
    return {"equal": float((d == 0).mean()), "within_1": float((d <= 1).mean()), "max_lsb": int(d.max(initial=0))}


def top1(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.reshape(len(y), -1).argmax(1) == y).mean())


# ----------------------------------------------------------------------------- measurements


def _hw_for(recipe: str, hw):
    return hw.replace("quantization.power_unit", "lut") if "powerquant" in recipe else hw


def variants():
    """(label, format, per_channel, quantize_static options, weight scheme the hardware needs)."""
    from onnxruntime.quantization import QuantType

    return [("QDQ", "QDQ", True, {}, "symmetric"),
            ("QOperator", "QOperator", True, {}, "symmetric"),
            ("QDQ per-tensor", "QDQ", False, {}, "symmetric"),
            ("QDQ uint8 activations", "QDQ", True, {"activation_type": QuantType.QUInt8}, "symmetric"),
            ("QDQ uint8 asymmetric weights, per-tensor", "QDQ", False,
             {"activation_type": QuantType.QUInt8, "weight_type": QuantType.QUInt8}, "asymmetric")]


def their_models(x, y, calib, hw, tmp: Path):
    for model in MODELS:
        for i, (label, fmt, per_channel, kw, scheme) in enumerate(variants()):
            path = quantize_with_ort(model, tmp, calib, fmt, per_channel, tag=f"_{i}", **kw)
            qg = accelsim.load_model(path)
            hw_run = hw.replace("quantization.weight_scheme", scheme)
            lsb = qg.activations[qg.graph.outputs[0]]  # the output grid
            t0 = time.perf_counter()
            yi = accelsim.execute(qg, hw_run, x).output
            t_exec = time.perf_counter() - t0
            on, off = ort_outputs(path, x, True), ort_outputs(path, x, False)
            kernels = ort_kernels(path)
            run_top1 = "-"
            if label == "QDQ":  # the CLI's path: `accelsim run --model FILE`
                from accelsim.explore.point import run_point

                ds = accelsim.load_dataset("mnist5k")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    rp = run_point(str(path), hw_run, None, ds, progress=False)
                run_top1 = rp.summary["top1_integer"]
            in_q = qg.activations[qg.graph.inputs[0]]
            t = np.asarray(x, np.float64) / float(in_q.scale)
            ties = float((np.abs(t - np.floor(t) - 0.5) < 1e-6).mean())
            fused = ", ".join(f"{k} {v}" for k, v in sorted(kernels.items()) if k.startswith(("QLinear", "QGemm")))
            row = {"model": model, "form": label, "top1 ORT on": top1(on, y), "top1 ORT off": top1(off, y),
                   "top1 accelsim": top1(yi, y), "top1 accelsim run (1,000 images)": run_top1,
                   "input pixels on a rounding tie": ties}
            row["accelsim - ORT on (points)"] = 100 * (row["top1 accelsim"] - row["top1 ORT on"])
            for tag, ref in (("on", on), ("off", off)):
                a = lsb_agreement(yi, ref, lsb)
                row[f"=ORT {tag}"] = a["equal"]
                row[f"<=1 LSB ORT {tag}"] = a["within_1"]
                row[f"max LSB ORT {tag}"] = a["max_lsb"]
            a = lsb_agreement(on, off, lsb)
            row["ORT on vs off: equal"] = a["equal"]
            row["ORT integer kernels"] = fused or "-"
            row["accelsim s"] = t_exec
            yield row


def our_models(x, y, calib, hw, tmp: Path):
    data = accelsim.load_dataset("mnist5k")
    for model in MODELS:
        g = accelsim.load_model(model)
        for recipe in RECIPES:
            hwr = _hw_for(recipe, hw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                qg = accelsim.quantize(g, recipe, hw=hwr, calibration=calib if recipe == "dfq_calibrated" else None,
                                       data=data)
            path = qg.save_onnx(tmp / f"{model}_{recipe.replace('+', '_')}.onnx")
            lsb = qg.activations[qg.graph.outputs[0]]  # the output grid
            yi = accelsim.execute(qg, hwr, x).output
            fq = qg.run(x)
            on, off = ort_outputs(path, x, True), ort_outputs(path, x, False)
            kernels = ort_kernels(path)
            convs = sum(1 for n in g.nodes if n.op in ("conv2d", "linear"))
            fused = kernels.get("QLinearConv", 0) + kernels.get("QGemm", 0) + kernels.get("QLinearMatMul", 0)
            row = {"model": model, "recipe": recipe, "top1 accelsim": top1(yi, y), "top1 ORT on": top1(on, y),
                   "top1 ORT off": top1(off, y), "ORT integer conv/linear": f"{fused} of {convs}"}
            for tag, ref in (("on", on), ("off", off)):
                a = lsb_agreement(yi, ref, lsb)
                row[f"<=1 LSB ORT {tag}"] = a["within_1"]
                row[f"=ORT {tag}"] = a["equal"]
                row[f"max LSB ORT {tag}"] = a["max_lsb"]
            a = lsb_agreement(yi, fq, lsb)
            row["accelsim <=1 LSB fake-quant"] = a["within_1"]
            a = lsb_agreement(fq, off, lsb)
            row["fake-quant =ORT off"] = a["equal"]
            row["fake-quant <=1 LSB ORT off"] = a["within_1"]
            yield row


def first_layer(x, calib, hw, tmp: Path):
    """The first convolution of each QOperator file alone, its arithmetic isolated: the exact
    int32 accumulators (numpy, from the imported integers) requantized three ways against
    onnxruntime's QLinearConv (optimisations on) and accelsim's executor."""
    import onnx
    import onnx.utils

    from accelsim.quant.rounding import rounding_shift

    for model in MODELS:
        path = quantize_with_ort(model, tmp, calib, "QOperator", tag="_first")
        first = next(n for n in onnx.load(str(path)).graph.node if n.op_type == "QLinearConv")
        cut = tmp / f"{model}_first_conv.onnx"
        onnx.utils.extract_model(str(path), str(cut), ["input"], [first.output[0]])
        qg = accelsim.load_model(cut)
        (name, lq), = qg.layers.items()
        grid = qg.activations[qg.graph.outputs[0]]
        ours = accelsim.execute(qg, hw, x).output_codes.astype(np.int64)
        theirs = grid.quantize(ort_outputs_dequantized(cut, x, first, grid)).astype(np.int64)
        # exact accumulators: sum (x - z_x)(w - z_w) + bias, from the stored integers
        xq = lq.input_q.quantize(x).astype(np.int64) - int(lq.input_q.zero_point)
        a = qg.graph[name].attrs
        (pt, pl, pb, pr), (sh, sw) = a["padding"], a["stride"]
        xp = np.pad(xq, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        w = lq.weight_int.astype(np.int64) - np.asarray(lq.weight_q.zero_point).reshape(-1, 1, 1, 1)
        win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::sh, ::sw]
        acc = np.einsum("nchwij,ocij->nohw", win.astype(np.float64), w.astype(np.float64)).astype(np.int64)
        acc += np.asarray(lq.bias_int32, np.int64).reshape(1, -1, 1, 1)
        z, lo, hi = int(grid.zero_point), grid.qmin, grid.qmax
        scale32 = (np.float32(lq.input_q.scale) * lq.weight_q.scale.astype(np.float32)
                   / np.float32(grid.scale)).astype(np.float32).reshape(1, -1, 1, 1)
        v = acc.astype(np.float32) * scale32  # onnxruntime's requantization: a float32 multiply
        even = np.clip(np.rint(v) + z, lo, hi)
        away = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + z, lo, hi)
        integer = np.clip(rounding_shift(acc * lq.requant_multiplier.reshape(1, -1, 1, 1),
                                         lq.requant_shift.reshape(1, -1, 1, 1)) + z, lo, hi)
        yield {"model": model, "layer": name, "outputs": int(ours.size),
               "accelsim != ORT": int((ours != theirs).sum()),
               "int multiplier + half away (accelsim's rule, numpy) != accelsim": int((integer != ours).sum()),
               "float32 scale + half even != ORT": int((even != theirs).sum()),
               "float32 scale + half away != ORT": int((away != theirs).sum()),
               "exact ties (float32)": int((np.abs(v) - np.floor(np.abs(v)) == 0.5).sum())}


def ort_outputs_dequantized(path, x, qnode, grid) -> np.ndarray:
    """onnxruntime's integer output of a cut model, as values (its own zero-point and scale)."""
    import onnx
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    s_y, z_y = float(inits[qnode.input[6]]), int(inits[qnode.input[7]])
    return (ort_outputs(path, x, True).astype(np.float64) - z_y) * s_y


# ----------------------------------------------------------------------------- report


EXPLANATIONS = """\
## Why the two implementations differ (every systematic difference)

1. **Rounding rule.** accelsim rounds half away from zero everywhere (its quantizers and its
   requantization, `accelsim/quant/rounding.py`, gemmlowp / TFLite's rule); ONNX
   QuantizeLinear and onnxruntime's requantization round half to even. They disagree only on
   exact ties. The input images land on no tie (column "input pixels on a rounding tie",
   measured on each file's input grid); inside a layer, section 3 counts the rescaled
   accumulators that are exact ties and how many outputs the rule alone changes ("float32
   scale + half away != ORT"): a handful in millions.
2. **Requantization arithmetic.** accelsim requantizes the int32 accumulator by an integer
   multiplier in [2^30, 2^31) and a rounding right shift (M = s_w s_x / s_y to 31 bits, all
   integer). onnxruntime's integer kernels (optimisations on: QLinearConv, QGemm,
   QLinearGlobalAveragePool, QLinearAdd) multiply the int32 accumulator by a float32 scale and
   round half to even: section 3 reproduces its QLinearConv output exactly that way ("float32
   scale + half even != ORT" is 0), and accelsim's executor exactly by the integer rule, so
   the remaining differences of one code are the float32 product (24 bits of the scale,
   rounded) landing on the other side of a rounding boundary than the 31-bit integer one,
   plus the ties of item 1. With optimisations off onnxruntime computes the convolution in
   float32 on dequantized values and quantizes the float result, so its float32 sum is also
   rounded.
3. **Where onnxruntime stays in float.** Its QDQ fusion turns Q/DQ-wrapped ops into integer
   kernels only where its patterns match (table "Which integer kernels"): an Add followed by a
   Relu before its QuantizeLinear (accelsim's fused add -> relu site) stays a float Add between
   DequantizeLinear and QuantizeLinear (so does a Conv with a Clip between it and its
   QuantizeLinear, which is why the export leaves a ReLU6 whose grid already clamps to [0, <= 6]
   to the QuantizeLinear's saturation, as onnxruntime's quantizer does), and in the files its own quantizer writes (int8
   activations) some convolutions stay float Conv between DequantizeLinear and QuantizeLinear
   (the QLinearConv count is below the Conv count; onnxruntime warns that signed int8
   activations are slow on x64; the same models with uint8 activations get every convolution
   fused). Those ops run item 2's float arithmetic even with
   optimisations on, which is why "ORT on vs off" is not 100% equal for those files.
4. **Error growth with depth.** A one-LSB difference inside the network can grow: a
   difference of one code in a wide layer shifts every dot product that reads it, so the
   deepest model (tiny_mobilenet_v2, 17 convs) shows the rare 2-LSB logit.
5. **PowerQuant.** The exported file applies x -> (x + c)^a and its inverse with float Pow
   nodes, which is what accelsim's fake-quant reference computes, so onnxruntime agrees with the
   fake-quant reference (last columns); with optimisations on these stay float (onnxruntime has
   no integer kernel for a power grid), so "ORT on" equals "ORT off". accelsim's *integer*
   execution raises every product to 1/a in fixed point (a product LUT with
   `power_product_frac_bits` fraction bits at each PE) and the layer output through a
   `power_output_bits` fixed-point stage: those roundings are the power datapath's, and they
   leave fewer logits on exactly the same code (89-98%) than the uniform recipes (99-100%),
   still all within one code. One code of a power-domain grid is not a fixed step in value,
   which is why agreement is counted in codes, not in value / scale.
6. **Representation, not a difference.** onnxruntime's int8 activations with a zero-point
   are imported onto accelsim's unsigned grid (codes and zero-point + 128): the same values,
   so it is not counted as a difference; ReLU / ReLU6 that onnxruntime's quantizer removed
   (their effect is its output grid's lower bound) are the clamp of accelsim's requantization.
"""


def fmt(v):
    if isinstance(v, float):
        return f"{v:.4f}"
    return v


def build(limit: int | None) -> str:
    data = accelsim.load_dataset("mnist5k")
    x, y = data.split("test")
    if limit:
        idx = np.linspace(0, len(y) - 1, limit).astype(int)
        x, y = x[idx], y[idx]
    calib = data.calibration(CALIBRATION_IMAGES)
    hw = accelsim.load_hw("edge-npu-16x16")
    import onnx
    import onnxruntime as ort

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        theirs = list(their_models(x, y, calib, hw, Path(tmp)))
        ours = list(our_models(x, y, calib, hw, Path(tmp)))
        layer1 = list(first_layer(x, calib, hw, Path(tmp)))
    elapsed = time.perf_counter() - t0
    cols_a = ["model", "form", "top1 ORT on", "top1 ORT off", "top1 accelsim", "accelsim - ORT on (points)",
              "=ORT on", "<=1 LSB ORT on", "max LSB ORT on", "=ORT off", "<=1 LSB ORT off", "max LSB ORT off",
              "ORT on vs off: equal"]
    cols_k = ["model", "form", "ORT integer kernels", "top1 accelsim run (1,000 images)",
              "input pixels on a rounding tie"]
    cols_b = ["model", "recipe", "ORT integer conv/linear", "top1 accelsim", "top1 ORT on", "top1 ORT off", "=ORT on", "<=1 LSB ORT on",
              "max LSB ORT on", "=ORT off", "<=1 LSB ORT off", "max LSB ORT off", "accelsim <=1 LSB fake-quant",
              "fake-quant =ORT off", "fake-quant <=1 LSB ORT off"]

    def table(rows, cols):
        import pandas as pd

        return markdown_table(pd.DataFrame([[fmt(r[c]) for c in cols] for r in rows], columns=cols))

    uniform = [r for r in ours if "powerquant" not in r["recipe"]]
    worst_uniform = min(min(r["<=1 LSB ORT on"], r["<=1 LSB ORT off"]) for r in uniform)
    worst_gap = max(abs(r["accelsim - ORT on (points)"]) for r in theirs)
    n = len(y)
    text = f"""# accelsim against onnxruntime

Regenerate: `{COMMAND}` ({n:,} mnist5k test images; accelsim {accelsim.__version__}, onnxruntime
{ort.__version__}, onnx {onnx.__version__}; {elapsed:.0f} s on this machine). Hardware:
edge-npu-16x16 (8-bit, symmetric per-channel weights, asymmetric activations, 32-bit
accumulators; PowerQuant recipes with `quantization.power_unit: lut`). Agreement is over every
output element (10 logits per image) in codes (LSBs) of the output grid; "=": the same code, "<=1":
within one LSB.

## 1. onnxruntime-quantized models executed by accelsim

`quantize_static` (min-max calibration on {CALIBRATION_IMAGES} class-balanced mnist5k training
images, after `quant_pre_process`; "QDQ": its defaults with per-channel weights, i.e. int8
symmetric per-channel weights and int8 activations; "QOperator": the same as QLinear* ops; then
per-tensor weights, uint8 activations, and uint8 asymmetric per-tensor weights, the last on
edge-npu-16x16 with `quantization.weight_scheme: asymmetric`), loaded by `accelsim.load_model(file)` without re-quantizing and executed
in integers on the grid (`accelsim run --model FILE` gives the same top-1). "ORT on":
onnxruntime with all graph optimisations (its integer kernels); "ORT off": none (QDQ arithmetic
in float). Largest top-1 gap accelsim vs ORT on: {worst_gap:.2f} points.

{table(theirs, cols_a)}

Which integer kernels onnxruntime ran (optimised graph):

{table(theirs, cols_k)}

## 2. accelsim's quantized models run by onnxruntime

Each recipe's QGraph written by `QGraph.save_onnx` (QDQ; PowerQuant as explicit Pow nodes) and
run by onnxruntime; compared with accelsim's integer execution, and (last two columns) with
accelsim's fake-quant reference. Uniform recipes: at least {100 * worst_uniform:.2f}% of output
elements within one LSB.

{table(ours, cols_b)}

## 3. One layer, the arithmetic isolated

The first convolution of each QOperator file alone (cut with `onnx.utils.extract_model`), on
every test image: the exact int32 accumulators, computed here in numpy from the integers
accelsim imported, requantized three ways and compared, output by output, with onnxruntime's
QLinearConv and with accelsim's executor (counts of outputs that differ).

{table(layer1, list(layer1[0]))}

{EXPLANATIONS}"""
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="use N evenly spaced test images (default: all 1,000)")
    ap.add_argument("--out", default=str(REPO / "reports" / "ort-agreement.md"))
    args = ap.parse_args(argv)
    text = build(args.limit)
    write_atomic(Path(args.out), lambda tmp: Path(tmp).write_text(text))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
