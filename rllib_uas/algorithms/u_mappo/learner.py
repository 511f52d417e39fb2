"""The U-MAPPO learner: MAPPO's loss on the team batch, plus lambda_I * CGI (docs/method.md).

L = L_clip - c_e * entropy + c_v * L_value + lambda_I * L_CGI, where
- L_clip uses per-agent ratios r_i = pi(a_i) / pi_old(a_i), clipped per agent, averaged over
  alive agents and valid steps (stock PPO would clip the joint ratio prod_i r_i);
- the team advantage A(s_t) (GAE, lambda 0.95) is shared by every agent of the step;
- L_value is MAPPO's clipped loss on normalized values, max(err, err_clipped);
- dead agents (alive = 0) are masked out of the policy, entropy and CGI terms.
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY, VF_LOSS_KEY
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.annotations import override
from ray.rllib.utils.torch_utils import explained_variance

from rllib_uas.algorithms.team_learner import NON_FINITE_LOSS, TeamLearnerThreadsMixin
from rllib_uas.algorithms.u_mappo.epochs import EpochMinibatchIterator, minibatches_per_epoch
from rllib_uas.algorithms.u_mappo.gae import TeamGeneralAdvantageEstimation
from rllib_uas.modules.batch_cache import SameTensorsCache
from rllib_uas.modules.cgi import cgi_loss
from rllib_uas.modules.softmax import log_softmax, softmax
from rllib_uas.modules.team_ppo import CGI_LOGITS, VF_NORMALIZED
from rllib_uas.modules.valid_rows import VALID_ROWS, on_grid, scatter_rows

CGI_LOSS_KEY = "cgi_loss"
PROX_LOGITS = "prox_logits"  # [B, T, n, A] the policy at the update's start (overlap_sampling)


def taken_log_probs(log_probs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a_i) [..., n] from a policy's log-softmax [..., n, A] and the actions taken [..., n]."""
    return log_probs.gather(-1, actions[..., None].long()).squeeze(-1)


def per_agent_clipped_surrogate(logp, old_logp, advantages, clip: float, weight, prox_logp=None):
    """Mean over weighted (step, agent) of min(r A, clip(r) A) with per-agent ratios.

    logp/old_logp [..., n]: the taken actions' log-probabilities under the policy being trained and
    the one that acted (`taken_log_probs`); advantages [..., n] (or [...], shared by the agents of a
    step); weight [..., n] (0/1). Returns (objective, r, behaviour weight).

    With prox_logp (under the policy at the start of this update, for a batch played by an older
    one, `overlap_sampling`): the decoupled objective of Hilton et al. (2022, "Batch size-invariance
    for policy optimization"), w * min(r A, clip(r) A) with r = pi / pi_prox, clipped around the
    proximal policy, and w = pi_prox / pi_old (no gradient) correcting for the behaviour policy.
    Clipping against the stale behaviour policy instead would zero the gradient of every step the
    previous update already moved past the clip range. With pi_prox = pi_old it is PPO's objective.
    """
    behaviour = None
    if prox_logp is not None:
        behaviour = torch.exp(prox_logp - old_logp).detach()
        old_logp = prox_logp
    ratio = torch.exp(logp - old_logp)
    adv = advantages if advantages.shape == ratio.shape else advantages[..., None]
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv)
    if behaviour is None:  # PPO's objective: no weight (all ones) to multiply by on the default path
        behaviour = torch.ones_like(logp)
    else:
        surrogate = behaviour * surrogate
    return (surrogate * weight).sum() / weight.sum().clamp(min=1.0), ratio, behaviour


def value_error_loss(err: torch.Tensor, kind: str, delta: float) -> torch.Tensor:
    """Elementwise Huber(err, delta) (MAPPO's default) or 0.5 * err^2 ("mse"); the two agree inside delta."""
    if kind == "huber":
        a = err.abs()
        return torch.where(a <= delta, 0.5 * err**2, delta * (a - 0.5 * delta))
    return 0.5 * err**2


def standardize(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(x - mean) / (std + eps) with mean and std over the entries where weight > 0 (MAPPO's advantages)."""
    n = weight.sum().clamp(min=1.0)
    mean = (x * weight).sum() / n
    var = (((x - mean) ** 2) * weight).sum() / n
    return (x - mean) / (var.sqrt() + eps)


def masked_entropy(probs, log_probs, weight):
    """Mean per-agent entropy -sum_a p log p of the masked policy over weighted (step, agent), from its
    softmax and log-softmax [..., n, A]; an unavailable action adds 0 * MASKED_LOGIT = 0.

    The probabilities come from a softmax, not from exp(log p): on a CPU torch's exp goes through
    MKL, whose exp of the unavailable actions' log-probabilities (about -1e9) takes a slow underflow
    path, 20x a plain exp. Forward and backward over an MMM2 epoch's [3619, 10, 28]: 6-8 ms against
    16-19 ms, with the same value and gradients to float rounding (tests/test_u_mappo.py)."""
    ent = -(probs * log_probs).sum(-1)  # [..., n]
    return (ent * weight).sum() / weight.sum().clamp(min=1.0)


class UMAPPOTorchLearner(TeamLearnerThreadsMixin, PPOTorchLearner):
    @override(PPOTorchLearner)
    def build(self) -> None:
        super().build()
        self._prox_from_first_pass = False  # set per update (_create_iterator_if_necessary)
        self._batch_cache = SameTensorsCache()  # the loss's terms that depend on the batch only
        if self._learner_connector is not None and self.config.add_default_connectors_to_learner_pipeline:
            # per-agent values (AS) and MAPPO's standardization in the loss instead of RLlib's GAE piece
            self._learner_connector.remove("GeneralAdvantageEstimation")
            self._learner_connector.append(
                TeamGeneralAdvantageEstimation(gamma=self.config.gamma, lambda_=self.config.lambda_)
            )

    def _create_iterator_if_necessary(
        self,
        *,
        training_data: Any,
        num_total_minibatches: int = 0,
        num_epochs: int = 1,
        minibatch_size=None,
        shuffle_batch_per_epoch: bool = False,
        **kwargs,
    ):
        """MAPPO's epochs (`epochs.py`) instead of RLlib's cyclic minibatches. A data iterator (Ray Data)
        and a minibatch count synchronized across several learners keep RLlib's own iterator."""
        if training_data.data_iterators or num_total_minibatches:
            return super()._create_iterator_if_necessary(
                training_data=training_data,
                num_total_minibatches=num_total_minibatches,
                num_epochs=num_epochs,
                minibatch_size=minibatch_size,
                shuffle_batch_per_epoch=shuffle_batch_per_epoch,
                **kwargs,
            )
        # RLlib's own preparation (batch from episodes, modules not to update dropped, slicing by
        # sequence) with no minibatching: its dummy iterator yields the prepared batch once
        whole = super()._create_iterator_if_necessary(training_data=training_data)
        if not whole:
            return whole
        batch = next(iter(whole))
        k = minibatches_per_epoch(self.config.train_batch_size_per_learner, minibatch_size)
        # overlap_sampling's proximal policy: with one minibatch per epoch (MAPPO's SMAC setting),
        # the first epoch's forward pass is at the update's start and the loss keeps its logits;
        # with several, the first epoch's later minibatches are not, so one pass comes first
        self._prox_from_first_pass = self.config.overlap_sampling and k == 1
        if self.config.overlap_sampling and k > 1:
            self._add_proximal_logits(batch)
        return EpochMinibatchIterator(batch, num_epochs=num_epochs, num_minibatches=k, shuffle=shuffle_batch_per_epoch)

    def _add_proximal_logits(self, batch) -> None:
        """The policy's logits on the whole batch before this update's first step (PROX_LOGITS,
        [B, T, n, A]), for the decoupled objective on a batch played by the weights before the
        previous update (`per_agent_clipped_surrogate`)."""
        with torch.no_grad():
            for module_id, module_batch in batch.policy_batches.items():
                out = self.module[module_id].forward_train(module_batch)
                module_batch[PROX_LOGITS] = on_grid(out, Columns.ACTION_DIST_INPUTS)

    @override(PPOTorchLearner)
    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        module = self._module[module_id].unwrapped()
        if config.separate_optimizers:
            groups = (("actor", module.actor_parameters()), ("critic", module.critic_parameters()))
        else:
            groups = (("default_optimizer", list(module.parameters())),)
        for name, params in groups:
            self.register_optimizer(
                module_id=module_id,
                optimizer_name=name,
                optimizer=torch.optim.Adam(params, lr=config.lr, eps=config.adam_eps),
                params=params,
                lr_or_lr_schedule=config.lr,
            )

    @override(PPOTorchLearner)
    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: Dict[str, Any], fwd_out: Dict[str, torch.Tensor]
    ) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        obs = batch[Columns.OBS]
        # every term below reads the batch's [B, T, ...] columns at the rows the module's outputs are
        # at: the valid steps only, [M, ...], when it packed them (VALID_ROWS), else the whole grid
        rows = fwd_out.get(VALID_ROWS)

        def at(x: torch.Tensor) -> torch.Tensor:
            return x if rows is None else x[rows]

        # what depends on the batch only is built in an update's first epoch and reused by the others
        # (one minibatch per epoch on SMAC: the same batch tensors every epoch, `batch_cache`)
        def batch_terms():
            valid = at(
                batch[Columns.LOSS_MASK].to(torch.float32)
                if Columns.LOSS_MASK in batch
                else torch.ones(batch[Columns.ACTIONS].shape[:2], device=obs["obs"].device)
            )  # [B, T]
            alive = at(obs["alive"])  # [B, T, n]
            weight = alive * valid[..., None]
            advantages = at(batch[Postprocessing.ADVANTAGES])  # [B, T(, n)]
            if advantages.shape != alive.shape:  # one team advantage per step
                advantages = advantages[..., None].expand_as(alive)  # [B, T, n]
            actions = at(batch[Columns.ACTIONS])  # [B, T, n]
            old_logp = taken_log_probs(log_softmax(at(batch[Columns.ACTION_DIST_INPUTS])), actions)
            return valid, alive, weight, standardize(advantages, weight), actions, old_logp

        columns = (rows, batch.get(Columns.LOSS_MASK), obs["alive"], batch[Postprocessing.ADVANTAGES])
        columns += (batch[Columns.ACTIONS], batch[Columns.ACTION_DIST_INPUTS])
        valid, alive, weight, advantages, actions, old_logp = self._batch_cache.get(
            f"loss/{module_id}", columns, batch_terms
        )
        logits = fwd_out[Columns.ACTION_DIST_INPUTS]  # [B, T, n, A]
        # the policy's softmax and log-softmax once, for the surrogate, the entropy and CGI's targets
        log_probs, probs = log_softmax(logits), softmax(logits)  # [B, T, n, A]
        prox = batch.get(PROX_LOGITS)  # overlap_sampling: the policy at the update's start
        prox_logp = None
        if prox is not None:
            prox_logp = self._batch_cache.get(
                f"prox/{module_id}",
                (rows, prox, batch[Columns.ACTIONS]),
                lambda: taken_log_probs(log_softmax(at(prox)), actions),
            )
        elif self._prox_from_first_pass:  # the first epoch of a one-minibatch update: these logits
            prox_logp = taken_log_probs(log_probs.detach(), actions)
            detached = logits.detach()
            batch[PROX_LOGITS] = detached if rows is None else scatter_rows(detached, rows)  # for the next epochs
        policy_obj, ratio, behaviour = per_agent_clipped_surrogate(
            taken_log_probs(log_probs, actions), old_logp, advantages, config.clip_param, weight, prox_logp=prox_logp
        )
        entropy = masked_entropy(probs, log_probs, weight)

        # value: MAPPO's clipped loss in normalized space; per agent over alive agents for AS
        targets = at(batch[Postprocessing.VALUE_TARGETS])  # [B, T(, n)]
        v_weight = weight if targets.shape == alive.shape else valid
        mask = v_weight > 0
        if module.value_norm is not None:
            module.value_norm.update(targets[mask])
            targets_n = module.value_norm.normalize(targets)
        else:
            targets_n = targets
        values = module.normalized_values(batch, rows)  # like targets
        err = value_error_loss(values - targets_n, config.value_loss, config.huber_delta)
        old_values = batch.get(VF_NORMALIZED)
        old_values = None if old_values is None else at(old_values)
        if old_values is not None and config.vf_clip_param and config.vf_clip_param > 0:
            clipped = old_values + torch.clamp(values - old_values, -config.vf_clip_param, config.vf_clip_param)
            err = torch.max(err, value_error_loss(clipped - targets_n, config.value_loss, config.huber_delta))
        value_loss = (err * v_weight).sum() / v_weight.sum().clamp(min=1.0)

        entropy_coeff = self.entropy_coeff_schedulers_per_module[module_id].get_current_value()
        total = -policy_obj + config.vf_loss_coeff * value_loss - entropy_coeff * entropy

        cgi = torch.zeros((), device=total.device)
        if CGI_LOGITS in fwd_out and config.cgi_coeff > 0:
            group = at(obs["group"])  # [B, T, n] each step's membership
            # the current policies, as targets (no gradient)
            cgi = cgi_loss(fwd_out[CGI_LOGITS], probs.detach(), group, alive, module.group_masks, valid)
            total = total + config.cgi_coeff * cgi
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"U-MAPPO {NON_FINITE_LOSS} (policy {float(policy_obj):.4g}, value {float(value_loss):.4g}, "
                f"entropy {float(entropy):.4g}, cgi {float(cgi):.4g}); lower the learning rate or check the "
                "env's rewards/observations for NaN/inf"
            )

        with torch.no_grad():
            vf_pred = module.value_norm.denormalize(values) if module.value_norm is not None else values
            self.metrics.log_dict(
                {
                    POLICY_LOSS_KEY: -policy_obj,
                    VF_LOSS_KEY: value_loss,
                    ENTROPY_KEY: entropy,
                    CGI_LOSS_KEY: cgi,
                    "vf_explained_var": explained_variance(targets[mask], vf_pred[mask]),
                    "mean_ratio": (ratio * weight).sum() / weight.sum().clamp(min=1.0),
                    # how far pi_prox is from pi_old: max |log(pi_prox / pi_old)| over the agents'
                    # actions (overlap_sampling's stale batches; 0 otherwise)
                    "behaviour_log_weight_max": torch.where(weight > 0, behaviour.log().abs(), 0.0).max()
                    if prox_logp is not None
                    else torch.zeros(()),
                    # 0 on the first minibatch of an update: acting and training see the same critic and memory
                    "value_change_abs_mean": ((values - old_values).abs() * v_weight).sum()
                    / v_weight.sum().clamp(min=1.0)
                    if old_values is not None
                    else torch.zeros(()),
                },
                key=module_id,
                window=1,
            )
        return total
