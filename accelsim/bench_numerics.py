"""Benchmarks of the numpy references, registered with ``accelsim bench`` (see ``bench._PLUGINS``)."""
from __future__ import annotations

import numpy as np

from .bench import Section, _best_of, _table, benchmark


@benchmark("interpreter_throughput",
           "FP32 Graph.run and fake-quant QGraph.run on tiny_mobilenet_v2, batch 1,000, beside onnxruntime")
def bench_interpreter_throughput(quick: bool) -> Section:
    from .config import load_hw
    from .graph.zoo import find_workload_file, load_model
    from .quant.pipeline import quantize

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
