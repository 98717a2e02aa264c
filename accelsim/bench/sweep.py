"""Sweep benchmarks for `accelsim bench`: throughput, a 1,000-point ResNet-50 cost sweep, and
the sweep process's peak memory as the number of points grows 10x.

Each sweep runs as its own process (`python -c`, the way `accelsim sweep` runs), so its wall
time includes starting the worker processes, and its peak resident memory is its own
(getrusage of the process itself; the workers' peak is reported beside it).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import Section, _table, benchmark

RESNET50_GRID = {
    "pe_array.rows": [8, 16, 32, 64, 128],
    "pe_array.cols": [8, 16, 32, 64, 128],
    "precision.weight_bits": [4, 8],
    "memory.ifmap_sram_kib": [32, 64, 128, 256],
    "memory.dram_bandwidth_gbps": [4, 8, 16, 32, 64],
}  # 1,000 points, every one a different hardware config

_CHILD = """
import json, resource, sys, time
from accelsim.explore.spec import sweep_from_dict
from accelsim.explore.runner import run_sweep
doc, store, workers = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
stats = run_sweep(sweep_from_dict(doc), store, workers=workers, progress=False)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "computed": stats.computed, "by_status": stats.by_status,
                  "accuracy_measured": stats.accuracy_measured, "accuracy_reused": stats.accuracy_reused,
                  "self_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "workers_maxrss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _sweep_process(doc: dict, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        w0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(doc), str(Path(tmp) / "s.db"), str(workers)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"sweep process failed: {r.stderr[-2000:]}")
        out = json.loads(r.stdout.strip().splitlines()[-1])
        out["process_wall_s"] = time.perf_counter() - w0
        return out


def _uncached_point_s(n: int) -> float:
    """Mean wall seconds of one ResNet-50 point priced as before sweeps existed: no layer or
    traffic reuse, DRAM tiles through the simpy event simulation."""
    import accelsim.sim.memory as memory
    from ..config import load_hw
    from ..cost.model import clear_layer_cache, simulate
    from ..graph.zoo import load_model

    g, base = load_model("resnet50"), load_hw("edge-npu-16x16")
    import itertools

    combos = list(itertools.product(*RESNET50_GRID.values()))[:: max(1, 1000 // n)][:n]
    fast = memory.run_tiles
    memory.run_tiles = memory.run_tiles_simpy
    try:
        t = 0.0
        for combo in combos:
            hw = base
            for path, v in zip(RESNET50_GRID, combo):
                hw = hw.replace(path, v)
            clear_layer_cache()
            w0 = time.perf_counter()
            simulate(g, hw, layer_cache=False)
            t += time.perf_counter() - w0
    finally:
        memory.run_tiles = fast
        clear_layer_cache()
    return t / len(combos)


@benchmark("sweep_cost", "cost-only sweeps of ResNet-50: 100 and 1,000 points on the machine's cores; "
                         "points/s, wall, peak memory (goal: 1,000 points < 20 s, memory flat)")
def bench_sweep_cost(quick: bool) -> Section:
    workers = os.cpu_count() or 1
    # 100 points drawn (seeded) from the same values, so that both sizes price alike configs
    sizes = {"100 points": {"random": {"samples": 100, "seed": 0, "axes": RESNET50_GRID}}}
    if not quick:
        sizes["1,000 points"] = {"grid": RESNET50_GRID}
    rows, figures = [], {}
    for label, axes in sizes.items():
        doc = {"name": "bench", "workloads": ["resnet50"], "recipes": ["dfq"], **axes}
        out = _sweep_process(doc, workers)
        n = out["computed"]
        rows.append([label, f"{n:,}", workers, f"{out['process_wall_s']:.1f}", f"{out['wall_s']:.1f}",
                     f"{n / out['wall_s']:.1f}", f"{out['self_maxrss_mib']:.0f}", f"{out['workers_maxrss_mib']:.0f}"])
        figures[label] = out
    per_point = _uncached_point_s(5 if quick else 20)
    md = _table(["sweep", "points", "workers", "process wall s", "sweep wall s", "points/s",
                 "sweep process peak MiB", "worker peak MiB"], rows)
    big = figures.get("1,000 points")
    if big:
        serial = per_point * big["computed"]
        small = figures["100 points"]
        md += (f"\n\n1,000-point ResNet-50 cost sweep (every point a different config: "
               + ", ".join(f"`{k}` {v}" for k, v in RESNET50_GRID.items())
               + f"): **{big['process_wall_s']:.1f} s** as a whole process on {workers} cores (goal < 20 s: "
               f"{'met' if big['process_wall_s'] < 20 else 'missed'}). Side by side in this run, one point priced as "
               f"before sweeps (no layer or traffic reuse, DRAM tiles through simpy): {per_point * 1e3:.0f} ms, "
               f"mean of 20 of the same points; 1,000 of them serially: {serial:.0f} s, "
               f"{serial / big['wall_s']:.1f}x the sweep.\n\n"
               f"Peak memory of the sweep process: {small['self_maxrss_mib']:.0f} MiB at 100 points, "
               f"{big['self_maxrss_mib']:.0f} MiB at 1,000 (x{big['self_maxrss_mib'] / small['self_maxrss_mib']:.2f} "
               f"for 10x the points); the workers' caches are bounded (`cost.model.LAYER_CACHE_ENTRIES`).")
    figures["uncached_point_s"] = per_point
    return Section("Sweeps: cost only", md, figures)


@benchmark("sweep_accuracy", "sweeps with accuracy: tiny_resnet on all 1,000 test images, integer execution per "
                             "numeric format; points/s with and without reuse across array sizes")
def bench_sweep_accuracy(quick: bool) -> Section:
    workers = os.cpu_count() or 1
    formats = {"recipe.weight_bits": [4, 6, 8] if quick else [4, 5, 6, 7, 8],
               "precision.accumulator_bits": [20, 32]}
    cases = {"one array per format": formats,
             "4 arrays per format": {**formats, "pe_array.rows": [8, 16, 32, 64]}}
    rows, figures = [], {}
    for label, grid in cases.items():
        doc = {"name": "bench", "workloads": ["tiny_resnet"], "recipes": ["dfq"], "grid": grid,
               **({"limit": 200} if quick else {})}
        out = _sweep_process(doc, workers)
        n = out["computed"]
        rows.append([label, f"{n}", out["accuracy_measured"], out["accuracy_reused"], f"{out['process_wall_s']:.1f}",
                     f"{n / out['process_wall_s']:.2f}"])
        figures[label] = out
    md = _table(["sweep", "points", "accuracy measured", "accuracy reused", "process wall s", "points/s"], rows)
    md += ("\n\nEach measurement quantizes tiny_resnet (DFQ), runs FP32, fake-quant and integer execution on the "
           f"grid over {'200' if quick else 'all 1,000'} mnist5k test images. Accuracy depends on the numeric "
           "format, not the array size: with 4 arrays per format the sweep measures it once per format and prices "
           "the rest (reuse is exact only where no accumulator overflow made the array's order matter; otherwise "
           "it is measured per array).")
    return Section("Sweeps: with accuracy", md, figures)
