"""The memory hierarchy: buffer residency, traffic per operand and level, and DRAM stalls.

Loop order is the mapping's (see ``mapping.py`` and the kernels): per group set, col folds
outer, row folds inner, each fold streaming T operands. That fixes how each operand is used:

| role (indexed by) | ws                | os                 | is                |
|-------------------|-------------------|--------------------|-------------------|
| row x col (stays) | filter            | output (in PEs)    | ifmap             |
| row x stream      | ifmap             | ifmap              | filter            |
| col x stream      | output psums      | filter             | output psums      |

- row x col: each element is used by one fold: read from DRAM once.
- row x stream: swept once per col fold. If it fits its SRAM it is read from DRAM once;
  otherwise half the SRAM double-buffers the stream, the other half pins the operand's
  first bytes, and every later sweep re-reads the rest.
- col x stream, input (os filter): the col fold's slice is reused by all row folds: pinned
  if it fits, else re-read (same rule).
- col x stream, output psums (ws, is): a col fold's psums accumulate over its row folds in
  the accumulator buffer (``memory.accumulator_kib``). What does not fit spills to DRAM
  between row folds: written after each row fold but the last, read before each but the first.
  With q groups packed block-diagonally, a row fold meets only the groups whose K rows it
  holds: the zero blocks are known when the layer is compiled, so it reads and writes only
  their psums, and a group's psums are live (and may spill) only from its first row fold to
  its last (a 3x3 depthwise set of 16 groups on 16 rows: 9 row folds, but each psum lands in
  1 or 2). ``LayerMemory.acc_writes`` counts the psum words landed, an accumulator add each.

Stream tiling (``plan_layer``, native timing): ws and is may also split the streamed dim
(ws: M, is: N) into tiles run one after another, each with the whole fold loop: psums then
fit the accumulator and a tile's slice of the streamed operand may fit its SRAM, at the price
of more folds (fill, drain, preload per fold) and of re-reading the stationary operand when it
does not fit. The planner simulates the untiled loop and tiles whose psums fit (times 1, 2,
4, ...) and keeps the one with the fewest total cycles, so total cycles are a minimum of
functions that each only grow as bandwidth falls.

DRAM sizes are unique bytes at each operand's width (a conv's ifmap is the input tensor, not
its im2col matrix: on-chip window reuse is assumed; halos are ignored). Outputs are
requantized to activation_bits and written once; every layer reads its input from DRAM and
writes its output back (no layer fusion). ``param_bytes`` (bias, requantization pairs,
zero-points; priced by accelsim.cost) arrive with the first row fold of each col fold.

Bandwidth: each fold is cut into steps along its stream (so that layers of few folds still
overlap streaming with compute; the stationary block precedes the fold's first step), and
steps are grouped into tiles of at most half the input SRAMs (double buffering) and about
1/MIN_TILES of the layer's traffic; the first step is a tile of its own, so the exposed fill
is small. A layer that would need more than about MAX_TILES such tiles (a large batch) gets
MAX_TILES larger ones instead: consecutive folds are grouped beyond what the buffers hold.
The stall model is at tile granularity, and grouping averages the traffic over a tile, so
bursts shorter than a tile stop stalling (a stream tile's ifmap slice read during its first
col fold): where the cap binds, stalls are a lower estimate (ResNet-50 on edge-npu-16x16 at
batch 1000: 1.8M stall cycles instead of 31M with buffer-sized tiles, 0.17% of its cycles;
at 2-8 GB/s and batch 100 the totals agree within 0.01%). Fold sequences are kept
compressed (repeated stream tiles, group sets, col folds and middle row folds are stored
once, see ``_Seq``), so a layer's work and memory grow with its tiles, not with its folds or
the batch.

A DMA engine and a DRAM channel run as simpy processes: the DMA issues, in a fixed
order, tile i+1's reads (once tile i-1 has released its buffer) and then tile i-1's output
writes; the channel serves them one at a time at ``dram_bandwidth_gbps``; the array computes
tile i once its reads are in. Layers run one after another (a layer's reads start after the
previous one's writes). Because the order of transfers never depends on timing, stalls can
only grow as bandwidth falls; sub-cycle stalls round down. ``interface_bandwidth: calc`` is
stall-free and reports the bandwidth it would need.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import simpy

from ..errors import AccelsimError
from ..graph.ops import GemmView
from .mapping import LayerMapping, map_layer
from .timing import fold_compute_cycles, native_cycles

KIB = 1024
MIN_TILES = 32  # DRAM timeline resolution per layer (tiles), whatever the buffer sizes
MAX_TILES = 4096  # ... and at most about this many tiles, whatever the traffic
OPERANDS = ("ifmap", "filter", "ofmap", "psum", "params")
BUFFERS = ("ifmap", "filter", "ofmap", "acc")

# role of each operand per dataflow: "S" row x col, "RS" row x stream, "CS" col x stream
ROLES = {
    "weight_stationary": {"filter": "S", "ifmap": "RS", "out": "CS"},
    "output_stationary": {"out": "S", "ifmap": "RS", "filter": "CS"},
    "input_stationary": {"ifmap": "S", "filter": "RS", "out": "CS"},
}

# PE register bits moved per MAC: a stationary operand is read; a moving operand is read and
# written to the neighbour's register; os keeps the psum in place (read and write).
def _reg_bits_per_mac(dataflow: str, wb: int, ab: int, acc: int) -> int:
    if dataflow == "weight_stationary":
        return wb + 2 * ab + 2 * acc
    if dataflow == "output_stationary":
        return 2 * wb + 2 * ab + 2 * acc
    return ab + 2 * wb + 2 * acc


@dataclass(frozen=True)
class OperandBits:
    weight: int          # the B operand: weight_bits, or activation_bits for a matmul of two activations
    activation: int
    accumulator: int


@dataclass
class LayerMemory:
    """One layer's traffic (bytes), tiling and DRAM timing. Plain data."""

    dram_read_bytes: dict[str, float]       # ifmap, filter, psum, params
    dram_write_bytes: dict[str, float]      # ofmap, psum
    sram_read_bytes: dict[str, float]       # ifmap, filter, ofmap, acc
    sram_write_bytes: dict[str, float]
    reg_bits: float
    ifmap_pinned_fraction: float            # of the row x stream / stationary operand kept on chip
    psum_spill_bytes: float                 # written (and as many read back)
    acc_writes: float                       # psum words landed in the accumulator buffer (an add each)
    unique_bytes: dict[str, float]          # ifmap, filter: each element once (reuse = DRAM / unique)
    tiles: int
    compute_cycles: int
    stream_tile: int                        # per-group length of the streamed dim in one pass
    stream_tiles: int                       # passes of the fold loop (1: untiled)
    stall_cycles: int = 0
    avg_dram_gbps: float = 0.0
    peak_dram_gbps: float = 0.0
    # per tile, for the timeline: DRAM bytes read before, written after, compute cycles
    tile_reads: np.ndarray = field(default=None, repr=False)
    tile_writes: np.ndarray = field(default=None, repr=False)
    tile_cycles: np.ndarray = field(default=None, repr=False)

    @property
    def dram_bytes(self) -> float:
        return sum(self.dram_read_bytes.values()) + sum(self.dram_write_bytes.values())

    @property
    def total_cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles


def _reread(size: float, cap: float) -> float:
    """Bytes re-read per later sweep of an operand of ``size`` through an SRAM of ``cap``."""
    if size <= cap:
        return 0.0
    return size - cap / 2


def _empty_totals() -> dict:
    return {"dram_r": dict.fromkeys(("ifmap", "filter", "psum", "params"), 0.0),
            "dram_w": dict.fromkeys(("ofmap", "psum"), 0.0),
            "sram_r": dict.fromkeys(BUFFERS, 0.0), "sram_w": dict.fromkeys(BUFFERS, 0.0),
            "spill": 0.0, "acc_writes": 0.0, "ifmap_kept": 1.0}


def _positions(n: int, explicit: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fold indices along one dim that stand for all ``n`` folds, and how many each stands for:
    the first, one middle fold for all the middle ones (full, and alike in every rule here) and
    the last; or every index if ``explicit`` (packed psums differ per fold)."""
    if explicit or n <= 3:
        return np.arange(n), np.ones(n)
    return np.array([0, 1, n - 1]), np.array([1.0, n - 2, 1.0])


def _psum_words(dataflow: str, M: int, K: int, N: int, q: int, rows: int, cols: int, ii: np.ndarray,
                jj: np.ndarray, cu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ws / is psum words of a set of q packed groups per (row fold ii, col fold jj): written to
    the accumulator in that fold, live after it (carried to the next row fold) and live before it.

    Group g's weights sit in rows [g K, (g+1) K): it meets row folds a_g .. b_g only. The zero
    blocks are known when the layer is compiled, so a row fold reads and writes only the psums
    of the groups it meets (ws: their columns; is: their N outputs of every column); a group's
    psums are live from its first row fold to its last. One group (q = 1): every row fold, every
    psum."""
    g = np.arange(q)
    a, b = g * K // rows, ((g + 1) * K - 1) // rows
    i = ii[:, None]
    touch, after, before = ((a <= i) & (i <= b), (a <= i) & (i < b), (a < i) & (i <= b))
    if dataflow == "weight_stationary":  # psum words of group g in col fold j: M per column
        lo = (jj * cols)[None, :]
        hi = lo + cu[None, :]
        per = M * np.maximum(0, np.minimum((g[:, None] + 1) * N, hi) - np.maximum(g[:, None] * N, lo))
    else:  # input_stationary: every column (an output pixel) holds N outputs of each group
        per = np.broadcast_to(N * cu[None, :], (q, len(jj)))
    return tuple(x.astype(float) @ per for x in (touch, after, before))


def _run_folds(mapping: LayerMapping, ifmap_elems: float, bits: OperandBits, cap: dict,
               stationary_later: float | None, totals: dict, n_real: float, param_bytes: float = 0.0) -> _Seq:
    """One pass of the fold loop as a compressed fold sequence (see ``_Seq``): per fold its
    DRAM reads needed before it starts (the stationary block, parameters), reads needed as it
    streams, writes, and relative length.

    stationary_later: None on the first pass over the stationary operand, else the fraction
    of it re-read (the operand was already loaded by an earlier stream tile). Adds the pass's
    traffic to ``totals``. n_real: filters per group that move through memory (the mapping's N
    may include a constant extra column whose outputs never leave the output stage);
    param_bytes: the layer's per-output-channel parameters, needed by this pass's folds.
    Work and size depend on the set's fold classes, not on the number of folds."""
    df = mapping.dataflow
    roles = ROLES[df]
    M, K, N, G = mapping.M, mapping.K, mapping.N, mapping.groups
    R, C = mapping.array_rows, mapping.array_cols
    wb, ab, acc = bits.weight, bits.activation, bits.accumulator
    # per-group sizes: unique DRAM bytes and GEMM elements
    sizes = {"ifmap": min(ifmap_elems / G, M * K) * ab / 8, "filter": K * n_real * wb / 8}
    elem_bytes = {"ifmap": M * K * ab / 8, "filter": K * n_real * wb / 8}
    d_r, d_w, s_r, s_w = totals["dram_r"], totals["dram_w"], totals["sram_r"], totals["sram_w"]
    items = []
    for n_sets, q in mapping.set_sizes:
        row_dim, col_dim, t = mapping.set_dims(q)
        f1, f2 = math.ceil(row_dim / R), math.ceil(col_dim / C)
        packed = q > 1 and roles["out"] == "CS"
        ii, wi = _positions(f1, packed)
        jj, wj = _positions(f2, packed and df == "weight_stationary")
        I, J = ii[:, None], jj[None, :]            # a grid of representative folds ...
        w = wi[:, None] * wj[None, :]              # ... and how many folds each stands for
        shape = w.shape
        ru = np.minimum(R, row_dim - ii * R).astype(float)
        cu = np.minimum(C, col_dim - jj * C).astype(float)
        r_frac, c_frac = ru[:, None] / row_dim, cu[None, :] / col_dim
        rd, first = np.zeros(shape), np.zeros(shape)
        for op in ("ifmap", "filter"):
            size, role = q * sizes[op], roles[op]
            if role == "S":
                again = 1.0 if stationary_later is None else stationary_later
                part = size * r_frac * c_frac * again
                fetches = 1
                first += part
            elif role == "RS":
                later = _reread(size, cap[op]) / size if size else 0.0
                part = size * r_frac * np.where(J == 0, 1.0, later)
                fetches = f2
                if op == "ifmap" and f2 > 1:
                    totals["ifmap_kept"] = min(totals["ifmap_kept"], 1.0 - later)
            else:  # col x stream input (os filter): a col fold's slice, reused by its row folds
                slice_ = size * c_frac
                part = np.where(I == 0, slice_, np.where(slice_ <= cap[op], 0.0, slice_ - cap[op] / 2))
                fetches = f1
            part = np.broadcast_to(part, shape)
            if role != "S":
                rd += part
            moved = n_sets * float((w * part).sum())
            d_r[op] += moved
            s_w[op] += moved                                  # DRAM fills
            s_r[op] += n_sets * fetches * q * elem_bytes[op]  # fetches into the array
        # parameters (bias, scales) of the set's output channels arrive with the first row fold
        # of the col fold that produces them (ws, os: cols are output channels)
        p_set = param_bytes * q / G
        if df == "input_stationary":
            first[0, 0] += p_set
        else:
            first += np.where(I == 0, p_set * c_frac, 0.0)
        out_bytes = q * M * n_real * ab / 8                  # requantized outputs of the set
        if roles["out"] == "S":  # os: each fold drains its outputs; psums never leave the PEs
            o = np.broadcast_to(out_bytes * r_frac * c_frac, shape)
            spill_r = spill_w = np.zeros(shape)
        else:  # ws / is: a col fold's psums accumulate over its row folds in the accumulator
            o = np.broadcast_to(np.where(I == f1 - 1, out_bytes * c_frac, 0.0), shape)
            words, after, before = _psum_words(df, M, K, N, q, R, C, ii, jj, cu)
            # what stays live between two row folds and does not fit the buffer spills to DRAM:
            # written after the earlier fold, read back before the later
            spill_w = np.maximum(0.0, after * acc / 8 - cap["acc"])
            spill_r = np.maximum(0.0, before * acc / 8 - cap["acc"])
            landed = n_sets * float((w * words).sum())
            totals["acc_writes"] += landed
            # each psum word lands once per row fold that meets it (read-modify-write onto the
            # bias or the old value); the reads: those but the first, and the final read-out
            s_r["acc"] += landed * acc / 8
            s_w["acc"] += landed * acc / 8
        d_r["psum"] += n_sets * float((w * spill_r).sum())
        d_w["psum"] += n_sets * float((w * spill_w).sum())
        totals["spill"] += n_sets * float((w * spill_w).sum())
        d_w["ofmap"] += n_sets * float((w * o).sum())
        s_w["ofmap"] += n_sets * out_bytes    # requantized outputs in, then out to DRAM
        s_r["ofmap"] += n_sets * out_bytes
        # a fold's relative length: its closed-form compute plus its load or drain
        cyc = np.broadcast_to(fold_compute_cycles(df, R, C, ru[:, None], cu[None, :], t) + R, shape)
        leaf = np.stack([first, rd + spill_r, o + spill_w, cyc.astype(float)], axis=-1)
        col_folds = [(_Seq([(leaf[a, j], wi[a]) for a in range(len(ii))]), wj[j]) for j in range(len(jj))]
        items.append((_Seq(col_folds), n_sets))    # col folds outer, row folds inner
    return _Seq(items)


def layer_memory(runs: list[tuple[LayerMapping, int]], ifmap_elems: int, bits: OperandBits,
                 compute_cycles: int, mem, param_bytes: float = 0.0, extra_cycles: int = 0,
                 n_scale: float = 1.0, timeline: bool = True) -> LayerMemory:
    """Traffic and tiles of one layer run as ``runs`` [(mapping of a stream tile, repeats)]
    (stalls: ``simulate_dram``).

    ifmap_elems: the layer's input tensor elements (all groups); mem: the config's ``memory``
    section; compute_cycles: the cycles of all runs on the PE grid (any timing mode), spread
    over the folds in proportion to their own lengths; extra_cycles (e.g. an output-stage
    tail) are added to the last tile; n_scale: the fraction of the mapped filters that are
    real (an extra zero-point column of ones is generated on chip and its window sums stay in
    the output stage: N / (N + 1)); param_bytes are read during the first pass; timeline:
    False leaves the tiles out (traffic and cycles only).
    """
    first = runs[0][0]
    df = first.dataflow
    wb, ab, acc = bits.weight, bits.activation, bits.accumulator
    cap = {"ifmap": mem.ifmap_sram_kib * KIB, "filter": mem.filter_sram_kib * KIB,
           "acc": mem.accumulator_kib * KIB}
    M_layer = sum(m.M * n for m, n in runs) if df == "weight_stationary" else first.M
    # the stationary operand is shared by all stream tiles: re-read unless it fits
    stat = {"weight_stationary": "filter", "input_stationary": "ifmap"}.get(df)
    later = None
    if stat is not None and sum(n for _, n in runs) > 1:
        G, K = first.groups, first.K
        size = G * (K * first.N * n_scale * wb / 8 if stat == "filter"
                     else min(ifmap_elems / G, first.M * K) * ab / 8)
        later = _reread(size, cap[stat]) / size if size else 0.0
    passes = []  # (mapping, repeats, stationary re-read fraction or None on the first pass)
    for i, (m, n) in enumerate(runs):
        if i == 0:
            passes.append((m, 1, None))
            if n > 1:
                passes.append((m, n - 1, later))
        else:
            passes.append((m, n, later))
    totals = _empty_totals()
    items = []
    for i, (m, reps, again) in enumerate(passes):
        sub = _empty_totals()
        items.append((_run_folds(m, ifmap_elems * (m.M / M_layer), bits, cap, again, sub, m.N * n_scale,
                                 param_bytes if i == 0 else 0.0), reps))
        _add_totals(totals, sub, reps)
    # params: read with the folds that need them (above), through the filter SRAM
    totals["dram_r"]["params"] = param_bytes
    totals["sram_w"]["filter"] += param_bytes
    totals["sram_r"]["filter"] += param_bytes
    tr = tw = tc = None
    if timeline:
        tr, tw, tc = _timeline(_Seq(items), _stream_len(first), cap, compute_cycles, extra_cycles)
    macs = sum(m.macs * n for m, n in runs)
    G, K, N = first.groups, first.K, sum(m.N * n for m, n in runs) if df == "input_stationary" else first.N
    stat_elems = {"weight_stationary": K * N * G, "output_stationary": 0, "input_stationary": M_layer * K * G}[df]
    stat_bits = {"weight_stationary": wb, "output_stationary": 0, "input_stationary": ab}[df]
    reg_bits = macs * _reg_bits_per_mac(df, wb, ab, acc) + stat_elems * stat_bits
    if df == "output_stationary":
        reg_bits += M_layer * N * G * acc  # outputs shift out through the PE chain once
    return LayerMemory(
        dram_read_bytes=totals["dram_r"], dram_write_bytes=totals["dram_w"],
        sram_read_bytes=totals["sram_r"], sram_write_bytes=totals["sram_w"], reg_bits=float(reg_bits),
        ifmap_pinned_fraction=float(totals["ifmap_kept"]), psum_spill_bytes=totals["spill"],
        acc_writes=totals["acc_writes"],
        unique_bytes={"ifmap": min(ifmap_elems, M_layer * K * G) * ab / 8, "filter": K * N * n_scale * G * wb / 8},
        tiles=0 if tc is None else len(tc), compute_cycles=int(compute_cycles + extra_cycles),
        stream_tile=max(_stream_len(m) for m, _ in runs), stream_tiles=sum(n for _, n in runs),
        tile_reads=tr, tile_writes=tw, tile_cycles=tc,
    )


def _timeline(seq: _Seq, stream_len: int, cap: dict, compute_cycles: float, extra_cycles: float):
    """Per tile: DRAM bytes read before it, written after it, and its compute cycles."""
    # split each fold into steps along its stream so that a layer of few folds still overlaps
    # its streamed operands with compute: the stationary data precedes the fold's first step
    steps = min(max(1, math.ceil(MIN_TILES / seq.n)), max(1, stream_len))
    if steps > 1:
        seq = _split_steps(seq, steps)
    # a tile's data fits half the input SRAMs (double buffering); at least ~MIN_TILES per layer,
    # at most ~MAX_TILES (a larger layer gets larger tiles)
    traffic = _traffic(seq.tot)
    budget = min((cap["ifmap"] + cap["filter"]) / 2, traffic / MIN_TILES)
    tiles = _tile_seq(seq, max(budget, traffic / MAX_TILES, 1.0))
    tc = tiles[:, 2] * (compute_cycles / seq.tot[3])
    tc[-1] += extra_cycles
    return tiles[:, 0], tiles[:, 1], tc


def _stream_len(m: LayerMapping) -> int:
    """The per-group streamed dim that stream tiling splits: ws M, is N, os (untiled) K."""
    return {"weight_stationary": m.M, "input_stationary": m.N, "output_stationary": m.K}[m.dataflow]


def _add_totals(into: dict, sub: dict, reps: int) -> None:
    for key in ("dram_r", "dram_w", "sram_r", "sram_w"):
        for k, v in sub[key].items():
            into[key][k] += reps * v
    into["spill"] += reps * sub["spill"]
    into["acc_writes"] += reps * sub["acc_writes"]
    into["ifmap_kept"] = min(into["ifmap_kept"], sub["ifmap_kept"])


class _Seq:
    """A fold sequence kept compressed: ``items`` [(leaf or _Seq, repeats)] in execution order;
    a leaf is one fold (or one step of a fold) as [DRAM bytes read before it starts, bytes read
    as it streams, bytes written after it, relative cycles]. Passes, group sets, col folds and
    middle row folds that repeat are stored once, so the size does not grow with the batch."""

    __slots__ = ("items", "n", "tot")

    def __init__(self, items):
        self.items = [(x, int(k)) for x, k in items if k > 0]
        self.tot = np.zeros(4)
        self.n = 0
        for x, k in self.items:
            self.tot += k * _tot(x)
            self.n += k * (1 if isinstance(x, np.ndarray) else x.n)


def _tot(x) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else x.tot


def _map_leaves(x, fn):
    if isinstance(x, np.ndarray):
        return fn(x)
    return _Seq([(_map_leaves(y, fn), k) for y, k in x.items])


def _split_steps(seq: _Seq, steps: int) -> _Seq:
    """Each fold as ``steps`` steps along its stream; the stationary block precedes the first."""
    def split(v):
        step = np.array([0.0, v[1], v[2], v[3]]) / steps
        return _Seq([(step + [v[0], 0, 0, 0], 1), (step, steps - 1)])
    return _map_leaves(seq, split)


def _traffic(v: np.ndarray) -> float:
    return float(v[0] + v[1] + v[2])


def _tile_seq(seq: _Seq, budget: float) -> np.ndarray:
    """Tiles (rows [reads, writes, cycles]) of a compressed fold sequence: the first fold alone,
    then every later fold i in tile floor(B_i / budget), B_i the DRAM bytes of the folds from
    the second to i (exclusive). The result is that of expanding the sequence, but the work
    grows with the number of tiles: a run of repeats is split only where a tile boundary
    falls inside it."""
    keys: list[int] = []
    counts: list[int] = []
    vecs: list[np.ndarray] = []

    def emit(key, k, v):
        keys.append(key)
        counts.append(k)
        vecs.append(v)

    def run(y, k: int, x: float):  # k repeats of y, the first starting x bytes in
        v = _tot(y)
        t = float(v[0] + v[1] + v[2])
        lo, hi = math.floor(x / budget), math.floor((x + k * t) / budget)
        if t <= 0 or lo == hi:
            emit(lo, k, v)
            return
        if isinstance(y, np.ndarray):  # a fold is never split: repeat j is in tile floor((x + j t) / budget)
            prev = 0
            for m in range(lo + 1, hi + 1):
                j = min(k, max(0, math.ceil((m * budget - x) / t)))  # the first repeat at or past m
                if j > prev:
                    emit(math.floor((x + prev * t) / budget), j - prev, v)
                    prev = j
            if prev < k:
                emit(math.floor((x + prev * t) / budget), k - prev, v)
            return
        # repeats a boundary falls inside are walked; those between are whole, in one tile
        prev = 0
        for m in range(lo + 1, hi + 1):
            j = min(k - 1, max(0, math.ceil((m * budget - x) / t) - 1))
            if j < prev:
                continue
            if j > prev:
                emit(math.floor((x + prev * t) / budget), j - prev, v)
            seq_(y, x + j * t, False)
            prev = j + 1
        if prev < k:
            emit(math.floor((x + prev * t) / budget), k - prev, v)

    def seq_(s: _Seq, x: float, first: bool):
        for y, k in s.items:
            t = float(_traffic(_tot(y)))
            if first:  # the sequence's first fold: a tile of its own, before byte 0
                if isinstance(y, np.ndarray):
                    emit(-1, 1, y)
                else:
                    seq_(y, x, True)
                x, k, first = x + t, k - 1, False
            if k:
                run(y, k, x)
                x += k * t

    first = seq
    while not isinstance(first, np.ndarray):
        first = first.items[0][0]
    seq_(seq, -_traffic(first), True)
    keys_a = np.asarray(keys)
    starts = np.flatnonzero(np.r_[True, keys_a[1:] != keys_a[:-1]])
    v = np.add.reduceat(np.asarray(vecs) * np.asarray(counts, dtype=float)[:, None], starts, axis=0)
    return np.column_stack([v[:, 0] + v[:, 1], v[:, 2], v[:, 3]])


# --------------------------------------------------------------------------- stream tiling


def split_runs(gemm: GemmView, pe, tile: int) -> list[tuple[LayerMapping, int]]:
    """The layer as passes over stream tiles of ``tile`` (ws: M, is: N per group): full
    tiles then the rest, each mapped like a layer of its own."""
    dim = "M" if pe.dataflow == "weight_stationary" else "N"
    total = getattr(gemm, dim)
    full, rest = divmod(total, tile)
    runs = [(map_layer(dataclasses.replace(gemm, **{dim: tile}), pe), full)] if full else []
    if rest:
        runs.append((map_layer(dataclasses.replace(gemm, **{dim: rest}), pe), 1))
    return runs


def stream_tile_candidates(gemm: GemmView, pe, acc_bytes: float, acc_bits: int,
                           swept_bytes_per_unit: float = 0.0, swept_cap: float = 0.0, limit: int = 8) -> list[int]:
    """Stream tiles to try (ws and is; os keeps its psums in the PEs and is not tiled):
    untiled; the largest tile whose psums fit the accumulator buffer, times 1, 2, 4, ...;
    and the largest tile whose slice of the swept (row x stream) operand fits its SRAM
    (``swept_bytes_per_unit`` bytes per unit of stream tile, ``swept_cap`` bytes), so that
    the col folds stop re-reading it."""
    if pe.dataflow == "output_stationary":
        return [gemm.K]
    m = map_layer(gemm, pe)
    total = gemm.M if pe.dataflow == "weight_stationary" else gemm.N
    # psum bytes per unit of stream tile in one col fold
    per = m.cols_used * acc_bits / 8 * (m.groups_per_fold if pe.dataflow == "input_stationary" else 1)
    out = [total]
    t = int(acc_bytes // per)
    while 1 <= t < total and len(out) < limit - 1:
        out.append(t)
        t *= 2
    if swept_bytes_per_unit > 0:
        fit = int(swept_cap // swept_bytes_per_unit)
        if 1 <= fit < total and fit not in out:
            out.append(fit)
    return out


def plan_layer(gemm: GemmView, ifmap_elems: int, bits: OperandBits, hw, param_bytes: float = 0.0,
               extra_cycles: int = 0, n_scale: float = 1.0,
               energy_pj: Callable[[LayerMemory], float] | None = None) -> LayerMemory:
    """Choose the stream tiling with the fewest total cycles (compute + DRAM stalls, each
    simulated), ties to the least DRAM traffic; native timing. With ``interface_bandwidth:
    calc`` the untiled schedule (fewest compute cycles) is kept.

    energy_pj: with ``memory.tiling_objective: energy``, the caller's price of a candidate's
    traffic (the cost model's actions x energy table): the tiling of least energy is chosen,
    ties to fewer cycles (stalls cost time, not energy, so only the chosen one is simulated)."""
    pe, mem = hw.pe_array, hw.memory
    best = None
    # the swept operand per unit of stream tile, in one group set: ws the ifmap per output
    # pixel, is the filter per output channel
    q = map_layer(gemm, pe).groups_per_fold
    if pe.dataflow == "weight_stationary":
        unique = min(ifmap_elems, gemm.M * gemm.K * gemm.groups) * bits.activation / 8
        swept, cap = unique / gemm.M * q / gemm.groups, mem.ifmap_sram_kib * KIB
    else:
        swept, cap = gemm.K * n_scale * bits.weight / 8 * q, mem.filter_sram_kib * KIB
    cands = stream_tile_candidates(gemm, pe, mem.accumulator_kib * KIB, bits.accumulator, swept, cap)
    if mem.interface_bandwidth == "calc":
        cands = cands[:1]
    bpc = bytes_per_cycle(mem, hw.clock_mhz)
    plans = []
    for tile in cands:
        runs = [(map_layer(gemm, pe), 1)] if tile == cands[0] else split_runs(gemm, pe, tile)
        compute = sum(n * native_cycles(m, pe.weight_preload) for m, n in runs)
        args = (runs, ifmap_elems, bits, compute, mem, param_bytes, extra_cycles, n_scale)
        lm = _layer_memory_reused(args, timeline=False)
        plans.append((max(lm.compute_cycles, lm.dram_bytes / bpc), args))
    plans.sort(key=lambda p: p[0])
    if energy_pj is not None and mem.tiling_objective == "energy":
        scored = [(energy_pj(_layer_memory_reused(args, timeline=False)), bound, i) for i, (bound, args) in
                  enumerate(plans)]
        _, _, i = min(scored)
        return simulate_dram(_layer_memory_reused(plans[i][1], timeline=True), mem, hw.clock_mhz)
    for bound, args in plans:
        if best is not None and bound >= best.total_cycles + 1:
            break  # cannot beat the best: compute and transfers are both lower bounds
        lm = simulate_dram(_layer_memory_reused(args, timeline=True), mem, hw.clock_mhz)
        if best is None or (lm.total_cycles, lm.dram_bytes) < (best.total_cycles, best.dram_bytes):
            best = lm
    return best


# A layer's traffic and tiles do not depend on the DRAM bandwidth or the clock, only on its
# runs, widths and buffer sizes: a sweep over bandwidth reuses them (bounded, so memory stays
# flat). simulate_dram fills in a copy.
_TRAFFIC_CACHE_ENTRIES = 4096
_traffic_cache: dict = {}


def clear_traffic_cache() -> None:
    _traffic_cache.clear()


def _layer_memory_reused(args: tuple, timeline: bool) -> LayerMemory:
    runs, ifmap_elems, bits, compute, mem, param_bytes, extra_cycles, n_scale = args
    key = (tuple(runs), ifmap_elems, bits, compute, mem.ifmap_sram_kib, mem.filter_sram_kib, mem.accumulator_kib,
           param_bytes, extra_cycles, n_scale, timeline)
    lm = _traffic_cache.get(key)
    if lm is None:
        if len(_traffic_cache) >= _TRAFFIC_CACHE_ENTRIES:
            _traffic_cache.pop(next(iter(_traffic_cache)))
        lm = _traffic_cache[key] = layer_memory(*args, timeline=timeline)
    return copy.copy(lm)


# --------------------------------------------------------------------------- DRAM timeline (simpy)


def bytes_per_cycle(mem, clock_mhz: float) -> float:
    """DRAM bandwidth in bytes per array cycle: GB/s x 1e9 / (MHz x 1e6)."""
    return mem.dram_bandwidth_gbps * 1e3 / clock_mhz


def run_tiles(reads: np.ndarray, writes: np.ndarray, cycles: np.ndarray, bpc: float):
    """One layer's tiles at ``bpc`` bytes per cycle: the schedule of ``run_tiles_simpy`` by its
    recurrence (one DMA issuing in program order, one FIFO channel, a double-buffered array),
    the same floating-point operations in the same order, so the same times; tests hold the
    two equal. A sweep prices thousands of layers: this is ~20x faster than the event loop.

    Returns (end time in cycles, per-tile compute start times, transfers as (start, end, bytes))."""
    n = len(cycles)
    starts = np.zeros(n)
    computed = [0.0] * n
    log: list[tuple[float, float, float]] = []
    free = 0.0      # when the channel has finished everything issued so far
    dma = 0.0       # the DMA's own time: it waits for each read, and for compute two tiles back
    done_compute = 0.0

    def transfer(at: float, nbytes: float) -> float:
        nonlocal free
        t0 = max(at, free)
        if nbytes > 0:
            free = t0 + nbytes / bpc
            log.append((t0, free, nbytes))
            return free
        free = t0
        return t0

    for i in range(n):
        if i >= 2:
            dma = max(dma, computed[i - 2])
        loaded = transfer(dma, reads[i])
        if i >= 2:
            transfer(dma, writes[i - 2])
        dma = loaded
        start = max(loaded, done_compute)
        starts[i] = start
        done_compute = computed[i] = start + cycles[i]
    end = dma
    for i in range(max(0, n - 2), n):
        dma = max(dma, computed[i])
        end = transfer(dma, writes[i])
    return float(end), starts, log


def run_tiles_simpy(reads: np.ndarray, writes: np.ndarray, cycles: np.ndarray, bpc: float):
    """Simulate one layer's tiles at ``bpc`` bytes per cycle as processes (simpy): the reference
    for ``run_tiles``.

    Returns (end time in cycles, per-tile compute start times, transfers as (start, end, bytes)).
    Double buffering: tile i+1's reads may start once tile i-1 has finished computing."""
    env = simpy.Environment()
    queue = simpy.Store(env)
    n = len(cycles)
    loaded = [env.event() for _ in range(n)]
    computed = [env.event() for _ in range(n)]
    starts = np.zeros(n)
    log: list[tuple[float, float, float]] = []
    writes_done = env.event()

    def channel():  # the DRAM channel: one transfer at a time, in the order issued
        while True:
            nbytes, done = yield queue.get()
            if nbytes > 0:
                t0 = env.now
                yield env.timeout(nbytes / bpc)
                log.append((t0, env.now, nbytes))
            done.succeed()

    def transfer(nbytes: float):
        done = env.event()
        queue.put((nbytes, done))
        return done

    def dma():
        last = None
        for i in range(n):
            if i >= 2:
                yield computed[i - 2]
            done = transfer(reads[i])
            if i >= 2:
                last = transfer(writes[i - 2])
            yield done
            loaded[i].succeed()
        for i in range(max(0, n - 2), n):
            yield computed[i]
            last = transfer(writes[i])
        yield last
        writes_done.succeed()

    def array():
        for i in range(n):
            yield loaded[i]
            starts[i] = env.now
            yield env.timeout(cycles[i])
            computed[i].succeed()

    env.process(channel())
    env.process(dma())
    env.process(array())
    env.run(until=writes_done)
    return float(env.now), starts, log


def simulate_dram(lm: LayerMemory, mem, clock_mhz: float) -> LayerMemory:
    """Fill in stall cycles and average / peak DRAM bandwidth of a layer (in place)."""
    r, w, c = lm.tile_reads, lm.tile_writes, lm.tile_cycles
    compute = float(c.sum())
    total_bytes = float(r.sum() + w.sum())
    to_gbps = clock_mhz / 1e3  # bytes per cycle -> GB/s
    if mem.interface_bandwidth == "calc":
        # stall-free: the bandwidth each tile would need to hide the next tile's reads and
        # the previous tile's writes behind its own compute
        nxt = np.r_[r[1:], 0.0]
        prev = np.r_[0.0, w[:-1]]
        need = (nxt + prev) / np.maximum(c, 1e-12)
        lm.stall_cycles = 0
        lm.peak_dram_gbps = float(need.max()) * to_gbps if len(need) else 0.0
        lm.avg_dram_gbps = total_bytes / compute * to_gbps if compute else 0.0
        return lm
    bpc = bytes_per_cycle(mem, clock_mhz)
    if not bpc > 0:
        raise AccelsimError(f"memory.dram_bandwidth_gbps must be positive, found {mem.dram_bandwidth_gbps}")
    end, starts, log = run_tiles(r, w, c, bpc)
    stall = max(0.0, end - compute)
    # floor: a transfer that ends within the cycle its data is needed costs no cycle
    lm.stall_cycles = int(math.floor(stall + 1e-9))
    total = lm.compute_cycles + lm.stall_cycles
    lm.avg_dram_gbps = total_bytes / total * to_gbps if total else 0.0
    # peak over the compute windows (tile start to next start): the fill before the first tile
    # and the final write-back run at full bandwidth by construction and say nothing
    peak = _peak_bytes_per_cycle(log, np.r_[starts, starts[-1] + c[-1]]) * to_gbps
    lm.peak_dram_gbps = max(peak, lm.avg_dram_gbps)
    return lm


def _peak_bytes_per_cycle(log: list, bounds: np.ndarray) -> float:
    """Highest average transfer rate over the windows between consecutive ``bounds``."""
    if not log:
        return 0.0
    # cumulative bytes moved: piecewise linear, transfers never overlap on the one channel
    xs, ys, moved = [], [], 0.0
    for t0, t1, nbytes in log:
        xs += [t0, t1]
        ys += [moved, moved + nbytes]
        moved += nbytes
    b = np.unique(bounds)
    per_window = np.diff(np.interp(b, xs, ys))
    lengths = np.diff(b)
    ok = lengths > 1e-9
    return float((per_window[ok] / lengths[ok]).max()) if ok.any() else 0.0
