"""PowerQuant's exponent search (Yvinec et al., ICLR 2023, section 3.2 and appendices C, D, H).

What is minimised (eq. 3): the weight reconstruction error summed over the layers,

    eps(a) = sum_l || W_l - Q_a^-1(Q_a(W_l)) ||_2

a sum of per-layer L2 (Frobenius) norms, not the norm of the concatenated weights; weights
only, no data. Q_a is the weight quantizer of eq. 2, ``make_power_qparams(..., weights=True)``:
q = round(qmax sign(w) (|w| / M)^a) on the signed narrow grid, M = max |w| per output channel
(axis 0; the default, appendix H) or per tensor, dequantized as sign(q) M (|q| / qmax)^(1/a).
a = 1 is uniform symmetric quantization, so the search can only improve on it.

Why Nelder-Mead. The rounding makes eps piecewise: between two values of a at which some
weight's code changes, eps is a smooth function of a (only the dequantization's 1/a moves),
and at each such value it jumps. With tens of thousands of weights the pieces are very short,
so the curve is a smooth trend plus fine-scale steps; the rounding's derivative is almost
surely zero (the paper's words), so a gradient carries no information about the jumps, which
dominate at low bit-widths. Nelder-Mead needs no derivatives (the paper's choice; appendix D
finds other solvers no better). Here it runs on the 1-D problem from a simplex {x0, x0 + 0.1},
with bounds keeping a in [0.05, 2] (scipy clips trial points to them), on the error relative
to its value at x0 so that one tolerance fits every bit-width: it stops when the simplex is
narrower than ``XATOL`` (1e-3 in a) and the two vertices' relative errors differ by less than
``FATOL`` (1e-6), or after ``MAXITER`` (200) iterations. The method is deterministic; the
result is the best vertex seen, so its error is never above the error at x0.

Locality (appendix C). The paper proves that the problem is locally convex around a solution
a* (C.1) and that its global minimum is almost surely unique (C.2), and notes that the curve
as a whole is not convex. Both are local statements about a piecewise function, and
Nelder-Mead only finds a local minimum of the measured curve. On the bundled models
(tools/power_exponent_curve.py, reports/powerquant-exponent.md) the curve is a clear valley
with a* in 0.73-0.95, but its bottom is shallow and ragged: steps of the rounding of about
0.1-0.5 % of the error (more at W8 than at W4) and, at W6 and W8, neighbouring local minima
within about 1 % of each other, so a* there depends on the start (tiny_vgg W6: 0.734 from
x0 = 0.5, the grid minimum is at 0.83 with 0.5 % less error). The tests check at W4 and W8
that the curve decreases to a* and increases after it, up to a tolerance set from the
measured steps. ``error_curve`` tabulates eps(a) for plots and reports.

Per-layer exponents (appendix H). ``search_exponents_per_layer`` fits one a per layer; the
summed weight error can only go down (each layer's search starts from the global a*), but the
paper finds the per-layer fit worse for accuracy in every benchmark (table 9: it overfits the
weights and ignores the activations, which share the exponent), so the global a* is the one
PowerQuant uses; the per-layer option exists to measure that.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..graph.ir import Graph
from .fold import WEIGHTED_OPS, fold_batchnorm
from .quantizers import channel_minmax, check_bits, make_power_qparams

#: bounds of the exponent search
A_MIN, A_MAX = 0.05, 2.0
#: Nelder-Mead tolerances: simplex width in a, and difference of the relative error between vertices
XATOL = 1e-3
FATOL = 1e-6
MAXITER = 200
#: the first simplex is {x0, x0 + INITIAL_STEP}
INITIAL_STEP = 0.1
#: default grid of error_curve: a from 0.2 to 1.2 in steps of 0.02
DEFAULT_A_GRID = np.round(np.linspace(0.2, 1.2, 51), 6)

Weights = Sequence[np.ndarray] | Mapping[str, np.ndarray]


def _as_list(weights: Weights) -> list[np.ndarray]:
    arrays = list(weights.values()) if isinstance(weights, Mapping) else list(weights)
    if not arrays:
        raise ValueError("no weights: the exponent search needs at least one weight tensor")
    out = []
    for w in arrays:
        w = np.asarray(w, np.float64)
        if w.ndim < 1 or w.size == 0:
            raise ValueError(f"weight tensors need at least one element and one axis, found shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("weight tensor has non-finite values")
        out.append(w)
    return out


def _check_a(a: float) -> float:
    a = float(a)
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"power exponent: expected a positive finite number, found {a!r}")
    return a


def _layer_error(w: np.ndarray, bits: int, a: float, per_channel: bool) -> float:
    """|| W - Q_a^-1(Q_a(W)) ||_2 of one float64 tensor (output channels on axis 0)."""
    axis = 0 if per_channel else None
    lo, hi = channel_minmax(w, axis)
    q = make_power_qparams(lo, hi, bits, a, axis=axis, weights=True)
    d = w - q.fake_quant(w)
    # sqrt(sum d^2), not np.linalg.norm: its BLAS dot is ten times slower here on a busy machine
    return float(np.sqrt(np.sum(d * d)))


def _errors(ws: list[np.ndarray], bits: int, a: float, per_channel: bool) -> list[float]:
    return [_layer_error(w, bits, a, per_channel) for w in ws]


def reconstruction_error(weights: Weights, bits: int, a: float, per_channel: bool = True) -> float:
    """eq. 3: sum over layers of ||W_l - Q_a^-1(Q_a(W_l))||_2 (a sum of norms), in float64.

    `weights`: a list or dict of float arrays, output channels on axis 0 (conv (O, C, kh, kw),
    linear (O, D)); `per_channel`: M = max |w| per output channel, else per tensor.
    """
    bits = check_bits(bits, "weight bits")
    return float(sum(_errors(_as_list(weights), bits, _check_a(a), per_channel)))


def _nelder_mead(objective, x0: float) -> float:
    """argmin of objective(a) over [A_MIN, A_MAX] by scipy's Nelder-Mead (see the module docstring)."""
    from scipy.optimize import minimize

    x0 = float(np.clip(x0, A_MIN, A_MAX))
    step = INITIAL_STEP if x0 + INITIAL_STEP <= A_MAX else -INITIAL_STEP
    f0 = objective(x0)
    if f0 == 0.0:  # exactly representable weights (e.g. all zero): any a is optimal
        return x0
    res = minimize(lambda v: objective(float(v[0])) / f0, np.array([x0]), method="Nelder-Mead",
                   bounds=[(A_MIN, A_MAX)],
                   options={"initial_simplex": np.array([[x0], [x0 + step]]), "xatol": XATOL,
                            "fatol": FATOL, "maxiter": MAXITER})
    return float(res.x[0])


def search_exponent(weights: Weights, bits: int, per_channel: bool = True, x0: float = 0.5) -> float:
    """a* = argmin_a reconstruction_error(weights, bits, a): one exponent for the whole network.

    Nelder-Mead from x0 (the paper's empirical a* are centred on 0.55), a kept in [0.05, 2];
    deterministic. The error at the result is never above the error at x0.
    """
    bits = check_bits(bits, "weight bits")
    ws = _as_list(weights)
    return _nelder_mead(lambda a: sum(_errors(ws, bits, a, per_channel)), _check_a(x0))


def search_exponents_per_layer(weights: Weights, bits: int, per_channel: bool = True,
                               x0: float | None = None) -> list[float]:
    """One exponent per layer (appendix H's option), a_l* = argmin_a ||W_l - Q_a^-1(Q_a(W_l))||_2.

    Each layer's search starts from x0, by default (None) the global a* of `search_exponent`:
    every layer's error is then at most its error at the global a*, so the summed error is at
    most the global one. In the order of `weights` (a dict's value order).
    """
    bits = check_bits(bits, "weight bits")
    ws = _as_list(weights)
    start = search_exponent(ws, bits, per_channel) if x0 is None else _check_a(x0)
    return [_nelder_mead(lambda a, w=w: _layer_error(w, bits, a, per_channel), start) for w in ws]


def error_curve(weights: Weights, bits: int, a_grid=None, per_channel: bool = True) -> pd.DataFrame:
    """reconstruction_error at each a of `a_grid` (default: 0.2 to 1.2 in steps of 0.02).

    A DataFrame with columns ``a`` and ``error``, one row per grid value, in grid order.
    """
    bits = check_bits(bits, "weight bits")
    ws = _as_list(weights)
    grid = DEFAULT_A_GRID if a_grid is None else np.asarray(a_grid, np.float64).ravel()
    errors = [sum(_errors(ws, bits, _check_a(a), per_channel)) for a in grid]
    return pd.DataFrame({"a": grid.astype(np.float64), "error": np.asarray(errors, np.float64)})


def weighted_layers(graph: Graph, fold: bool = True) -> dict[str, np.ndarray]:
    """The conv2d/linear weights of `graph` by node name, in graph order (BN folded first if `fold`).

    These are the tensors PowerQuant's weight quantizer sees; nodes without a weight are skipped.
    """
    g = fold_batchnorm(graph) if fold else graph
    return {n.name: np.asarray(n.weight) for n in g.nodes if n.op in WEIGHTED_OPS and n.weight is not None}
