"""SMAC's built-in heuristic (`heuristic_ai=True`), as oxwhirl/smac's `get_agent_action_heuristic` plays it.

Each agent keeps a target until it is no longer valid, then takes the nearest valid one:
- a Medivac (on MMM-rule maps) heals the nearest damaged, living ally that is not a Medivac, and keeps it
  until it dies or is back to full health;
- every other unit attacks the nearest living enemy, keeping it until it dies; a Marauder never picks an
  enemy Medivac (it cannot hit air).
With no valid target the agent sends no order this step (its current order goes on) and its action is 0.
With `heuristic_rest=True` an attack or heal that is not available becomes one move step towards the
target (east/west when the x gap is the larger, else north/south).

SMAC runs this for every agent, dead ones included (their orders do nothing), and writes the action numbers
back into the caller's action array; the env records the caller's actions, not these, as last actions.
"""

from __future__ import annotations

import math
from typing import List, Optional

import numpy as np

from rllib_uas.envs.engine.actions import (
    MOVE_EAST,
    MOVE_NORTH,
    MOVE_SOUTH,
    MOVE_WEST,
    NOOP,
    healing_agents,
    target_action,
)


class SmacHeuristic:
    """Per-episode target memory and the action choice for one env (env row 0 of the engine)."""

    def __init__(self, engine, heuristic_rest: bool):
        self._eng = engine
        self._rest = heuristic_rest
        self._n_agents = engine.n_agents
        self._max_dist = math.hypot(engine.map_x, engine.map_y)
        self.reset()

    def reset(self) -> None:
        """Forget the targets and read this battle's units (a SMACv2 scenario draws them at each reset)."""
        eng = self._eng
        t = eng.tables_of(0)
        names = [u.name for u in t.units]
        self._hp_max = t.hp_max
        self._is_medivac = np.asarray(t.is_medivac, dtype=bool)
        self._is_marauder = np.array([n == "marauder" for n in names], dtype=bool)
        # SMAC knows medivac_id only on MMM maps; elsewhere no unit heals through this heuristic
        self._heals = healing_agents(t.is_healer, eng.spec.map_type.medivac_rules)
        self.targets: List[Optional[int]] = [None] * self._n_agents

    def actions(self, avail: np.ndarray) -> np.ndarray:
        """SMAC action numbers [n_agents] for this step; `avail` [n_agents, n_actions] is read only with
        heuristic_rest."""
        return np.array([self._agent_action(i, avail) for i in range(self._n_agents)], dtype=np.int64)

    # ------------------------------------------------------------------ one agent
    def _hp(self, u: int) -> float:
        return float(self._eng.hp[0, u])

    def _nearest(self, i: int, candidates) -> int:
        """SMAC's scan: strictly nearer than the best so far, from the map diagonal; -1 when none."""
        x, y = float(self._eng.x[0, i]), float(self._eng.y[0, i])
        best, best_id = self._max_dist, -1
        for u in candidates:
            d = math.hypot(float(self._eng.x[0, u]) - x, float(self._eng.y[0, u]) - y)
            if d < best:
                best, best_id = d, u
        return best_id

    def _agent_action(self, i: int, avail: np.ndarray) -> int:
        n_a, hp_max = self._n_agents, self._hp_max
        target = self.targets[i]
        if self._heals[i]:
            if target is None or self._hp(target) == 0 or self._hp(target) == hp_max[target]:
                pool = [
                    a for a in range(n_a) if not self._is_medivac[a] and self._hp(a) != 0 and self._hp(a) != hp_max[a]
                ]
                found = self._nearest(i, pool)
                self.targets[i] = target = None if found < 0 else found
            if target is None:
                return NOOP
            action = target_action(target)
        else:
            if target is None or self._hp(n_a + target) == 0:
                pool = [
                    u
                    for u in range(n_a, self._eng.n_units)
                    if not (self._is_marauder[i] and self._is_medivac[u]) and self._hp(u) > 0
                ]
                found = self._nearest(i, pool)
                self.targets[i] = target = None if found < 0 else found - n_a
            if target is None:
                return NOOP
            action = target_action(target)
        if self._rest and avail[i, action] == 0:
            u = target if self._heals[i] else n_a + target
            dx = float(self._eng.x[0, u]) - float(self._eng.x[0, i])
            dy = float(self._eng.y[0, u]) - float(self._eng.y[0, i])
            if abs(dx) > abs(dy):
                return MOVE_EAST if dx > 0 else MOVE_WEST
            return MOVE_NORTH if dy > 0 else MOVE_SOUTH
        return action
