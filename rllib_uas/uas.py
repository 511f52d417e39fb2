"""The Unified Action Space (UAS): one action space, aligned by meaning, for heterogeneous agents.

Each agent type declares what its native actions *mean* (a semantics table). The UAS is the union
of those meanings, ordered self actions, then enemy actions, then ally actions (docs/method.md):
for SMAC `[no-op, stop, N, S, E, W] + [attack enemy 0..m-1] + [heal ally 0..n-1]`. Agents whose
types share the same meanings form a group; a group's mask AM_g marks the UAS entries it can use.

A meaning is a string: a self action ("noop", "move_north", ...) or "<verb>:<kind>:<index>" for an
action on another entity, kind "enemy" or "ally" (e.g. "attack:enemy:3", "heal:ally:0"). `None`
marks a native action that can never be taken (e.g. SMAC's Medivac slots beyond n_agents).
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

SMAC_SELF_ACTIONS = ("noop", "stop", "move_north", "move_south", "move_east", "move_west")
_KIND_ORDER = {"self": 0, "enemy": 1, "ally": 2}


def meaning_kind(meaning: str) -> str:
    """'self', 'enemy' or 'ally'."""
    parts = meaning.split(":")
    if len(parts) == 1:
        return "self"
    if len(parts) != 3 or parts[1] not in ("enemy", "ally") or not parts[2].isdigit():
        raise ValueError(f"action meaning {meaning!r} must be a self action or '<verb>:enemy|ally:<index>'")
    return parts[1]


def _sort_key(meaning: str) -> Tuple[int, str, int]:
    kind = meaning_kind(meaning)
    if kind == "self":
        return (0, "", 0)  # self actions keep their first-seen order (stable sort)
    verb, _, idx = meaning.split(":")
    return (_KIND_ORDER[kind], verb, int(idx))


class UnifiedActionSpace:
    """UAS over a team whose agent i has type `agent_types[i]` with native semantics `semantics[type]`.

    Arrays (n = agents, N = native actions, A = UAS size, G = groups):
      native_to_uas [n, N]  UAS index of each native action, -1 if the action is impossible
      uas_to_native [n, A]  native index of each UAS entry for that agent, -1 if not its action
      agent_group   [n]     group id;  group_masks [G, A] bool (AM_g)
    """

    def __init__(
        self,
        semantics: Mapping[str, Sequence[Optional[str]]],
        agent_types: Sequence[str],
        groups: Optional[Mapping[str, int]] = None,
    ):
        unknown = sorted(set(agent_types) - set(semantics))
        if unknown:
            raise ValueError(f"agent types {unknown} have no semantics table; known: {sorted(semantics)}")
        n_native = {len(v) for v in semantics.values()}
        if len(n_native) != 1:
            raise ValueError(f"all agent types need the same native action count, got {sorted(n_native)}")
        self.n_native = n_native.pop()
        for t, table in semantics.items():
            seen = [m for m in table if m is not None]
            if len(seen) != len(set(seen)):
                raise ValueError(f"agent type {t!r} maps two native actions to the same meaning")
        first_seen: List[str] = []
        for t in dict.fromkeys(agent_types):
            first_seen += [m for m in semantics[t] if m is not None and m not in first_seen]
        self.meanings: List[str] = sorted(first_seen, key=_sort_key)
        self.size = len(self.meanings)
        index = {m: i for i, m in enumerate(self.meanings)}
        self.agent_types = list(agent_types)
        if groups is None:  # same meanings -> same group, numbered in order of first appearance
            sig: Dict[Tuple, int] = {}
            groups = {t: sig.setdefault(tuple(semantics[t]), len(sig)) for t in dict.fromkeys(agent_types)}
        missing = sorted(set(agent_types) - set(groups))
        if missing:
            raise ValueError(f"agent types {missing} have no group")
        self.agent_group = np.array([groups[t] for t in agent_types], dtype=np.int64)
        self.n_groups = int(self.agent_group.max()) + 1
        n = len(agent_types)
        self.native_to_uas = np.full((n, self.n_native), -1, dtype=np.int64)
        self.uas_to_native = np.full((n, self.size), -1, dtype=np.int64)
        for i, t in enumerate(agent_types):
            for k, m in enumerate(semantics[t]):
                if m is not None:
                    self.native_to_uas[i, k] = index[m]
                    self.uas_to_native[i, index[m]] = k
        self.group_masks = np.zeros((self.n_groups, self.size), dtype=bool)
        for i in range(n):
            self.group_masks[self.agent_group[i]] |= self.uas_to_native[i] >= 0
        self.kinds = np.array([_KIND_ORDER[meaning_kind(m)] for m in self.meanings])

    @property
    def n_agents(self) -> int:
        return len(self.agent_types)

    def uas_mask(self, native_avail: np.ndarray) -> np.ndarray:
        """Native availability [..., n, N] -> UAS availability [..., n, A]."""
        native_avail = np.asarray(native_avail)
        if native_avail.shape[-2:] != (self.n_agents, self.n_native):
            raise ValueError(
                f"native availability must end in (n_agents={self.n_agents}, "
                f"n_native={self.n_native}), got {native_avail.shape}"
            )
        valid = self.uas_to_native >= 0
        gathered = np.take_along_axis(
            native_avail,
            np.broadcast_to(np.where(valid, self.uas_to_native, 0), native_avail.shape[:-1] + (self.size,)),
            -1,
        )
        return np.where(valid, gathered, 0).astype(native_avail.dtype)

    def to_native(self, uas_actions: np.ndarray) -> np.ndarray:
        """UAS indices [..., n] -> native indices [..., n]; raises on an entry outside the agent's group."""
        a = np.asarray(uas_actions, dtype=np.int64)
        if a.shape[-1:] != (self.n_agents,):
            raise ValueError(f"UAS actions must end in n_agents={self.n_agents}, got shape {a.shape}")
        if ((a < 0) | (a >= self.size)).any():
            raise ValueError(f"UAS actions must lie in [0, {self.size}), got {a[(a < 0) | (a >= self.size)][:5]}")
        agents = np.broadcast_to(np.arange(self.n_agents), a.shape)
        native = self.uas_to_native[agents, a]
        if (native < 0).any():
            bad = tuple(np.argwhere(native < 0)[0])
            i = int(agents[bad])
            raise ValueError(
                f"agent {i} (group {self.agent_group[i]}) cannot take UAS action {int(a[bad])} "
                f"({self.meanings[int(a[bad])]}); its actions: "
                f"{np.flatnonzero(self.uas_to_native[i] >= 0).tolist()}"
            )
        return native

    def to_uas(self, native_actions: np.ndarray) -> np.ndarray:
        """Native indices [..., n] -> UAS indices [..., n] (-1 for impossible native actions)."""
        a = np.asarray(native_actions, dtype=np.int64)
        agents = np.broadcast_to(np.arange(self.n_agents), a.shape)
        return self.native_to_uas[agents, a]

    def describe(self) -> str:
        groups = ", ".join(
            f"group {g}: {sorted({t for t, gg in zip(self.agent_types, self.agent_group) if gg == g})}"
            for g in range(self.n_groups)
        )
        return f"UAS of size {self.size} ({groups})"


def smac_semantics(
    n_agents: int, n_enemies: int, healer_agents: Sequence[bool], n_native: Optional[int] = None
) -> Tuple[Dict, List[str]]:
    """SMAC's native semantics: attackers use 6+j on enemy j; Medivacs (MMM rules) heal ally j there.
    `n_native` (default 6 + n_enemies) is the native action count (SMACv2: 6 + n_agents when larger)."""
    slots = (n_native if n_native is not None else len(SMAC_SELF_ACTIONS) + n_enemies) - len(SMAC_SELF_ACTIONS)
    attack = list(SMAC_SELF_ACTIONS) + [f"attack:enemy:{j}" if j < n_enemies else None for j in range(slots)]
    heal = list(SMAC_SELF_ACTIONS) + [f"heal:ally:{j}" if j < n_agents else None for j in range(slots)]
    types = ["healer" if h else "attacker" for h in healer_agents]
    semantics = {"attacker": attack}
    if any(healer_agents):
        semantics["healer"] = heal
    return semantics, types


def smac_uas(
    n_agents: int, n_enemies: int, healer_agents: Sequence[bool], n_native: Optional[int] = None
) -> UnifiedActionSpace:
    semantics, types = smac_semantics(n_agents, n_enemies, healer_agents, n_native)
    return UnifiedActionSpace(semantics, types)


def smac_map_action_groups(map_name: str) -> int:
    """How many action groups the UAS forms on a SMAC map (2 with Medivacs under MMM rules, else 1): with
    one group the CGI loss has no other group to predict."""
    from rllib_uas.envs.engine.actions import healing_agents
    from rllib_uas.envs.engine.maps import get_map
    from rllib_uas.envs.engine.scenarios import get_scenario, is_scenario
    from rllib_uas.envs.engine.units import get_unit_type

    if is_scenario(map_name):  # teams drawn per episode: the union over the types that can appear
        s = get_scenario(map_name)
        return smac_uas(s.n_units, s.n_enemies, [False, True] if s.can_heal else [False]).n_groups
    spec = get_map(map_name)
    healers = healing_agents(
        [get_unit_type(u).is_healer for u, count, _ in spec.allies for _ in range(count)], spec.map_type.medivac_rules
    )
    return smac_uas(spec.n_agents, spec.n_enemies, healers).n_groups
