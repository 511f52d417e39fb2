"""Our own settings of the two algorithms: their defaults and their checks, in one place, free of RLlib
and torch.

- The defaults: `TEAM_SETTINGS` (both algorithms: UAS and CGI, the agent network's inputs, sizes and
  sharing), `MAPPO_SETTINGS` and `QMIX_SETTINGS`. The configs take their attributes from these
  (`algorithms/team_config.py` and each algorithm's `config.py`), and the modules their model-config
  defaults (`module_defaults`), so a default has one home.
- The checks: each config's `validate()` calls them on itself, the module setup calls
  `check_parameter_sharing`, and the CLI's pre-flight calls them on a file's values merged with the
  defaults of `algorithms/config_manifest.json` before RLlib is imported, so a bad value answers in
  about a second. `c` is anything with the settings as attributes: a config, or a `SimpleNamespace`.

RLlib's own settings (lr, gamma, batch sizes, ...) keep their home in the config classes. RLlib's
`validate()` leaves many of their ranges unchecked (a negative `num_epochs` fails inside the trial with
an UnboundLocalError, `rollout_fragment_length: 0` loops forever in RLlib's own check), so
`check_rllib_settings` holds the ones our algorithms use to their ranges.
"""

from __future__ import annotations

from typing import Any, Dict

from rllib_uas.value_types import is_finite_number as _number
from rllib_uas.value_types import is_integer as _integer

TEAM_SETTINGS: Dict[str, Any] = dict(
    uas=True,  # the unified action space (False: SMAC's native actions)
    cgi_coeff=0.1,  # lambda_I, the CGI loss weight (0: UAS without CGI)
    use_agent_id=True,  # agent inputs: the agent's one-hot id,
    use_last_action=True,  # its previous action,
    use_group_id=False,  # its action group's one-hot
    parameter_sharing="global",  # "global": one agent network; "group": one per action group
    fc_hidden=64,  # the agent network: fc -> GRU
    gru_hidden=64,
)
MAPPO_SETTINGS: Dict[str, Any] = dict(
    state_type="EP",  # critic input: "EP" env state, "AS" MAPPO's agent-specific (per-agent values)
    value_norm=True,  # PopArt-style running normalization of value targets
    critic_hidden=(64, 64),
    recurrent_critic=False,  # True: fc -> GRU critic as rMAPPO's (docs/algorithms.md)
    max_seq_len=20,  # training chunk length of the recurrent unroll
    # MAPPO's optimization details (marlbenchmark/on-policy, SMAC scripts)
    value_loss="huber",  # Huber(delta) on normalized values; "mse": 0.5 * err^2
    huber_delta=10.0,
    orthogonal_init=True,  # orthogonal weights, gain 0.01 on the policy output
    adam_eps=1e-5,
    separate_optimizers=True,  # actor and critic: their own Adam, each clipped to grad_clip
    # True: remote env runners collect the next batch while the learner updates (one update stale;
    # rllib_uas/algorithms/overlapped_sampling.py); needs num_env_runners >= 1
    overlap_sampling=False,
)
QMIX_SETTINGS: Dict[str, Any] = dict(
    # PyMARL2's tuned QMIX
    mixer="qmix",  # "vdn": a sum of the agents' Q-values
    mixing_embed_dim=32,
    hypernet_embed=64,
    double_q=True,
    td_lambda=0.6,
    optimizer="adam",  # or "rmsprop"
    batch_size_episodes=128,
    buffer_size_episodes=5000,
    buffer_size_mb=None,  # a cap in MB as well (oldest episodes go first); None: episodes only
    checkpoint_buffer=True,  # False: checkpoints hold weights and counters, not the replay buffer
    episodes_per_iteration=8,  # with updates_per_iteration: PyMARL2's one update per 8 finished episodes
    updates_per_iteration=1,
    learning_starts_episodes=128,
    target_update_interval_episodes=200,
    target_update_tau=None,  # soft target updates instead, if set
    epsilon_start=1.0,
    epsilon_finish=0.05,
    epsilon_anneal_steps=100_000,
)
ALGORITHM_SETTINGS = {"mappo": MAPPO_SETTINGS, "qmix": QMIX_SETTINGS}  # by Variant.algorithm

# the settings the modules read from their model config; "cgi" is derived (cgi_coeff > 0)
MODULE_SETTINGS = {
    "team": ("fc_hidden", "gru_hidden", "use_agent_id", "use_last_action", "use_group_id", "parameter_sharing"),
    "mappo": ("critic_hidden", "max_seq_len", "state_type", "value_norm", "recurrent_critic", "orthogonal_init"),
    "qmix": ("mixer", "mixing_embed_dim", "hypernet_embed", "epsilon_start", "epsilon_finish", "epsilon_anneal_steps"),
}
# U-QMIX unrolls whole episodes: the longest episode limit among the shipped maps (MMM2's 180, 27m_vs_30m's
# 180, corridor's 400) bounds the sequence length RLlib sizes its recurrent batches for
QMIX_MAX_SEQ_LEN = 400


def module_config(algorithm: str, settings: Any) -> Dict[str, Any]:
    """The model config a module of `algorithm` gets from `settings` (a config or a namespace)."""
    keys = MODULE_SETTINGS["team"] + MODULE_SETTINGS[algorithm]
    out = {k: getattr(settings, k) for k in keys}
    out["cgi"] = settings.cgi_coeff > 0
    if algorithm == "qmix":
        out["max_seq_len"] = QMIX_MAX_SEQ_LEN
    if "critic_hidden" in out:
        out["critic_hidden"] = tuple(out["critic_hidden"])
    return out


def module_defaults(algorithm: str) -> Dict[str, Any]:
    """A module's model-config defaults: what its algorithm's default config would give it, plus one
    torch intra-op thread (`torch_num_threads`; these nets are small and the machines shared)."""
    from types import SimpleNamespace

    defaults = SimpleNamespace(**TEAM_SETTINGS, **ALGORITHM_SETTINGS[algorithm])
    return {**module_config(algorithm, defaults), "torch_num_threads": 1}


def apply_defaults(config: Any, settings: Dict[str, Any]) -> None:
    """Set each setting's default on a config (mutable defaults copied)."""
    for name, value in settings.items():
        setattr(config, name, list(value) if isinstance(value, list) else value)


PARAMETER_SHARING = ("global", "group")
STATE_TYPES = ("EP", "AS")  # U-MAPPO's critic input: env state / MAPPO's agent-specific
VALUE_LOSSES = ("huber", "mse")
MIXERS = ("qmix", "vdn")
OPTIMIZERS = ("adam", "rmsprop")


def _positive_int(c: Any, name: str) -> None:
    v = getattr(c, name)
    if not _integer(v) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _count(c: Any, name: str) -> None:
    v = getattr(c, name)
    if not _integer(v) or v < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {v!r}")


def _at_least(c: Any, name: str, low: float, *, strict: bool = False, why: str = "") -> None:
    """A finite number >= low (> low with `strict`); `why` says what the bound or None means."""
    v = getattr(c, name)
    if not _number(v) or v < low or (strict and v == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}{why}, got {v!r}")


def _unit(c: Any, name: str) -> None:
    v = getattr(c, name)
    if not _number(v) or not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {v!r}")


def _flag(c: Any, name: str) -> None:
    v = getattr(c, name)
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be true or false, got {v!r}")


def check_parameter_sharing(value: Any) -> None:
    if value not in PARAMETER_SHARING:
        raise ValueError(
            f"parameter_sharing must be 'global' (one agent network for all agents) or 'group' "
            f"(one per action group), got {value!r}"
        )


def check_sampling_settings(c: Any) -> None:
    """What the team env runner needs to sample at all (the rest of its checks need RLlib's classes)."""
    envs = c.num_envs_per_env_runner
    if not _integer(envs) or envs < 1:
        raise ValueError(f"num_envs_per_env_runner must be a positive integer (battles per env runner), got {envs!r}")


def check_rllib_settings(c: Any) -> None:
    """The ranges of RLlib's settings that both algorithms use and RLlib's `validate()` does not check."""
    if not isinstance(c.lr, (list, tuple)):  # a schedule is RLlib's to check
        _at_least(c, "lr", 0.0)
    _unit(c, "gamma")
    if c.grad_clip is not None:
        _at_least(c, "grad_clip", 0.0, strict=True, why=" (or None: no clipping)")
    _count(c, "num_env_runners")
    _count(c, "num_learners")
    if c.seed is not None:
        _count(c, "seed")
    if c.evaluation_interval is not None:
        _count(c, "evaluation_interval")
    if c.num_cpus_per_learner != "auto":
        _at_least(c, "num_cpus_per_learner", 0.0, why=" (or 'auto')")
    if c.rollout_fragment_length != "auto":
        _positive_int(c, "rollout_fragment_length")


def check_team_settings(c: Any, baseline: str) -> None:
    """The settings both algorithms share: UAS and CGI, sharing, the agent network's inputs and sizes.
    `baseline` names the plain algorithm ("MAPPO", "QMIX") in the message for cgi without uas."""
    _flag(c, "uas")
    if not _number(c.cgi_coeff) or c.cgi_coeff < 0:
        raise ValueError(f"cgi_coeff (lambda_I) must be a finite number >= 0, got {c.cgi_coeff!r}")
    if c.cgi_coeff > 0 and not c.uas:
        raise ValueError(
            "cgi_coeff > 0 needs uas=True: the CGI loss predicts other groups' policies over the "
            f"unified action space. For plain {baseline} set cgi_coeff=0.0."
        )
    check_parameter_sharing(c.parameter_sharing)
    if getattr(c, "env", None) == "smac":  # the per-agent MultiAgentEnv: its agents, not the team, act
        raise ValueError(
            "env 'smac' is SMAC as a per-agent MultiAgentEnv, for RLlib's own algorithms; U-MAPPO and U-QMIX "
            f"(and {baseline}) train on the team view: use env 'smac_team' (the default)"
        )
    env_config = getattr(c, "env_config", None)
    map_name = env_config.get("map_name") if isinstance(env_config, dict) else None
    if c.parameter_sharing == "group" and getattr(c, "env", None) in ("smac_team", None) and isinstance(map_name, str):
        from rllib_uas.envs.engine.scenarios import is_scenario  # data only: no RLlib, torch or numba

        if is_scenario(map_name):
            raise ValueError(
                f"parameter_sharing='group' needs fixed action groups, but {map_name} draws each agent's "
                "group at every reset (SMACv2): use parameter_sharing='global'"
            )
    for name in ("use_agent_id", "use_last_action", "use_group_id"):
        _flag(c, name)
    for name in ("fc_hidden", "gru_hidden"):
        _positive_int(c, name)
    check_sampling_settings(c)
    check_rllib_settings(c)


def check_mappo_settings(c: Any) -> None:
    """U-MAPPO's own settings (RLlib's PPO settings are PPOConfig.validate's)."""
    check_team_settings(c, "MAPPO")
    if c.state_type not in STATE_TYPES:
        raise ValueError(f"state_type must be one of {STATE_TYPES}, got {c.state_type!r}")
    if c.value_loss not in VALUE_LOSSES:
        raise ValueError(f"value_loss must be 'huber' (MAPPO) or 'mse', got {c.value_loss!r}")
    for name in ("huber_delta", "adam_eps"):
        v = getattr(c, name)
        if not _number(v) or v <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    if c.use_kl_loss:
        raise ValueError("U-MAPPO uses MAPPO's loss without a KL term; set use_kl_loss=False")
    _positive_int(c, "max_seq_len")
    # the CLI's pre-flight namespace lacks it when not given: the manifest keeps plain defaults only
    hidden = getattr(c, "critic_hidden", MAPPO_SETTINGS["critic_hidden"])
    if not isinstance(hidden, (list, tuple)) or not hidden or not all(_integer(h) and h > 0 for h in hidden):
        raise ValueError(f"critic_hidden must be a list of positive layer sizes, e.g. [64, 64], got {hidden!r}")
    # PPO's settings that RLlib's PPOConfig.validate leaves unchecked
    for name in ("num_epochs", "train_batch_size_per_learner"):
        _positive_int(c, name)
    if c.minibatch_size is not None:
        _positive_int(c, "minibatch_size")
    _at_least(c, "clip_param", 0.0, strict=True)
    if c.vf_clip_param is not None:
        _at_least(c, "vf_clip_param", 0.0, why=" (0 or None: no value clipping)")
    _at_least(c, "vf_loss_coeff", 0.0)
    if not isinstance(c.entropy_coeff, (list, tuple)):  # RLlib checks >= 0 and schedules, not finiteness
        _at_least(c, "entropy_coeff", 0.0)
    _unit(c, "lambda_")
    check_minibatches(c.train_batch_size_per_learner, c.minibatch_size)
    _flag(c, "overlap_sampling")
    runners = getattr(c, "num_env_runners", 0)
    learners = getattr(c, "num_learners", 0)
    if c.overlap_sampling and isinstance(learners, int) and learners > 1:
        raise ValueError(
            f"overlap_sampling=True needs one learner (its decoupled objective takes the proximal policy "
            f"on the whole batch), got num_learners={learners}; set num_learners to 0 or 1"
        )
    evaluating = getattr(c, "in_evaluation", False)  # RLlib's evaluation copy has its own runner count
    if c.overlap_sampling and not evaluating and (not isinstance(runners, int) or runners < 1):
        raise ValueError(
            f"overlap_sampling=True samples on remote env runners while the learner updates, but "
            f"num_env_runners={runners!r}; set num_env_runners >= 1 (1 on a 2-core machine, with "
            "num_cpus_per_learner: 1) or overlap_sampling: false"
        )


def check_minibatches(batch: Any, minibatch: Any) -> None:
    """An epoch is batch / minibatch updates that cover every sequence once (MAPPO's num_mini_batch;
    `u_mappo/epochs.py`), so the minibatch size must divide the batch. Other types and bounds are
    left to RLlib's own checks, which name them."""
    if not (isinstance(batch, int) and isinstance(minibatch, int)) or not 0 < minibatch < batch:
        return
    if batch % minibatch:
        k = -(-batch // minibatch)
        while batch % k:  # the largest size up to the requested one that splits the batch evenly
            k += 1
        raise ValueError(
            f"minibatch_size {minibatch} does not divide train_batch_size_per_learner {batch}: each epoch is "
            f"batch / minibatch_size updates (MAPPO's num_mini_batch); set minibatch_size to {batch // k} "
            f"({k} per epoch) or {batch} (one per epoch, MAPPO's SMAC setting)"
        )


def check_qmix_settings(c: Any) -> None:
    """U-QMIX's own settings: the replay schedule, the buffer, the mixer, the TD target, epsilon."""
    check_team_settings(c, "QMIX")
    for name in (
        "batch_size_episodes",
        "buffer_size_episodes",
        "episodes_per_iteration",
        "updates_per_iteration",
        "target_update_interval_episodes",
        "rollout_fragment_length",
        "mixing_embed_dim",
        "hypernet_embed",
    ):
        _positive_int(c, name)
    for name in ("learning_starts_episodes", "epsilon_anneal_steps"):
        _count(c, name)
    mb = c.buffer_size_mb
    if mb is not None and (not _number(mb) or mb <= 0):
        raise ValueError(f"buffer_size_mb must be a number > 0 (MB) or None, got {mb!r}")
    _flag(c, "checkpoint_buffer")
    if c.mixer not in MIXERS:
        raise ValueError(f"mixer must be 'qmix' or 'vdn', got {c.mixer!r}")
    if c.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {c.optimizer!r}")
    if not _number(c.td_lambda) or not 0.0 <= c.td_lambda <= 1.0:
        raise ValueError(f"td_lambda must lie in [0, 1], got {c.td_lambda!r}")
    tau = c.target_update_tau
    if tau is not None and (not _number(tau) or not 0.0 < tau <= 1.0):
        raise ValueError(f"target_update_tau must be None (hard updates) or in (0, 1], got {tau!r}")
    if not (
        _number(c.epsilon_start) and _number(c.epsilon_finish) and 0.0 <= c.epsilon_finish <= c.epsilon_start <= 1.0
    ):
        raise ValueError("epsilon needs 0 <= epsilon_finish <= epsilon_start <= 1")
    if c.batch_size_episodes > c.buffer_size_episodes:
        raise ValueError(
            f"batch_size_episodes ({c.batch_size_episodes}) exceeds buffer_size_episodes ({c.buffer_size_episodes})"
        )


CHECKS = {"mappo": check_mappo_settings, "qmix": check_qmix_settings}  # by Variant.algorithm
