"""`StarCraft2Env` with SMAC v1's API and semantics, over the embedded engine (docs/smac.md).

A pymarl-style program runs on it by changing only its imports::

    from rllib_uas.envs.smac_api import MultiAgentEnv, StarCraft2Env   # instead of smac.env
    from rllib_uas.envs.smac_api import get_map_params                 # instead of smac.env.starcraft2.maps
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from rllib_uas.envs.engine.actions import N_ACTIONS_MOVE, N_ACTIONS_NO_ATTACK
from rllib_uas.envs.engine.maps import Layout
from rllib_uas.envs.engine.render import annotated_frame, outcome_of, render_frame, save_gif
from rllib_uas.envs.engine.scenarios import Scenario
from rllib_uas.envs.engine.vec_smac import VectorizedSMAC, integral_actions, split_kwargs
from rllib_uas.envs.pymarl_env import MultiAgentEnv, get_map_params
from rllib_uas.envs.smac_heuristic import SmacHeuristic
from rllib_uas.value_types import is_finite_number, is_integer

__all__ = ["MultiAgentEnv", "StarCraft2Env", "get_map_params"]

_DEFAULTS: Dict[str, Any] = dict(
    step_mul=8,
    move_amount=2,
    difficulty="7",
    game_version=None,
    seed=None,
    continuing_episode=False,
    obs_all_health=True,
    obs_own_health=True,
    obs_last_action=False,
    obs_pathing_grid=False,
    obs_terrain_height=False,
    obs_instead_of_state=False,
    obs_timestep_number=False,
    state_last_action=True,
    state_timestep_number=False,
    reward_sparse=False,
    reward_only_positive=True,
    reward_death_value=10,
    reward_win=200,
    reward_defeat=0,
    reward_negative_scale=0.5,
    reward_scale=True,
    reward_scale_rate=20,
    replay_dir="",
    replay_prefix="",
    window_size_x=1920,
    window_size_y=1200,
    heuristic_ai=False,
    heuristic_rest=False,
    debug=False,
)
SMAC_KWARGS = tuple(_DEFAULTS)  # StarCraft2Env's keyword arguments, for config checks
SMAC_DIFFICULTIES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "A")  # SMAC's built-in AI levels
# value ranges beyond the type of the default: (test, what the key takes)
_RANGES: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "step_mul": (lambda v: is_integer(v) and v >= 1, "a positive integer (game loops per step)"),
    "move_amount": (lambda v: v > 0, "a number > 0 (distance of a move)"),
    "reward_scale_rate": (lambda v: v > 0, "a number > 0 (rewards are scaled to this maximum)"),
    "reward_negative_scale": (lambda v: v >= 0, "a number >= 0"),
    "window_size_x": (lambda v: is_integer(v) and v >= 1, "a positive integer"),
    "window_size_y": (lambda v: is_integer(v) and v >= 1, "a positive integer"),
    "num_fov_actions": (lambda v: is_integer(v) and v >= 1, "a positive integer"),
    "kill_unit_step_mul": (lambda v: is_integer(v) and v >= 1, "a positive integer"),
    "min_attack_range": (lambda v: v >= 0, "a number >= 0"),
    "prob_obs_enemy": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
}


def smac_value_error(key: str, value: Any, default: Any) -> Optional[str]:
    """Why `value` cannot be StarCraft2Env's `key` (whose default is `default`), or None: the type of
    SMAC's default and the range SMAC's code assumes; what a wrong one did was a crash deep in a run,
    or a run that silently learned something else (a negative reward scale flips every reward)."""
    if key == "seed":
        ok = value is None or (is_integer(value) and value >= 0)
        return None if ok else "must be an integer >= 0, or None (a fresh seed)"
    if key == "difficulty":
        return None if value in SMAC_DIFFICULTIES else f"must be one of SMAC's levels {', '.join(SMAC_DIFFICULTIES)}"
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(default, (int, float)):
        if not is_finite_number(value):
            return "must be a finite number"
        test, takes = _RANGES.get(key, (lambda v: True, ""))
        return None if test(value) else f"must be {takes}"
    if isinstance(default, str) or (default is None and key == "game_version"):
        return None if isinstance(value, str) or (default is None and value is None) else "must be a string"
    if isinstance(default, dict):
        return None if isinstance(value, dict) else "must be a mapping"
    return None


def check_smac_values(kwargs: Mapping[str, Any], defaults: Mapping[str, Any] = _DEFAULTS) -> None:
    """StarCraft2Env's keyword values (ValueError naming the key and what it takes); unknown keys are
    for the callers to refuse by name."""
    for key, value in kwargs.items():
        if key in defaults:
            why = smac_value_error(key, value, defaults[key])
            if why:
                raise ValueError(f"{key}={value!r}: {why}")


_REPLAY_NOTICE_GIVEN = False
# SC2-process options that have no meaning for the embedded engine; accepted for compatibility
_IGNORED = ("difficulty", "game_version", "replay_dir", "replay_prefix", "window_size_x", "window_size_y", "debug")


@dataclass
class Point:
    x: float
    y: float


@dataclass
class UnitRecord:
    """What SMAC's `agents[i]` / `enemies[j]` raw unit exposes and runners read."""

    tag: int
    unit_type: int
    health: float
    health_max: float
    shield: float
    shield_max: float
    energy: float
    weapon_cooldown: float
    pos: Point


class StarCraft2Env(MultiAgentEnv):
    """The SMAC v1 multi-agent env on the embedded battle engine; same constructor and methods."""

    _DEFAULTS = _DEFAULTS  # the constructor's keywords (SMACv2's env adds its own)

    def __init__(self, map_name: str = "8m", **kwargs: Any):
        self._setup(map_name, kwargs, scenario=None)

    def _setup(self, map_name: str, kwargs: Dict[str, Any], scenario: Optional[Scenario]) -> None:
        defaults = type(self)._DEFAULTS
        unknown = set(kwargs) - set(defaults)
        if unknown:
            raise TypeError(
                f"StarCraft2Env got unexpected keyword argument(s) {sorted(unknown)}; valid: {sorted(defaults)}"
            )
        check_smac_values(kwargs, defaults)
        args = {**defaults, **kwargs}
        if args["obs_all_health"]:
            args["obs_own_health"] = True
        flags, reward, _ = split_kwargs(args)
        self.map_name = map_name
        self._seed = args["seed"]
        self._vec = VectorizedSMAC(
            map_name,
            n_envs=1,
            seed=args["seed"],
            step_mul=args["step_mul"],
            move_amount=args["move_amount"],
            continuing_episode=args["continuing_episode"],
            flags=flags,
            reward=reward,
            scenario=scenario,
        )
        for k, v in args.items():
            if k != "seed":  # seed() is SMAC's getter method
                setattr(self, k, v)
        eng = self._vec.engine
        self._eng = eng
        spec = eng.spec
        self.n_agents, self.n_enemies = eng.n_agents, eng.n_enemies
        self.episode_limit = spec.limit
        self.map_type = spec.map_type.name
        self.unit_type_bits = spec.unit_type_bits
        self._agent_race, self._bot_race = spec.a_race, spec.b_race
        self.shield_bits_ally = int(spec.a_race == "P")
        self.shield_bits_enemy = int(spec.b_race == "P")
        self.n_actions_no_attack, self.n_actions_move = N_ACTIONS_NO_ATTACK, N_ACTIONS_MOVE
        self.n_actions = eng.n_actions
        self.n_obs_pathing, self.n_obs_height = 8, 9
        self.map_x, self.map_y = eng.map_x, eng.map_y
        self.max_distance_x, self.max_distance_y = eng.map_x, eng.map_y
        self.pathing_grid = eng.tables.grid.copy()
        self.terrain_height = self._vec.features.terrain_height.copy()
        self.ally_state_attr_names = (
            ["health", "energy/cooldown", "rel_x", "rel_y"]
            + (["shield"] if self.shield_bits_ally else [])
            + [f"type_{i}" for i in range(self.unit_type_bits)]
        )
        self.enemy_state_attr_names = (
            ["health", "rel_x", "rel_y"]
            + (["shield"] if self.shield_bits_enemy else [])
            + [f"type_{i}" for i in range(self.unit_type_bits)]
        )
        self.battles_won = self.battles_game = self.timeouts = self.force_restarts = 0
        self._episode_count = self._episode_steps = self._total_steps = 0
        self.win_counted = self.defeat_counted = False
        self._frames: List[np.ndarray] = []
        self._recording = False
        self._heuristic = SmacHeuristic(eng, self.heuristic_rest)

    # ------------------------------------------------------------------ episode
    def reset(self) -> Tuple[List[np.ndarray], np.ndarray]:
        return self._reset()

    def _reset(self, layout: Optional[Layout] = None) -> Tuple[List[np.ndarray], np.ndarray]:
        """A new battle; `layout`: a SMACv2 scenario's given teams and spawn points instead of drawn ones."""
        self._vec.reset(layouts=None if layout is None else [layout])
        self._heuristic.reset()
        self._episode_steps = 0
        self.win_counted = self.defeat_counted = False
        if self._recording:
            self._frames = [annotated_frame(self._eng, 0, step=0)]
        return self.get_obs(), self.get_state()

    def step(self, actions) -> Tuple[float, bool, Dict[str, Any]]:
        acts = self._action_row(actions)
        if self.heuristic_ai:
            orders = self._heuristic.actions(self._vec.avail_actions()[0])
            _write_back(actions, orders)
            res = self._vec.step(orders[None, :], validate=False, recorded=acts[None, :])
        else:
            res = self._vec.step(acts[None, :])
        self._total_steps += 1
        self._episode_steps += 1
        info: Dict[str, Any] = {
            "battle_won": False,
            "dead_allies": int(res.dead_allies[0]),
            "dead_enemies": int(res.dead_enemies[0]),
        }
        terminated = bool(res.terminated[0])
        if terminated:
            self.battles_game += 1
            self._episode_count += 1
            if res.battle_won[0] and not self.win_counted:
                self.battles_won += 1
                self.win_counted = True
                info["battle_won"] = True
            elif res.timeout[0]:
                self.timeouts += 1
                if self.continuing_episode:
                    info["episode_limit"] = True
        if self._recording:
            outcome = (
                outcome_of(
                    bool(res.battle_won[0]),
                    bool(res.timeout[0]),
                    info["dead_allies"],
                    info["dead_enemies"],
                    self.n_agents,
                    self.n_enemies,
                )
                if terminated
                else None
            )
            self._frames.append(annotated_frame(self._eng, 0, step=self._episode_steps, outcome=outcome))
        return float(res.reward[0]), terminated, info

    def _action_row(self, actions) -> np.ndarray:
        """[n_agents] int64 from any sequence of integral numbers; one clear ValueError otherwise."""
        if not hasattr(actions, "__len__"):
            raise ValueError(f"step() needs a sequence of {self.n_agents} actions, got {type(actions).__name__}")
        try:
            # one conversion, and a copy: the heuristic writes its actions back into the caller's array,
            # and the caller's own actions are what the step records
            raw = np.array(actions)  # lists of ints, arrays and CPU tensors
        except (TypeError, ValueError, RuntimeError):
            raw = np.asarray([_scalar(a) for a in actions])
        if raw.dtype == object:  # e.g. a list of 0-d tensors
            raw = np.asarray([_scalar(a) for a in actions])
        if raw.shape != (self.n_agents,):
            raise ValueError(f"step() needs one action per agent ({self.n_agents}), got shape {raw.shape}")
        acts = integral_actions(raw)
        if self.heuristic_ai:  # checked before the heuristic writes back: SMAC records even ignored actions
            self._vec.check_raw_actions(acts[None, :])
        return acts  # otherwise availability is checked, agent named, by VectorizedSMAC.step

    # ------------------------------------------------------------------ observations
    def get_obs(self) -> List[np.ndarray]:
        obs = self._vec.observations()[0]
        return [obs[i] for i in range(self.n_agents)]

    def _agent(self, agent_id: Any) -> int:
        """An agent's index, checked: numpy would take -1 as the last agent and SMAC's dict of agents
        refuses it; a ValueError names the range."""
        if not is_integer(agent_id) or not 0 <= agent_id < self.n_agents:
            last = self.n_agents - 1
            raise ValueError(f"agent_id {agent_id!r}: {self.map_name} has {self.n_agents} agents, 0-{last}")
        return int(agent_id)

    def get_obs_agent(self, agent_id: int) -> np.ndarray:
        return self._vec.observations()[0, self._agent(agent_id)]

    def get_obs_size(self) -> int:
        return self._vec.features.obs_size

    def get_state(self) -> np.ndarray:
        return self._vec.states()[0]

    def get_state_size(self) -> int:
        return self._vec.features.state_size

    def get_state_dict(self) -> Dict[str, np.ndarray]:
        f, n_a, n_e = self._vec.features, self.n_agents, self.n_enemies
        if self.obs_instead_of_state:
            raise Exception("State dict cannot be made if obs_instead_of_state is True")
        s = self.get_state()
        out = {
            "allies": s[: n_a * f.st_al].reshape(n_a, f.st_al),
            "enemies": s[n_a * f.st_al : n_a * f.st_al + n_e * f.st_en].reshape(n_e, f.st_en),
        }
        off = n_a * f.st_al + n_e * f.st_en
        if self.state_last_action:
            out["last_action"] = s[off : off + n_a * self.n_actions].reshape(n_a, self.n_actions)
            off += n_a * self.n_actions
        if self.state_timestep_number:
            out["timestep"] = s[off:]
        return out

    def get_avail_actions(self) -> List[List[int]]:
        return self._vec.avail_actions()[0].tolist()

    def get_avail_agent_actions(self, agent_id: int) -> List[int]:
        return self._vec.avail_actions()[0, self._agent(agent_id)].tolist()

    def get_total_actions(self) -> int:
        return self.n_actions

    def get_env_info(self) -> Dict[str, Any]:
        return {
            "state_shape": self.get_state_size(),
            "obs_shape": self.get_obs_size(),
            "n_actions": self.n_actions,
            "n_agents": self.n_agents,
            "episode_limit": self.episode_limit,
            "agent_features": self.ally_state_attr_names,
            "enemy_features": self.enemy_state_attr_names,
        }

    def get_stats(self) -> Dict[str, Any]:
        return {
            "battles_won": self.battles_won,
            "battles_game": self.battles_game,
            "battles_draw": self.timeouts,
            "win_rate": self.battles_won / self.battles_game,
            "timeouts": self.timeouts,
            "restarts": self.force_restarts,
        }

    def get_visibility_matrix(self) -> np.ndarray:
        return self._vec.features.visibility_matrix()[0]

    def get_unit_types(self) -> List[int]:
        return [int(v) for v in self._tables.sc2_id]

    # layout helpers
    def get_obs_move_feats_size(self) -> int:
        return self._vec.features.n_move

    def get_obs_enemy_feats_size(self) -> Tuple[int, int]:
        return self.n_enemies, self._vec.features.nf_en

    def get_obs_ally_feats_size(self) -> Tuple[int, int]:
        return self.n_agents - 1, self._vec.features.nf_al

    def get_obs_own_feats_size(self) -> int:
        return self._vec.features.n_own

    def get_ally_num_attributes(self) -> int:
        return len(self.ally_state_attr_names)

    def get_enemy_num_attributes(self) -> int:
        return len(self.enemy_state_attr_names)

    # ------------------------------------------------------------------ units
    def _record(self, u: int) -> UnitRecord:
        e, t = self._eng, self._tables
        return UnitRecord(
            tag=u,
            unit_type=int(t.sc2_id[u]),
            health=float(e.hp[0, u]),
            health_max=float(t.hp_max[u]),
            shield=float(e.sh[0, u]),
            shield_max=float(t.sh_max[u]),
            energy=float(e.energy[0, u]),
            weapon_cooldown=float(e.cd[0, u]),
            pos=Point(float(e.x[0, u]), float(e.y[0, u])),
        )

    @property
    def agents(self) -> Dict[int, UnitRecord]:
        return {i: self._record(i) for i in range(self.n_agents)}

    @property
    def enemies(self) -> Dict[int, UnitRecord]:
        return {j: self._record(self.n_agents + j) for j in range(self.n_enemies)}

    def get_unit_by_id(self, a_id: int) -> UnitRecord:
        return self._record(self._agent(a_id))  # SMAC's: an ally (`self.agents[a_id]`)

    @property
    def death_tracker_ally(self) -> np.ndarray:
        return self._vec.death_tracker[0, : self.n_agents].astype(np.float32)

    @property
    def death_tracker_enemy(self) -> np.ndarray:
        return self._vec.death_tracker[0, self.n_agents :].astype(np.float32)

    @property
    def last_action(self) -> np.ndarray:
        return self._vec.last_action[0]

    @property
    def _tables(self):
        """Env 0's unit tables (a SMACv2 scenario's change at every reset)."""
        return self._eng.tables_of(0)

    @property
    def max_reward(self) -> float:
        return self._vec.max_reward

    def unit_shoot_range(self, agent_id: int) -> float:
        ft = self._vec.features.tables
        return float(ft.shoot[ft.table_of[0], self._agent(agent_id)])

    def unit_sight_range(self, agent_id: int) -> float:
        ft = self._vec.features.tables
        return float(ft.sight[ft.table_of[0], self._agent(agent_id)])

    def unit_max_cooldown(self, unit: UnitRecord) -> float:
        return float(self._tables.max_cd_obs[unit.tag])

    def unit_max_shield(self, unit: UnitRecord) -> float:
        return float(self._tables.sh_max[unit.tag])

    def check_bounds(self, x: float, y: float) -> bool:
        return 0 <= x < self.map_x and 0 <= y < self.map_y

    def can_move(self, unit: UnitRecord, direction: int) -> bool:
        """direction 0..3 = N, S, E, W, probed one cell away as SMAC does."""
        m = self.move_amount / 2
        dx, dy = [(0, m), (0, -m), (m, 0), (-m, 0)][int(direction)]
        x, y = int(unit.pos.x + dx), int(unit.pos.y + dy)
        return self.check_bounds(x, y) and bool(self.pathing_grid[x, y])

    def get_surrounding_points(self, unit: UnitRecord, include_self: bool = False) -> List[Tuple[int, int]]:
        x, y = int(unit.pos.x), int(unit.pos.y)
        ma = self.move_amount
        pts = [
            (x, y + 2 * ma),
            (x, y - 2 * ma),
            (x + 2 * ma, y),
            (x - 2 * ma, y),
            (x + ma, y + ma),
            (x - ma, y - ma),
            (x + ma, y - ma),
            (x - ma, y + ma),
        ]
        return ([(x, y)] if include_self else []) + pts

    def get_surrounding_pathing(self, unit: UnitRecord) -> np.ndarray:
        return np.array(
            [self.pathing_grid[p] if self.check_bounds(*p) else 1 for p in self.get_surrounding_points(unit)],
            dtype=np.float32,
        )

    def get_surrounding_height(self, unit: UnitRecord) -> np.ndarray:
        return np.array(
            [
                self.terrain_height[p] if self.check_bounds(*p) else 1
                for p in self.get_surrounding_points(unit, include_self=True)
            ],
            dtype=np.float32,
        )

    @staticmethod
    def distance(x1: float, y1: float, x2: float, y2: float) -> float:
        return math.hypot(x2 - x1, y2 - y1)

    # ------------------------------------------------------------------ misc
    def seed(self) -> Optional[int]:
        """SMAC's getter: returns the construction seed and does not reseed."""
        return self._seed

    def render(self, mode: str = "rgb_array") -> np.ndarray:
        if mode != "rgb_array":
            raise ValueError(f"render mode {mode!r} is not supported by the embedded engine; use 'rgb_array'")
        return render_frame(self._eng, 0)

    def start_recording(self) -> None:
        """Record an annotated frame (step counter, legend, the outcome at the end) now and after every
        reset and step, for `save_gif`."""
        self._recording, self._frames = True, [annotated_frame(self._eng, 0, step=self._episode_steps)]

    def save_gif(self, path: str | Path, fps: int = 8) -> Path:
        return save_gif(self._frames, path, fps)

    def save_replay(self) -> None:
        """SC2 replays need the game; says so once per process and points to the GIF recorder."""
        global _REPLAY_NOTICE_GIVEN
        if not _REPLAY_NOTICE_GIVEN:
            _REPLAY_NOTICE_GIVEN = True
            warnings.warn(
                "save_replay(): the embedded engine writes no SC2 replays; record frames with "
                "env.start_recording() and write them with env.save_gif(path)",
                stacklevel=2,
            )

    def full_restart(self) -> None:
        self.force_restarts += 1
        self.reset()

    def close(self) -> None:
        self._frames = []


def _scalar(a: Any) -> Any:
    """One action as a plain number: 0-d arrays and tensors (`.item()`), numbers as they are."""
    return a.item() if hasattr(a, "item") and np.ndim(a) == 0 else a


def _write_back(actions: Any, orders: np.ndarray) -> None:
    """SMAC writes the heuristic's action numbers into the caller's array; immutable sequences are left."""
    try:
        for i, a in enumerate(orders):
            actions[i] = int(a)
    except TypeError:
        pass
