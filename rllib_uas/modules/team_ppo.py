"""The U-MAPPO / MAPPO team RLModule: a shared recurrent UAS policy, a CGI head, a centralized critic.

Observations come from the team view (`rllib_uas.envs.team`): obs [B, T, n, D], action_mask
[B, T, n, A], state [B, T, S], alive/group [B, T, n], last_action [B, T, n, A] (+ agent_state).

model_config keys (set by UMAPPOConfig): fc_hidden, gru_hidden, critic_hidden, max_seq_len,
use_agent_id, use_last_action, use_group_id, cgi, state_type ("EP" | "AS"), value_norm.
Groups and their masks AM_g come from the observation space (`rllib_uas.envs.team.space_groups`).
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from rllib_uas.modules.agent_network import agent_inputs, masked_logits, setup_team_agent
from rllib_uas.modules.cgi import CGIPredictor
from rllib_uas.modules.distributions import TeamCategorical
from rllib_uas.modules.value_norm import ValueNorm

CGI_LOGITS = "cgi_logits"
VF_NORMALIZED = "vf_preds_normalized"  # the critic's raw output at sampling time (for value clipping)

DEFAULT_MODEL_CONFIG: Dict[str, Any] = dict(
    fc_hidden=64, gru_hidden=64, critic_hidden=(64, 64), max_seq_len=20, use_agent_id=True,
    use_last_action=True, use_group_id=False, cgi=True, state_type="EP", value_norm=True, torch_num_threads=1)


def _mlp(sizes, out: int) -> nn.Sequential:
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], out))
    return nn.Sequential(*layers)


class TeamPPOModule(TorchRLModule, ValueFunctionAPI):
    def setup(self) -> None:
        cfg = setup_team_agent(self, DEFAULT_MODEL_CONFIG)
        spaces = self.observation_space.spaces
        self.policy_head = nn.Linear(cfg["gru_hidden"], self.n_actions)
        self.cgi_head = CGIPredictor(cfg["gru_hidden"], self.n_actions) if cfg["cgi"] else None
        if cfg["state_type"] == "AS":
            if "agent_state" not in spaces:
                raise ValueError("state_type 'AS' needs the env's agent_state observation (env_config agent_state=True)")
            critic_in = spaces["agent_state"].shape[-1]
        elif cfg["state_type"] == "EP":
            critic_in = spaces["state"].shape[-1]
        else:
            raise ValueError(f"state_type must be 'EP' (environment state) or 'AS' (agent-specific), "
                             f"got {cfg['state_type']!r}")
        self.critic = _mlp([critic_in, *cfg["critic_hidden"]], 1)
        self.value_norm = ValueNorm() if cfg["value_norm"] else None
        self.action_dist_cls = TeamCategorical

    def get_initial_state(self) -> Dict[str, np.ndarray]:
        return {"h": np.zeros((self.n_agents, self.cfg["gru_hidden"]), dtype=np.float32)}

    # ------------------------------------------------------------------ policy
    def _policy(self, batch: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        obs = batch[Columns.OBS]
        x = agent_inputs(obs, self.cfg["use_last_action"], self.cfg["use_agent_id"], self.n_groups,
                         self.cfg["use_group_id"])                                          # [B, T, n, In]
        h_seq, h_last = self.agent_net(x, batch[Columns.STATE_IN]["h"])                  # [B, T, n, H]
        logits = masked_logits(self.policy_head(h_seq), obs["action_mask"])              # [B, T, n, A]
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.STATE_OUT: {"h": h_last}, Columns.EMBEDDINGS: h_seq}

    def _forward_inference(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        out = self._policy(batch)
        out.pop(Columns.EMBEDDINGS)
        return out

    def _forward_exploration(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        out = self._forward_inference(batch)
        with torch.no_grad():
            out[VF_NORMALIZED] = self._critic(batch[Columns.OBS])
        return out

    def _forward_train(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        out = self._policy(batch)
        if self.cgi_head is not None:
            out[CGI_LOGITS] = self.cgi_head(out[Columns.EMBEDDINGS])                    # [B, T, n, A]
        return out

    # ------------------------------------------------------------------ critic
    def _critic(self, obs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """The critic's raw (normalized-space) team value [B, T]."""
        if self.cfg["state_type"] == "AS":
            v = self.critic(obs["agent_state"]).squeeze(-1)                             # [B, T, n]
            alive = obs["alive"]
            # the team value: the mean over alive agents (all agents once the team is wiped out)
            w = torch.where(alive.sum(-1, keepdim=True) > 0, alive, torch.ones_like(alive))
            return (v * w).sum(-1) / w.sum(-1)
        return self.critic(obs["state"]).squeeze(-1)

    def normalized_values(self, batch: Dict[str, Any]) -> torch.Tensor:
        return self._critic(batch[Columns.OBS])

    def compute_values(self, batch: Dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """Team value in return units [B, T] (denormalized), as RLlib's GAE connector expects."""
        v = self._critic(batch[Columns.OBS])
        return self.value_norm.denormalize(v) if self.value_norm is not None else v
