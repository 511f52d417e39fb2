"""Unified Action Space algebra: layout, masks, conversions (property-tested)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rllib_uas.envs.smac_api import StarCraft2Env
from rllib_uas.uas import UnifiedActionSpace, smac_uas


def test_smac_layout_mmm():
    # MMM: 10 agents (9 attackers, medivac last), 10 enemies -> [6 self] + 10 attack + 10 heal
    uas = smac_uas(10, 10, [False] * 9 + [True])
    assert uas.size == 26 and uas.n_groups == 2
    assert uas.meanings[:6] == ["noop", "stop", "move_north", "move_south", "move_east", "move_west"]
    assert uas.meanings[6] == "attack:enemy:0" and uas.meanings[16] == "heal:ally:0"
    assert uas.native_to_uas[0, 6 + 3] == 9  # marine: native 9 = attack enemy 3
    assert uas.native_to_uas[9, 6 + 3] == 16 + 3  # medivac: native 9 = heal ally 3
    assert uas.agent_group.tolist() == [0] * 9 + [1]
    assert uas.group_masks[0, 6:16].all() and not uas.group_masks[0, 16:].any()
    assert uas.group_masks[1, 16:].all() and not uas.group_masks[1, 6:16].any()
    assert uas.group_masks[:, :6].all()  # shared self actions


def test_smac_uas_without_healers_equals_native():
    uas = smac_uas(3, 3, [False] * 3)
    assert uas.size == 9 and uas.n_groups == 1
    assert (uas.native_to_uas == np.arange(9)).all()


def test_medivac_slots_beyond_n_agents_are_impossible():
    uas = smac_uas(8, 15, [False] * 6 + [True] * 2)  # 6m2m_vs_15m
    assert uas.size == 6 + 15 + 8
    assert (uas.native_to_uas[7, 6 + 8 :] == -1).all()


def test_masks_from_a_real_env():
    env = StarCraft2Env(map_name="MMM", seed=0)
    env.reset()
    native = np.array(env.get_avail_actions())
    uas = smac_uas(10, 10, [False] * 9 + [True])
    m = uas.uas_mask(native)
    assert m.shape == (10, 26)
    assert (m[9, 16:25] == 1).all() and m[9, 25] == 0 and not m[9, 6:16].any()  # heals, none on itself
    assert (m[:9, :16] == native[:9]).all() and not m[:9, 16:].any()


def test_errors_name_the_problem():
    uas = smac_uas(10, 10, [False] * 9 + [True])
    with pytest.raises(ValueError, match=r"agent 9 \(group 1\) cannot take UAS action 7 \(attack:enemy:1\)"):
        uas.to_native(np.array([1] * 9 + [7]))
    with pytest.raises(ValueError, match="no semantics table"):
        UnifiedActionSpace({"a": ["noop"]}, ["a", "b"])
    with pytest.raises(ValueError, match="must be a self action"):
        UnifiedActionSpace({"a": ["noop", "attack:foe:1"]}, ["a"])


@st.composite
def teams(draw):
    """Random semantics: per type a self part and one entity verb (attack enemies or heal allies)."""
    n_types = draw(st.integers(1, 4))
    n_enemies, n_allies = draw(st.integers(0, 6)), draw(st.integers(1, 6))
    n_native = 6 + max(n_enemies, n_allies)
    semantics = {}
    for t in range(n_types):
        verb = draw(st.sampled_from(["attack:enemy", "heal:ally"]))
        count = n_enemies if verb == "attack:enemy" else n_allies
        table = ["noop", "stop", "move_north", "move_south", "move_east", "move_west"]
        table += [f"{verb}:{j}" if j < count else None for j in range(n_native - 6)]
        semantics[f"type{t}"] = table
    agent_types = draw(st.lists(st.sampled_from(sorted(semantics)), min_size=1, max_size=8))
    avail = draw(
        st.lists(
            st.lists(st.booleans(), min_size=n_native, max_size=n_native),
            min_size=len(agent_types),
            max_size=len(agent_types),
        )
    )
    return semantics, agent_types, np.array(avail, dtype=np.int8)


@settings(max_examples=200, deadline=None)
@given(teams())
def test_native_uas_native_is_identity_on_available_actions(team):
    semantics, agent_types, avail = team
    uas = UnifiedActionSpace(semantics, agent_types)
    for i, t in enumerate(agent_types):
        avail[i] &= np.array([m is not None for m in semantics[t]], dtype=np.int8)
    mask = uas.uas_mask(avail)
    for i in range(len(agent_types)):
        for k in np.flatnonzero(avail[i]):
            u = uas.native_to_uas[i, k]
            assert mask[i, u] == 1
            assert uas.uas_to_native[i, u] == k
        assert mask[i].sum() == avail[i].sum()  # nothing added, nothing lost


@settings(max_examples=200, deadline=None)
@given(teams())
def test_groups_never_share_an_entity_slot(team):
    semantics, agent_types, _ = team
    uas = UnifiedActionSpace(semantics, agent_types)
    entity = uas.kinds > 0
    for g in range(uas.n_groups):
        for h in range(g + 1, uas.n_groups):
            assert not (uas.group_masks[g] & uas.group_masks[h] & entity).any()
