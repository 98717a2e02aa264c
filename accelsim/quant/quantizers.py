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
    #: PowerQuant (Yvinec et al. 2023, eq. 2): the uniform grid lives in the power domain,
    #: T(x) = sign(x + offset) |x + offset|^power; None: an ordinary uniform quantizer
    power: float | None = None
    #: added before the power so that signed activations are non-negative (eq. 5); 0 for weights
    offset: float = 0.0

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def is_power(self) -> bool:
        return self.power is not None

    def to_power_domain(self, x: np.ndarray) -> np.ndarray:
        """T(x) = sign(x + c) |x + c|^a (the identity for a uniform quantizer)."""
        if self.power is None:
            return x
        v = x + x.dtype.type(self.offset) if self.offset else x
        return np.copysign(np.power(np.abs(v), v.dtype.type(self.power)), v)

    def from_power_domain(self, t: np.ndarray) -> np.ndarray:
        """T^-1(t) = sign(t) |t|^(1/a) - c."""
        if self.power is None:
            return t
        v = np.copysign(np.power(np.abs(t), t.dtype.type(1.0 / self.power)), t)
        return v - v.dtype.type(self.offset) if self.offset else v

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
        if self.power is not None:
            x = self.to_power_domain(np.asarray(x, np.float64))
        s = self._shaped(self.scale, x.ndim)
        z = self._shaped(self.zero_point, x.ndim)
        q = round_half_away(x / s) + z
        return np.clip(q, self.qmin, self.qmax).astype(np.int32)

    def dequantize(self, q: np.ndarray, dtype=np.float32) -> np.ndarray:
        q = np.asarray(q)
        s = self._shaped(self.scale, q.ndim)
        z = self._shaped(self.zero_point, q.ndim)
        if self.power is not None:
            return self.from_power_domain((q - z) * s).astype(dtype)
        return ((q - z) * s).astype(dtype)

    def fake_quant(self, x: np.ndarray) -> np.ndarray:
        """quantize then dequantize, in x's float dtype (fast path: no int arrays)."""
        x = np.asarray(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.float32
        if self.power is not None:  # through the power domain, in float64 (the powers are steep near 0)
            return self.dequantize(self.quantize(x), np.float64).astype(dtype)
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
        return self.from_power_domain(self.scale * (self.qmin - self.zero_point))

    @property
    def range_hi(self) -> np.ndarray:
        return self.from_power_domain(self.scale * (self.qmax - self.zero_point))

    def to_dict(self) -> dict:
        d = {
            "bits": self.bits,
            "scheme": self.scheme,
            "qmin": self.qmin,
            "qmax": self.qmax,
            "axis": self.axis,
            "scale": self.scale.tolist(),
            "zero_point": self.zero_point.tolist(),
        }
        if self.power is not None:
            d.update(power=self.power, offset=self.offset)
        return d


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


def make_power_qparams(lo, hi, bits: int, power: float, *, axis: int | None = None,
                       weights: bool = False) -> QuantParams:
    """PowerQuant quantizer covering [lo, hi] with exponent `power` (Yvinec et al. 2023).

    weights: eq. 2, q = round(qmax sign(w) (|w| / M)^a) on the signed narrow grid, M = max |w|
    (per channel with `axis`): a uniform grid of scale M^a / qmax in the power domain.
    activations: the unsigned grid [0, 2^b - 1] over T(x) = (x + c)^a with c = max(0, -lo),
    the offset that makes a signed range non-negative (eq. 5; 0 after a ReLU). The scale is set
    so that T(0) = c^a lies exactly on the grid (its code `pad_code`), as a zero-point does:
    padding and the folded offset term are then exact.
    """
    bits = check_bits(bits)
    if not (isinstance(power, (int, float, np.floating)) and 0 < float(power) and np.isfinite(power)):
        raise AccelsimError(f"power exponent: expected a positive finite number, found {power!r}")
    a = float(power)
    lo = np.asarray(lo, np.float64)
    hi = np.asarray(hi, np.float64)
    if np.any(~np.isfinite(lo)) or np.any(~np.isfinite(hi)):
        raise AccelsimError(f"quantization range is not finite: [{lo.min()}, {hi.max()}]")
    if weights:
        qmin, qmax = grid_limits(bits, "symmetric", True, True)
        m = np.maximum(np.abs(lo), np.abs(hi))
        scale = np.where(m > 0, m ** a / qmax, 1.0)
        return QuantParams(bits, "symmetric", np.asarray(scale, np.float64), np.zeros(scale.shape, np.int64),
                           qmin, qmax, axis, power=a, offset=0.0)
    if axis is not None or lo.ndim:
        raise ValueError("power activation quantizers are per tensor")
    qmin, qmax = 0, 2**bits - 1
    c = max(0.0, -float(lo))
    top = max(float(hi), 0.0) + c
    scale = top ** a / qmax if top > 0 else 1.0
    if c > 0:  # put T(0) = c^a exactly on the grid
        pad = max(1, int(np.floor(c ** a / scale)))  # floor: the scale grows, hi stays covered
        scale = c ** a / pad
    return QuantParams(bits, "asymmetric" if c > 0 else "symmetric", np.asarray(scale, np.float64),
                       np.zeros((), np.int64), qmin, qmax, None, power=a, offset=c)


def pad_code(q: QuantParams) -> int:
    """The code of the value 0 (padding, the ReLU floor): the zero-point, or T(0)/s for a power grid."""
    if q.power is None:
        return int(q.zero_point)
    return int(q.quantize(np.zeros(1))[0])
