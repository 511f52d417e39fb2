"""A team action distribution: independent categoricals, one per agent, over the last axis."""

from __future__ import annotations

import torch
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical


class TeamCategorical(TorchCategorical):
    """logits [..., n, A]; logp/entropy/kl are summed over the n agents (the joint action).

    The U-MAPPO loss reads per-agent quantities from the logits directly; RLlib's env runners use
    this class to sample the team action [..., n] and record its joint log-probability.
    """

    def logp(self, value: torch.Tensor, **kwargs) -> torch.Tensor:
        return super().logp(value, **kwargs).sum(-1)

    def entropy(self, **kwargs) -> torch.Tensor:
        return super().entropy(**kwargs).sum(-1)

    def kl(self, other: "TeamCategorical", **kwargs) -> torch.Tensor:
        return super().kl(other, **kwargs).sum(-1)

    def to_deterministic(self) -> "TeamArgmax":
        return TeamArgmax(self.logits)


class TeamArgmax(TeamCategorical):
    """Greedy team action: the argmax of every agent's (masked) logits."""

    def sample(self, *, sample_shape=None, **kwargs) -> torch.Tensor:
        return torch.argmax(self.logits, dim=-1)

    def rsample(self, *, sample_shape=None, **kwargs) -> torch.Tensor:
        return self.sample()
