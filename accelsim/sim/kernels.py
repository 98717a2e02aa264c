"""Cycle-stepped systolic-array kernels (numba): the ground truth for outputs and cycles.

Every PE has registers; each loop iteration is one clock. Operands enter at the array edge
with the systolic skew and move one PE per cycle; each PE multiplies int64 operands and adds
into its partial sum at accumulator width (wrap or saturate); partial sums reach the
accumulators at the bottom edge. Registers are double-buffered in the simulation (old/new)
so that every PE reads its neighbours' values from the previous cycle.

Two kernels cover the three dataflows:
- `_stationary_kernel` (ws, and is with the operands' roles swapped): the stationary operand
  shifts into a shadow register chain from the top (R cycles), is swapped into the PEs, the
  other operand streams in from the left, partial sums move down and leave at the bottom
  into an accumulator buffer that also sums the K folds.
- `_os_kernel`: both operands stream (left and top), each PE accumulates its own output; at
  the end of a fold the outputs move into a shadow chain and shift out of the bottom (R cycles).

Valid bits travel with the data (ws/is: with row 0's operand and down each column with the
psum, an R-stage delay line; os: along the last used row and column to the corner PE), so a
fold ends when its last result is observed, not after a precomputed number of cycles. Folds
do not overlap: the next fold's operands enter once the array is empty. Slow by design: R*C
register updates per cycle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..errors import AccelsimError
from ..graph.ops import GemmView
from .accumulator import accumulate, accumulator_range
from .mapping import dataflow_name, groups_per_fold

# --------------------------------------------------------------------------- numba kernels


@njit(cache=True, nogil=True, inline="always")
def _acc(x, lo, hi, saturate):
    """One add's result at accumulator width; returns (value, 1 if it overflowed)."""
    if x > hi or x < lo:
        if saturate:
            return (hi if x > hi else lo), 1
        return ((x - lo) & (hi - lo)) + lo, 1
    return x, 0


@njit(cache=True, nogil=True)
def _pe_rows_ws(a_old, a_new, p_old, p_new, w, R, C, lo, hi, saturate):
    """One clock of the ws/is MAC grid; returns the number of overflowing adds."""
    ovf = 0
    for r in range(R):
        for c in range(C):
            ain = a_old[r, c]
            x, o = _acc(p_old[r, c] + ain * w[r, c], lo, hi, saturate)
            ovf += o
            p_new[r + 1, c] = x
            a_new[r, c + 1] = ain
    return ovf


@njit(cache=True, nogil=True)
def _stationary_kernel(S, W, ts, ks, ns, R, C, double_buffered, lo, hi, saturate, out):
    """Stationary W[s] (ks[s] x ns[s]) on rows x cols, S[s] (ts[s] x ks[s]) streaming from the
    left; out[s] (ts[s] x ns[s]) accumulates. Sets s run one after another; per set, col folds
    outer, row (K) folds inner. Returns (cycles, overflow events, PE updates)."""
    nsets = S.shape[0]
    nf = 0
    for s in range(nsets):
        nf += ((ns[s] + C - 1) // C) * ((ks[s] + R - 1) // R)
    f_s = np.empty(nf, np.int64)
    f_k0 = np.empty(nf, np.int64)
    f_n0 = np.empty(nf, np.int64)
    i = 0
    for s in range(nsets):
        for n0 in range(0, ns[s], C):
            for k0 in range(0, ks[s], R):
                f_s[i] = s
                f_k0[i] = k0
                f_n0[i] = n0
                i += 1

    w = np.zeros((R, C), np.int64)          # active stationary registers
    sh = np.zeros((R, C), np.int64)         # shadow chain the next fold shifts into
    a_old = np.zeros((R, C + 1), np.int64)  # column 0: the left-edge input of this cycle
    a_new = np.zeros((R, C + 1), np.int64)
    p_old = np.zeros((R + 1, C), np.int64)  # row 0: zero into the top; row r+1: PE r's psum
    p_new = np.zeros((R + 1, C), np.int64)
    av_old = np.zeros(C + 1, np.int8)       # valid bit of row 0's operand (starts a psum)
    av_new = np.zeros(C + 1, np.int8)
    pv_ring = np.zeros((C, R), np.int8)     # valid bit travelling down with each psum
    next_m = np.zeros(C, np.int64)          # bottom collectors: next output row per column

    cycles = 0
    ovf = 0
    pe_updates = 0
    load_f = 0          # next fold to shift into the shadow
    load_step = 0
    shadow_full = False
    computing = False
    done = 0
    cf = -1
    t = 0
    collected = 0
    s = k0 = n0 = ru = cu = T = 0
    while done < nf:
        # ---- shadow load: one row per cycle, last row first (serial: only while idle)
        if load_f < nf and not shadow_full and (double_buffered or not computing):
            ls = f_s[load_f]
            lk0 = f_k0[load_f]
            ln0 = f_n0[load_f]
            lru = min(R, ks[ls] - lk0)
            lcu = min(C, ns[ls] - ln0)
            for r in range(R - 1, 0, -1):
                for c in range(C):
                    sh[r, c] = sh[r - 1, c]
            row = R - 1 - load_step
            for c in range(C):
                sh[0, c] = W[ls, lk0 + row, ln0 + c] if (row < lru and c < lcu) else 0
            load_step += 1
            if load_step == R:
                load_step = 0
                shadow_full = True
                load_f += 1
        # ---- compute: one clock of the grid
        if computing:
            for r in range(R):
                m = t - r
                a_old[r, 0] = S[s, m, k0 + r] if (r < ru and m >= 0 and m < T) else 0
            av_old[0] = 1 if t < T else 0
            ovf += _pe_rows_ws(a_old, a_new, p_old, p_new, w, R, C, lo, hi, saturate)
            a_old, a_new = a_new, a_old
            p_old, p_new = p_new, p_old
            # valid bits: row 0's operand moves right; a psum's bit travels down with it, an
            # R-stage delay line per column (kept as a ring buffer: same timing, O(C) per clock)
            for c in range(C):
                pv_ring[c, t % R] = av_old[c]
                av_new[c + 1] = av_old[c]
            av_old, av_new = av_new, av_old
            pe_updates += R * C
            # bottom edge: valid psums enter the accumulator buffer (sums K folds)
            for c in range(cu):
                if pv_ring[c, (t + 1) % R]:
                    m = next_m[c]
                    v, o = _acc(out[s, m, n0 + c] + p_old[R, c], lo, hi, saturate)
                    out[s, m, n0 + c] = v
                    ovf += o
                    next_m[c] = m + 1
                    collected += 1
            t += 1
            if collected == T * cu:
                computing = False
                done += 1
        cycles += 1
        # ---- end of cycle: an idle grid takes the loaded shadow and starts that fold
        if not computing and shadow_full and done < nf:
            for r in range(R):
                for c in range(C):
                    w[r, c] = sh[r, c]
            shadow_full = False
            cf = load_f - 1
            s = f_s[cf]
            k0 = f_k0[cf]
            n0 = f_n0[cf]
            ru = min(R, ks[s] - k0)
            cu = min(C, ns[s] - n0)
            T = ts[s]
            a_old[:] = 0
            a_new[:] = 0
            p_old[:] = 0
            p_new[:] = 0
            av_old[:] = 0
            av_new[:] = 0
            pv_ring[:] = 0
            next_m[:] = 0
            t = 0
            collected = 0
            computing = True
    return cycles, ovf, pe_updates


@njit(cache=True, nogil=True)
def _pe_rows_os(a_old, a_new, b_old, b_new, acc, R, C, lo, hi, saturate):
    """One clock of the os MAC grid; returns the number of overflowing adds."""
    ovf = 0
    for r in range(R):
        for c in range(C):
            ain = a_old[r, c]
            bin_ = b_old[r, c]
            x, o = _acc(acc[r, c] + ain * bin_, lo, hi, saturate)
            ovf += o
            acc[r, c] = x
            a_new[r, c + 1] = ain
            b_new[r + 1, c] = bin_
    return ovf


@njit(cache=True, nogil=True)
def _os_kernel(A, B, ks, ns, R, C, double_buffered, lo, hi, saturate, out):
    """Output-stationary: A[s] (M x ks[s]) streams from the left, B[s] (ks[s] x ns[s]) from the
    top; each PE accumulates one output; outputs drain down a shadow chain into out[s].
    Returns (cycles, overflow events, PE updates)."""
    nsets = A.shape[0]
    M = A.shape[1]
    nf = 0
    for s in range(nsets):
        nf += ((ns[s] + C - 1) // C) * ((M + R - 1) // R)
    f_s = np.empty(nf, np.int64)
    f_m0 = np.empty(nf, np.int64)
    f_n0 = np.empty(nf, np.int64)
    i = 0
    for s in range(nsets):
        for n0 in range(0, ns[s], C):
            for m0 in range(0, M, R):
                f_s[i] = s
                f_m0[i] = m0
                f_n0[i] = n0
                i += 1

    a_old = np.zeros((R, C + 1), np.int64)
    a_new = np.zeros((R, C + 1), np.int64)
    b_old = np.zeros((R + 1, C), np.int64)
    b_new = np.zeros((R + 1, C), np.int64)
    # valid bits of the last used row's and column's operands: the fold is over when the
    # corner PE(ru-1, cu-1), the last to see its operands meet, has done its T valid MACs
    av_old = np.zeros(C + 1, np.int8)
    av_new = np.zeros(C + 1, np.int8)
    bv_old = np.zeros(R + 1, np.int8)
    bv_new = np.zeros(R + 1, np.int8)
    acc = np.zeros((R, C), np.int64)
    chain = np.zeros((R, C), np.int64)       # shadow output registers, shifting down
    chain_v = np.zeros((R, C), np.int8)
    chain_left = 0                           # valid outputs still in the chain
    chain_shift = 0
    cs = cm0 = cn0 = 0                       # fold whose outputs are in the chain

    cycles = 0
    ovf = 0
    pe_updates = 0
    started = 0
    computing = False
    compute_done = False
    t = 0
    macs_left = 0
    s = m0 = n0 = ru = cu = T = 0

    while started < nf or computing or compute_done or chain_left > 0:
        if not computing and not compute_done and started < nf and (double_buffered or chain_left == 0):
            s = f_s[started]
            m0 = f_m0[started]
            n0 = f_n0[started]
            ru = min(R, M - m0)
            cu = min(C, ns[s] - n0)
            T = ks[s]
            a_old[:] = 0
            b_old[:] = 0
            av_old[:] = 0
            bv_old[:] = 0
            t = 0
            macs_left = T
            computing = True
            started += 1
        # ---- compute: skewed operands at the edges, one clock of the grid
        if computing:
            for r in range(R):
                k = t - r
                a_old[r, 0] = A[s, m0 + r, k] if (r < ru and k >= 0 and k < T) else 0
            for c in range(C):
                k = t - c
                b_old[0, c] = B[s, k, n0 + c] if (c < cu and k >= 0 and k < T) else 0
            k = t - (ru - 1)
            av_old[0] = 1 if (k >= 0 and k < T) else 0
            k = t - (cu - 1)
            bv_old[0] = 1 if (k >= 0 and k < T) else 0
            ovf += _pe_rows_os(a_old, a_new, b_old, b_new, acc, R, C, lo, hi, saturate)
            macs_left -= av_old[cu - 1] & bv_old[ru - 1]
            for c in range(C):
                av_new[c + 1] = av_old[c]
            for r in range(R):
                bv_new[r + 1] = bv_old[r]
            a_old, a_new = a_new, a_old
            b_old, b_new = b_new, b_old
            av_old, av_new = av_new, av_old
            bv_old, bv_new = bv_new, bv_old
            pe_updates += R * C
            t += 1
            if macs_left == 0:
                computing = False
                compute_done = True
        # ---- drain: the bottom row of the chain leaves the array, the rest shift down
        if chain_left > 0:
            row = R - 1 - chain_shift
            for c in range(C):
                if chain_v[R - 1, c]:
                    out[cs, cm0 + row, cn0 + c] = chain[R - 1, c]
                    chain_left -= 1
            for r in range(R - 1, 0, -1):
                for c in range(C):
                    chain[r, c] = chain[r - 1, c]
                    chain_v[r, c] = chain_v[r - 1, c]
            for c in range(C):
                chain[0, c] = 0
                chain_v[0, c] = 0
            chain_shift += 1
        cycles += 1
        # ---- end of cycle: finished outputs move into the empty chain
        if compute_done and chain_left == 0:
            for r in range(R):
                for c in range(C):
                    chain[r, c] = acc[r, c]
                    chain_v[r, c] = 1 if (r < ru and c < cu) else 0
                    acc[r, c] = 0
            chain_left = ru * cu
            chain_shift = 0
            cs = s
            cm0 = m0
            cn0 = n0
            compute_done = False
    return cycles, ovf, pe_updates


# --------------------------------------------------------------------------- Python front end


@dataclass
class KernelResult:
    out: np.ndarray         # int64: (M, N) for a plain GEMM, (groups, M, N) for a grouped one
    cycles: int
    overflow_events: int    # adds whose exact result left the accumulator range
    pe_updates: int         # PE-cycles stepped (rows x cols per compute cycle)


def _check_operands(A: np.ndarray, B: np.ndarray, acc_bits: int) -> None:
    # psum (< 2^61) + product (< 2^62) must not overflow int64 before the accumulator op
    if not 1 <= acc_bits <= 62:
        raise AccelsimError(f"accumulator_bits must be in 1..62 for the int64 kernels, found {acc_bits}")
    bound = int(np.abs(A).max(initial=0)) * int(np.abs(B).max(initial=0))
    if bound >= 1 << 62:
        raise AccelsimError("operands too large: |a*b| must stay below 2^62 in int64 arithmetic")


def run_grouped_gemm(A: np.ndarray, B: np.ndarray, rows: int, cols: int, dataflow: str,
                     weight_preload: str = "serial", acc_bits: int = 32, overflow: str = "wrap",
                     group_packing: str = "packed", acc_init: np.ndarray | None = None) -> KernelResult:
    """Step a grouped GEMM, A (G, M, K) @ B (G, K, N), through the array, packing groups per
    the policy as the mapping does. Returns outputs (G, M, N) and exact cycles.

    `acc_init` (G, M, N), e.g. the bias: ws / is start the accumulator buffer from it (fold
    sums are added to it); os adds it to each output as it drains, at accumulator width (its
    overflow events are counted)."""
    dataflow = dataflow_name(dataflow)
    A = np.ascontiguousarray(A, dtype=np.int64)
    B = np.ascontiguousarray(B, dtype=np.int64)
    if A.ndim != 3 or B.ndim != 3 or A.shape[0] != B.shape[0] or A.shape[2] != B.shape[1]:
        raise AccelsimError(f"operands do not multiply as groups: A {A.shape}, B {B.shape}")
    if weight_preload not in ("serial", "double_buffered"):
        raise AccelsimError(f"unknown weight_preload '{weight_preload}'")
    if overflow not in ("wrap", "saturate"):
        raise AccelsimError(f"unknown accumulator_overflow '{overflow}'; expected wrap or saturate")
    _check_operands(A, B, acc_bits)
    lo, hi = accumulator_range(acc_bits)
    G, M, K = A.shape
    N = B.shape[2]
    q = groups_per_fold(dataflow, GemmView(M, K, N, G), rows, cols, group_packing)
    nsets = math.ceil(G / q)
    sizes = np.array([min(q, G - i * q) for i in range(nsets)], np.int64)
    # packed operands: A' = [A_g ...] along K, B' = block-diagonal B_g
    Ap = np.zeros((nsets, M, q * K), np.int64)
    Bp = np.zeros((nsets, q * K, q * N), np.int64)
    init = np.zeros((nsets, M, q * N), np.int64)
    if acc_init is not None:
        acc_init = np.asarray(acc_init, np.int64)
        if acc_init.shape != (G, M, N):
            raise AccelsimError(f"acc_init {acc_init.shape} does not match the outputs {(G, M, N)}")
        if np.any(acc_init < lo) or np.any(acc_init > hi):
            raise AccelsimError(f"acc_init does not fit a {acc_bits}-bit accumulator")
    for g in range(G):
        s, j = divmod(g, q)
        Ap[s, :, j * K:(j + 1) * K] = A[g]
        Bp[s, j * K:(j + 1) * K, j * N:(j + 1) * N] = B[g]
        if acc_init is not None:
            init[s, :, j * N:(j + 1) * N] = acc_init[g]
    kp, np_ = sizes * K, sizes * N
    db, sat = weight_preload == "double_buffered", overflow == "saturate"
    if dataflow == "weight_stationary":
        outp = init  # the accumulator buffer starts from acc_init
        ts = np.full(nsets, M, np.int64)
        cyc, ovf, upd = _stationary_kernel(Ap, Bp, ts, kp, np_, rows, cols, db, lo, hi, sat, outp)
    elif dataflow == "input_stationary":
        # inputs stationary (K' x M), weights stream (N' x K'): out^T = B'^T A'^T
        St = np.ascontiguousarray(Bp.transpose(0, 2, 1))
        Wt = np.ascontiguousarray(Ap.transpose(0, 2, 1))
        outt = np.ascontiguousarray(init.transpose(0, 2, 1))
        ms = np.full(nsets, M, np.int64)
        cyc, ovf, upd = _stationary_kernel(St, Wt, np_, kp, ms, rows, cols, db, lo, hi, sat, outt)
        outp = outt.transpose(0, 2, 1)
    else:
        outp = np.zeros((nsets, M, q * N), np.int64)
        cyc, ovf, upd = _os_kernel(Ap, Bp, kp, np_, rows, cols, db, lo, hi, sat, outp)
        if acc_init is not None:  # the bias joins each output as it drains
            outp, drain_ovf = accumulate(outp + init, acc_bits, overflow)
            ovf += drain_ovf
    out = np.empty((G, M, N), np.int64)
    for g in range(G):
        s, j = divmod(g, q)
        out[g] = outp[s, :, j * N:(j + 1) * N]
    return KernelResult(out, int(cyc), int(ovf), int(upd))


def run_gemm(A: np.ndarray, B: np.ndarray, rows: int, cols: int, dataflow: str,
             weight_preload: str = "serial", acc_bits: int = 32, overflow: str = "wrap") -> KernelResult:
    """Step A (M x K) @ B (K x N) through a rows x cols array; outputs (M, N) and exact cycles."""
    A = np.asarray(A)
    B = np.asarray(B)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise AccelsimError(f"operands do not multiply: A {A.shape}, B {B.shape}")
    res = run_grouped_gemm(A[None], B[None], rows, cols, dataflow, weight_preload, acc_bits, overflow)
    res.out = res.out[0]
    return res


def run_layer(gemm: GemmView, hw, A: np.ndarray, B: np.ndarray, acc_init: np.ndarray | None = None) -> KernelResult:
    """Step one layer's integer operands through the array `hw` describes.

    A: (groups, M, K) and B: (groups, K, N) integer operands of the GEMM view, or 2-D for
    groups == 1; `acc_init` (groups, M, N) the accumulator's starting values (the bias). Uses the config's dataflow, array size,
    weight_preload, group_packing, accumulator_bits and accumulator_overflow."""
    A = np.asarray(A)
    B = np.asarray(B)
    if A.ndim == 2:
        A, B = A[None], B[None]
    want_a, want_b = (gemm.groups, gemm.M, gemm.K), (gemm.groups, gemm.K, gemm.N)
    if A.shape != want_a or B.shape != want_b:
        raise AccelsimError(f"operands {A.shape} and {B.shape} do not match the GEMM view "
                            f"(expected {want_a} and {want_b})")
    pe, p = hw.pe_array, hw.precision
    return run_grouped_gemm(A, B, pe.rows, pe.cols, pe.dataflow, pe.weight_preload,
                            p.accumulator_bits, p.accumulator_overflow, pe.group_packing, acc_init)
