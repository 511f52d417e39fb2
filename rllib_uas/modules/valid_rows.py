"""Work on the valid steps of a padded batch only.

U-QMIX trains on whole episodes padded to the longest in the batch; on MMM2 about three quarters of
a 128-episode batch is padding (episodes of 22-58 steps and a few up to 160). The GRU unroll skips
most of it (length buckets, `agent_network.length_buckets`); these helpers let the heads, the mixers
and the CGI term skip it too. Every U-QMIX term masks the padded steps, so the loss and its
gradients are the same as on the padded grid (`tests/test_valid_rows.py` compares whole updates).
"""

from __future__ import annotations

from typing import Callable

import torch

# False: every helper works on the whole padded grid (the reference the tests compare against)
PACK = True


def on_rows(fn: Callable[..., torch.Tensor], rows: torch.Tensor, *xs: torch.Tensor) -> torch.Tensor:
    """fn(*xs) where rows [B, T] (bool) is True, zeros elsewhere; xs are [B, T, ...] and fn maps
    [M, ...] inputs to an [M, ...] output, row by row."""
    if not PACK:
        return fn(*xs)
    return scatter_rows(fn(*(x[rows] for x in xs)), rows)


def scatter_rows(y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """y [M, ...], one entry per True of rows [B, T] in row-major order -> [B, T, ...], zeros elsewhere."""
    out = y.new_zeros(rows.shape + y.shape[1:])
    out[rows] = y
    return out


def pick_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """x [B, T, ...] -> the rows where rows [B, T] is True, [M, ...] (with PACK off: all B * T rows,
    so a caller that also picks its mask gets the same masked result)."""
    return x[rows] if PACK else x.reshape(-1, *x.shape[2:])


__all__ = ["PACK", "on_rows", "pick_rows", "scatter_rows"]
