"""The "sc2" backend: real SMAC (`smac.env.StarCraft2Env` + StarCraft II) behind the batched interface.

`SMACAPIBatch` drives any objects with the StarCraft2Env API (real SMAC, or the embedded
`rllib_uas.envs.smac_api.StarCraft2Env`), one per env, and presents them like `VectorizedSMAC`.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Sequence

import numpy as np

from rllib_uas.envs.engine.actions import N_ACTIONS_NO_ATTACK, smac_healing_agents
from rllib_uas.envs.engine.vec_smac import StepResult, check_actions

SMAC_INSTALL_HINT = (
    "Install SMAC from its repository: pip install git+https://github.com/oxwhirl/smac.git "
    "and install StarCraft II (set SC2PATH), see the SMAC README. Or use env_config "
    "backend='embedded' (the default), which needs neither."
)


class SMACNotInstalledError(ImportError):
    """Real SMAC is missing or shadowed; the message says how to fix it."""


def import_smac_env_class() -> Callable[..., Any]:
    """`smac.env.StarCraft2Env`, with a clear error if SMAC is absent or the wrong `smac` is installed."""
    try:
        smac = importlib.import_module("smac")
    except ImportError:
        raise SMACNotInstalledError(
            f"backend 'sc2' needs the SMAC package, which is not installed. {SMAC_INSTALL_HINT}"
        ) from None
    try:
        env_mod = importlib.import_module("smac.env")
        return env_mod.StarCraft2Env
    except (ImportError, AttributeError):
        where = getattr(smac, "__file__", "?")
        raise SMACNotInstalledError(
            f"`import smac` found a package at {where} that is not the StarCraft Multi-Agent Challenge: "
            "PyPI's 'smac' is an unrelated optimizer (SMAC3-style). Uninstall it (pip uninstall smac) and "
            f"{SMAC_INSTALL_HINT[0].lower() + SMAC_INSTALL_HINT[1:]}"
        ) from None


SMACV2_INSTALL_HINT = (
    "Install SMACv2 from its repository: pip install git+https://github.com/oxwhirl/smacv2.git and install "
    "StarCraft II with the SMACv2 maps (set SC2PATH). Or use env_config backend='embedded' (the default), "
    "which plays the SMACv2 scenarios without either."
)
GEN_MAP_TYPES = ("protoss_gen", "terran_gen", "zerg_gen")  # SMACv2: teams drawn at every reset


def import_smacv2_wrapper_class() -> Callable[..., Any]:
    """`smacv2.env.StarCraftCapabilityEnvWrapper`, with a clear error if SMACv2 is absent."""
    try:
        return importlib.import_module("smacv2.env").StarCraftCapabilityEnvWrapper
    except (ImportError, AttributeError):
        raise SMACNotInstalledError(
            f"backend 'sc2' on a SMACv2 scenario needs the SMACv2 package, which is not installed. "
            f"{SMACV2_INSTALL_HINT}"
        ) from None


class SMACAPIBatch:
    """n StarCraft2Env-API objects stepped one after another, exposed with VectorizedSMAC's interface."""

    def __init__(self, envs: Sequence[Any]):
        if not envs:
            raise ValueError("SMACAPIBatch needs at least one env")
        self.envs = list(envs)
        first = self.envs[0]
        info = first.get_env_info()
        self.n_envs = len(self.envs)
        self.n_agents, self.n_actions = info["n_agents"], info["n_actions"]
        self.n_enemies = int(getattr(first, "n_enemies", self.n_actions - N_ACTIONS_NO_ATTACK))
        self.episode_limit = info["episode_limit"]
        self.obs_size, self.state_size = info["obs_shape"], info["state_shape"]
        self.map_type = getattr(first, "map_type", "")
        self.last_action = np.zeros((self.n_envs, self.n_agents, self.n_actions), dtype=np.float32)
        # SMACv2 draws its teams at every reset: the healers are then read per env after each reset
        self.dynamic_groups = self.map_type in GEN_MAP_TYPES
        types = (getattr(first, "capability_config", None) or {}).get("team_gen", {}).get("unit_types", ())
        self.can_heal = self.map_type == "terran_gen" and "medivac" in types
        self.reset()
        self.healer_agents = smac_healing_agents(first)

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        for e, env in enumerate(self.envs):
            if env_mask is None or env_mask[e]:
                env.reset()
                self.last_action[e] = 0.0
        self._cache: Dict[str, np.ndarray] = {}

    def step(self, actions: np.ndarray, validate: bool = True, active: np.ndarray | None = None) -> StepResult:
        """Step the envs (only those where `active` is True); an inactive env's row is all zeros."""
        a = check_actions(actions, self.avail_actions()) if validate else np.asarray(actions, dtype=np.int64)
        out: List[tuple] = []
        for e, env in enumerate(self.envs):
            if active is not None and not active[e]:  # an ended SMAC battle is never stepped again
                out.append((0.0, False, False, False, 0, 0))
                continue
            self.last_action[e] = 0.0
            self.last_action[e, np.arange(self.n_agents), a[e]] = 1.0
            reward, terminated, info = env.step(a[e].tolist())
            won = bool(info.get("battle_won", False))
            dead_a, dead_e = int(info.get("dead_allies", 0)), int(info.get("dead_enemies", 0))
            steps = getattr(env, "_episode_steps", 0)
            # a timeout: the episode ended by its limit, not by a side being wiped out or won
            timeout = bool(info.get("episode_limit", False)) or (
                terminated
                and not won
                and steps >= self.episode_limit
                and dead_a < self.n_agents
                and dead_e < self.n_enemies
            )
            out.append((reward, terminated, won, timeout, dead_a, dead_e))
        self._cache = {}
        cols = list(zip(*out))
        return StepResult(
            reward=np.array(cols[0], dtype=np.float64),
            terminated=np.array(cols[1], dtype=bool),
            battle_won=np.array(cols[2], dtype=bool),
            timeout=np.array(cols[3], dtype=bool),
            dead_allies=np.array(cols[4]),
            dead_enemies=np.array(cols[5]),
        )

    def healer_agents_of(self) -> np.ndarray:
        """[E, n_agents] bool: the agents whose actions 6+j heal ally j in each env's current battle."""
        if "healers" not in self._cache:
            self._cache["healers"] = np.stack([smac_healing_agents(env) for env in self.envs])
        return self._cache["healers"]

    def avail_actions(self) -> np.ndarray:
        if "avail" not in self._cache:
            self._cache["avail"] = np.array([env.get_avail_actions() for env in self.envs], dtype=np.int32)
        return self._cache["avail"]

    def observations(self) -> np.ndarray:
        if "obs" not in self._cache:
            self._cache["obs"] = np.array([np.stack(env.get_obs()) for env in self.envs], dtype=np.float32)
        return self._cache["obs"]

    def states(self) -> np.ndarray:
        if "state" not in self._cache:
            self._cache["state"] = np.array([env.get_state() for env in self.envs], dtype=np.float32)
        return self._cache["state"]

    def seed(self, seed: int | None) -> None:
        """Real SMAC seeds only at game creation; reseeding needs a new env (documented SMAC behaviour)."""

    def close(self) -> None:
        for env in self.envs:
            env.close()
