"""Mutation testing of accelsim's core numeric modules: one small change at a time, the tests
that own the module run, and a change no test notices is a survivor.

    nice -n 19 .venv/bin/python tools/mutation.py                 # all modules, HEAD, 35 per module
    nice -n 19 .venv/bin/python tools/mutation.py --ref e996a68   # the same on an older commit
    .venv/bin/python tools/mutation.py --list accelsim/cost/energy.py   # mutants only, no tests

Mutants (``ast``): operator swaps (+ -, * /, // /, ** *, < <=, > >=, == !=, and or, min max,
minimum maximum, ceil floor, += -=), a term dropped (``a + b`` -> ``a`` or ``b``, ``a * b`` ->
``a``), a sign dropped (``-x`` -> ``x``, ``not x`` -> ``x``), numeric constants changed
(n -> n + 1, and n -> 1 for other integers, e.g. 8 -> 1). Nothing inside f-strings, ``raise``
statements (messages), docstrings or annotations is mutated. In ``quant/quantizers.py`` lines
that round (``rint``, ``round_half_away``) are left out: the rounding rule is pinned by its own
tests. ``NAMED`` holds the one-line changes issue 15 found unnoticed; they run with every run.

Per module, the mutants are sampled with a fixed seed (``--cap`` per module, ``--seed``), so a
run is reproducible and fits a time budget; each runs only the test files mapped to its module
(``TESTS``) with ``-x -q`` and a per-mutant timeout (a timeout counts as killed).

Where: by default the committed tree of ``--ref`` is extracted (``git archive``) into a fresh
temporary directory per worker, and the mutants are applied there, with ``PYTHONPATH`` pointing
at it: the working tree is never touched. ``--in-place`` mutates the working tree instead; then
the original text is kept in ``<module>.mutation-backup`` while a mutant is applied, restored
in ``finally``, and any backup found at start (an interrupted run) is restored first.

Output: a table per module on stdout and, with ``--json FILE``, every mutant and its outcome.
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: module -> test files that own it (run in this order; -x stops at the first failure)
TESTS: dict[str, list[str]] = {
    "accelsim/sim/timing.py": ["tests/test_timing.py", "tests/test_hand_counts.py", "tests/test_overheads.py",
                               "tests/test_scalesim_mode.py"],
    "accelsim/sim/memory.py": ["tests/test_hand_counts.py", "tests/test_memory.py", "tests/test_overheads.py",
                               "tests/test_cost_result.py"],
    "accelsim/cost/energy.py": ["tests/test_hand_counts.py", "tests/test_energy.py", "tests/test_overheads.py",
                                "tests/test_cost_result.py"],
    "accelsim/cost/actions.py": ["tests/test_hand_counts.py", "tests/test_overheads.py", "tests/test_cost_result.py"],
    "accelsim/cost/overheads.py": ["tests/test_hand_counts.py", "tests/test_overheads.py",
                                   "tests/test_cost_result.py"],
    "accelsim/quant/quantizers.py": ["tests/test_quantizer_ranges.py", "tests/test_quantizers.py",
                                     "tests/test_recipes.py", "tests/test_power_search.py",
                                     "tests/test_power_quantizers.py"],
    "accelsim/quant/rounding.py": ["tests/test_execute.py::test_rounding_ties_go_away_from_zero",
                                   "tests/test_execute.py::test_quantize_and_fake_quant_ties",
                                   "tests/test_execute.py::test_rounding_shift_edges",
                                   "tests/test_quantizers.py"],
    "accelsim/sim/execute.py": ["tests/test_execute.py", "tests/test_power_execute.py"],
    "accelsim/sim/program.py": ["tests/test_execute.py", "tests/test_power_execute.py"],
    "accelsim/quant/equalize.py": ["tests/test_equalize_pair.py", "tests/test_transforms.py",
                                   "tests/test_aimet_reference.py"],
}
#: (module, substring): lines of the module containing it are not mutated
SKIP_LINES = [("accelsim/quant/quantizers.py", "rint")]  # round_half_away's ties are pinned now (test_execute)
#: The one-line changes of issue 15 that the suite once missed: always run (--named), by text.
NAMED = [
    ("accelsim/cost/energy.py", '"ifmap_sram": [("ifmap_sram_bytes", "ifmap_sram_pj_per_bit", 8.0)]',
     '"ifmap_sram": [("ifmap_sram_bytes", "ifmap_sram_pj_per_bit", 64.0)]', "ifmap SRAM energy multiplier x8"),
    ("accelsim/cost/energy.py", 'out["ofmap_sram_pj_per_bit"] = p.sram_bit(ofmap_kib)',
     'out["ofmap_sram_pj_per_bit"] = p.sram_bit(ifmap_kib)', "ofmap SRAM priced at the ifmap size"),
    ("accelsim/cost/energy.py", 'out["zp_mult_pj"] = p.mult(wb, acc)', 'out["zp_mult_pj"] = p.mult(ab, acc)',
     "zero-point multiply at the activation width"),
    ("accelsim/sim/memory.py", "return wb + 2 * ab + 2 * acc", "return (wb + 2 * ab + 2 * acc) // 2",
     "ws PE register bits per MAC halved"),
    ("accelsim/sim/memory.py", 's_r["ofmap"] += n_sets * out_bytes', 's_r["ofmap"] += 2 * n_sets * out_bytes',
     "ofmap SRAM reads doubled"),
    ("accelsim/quant/equalize.py", "s = np.sqrt(_safe_ratio(_out_range(a), _in_range(b)))",
     "s = _safe_ratio(_out_range(a), _in_range(b)) ** 0.4", "pair scale (r_A/r_B)^0.4 instead of ^0.5"),
]

BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
              ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
              ast.LShift: ast.RShift, ast.RShift: ast.LShift, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd}
CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
NAME_SWAP = {"min": "max", "max": "min", "minimum": "maximum", "maximum": "minimum", "ceil": "floor",
             "floor": "ceil", "any": "all", "all": "any"}


@dataclass
class Mutant:
    module: str
    line: int
    kind: str
    before: str
    after: str
    span: tuple[int, int, int, int]       # lineno, col, end_lineno, end_col (col in UTF-8 bytes)
    stmt: bool = False                    # a statement (no parentheses around the replacement)
    status: str = "pending"               # killed | survived | timeout | skipped
    seconds: float = 0.0
    failed: str = ""                      # the first failing test, when killed


# ----------------------------------------------------------------------------- generating mutants


def _protected_spans(tree: ast.AST) -> list[tuple[int, int]]:
    """Line ranges not to mutate: raise statements, docstrings, annotations, f-strings."""
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Raise, ast.JoinedStr)):
            spans.append((node.lineno, node.end_lineno))
        if isinstance(node, (ast.AnnAssign, ast.arg)) and node.annotation is not None:
            spans.append((node.annotation.lineno, node.annotation.end_lineno))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            spans.append((node.returns.lineno, node.returns.end_lineno))
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                spans.append((body[0].lineno, body[0].end_lineno))
    return spans


def _variants(node: ast.AST) -> list[tuple[str, ast.AST]]:
    """(kind, replacement node) for one node."""
    out = []
    if isinstance(node, ast.BinOp):
        swap = BINOP_SWAP.get(type(node.op))
        if swap:
            out.append((f"{type(node.op).__name__}->{swap.__name__}", ast.BinOp(node.left, swap(), node.right)))
        if isinstance(node.op, (ast.Add, ast.Sub)):
            out.append(("drop right term", node.left))
            out.append(("drop left term", node.right if isinstance(node.op, ast.Add)
                        else ast.UnaryOp(ast.USub(), node.right)))
        elif isinstance(node.op, (ast.Mult, ast.Div)):
            out.append(("drop right factor", node.left))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            swap = CMP_SWAP.get(type(op))
            if swap:
                ops = list(node.ops)
                ops[i] = swap()
                out.append((f"{type(op).__name__}->{swap.__name__}", ast.Compare(node.left, ops, node.comparators)))
    elif isinstance(node, ast.BoolOp):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        out.append((f"{type(node.op).__name__}->{type(other).__name__}", ast.BoolOp(other, node.values)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        out.append((f"drop {type(node.op).__name__}", node.operand))
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        v = node.value
        out.append(("const n->n+1", ast.Constant(v + 1)))
        if type(v) is int and v not in (0, 1, 2):
            out.append(("const n->1", ast.Constant(1)))
        elif type(v) is float and v not in (0.0, 1.0):
            out.append(("const x->2x", ast.Constant(v * 2)))
    elif isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Name) and f.id in NAME_SWAP:
            out.append((f"{f.id}->{NAME_SWAP[f.id]}", ast.Call(ast.Name(NAME_SWAP[f.id], ast.Load()), node.args,
                                                             node.keywords)))
        elif isinstance(f, ast.Attribute) and f.attr in NAME_SWAP:
            g = ast.Attribute(f.value, NAME_SWAP[f.attr], ast.Load())
            out.append((f"{f.attr}->{NAME_SWAP[f.attr]}", ast.Call(g, node.args, node.keywords)))
    elif isinstance(node, ast.AugAssign):
        swap = BINOP_SWAP.get(type(node.op))
        if swap and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            out.append((f"{type(node.op).__name__}= -> {swap.__name__}=", ast.AugAssign(node.target, swap(), node.value)))
    return out


def _replace(src: bytes, span, text: str) -> bytes:
    lines = src.splitlines(keepends=True)
    l0, c0, l1, c1 = span
    head = b"".join(lines[:l0 - 1]) + lines[l0 - 1][:c0]
    tail = lines[l1 - 1][c1:] + b"".join(lines[l1:])
    return head + text.encode() + tail


def generate(module: str, root: Path = REPO) -> tuple[bytes, list[Mutant]]:
    src = (root / module).read_bytes()
    tree = ast.parse(src)
    protected = _protected_spans(tree)
    text_lines = src.decode().splitlines()
    skip = [s for m, s in SKIP_LINES if m == module]
    original_dump = ast.dump(tree)
    mutants = []
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or isinstance(node, ast.expr_context):
            continue
        if any(a <= node.lineno <= b or a <= node.end_lineno <= b for a, b in protected):
            continue
        if any(s in text_lines[i - 1] for s in skip for i in range(node.lineno, node.end_lineno + 1)):
            continue
        span = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
        before = ast.get_source_segment(src.decode(), node) or ast.unparse(node)
        for kind, new in _variants(node):
            new = copy.deepcopy(new)
            ast.copy_location(new, node)
            after = ast.unparse(new)
            is_stmt = isinstance(node, ast.stmt)
            mutated = _replace(src, span, after if is_stmt else f"({after})")
            try:
                mtree = ast.parse(mutated)
                compile(mtree, module, "exec")
            except SyntaxError:
                continue
            if ast.dump(mtree) == original_dump:
                continue
            mutants.append(Mutant(module, node.lineno, kind, " ".join(before.split())[:120], after, span,
                                  is_stmt))
    # one mutant per distinct result (e.g. "drop right factor" of a*1 equals the constant change)
    seen, unique = set(), []
    for m in mutants:
        key = mutated_text(src, m)
        if key not in seen:
            seen.add(key)
            unique.append(m)
    return src, unique


def mutated_text(src: bytes, m: Mutant) -> bytes:
    """The module's text with mutant ``m`` applied (an expression goes in parentheses)."""
    return _replace(src, m.span, m.after if m.stmt else f"({m.after})")


# ----------------------------------------------------------------------------- running them


class Sandbox:
    """A copy of the repository at ``ref`` (or the working tree itself with in_place)."""

    def __init__(self, ref: str | None, in_place: bool):
        self.in_place = in_place
        if in_place:
            self.root = REPO
            self._tmp = None
        else:
            self._tmp = tempfile.mkdtemp(prefix="accelsim-mutation-")
            self.root = Path(self._tmp)
            archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(self.root)], input=archive, check=True)

    def backup(self, module: str) -> Path:
        return self.root / (module + ".mutation-backup")

    def restore_leftovers(self) -> None:
        for module in TESTS:
            b = self.backup(module)
            if b.exists():
                print(f"restoring {module} from {b.name} (an earlier run was interrupted)", file=sys.stderr)
                shutil.copyfile(b, self.root / module)
                b.unlink()

    def close(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def pytest(self, tests: list[str], timeout: float) -> tuple[str, float, str]:
        env = dict(os.environ, PYTHONPATH=str(self.root), PYTHONDONTWRITEBYTECODE="1",
                   NUMBA_CACHE_DIR=str(self.root / ".numba-cache"))
        # an older ref may lack newer tests (a node id "file::test" counts by its file)
        tests = [t for t in tests if (self.root / t.split("::")[0]).is_file()]
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header",
               "-o", "addopts=-m 'not slow'", *tests]
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.monotonic() - t0, ""
        dt = time.monotonic() - t0
        if p.returncode == 0:
            return "survived", dt, ""
        failed = next((ln.split(" ")[1] for ln in p.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))), "")
        return "killed", dt, failed

    def run_mutant(self, m: Mutant, src: bytes, text: bytes, timeout: float) -> None:
        path, backup = self.root / m.module, self.backup(m.module)
        shutil.copyfile(path, backup)          # the original, on disk, before the file changes
        try:
            path.write_bytes(text)
            m.status, m.seconds, m.failed = self.pytest(TESTS[m.module], timeout)
        finally:
            path.write_bytes(src)
            backup.unlink()


def run(modules: list[str], ref: str, cap: int, seed: int, jobs: int, timeout: float, in_place: bool,
        log=print, named: bool | str = True) -> list[Mutant]:
    boxes = [Sandbox(ref, in_place) for _ in range(1 if in_place else jobs)]
    try:
        for b in boxes:
            b.restore_leftovers()
        root = boxes[0].root
        plan: list[tuple[Mutant, bytes, bytes]] = []
        if named:
            for module, old, new, what in NAMED:
                if module not in modules:
                    continue
                src = (root / module).read_bytes()
                if src.count(old.encode()) != 1:
                    log(f"named mutant '{what}': its line is not in {module} at this ref; left out")
                    continue
                line = src[:src.index(old.encode())].count(b"\n") + 1
                m = Mutant(module, line, f"issue 15: {what}", old, new, (line, 0, line, 0))
                plan.append((m, src, src.replace(old.encode(), new.encode())))
            if named == "only":
                modules = list(dict.fromkeys(m.module for m, _, _ in plan))
        for module in (modules if named != "only" else []):
            src, mutants = generate(module, root)
            random.Random(f"{seed}:{module}").shuffle(mutants)
            for m in mutants[:cap]:
                plan.append((m, src, mutated_text(src, m)))
            log(f"{module}: {len(mutants)} mutants, {min(cap, len(mutants))} sampled")
        # the unmutated tests must pass first
        for module in modules:
            status, dt, failed = boxes[0].pytest(TESTS[module], timeout * 3)
            if status != "survived":
                raise SystemExit(f"the tests of {module} do not pass unmutated ({status} {failed}); fix that first")
            log(f"baseline {module}: tests pass in {dt:.1f} s")
        free = list(boxes)

        def work(item):
            m, src, text = item
            box = free.pop()
            try:
                box.run_mutant(m, src, text, timeout)
            finally:
                free.append(box)
            log(f"{m.status:8s} {m.seconds:5.1f}s {m.module}:{m.line} {m.kind}: {m.before} -> {_short(m.after)}")
            return m

        from accelsim.progress import track

        if in_place or jobs == 1:
            return [work(item) for item in track(plan, "mutants", unit="mutant")]
        with ThreadPoolExecutor(jobs) as ex:
            return list(track(ex.map(work, plan), "mutants", unit="mutant", total=len(plan)))
    finally:
        for b in boxes:
            b.close()


def _short(text: str) -> str:
    return " ".join(text.split())[:120]


def summary(results: list[Mutant]) -> str:
    """Scores of the sampled mutants per module (the named ones on a line of their own)."""
    lines = ["| module | mutants | killed | survived | score |", "|---|---:|---:|---:|---:|"]
    named = [m for m in results if m.kind.startswith("issue 15")]
    results = [m for m in results if not m.kind.startswith("issue 15")]
    for m in named:
        lines.append(f"| issue 15: {m.kind[10:]} | 1 | {int(m.status != 'survived')} | {int(m.status == 'survived')} | |")
    if not results:
        return "\n".join(lines)
    mods = list(dict.fromkeys(m.module for m in results))
    for mod in mods + ["all"]:
        rs = [m for m in results if mod in ("all", m.module)]
        killed = sum(m.status in ("killed", "timeout") for m in rs)
        name = f"`{mod}`" if mod != "all" else "**all**"
        lines.append(f"| {name} | {len(rs)} | {killed} | {len(rs) - killed} | {killed / len(rs):.0%} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="modules (default: all in TESTS)")
    ap.add_argument("--ref", default="HEAD", help="git commit to test (default HEAD)")
    ap.add_argument("--cap", type=int, default=35, help="mutants sampled per module (default 35)")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--jobs", type=int, default=1, help="sandboxes run side by side (default 1)")
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds per mutant (default 90)")
    ap.add_argument("--in-place", action="store_true", help="mutate the working tree (see the docstring)")
    ap.add_argument("--list", action="store_true", help="print the sampled mutants and exit")
    ap.add_argument("--named", choices=("with", "without", "only"), default="with",
                    help="the issue-15 mutants (NAMED): with the sampled ones (default), without, or only them")
    ap.add_argument("--json", type=Path, help="write every mutant and its outcome here")
    a = ap.parse_args(argv)
    modules = a.modules or list(TESTS)
    for m in modules:
        if m not in TESTS:
            ap.error(f"{m}: not a configured module ({', '.join(TESTS)})")
    if a.list:
        for module in modules:
            _, mutants = generate(module)
            random.Random(f"{a.seed}:{module}").shuffle(mutants)
            print(f"# {module}: {len(mutants)} mutants")
            for m in mutants[:a.cap]:
                print(f"{m.line:4d} {m.kind}: {m.before} -> {_short(m.after)}")
        return 0
    # a kill runs the finally clauses: files restored, sandboxes removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    named = {"with": True, "without": False, "only": "only"}[a.named]
    results = run(modules, a.ref, a.cap, a.seed, a.jobs, a.timeout, a.in_place, log=lambda s: print(s, flush=True),
                  named=named)
    print(summary(results))
    print(f"wall time {time.monotonic() - t0:.0f} s")
    if a.json:
        a.json.write_text(json.dumps([asdict(m) for m in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
