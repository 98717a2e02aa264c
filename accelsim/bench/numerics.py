"""Benchmarks of the numpy references, registered with ``accelsim bench`` (see ``accelsim.bench``)."""
from __future__ import annotations

import numpy as np

from . import Section, _best_of, _table, benchmark


@benchmark("interpreter_throughput",
           "FP32 Graph.run and fake-quant QGraph.run on tiny_mobilenet_v2, batch 1,000, beside onnxruntime")
def bench_interpreter_throughput(quick: bool) -> Section:
    from ..config import load_hw
    from ..graph.zoo import find_workload_file, load_model
    from ..quant.pipeline import quantize

    batch = 1000
    repeat = 2 if quick else 5
    graph = load_model("tiny_mobilenet_v2")
    x = np.random.default_rng(0).standard_normal((batch, 1, 28, 28)).astype(np.float32)
    qgraph = quantize(graph, "dfq", hw=load_hw("edge-npu-16x16"))
    runs = {"Graph.run (FP32)": lambda: graph.run(x), "QGraph.run (DFQ W8A8 fake-quant)": lambda: qgraph.run(x)}
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(str(find_workload_file("tiny_mobilenet_v2")), providers=["CPUExecutionProvider"])
        runs["onnxruntime (reference, not used by accelsim)"] = lambda: session.run(None, {"input": x})[0]
    except ImportError:
        pass
    timings = {name: _best_of(fn, repeat)[:2] for name, fn in runs.items()}
    fp32_wall = timings["Graph.run (FP32)"][0]
    rows = [[name, f"{wall:.3f}", f"{cpu:.3f}", f"{batch / wall:,.0f}", f"{wall / fp32_wall:.2f}"]
            for name, (wall, cpu) in timings.items()]
    md = _table(["run", f"best of {repeat} wall s", "CPU s", "images / s", "time / Graph.run"], rows)
    md += (f"\n\n{batch:,} random 1x28x28 inputs (the shape of the mnist5k test split); "
           f"{graph.total_macs():,} MACs per image. All runs measured in this one process, one after another.")
    figures = {name: {"wall_s": w, "images_per_s": batch / w} for name, (w, _) in timings.items()}
    return Section("Numpy references: FP32 and fake-quant throughput", md, figures)


def _gemm_operands(qgraph, hw, x):
    """Per conv/linear layer, the (weights, columns) float64 operands the fast path multiplies."""
    from ..sim import execute as ex

    captured = []
    original = ex._im2col

    def spy(codes, step, dtype=np.float64):
        cols, lead = original(codes, step, dtype)
        g = step.groups
        captured.append((step.weight_codes.reshape(g, -1, step.weight_codes.shape[1]).astype(np.float64),
                         np.ascontiguousarray(cols, dtype=np.float64)))
        return cols, lead

    ex._im2col = spy
    try:
        ex.execute(qgraph, hw, x, threads=1, batch_size=len(x), progress=False)
    finally:
        ex._im2col = original
    return captured


@benchmark("integer_execution",
           "integer execution (accelsim.execute) beside the same GEMMs in float64 BLAS and fake-quant; the numba array path in MACs/s")
def bench_integer_execution(quick: bool) -> Section:
    from threadpoolctl import threadpool_limits

    from ..config import load_hw
    from ..data import load_dataset
    from ..graph.zoo import load_model
    from ..quant.pipeline import quantize
    from ..sim.execute import execute

    hw = load_hw("edge-npu-16x16")
    x_all, _ = load_dataset("mnist5k").split("test")
    batch = 250 if quick else 1000
    x = np.ascontiguousarray(x_all[:batch])
    repeat = 2 if quick else 3
    rows, figures = [], {}
    for name in ("tiny_mobilenet_v2", "tiny_resnet", "tiny_vgg"):
        graph = load_model(name)
        qg = quantize(graph, "dfq", hw=hw, data="mnist5k")
        macs = graph.total_macs() * batch
        operands = _gemm_operands(qg, hw, x)
        with threadpool_limits(limits=1, user_api="blas"):
            blas, _, _ = _best_of(lambda: [np.matmul(w, c) for w, c in operands], repeat)
            one, _, _ = _best_of(lambda: execute(qg, hw, x, threads=1, batch_size=batch, progress=False), repeat)
            fq, _, _ = _best_of(lambda: qg.run(x, threads=1, batch_size=batch), repeat)
        par, _, _ = _best_of(lambda: execute(qg, hw, x, progress=False), repeat)
        n_arr = 8 if quick else 32
        arr, _, _ = _best_of(lambda: execute(qg, hw, x[:n_arr], path="array", threads=1, progress=False), 1)
        arr_macs = graph.total_macs() * n_arr
        rows.append([name, f"{graph.total_macs():,}", f"{blas:.3f}", f"{one:.3f}", f"{blas / one:.2f}",
                     f"{fq:.3f}", f"{par:.3f}", f"{macs / par / 1e9:.2f}", f"{arr_macs / arr / 1e6:.1f}"])
        figures[name] = {"blas_gemms_s": blas, "execute_1thread_s": one, "blas_over_execute": blas / one,
                         "fake_quant_1thread_s": fq, "execute_threads_s": par, "array_path_macs_per_s": arr_macs / arr}
    md = _table(["model", "MACs / image", "float64 BLAS GEMMs s", "execute s (1 thread)", "BLAS / execute",
                 "fake-quant s (1 thread)", "execute s (all cores)", "execute GMAC/s (all cores)",
                 "array path MMAC/s (1 thread)"], rows)
    md += (f"\n\n{batch:,} mnist5k test images, DFQ W8A8 on edge-npu-16x16 (32-bit accumulators: the bound proves "
           "every row overflow-free, so every layer takes the fast path). *float64 BLAS GEMMs*: the same weight x "
           "column products the executor forms, captured from one run and timed alone in float64 (no im2col, bias, "
           "requantization, pools); *execute*: the whole integer network, everything included (it multiplies in "
           "float32 where a bound proves float32 exact, else float64). Goal: BLAS / execute >= 0.5. *array path*: every layer stepped through the numba cycle-stepped kernels "
           f"(`path='array'`, {n_arr} images), in model MACs per second (the kernels also step idle PEs). "
           "All measured in this one process, one after another.")
    return Section("Integer execution: fast path beside float64 BLAS, and the array path", md, figures)


@benchmark("run_default", "`accelsim run` on the bundled defaults: wall time split into load, quantize, execute, cost")
def bench_run_default(quick: bool) -> Section:
    from ..explore.point import run_point

    result = run_point(limit=250 if quick else None, progress=False)
    t = result.timings_s
    rows = [[k, f"{v:.3f}", f"{100 * v / t['total']:.0f}%"] for k, v in t.items() if k != "total"]
    rows.append(["total", f"{t['total']:.3f}", "100%"])
    md = _table(["phase", "wall s", "share"], rows)
    s = result.summary
    md += (f"\n\n`run_point()` with the defaults ({s['model']}, {s['hw']}, {s['recipe']}, {s['data']} "
           f"{s['images']:,} images), in this process after the other benchmarks (numba kernels compiled and "
           "cached): load = config, model and dataset; fp32 / fake-quant = the two references' top-1; execute = "
           f"integer execution on the grid; cost = `accelsim.simulate`. Integer top-1 {s['top1_integer']:.4f}, "
           f"FP32 {s['top1_fp32']:.4f}.")
    return Section("accelsim run: where the time goes", md, {"timings_s": t})
