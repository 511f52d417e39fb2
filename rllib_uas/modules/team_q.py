"""The U-QMIX / QMIX team RLModule: shared recurrent Q-network over the UAS, masked, plus a mixer.

Acting: greedy masked argmax (inference) or epsilon-greedy with random actions drawn uniformly
among the available ones (exploration; epsilon annealed linearly by env steps `t`).
Training: `_forward_train` unrolls the online and target agent networks over whole padded
episodes [B, T+1, ...] from the episode buffer (flat columns, see `episode_buffer.py`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_uas.modules import valid_rows
from rllib_uas.modules.acting import LeanActing
from rllib_uas.modules.agent_network import (
    MASKED_LOGIT,
    Buckets,
    agent_head,
    masked_logits,
    setup_team_agent,
)
from rllib_uas.modules.cgi import CGIPredictor
from rllib_uas.modules.mixers import QMixer, VDNMixer
from rllib_uas.modules.valid_rows import VALID_ROWS, scatter_rows
from rllib_uas.settings import module_defaults

Q_VALUES, TARGET_Q_VALUES, CGI_LOGITS = "q_values", "target_q_values", "cgi_logits"

DEFAULT_MODEL_CONFIG: Dict[str, Any] = module_defaults("qmix")  # the default config's settings


def epsilon_at(t: float, start: float, finish: float, anneal_steps: int) -> float:
    """Linear anneal from `start` to `finish` over `anneal_steps` env steps, then constant."""
    if anneal_steps <= 0:
        return finish
    return float(max(finish, start - (start - finish) * min(t, anneal_steps) / anneal_steps))


def masked_epsilon_greedy(
    q: torch.Tensor, mask: torch.Tensor, epsilon: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per agent: with prob. epsilon a uniform random *available* action, else the masked argmax."""
    greedy = masked_logits(q, mask).argmax(-1)
    flat = mask.reshape(-1, mask.shape[-1]).float()
    random = torch.multinomial(flat, 1, generator=generator).reshape(greedy.shape)
    explore = torch.rand(greedy.shape, generator=generator, device=q.device) < epsilon
    return torch.where(explore, random, greedy)


def episode_rows(batch: Dict[str, Any]) -> torch.Tensor | None:
    """[B] valid observation rows per padded episode (its steps + the final observation), from
    `filled` [B, T]; None without it. Rows after them are padding, masked by every U-QMIX term."""
    filled = batch.get("filled")
    return None if filled is None else filled.sum(1).long() + 1


class TeamQModule(LeanActing, TorchRLModule, TargetNetworkAPI):
    @override(TorchRLModule)
    def setup(self) -> None:
        cfg = setup_team_agent(self, DEFAULT_MODEL_CONFIG)
        spaces = self.observation_space.spaces
        self.q_head = agent_head(self, lambda: nn.Linear(cfg["gru_hidden"], self.n_actions))
        self.cgi_head = (
            agent_head(self, lambda: CGIPredictor(cfg["gru_hidden"], self.n_actions)) if cfg["cgi"] else None
        )
        state_dim = spaces["state"].shape[-1]
        if cfg["mixer"] == "qmix":
            self.mixer = QMixer(self.n_agents, state_dim, cfg["mixing_embed_dim"], cfg["hypernet_embed"])
        elif cfg["mixer"] == "vdn":
            self.mixer = VDNMixer()
        else:
            raise ValueError(f"mixer must be 'qmix' or 'vdn', got {cfg['mixer']!r}")

    @override(TorchRLModule)
    def get_initial_state(self) -> Dict[str, np.ndarray]:
        return {"h": np.zeros((self.n_agents, self.cfg["gru_hidden"]), dtype=np.float32)}

    # ------------------------------------------------------------------ acting
    def _q(self, obs: Dict[str, torch.Tensor], h0: torch.Tensor, net: nn.Module, head: nn.Module):
        """Acting: (q [B, T, n, A], the state after the last step [B, n, H])."""
        h_seq, h_last = net(self.agent_inputs(obs), h0)  # [B, T, n, H]
        return head(h_seq), h_last

    def _train_inputs(self, obs: Dict[str, torch.Tensor], lengths: torch.Tensor | None):
        """What _q_train reads, built once for the online and the target network: the agent inputs
        [B, T, n, In] and no buckets, or with padding skipped (valid_rows.PACK) each bucket's inputs,
        built from its rows of the observation columns, and the buckets."""
        if lengths is None or not valid_rows.PACK:
            return self.agent_inputs(obs), None
        buckets = Buckets(lengths, obs["obs"].shape[1], self.n_agents)
        return buckets.take_inputs(obs, self.agent_inputs), buckets

    def _q_train(
        self, x, h0: torch.Tensor, net: nn.Module, head: nn.Module, lengths: torch.Tensor | None, buckets
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Training: (q, the agent states it came from). With buckets both are at the valid steps only,
        [M, n, A] and [M, n, H] (the padded [B, T, n, ...] grid is never built); otherwise they are the
        grid, [B, T, n, A] and [B, T, n, H]."""
        if buckets is not None:
            h = net.valid_states(x, h0, buckets)  # [M, n, H]
        else:  # no lengths, or padding not skipped (the reference the tests compare with)
            h, _ = net(x, h0, lengths)  # [B, T, n, H]
        return head(h), h

    @override(TorchRLModule)
    def _forward_inference(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        obs = batch[Columns.OBS]
        q, h = self._q(obs, batch[Columns.STATE_IN]["h"], self.agent_net, self.q_head)
        q = masked_logits(q, obs["action_mask"])
        return {Columns.ACTIONS: q.argmax(-1), Columns.STATE_OUT: {"h": h}}

    @override(TorchRLModule)
    def _forward_exploration(self, batch: Dict[str, Any], t: int = 0, **kwargs) -> Dict[str, Any]:
        obs = batch[Columns.OBS]
        q, h = self._q(obs, batch[Columns.STATE_IN]["h"], self.agent_net, self.q_head)
        eps = epsilon_at(t, self.cfg["epsilon_start"], self.cfg["epsilon_finish"], self.cfg["epsilon_anneal_steps"])
        return {Columns.ACTIONS: masked_epsilon_greedy(q, obs["action_mask"], eps), Columns.STATE_OUT: {"h": h}}

    # ------------------------------------------------------------------ training
    @override(TorchRLModule)
    def _forward_train(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        """Unroll whole padded episodes: the team observation under Columns.OBS, as when acting, with
        [B, T+1, ...] columns, and `filled` [B, T] beside it (`u_qmix.algorithm.train_batch`).

        With `filled` (and valid_rows.PACK) the outputs are at the valid observation rows only,
        [M, n, A] in row-major (episode, step) order, and VALID_ROWS [B, T+1] says which rows those
        are; otherwise they are the [B, T+1, n, A] grid. `valid_rows.on_rows_of` reads either form."""
        if Columns.OBS not in batch:
            return {}
        obs = batch[Columns.OBS]
        B = obs["obs"].shape[0]
        h0 = torch.zeros(B, self.n_agents, self.cfg["gru_hidden"], device=obs["obs"].device)
        lengths = episode_rows(batch)
        x, buckets = self._train_inputs(obs, lengths)  # read by the online and the target network
        q, h = self._q_train(x, h0, self.agent_net, self.q_head, lengths, buckets)
        out = {Q_VALUES: q}
        with torch.no_grad():
            out[TARGET_Q_VALUES], _ = self._q_train(
                x, h0, self._target_agent_net, self._target_q_head, lengths, buckets
            )
        if self.cgi_head is not None:
            out[CGI_LOGITS] = self.cgi_head(h)
        if buckets is not None:
            out[VALID_ROWS] = buckets.rows
        return out

    def mix(self, agent_qs: torch.Tensor, state: torch.Tensor, target: bool = False) -> torch.Tensor:
        return (self._target_mixer if target else self.mixer)(agent_qs, state)

    # ------------------------------------------------------------------ TargetNetworkAPI
    @override(TargetNetworkAPI)
    def make_target_networks(self) -> None:
        self._target_agent_net = make_target_network(self.agent_net)
        self._target_q_head = make_target_network(self.q_head)
        self._target_mixer = make_target_network(self.mixer)

    @override(TargetNetworkAPI)
    def get_target_network_pairs(self) -> List[Tuple[nn.Module, nn.Module]]:
        return [
            (self.agent_net, self._target_agent_net),
            (self.q_head, self._target_q_head),
            (self.mixer, self._target_mixer),
        ]

    @override(TargetNetworkAPI)
    def forward_target(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        obs = batch[Columns.OBS]
        h0 = torch.zeros(obs["obs"].shape[0], self.n_agents, self.cfg["gru_hidden"], device=obs["obs"].device)
        lengths = episode_rows(batch)
        x, buckets = self._train_inputs(obs, lengths)
        q, _ = self._q_train(x, h0, self._target_agent_net, self._target_q_head, lengths, buckets)
        return {TARGET_Q_VALUES: q if buckets is None else scatter_rows(q, buckets.rows)}  # [B, T+1, n, A]


__all__ = ["TeamQModule", "epsilon_at", "masked_epsilon_greedy", "MASKED_LOGIT"]
