"""The one rounding rule of accelsim: round half away from zero.

It is what gemmlowp / TFLite use for requantization and what users compare with, so the
quantizers (weights, activations, the fake-quant reference) and the integer executor's
requantization all use it: 0.5 -> 1, 1.5 -> 2, 2.5 -> 3, -0.5 -> -1, -2.5 -> -3.

`round_half_away` is exact for every float (|x| - floor(|x|) is computed without rounding
error), one pass over the array; `rounding_shift` is the integer form, round(p / 2^shift).
"""
from __future__ import annotations

import numpy as np


def round_half_away(x, out=None):
    """Nearest integer (as a float array), ties away from zero; float32 stays float32."""
    from ._rounding_kernel import _round_half_away  # numba loads on first use, not on import

    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf inside; inf and nan pass through
        return _round_half_away(x) if out is None else _round_half_away(x, out=out)


def rounding_shift(p: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """round(p / 2^shift) for int64 p and shift >= 0, ties away from zero (integer only).

    A shift of 63 or more gives 0 (|p| < 2^62 in every use here)."""
    p = np.asarray(p, np.int64)
    shift = np.asarray(shift, np.int64)
    if np.any(shift < 0):
        raise ValueError("rounding_shift: shift must be >= 0")
    s = np.minimum(shift, 62)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    mag = (np.abs(p) + half) >> s
    mag = np.where(shift > 62, 0, mag)
    return np.where(p < 0, -mag, mag)
