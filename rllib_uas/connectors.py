"""Env-runner connectors for the team view: one piece each way, no per-item work.

RLlib's default env-to-module pipeline (observations from episodes, a time rank, states from
episodes, batching, numpy to torch) and module-to-env pipeline (time rank off, get actions, torch
to numpy, unbatch, clip, listify) walk every column of every env's item through `tree` at every
step: on MMM2 x 16 envs they cost more than the battle engine and the module forward together
(BENCHMARKS.md, end-to-end training). The team observation is a flat dict of arrays, one row per
env, so both directions are a handful of `np.stack` / `torch.from_numpy` calls.

On the learner side, RLlib's defaults build the padded train batch item by item (every step of
every episode through `tree`, then `split_and_zero_pad` per item list); `TeamEpisodesToTrainBatch`
copies each episode's columns into one preallocated [B, T, ...] array per column instead.

What the module, the episodes and the loss see is the same as with RLlib's defaults: the same
keys, shapes, dtypes and values, and actions drawn by the same distribution calls in the same
order, so a seeded run samples the same episodes and computes the same losses
(`tests/test_connectors.py`). The configs use these pieces when `add_default_connectors_to_*` is
on and no custom connector is given (`rllib_uas.algorithms.team_config.TeamConfigMixin`).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.annotations import override
from ray.rllib.utils.numpy import convert_to_numpy
from ray.rllib.utils.torch_utils import convert_to_torch_tensor

# RLlib's flag that the env-to-module side added a single-timestep time rank (read by its own
# module-to-env piece; set too, so that a user's extra RLlib pieces keep working)
ADDED_TIME_RANK = "_added_single_ts_time_rank"


def _stack(items: List[Dict[str, np.ndarray]], device) -> Dict[str, torch.Tensor]:
    """[{k: [...]}] * E -> {k: [E, ...]} as tensors on `device`."""
    return {k: torch.from_numpy(np.stack([it[k] for it in items])).to(device) for k in items[0]}


def _initial_state(module: RLModule) -> Dict[str, np.ndarray]:
    """The module's initial recurrent state {k: [...]} as numpy (RLlib's rule for a fresh episode)."""
    return {k: np.asarray(v) for k, v in module.get_initial_state().items()}


class TeamEpisodesToModule(ConnectorV2):
    """Each env's latest team observation [E, 1, ...] and its recurrent state [E, ...] as tensors.

    The state is the episode's last STATE_OUT, or the module's initial state at an episode's start
    (as RLlib's AddStatesFromEpisodesToBatch does it for sampling)."""

    @override(ConnectorV2)
    def __call__(
        self,
        *,
        rl_module: RLModule,
        batch: Dict[str, Any],
        episodes: List[SingleAgentEpisode],
        explore: Optional[bool] = None,
        shared_data: Optional[dict] = None,
        **kwargs,
    ) -> Any:
        if Columns.OBS in batch:  # an earlier (custom) piece built the batch already
            return batch
        device = _device(rl_module)
        # the runners pass each env's newest observation (the one just added to its episode)
        latest = kwargs.get(Columns.OBS)
        if latest is None or len(latest) != len(episodes):
            latest = [ep.get_observations(-1) for ep in episodes]
        obs = _stack(latest, device)  # {k: [E, ...]}
        if not rl_module.is_stateful():
            batch[Columns.OBS] = obs
            return batch
        initial = None
        states = []
        for ep in episodes:
            if (ep.t_started == 0 and len(ep) == 0) or Columns.STATE_OUT not in ep.extra_model_outputs:
                if initial is None:
                    initial = _initial_state(rl_module)
                states.append(initial)
            else:
                states.append(ep.get_extra_model_outputs(key=Columns.STATE_OUT, indices=-1))
        return stateful_module_input(batch, obs, _stack(states, device), shared_data)


def _device(rl_module: RLModule):
    return next(iter(rl_module.parameters())).device if isinstance(rl_module, torch.nn.Module) else "cpu"


def stateful_module_input(
    batch: Dict[str, Any], obs: Dict[str, torch.Tensor], states: Dict[str, torch.Tensor], shared_data: Optional[dict]
) -> Dict[str, Any]:
    """A stateful module's acting input: OBS {k: [E, 1, ...]} (a time rank added) and STATE_IN {k: [E, ...]}."""
    batch[Columns.OBS] = {k: v.unsqueeze(1) for k, v in obs.items()}
    batch[Columns.STATE_IN] = states
    if shared_data is not None:
        shared_data[ADDED_TIME_RANK] = True
    return batch


class TeamActionsToEnv(ConnectorV2):
    """Actions drawn from the module's output, everything as numpy rows per env [E, ...].

    Draws as RLlib's GetActions does (exploration or inference distribution, `to_deterministic`
    when not exploring, `logp` of the drawn actions); STATE_OUT becomes one dict per env, the form
    the runner stores in each episode. Team actions are MultiDiscrete: nothing to clip."""

    @override(ConnectorV2)
    def __call__(
        self,
        *,
        rl_module: RLModule,
        batch: Dict[str, Any],
        episodes: List[SingleAgentEpisode],
        explore: Optional[bool] = None,
        shared_data: Optional[dict] = None,
        **kwargs,
    ) -> Any:
        out = draw_actions(rl_module, batch, explore, bool(shared_data and shared_data.get(ADDED_TIME_RANK)))
        if Columns.STATE_OUT in out:  # {k: [E, ...]} -> one dict per env, as episodes store it
            state = out[Columns.STATE_OUT]
            out[Columns.STATE_OUT] = [{k: v[i] for k, v in state.items()} for i in range(len(episodes))]
        out[Columns.ACTIONS_FOR_ENV] = out[Columns.ACTIONS]
        return out


def draw_actions(
    rl_module: RLModule, batch: Dict[str, Any], explore: Optional[bool], time_rank: bool
) -> Dict[str, Any]:
    """The module's acting output as numpy rows [E, ...]: actions drawn as RLlib's GetActions draws
    them (exploration or inference distribution, `to_deterministic` when not exploring, `logp` of the
    drawn actions), STATE_OUT {k: [E, ...]}."""
    out: Dict[str, Any] = {}
    for k, v in batch.items():
        if k == Columns.STATE_OUT:
            continue
        out[k] = v[:, 0] if time_rank and torch.is_tensor(v) and v.dim() > 1 else v  # [E, ...]
    if Columns.ACTIONS not in out and Columns.ACTION_DIST_INPUTS in out:
        cls = rl_module.get_exploration_action_dist_cls() if explore else rl_module.get_inference_action_dist_cls()
        dist = cls.from_logits(out[Columns.ACTION_DIST_INPUTS])
        if not explore:
            dist = dist.to_deterministic()
        out[Columns.ACTIONS] = dist.sample()
        if Columns.ACTION_LOGP not in out:
            out[Columns.ACTION_LOGP] = dist.logp(out[Columns.ACTIONS])
    # RLlib's TensorToNumpy conversion (it narrows int64 to int32 and float64 to float32)
    out = convert_to_numpy(out)
    if Columns.STATE_OUT in batch:
        out[Columns.STATE_OUT] = convert_to_numpy(batch[Columns.STATE_OUT])  # {k: [E, ...]}
    return out


class TeamEpisodesToTrainBatch(ConnectorV2):
    """Learner side: numpy episodes -> {module_id: {column: [B, T, ...] tensors}} in one pass.

    Does what RLlib's AddObservationsFromEpisodesToBatch, AddColumnsFromEpisodesToTrainBatch,
    AddTimeDimToBatchAndZeroPad, AddStatesFromEpisodesToBatch, BatchIndividualItems and
    NumpyToTensor do for one stateful module: each episode split into chunks of `max_seq_len`
    rows, zero-padded (B chunks in all, episodes in order); SEQ_LENS [B]; STATE_IN [B, ...] the
    state before each chunk; LOSS_MASK, TERMINATEDS, TRUNCATEDS taken from the batch where an
    earlier piece (PPO's AddOneTsToEpisodesAndTruncate) put them, else made as RLlib makes them."""

    @override(ConnectorV2)
    def __call__(
        self,
        *,
        rl_module: RLModule,
        batch: Dict[str, Any],
        episodes: List[SingleAgentEpisode],
        explore: Optional[bool] = None,
        shared_data: Optional[dict] = None,
        **kwargs,
    ) -> Any:
        module_id = DEFAULT_MODULE_ID
        module = rl_module[module_id] if isinstance(rl_module, MultiRLModule) else rl_module
        T = module.model_config["max_seq_len"]
        device = next(iter(module.parameters())).device
        eps = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        lens = [len(ep) for ep in eps]
        chunks = [math.ceil(n / T) for n in lens]
        B = sum(chunks)
        starts = np.concatenate([[0], np.cumsum(chunks)[:-1]]).astype(np.int64) * T  # first flat row per episode

        def pad(parts: Sequence[np.ndarray]) -> np.ndarray:
            """Per-episode [L, ...] -> [B, T, ...], each episode's chunks zero-padded at the end."""
            first = np.asarray(parts[0])
            out = np.zeros((B * T,) + first.shape[1:], first.dtype)
            for start, part in zip(starts, parts):
                out[start : start + len(part)] = part
            return out.reshape((B, T) + first.shape[1:])

        def given(column: str) -> Optional[List[np.ndarray]]:
            if column not in batch:
                return None
            return [np.asarray(batch[column][(ep.id_,)]) for ep in eps]

        def ends(flag: str) -> List[np.ndarray]:
            return [
                np.array([False] * (n - 1) + [bool(getattr(ep, flag))] if n else [], bool) for ep, n in zip(eps, lens)
            ]

        obs = [ep.get_observations(slice(0, n)) for ep, n in zip(eps, lens)]
        cols: Dict[str, Any] = {Columns.OBS: {k: pad([o[k] for o in obs]) for k in obs[0]}}
        cols[Columns.ACTIONS] = pad([ep.get_actions(slice(0, n)) for ep, n in zip(eps, lens)])
        cols[Columns.REWARDS] = pad([ep.get_rewards(slice(0, n)) for ep, n in zip(eps, lens)])
        cols[Columns.TERMINATEDS] = pad(given(Columns.TERMINATEDS) or ends("is_terminated"))
        cols[Columns.TRUNCATEDS] = pad(given(Columns.TRUNCATEDS) or ends("is_truncated"))
        cols[Columns.LOSS_MASK] = pad(given(Columns.LOSS_MASK) or [np.ones(n, bool) for n in lens])
        skip = set(cols) | {Columns.STATE_IN, Columns.STATE_OUT}
        for key in eps[0].extra_model_outputs:
            if key not in skip:
                cols[key] = pad([ep.get_extra_model_outputs(key=key, indices=slice(0, n)) for ep, n in zip(eps, lens)])
        cols[Columns.SEQ_LENS] = np.array([min(T, n - i * T) for n, c in zip(lens, chunks) for i in range(c)], np.int64)
        cols[Columns.STATE_IN] = self._states_in(module, eps, T)
        if shared_data is not None:  # the Learner marks the batch zero-padded (so it may shuffle chunks)
            shared_data[f"_zero_padded_for_mid={module_id}"] = True
        # RLlib's NumpyToTensor conversion (float64 becomes float32, as there)
        return {module_id: convert_to_torch_tensor(cols, device=device)}

    @staticmethod
    def _states_in(module: RLModule, eps: List[SingleAgentEpisode], T: int) -> Dict[str, np.ndarray]:
        """{k: [B, ...]}: for each chunk, the state before its first row (RLlib's rule: the initial
        state at an episode's start, else the STATE_OUT before the chunk, the lookback for the first)."""
        initial = _initial_state(module)
        parts: Dict[str, List[np.ndarray]] = {k: [] for k in initial}
        for ep in eps:
            has = Columns.STATE_OUT in ep.extra_model_outputs
            before = (
                initial
                if ep.t_started == 0 or not has
                else ep.get_extra_model_outputs(key=Columns.STATE_OUT, indices=-1, neg_index_as_lookback=True)
            )
            outs = (
                ep.get_extra_model_outputs(key=Columns.STATE_OUT)
                if has
                else {k: np.repeat(v[None], len(ep), 0) for k, v in before.items()}
            )
            for k in parts:
                parts[k].append(np.concatenate([before[k][None], outs[k][:-1]])[::T])
        return {k: np.concatenate(v) for k, v in parts.items()}
