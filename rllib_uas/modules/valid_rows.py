"""Work on the valid steps of a padded batch only.

Both team modules pack their training outputs at the valid steps when they are given each
sequence's length: [M, ...] in row-major (sequence, step) order, with VALID_ROWS [B, T] saying which
rows those are. U-MAPPO's chunks are about a quarter padding (they end where an episode or a
sample ends); its heads, the CGI term, the critic and the loss then skip that quarter.

U-QMIX trains on whole episodes padded to the longest in the batch; on MMM2 about three quarters of
a 128-episode batch is padding (episodes of 22-58 steps and a few up to 160). The agent network
unrolls length buckets (`agent_network.Buckets`) and returns its states at the valid steps only;
the heads, the mixers, the TD targets' inputs and the CGI term then work on those rows, [M, ...] in
row-major (episode, step) order, and go back to the [B, T] grid only where time matters (the
TD(lambda) recursion). Every U-QMIX term masks the padded steps, so the loss and its gradients are
the same as on the padded grid (`tests/test_valid_rows.py` compares whole updates).
"""

from __future__ import annotations

from typing import Any, Dict

import torch

# False: the agent network unrolls and returns the whole padded grid, from which the learner picks
# the valid rows (the reference the tests compare against)
PACK = True
VALID_ROWS = "valid_rows"  # [B, T] bool: present when a module's training outputs are packed at these rows


def valid_steps(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """[B, T] bool: the first lengths[b] rows of each padded sequence of lengths [B]."""
    return torch.arange(T, device=lengths.device)[None] < lengths.to(torch.long)[:, None]


def scatter_rows(y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """y [M, ...], one entry per True of rows [B, T] in row-major order -> [B, T, ...], zeros elsewhere."""
    out = y.new_zeros(rows.shape + y.shape[1:])
    out[rows] = y
    return out


def on_rows_of(out: Dict[str, Any], key: str, rows: torch.Tensor) -> torch.Tensor | None:
    """A training output at the valid rows `rows` [B, T] (bool), [M, ...]: as the module packed it
    (then out[VALID_ROWS] is these rows), or picked from the grid it returned."""
    x = out.get(key)
    if x is None or VALID_ROWS not in out:
        return None if x is None else x[rows]
    if out[VALID_ROWS].shape != rows.shape or not torch.equal(out[VALID_ROWS], rows):
        raise ValueError(f"{key} is packed at other rows than the ones asked for")
    return x


def on_grid(out: Dict[str, Any], key: str) -> torch.Tensor:
    """A training output on the [B, T, ...] grid (zeros off the valid rows when packed)."""
    return scatter_rows(out[key], out[VALID_ROWS]) if VALID_ROWS in out else out[key]


__all__ = ["PACK", "VALID_ROWS", "on_grid", "on_rows_of", "scatter_rows", "valid_steps"]
