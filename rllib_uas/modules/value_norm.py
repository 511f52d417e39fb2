"""MAPPO's value normalization: running, debiased mean/variance of the value targets."""
from __future__ import annotations

import torch
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
        var = (self.running_mean_sq / debias - mean ** 2).clamp(min=1e-2)
        return mean, var

    @torch.no_grad()
    def update(self, values: torch.Tensor) -> None:
        if values.numel() == 0:
            return
        self.running_mean.mul_(self.beta).add_(values.mean() * (1 - self.beta))
        self.running_mean_sq.mul_(self.beta).add_((values ** 2).mean() * (1 - self.beta))
        self.debiasing_term.mul_(self.beta).add_(1 - self.beta)

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean_var()
        return (values - mean) / var.sqrt()

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean_var()
        return values * var.sqrt() + mean
