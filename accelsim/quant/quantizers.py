"""Uniform quantizers: the integer grid, scale and zero-point, quantize / dequantize.

Conventions (white paper section 2.2):
  x_int = clamp(round(x / s) + z, qmin, qmax),   x_hat = s * (x_int - z).
Grids:
  - ``asymmetric``: unsigned [0, 2^b - 1] with an integer zero-point z, so 0.0 is exact.
  - ``symmetric``: z = 0. Signed narrow range [-(2^(b-1) - 1), 2^(b-1) - 1] by default
    (the NVIDIA/TensorRT convention: -x and x quantize to opposite integers), signed full
    range [-2^(b-1), 2^(b-1) - 1] on request, and unsigned [0, 2^b - 1] for tensors that
    are never negative (ReLU outputs), where a signed grid would waste its sign bit.
Rounding is half away from zero (`rounding.round_half_away`, the gemmlowp/TFLite rule), the same
rule the integer executor's requantization uses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AccelsimError
from .rounding import round_half_away

SCHEMES = ("symmetric", "asymmetric")
GRANULARITIES = ("per_tensor", "per_channel")
MIN_BITS, MAX_BITS = 2, 16


def check_bits(bits: int, what: str = "bits") -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not MIN_BITS <= bits <= MAX_BITS:
        raise AccelsimError(f"{what}: expected an integer from {MIN_BITS} to {MAX_BITS}, found {bits!r}")
    return int(bits)


def grid_limits(bits: int, scheme: str, signed: bool = True, narrow: bool = True) -> tuple[int, int]:
    """(qmin, qmax) of the integer grid. `signed`/`narrow` only matter for symmetric grids."""
    check_bits(bits)
    if scheme not in SCHEMES:
        raise AccelsimError(f"unknown quantization scheme '{scheme}'; expected one of: {', '.join(SCHEMES)}")
    if scheme == "asymmetric" or not signed:
        return 0, 2**bits - 1
    top = 2 ** (bits - 1) - 1
    return (-top if narrow else -top - 1), top


@dataclass(frozen=True, eq=False)
class QuantParams:
    """One quantizer: per-tensor (scale shape ()) or per-channel along `axis` (scale shape (C,)).

    scale is float64, zero_point int64; both broadcast along `axis` of the tensor they apply to.
    """

    bits: int
    scheme: str
    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int
    axis: int | None = None

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def signed(self) -> bool:
        return self.qmin < 0

    def _shaped(self, a: np.ndarray, ndim: int) -> np.ndarray:
        if self.axis is None:
            return a
        shape = [1] * ndim
        shape[self.axis] = -1
        return a.reshape(shape)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float tensor -> integers on the grid (int32)."""
        x = np.asarray(x)
        s = self._shaped(self.scale, x.ndim)
        z = self._shaped(self.zero_point, x.ndim)
        q = round_half_away(x / s) + z
        return np.clip(q, self.qmin, self.qmax).astype(np.int32)

    def dequantize(self, q: np.ndarray, dtype=np.float32) -> np.ndarray:
        q = np.asarray(q)
        s = self._shaped(self.scale, q.ndim)
        z = self._shaped(self.zero_point, q.ndim)
        return ((q - z) * s).astype(dtype)

    def fake_quant(self, x: np.ndarray) -> np.ndarray:
        """quantize then dequantize, in x's float dtype (fast path: no int arrays)."""
        x = np.asarray(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.float32
        s = self._shaped(self.scale.astype(dtype), x.ndim)
        z = self._shaped(self.zero_point.astype(dtype), x.ndim)
        q = x / s
        round_half_away(q, out=q)
        # z is an integer, so clip(q + z, qmin, qmax) - z == clip(q, qmin - z, qmax - z): 2 passes fewer
        np.clip(q, self.qmin - z, self.qmax - z, out=q)
        q *= s
        return q

    @property
    def range_lo(self) -> np.ndarray:
        """Smallest representable value (per channel)."""
        return self.scale * (self.qmin - self.zero_point)

    @property
    def range_hi(self) -> np.ndarray:
        return self.scale * (self.qmax - self.zero_point)

    def to_dict(self) -> dict:
        return {
            "bits": self.bits,
            "scheme": self.scheme,
            "qmin": self.qmin,
            "qmax": self.qmax,
            "axis": self.axis,
            "scale": self.scale.tolist(),
            "zero_point": self.zero_point.tolist(),
        }


def make_qparams(lo, hi, bits: int, scheme: str, *, signed: bool | None = None, narrow: bool = True,
                 axis: int | None = None) -> QuantParams:
    """Quantizer covering [lo, hi] (scalars, or per-channel arrays with `axis`).

    asymmetric: the range is widened to contain 0, s = (hi - lo) / (2^b - 1), z = round(-lo / s).
    symmetric: z = 0; signed unless `signed` is False or (when None) no lo is negative;
    s = max(|lo|, |hi|) / qmax, so the largest magnitude is exactly representable.
    A zero-width range (a dead channel) gets s = 1: every value quantizes to 0 exactly.
    """
    bits = check_bits(bits)
    lo = np.asarray(lo, np.float64)
    hi = np.asarray(hi, np.float64)
    if lo.shape != hi.shape:
        raise ValueError(f"lo {lo.shape} and hi {hi.shape} differ in shape")
    if (axis is None) != (lo.ndim == 0):
        raise ValueError("per-channel ranges (1-D lo/hi) need an axis; scalar ranges take none")
    if np.any(~np.isfinite(lo)) or np.any(~np.isfinite(hi)):
        raise AccelsimError(f"quantization range is not finite: [{lo.min()}, {hi.max()}]")
    if scheme == "asymmetric":
        lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
        qmin, qmax = grid_limits(bits, scheme)
        scale = (hi - lo) / (qmax - qmin)
        scale = np.where(scale > 0, scale, 1.0)
        zp = np.clip(round_half_away(qmin - lo / scale), qmin, qmax).astype(np.int64)
    elif scheme == "symmetric":
        if signed is None:
            signed = bool(np.any(lo < 0))
        elif not signed and np.any(lo < 0):
            raise ValueError("an unsigned symmetric grid cannot hold negative values")
        qmin, qmax = grid_limits(bits, scheme, signed, narrow)
        absmax = np.maximum(np.abs(lo), np.abs(hi))
        scale = absmax / qmax
        scale = np.where(scale > 0, scale, 1.0)
        zp = np.zeros(scale.shape, np.int64)
    else:
        raise AccelsimError(f"unknown quantization scheme '{scheme}'; expected one of: {', '.join(SCHEMES)}")
    return QuantParams(bits, scheme, np.asarray(scale, np.float64), np.asarray(zp), qmin, qmax, axis)


def channel_minmax(x: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """min and max of x, over everything (axis None) or per index of `axis`."""
    x = np.asarray(x)
    if axis is None:
        return np.asarray(x.min(), np.float64), np.asarray(x.max(), np.float64)
    moved = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    return moved.min(axis=1).astype(np.float64), moved.max(axis=1).astype(np.float64)
