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


def _transposed(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dim() > 1 and x.shape[-1] < lanes()


def softmax(x: torch.Tensor) -> torch.Tensor:
    """torch.softmax(x, -1)."""
    if not _transposed(x):
        return torch.softmax(x, -1)
    return torch.softmax(x.reshape(-1, x.shape[-1]).t(), 0).t().reshape(x.shape)


def log_softmax(x: torch.Tensor) -> torch.Tensor:
    """torch.log_softmax(x, -1)."""
    if not _transposed(x):
        return torch.log_softmax(x, -1)
    return torch.log_softmax(x.reshape(-1, x.shape[-1]).t(), 0).t().reshape(x.shape)
