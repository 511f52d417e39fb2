"""MAPPO's value normalization: running, debiased mean/variance of the value targets."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class ValueNorm(nn.Module):
    """Buffers travel with the module's state (checkpoints, weight sync)."""

    def __init__(self, beta: float = 0.99999, epsilon: float = 1e-5):
        super().__init__()
        self.beta, self.epsilon = beta, epsilon
        self.register_buffer("running_mean", torch.zeros(()))
        self.register_buffer("running_mean_sq", torch.zeros(()))
        self.register_buffer("debiasing_term", torch.zeros(()))

    def mean_var(self):
        debias = self.debiasing_term.clamp(min=self.epsilon)
        mean = self.running_mean / debias
        var = (self.running_mean_sq / debias - mean**2).clamp(min=1e-2)
        return mean, var

    @torch.no_grad()
    def update(self, values: torch.Tensor) -> None:
        """One running update from the batch's targets; with data-parallel learners (torch.distributed
        initialized), from all learners' targets together, so every learner keeps the same statistics."""
        v = values.detach().to(self.running_mean.dtype)
        stats = torch.stack([v.sum(), (v**2).sum(), torch.tensor(float(v.numel()), device=v.device)])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(stats)  # every learner calls update once per minibatch: no learner waits alone
        if stats[2] == 0:
            return
        self.running_mean.mul_(self.beta).add_(stats[0] / stats[2] * (1 - self.beta))
        self.running_mean_sq.mul_(self.beta).add_(stats[1] / stats[2] * (1 - self.beta))
        self.debiasing_term.mul_(self.beta).add_(1 - self.beta)

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean_var()
        return (values - mean) / var.sqrt()

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean_var()
        return values * var.sqrt() + mean
