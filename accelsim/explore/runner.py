"""Running a sweep: local worker processes (default) or a Dask cluster, into a result store.

The sweep process resolves the points, skips those already in the store, then runs two
phases on the workers: accuracy, once per distinct numeric configuration (evaluate.py), and
cost, in chunks of points. Only the sweep process writes the store, one transaction per
finished chunk, so a kill loses at most the chunks in flight; a rerun finishes the rest.
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import AccelsimError
from .jobs import accuracy_job, cost_job, resolve
from .spec import SweepSpec
from .store import Store


@dataclass
class SweepStats:
    points: int = 0
    already_done: int = 0
    computed: int = 0
    skipped: int = 0
    failed: int = 0
    accuracy_measured: int = 0
    accuracy_reused: int = 0
    wall_s: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)


class _Pool:
    """submit(fn, arg) -> future; wait_any(futures) -> done futures; for processes or Dask."""

    def __init__(self, workers: int | None, dask: str | None):
        self.dask_client = None
        self.cluster = None
        self.inline = False
        if dask is not None:
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise AccelsimError("a Dask runner needs dask.distributed: pip install 'accelsim[dist]'") from None
            if dask == "local":
                self.cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                            processes=True, dashboard_address=None, silence_logs=40)
                self.dask_client = Client(self.cluster)
            else:
                try:
                    self.dask_client = Client(dask, timeout="20s")
                except (OSError, TimeoutError) as e:
                    raise AccelsimError(f"--scheduler {dask}: cannot reach a Dask scheduler ({e})") from None
            self.slots = max(1, sum(self.dask_client.nthreads().values()))
        elif workers == 0:
            self.inline = True
            self.slots = 1
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self.slots = workers or os.cpu_count() or 1
            # spawn: workers start clean (no inherited threads or locks of numba, BLAS or sqlite)
            self.executor = ProcessPoolExecutor(max_workers=self.slots, mp_context=mp.get_context("spawn"))

    def submit(self, fn: Callable, arg: Any):
        if self.inline:
            from concurrent.futures import Future

            f = Future()
            try:
                f.set_result(fn(arg))
            except BaseException as e:  # noqa: BLE001
                f.set_exception(e)
            return f
        if self.dask_client is not None:
            return self.dask_client.submit(fn, arg, pure=False)
        return self.executor.submit(fn, arg)

    def wait_any(self, futures):
        if self.dask_client is not None:
            from distributed import wait as dwait

            return dwait(list(futures), return_when="FIRST_COMPLETED").done
        return wait(list(futures), return_when=FIRST_COMPLETED).done

    def close(self):
        if self.dask_client is not None:
            self.dask_client.close()
            if self.cluster is not None:
                self.cluster.close()
        elif not self.inline:
            self.executor.shutdown(wait=True, cancel_futures=True)


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="pt", disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                smoothing=0.1)


def _row(p: dict, status: str, summary=None, layers=None, error=None, wall_s=None) -> dict:
    return {"key": p["key"], "sweep": p["sweep"], "idx": p["idx"], "status": status, "workload": p["workload"],
            "recipe": p["recipe"], "axes": p["axes"], "summary": summary, "layers": layers, "error": error,
            "version": p["version"], "wall_s": wall_s}


def run_sweep(spec: SweepSpec, store_path, *, workers: int | None = None, dask: str | None = None,
              progress: bool | None = None, retry_errors: bool = False, chunk_points: int | None = None) -> SweepStats:
    """Run every point of `spec` missing from the store at `store_path`.

    workers: local worker processes (default: the machine's cores; 0 runs in this process).
    dask: "local" (a LocalCluster of `workers` processes) or a scheduler address tcp://HOST:PORT.
    retry_errors: recompute points recorded as failed or timed out."""
    from .. import __version__

    t0 = time.perf_counter()
    progress = sys.stderr.isatty() if progress is None else progress
    stats = SweepStats()
    points = spec.points()
    stats.points = len(points)
    resolved = _resolve_all(spec, points, __version__, progress)
    store = Store(store_path)
    try:
        store.register_sweep(spec.name, spec.to_dict(), [(p["key"], p["idx"]) for p in resolved])
        present = store.statuses(p["key"] for p in resolved)
        if retry_errors:
            again = [k for k, s in present.items() if s in ("error", "timeout")]
            store.delete(again)
            present = {k: s for k, s in present.items() if k not in set(again)}
        seen: set[str] = set()
        todo = []
        for p in resolved:
            if p["key"] in present or p["key"] in seen:  # identical points (e.g. repeated random samples): once
                stats.already_done += p["key"] in present
                continue
            seen.add(p["key"])
            todo.append(p)
        skipped = [_row(p, "skipped", error=p["error"]) for p in todo if p["status"] == "skipped"]
        stats.skipped = store.add_points(skipped)
        todo = [p for p in todo if p["status"] != "skipped"]
        if todo:
            pool = _Pool(workers, dask)
            try:
                accuracy = _accuracy_phase(todo, store, pool, progress, stats)
                _cost_phase(todo, accuracy, store, pool, progress, stats, chunk_points)
            finally:
                pool.close()
        final = store.statuses(p["key"] for p in resolved)
        for s in final.values():
            stats.by_status[s] = stats.by_status.get(s, 0) + 1
    finally:
        store.close()
    stats.wall_s = time.perf_counter() - t0
    return stats


def _resolve_all(spec: SweepSpec, points, version: str, progress: bool) -> list[dict]:
    bar = _bar(len(points), "resolving", progress and len(points) >= 5000)
    out = []
    for pt in points:
        out.append(resolve(spec, pt, version))
        bar.update(1)
    bar.close()
    return out


def plan_sweep(spec: SweepSpec, store_path, progress: bool | None = None) -> dict[str, Any]:
    """What running `spec` against the store would do, without running or writing anything."""
    from pathlib import Path

    from .. import __version__

    progress = sys.stderr.isatty() if progress is None else progress
    resolved = _resolve_all(spec, spec.points(), __version__, progress)
    present: dict[str, str] = {}
    acc_done: set[str] = set()
    if Path(store_path).is_file():
        with Store(store_path, create=False) as st:
            present = st.statuses(p["key"] for p in resolved)
            acc_done = {k for k in {p["accuracy_key"] for p in resolved if p.get("accuracy_key")}
                        if st.accuracy(k) is not None}
    unique = {p["key"]: p for p in resolved}
    todo = [p for k, p in unique.items() if k not in present]
    in_store: dict[str, int] = {}
    for s in present.values():
        in_store[s] = in_store.get(s, 0) + 1
    return {"sweep": spec.name, "store": str(store_path), "points": len(resolved), "distinct_points": len(unique),
            "in_store": sum(in_store.values()), **{f"in_store_{k}": v for k, v in sorted(in_store.items())},
            "to_compute": sum(p["status"] != "skipped" for p in todo),
            "to_skip": sum(p["status"] == "skipped" for p in todo),
            "accuracy_measurements_at_least": len({p["accuracy_key"] for p in todo if p.get("accuracy_key")}
                                                  - acc_done),
            "workloads": len(spec.workloads), "recipes": len(spec.recipes), "axes": len(spec.axis_names)}


def _accuracy_phase(todo: list[dict], store: Store, pool: _Pool, progress: bool, stats: SweepStats) -> dict:
    """{point key: accuracy summary, or ("error"/"timeout", message)} for every point needing accuracy."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in todo:
        if p["accuracy_key"]:
            groups[p["accuracy_key"]].append(p)
    result: dict[str, Any] = {}
    if not groups:
        return result

    def settle(group: list[dict], rec: dict) -> list[dict]:
        """Assign `rec` (measured under some pe_array) where it is valid; the points still missing."""
        missing = []
        for p in group:
            if rec.get("pe_independent"):
                result[p["key"]] = rec
                continue
            own = store.accuracy(p["pe_accuracy_key"])
            if own is not None:
                result[p["key"]] = own
            else:
                missing.append(p)
        return missing

    jobs: list[tuple[str, dict, list[dict]]] = []  # (store key, representative task, the points it serves)
    for acc_key, group in groups.items():
        rec = store.accuracy(acc_key)
        if rec is None:
            jobs.append((acc_key, group[0], group))
            continue
        missing = settle(group, rec)
        stats.accuracy_reused += len(group) - len(missing)
        jobs += _pe_jobs(missing)
    bar = _bar(len(jobs), "accuracy", progress and bool(jobs))
    running = {pool.submit(accuracy_job, task): (k, task, grp) for k, task, grp in jobs[: pool.slots * 2]}
    queue = jobs[pool.slots * 2:]
    try:
        while running:
            for f in pool.wait_any(running):
                key, task, group = running.pop(f)
                try:
                    out = f.result()
                except BaseException as e:  # noqa: BLE001 - a worker died: the points fail, the sweep goes on
                    out = {"status": "error", "error": f"worker failed: {type(e).__name__}: {e}"}
                bar.update(1)
                if out["status"] != "ok":
                    for p in group:
                        result[p["key"]] = (out["status"], out["error"])
                    continue
                rec = out["summary"]
                stats.accuracy_measured += 1
                store.add_accuracy(task["pe_accuracy_key"], rec)
                if key == task["accuracy_key"]:
                    store.add_accuracy(key, rec)
                    missing = settle(group, rec)
                    stats.accuracy_reused += len(group) - len(missing) - 1
                    new = _pe_jobs(missing)
                    queue += new
                    bar.total += len(new)
                    bar.refresh()
                else:
                    for p in group:
                        result[p["key"]] = rec
            while queue and len(running) < pool.slots * 2:
                k, task, grp = queue.pop(0)
                running[pool.submit(accuracy_job, task)] = (k, task, grp)
    finally:
        bar.close()
    return result


def _pe_jobs(points: list[dict]) -> list[tuple[str, dict, list[dict]]]:
    by_pe: dict[str, list[dict]] = defaultdict(list)
    for p in points:
        by_pe[p["pe_accuracy_key"]].append(p)
    return [(k, grp[0], grp) for k, grp in by_pe.items()]


def _cost_phase(todo, accuracy, store, pool, progress, stats, chunk_points) -> None:
    ready, failed_rows = [], []
    for p in todo:
        acc = accuracy.get(p["key"]) if p["accuracy_key"] else None
        if isinstance(acc, tuple):
            failed_rows.append(_row(p, acc[0], error=acc[1]))
        else:
            ready.append(p)
    stats.failed += store.add_points(failed_rows)
    if not ready:
        return
    by_key = {p["key"]: p for p in ready}
    # chunks of one workload (its layers hit the worker's cache), a few per worker for balance
    size = chunk_points or max(1, min(64, math.ceil(len(ready) / (pool.slots * 8))))
    by_workload: dict[str, list[dict]] = defaultdict(list)
    for p in ready:
        by_workload[p["workload_ref"]].append(p)
    chunks = [grp[i:i + size] for grp in by_workload.values() for i in range(0, len(grp), size)]
    bar = _bar(len(ready), "points", progress)
    running = {}
    queue = list(chunks)
    try:
        while queue or running:
            while queue and len(running) < pool.slots * 2:
                chunk = queue.pop(0)
                running[pool.submit(cost_job, chunk)] = chunk
            for f in pool.wait_any(running):
                chunk = running.pop(f)
                try:
                    outs = f.result()
                except BaseException as e:  # noqa: BLE001
                    outs = [{"key": p["key"], "status": "error", "error": f"worker failed: {type(e).__name__}: {e}"}
                            for p in chunk]
                rows = []
                for out in outs:
                    p = by_key[out["key"]]
                    if out["status"] != "ok":
                        rows.append(_row(p, out["status"], error=out["error"], wall_s=out.get("wall_s")))
                        stats.failed += 1
                        continue
                    summary = dict(out["summary"])
                    acc = accuracy.get(p["key"])
                    if acc:
                        summary.update({k: v for k, v in acc.items()})
                    rows.append(_row(p, "ok", summary, out["layers"], wall_s=out.get("wall_s")))
                stats.computed += store.add_points(rows)
                bar.update(len(outs))
    finally:
        bar.close()
