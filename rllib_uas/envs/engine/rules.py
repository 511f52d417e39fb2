"""SMAC's reward and termination rules, vectorized over envs (spec/smac.md §4, §5)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rllib_uas.envs.engine.tables import UnitTables

WON, LOST, DRAW, RUNNING = 1, -1, 0, 2


@dataclass(frozen=True)
class RewardConfig:
    reward_sparse: bool = False
    reward_only_positive: bool = True
    reward_death_value: float = 10.0
    reward_win: float = 200.0
    reward_defeat: float = 0.0
    reward_negative_scale: float = 0.5
    reward_scale: bool = True
    reward_scale_rate: float = 20.0


def max_reward(tables: UnitTables, cfg: RewardConfig) -> float:
    """n_enemies * death value + win bonus + all enemy health and shields (SMAC's max_reward)."""
    n_a = tables.n_agents
    return float(tables.n_enemies * cfg.reward_death_value + cfg.reward_win
                 + (tables.hp_max[n_a:] + tables.sh_max[n_a:]).sum())


def battle_reward(cfg: RewardConfig, n_agents: int, prev_hs: np.ndarray, hp: np.ndarray, sh: np.ndarray,
                  death_tracker: np.ndarray) -> np.ndarray:
    """SMAC's reward_battle(): per-env reward [E] before the win bonus and scaling.

    `death_tracker` [E, U] marks units already counted dead and is updated in place. Anything whose
    health hits 0 counts as dead, so an exploding enemy Baneling yields its health + the death value.
    """
    E = hp.shape[0]
    if cfg.reward_sparse:
        newly = (hp <= 0) & ~death_tracker
        death_tracker |= newly
        return np.zeros(E, dtype=np.float64)
    neg = cfg.reward_negative_scale
    now = (hp + sh).astype(np.float64)
    prev = prev_hs.astype(np.float64)
    counted = death_tracker
    died = (hp <= 0) & ~counted
    live = ~counted & ~died
    a, e = slice(0, n_agents), slice(n_agents, None)
    delta_deaths = cfg.reward_death_value * died[:, e].sum(1)
    delta_enemy = np.where(died[:, e], prev[:, e], 0).sum(1) + np.where(live[:, e], prev[:, e] - now[:, e], 0).sum(1)
    delta_ally = neg * (np.where(died[:, a], prev[:, a], 0).sum(1) + np.where(live[:, a], prev[:, a] - now[:, a], 0).sum(1))
    if not cfg.reward_only_positive:
        delta_deaths = delta_deaths - cfg.reward_death_value * neg * died[:, a].sum(1)
    death_tracker |= died
    if cfg.reward_only_positive:
        return np.abs(delta_enemy + delta_deaths)
    return delta_enemy + delta_deaths - delta_ally


def game_end_code(tables: UnitTables, alive: np.ndarray) -> np.ndarray:
    """[E] WON/LOST/DRAW/RUNNING, evaluated in SMAC's order (loss first, MMM Medivac rules)."""
    n_a = tables.n_agents
    ally_alive, enemy_alive = alive[:, :n_a], alive[:, n_a:]
    n_al, n_en = ally_alive.sum(1), enemy_alive.sum(1)
    lost = (n_al == 0) & (n_en > 0)
    won = (n_al > 0) & (n_en == 0)
    if tables.spec.map_type.medivac_rules:
        ally_med = tables.is_medivac[:n_a]
        lost |= (ally_alive & ~ally_med).sum(1) == 0             # only Medivacs (or nothing) left
        enemy_med = tables.is_medivac[n_a:]
        won |= (enemy_alive.sum(1) == 1) & (enemy_alive & enemy_med).any(1)
    code = np.full(alive.shape[0], RUNNING, dtype=np.int64)
    code[(n_al == 0) & (n_en == 0)] = DRAW
    code[won] = WON
    code[lost] = LOST
    return code
