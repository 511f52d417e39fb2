"""The shared recurrent agent network: every agent's row goes through the same fc -> GRU."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

MASKED_LOGIT = -1e9  # exp() underflows to exactly 0 in float32, and 0 * MASKED_LOGIT is not NaN


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unavailable actions get MASKED_LOGIT: probability 0, never sampled, never the argmax."""
    return torch.where(mask > 0, logits, torch.full_like(logits, MASKED_LOGIT))


def agent_inputs(obs: Dict[str, torch.Tensor], use_last_action: bool, use_agent_id: bool,
                 n_groups: int, use_group_id: bool) -> torch.Tensor:
    """[..., n, In]: own observation (+ last action one-hot) (+ agent id) (+ group one-hot)."""
    x = obs["obs"]
    parts = [x]
    if use_last_action:
        parts.append(obs["last_action"])
    if use_agent_id:
        parts.append(agent_ids(x))
    if use_group_id and n_groups > 1:
        parts.append(nn.functional.one_hot(obs["group"].long(), n_groups).to(x.dtype))
    return torch.cat(parts, -1)


def agent_ids(x: torch.Tensor) -> torch.Tensor:
    """Each agent's one-hot id [..., n, n] for per-agent rows x [..., n, F]."""
    n = x.shape[-2]
    return torch.eye(n, device=x.device, dtype=x.dtype).expand(*x.shape[:-2], n, n)


def agent_input_size(obs_dim: int, n_agents: int, n_actions: int, n_groups: int, use_last_action: bool,
                     use_agent_id: bool, use_group_id: bool) -> int:
    return (obs_dim + n_actions * use_last_action + n_agents * use_agent_id
            + (n_groups if use_group_id and n_groups > 1 else 0))


def setup_team_agent(module, defaults: Dict) -> Dict:
    """Shared setup of the team modules: config, threads, sizes and groups from the team observation
    space, and the shared agent network `module.agent_net`. Returns the merged model config."""
    from rllib_uas.envs.team import space_groups

    cfg = {**defaults, **(module.model_config or {})}
    module.cfg = cfg
    configure_torch_threads(cfg["torch_num_threads"])
    spaces = module.observation_space.spaces
    module.n_agents, obs_dim = spaces["obs"].shape
    module.n_actions = spaces["action_mask"].shape[-1]
    agent_group, group_masks = space_groups(module.observation_space)
    module.n_groups = group_masks.shape[0]
    # groups come from the space, so they are not part of the saved state
    module.register_buffer("group_masks", torch.as_tensor(group_masks), persistent=False)
    module.register_buffer("agent_group", torch.as_tensor(agent_group), persistent=False)
    in_dim = agent_input_size(obs_dim, module.n_agents, module.n_actions, module.n_groups, cfg["use_last_action"],
                              cfg["use_agent_id"], cfg["use_group_id"])
    module.agent_net = RecurrentAgentNetwork(in_dim, cfg["fc_hidden"], cfg["gru_hidden"])
    return cfg


class RecurrentAgentNetwork(nn.Module):
    """fc -> ReLU -> GRU over time, the same weights for every agent (global parameter sharing)."""

    def __init__(self, in_dim: int, fc_hidden: int, gru_hidden: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(in_dim, fc_hidden), nn.ReLU())
        self.gru = nn.GRU(fc_hidden, gru_hidden, batch_first=True)
        self.hidden = gru_hidden

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, n, In], h0 [B, n, H] -> (h_seq [B, T, n, H], h_last [B, n, H])."""
        B, T, n, _ = x.shape
        z = self.fc(x).permute(0, 2, 1, 3).reshape(B * n, T, -1)          # [B*n, T, F]
        out, h = self.gru(z, h0.reshape(1, B * n, self.hidden))
        h_seq = out.reshape(B, n, T, self.hidden).permute(0, 2, 1, 3)     # [B, T, n, H]
        return h_seq, h.reshape(B, n, self.hidden)


def configure_torch_threads(n: int | None) -> None:
    """Set torch's intra-op threads for this process (env runner or learner).

    These networks are small: extra threads buy nothing, and when sampling and learning share a
    few cores, OpenMP threads spin against each other (a full-batch GRU update measured 29x
    slower with 2 threads than with 1 on a loaded 2-core machine). None leaves torch's default.
    """
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(int(n))
