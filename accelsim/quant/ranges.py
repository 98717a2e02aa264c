"""Range setting: which [lo, hi] a quantizer covers (white paper section 3.1, DFQ section 5).

- ``minmax``: the whole observed range.
- ``mse``: grid search over a clipping factor alpha in (0, 1] (``clip_grid``); the candidate range is
  alpha * [lo, hi] (both ends shrink together, a 1-D search; the white paper's MSE searches
  qmin and qmax, which a 2-D grid would do at 100x the cost for a small gain).
- ``bn``: beta +- n * |gamma| per channel, clipped by the activation (DFQ, n = 6).
- ``cross_entropy``: for logits, the alpha that minimises H(softmax(v), softmax(q(v))).
"""
from __future__ import annotations

import numpy as np

from .quantizers import QuantParams, channel_minmax, make_qparams

DEFAULT_BN_N = 6.0
MSE_GRID = 100
MSE_MAX_SAMPLES = 200_000  # activation tensors are subsampled for the MSE search


def minmax_qparams(x: np.ndarray, bits: int, scheme: str, axis: int | None = None, *,
                   signed: bool | None = None, narrow: bool = True) -> QuantParams:
    lo, hi = channel_minmax(x, axis)
    return make_qparams(lo, hi, bits, scheme, signed=signed, narrow=narrow, axis=axis)


def clip_grid(n_grid: int = MSE_GRID) -> np.ndarray:
    """Clipping factors to try: n_grid linear steps in (0, 1], plus a log-spaced tail down to
    1e-4 for heavy-tailed tensors whose best range is a tiny fraction of the min-max one."""
    return np.unique(np.concatenate([np.geomspace(1e-4, 1.0 / n_grid, 20), np.linspace(1.0 / n_grid, 1.0, n_grid)]))


def _subsample(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    flat = np.asarray(x).reshape(-1)
    if flat.size <= n:
        return flat
    return np.random.default_rng(seed).choice(flat, n, replace=False)


def mse_qparams(x: np.ndarray, bits: int, scheme: str, axis: int | None = None, *,
                signed: bool | None = None, narrow: bool = True, n_grid: int = MSE_GRID) -> QuantParams:
    """The clipping of the min-max range that minimises the quantization MSE (per channel with `axis`)."""
    x = np.asarray(x, np.float64)
    if axis is None:
        rows = _subsample(x, MSE_MAX_SAMPLES)[None, :]
    else:
        rows = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    lo, hi = rows.min(axis=1), rows.max(axis=1)
    if signed is None and scheme == "symmetric":
        signed = bool(np.any(lo < 0))  # one grid for the whole tensor
    best_err = np.full(len(rows), np.inf)
    best_alpha = np.ones(len(rows))
    for alpha in clip_grid(n_grid):
        qp = make_qparams(alpha * lo, alpha * hi, bits, scheme, signed=signed, narrow=narrow, axis=0)
        err = np.mean((qp.fake_quant(rows) - rows) ** 2, axis=1)
        better = err < best_err
        best_err[better] = err[better]
        best_alpha[better] = alpha
    if axis is None:
        return make_qparams(best_alpha[0] * lo[0], best_alpha[0] * hi[0], bits, scheme, signed=signed, narrow=narrow)
    return make_qparams(best_alpha * lo, best_alpha * hi, bits, scheme, signed=signed, narrow=narrow, axis=axis)


def bn_range(beta: np.ndarray, gamma: np.ndarray, n: float = DEFAULT_BN_N,
             clip: tuple[float, float] = (-np.inf, np.inf)) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel [beta - n|gamma|, beta + n|gamma|], clipped to the activation's output range."""
    beta = np.asarray(beta, np.float64)
    gamma = np.abs(np.asarray(gamma, np.float64))
    lo = np.clip(beta - n * gamma, *clip)
    hi = np.clip(beta + n * gamma, *clip)
    return lo, hi


def _log_softmax(v: np.ndarray) -> np.ndarray:
    v = v - v.max(axis=-1, keepdims=True)
    return v - np.log(np.exp(v).sum(axis=-1, keepdims=True))


def cross_entropy_qparams(logits: np.ndarray, bits: int, scheme: str, *, n_grid: int = MSE_GRID,
                          narrow: bool = True) -> QuantParams:
    """Per-tensor range for logits (N, classes) minimising the mean H(softmax(v), softmax(q(v)))."""
    v = np.asarray(logits, np.float64).reshape(-1, logits.shape[-1])
    lo, hi = float(v.min()), float(v.max())
    p = np.exp(_log_softmax(v))
    best, best_alpha = np.inf, 1.0
    for alpha in clip_grid(n_grid):
        qp = make_qparams(alpha * lo, alpha * hi, bits, scheme, narrow=narrow)
        ce = float(-(p * _log_softmax(qp.fake_quant(v))).sum(axis=-1).mean())
        if ce < best:
            best, best_alpha = ce, alpha
    return make_qparams(best_alpha * lo, best_alpha * hi, bits, scheme, narrow=narrow)
