"""The U-QMIX learner: QMIX's TD loss on whole episodes, plus lambda_I * CGI (spec/method.md).

Reads like the update rule:
  1. Q_i(tau_t, a_t) from the online agent net; targets from the target agent net, with the
     double-Q action argmax_a Q_online(tau_{t+1}, a) over available actions;
  2. Q_tot = mixer(Q_i, s_t); target Q_tot = target_mixer(Q_i^target, s_{t+1});
  3. TD(lambda) targets (lambda = 0: one-step r + gamma (1 - term) Q_tot');
  4. L = masked mean of (Q_tot - y)^2 over filled steps, + lambda_I * L_CGI with each group's
     "policy" = softmax of its masked Q-values (detached);
  5. the target networks follow every `target_update_interval_episodes` (hard) or by `tau` (soft).
"""
from __future__ import annotations

from typing import Any, Dict

import torch
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from rllib_uas.modules.agent_network import masked_logits
from rllib_uas.modules.cgi import cgi_loss
from rllib_uas.modules.team_q import CGI_LOGITS, Q_VALUES, TARGET_Q_VALUES

NUM_EPISODES_SAMPLED_LIFETIME = "num_episodes_sampled_lifetime"
TD_LOSS_KEY, CGI_LOSS_KEY = "td_loss", "cgi_loss"


def td_lambda_targets(rewards, terminated, filled, target_qs, gamma: float, td_lambda: float) -> torch.Tensor:
    """PyMARL2's TD(lambda) returns. rewards/terminated/filled [B, T], target_qs [B, T+1] -> [B, T]."""
    ret = torch.zeros_like(target_qs)
    ret[:, -1] = target_qs[:, -1] * (1 - terminated.sum(1).clamp(max=1))
    for t in range(ret.shape[1] - 2, -1, -1):
        ret[:, t] = td_lambda * gamma * ret[:, t + 1] + filled[:, t] * (
            rewards[:, t] + (1 - td_lambda) * gamma * target_qs[:, t + 1] * (1 - terminated[:, t]))
    return ret[:, :-1]


class UQMIXTorchLearner(TorchLearner):
    def build(self) -> None:
        super().build()
        for module in self.module._rl_modules.values():
            if isinstance(module.unwrapped(), TargetNetworkAPI):
                module.unwrapped().make_target_networks()
        self._episodes_at_last_target_update = 0

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        module = self._module[module_id]
        params = self.get_parameters(module)
        if config.optimizer == "rmsprop":
            opt = torch.optim.RMSprop(params, lr=config.lr, alpha=0.99, eps=1e-5)
        else:
            opt = torch.optim.Adam(params, lr=config.lr)
        self.register_optimizer(module_id=module_id, optimizer=opt, params=params, lr_or_lr_schedule=config.lr)

    def compute_loss_for_module(self, *, module_id: str, config: Any, batch: Dict[str, Any],
                                fwd_out: Dict[str, torch.Tensor]) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        q, q_target = fwd_out[Q_VALUES], fwd_out[TARGET_Q_VALUES]                       # [B, T+1, n, A]
        mask_avail = batch["action_mask"]
        actions = batch["actions"].long()                                              # [B, T, n]
        rewards, terminated, filled = batch["rewards"], batch["terminated"], batch["filled"]  # [B, T]
        state = batch["state"]                                                         # [B, T+1, S]

        chosen = q[:, :-1].gather(-1, actions[..., None]).squeeze(-1)                  # [B, T, n]
        q_tot = module.mix(chosen, state[:, :-1])                                      # [B, T]
        with torch.no_grad():
            if config.double_q:
                best = masked_logits(q.detach(), mask_avail).argmax(-1, keepdim=True)   # [B, T+1, n, 1]
                target_max = q_target.gather(-1, best).squeeze(-1)                      # [B, T+1, n]
            else:
                target_max = masked_logits(q_target, mask_avail).max(-1).values
            target_tot = module.mix(target_max, state, target=True)                    # [B, T+1]
            y = td_lambda_targets(rewards, terminated, filled, target_tot, config.gamma, config.td_lambda)
        td = (q_tot - y) * filled
        td_loss = (td ** 2).sum() / filled.sum().clamp(min=1.0)
        total = td_loss

        cgi = torch.zeros((), device=td_loss.device)
        if CGI_LOGITS in fwd_out and config.cgi_coeff > 0:
            policy = torch.softmax(masked_logits(q[:, :-1], mask_avail[:, :-1]), -1).detach()
            cgi = cgi_loss(fwd_out[CGI_LOGITS][:, :-1], policy, module.agent_group, batch["alive"][:, :-1],
                           module.group_masks, filled)
            total = total + config.cgi_coeff * cgi
        if not torch.isfinite(total):
            raise FloatingPointError(f"U-QMIX loss is not finite (td {float(td_loss):.4g}, cgi {float(cgi):.4g}); "
                                     "lower the learning rate or check the env's rewards/observations")
        with torch.no_grad():
            valid = filled > 0
            self.metrics.log_dict({
                TD_LOSS_KEY: td_loss, CGI_LOSS_KEY: cgi,
                "q_taken_mean": q_tot[valid].mean(), "target_mean": y[valid].mean(),
                "td_error_abs": td.abs().sum() / filled.sum().clamp(min=1.0),
            }, key=module_id, window=1)
        return total

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
        self.metrics.log_value(NUM_ENV_STEPS_SAMPLED_LIFETIME + "_at_update",
                               timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0), window=1)
