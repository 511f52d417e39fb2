"""Work on the valid steps of a padded batch only.

U-QMIX trains on whole episodes padded to the longest in the batch; on MMM2 about three quarters of
a 128-episode batch is padding (episodes of 22-58 steps and a few up to 160). The agent network
unrolls length buckets (`agent_network.Buckets`) and returns its states at the valid steps only;
the heads, the mixers, the TD targets' inputs and the CGI term then work on those rows, [M, ...] in
row-major (episode, step) order, and go back to the [B, T] grid only where time matters (the
TD(lambda) recursion). Every U-QMIX term masks the padded steps, so the loss and its gradients are
the same as on the padded grid (`tests/test_valid_rows.py` compares whole updates).
"""

from __future__ import annotations

import torch

# False: the agent network unrolls and returns the whole padded grid, from which the learner picks
# the valid rows (the reference the tests compare against)
PACK = True


def valid_steps(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """[B, T] bool: the first lengths[b] rows of each padded sequence of lengths [B]."""
    return torch.arange(T, device=lengths.device)[None] < lengths.to(torch.long)[:, None]


def scatter_rows(y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """y [M, ...], one entry per True of rows [B, T] in row-major order -> [B, T, ...], zeros elsewhere."""
    out = y.new_zeros(rows.shape + y.shape[1:])
    out[rows] = y
    return out


__all__ = ["PACK", "scatter_rows", "valid_steps"]
