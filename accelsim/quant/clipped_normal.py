"""Mean and variance of a clipped normal, f(X) = clip(X, a, b) with X ~ N(mu, sigma^2).

DFQ appendix C (eq. 38 for the mean; the variance is E[f^2] - E[f]^2 with
E[f^2] = a^2 Phi(alpha) + b^2 (1 - Phi(beta)) + Z (mu^2 + sigma^2) + sigma (mu + a) phi(alpha)
- sigma (mu + b) phi(beta), Z = Phi(beta) - Phi(alpha), which is eq. 43 rearranged).
a may be -inf and b +inf (ReLU: a = 0, b = inf; ReLU6: a = 0, b = 6; identity: both infinite).
"""
from __future__ import annotations

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def norm_cdf(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(np.asarray(t, np.float64) / math.sqrt(2.0)))


def norm_pdf(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, np.float64)
    with np.errstate(over="ignore"):
        return np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


def _standardise(mu, sigma, a, b):
    mu = np.asarray(mu, np.float64)
    sigma = np.abs(np.asarray(sigma, np.float64))
    safe = np.where(sigma > 0, sigma, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(sigma > 0, (a - mu) / safe, np.where(mu >= a, -np.inf, np.inf))
        beta = np.where(sigma > 0, (b - mu) / safe, np.where(mu <= b, np.inf, -np.inf))
    return mu, sigma, alpha, beta


def _times(v: float, w: np.ndarray) -> np.ndarray:
    """v * w, with an infinite v times a zero weight taken as 0 (the limit in these formulas)."""
    if math.isfinite(v):
        return v * w
    with np.errstate(invalid="ignore"):
        return np.where(w == 0, 0.0, v * w)


def clipped_normal_mean(mu, sigma, a: float = -np.inf, b: float = np.inf) -> np.ndarray:
    """E[clip(X, a, b)], X ~ N(mu, sigma^2); sigma = 0 gives clip(mu, a, b)."""
    if not a < b:
        raise ValueError(f"need a < b, found [{a}, {b}]")
    mu, sigma, alpha, beta = _standardise(mu, sigma, a, b)
    cdf_a, cdf_b = norm_cdf(alpha), norm_cdf(beta)
    pdf_a, pdf_b = norm_pdf(alpha), norm_pdf(beta)
    mean = sigma * (pdf_a - pdf_b) + mu * (cdf_b - cdf_a) + _times(a, cdf_a) + _times(b, 1.0 - cdf_b)
    return np.where(sigma > 0, mean, np.clip(mu, a, b))


def clipped_normal_var(mu, sigma, a: float = -np.inf, b: float = np.inf) -> np.ndarray:
    """Var[clip(X, a, b)], X ~ N(mu, sigma^2)."""
    if not a < b:
        raise ValueError(f"need a < b, found [{a}, {b}]")
    mu, sigma, alpha, beta = _standardise(mu, sigma, a, b)
    cdf_a, cdf_b = norm_cdf(alpha), norm_cdf(beta)
    pdf_a, pdf_b = norm_pdf(alpha), norm_pdf(beta)
    z = cdf_b - cdf_a
    second = (
        _times(a, _times(a, cdf_a))
        + _times(b, _times(b, 1.0 - cdf_b))
        + z * (mu * mu + sigma * sigma)
        + sigma * (mu * pdf_a + _times(a, pdf_a))
        - sigma * (mu * pdf_b + _times(b, pdf_b))
    )
    mean = clipped_normal_mean(mu, sigma, a, b)
    var = np.maximum(second - mean * mean, 0.0)
    return np.where(sigma > 0, var, 0.0)
