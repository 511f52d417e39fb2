"""numba glue for the engine kernels: one decorator, float32 helpers that match NumPy bit for bit.

The engine's state is float32 and its arithmetic follows NumPy's promotion rules (NEP 50: a Python
float next to a float32 array stays float32; a float64 array promotes). numba types every Python
float literal as float64, so kernels spell float32 constants as `F32(...)` module globals, and the
helpers below reproduce the two NumPy routines whose rounding is not a single IEEE operation:
np.hypot on float32 and the pairwise summation of np.sum.
"""

from __future__ import annotations

import math

import numba
import numpy as np

F32 = np.float32
INF32 = np.float32(np.inf)


def njit(fn):
    """Compile `fn` with numba, cached on disk so a second process does not pay the compile."""
    return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)


def inline(fn):
    """A kernel helper inlined into its caller at numba IR level: kernels pass the per-map tables as one
    tuple, which a real call copies, touching every array's reference count (docs/engine.md)."""
    return numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn)


@njit
def hypot32(x, y):
    """np.hypot on float32: glibc's hypotf is the float64 hypot rounded once to float32."""
    return np.float32(math.sqrt(np.float64(x) * np.float64(x) + np.float64(y) * np.float64(y)))


@njit
def pairwise_sum(a):
    """np.sum of a contiguous row of fewer than 128 elements, in NumPy's pairwise order and dtype."""
    n = a.size
    if n < 8:
        r = a.dtype.type(-0.0)
        for i in range(n):
            r += a[i]
        return r
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    while i < n - (n % 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res
