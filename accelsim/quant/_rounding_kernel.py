"""The numba ufunc behind `rounding.round_half_away`, in its own module so that importing
accelsim.quant (e.g. for the recipe names in `accelsim quantize --help`) does not load numba."""
from __future__ import annotations

import math

import numpy as np
from numba import vectorize


@vectorize(["float32(float32)", "float64(float64)"], cache=True)
def _round_half_away(x):
    a = abs(x)
    t = np.floor(a)
    r = t + 1.0 if a - t >= 0.5 else t
    return math.copysign(r, x)
