"""Scripted reference policies on the StarCraft2Env API (baselines for tests and benchmarks)."""

from __future__ import annotations

from typing import Callable, List

import numpy as np

from rllib_uas.envs.engine.actions import (
    MOVE_EAST,
    MOVE_NORTH,
    MOVE_SOUTH,
    MOVE_WEST,
    N_ACTIONS_NO_ATTACK,
    NOOP,
    STOP,
    smac_healing_agents,
    target_action,
)

Policy = Callable[["object", np.random.Generator], List[int]]


def random_policy(env, rng: np.random.Generator) -> List[int]:
    """Uniform over each agent's available actions."""
    return [int(rng.choice(np.flatnonzero(a))) for a in env.get_avail_actions()]


def stop_policy(env, rng: np.random.Generator) -> List[int]:
    """Stand still: stop when alive, no-op when dead (allies never fire on their own)."""
    return [1 if a[1] else 0 for a in env.get_avail_actions()]


def focus_fire_policy(env, rng: np.random.Generator) -> List[int]:
    """Focus fire: everyone attacks the weakest enemy in range (healers heal the weakest ally);
    units with nothing in range advance on the nearest enemy."""
    n_a = env.n_agents
    enemy_hp = np.array([u.health + u.shield for u in env.enemies.values()])
    allies = list(env.agents.values())
    frac = np.array([u.health / u.health_max for u in allies])
    healer = smac_healing_agents(env)
    actions = []
    for i, avail in enumerate(env.get_avail_actions()):
        targets = np.flatnonzero(np.asarray(avail[N_ACTIONS_NO_ATTACK:]))
        if not avail[STOP]:
            actions.append(NOOP)
        elif healer[i]:
            pool = targets[targets < n_a]
            actions.append(target_action(int(pool[np.argmin(frac[pool])])) if pool.size else STOP)
        elif targets.size:
            actions.append(target_action(int(targets[np.argmin(enemy_hp[targets])])))
        else:
            actions.append(_toward_nearest_enemy(env, allies[i], avail))
    return actions


def _toward_nearest_enemy(env, unit, avail) -> int:
    """The available move (N, S, E, W) that best heads to the nearest alive enemy; stop if none."""
    foes = [(u.pos.x - unit.pos.x, u.pos.y - unit.pos.y) for u in env.enemies.values() if u.health > 0]
    if not foes:
        return STOP
    dx, dy = min(foes, key=lambda d: d[0] ** 2 + d[1] ** 2)
    gains = {MOVE_NORTH: dy, MOVE_SOUTH: -dy, MOVE_EAST: dx, MOVE_WEST: -dx}
    best = max((a for a in gains if avail[a]), key=gains.get, default=None)
    return best if best is not None and gains[best] > 0 else STOP


def run_episode(env, policy: Policy, rng: np.random.Generator) -> dict:
    """Play one episode pymarl-style; returns return, length and the final info."""
    env.reset()
    ret, steps, terminated, info = 0.0, 0, False, {}
    while not terminated:
        reward, terminated, info = env.step(policy(env, rng))
        ret += reward
        steps += 1
    return {"return": ret, "length": steps, **info}
