"""SMAC's reward and termination rules per env, compiled (docs/smac.md, "Rewards" and "Ends")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rllib_uas.envs.engine.jit import njit, pairwise_sum
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
    return float(
        tables.n_enemies * cfg.reward_death_value + cfg.reward_win + (tables.hp_max[n_a:] + tables.sh_max[n_a:]).sum()
    )


@njit
def _battle_reward(
    n_agents, sparse, only_positive, death_value, negative_scale, prev_hs, hp, sh, death_tracker, rows, out
):
    """SMAC's reward_battle() per env where rows[e], into out [E] (float64); updates death_tracker."""
    U, n_e = hp.shape[1], hp.shape[1] - n_agents
    # the reference sums died and surviving units' losses separately, over whole rows with zeros
    died_e, live_e, died_a, live_a = np.zeros(n_e), np.zeros(n_e), np.zeros(n_agents), np.zeros(n_agents)
    for e in range(hp.shape[0]):
        if not rows[e]:
            continue
        if sparse:
            for u in range(U):
                death_tracker[e, u] |= hp[e, u] <= 0
            out[e] = 0.0
            continue
        dead_e = dead_a = 0
        for u in range(U):
            prev = np.float64(prev_hs[e, u])
            died = hp[e, u] <= 0 and not death_tracker[e, u]
            live = not death_tracker[e, u] and not died
            d = prev if died else 0.0
            v = prev - np.float64(hp[e, u] + sh[e, u]) if live else 0.0
            if u < n_agents:
                died_a[u], live_a[u] = d, v
                dead_a += died
            else:
                died_e[u - n_agents], live_e[u - n_agents] = d, v
                dead_e += died
            death_tracker[e, u] |= died
        delta_deaths = death_value * dead_e
        if not only_positive:
            delta_deaths = delta_deaths - death_value * negative_scale * dead_a
        delta_enemy = pairwise_sum(died_e) + pairwise_sum(live_e)
        if only_positive:
            out[e] = abs(delta_enemy + delta_deaths)
        else:
            delta_ally = negative_scale * (pairwise_sum(died_a) + pairwise_sum(live_a))
            out[e] = delta_enemy + delta_deaths - delta_ally


def battle_reward(
    cfg: RewardConfig, n_agents: int, prev_hs: np.ndarray, hp: np.ndarray, sh: np.ndarray, death_tracker: np.ndarray
) -> np.ndarray:
    """SMAC's reward_battle(): per-env reward [E] before the win bonus and scaling.

    `death_tracker` [E, U] marks units already counted dead and is updated in place. Anything whose
    health hits 0 counts as dead, so an exploding enemy Baneling yields its health + the death value.
    """
    out = np.zeros(hp.shape[0])
    _battle_reward(
        n_agents,
        cfg.reward_sparse,
        cfg.reward_only_positive,
        float(cfg.reward_death_value),
        float(cfg.reward_negative_scale),
        np.asarray(prev_hs, np.float32),
        np.asarray(hp, np.float32),
        np.asarray(sh, np.float32),
        death_tracker,
        np.ones(hp.shape[0], bool),
        out,
    )
    return out


@njit
def _game_end_code(n_agents, medivac_rules, only_medivacs_win, is_medivac, table_of, alive, rows, out):
    """[E] WON/LOST/DRAW/RUNNING where rows[e], evaluated in SMAC's order (loss first, Medivac rules).

    `is_medivac` [T, U] per unit table, `table_of` [E] each env's table. SMAC's MMM maps are won when one
    enemy Medivac is all that is left; SMACv2's terran scenarios (`only_medivacs_win`) when only enemy
    Medivacs are."""
    U = alive.shape[1]
    for e in range(alive.shape[0]):
        if not rows[e]:
            continue
        med = is_medivac[table_of[e]]
        n_al = n_en = al_not_med = en_med = 0
        for u in range(U):
            if alive[e, u]:
                if u < n_agents:
                    n_al += 1
                    al_not_med += not med[u]
                else:
                    n_en += 1
                    en_med += med[u]
        lost = n_al == 0 and n_en > 0
        won = n_al > 0 and n_en == 0
        if medivac_rules:
            lost |= al_not_med == 0  # only Medivacs (or nothing) left
            if only_medivacs_win:
                won |= n_en == en_med
            else:
                won |= n_en == 1 and en_med > 0
        out[e] = LOST if lost else (WON if won else (DRAW if n_al == 0 and n_en == 0 else RUNNING))


def game_end_code(tables: UnitTables, alive: np.ndarray, only_medivacs_win: bool = False) -> np.ndarray:
    """[E] WON/LOST/DRAW/RUNNING, evaluated in SMAC's order (loss first, Medivac rules)."""
    out = np.zeros(alive.shape[0], np.int64)
    _game_end_code(
        tables.n_agents,
        bool(tables.spec.map_type.medivac_rules),
        only_medivacs_win,
        tables.is_medivac[None],
        np.zeros(alive.shape[0], np.int64),
        np.ascontiguousarray(alive, bool),
        np.ones(alive.shape[0], bool),
        out,
    )
    return out


class OutcomeConsts(NamedTuple):
    """The scalars `step_outcome` needs: the map's and the reward config's."""

    n_agents: int
    medivac_rules: bool
    only_medivacs_win: bool  # SMACv2's terran rule: won when only enemy Medivacs are left
    sparse: bool
    only_positive: bool
    death_value: float
    negative_scale: float
    reward_win: float
    reward_defeat: float
    episode_limit: int


@njit
def step_outcome(
    c,
    is_medivac,
    table_of,
    divisor,
    prev_hs,
    hp,
    sh,
    alive,
    death_tracker,
    episode_steps,
    active,
    reward,
    terminated,
    won,
    timeout,
    dead_allies,
    dead_enemies,
):
    """Everything `VectorizedSMAC.step` reports, for the active envs: the scaled reward, termination
    (win, loss, draw or time limit), win, time-out and dead counts; episode_steps advance.
    `divisor` [E]: max_reward / reward_scale_rate per env, 0 when rewards are not scaled."""
    U, n_agents, sparse, episode_limit = hp.shape[1], c.n_agents, c.sparse, c.episode_limit
    reward_win, reward_defeat = c.reward_win, c.reward_defeat
    code = np.zeros(hp.shape[0], np.int64)
    _battle_reward(
        n_agents,
        sparse,
        c.only_positive,
        c.death_value,
        c.negative_scale,
        prev_hs,
        hp,
        sh,
        death_tracker,
        active,
        reward,
    )
    _game_end_code(n_agents, c.medivac_rules, c.only_medivacs_win, is_medivac, table_of, alive, active, code)
    for e in range(hp.shape[0]):
        if not active[e]:
            continue
        episode_steps[e] += 1
        w, lo = code[e] == WON, code[e] == LOST
        if sparse:
            r = 1.0 if w else (-1.0 if lo else reward[e])
        else:
            r = reward[e] + (reward_win if w else 0.0) + (reward_defeat if lo else 0.0)
        ended = code[e] != RUNNING
        timeout[e] = not ended and episode_steps[e] >= episode_limit
        terminated[e] = ended or timeout[e]
        won[e] = w
        scale = divisor[e]
        reward[e] = r / scale if scale > 0 else r
        da = 0
        for u in range(n_agents):
            da += not alive[e, u]
        de = 0
        for u in range(n_agents, U):
            de += not alive[e, u]
        dead_allies[e], dead_enemies[e] = da, de
