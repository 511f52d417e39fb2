"""The U-QMIX learner: QMIX's TD loss on whole episodes, plus lambda_I * CGI (docs/method.md).

Reads like the update rule:
  1. Q_i(tau_t, a_t) from the online agent net; targets from the target agent net, with the
     double-Q action argmax_a Q_online(tau_{t+1}, a) over available actions;
  2. Q_tot = mixer(Q_i, s_t); target Q_tot = target_mixer(Q_i^target, s_{t+1});
  3. TD(lambda) targets (lambda = 0: one-step r + gamma (1 - term) Q_tot');
  4. L = 0.5 * masked mean of (Q_tot - y)^2 over filled steps (PyMARL2's scale), + lambda_I * L_CGI with each group's
     "policy" = softmax of its masked Q-values (detached);
  5. the target networks follow every `target_update_interval_episodes` (hard) or by `tau` (soft).
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from rllib_uas.algorithms.team_learner import NON_FINITE_LOSS, TeamLearnerThreadsMixin
from rllib_uas.modules.agent_network import masked_logits
from rllib_uas.modules.cgi import cgi_loss
from rllib_uas.modules.softmax import softmax
from rllib_uas.modules.team_q import CGI_LOGITS, Q_VALUES, TARGET_Q_VALUES
from rllib_uas.modules.valid_rows import on_rows_of, scatter_rows, valid_steps

NUM_EPISODES_SAMPLED_LIFETIME = "num_episodes_sampled_lifetime"
TD_LOSS_KEY, CGI_LOSS_KEY = "td_loss", "cgi_loss"


def td_lambda_targets(rewards, terminated, filled, target_qs, gamma: float, td_lambda: float) -> torch.Tensor:
    """TD(lambda) returns. rewards/terminated/filled [B, T], target_qs [B, T+1] -> [B, T].

    PyMARL2's recursion (`build_td_lambda_targets`), except that each episode bootstraps from its own
    last state: an episode of L < T steps that was truncated (not terminated) gets Q_tot(s_L), where
    PyMARL2 would take (lambda gamma)^(T-L) Q_tot of the zero padding at T.
    """
    B, T = rewards.shape
    lengths = filled.sum(1).long()  # [B]
    not_term = 1 - terminated.sum(1).clamp(max=1)  # [B]
    bootstrap = target_qs.gather(1, lengths[:, None]).squeeze(1) * not_term  # Q_tot(s_L) or 0
    ret = torch.zeros_like(target_qs)
    ret[:, -1] = torch.where(lengths == T, bootstrap, torch.zeros_like(bootstrap))
    for t in range(T - 1, -1, -1):
        step = td_lambda * gamma * ret[:, t + 1] + filled[:, t] * (
            rewards[:, t] + (1 - td_lambda) * gamma * target_qs[:, t + 1] * (1 - terminated[:, t])
        )
        ret[:, t] = torch.where(lengths == t, bootstrap, step * filled[:, t])
    return ret[:, :-1] * filled


def max_target_q(q: torch.Tensor, q_target: torch.Tensor, mask: torch.Tensor, double_q: bool) -> torch.Tensor:
    """Each agent's bootstrap Q [..., n] from q, q_target [..., n, A] and availability mask [..., n, A]:
    double Q takes the target net's value at the online net's best *available* action (PyMARL2's
    `nq_learner`); otherwise the target net's best available value."""
    if double_q:
        best = masked_logits(q.detach(), mask).argmax(-1, keepdim=True)  # [..., n, 1]
        return q_target.gather(-1, best).squeeze(-1)
    return masked_logits(q_target, mask).max(-1).values


def td_loss(q_tot: torch.Tensor, targets: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """PyMARL2's scale: 0.5 * mean of (Q_tot - y)^2 over filled steps [B, T]."""
    td = (q_tot - targets) * filled
    return 0.5 * (td**2).sum() / filled.sum().clamp(min=1.0)


class UQMIXTorchLearner(TeamLearnerThreadsMixin, TorchLearner):
    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        for module in self.module._rl_modules.values():
            if isinstance(module.unwrapped(), TargetNetworkAPI):
                module.unwrapped().make_target_networks()
        self._episodes_at_last_target_update = 0

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        module = self._module[module_id]
        params = self.get_parameters(module)
        if config.optimizer == "rmsprop":
            opt = torch.optim.RMSprop(params, lr=config.lr, alpha=0.99, eps=1e-5)
        else:
            opt = torch.optim.Adam(params, lr=config.lr)
        self.register_optimizer(module_id=module_id, optimizer=opt, params=params, lr_or_lr_schedule=config.lr)

    @override(TorchLearner)
    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: Dict[str, Any], fwd_out: Dict[str, torch.Tensor]
    ) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        obs = batch[Columns.OBS]  # the team observation, [B, T+1, ...] columns
        actions = batch["actions"].long()  # [B, T, n]
        rewards, terminated, filled = batch["rewards"], batch["terminated"], batch["filled"]  # [B, T]

        # everything runs on the valid rows only, [M, ...] in row-major (episode, step) order: about
        # three quarters of a U-QMIX batch on MMM2 is padding, which every term would mask anyway
        rows = filled > 0  # [B, T]: the steps
        T = filled.shape[1]
        lengths = filled.sum(1).long()
        obs_rows = valid_steps(lengths + 1, T + 1)  # [B, T+1]: s_0..s_L, the bootstrap state included
        step_rows = valid_steps(lengths, T + 1)  # [B, T+1]: s_0..s_{L-1}, the rows of `rows`
        step = step_rows[obs_rows]  # [M1]: which of the obs rows are steps (t < L)
        q = on_rows_of(fwd_out, Q_VALUES, obs_rows)  # [M1, n, A]
        q_target = on_rows_of(fwd_out, TARGET_Q_VALUES, obs_rows)
        mask_avail = obs["action_mask"][obs_rows]  # [M1, n, A]
        state = obs["state"][obs_rows]  # [M1, S]
        chosen = q[step].gather(-1, actions[rows][..., None]).squeeze(-1)  # [M, n]
        q_tot = scatter_rows(module.mix(chosen, state[step]), rows)  # [B, T]
        with torch.no_grad():
            target_max = max_target_q(q, q_target, mask_avail, config.double_q)  # [M1, n]
            target_tot = scatter_rows(module.mix(target_max, state, target=True), obs_rows)  # [B, T+1]
            y = td_lambda_targets(rewards, terminated, filled, target_tot, config.gamma, config.td_lambda)
        loss_td = td_loss(q_tot, y, filled)  # lambda_I weighs CGI against this 0.5-scaled term
        td = (q_tot - y) * filled
        total = loss_td

        cgi = torch.zeros((), device=loss_td.device)
        if CGI_LOGITS in fwd_out and config.cgi_coeff > 0:
            logits = masked_logits(q[step], mask_avail[step])  # [M, n, A]
            cgi = cgi_loss(
                on_rows_of(fwd_out, CGI_LOGITS, obs_rows)[step],
                softmax(logits).detach(),
                obs["group"][step_rows],  # each step's membership
                obs["alive"][step_rows],
                module.group_masks,
                filled[rows],
            )
            total = total + config.cgi_coeff * cgi
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"U-QMIX {NON_FINITE_LOSS} (td {float(loss_td):.4g}, cgi {float(cgi):.4g}); "
                "lower the learning rate or check the env's rewards/observations"
            )
        with torch.no_grad():
            valid = filled > 0
            self.metrics.log_dict(
                {
                    TD_LOSS_KEY: loss_td,
                    CGI_LOSS_KEY: cgi,
                    "q_taken_mean": q_tot[valid].mean(),
                    "target_mean": y[valid].mean(),
                    "td_error_abs": td.abs().sum() / filled.sum().clamp(min=1.0),
                    # episodes this learner updated on: the replay batch split across num_learners
                    "batch_episodes": float(filled.shape[0]),
                },
                key=module_id,
                window=1,
            )
        return total

    @override(TorchLearner)
    def after_gradient_based_update(self, *, timesteps: Dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        cfg = self.config
        episodes = int(timesteps.get(NUM_EPISODES_SAMPLED_LIFETIME, 0))
        soft = cfg.target_update_tau is not None
        if soft or episodes - self._episodes_at_last_target_update >= cfg.target_update_interval_episodes:
            tau = cfg.target_update_tau if soft else 1.0
            for module_id, module in self.module._rl_modules.items():
                for main, target in module.unwrapped().get_target_network_pairs():
                    update_target_network(main_net=main, target_net=target, tau=tau)
                self.metrics.log_value((module_id, "num_target_updates"), 1, reduce="sum")
            if not soft:
                self._episodes_at_last_target_update = episodes
        self.metrics.log_value(
            NUM_ENV_STEPS_SAMPLED_LIFETIME + "_at_update", timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0), window=1
        )
