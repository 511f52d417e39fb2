"""The team observation: the one contract between the team envs, the replay buffer and the modules.

Each env step is one row holding every agent (`envs/team.py` for SMAC, `envs/pettingzoo.py` for any
masked discrete ParallelEnv):

    obs [n, D]          each agent's observation
    action_mask [n, A]  what each agent may do now (in the unified space when `uas` is on)
    state [S]           the global state
    alive [n]           1.0 while the agent lives
    group [n]           each agent's action group id
    last_action [n, A]  one-hot of each agent's previous action (zeros after a reset)
    agent_state [n, S + D]  optional: MAPPO's agent-specific critic input (state and own observation)
    group_masks [G, A]  only when membership changes between episodes (SMACv2): the group masks AM_g

The group structure travels in the space itself, openly. With fixed membership, `group.low == group.high`
is each agent's group id and `action_mask.high` each agent's static availability (its group's row AM_g
of the UAS). When the teams are drawn at every reset, which group an agent belongs to is known only from
the `group` observation of each step; `group.high` is then G - 1 for every agent, and `group_masks`
(low == high) holds AM_g. `space_groups` reads either form back, so a module builds its group masks from
the observation space alone, without importing an env.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import gymnasium as gym
import numpy as np

TEAM_OBS_KEYS = ("obs", "action_mask", "state", "alive", "group", "last_action")
GROUP_MASKS = "group_masks"
# every per-step key a stored episode keeps (agent_state is MAPPO's critic input, not stored)
STORED_OBS_KEYS = TEAM_OBS_KEYS + (GROUP_MASKS,)
AGENT_STATE = "agent_state"


def static_mask_space(static: np.ndarray) -> gym.spaces.Box:
    """action_mask space whose `high` is each agent's static availability (its group's AM_g row)."""
    return gym.spaces.Box(np.zeros(static.shape, np.float32), static.astype(np.float32), dtype=np.float32)


def group_space(agent_group: np.ndarray) -> gym.spaces.Box:
    """group space with low == high == each agent's group id, so modules read groups off the space."""
    g = np.asarray(agent_group, np.float32)
    return gym.spaces.Box(g, g.copy(), dtype=np.float32)


def team_observation_space(
    obs_dim: int,
    state_dim: int,
    static_mask: np.ndarray,
    agent_group: Optional[np.ndarray],
    agent_state: bool = False,
    group_masks: Optional[np.ndarray] = None,
) -> gym.spaces.Dict:
    """The team observation space of n agents with A actions; `static_mask` [n, A] and `agent_group` [n],
    or, when membership changes between episodes, `agent_group` None and `group_masks` [G, A]."""
    n, A = static_mask.shape
    if agent_group is None:
        G = np.asarray(group_masks).shape[0]
        groups = gym.spaces.Box(0.0, float(G - 1), (n,), np.float32)
    else:
        groups = group_space(agent_group)
    spaces = {
        "obs": gym.spaces.Box(-np.inf, np.inf, (n, obs_dim), np.float32),
        "action_mask": static_mask_space(static_mask),
        "state": gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32),
        "alive": gym.spaces.Box(0.0, 1.0, (n,), np.float32),
        "group": groups,
        "last_action": gym.spaces.Box(0.0, 1.0, (n, A), np.float32),
    }
    if agent_group is None:
        m = np.asarray(group_masks, np.float32)
        spaces[GROUP_MASKS] = gym.spaces.Box(m, m.copy(), dtype=np.float32)
    if agent_state:
        spaces[AGENT_STATE] = gym.spaces.Box(-np.inf, np.inf, (n, state_dim + obs_dim), np.float32)
    return gym.spaces.Dict(spaces)


def check_team_space(observation_space) -> None:
    """ValueError unless `observation_space` is a team observation: what the team algorithms' modules
    read. Any other env failed inside the module with an IndexError or a KeyError."""
    spaces = getattr(observation_space, "spaces", None)
    missing = [k for k in TEAM_OBS_KEYS if not isinstance(spaces, dict) or k not in spaces]
    if missing:
        raise ValueError(
            f"U-MAPPO and U-QMIX train on a team observation (a Dict space with {', '.join(TEAM_OBS_KEYS)}: "
            f"rllib_uas/team_obs.py), but the env's observation space is {observation_space} (missing "
            f"{', '.join(missing)}); use env 'smac_team', or wrap a masked discrete PettingZoo ParallelEnv in "
            "rllib_uas.envs.pettingzoo.PettingZooTeamEnv"
        )


def check_gym_team_env(env_id: Any, env_config: Optional[Mapping[str, Any]] = None) -> None:
    """ValueError when `env_id`, a gymnasium id, makes an env without a team observation (CartPole-v1
    for U-MAPPO): RLlib would fail in the env runner, and a remote runner's error surfaces only as an
    IndexError in RLlib's `get_spaces`. Anything else (our envs, Tune-registered names, classes) and an
    id that cannot be made here pass: the trial makes the env and reports its own error."""
    import gymnasium

    if not isinstance(env_id, str) or env_id not in gymnasium.envs.registry:
        return
    env = None
    # the env_config first, as RLlib passes it; then without it (the team configs' default env_config
    # names a SMAC map, which a gymnasium env left at that default does not take)
    for kwargs in (dict(env_config or {}), {}):
        try:
            env = gymnasium.make(env_id, disable_env_checker=True, **kwargs)  # RLlib's runner checks it
            break
        except Exception:  # noqa: BLE001 - any failure here is the trial's to report
            continue
    if env is None:
        return
    try:
        check_team_space(env.observation_space)
    finally:
        env.close()


def space_groups(observation_space: gym.spaces.Dict) -> Tuple[Optional[np.ndarray], np.ndarray]:
    """(agent_group [n], group_masks [G, A]) from a team observation space; agent_group is None when
    membership changes between episodes (then each step's `group` observation says it)."""
    if GROUP_MASKS in observation_space.spaces:
        return None, observation_space[GROUP_MASKS].high > 0
    agent_group = observation_space["group"].high.astype(np.int64)
    static = observation_space["action_mask"].high > 0
    masks = np.zeros((int(agent_group.max()) + 1, static.shape[-1]), bool)
    for i, g in enumerate(agent_group):
        masks[g] |= static[i]
    return agent_group, masks


def last_action_onehot(actions: np.ndarray, n_actions: int, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """[..., n, A] float32 one-hot of integer actions [..., n]; rows where `valid` is False stay zero."""
    actions = np.asarray(actions, np.int64)
    out = np.zeros(actions.shape + (n_actions,), np.float32)
    keep = np.ones(actions.shape, bool) if valid is None else np.asarray(valid, bool)
    idx = np.nonzero(keep)
    out[idx + (actions[idx],)] = 1.0
    return out
