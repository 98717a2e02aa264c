"""Benchmarks of the PE grid: SCALE-Sim timing mode, the cycle-stepped kernels, the closed-form
cost model's scaling (registered with ``accelsim bench``)."""
from __future__ import annotations

import time

import numpy as np

from . import SCALESIM_RESNET50_CPU_S, Section, _best_of, _reference, _table, benchmark


@benchmark("scalesim_resnet50", "ResNet-50 (54 layers) on a 32x32 ws array in SCALE-Sim timing mode")
def bench_scalesim_resnet50(quick: bool) -> Section:
    from ..config import load_hw
    from ..graph.zoo import load_model
    from ..sim.grid import simulate_grid

    csv = _reference("Resnet50_mlperf.csv")
    hw = load_hw(_reference("r32x32_ws_calc.cfg"))

    def run():
        return simulate_grid(load_model(csv), hw, timing="scalesim")

    w0, c0 = time.perf_counter(), time.process_time()
    result = run()
    first_wall, first_cpu = time.perf_counter() - w0, time.process_time() - c0
    best, best_cpu, result = _best_of(run, 3 if quick else 10)
    layers = len(result.layers)
    total = result.summary["total_cycles"]
    md = _table(
        ["run", "wall s", "CPU s", "SCALE-Sim 3.0 CPU s / ours (CPU)"],
        [["first call (imports warm)", f"{first_wall:.4f}", f"{first_cpu:.4f}",
          f"{SCALESIM_RESNET50_CPU_S / max(first_cpu, 1e-9):,.0f}x"],
         [f"best of {3 if quick else 10}", f"{best:.4f}", f"{best_cpu:.4f}",
          f"{SCALESIM_RESNET50_CPU_S / max(best_cpu, 1e-9):,.0f}x"]],
    )
    md += (f"\n\n{layers} layers, {total:,} cycles in total (load CSV + map + closed-form timing). "
           f"Target: < 1 s. SCALE-Sim 3.0.0 needed {SCALESIM_RESNET50_CPU_S:,.0f} CPU-seconds for the same "
           "54 layers on a 2-core machine, as measured by reference/scalesim/README.md (not re-run here).")
    return Section("SCALE-Sim mode: ResNet-50 on 32x32 ws", md,
                   {"wall_s": best, "cpu_s": best_cpu, "first_wall_s": first_wall, "layers": layers,
                    "total_cycles": total, "ratio_cpu": SCALESIM_RESNET50_CPU_S / max(best_cpu, 1e-9)})


def _kernel_inputs(rng, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(-128, 128, (m, k), dtype=np.int64), rng.integers(-128, 128, (k, n), dtype=np.int64)


@benchmark("kernel_throughput", "cycle-stepped kernel: PE-updates per second on one core, per dataflow")
def bench_kernel_throughput(quick: bool) -> Section:
    from ..sim.kernels import run_gemm

    rng = np.random.default_rng(0)
    w0 = time.perf_counter()
    for df in ("ws", "os", "is"):  # compile (or load the numba cache) outside the timed runs
        run_gemm(np.ones((2, 2), np.int64), np.ones((2, 2), np.int64), 2, 2, df)
    warm = time.perf_counter() - w0
    m, k, n = (512, 128, 64) if quick else (2048, 256, 64)
    a, b = _kernel_inputs(rng, m, k, n)
    ref = a @ b
    rows, figures = [], {}
    for df in ("ws", "os", "is"):
        best, cpu, res = _best_of(lambda: run_gemm(a, b, 32, 32, df, "serial", 32, "wrap"), 2 if quick else 5)
        ok = bool(np.array_equal(res.out, ref))
        rate, rate_cpu = res.pe_updates / best, res.pe_updates / max(cpu, 1e-9)
        figures[df] = rate
        rows.append([df, f"{res.cycles:,}", f"{res.pe_updates:,}", f"{best:.3f}", f"{rate:.3g}",
                     f"{rate_cpu:.3g}", ok])
    md = _table(["dataflow", "cycles", "PE-updates", "best wall s", "PE-updates / wall s",
                 "PE-updates / CPU s", "outputs == numpy"], rows)
    md += (f"\n\nGEMM {m}x{k} @ {k}x{n}, int8-range random operands, 32x32 array, 32-bit wrap, serial preload; "
           f"one thread, best of {2 if quick else 5}. A PE-update is one PE stepping one cycle. Target: >= 3e8 "
           f"per second on one core (the CPU-second column is the figure to read on a shared machine). "
           f"Compile / cache load before timing: {warm:.2f} s.")
    return Section("Cycle-stepped kernel throughput", md, figures)


@benchmark("kernel_resnet50_layers", "ResNet-50 layers the cycle-stepped kernel steps through in 10 s")
def bench_kernel_layers(quick: bool) -> Section:
    from ..config import load_hw
    from ..graph.zoo import load_model
    from ..sim.kernels import run_gemm
    from ..sim.mapping import map_layer
    from ..sim.timing import native_cycles

    budget_s = 10.0
    hw = load_hw(_reference("r32x32_ws_calc.cfg"))
    pe = hw.pe_array
    g = load_model(_reference("Resnet50_mlperf.csv"))
    infos = sorted(g.layers(1, gemm_only=True), key=lambda i: -i.macs)
    rng = np.random.default_rng(1)
    run_gemm(np.ones((2, 2), np.int64), np.ones((2, 2), np.int64), 2, 2, "ws")  # compile outside timing
    # --quick: only the largest layer, M cut to 64 rows; otherwise every layer, whole
    todo = infos[:1] if quick else infos
    rows, walls = [], []
    all_ok = True
    for info in todo:
        gm = info.gemm
        m = min(gm.M, 64) if quick else gm.M
        a, b = _kernel_inputs(rng, m, gm.K, gm.N)
        w0 = time.perf_counter()
        r = run_gemm(a, b, pe.rows, pe.cols, pe.dataflow, pe.weight_preload)
        wall = time.perf_counter() - w0
        ok = bool(np.array_equal(r.out, a @ b))
        if not quick:
            ok = ok and r.cycles == native_cycles(map_layer(gm, pe), pe.weight_preload)
        all_ok &= ok
        walls.append((info, wall, r))
        rows.append([info.name, f"{info.macs:,}", f"{m}x{gm.K}x{gm.N}", f"{r.cycles:,}", f"{r.pe_updates:,}",
                     f"{wall:.2f}", f"{r.pe_updates / wall:.3g}", "yes" if wall <= budget_s else "no", ok])
    shown = rows if quick else rows[:8]
    md = _table(["layer", "MACs", "M x K x N stepped", "cycles", "PE-updates", "wall s", "PE-updates / s",
                 f"<= {budget_s:g} s", "outputs == numpy, cycles == closed form"], shown)
    fits = [i for i, w, _ in walls if w <= budget_s]
    total_wall = sum(w for _, w, _ in walls)
    slowest = max(walls, key=lambda x: x[1])
    if quick:
        md += ("\n\nThe largest layer by MACs with M cut to 64 rows (--quick); run without --quick to step "
               "every layer whole.")
    else:
        md += (f"\n\nThe {len(shown)} largest of {len(walls)} layers by MACs shown. Every layer of SCALE-Sim's "
               f"ResNet-50 topology was stepped whole on 32x32 ws (serial preload, native timing) with random "
               f"int8-range GEMM operands: {len(fits)} of {len(walls)} finish within {budget_s:g} s (largest by "
               f"MACs that fits: {max(fits, key=lambda i: i.macs).name if fits else 'none'}); slowest "
               f"{slowest[0].name} at {slowest[1]:.2f} s; all {len(walls)} layers {total_wall:.1f} s in total; "
               f"outputs equal numpy's int64 GEMM and cycles equal the closed form for all: {all_ok}.")
    return Section("Cycle-stepped kernel on real ResNet-50 layers", md,
                   {"fits": len(fits), "layers": len(walls), "total_wall_s": total_wall, "all_ok": all_ok})


@benchmark("cost_model_scaling", "cost-model time vs array size (8x8..256x256) and network depth")
def bench_cost_model_scaling(quick: bool) -> Section:
    from ..config import load_hw
    from ..graph.zoo import load_model
    from ..sim.grid import simulate_grid

    hw = load_hw("edge-npu-16x16")
    repeat = 3 if quick else 10
    g = load_model("resnet50")
    simulate_grid(g, hw)
    rows = []
    for size in (8, 16, 32, 64, 128, 256):
        h = hw.replace("pe_array.rows", size).replace("pe_array.cols", size)
        best, _, r = _best_of(lambda: simulate_grid(g, h), repeat)
        rows.append([f"{size}x{size}", f"{best * 1e3:.2f}", f"{r.summary['total_cycles']:,}",
                     f"{r.summary['utilisation']:.3f}"])
    md = "By array size (resnet50, ws, native timing):\n\n"
    md += _table(["array", "simulate_grid ms", "cycles", "utilisation"], rows)
    rows = []
    nets = ("resnet18", "mobilenet_v2", "resnet50", "bert_base") if quick else (
        "resnet18", "mobilenet_v2", "resnet50", "vgg16", "bert_base")
    for name in nets:
        graph = load_model(name)
        best, _, r = _best_of(lambda: simulate_grid(graph, hw), repeat)
        n = r.summary["layers"]
        rows.append([name, n, f"{best * 1e3:.2f}", f"{best * 1e6 / max(n, 1):.0f}", f"{r.summary['total_cycles']:,}"])
    md += "\n\nBy network (16x16 ws, native timing; the graph is loaded once, outside the timing):\n\n"
    md += _table(["network", "GEMM layers", "simulate_grid ms", "us / layer", "cycles"], rows)
    from ..graph.scalesim_csv import parse_scalesim_csv

    lines = _reference("Resnet50_mlperf.csv").read_text().strip().splitlines()
    rows = []
    for copies in (1, 4, 16) if quick else (1, 4, 16, 64):
        body = [f"r{i}_{ln.strip()}" for i in range(copies) for ln in lines[1:] if ln.strip()]
        graph = parse_scalesim_csv("\n".join([lines[0]] + body), "repeated", f"resnet50x{copies}")
        best, _, r = _best_of(lambda: simulate_grid(graph, hw), repeat)
        n = r.summary["layers"]
        rows.append([copies, n, f"{best * 1e3:.2f}", f"{best * 1e6 / n:.0f}"])
    md += "\n\nBy depth: SCALE-Sim's ResNet-50 topology repeated k times in one graph (16x16 ws, native):\n\n"
    md += _table(["k", "GEMM layers", "simulate_grid ms", "us / layer"], rows)
    md += (f"\n\nBest of {repeat}. The closed form costs the same per layer whatever the array size "
           "(fold counts are arithmetic, never enumerated), so time grows with the number of layers only.")
    return Section("Cost-model scaling", md, {})
