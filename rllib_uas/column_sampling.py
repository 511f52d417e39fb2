"""Timestep sampling by columns: RLlib's sampling loop without its per-env work at every step.

RLlib's `SingleAgentEnvRunner._sample` unbatches every step's observations and actions through
`tree`, adds each env's row to its episode item by item, and at an episode's end stacks those items
back into numpy (`to_numpy`); our env-to-module piece then stacks the unbatched observations again.
On MMM2 x 16 envs that per-env work was about a third of sampling (docs/training_speed.md). Here
the loop keeps each step's batched arrays as the env and the module return them, feeds the module
the batched observation directly, and builds each numpy episode chunk once, from those rows, when
the episode ends or the call returns.

What comes out is what RLlib's loop returns: the same episodes and chunks (ids, `t_started`,
lookback, observations, actions, rewards, infos, extra model outputs including STATE_OUT and the
weights' sequence number, flags), drawn by the same module and distribution calls in the same
order, so a seeded run samples the same battles (`tests/test_column_sampling.py`). The same
metrics and the episode callbacks on_episode_created, on_episode_start and on_episode_end are
called; `on_episode_step` is not, so a runner with a callback that needs it samples with RLlib's
loop (`column_sampling_refusal` says why a runner cannot use this one).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.env.env_runner import ENV_STEP_FAILURE
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer
from ray.rllib.utils.metrics import (
    CONNECTOR_PIPELINE_TIMER,
    ENV_TO_MODULE_CONNECTOR,
    MODULE_TO_ENV_CONNECTOR,
    RLMODULE_INFERENCE_TIMER,
    WEIGHTS_SEQ_NO,
)
from ray.rllib.utils.spaces.space_utils import unbatch

from rllib_uas.connectors import (
    TeamActionsToEnv,
    TeamEpisodesToModule,
    _device,
    _initial_state,
    draw_actions,
    stateful_module_input,
)


def column_sampling_refusal(runner, random_actions: bool) -> Optional[str]:
    """None when `runner` can sample timesteps by columns, else why not (it then uses RLlib's loop)."""
    from rllib_uas.envs.team import TeamVectorEnv

    if random_actions:
        return "random actions"
    if not runner.episodes_to_numpy:
        return "episodes_to_numpy is off"
    if not isinstance(runner.env.unwrapped, TeamVectorEnv):
        return f"the env is a {type(runner.env.unwrapped).__name__}, not a TeamVectorEnv"
    if runner.module is None or not runner.module.is_stateful():
        return "the module is not stateful"
    pieces = (
        [type(c) for c in runner._env_to_module.connectors],
        [type(c) for c in runner._module_to_env.connectors],
    )
    if pieces != ([TeamEpisodesToModule], [TeamActionsToEnv]):
        return "the connector pipelines are not the team defaults"
    if getattr(runner.config, "callbacks_on_episode_step", None) or any(
        type(cb).on_episode_step is not RLlibCallback.on_episode_step for cb in runner._callbacks or []
    ):
        return "a callback needs on_episode_step"
    return None


class _Rows:
    """Each step's batched arrays, as the env and the module returned them."""

    def __init__(self):
        self.obs: List[Dict[str, np.ndarray]] = []  # {k: [E, ...]} the observation after each step
        self.actions: List[np.ndarray] = []  # [E, n]
        self.rewards: List[np.ndarray] = []  # [E]
        self.infos: List[Sequence[dict]] = []  # E dicts
        self.extra: List[Dict[str, Any]] = []  # {k: [E, ...]}, STATE_OUT a dict of [E, ...]
        self.times: List[float] = []  # when each step's rows arrived (episodes' durations)


def _stack(items: Sequence[Any]) -> Any:
    """What RLlib's `space_utils.batch` makes of one column's items (arrays stacked, dicts per key, scalars
    through np.array), with np.stack where its fast_stack copies item by item in Python: that loop over
    every step's row was the bulk of `to_numpy`'s cost, which this module exists to avoid."""
    first = items[0]
    if isinstance(first, dict):
        return {k: _stack([it[k] for it in items]) for k in first}
    if isinstance(first, np.ndarray):
        return np.stack(items)
    return np.array(items)


def _buffer(data: Any, lookback: int, space=None) -> InfiniteLookbackBuffer:
    buf = InfiniteLookbackBuffer(data=data, space=space)
    buf.lookback = lookback  # set after: the constructor caps it at len(data), the key count for a dict
    return buf


def _chunk(ep: SingleAgentEpisode, rows: _Rows, env: int, first: int, last: int, seq_no: int) -> SingleAgentEpisode:
    """`ep` (a list-based episode holding this env's data before row `first`: its reset observation,
    or the lookback of an earlier chunk) continued with rows first..last, as a numpy episode."""
    new = range(first, last + 1)

    def column(prev: list, step_items: List[Any]) -> Any:
        return _stack(list(prev) + step_items)

    obs = column(ep.observations.data, [{k: v[env] for k, v in rows.obs[j].items()} for j in new])
    infos = list(ep.infos.data) + [rows.infos[j][env] for j in new]
    actions = column(ep.actions.data, [rows.actions[j][env] for j in new])
    rewards = column(ep.rewards.data, [rows.rewards[j][env] for j in new])

    def extra_column(k: str, items: List[Any]) -> InfiniteLookbackBuffer:
        prev = ep.extra_model_outputs.get(k)  # an earlier chunk's lookback; none in a fresh episode
        if prev is None:
            return _buffer(column([], items), 0)
        return _buffer(column(prev.data, items), prev.lookback)

    extra = {}
    for k in rows.extra[first]:
        if k == Columns.STATE_OUT:
            items = [{s: v[env] for s, v in rows.extra[j][k].items()} for j in new]
        else:
            items = [rows.extra[j][k][env] for j in new]
        extra[k] = extra_column(k, items)
    extra[WEIGHTS_SEQ_NO] = extra_column(WEIGHTS_SEQ_NO, [seq_no] * len(new))  # as RLlib's loop adds it
    out = SingleAgentEpisode(
        id_=ep.id_,
        observations=_buffer(obs, ep.observations.lookback),
        infos=_buffer(infos, ep.infos.lookback),
        actions=_buffer(actions, ep.actions.lookback),
        rewards=_buffer(rewards, ep.rewards.lookback),
        extra_model_outputs=extra,
        terminated=ep.is_terminated,
        truncated=ep.is_truncated,
        t_started=ep.t_started,
        observation_space=ep.observation_space,
        action_space=ep.action_space,
    )
    out._custom_data = ep._custom_data
    # as add_env_step keeps them: a chunk's clock starts at its reset or its first step
    out._start_time = ep._start_time if ep._start_time is not None else rows.times[first]
    out._last_step_time = rows.times[last]
    return out


def module_input(obs: Dict[str, np.ndarray], states: Dict[str, np.ndarray], device, shared_data) -> Dict[str, Any]:
    """What TeamEpisodesToModule builds, from the batched observation {k: [E, ...]} and states {k: [E, ...]}."""
    obs_t = {k: torch.from_numpy(np.array(v)).to(device) for k, v in obs.items()}  # copies: the rows keep `obs`
    states_t = {k: torch.from_numpy(v).to(device) for k, v in states.items()}
    return stateful_module_input({}, obs_t, states_t, shared_data)


def sample_by_columns(runner, num_timesteps: int, explore: bool, force_reset: bool) -> List[SingleAgentEpisode]:
    """RLlib's `_sample(num_timesteps=...)` for a runner `column_sampling_refusal` accepts."""
    if force_reset or runner._needs_initial_reset:
        runner._reset_envs_and_episodes(explore)
    E = runner.num_envs
    runners = runner.config.num_env_runners or 1
    device = _device(runner.module)
    initial = _initial_state(runner.module)  # {k: [...]}
    episodes = runner._ongoing_episodes
    rows = _Rows()
    first = [0] * E  # the first row of each env's episode not yet in its episode object
    done: List[SingleAgentEpisode] = []
    ts = 0
    while ts < num_timesteps:
        to_module, runner._cached_to_module = runner._cached_to_module, None
        with runner.metrics.log_time(RLMODULE_INFERENCE_TIMER):
            if explore:
                t = (runner.num_env_steps_sampled_lifetime // runners + ts) * runners
                to_env = runner.module.forward_exploration(to_module, t=t)
            else:
                to_env = runner.module.forward_inference(to_module)
        with runner.metrics.log_time((MODULE_TO_ENV_CONNECTOR, CONNECTOR_PIPELINE_TIMER)):
            to_env = draw_actions(runner.module, to_env, explore, time_rank=True)
        actions = to_env.pop(Columns.ACTIONS)
        results = runner._try_env_step(actions)
        if results == ENV_STEP_FAILURE:  # as RLlib: the env was recreated, start over from fresh battles
            runner._reset_envs_and_episodes(explore)
            rows, first, ts = _Rows(), [0] * E, 0
            continue
        obs, rewards, terminateds, truncateds, infos = results
        j = len(rows.obs)
        rows.obs.append(obs)
        rows.actions.append(actions)
        rows.rewards.append(rewards)
        rows.infos.append(infos)
        rows.extra.append(to_env)
        rows.times.append(time.perf_counter())
        states = {k: v.copy() for k, v in to_env[Columns.STATE_OUT].items()}  # [E, ...]
        for e in range(E):
            ep = episodes[e]
            if not ep.is_reset:  # the env was reset at this step: its new episode starts here
                ep.add_env_reset(observation={k: v[e] for k, v in obs.items()}, infos=infos[e])
                first[e] = j + 1
                runner._make_on_episode_callback("on_episode_start", e, episodes)
                for k in states:
                    states[k][e] = initial[k]
                continue
            ts += 1
            if terminateds[e] or truncateds[e]:
                ep.is_terminated, ep.is_truncated = bool(terminateds[e]), bool(truncateds[e])
                episodes[e] = _chunk(ep, rows, e, first[e], j, runner._weights_seq_no)
                runner._make_on_episode_callback("on_episode_end", e, episodes)
                done.append(episodes[e])
                runner._new_episode(e, episodes)
        with runner.metrics.log_time((ENV_TO_MODULE_CONNECTOR, CONNECTOR_PIPELINE_TIMER)):
            runner._cached_to_module = module_input(obs, states, device, runner._shared_data)

    runner._done_episodes_for_metrics.extend(done)
    ongoing = []
    lookback = runner.config.episode_lookback_horizon
    last = len(rows.obs) - 1
    for e in range(E):
        ep = episodes[e]
        if not ep.is_reset:
            continue
        chunk = _chunk(ep, rows, e, first[e], last, runner._weights_seq_no) if first[e] <= last else ep
        # the continuation as RLlib's cut() makes it from the chunk (list-based, `lookback` steps back)
        episodes[e] = _continuation(chunk, lookback)
        if chunk.t == chunk.t_started:  # nothing new in this call
            continue
        chunk.validate()
        runner._ongoing_episodes_for_metrics[chunk.id_].append(chunk)
        ongoing.append(chunk)
    runner._log_env_steps(metric=runner._metrics_num_env_steps_sampled, num_steps=ts)
    runner._increase_sampled_metrics(ts, len(done))
    return done + ongoing


def _continuation(chunk: SingleAgentEpisode, lookback: int) -> SingleAgentEpisode:
    """RLlib's `chunk.cut(len_lookback_buffer=lookback)` with list-based data, as its loop keeps it."""
    succ = chunk.cut(len_lookback_buffer=lookback)
    for buf in (succ.observations, succ.infos, succ.actions, succ.rewards, *succ.extra_model_outputs.values()):
        if buf.finalized:  # cut() of a numpy chunk keeps numpy: back to lists, item by item
            buf.data = unbatch(buf.data)
            buf.finalized = False
    return succ
