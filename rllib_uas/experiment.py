"""Classic RLlib experiment YAML (`{name: {run, env, stop, config, ...}}`) -> typed 2.60 configs.

Retired keys are mapped to their RLlib 2.60 names with a notice; unknown keys fail with the list
of valid ones (and the closest match).
"""

from __future__ import annotations

import copy
import difflib
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type

import yaml

from rllib_uas.value_types import is_integer

logger = logging.getLogger(__name__)


class ExperimentError(ValueError):
    """A problem in an experiment file; the message names the file, the experiment and the key."""


# retired (pre-2.x) config keys -> their RLlib 2.60 names
RETIRED_CONFIG_KEYS = {
    "num_workers": "num_env_runners",
    "num_rollout_workers": "num_env_runners",
    "num_envs_per_worker": "num_envs_per_env_runner",
    "num_sgd_iter": "num_epochs",
    "sgd_minibatch_size": "minibatch_size",
    "train_batch_size": "train_batch_size_per_learner",
    "evaluation_num_workers": "evaluation_num_env_runners",
    "num_gpus": "num_gpus_per_learner",
    "lambda": "lambda_",
}
# old result keys in `stop` -> 2.60 result paths
RETIRED_STOP_KEYS = {
    "episode_reward_mean": "env_runners/episode_return_mean",
    "episode_return_mean": "env_runners/episode_return_mean",
    "timesteps_total": "num_env_steps_sampled_lifetime",
    "timesteps_this_iter": "num_env_steps_sampled",
    "time_total_s": "time_total_s",
    "win_rate": "env_runners/win_rate",
}
# config keys that only affected the old stack; they are dropped with a notice
IGNORED_CONFIG_KEYS = {"framework", "log_level", "model"}
RUN_ALIASES = {"UMAPPO": "U-MAPPO", "UQMIX": "U-QMIX"}  # run names of earlier releases
EXPERIMENT_KEYS = (
    "run",
    "env",
    "stop",
    "config",
    "checkpoint_config",
    "num_samples",
    "scheduler",
    "checkpoint_freq",
    "checkpoint_at_end",
)


def algorithm_registry() -> Dict[str, Tuple[Callable[[], Type], Dict[str, Any]]]:
    """name -> (lazy class loader, config overrides). Our variants (`rllib_uas.variants`) whose names
    are run names, the aliases UMAPPO / UQMIX, then RLlib's own algorithms."""
    from rllib_uas.variants import VARIANTS

    def rllib(name: str):
        def load():
            from ray.rllib.algorithms.registry import _get_algorithm_class  # avoids Tune's DreamerV3 import

            return _get_algorithm_class(name)

        return load

    reg = {
        name: (VARIANTS[name].algo_class, dict(VARIANTS[name].switches))
        for name in ("U-MAPPO", "MAPPO", "U-QMIX", "QMIX", "VDN")
    }
    for alias, name in RUN_ALIASES.items():
        reg[alias] = reg[name]
    for name in ("PPO", "APPO", "IMPALA", "DQN", "SAC", "BC", "MARWIL", "CQL", "IQL"):
        reg.setdefault(name, (rllib(name), {}))
    return reg


@dataclass
class Experiment:
    name: str
    run: str
    algo_class: Type
    config: Any  # an AlgorithmConfig
    stop: Dict[str, Any] = field(default_factory=dict)
    num_samples: int = 1
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool = True
    num_to_keep: Optional[int] = None  # newest checkpoints kept per trial; None keeps all
    source: str = ""
    notices: List[str] = field(default_factory=list)
    scheduler: Optional[Dict[str, Any]] = None
    searched_keys: List[str] = field(default_factory=list)  # dotted config keys under grid_search
    num_trials: int = 1  # num_samples x the grid's points


def _closest(key: str, valid) -> str:
    match = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""


def load_yaml(path: str | Path) -> Dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ExperimentError(f"{path}: cannot read the experiment file: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ExperimentError(f"{path}: malformed YAML{line}: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict) or not data:
        raise ExperimentError(f"{path}: must be a mapping {{experiment_name: {{run, env, stop, config}}}}")
    return data


def parse_experiments(
    data: Mapping[str, Any],
    source: str = "<dict>",
    on_checked: Optional[Callable[[List[Mapping[str, Any]]], None]] = None,
) -> List[Experiment]:
    """Typed experiments from the file's mapping. Every check that needs no RLlib runs first, for all
    experiments (about a second: `precheck_experiment`); then each config is built and validated.
    `on_checked(specs)`: called between the two, once the file is known good (the CLI starts the
    engine's compile there, `engine_battles`)."""
    registry = algorithm_registry()
    checked = [precheck_experiment(str(name), spec, source, registry) for name, spec in data.items()]
    if on_checked is not None:
        on_checked([spec for _, spec, _, _, _ in checked])
    out = []
    for name, spec, where, stop, notices in checked:
        loader, overrides = registry[spec["run"]]
        algo_class = loader()
        config, config_notices = build_config(
            algo_class, {**overrides, **dict(spec.get("config") or {})}, env=spec.get("env"), where=where
        )
        ckpt = dict(spec.get("checkpoint_config") or {})
        out.append(
            Experiment(
                name=name,
                run=spec["run"],
                algo_class=algo_class,
                config=config,
                stop=stop,
                num_samples=spec.get("num_samples", 1),
                checkpoint_frequency=int(ckpt.get("checkpoint_frequency", spec.get("checkpoint_freq", 0))),
                checkpoint_at_end=bool(ckpt.get("checkpoint_at_end", spec.get("checkpoint_at_end", True))),
                num_to_keep=ckpt.get("num_to_keep"),
                source=source,
                notices=config_notices + notices,
                scheduler=spec.get("scheduler"),
                searched_keys=_searched(spec.get("config") or {}),
                num_trials=spec.get("num_samples", 1) * grid_points(spec.get("config") or {}),
            )
        )
    return out


def engine_battles(specs: List[Mapping[str, Any]]) -> List[Tuple[str, str]]:
    """(map, random-stream mode) of each experiment that plays a fixed map on the embedded engine;
    searched or non-SMAC ones are left out (they compile in their trials, as before)."""
    from rllib_uas.envs import ENV_NAMES

    out = []
    for spec in specs:
        env = spec.get("env") or ("smac_team" if _variant_algorithm(spec["run"]) else None)
        env_config = (spec.get("config") or {}).get("env_config") or {}
        if env not in ENV_NAMES or not isinstance(env_config, Mapping):
            continue
        map_name = env_config.get("map_name", "3m")
        streams = env_config.get("engine_streams", "shared")
        if (
            env_config.get("backend", "embedded") == "embedded"
            and isinstance(map_name, str)
            and isinstance(streams, str)
        ):
            out.append((map_name, streams))
    return out


def precheck_experiment(name: str, spec: Any, source: str, registry: Mapping[str, Any]):
    """The checks of one experiment that need no RLlib: its keys, algorithm, stop criteria and checkpoint
    settings; for our variants also the config keys, types and values (`config_manifest`, `checks`) and
    the env. Returns (name, spec, where, stop, notices)."""
    where = f"{source}: experiment '{name}'"
    if not isinstance(spec, dict):
        raise ExperimentError(f"{where}: must be a mapping with run, env, stop and config")
    unknown = sorted(set(spec) - set(EXPERIMENT_KEYS))
    if unknown:
        raise ExperimentError(
            f"{where}: unknown key '{unknown[0]}'{_closest(unknown[0], EXPERIMENT_KEYS)}; "
            f"valid keys: {', '.join(EXPERIMENT_KEYS)}"
        )
    run = spec.get("run")
    if not isinstance(run, str) or run not in registry:
        raise ExperimentError(
            f"{where}: unknown algorithm run: {run!r}{_closest(str(run), registry)}; "
            f"available: {', '.join(sorted(registry))}"
        )
    config = spec.get("config") or {}
    if not isinstance(config, dict):
        raise ExperimentError(f"{where}: config must be a mapping of config keys, got {config!r}")
    _check_searches(config, where)
    stop, notices = normalize_stop(spec.get("stop") or {}, where)
    ckpt = spec.get("checkpoint_config") or {}
    if not isinstance(ckpt, dict):
        raise ExperimentError(f"{where}: checkpoint_config must be a mapping, got {ckpt!r}")
    for k in ckpt:
        if k not in ("checkpoint_frequency", "checkpoint_at_end", "num_to_keep"):
            raise ExperimentError(
                f"{where}: unknown checkpoint_config key '{k}'; valid: checkpoint_frequency, "
                "checkpoint_at_end, num_to_keep"
            )
    freq = ckpt.get("checkpoint_frequency", spec.get("checkpoint_freq", 0))
    if not is_integer(freq) or freq < 0:
        raise ExperimentError(
            f"{where}: checkpoint_config checkpoint_frequency must be an integer >= 0 (iterations between "
            f"checkpoints; 0: none along the way), got {freq!r}"
        )
    at_end = ckpt.get("checkpoint_at_end", spec.get("checkpoint_at_end", True))
    if not isinstance(at_end, bool):
        raise ExperimentError(f"{where}: checkpoint_config checkpoint_at_end must be true or false, got {at_end!r}")
    num_to_keep = ckpt.get("num_to_keep")
    if num_to_keep is not None and (not is_integer(num_to_keep) or num_to_keep < 1):
        raise ExperimentError(f"{where}: checkpoint_config num_to_keep must be a positive integer, got {num_to_keep!r}")
    num_samples = spec.get("num_samples", 1)
    if not is_integer(num_samples) or num_samples < 1:
        raise ExperimentError(f"{where}: num_samples must be a positive integer, got {num_samples!r}")
    algorithm = _variant_algorithm(run)
    if algorithm is not None:
        _precheck_variant_config(algorithm, {**registry[run][1], **config}, spec.get("env"), where)
    return name, spec, where, stop, notices


def _variant_algorithm(run: str) -> Optional[str]:
    """'mappo' / 'qmix' for our variants and their aliases; None for RLlib's own algorithms."""
    from rllib_uas.variants import VARIANTS

    name = RUN_ALIASES.get(run, run)
    return VARIANTS[name].algorithm if name in VARIANTS else None


def _precheck_variant_config(algorithm: str, raw: Mapping[str, Any], env: Any, where: str) -> None:
    """Keys, types and our settings' values against the stored manifest of the config class, so the
    common mistakes answer before RLlib is imported; `build_config` checks the same on the live class."""
    from types import SimpleNamespace

    from rllib_uas.algorithms.config_manifest import load_manifest
    from rllib_uas.settings import CHECKS

    entry = load_manifest()["configs"][algorithm]
    clean, _ = normalize_config_keys(raw, entry["keys"], where, entry["class"])
    if env is not None:
        clean.setdefault("env", env)
    defaults = entry["defaults"]
    if not _check_env(clean, defaults.get("env"), where):
        _check_team_env(clean.get("env"), clean.get("env_config"), where)
    _check_number_types(clean, defaults, where)
    for variant in _search_variants(clean):
        try:
            CHECKS[algorithm](SimpleNamespace(**{**defaults, **variant}))
        except ValueError as err:
            raise ExperimentError(f"{where}: invalid config: {err}") from None


def restated_defaults(spec: Mapping[str, Any]) -> List[str]:
    """The settings of one experiment spec that only repeat its variant's defaults (config keys, `env`,
    `checkpoint_config`); a tuned example states only what differs."""
    loader, overrides = algorithm_registry()[spec["run"]]
    defaults = loader().get_default_config()
    defaults.update_from_dict(dict(overrides))
    same = []
    for key, value in (spec.get("config") or {}).items():
        if (
            not _is_search(value)
            and key not in IGNORED_CONFIG_KEYS
            and key not in RETIRED_CONFIG_KEYS
            and getattr(defaults, key, object()) == value
        ):
            same.append(f"config.{key}")
    if "env" in spec and spec["env"] == defaults.env:
        same.append("env")
    ckpt = spec.get("checkpoint_config") or {}
    for key, default in (("checkpoint_frequency", 0), ("checkpoint_at_end", True)):
        if key in ckpt and ckpt[key] == default:
            same.append(f"checkpoint_config.{key}")
    return same


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of the experiments with `overrides` ({"lr": 1e-4, "env_config.map_name": "MMM2"}) set in
    every experiment's config; dotted keys reach into nested dicts."""
    import copy

    out = copy.deepcopy(dict(data))
    for spec in out.values():
        if not isinstance(spec, dict):
            continue  # parse_experiments names the problem
        config = spec.setdefault("config", {})
        for key, value in overrides.items():
            node, parts = config, key.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[parts[-1]] = value
    return out


def load_experiments(path: str | Path) -> List[Experiment]:
    return parse_experiments(load_yaml(path), source=str(path))


def build_config(algo_class: Type, raw: Mapping[str, Any], env: Optional[str] = None, where: str = ""):
    """The algorithm's default config updated from a flat dict of (possibly retired) keys."""
    from rllib_uas.algorithms.config_manifest import valid_config_keys

    config = algo_class.get_default_config()
    clean, notices = normalize_config_keys(raw, valid_config_keys(config), where, algo_class.__name__)
    if env is not None:
        clean.setdefault("env", env)
    if _check_env(clean, config.env, where):
        notices += _cgi_notice(config, clean, where)
    config.update_from_dict(_resolve_searches(clean))
    _preflight(algo_class, clean, where)
    return config, notices


def normalize_config_keys(raw: Mapping[str, Any], valid, where: str, class_name: str):
    """Retired keys renamed and old-stack keys dropped (each with a notice); an unknown key is an error
    naming the closest valid one. Returns (clean config dict, notices)."""
    valid = set(valid)
    notices, clean = [], {}
    for key, value in raw.items():
        if key in IGNORED_CONFIG_KEYS:
            notices.append(f"{where}: config key '{key}' has no effect on RLlib 2.60's new API stack; ignored")
            continue
        if key in RETIRED_CONFIG_KEYS:
            new = RETIRED_CONFIG_KEYS[key]
            notices.append(f"{where}: config key '{key}' is retired; using '{new}'")
            key = new
        if key not in valid:
            some = ", ".join(sorted(valid)[:12])
            raise ExperimentError(
                f"{where}: unknown config key '{key}'{_closest(key, valid)}; valid keys are "
                f"{class_name}'s config attributes, e.g. {some}, ..."
            )
        clean[key] = value
    return clean, notices


def _check_env(clean: Mapping[str, Any], default_env: Any, where: str) -> bool:
    """The env name, and for the SMAC envs their env_config. True when the env is one of ours."""
    from rllib_uas.envs import ENV_NAMES

    env_name = clean.get("env", default_env)
    _check_env_name(env_name, where)
    if env_name not in ENV_NAMES:
        return False
    _check_smac_env_config(clean.get("env_config") or {}, where)
    return True


def _check_team_env(env: Any, env_config: Any, where: str) -> None:
    """A gymnasium id given to a team algorithm must make a team observation (`team_obs.check_gym_team_env`)."""
    if _is_search(env) or (env_config is not None and not isinstance(env_config, Mapping)):
        return  # a search is checked by build_config's validate() per value; a bad env_config is RLlib's
    from rllib_uas.team_obs import check_gym_team_env

    try:
        check_gym_team_env(env, _first_of_searches(dict(env_config or {})))
    except ValueError as err:
        raise ExperimentError(f"{where}: invalid config: {err}") from None


def _check_number_types(clean: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> None:
    """A string where the default is a number (`minibatch_size: abc`) fails here, not in the trial."""
    for key, value in _first_of_searches(dict(clean)).items():
        default = defaults.get(key)
        if isinstance(default, (int, float)) and not isinstance(default, bool) and isinstance(value, str):
            raise ExperimentError(f"{where}: config key '{key}' must be a number (default {default!r}), got {value!r}")


def _cgi_notice(defaults: Any, clean: Mapping[str, Any], where: str) -> List[str]:
    """CGI on a map with one action group predicts no other group: say so rather than let it look tested."""
    env_config = clean.get("env_config") or {}
    map_name, cgi = env_config.get("map_name"), clean.get("cgi_coeff", getattr(defaults, "cgi_coeff", 0.0))
    uas = clean.get("uas", getattr(defaults, "uas", False))
    if (
        env_config.get("backend", "embedded") != "embedded"
        or not isinstance(map_name, str)
        or uas is not True
        or not isinstance(cgi, (int, float))
        or cgi <= 0
    ):
        return []
    from rllib_uas.uas import smac_map_action_groups

    if smac_map_action_groups(map_name) > 1:
        return []
    return [
        f"{where}: {map_name} has one action group (no Medivac), so the CGI loss has no other group to "
        f"predict and cgi_coeff={cgi:g} only adds compute; this run is UAS without CGI in effect"
    ]


def _check_env_name(env: Any, where: str) -> None:
    """An env given by name must be ours, registered with Tune, a gymnasium id or an importable path."""
    if not isinstance(env, str) or _is_search(env):
        return
    from rllib_uas.envs import ENV_NAMES, import_class_path

    if env in ENV_NAMES:
        return
    import gymnasium

    if env in gymnasium.envs.registry:
        return
    # an env registered with Tune: only code that already imported Tune can have registered one (the
    # CLI's own process has none), so a name that is not ours costs no 2 s Tune import to refuse
    registry = sys.modules.get("ray.tune.registry")
    if registry is not None and registry._global_registry.contains(registry.ENV_CREATOR, env):
        return
    if import_class_path(env) is not None:
        return
    raise ExperimentError(
        f"{where}: unknown env {env!r}{_closest(env, ENV_NAMES)}; use smac_team (the team view "
        "both algorithms train on), smac, an env registered with ray.tune.register_env, a "
        "gymnasium id or a 'module.Class' path"
    )


def _check_smac_env_config(env_config: Mapping[str, Any], where: str) -> None:
    """The SMAC envs' env_config: known keys ("did you mean"), a known map, a usable backend."""
    from rllib_uas.envs.backend import BACKENDS, ENV_CONFIG_KEYS, check_env_config_values
    from rllib_uas.envs.engine import available_maps, available_scenarios

    valid = list(ENV_CONFIG_KEYS)
    for key in env_config:
        if key not in valid:
            raise ExperimentError(
                f"{where}: unknown env_config key {key!r}{_closest(str(key), valid)}; valid: {', '.join(valid)}"
            )
    if not any(_is_search(v) for v in env_config.values()):
        try:
            check_env_config_values(env_config)
        except ValueError as err:
            raise ExperimentError(f"{where}: {err}") from None
    map_name = env_config.get("map_name")
    backend = env_config.get("backend", "embedded")
    if _is_search(backend):
        return
    if backend not in BACKENDS:
        raise ExperimentError(f"{where}: unknown env_config backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "sc2":
        from rllib_uas.envs.engine.scenarios import is_scenario
        from rllib_uas.envs.sc2 import SMACNotInstalledError, import_smac_env_class, import_smacv2_wrapper_class

        v2 = isinstance(map_name, str) and is_scenario(map_name)
        try:
            import_smacv2_wrapper_class() if v2 else import_smac_env_class()
        except SMACNotInstalledError as err:
            raise ExperimentError(f"{where}: {err}") from None
        return  # real SMAC knows its own maps
    known = available_maps() + available_scenarios()
    if map_name is not None and not _is_search(map_name) and map_name not in known:
        raise ExperimentError(
            f"{where}: unknown map {map_name!r}{_closest(str(map_name), known)}; "
            f"available maps: {', '.join(available_maps())}; SMACv2 scenarios: {', '.join(available_scenarios())}"
        )


def _preflight(algo_class: Type, clean: Mapping[str, Any], where: str) -> None:
    """Run the config's own `validate()` now, before Ray and Tune start, on the first value of every
    search: a bad value fails in a second with one line, not inside the trial after a minute."""
    from rllib_uas.algorithms.config_manifest import describe, valid_config_keys

    defaults = algo_class.get_default_config()
    _check_number_types(clean, describe(defaults, valid_config_keys(defaults))["defaults"], where)
    for variant in _search_variants(clean):  # every searched value once, the others at their first
        probe = algo_class.get_default_config()
        probe.update_from_dict(variant)
        try:
            probe.validate()
        except Exception as err:  # noqa: BLE001 - RLlib raises ValueError, TypeError, KeyError ...
            lines = str(err).strip().splitlines()
            raise ExperimentError(f"{where}: invalid config: {lines[0] if lines else type(err).__name__}") from None


def _search_variants(config: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The config with every search at its first value, then once per other value of each search."""
    first = _first_of_searches(config)
    variants = [first]
    for path in _searched(config):
        node: Any = config
        for part in path.split("."):
            node = node[part]
        for value in list(node["grid_search"])[1:]:
            variant = copy.deepcopy(first)
            target = variant
            *parents, leaf = path.split(".")
            for part in parents:
                target = target[part]
            target[leaf] = _first_of_searches(value)
            variants.append(variant)
    return variants


def _first_of_searches(value: Any) -> Any:
    """{grid_search: [a, ...]} -> a anywhere in the config (what the first trial will see)."""
    if _is_search(value):
        values = list(value["grid_search"])
        return _first_of_searches(values[0]) if values else None
    if isinstance(value, dict):
        return {k: _first_of_searches(v) for k, v in value.items()}
    return value


def _check_searches(config: Mapping[str, Any], where: str) -> None:
    """Every {grid_search: ...} holds a non-empty list (Tune fails on a scalar with a TypeError inside it,
    and an empty list would run no trial)."""
    for path in _searched(config):
        node: Any = config
        for part in path.split("."):
            node = node[part]
        values = node["grid_search"]
        if not isinstance(values, list) or not values:
            raise ExperimentError(
                f"{where}: config {path}: grid_search needs a non-empty list of values, e.g. [0.1, 0.5], got {values!r}"
            )


def _is_search(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"grid_search"}


def _searched(config: Mapping[str, Any], prefix: str = "") -> List[str]:
    out = []
    for k, v in config.items():
        if _is_search(v):
            out.append(prefix + k)
        elif isinstance(v, dict):
            out += _searched(v, prefix + k + ".")
    return out


def grid_points(config: Mapping[str, Any]) -> int:
    """How many configs a grid search expands to: the product of every search's number of values."""
    points = 1
    for path in _searched(config):
        node: Any = config
        for part in path.split("."):
            node = node[part]
        points *= max(len(node["grid_search"]), 1)
    return points


def _resolve_searches(value: Any) -> Any:
    """{grid_search: [...]} -> tune.grid_search([...]) anywhere in the config."""
    if _is_search(value):
        from ray import tune

        return tune.grid_search(list(value["grid_search"]))
    if isinstance(value, dict):
        return {k: _resolve_searches(v) for k, v in value.items()}
    return value


# result keys a stop criterion usually names: Tune's and RLlib's top level, the env runners' metrics
# (RLlib's and `rllib_uas.callbacks`'), also under evaluation/
TOP_LEVEL_RESULTS = (
    "training_iteration",
    "num_env_steps_sampled_lifetime",
    "num_episodes_lifetime",
    "num_env_steps_trained_lifetime",
    "time_total_s",
    "time_this_iter_s",
)
ENV_RUNNER_RESULTS = (
    "win_rate",
    "team_return_mean",
    "dead_allies_mean",
    "dead_enemies_mean",
    "battle_length_mean",
    "episode_return_mean",
    "episode_return_max",
    "episode_return_min",
    "episode_len_mean",
    "episode_len_max",
    "episode_len_min",
    "num_episodes",
    "num_env_steps_sampled",
    "num_env_steps_sampled_lifetime",
    "num_episodes_lifetime",
)
KNOWN_STOP_KEYS = (
    *TOP_LEVEL_RESULTS,
    *(f"env_runners/{k}" for k in ENV_RUNNER_RESULTS),
    *(f"evaluation/env_runners/{k}" for k in ENV_RUNNER_RESULTS),
)
# counts, times, lengths and rates are never below 0 (returns can be): a stop below 0 would stop at once
NEVER_NEGATIVE_STOP_KEYS = tuple(k for k in KNOWN_STOP_KEYS if "return" not in k)


def normalize_stop(stop: Mapping[str, Any], where: str) -> Tuple[Dict[str, Any], List[str]]:
    """Retired keys renamed (with a notice); a key one typo away from a known result key is an error
    (Tune would silently never stop on it); other unknown keys pass with a notice."""
    out, notices = {}, []
    for key, value in stop.items():
        if key in RETIRED_STOP_KEYS and RETIRED_STOP_KEYS[key] != key:
            notices.append(f"{where}: stop key '{key}' is retired; using '{RETIRED_STOP_KEYS[key]}'")
            key = RETIRED_STOP_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ExperimentError(f"{where}: stop {key} must be a number, got {value!r}")
        if value < 0 and key in NEVER_NEGATIVE_STOP_KEYS:
            raise ExperimentError(f"{where}: stop {key} must be >= 0 (it is never below 0: the run would stop at once)")
        if value > 1 and key.endswith("/win_rate"):
            raise ExperimentError(f"{where}: stop {key} must lie in [0, 1] (a win rate of {value} is never reached)")
        if key not in KNOWN_STOP_KEYS:
            close = difflib.get_close_matches(str(key), KNOWN_STOP_KEYS, n=1, cutoff=0.85)
            if close:
                raise ExperimentError(
                    f"{where}: unknown stop key '{key}'; did you mean '{close[0]}'? (a run "
                    "would never stop on a key its results do not have)"
                )
            notices.append(
                f"{where}: stop key '{key}' is not a result this package knows; the run stops on it "
                "only if the algorithm reports it"
            )
        out[key] = value
    return out, notices
