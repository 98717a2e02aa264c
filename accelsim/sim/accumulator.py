"""Accumulator arithmetic and a plain numpy reference of the array's accumulation order.

An accumulator of b bits holds [-2^(b-1), 2^(b-1) - 1]. `wrap` keeps the sum modulo 2^b
(two's complement); `saturate` clamps every add to the range. Because saturation does not
commute, the order of adds matters; the array's order is:

- ws and is: within a fold, a partial sum starts at zero at the top row and gains one
  product per row (k ascending) at accumulator width; the fold's sum is then added into the
  accumulator buffer, fold after fold (k0 = 0, R, 2R, ...).
- os: each PE adds one product per cycle, k ascending, into its own accumulator.

`reference_gemm` is a separate, deliberately simple implementation of that order, for tests.
"""
from __future__ import annotations

import numpy as np

from ..errors import AccelsimError
from .mapping import dataflow_name


def accumulator_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def accumulate(x: np.ndarray, bits: int, overflow: str) -> tuple[np.ndarray, int]:
    """Bring exact int64 sums into the accumulator; returns (values, number that overflowed)."""
    lo, hi = accumulator_range(bits)
    out_of_range = (x < lo) | (x > hi)
    if overflow == "saturate":
        y = np.clip(x, lo, hi)
    elif overflow == "wrap":
        y = ((x - lo) & ((1 << bits) - 1)) + lo
    else:
        raise AccelsimError(f"unknown accumulator_overflow '{overflow}'; expected wrap or saturate")
    return y, int(out_of_range.sum())


def reference_gemm(A: np.ndarray, B: np.ndarray, rows: int, dataflow: str, bits: int,
                   overflow: str, init: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """A (M x K) @ B (K x N) with accumulator semantics in the array's order.

    `rows` is the array height (the K-fold size for ws and is). `init` (M x N), the bias: ws
    and is start the accumulator buffer from it, os adds it as each output drains. Returns
    (outputs, overflow events), counting the PE adds, the accumulator-buffer adds and the
    drain adds."""
    dataflow = dataflow_name(dataflow)
    A = np.asarray(A, dtype=np.int64)
    B = np.asarray(B, dtype=np.int64)
    M, K = A.shape
    N = B.shape[1]
    events = 0
    init = np.zeros((M, N), np.int64) if init is None else np.asarray(init, np.int64)
    if dataflow == "output_stationary":
        acc = np.zeros((M, N), np.int64)
        for k in range(K):
            acc, n = accumulate(acc + np.outer(A[:, k], B[k, :]), bits, overflow)
            events += n
        acc, n = accumulate(acc + init, bits, overflow)
        return acc, events + n
    buf = init.copy()
    for k0 in range(0, K, rows):
        psum = np.zeros((M, N), np.int64)
        for k in range(k0, min(k0 + rows, K)):
            psum, n = accumulate(psum + np.outer(A[:, k], B[k, :]), bits, overflow)
            events += n
        buf, n = accumulate(buf + psum, bits, overflow)
        events += n
    return buf, events
