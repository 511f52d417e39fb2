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
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

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


@intrinsic
def lowest_bit(typingctx, word):
    """The index of the lowest set bit of a nonzero uint64 (LLVM's cttz: one instruction)."""
    if word != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64, ir.IntType(1)]), "llvm.cttz.i64")
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 1)])

    return types.int64(types.uint64), codegen


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


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)


@njit
def splitmix64(z):
    """SplitMix64's output function (Steele, Lea and Flood 2014) of a uint64."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit
def stream_next_uint32(streams, e):
    """The next uint32 of env e's own random stream (`streams` [E] uint64 SplitMix64 states, advanced
    in place): the engine's per-env streams (BattleEngine(streams="per_env"))."""
    s = streams[e] + _GOLDEN
    streams[e] = s
    return np.uint32(splitmix64(s) >> _S32)


@njit
def seed_streams(base, first, n):
    """States for envs first..first+n-1 from one uint64 `base`: env e's state depends on (base, e) only."""
    out = np.empty(n, np.uint64)
    for k in range(n):
        out[k] = splitmix64(base ^ splitmix64(np.uint64(first + k) * _GOLDEN + _GOLDEN))
    return out
