"""A two-group toy PettingZoo env for the "any masked env" tests: shooters attack the one enemy, a medic
heals the shooters; masked discrete actions in each agent's own (native) layout."""

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

# what each agent type's native actions mean (rllib_uas.uas builds the unified space from this)
SEMANTICS = {"shooter": ["noop", "attack:enemy:0", "stop"], "medic": ["noop", "heal:ally:0", "heal:ally:1"]}


class ToyBattle(ParallelEnv):
    metadata = {"name": "toy_battle"}

    def __init__(self, n_shooters: int = 2, limit: int = 20):
        self.possible_agents = [f"shooter_{i}" for i in range(n_shooters)] + ["medic_0"]
        self.limit = limit
        self._obs = gym.spaces.Dict(
            {"observation": gym.spaces.Box(0, 1, (4,), np.float32), "action_mask": gym.spaces.Box(0, 1, (3,), np.int8)}
        )

    def observation_space(self, agent):
        return self._obs

    def action_space(self, agent):
        return gym.spaces.Discrete(3)

    def state(self):
        if not hasattr(self, "hp"):
            raise RuntimeError("state() before reset()")  # as many PettingZoo envs do
        return np.concatenate([[self.enemy / 10], self.hp / 10]).astype(np.float32)

    def _observations(self):
        hp = np.array([self.enemy / 10, *(self.hp[:3] / 10)], np.float32)
        # the medic may heal only a damaged shooter: a real mask, not all ones
        medic = np.array([1, self.hp[0] < 10, self.hp[1] < 10], np.int8)
        return {
            a: {"observation": hp, "action_mask": medic if a.startswith("medic") else np.ones(3, np.int8)}
            for a in self.agents
        }

    def reset(self, seed=None, options=None):
        self.rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.t, self.enemy, self.hp = 0, 10.0, np.full(len(self.agents), 10.0)
        return self._observations(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        damage = sum(1.0 for a, x in actions.items() if a.startswith("shooter") and x == 1)
        self.enemy -= damage
        self.hp = np.maximum(self.hp - self.rng.random(len(self.hp)), 0.0)
        if actions.get("medic_0") in (1, 2):
            j = actions["medic_0"] - 1
            self.hp[j] = min(10.0, self.hp[j] + 1.5)
        won, lost = self.enemy <= 0, bool((self.hp[:-1] <= 0).all())
        reward = damage / 10 + (1.0 if won else 0.0)
        obs = self._observations()
        term = {a: bool(won or lost) for a in self.agents}
        trunc = {a: bool(self.t >= self.limit and not (won or lost)) for a in self.agents}
        rewards = {a: reward for a in self.agents}
        if won or lost or self.t >= self.limit:
            self.agents = []
        return obs, rewards, term, trunc, {a: {} for a in obs}
