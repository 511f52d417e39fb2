"""Softmax and log-softmax over the action axis (the last), fast also for short action axes on a CPU.

torch's CPU kernel for a softmax over the last, contiguous axis is vectorized along that axis, and
an axis shorter than one vector register is 3-4x slower per element than one register long. On the
development machine (AVX-512: 16 floats; one thread; [1200, 4, A] forward and backward) a
log-softmax took 1,830 us at A = 15 and 264 us at A = 16. Small SMAC maps have such axes: 3m has 9
actions, 2s3z 11, 3m1m_vs_4m 14 in the unified action space, 3s5z_vs_3s6z 15. Over the first axis
of the transposed [A, rows] view, torch vectorizes across rows instead (458 us at A = 15), so short
axes go that way. The values are the softmax's either way, up to float rounding
(`tests/test_softmax.py`). Axes of a register or longer, GPUs, and CPUs whose register width is not
known here keep torch's kernel.
"""

from __future__ import annotations

from typing import Callable

import torch

# floats per vector register of the CPU kernels torch dispatches to (what `get_cpu_capability` names)
_LANES = {"AVX512": 16, "AVX2": 8}
_lanes = None


def lanes() -> int:
    """Axes shorter than this take the transposed route on the CPU (0: never)."""
    global _lanes
    if _lanes is None:
        _lanes = _LANES.get(torch.backends.cpu.get_cpu_capability(), 0)
    return _lanes


def short_axis(x: torch.Tensor) -> bool:
    """Whether x's last axis takes the transposed route."""
    return x.device.type == "cpu" and x.dim() > 1 and x.shape[-1] < lanes()


def transposed(fn: Callable[..., torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """fn(x, -1) for torch.softmax or torch.log_softmax, computed over dim 0 of the [A, rows] view."""
    return fn(x.reshape(-1, x.shape[-1]).t(), 0).t().reshape(x.shape)


def softmax(x: torch.Tensor) -> torch.Tensor:
    """torch.softmax(x, -1)."""
    return transposed(torch.softmax, x) if short_axis(x) else torch.softmax(x, -1)


def log_softmax(x: torch.Tensor) -> torch.Tensor:
    """torch.log_softmax(x, -1)."""
    return transposed(torch.log_softmax, x) if short_axis(x) else torch.log_softmax(x, -1)
