"""Golden battle trajectories: record them from the engine, replay them against it.

A trajectory is a seeded run on one map with its actions stored, so a replay does not depend on a
policy reading floats. Two per map:
- "random": VectorizedSMAC with 2 envs, uniform random valid actions, finished battles reset one at
  a time (partial resets), env 1 started near the episode limit so a time-out is in every fixture.
- "focus": StarCraft2Env (the pymarl API path), the scripted focus-fire policy, whole episodes.
Recorded after every step: state, masks, reward, termination, won, time-out, dead counts, and the obs
of every OBS_EVERY-th step and of every step that ended a battle (to keep the fixtures small); after
every reset: obs, state and masks of the reset rows.

Regenerate only for an intended change of battle semantics, and say so in the commit:
    python tests/golden_trajectories.py --record [MAP ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, Iterable

import numpy as np
import yaml

from rllib_uas.envs.engine.units import DATA_DIR
from rllib_uas.envs.engine.vec_smac import VectorizedSMAC
from rllib_uas.envs.scripted import focus_fire_policy
from rllib_uas.envs.smac_api import StarCraft2Env

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
# the maps the package ships (available_maps() also lists maps a test or a user registered)
SHIPPED_MAPS = sorted(yaml.safe_load((DATA_DIR / "maps.yaml").read_text())["maps"])
RANDOM_STEPS, FOCUS_STEPS, SEED = 160, 120, 11
OBS_EVERY = 5  # full obs kept every 5th step and at every termination (state and masks every step)
TIMEOUT_HEAD_START = 12  # env 1's first episode starts this many steps before the limit


def _features(vec: VectorizedSMAC, rows) -> Dict[str, np.ndarray]:
    return {"obs": vec.observations()[rows], "state": vec.states()[rows], "avail": vec.avail_actions()[rows]}


def play_random(map_name: str, actions: np.ndarray | None = None) -> Dict[str, np.ndarray]:
    """Run (or replay, when `actions` [T, 2, n_agents] is given) the random-policy trajectory."""
    vec = VectorizedSMAC(map_name, n_envs=2, seed=SEED)
    vec.reset()
    vec.episode_steps[1] = max(vec.episode_limit - TIMEOUT_HEAD_START, 0)
    rng = np.random.default_rng(SEED)
    rec: Dict[str, list] = {
        k: []
        for k in (
            "actions",
            "obs",
            "state",
            "avail",
            "reward",
            "terminated",
            "won",
            "timeout",
            "dead_allies",
            "dead_enemies",
            "reset_step",
            "reset_env",
            "reset_obs",
            "reset_state",
            "reset_avail",
        )
    }
    for step in range(RANDOM_STEPS if actions is None else len(actions)):
        avail = vec.avail_actions()
        a = (rng.random(avail.shape) * avail).argmax(-1) if actions is None else actions[step]
        res = vec.step(a)
        rec["actions"].append(a)
        for k, v in _features(vec, slice(None)).items():
            rec[k].append(v)
        rec["reward"].append(res.reward)
        rec["terminated"].append(res.terminated)
        rec["won"].append(res.battle_won)
        rec["timeout"].append(res.timeout)
        rec["dead_allies"].append(res.dead_allies)
        rec["dead_enemies"].append(res.dead_enemies)
        if res.terminated.any():
            vec.reset(res.terminated)
            for e in np.flatnonzero(res.terminated):
                rec["reset_step"].append(step)
                rec["reset_env"].append(e)
                for k, v in _features(vec, e).items():
                    rec["reset_" + k].append(v)
    return {k: np.asarray(v) for k, v in rec.items()}


def play_focus(map_name: str, actions: np.ndarray | None = None) -> Dict[str, np.ndarray]:
    """Run (or replay) the focus-fire trajectory through StarCraft2Env, one env, whole episodes."""
    env = StarCraft2Env(map_name=map_name, seed=SEED)
    obs, state = env.reset()
    rng = np.random.default_rng(SEED)
    rec: Dict[str, list] = {
        k: []
        for k in ("actions", "obs", "state", "avail", "reward", "terminated", "won", "dead_allies", "dead_enemies")
    }
    rec_reset = {"reset_obs": [np.asarray(obs)], "reset_state": [state], "reset_step": [-1]}
    for step in range(FOCUS_STEPS if actions is None else len(actions)):
        a = focus_fire_policy(env, rng) if actions is None else actions[step].tolist()
        reward, terminated, info = env.step(a)
        rec["actions"].append(np.asarray(a, dtype=np.int64))
        rec["obs"].append(np.asarray(env.get_obs()))
        rec["state"].append(env.get_state())
        rec["avail"].append(np.asarray(env.get_avail_actions()))
        rec["reward"].append(reward)
        rec["terminated"].append(terminated)
        rec["won"].append(info["battle_won"])
        rec["dead_allies"].append(info["dead_allies"])
        rec["dead_enemies"].append(info["dead_enemies"])
        if terminated:
            obs, state = env.reset()
            rec_reset["reset_obs"].append(np.asarray(obs))
            rec_reset["reset_state"].append(state)
            rec_reset["reset_step"].append(step)
    return {**{k: np.asarray(v) for k, v in rec.items()}, **{k: np.asarray(v) for k, v in rec_reset.items()}}


def obs_steps(terminated: np.ndarray) -> np.ndarray:
    """The steps whose full obs a fixture keeps: every OBS_EVERY-th and every one that ended a battle."""
    ended = terminated.reshape(len(terminated), -1).any(1)
    return np.flatnonzero((np.arange(len(terminated)) % OBS_EVERY == 0) | ended)


def _thin(rec: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    keep = obs_steps(rec["terminated"])
    return {**rec, "obs": rec["obs"][keep], "obs_steps": keep}


def record(maps: Iterable[str]) -> None:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for m in maps:
        arrays = {f"random/{k}": v for k, v in _thin(play_random(m)).items()}
        arrays.update({f"focus/{k}": v for k, v in _thin(play_focus(m)).items()})
        path = GOLDEN_DIR / f"{m}.npz"
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        r, f = arrays["random/terminated"], arrays["focus/terminated"]
        print(
            f"{m}: {path.stat().st_size / 1024:.0f} KiB, random episodes ended {int(r.sum())} "
            f"(time-outs {int(arrays['random/timeout'].sum())}, won {int(arrays['random/won'].sum())}), "
            f"focus episodes ended {int(f.sum())} (won {int(arrays['focus/won'].sum())})"
        )


def load(map_name: str) -> Dict[str, Dict[str, np.ndarray]]:
    with np.load(GOLDEN_DIR / f"{map_name}.npz") as z:
        out: Dict[str, Dict[str, np.ndarray]] = {"random": {}, "focus": {}}
        for k in z.files:
            kind, name = k.split("/", 1)
            out[kind][name] = z[k]
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--record", action="store_true", help="write tests/data/golden/<map>.npz")
    p.add_argument("maps", nargs="*", help="maps to record (default: every shipped map)")
    args = p.parse_args()
    if not args.record:
        p.error("nothing to do: pass --record")
    record(args.maps or SHIPPED_MAPS)
    sys.exit(0)
