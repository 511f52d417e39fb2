"""The U-MAPPO / MAPPO team RLModule: a shared recurrent UAS policy, a CGI head, a centralized critic.

Observations come from the team view (`rllib_uas.envs.team`): obs [B, T, n, D], action_mask
[B, T, n, A], state [B, T, S], alive/group [B, T, n], last_action [B, T, n, A] (+ agent_state).

model_config keys (set by UMAPPOConfig): fc_hidden, gru_hidden, critic_hidden, max_seq_len,
use_agent_id, use_last_action, use_group_id, parameter_sharing ("global" / "group"), cgi, state_type,
value_norm, recurrent_critic, orthogonal_init. Groups and their masks AM_g come from the observation space
(`rllib_uas.team_obs.space_groups`).

The critic, as MAPPO's:
- state_type "EP": one team value V(s_t) [B, T] from the environment state;
- state_type "AS": MAPPO's agent-specific critic, one value per agent V(s_t, o_t^i) [B, T, n] from
  the agent-specific state with death masking (a dead agent's input is zero but for its id);
- recurrent_critic: fc -> GRU -> value (rMAPPO), its hidden state "hc" [k, H] (k = 1 or n) in
  the module state; otherwise an MLP.
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_uas.modules import valid_rows
from rllib_uas.modules.acting import LeanActing
from rllib_uas.modules.agent_network import (
    INPUT_COLUMNS,
    Buckets,
    RecurrentAgentNetwork,
    agent_head,
    agent_ids,
    masked_logits,
    output_layers,
    setup_team_agent,
)
from rllib_uas.modules.batch_cache import SameTensorsCache
from rllib_uas.modules.cgi import CGIPredictor
from rllib_uas.modules.distributions import TeamCategorical
from rllib_uas.modules.valid_rows import VALID_ROWS
from rllib_uas.modules.value_norm import ValueNorm
from rllib_uas.settings import module_defaults

CGI_LOGITS = "cgi_logits"
VF_NORMALIZED = "vf_preds_normalized"  # the critic's raw output at sampling time (for value clipping)

DEFAULT_MODEL_CONFIG: Dict[str, Any] = module_defaults("mappo")  # the default config's settings
POLICY_GAIN = 0.01  # MAPPO's gain on the policy output: a near-uniform masked policy at the start


def _mlp(sizes, out: int) -> nn.Sequential:
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], out))
    return nn.Sequential(*layers)


class TeamPPOModule(LeanActing, TorchRLModule, ValueFunctionAPI):
    @override(TorchRLModule)
    def setup(self) -> None:
        cfg = setup_team_agent(self, DEFAULT_MODEL_CONFIG)
        self._batch_cache = SameTensorsCache()  # the training forward's per-batch inputs
        spaces = self.observation_space.spaces
        self.policy_head = agent_head(self, lambda: nn.Linear(cfg["gru_hidden"], self.n_actions))
        self.cgi_head = (
            agent_head(self, lambda: CGIPredictor(cfg["gru_hidden"], self.n_actions)) if cfg["cgi"] else None
        )
        if cfg["state_type"] == "AS":
            if "agent_state" not in spaces:
                raise ValueError(
                    "state_type 'AS' needs the env's agent_state observation (env_config agent_state=True)"
                )
            critic_in = spaces["agent_state"].shape[-1] + self.n_agents  # + agent id (kept when dead)
        elif cfg["state_type"] == "EP":
            critic_in = spaces["state"].shape[-1]
        else:
            raise ValueError(
                f"state_type must be 'EP' (environment state) or 'AS' (agent-specific), got {cfg['state_type']!r}"
            )
        hidden = tuple(cfg["critic_hidden"])
        self.critic_rows = self.n_agents if cfg["state_type"] == "AS" else 1
        if cfg["recurrent_critic"]:
            self.critic_rnn = RecurrentAgentNetwork(critic_in, hidden[0], hidden[-1])
            self.critic = nn.Linear(hidden[-1], 1)
        else:
            self.critic_rnn = None
            self.critic = _mlp([critic_in, *hidden], 1)
        self.value_norm = ValueNorm() if cfg["value_norm"] else None
        self.action_dist_cls = TeamCategorical
        if cfg["orthogonal_init"]:
            orthogonal_init_(self, output_layers(self.policy_head), self._critic_out())

    def _critic_out(self) -> nn.Linear:
        return self.critic if isinstance(self.critic, nn.Linear) else self.critic[-1]

    def actor_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith("critic")]

    def critic_parameters(self):
        """`critic` and `critic_rnn`: the parameters the critic's optimizer steps."""
        return [p for name, p in self.named_parameters() if name.startswith("critic")]

    @override(TorchRLModule)
    def get_initial_state(self) -> Dict[str, np.ndarray]:
        state = {"h": np.zeros((self.n_agents, self.cfg["gru_hidden"]), dtype=np.float32)}
        if self.critic_rnn is not None:
            state["hc"] = np.zeros((self.critic_rows, self.critic_rnn.hidden), dtype=np.float32)
        return state

    # ------------------------------------------------------------------ policy
    def _policy(self, batch: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        obs = batch[Columns.OBS]
        x = self.agent_inputs(obs)  # [B, T, n, In]
        state_in = batch[Columns.STATE_IN]
        # training batches carry each chunk's valid length: the unroll skips the zero padding
        h_seq, h_last = self.agent_net(x, state_in["h"], batch.get(Columns.SEQ_LENS))  # [B, T, n, H]
        logits = masked_logits(self.policy_head(h_seq), obs["action_mask"])  # [B, T, n, A]
        state_out = {"h": h_last}
        if "hc" in state_in:
            state_out["hc"] = state_in["hc"]  # the critic's memory advances only where values are computed
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.STATE_OUT: state_out, Columns.EMBEDDINGS: h_seq}

    @override(TorchRLModule)
    def _forward_inference(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        out = self._policy(batch)
        out.pop(Columns.EMBEDDINGS)
        return out

    @override(TorchRLModule)
    def _forward_exploration(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        out = self._forward_inference(batch)
        with torch.no_grad():
            out[VF_NORMALIZED], hc = self._critic(batch)
        if hc is not None:
            out[Columns.STATE_OUT]["hc"] = hc
        return out

    @override(TorchRLModule)
    def _forward_train(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        """With each chunk's valid length (SEQ_LENS, as RLlib's learner batches carry it) and
        valid_rows.PACK, the outputs are at the valid steps only, [M, n, A] in row-major (chunk,
        step) order, and VALID_ROWS [B, T] says which rows those are: the heads and the loss skip
        the chunks' zero padding. Otherwise they are the [B, T, n, A] grid."""
        lengths = batch.get(Columns.SEQ_LENS)
        if lengths is None or not valid_rows.PACK:
            out = self._policy(batch)
            h = out[Columns.EMBEDDINGS]  # [B, T, n, H]
        else:
            buckets, x, mask = self._batch_inputs(batch[Columns.OBS], lengths)
            h = self.agent_net.valid_states(x, batch[Columns.STATE_IN]["h"], buckets)  # [M, n, H]
            logits = masked_logits(self.policy_head(h), mask)  # [M, n, A]
            out = {Columns.ACTION_DIST_INPUTS: logits, VALID_ROWS: buckets.rows}
        if self.cgi_head is not None:
            out[CGI_LOGITS] = self.cgi_head(h)  # [B, T, n, A] or [M, n, A]
        return out

    def _batch_inputs(self, obs: Dict[str, torch.Tensor], lengths: torch.Tensor):
        """The training forward's inputs that depend on the batch only: the length buckets, each
        bucket's agent inputs [b, steps, n, In] and the action mask at the valid rows [M, n, A];
        built once per batch (`batch_cache`: MAPPO's epochs pass the same batch tensors)."""

        def build():
            buckets = Buckets(lengths, obs["obs"].shape[1], self.n_agents)
            return buckets, buckets.take_inputs(obs, self.agent_inputs), obs["action_mask"][buckets.rows]

        cols = tuple(obs[k] for k in (*INPUT_COLUMNS, "action_mask") if k in obs) + (lengths,)
        return self._batch_cache.get("inputs", cols, build)

    # ------------------------------------------------------------------ critic
    def _critic(self, batch: Dict[str, Any], rows: torch.Tensor | None = None):
        """The critic's raw (normalized-space) values: [B, T] (EP) or [B, T, n] (AS); and its last memory.
        rows [B, T] (bool): the values at those rows only, [M] or [M, n] (the memory is then None)."""
        obs = batch[Columns.OBS]
        if rows is not None:
            if self.critic_rnn is not None:  # a recurrent critic runs over whole chunks
                return self._critic(batch)[0][rows], None
            keys = ("agent_state", "alive") if self.cfg["state_type"] == "AS" else ("state",)
            obs = {k: obs[k][rows] for k in keys}  # [M, ...]
        if self.cfg["state_type"] == "AS":
            masked = obs["agent_state"] * obs["alive"][..., None]  # [B, T, n, S+D] (or [M, n, S+D])
            x = torch.cat([masked, agent_ids(masked)], -1)  # [B, T, n, S+D+n]
        else:
            x = obs["state"][..., None, :]  # [B, T, 1, S]
        hc = None
        if self.critic_rnn is not None:
            z, hc = self.critic_rnn(x, batch[Columns.STATE_IN]["hc"])  # [B, T, k, H]
            v = self.critic(z).squeeze(-1)  # [B, T, k]
        else:
            v = self.critic(x).squeeze(-1)
        return (v if self.cfg["state_type"] == "AS" else v[..., 0]), hc

    def normalized_values(self, batch: Dict[str, Any], rows: torch.Tensor | None = None) -> torch.Tensor:
        """The critic's values in normalized space, on the grid or at `rows` [B, T] only (see _critic)."""
        return self._critic(batch, rows)[0]

    @override(ValueFunctionAPI)
    def compute_values(self, batch: Dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """Values in return units, [B, T] or [B, T, n] (denormalized), for the GAE connector."""
        v = self._critic(batch)[0]
        return self.value_norm.denormalize(v) if self.value_norm is not None else v


def orthogonal_init_(module: nn.Module, policy_outs: List[nn.Linear], value_out: nn.Linear) -> None:
    """MAPPO's initialization: orthogonal weights (ReLU gain), zero biases; GRUs orthogonal; the
    policy output(s) (one per group with group sharing) with gain 0.01 and the value output with gain 1."""
    relu = nn.init.calculate_gain("relu")
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain=relu)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.GRU):
            for name, p in m.named_parameters():
                (nn.init.orthogonal_ if name.startswith("weight") else nn.init.zeros_)(p)
    for policy_out in policy_outs:
        nn.init.orthogonal_(policy_out.weight, gain=POLICY_GAIN)
    nn.init.orthogonal_(value_out.weight, gain=1.0)
