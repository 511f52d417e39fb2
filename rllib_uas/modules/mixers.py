"""Value-decomposition mixers: QMIX's monotonic hypernetwork mixer and VDN's sum."""

from __future__ import annotations

import torch
from torch import nn


class QMixer(nn.Module):
    """Q_tot = w2(s)^T elu(W1(s)^T Q + b1(s)) + V(s), with |W1|, |w2| (dQ_tot / dQ_i >= 0)."""

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_embed: int = 64):
        super().__init__()
        self.n_agents, self.embed_dim = n_agents, embed_dim
        self.hyper_w1 = nn.Sequential(
            nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, n_agents * embed_dim)
        )
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.hyper_w2 = nn.Sequential(
            nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, embed_dim)
        )
        self.hyper_v = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, agent_qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """agent_qs [..., n], state [..., S] -> Q_tot [...]."""
        lead = agent_qs.shape[:-1]
        q = agent_qs.reshape(-1, 1, self.n_agents)  # [M, 1, n]
        s = state.reshape(-1, state.shape[-1])  # [M, S]
        w1 = torch.abs(self.hyper_w1(s)).view(-1, self.n_agents, self.embed_dim)  # [M, n, E]
        b1 = self.hyper_b1(s).view(-1, 1, self.embed_dim)  # [M, 1, E]
        hidden = nn.functional.elu(torch.bmm(q, w1) + b1)  # [M, 1, E]
        w2 = torch.abs(self.hyper_w2(s)).view(-1, self.embed_dim, 1)  # [M, E, 1]
        v = self.hyper_v(s).view(-1, 1, 1)
        return (torch.bmm(hidden, w2) + v).reshape(lead)


class VDNMixer(nn.Module):
    """Q_tot = sum_i Q_i."""

    def forward(self, agent_qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return agent_qs.sum(-1)
