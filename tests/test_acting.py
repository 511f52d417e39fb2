"""The team modules' acting passes (modules/acting.py): the same outputs as RLlib's own
forward_exploration / forward_inference, without autograd and without the train/eval switch,
which comes back for a module that has a mode-dependent layer."""

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from rllib_uas.envs.team import TeamEnv
from rllib_uas.modules.acting import mode_matters
from rllib_uas.modules.team_ppo import TeamPPOModule
from rllib_uas.modules.team_q import TeamQModule


def acting_batch(cls):
    env = TeamEnv({"map_name": "3m1m_vs_4m"})
    torch.manual_seed(0)
    module = cls(
        observation_space=env.observation_space, action_space=env.action_space, model_config={"max_seq_len": 20}
    )
    obs, _ = env.reset(seed=0)
    batch_obs = {k: torch.as_tensor(np.asarray(v))[None, None] for k, v in obs.items()}  # [1, 1, ...], as acting
    state = {k: torch.as_tensor(v)[None] for k, v in module.get_initial_state().items()}
    return module, {Columns.OBS: batch_obs, Columns.STATE_IN: state}


def count_mode_switches(module, monkeypatch):
    calls = []
    real = nn.Module.train

    def train(self, mode=True):
        calls.append(mode)
        return real(self, mode)

    monkeypatch.setattr(nn.Module, "train", train)
    return calls


def tensors(out):
    for v in out.values():
        yield from tensors(v) if isinstance(v, dict) else [v]


def same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            same(a[k], b[k])
    else:
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cls", [TeamPPOModule, TeamQModule])
@pytest.mark.parametrize("which", ["forward_exploration", "forward_inference"])
def test_acting_is_rllibs_result_without_autograd_or_mode_switch(cls, which, monkeypatch):
    module, batch = acting_batch(cls)
    module.train()
    assert not mode_matters(module)
    torch.manual_seed(1)
    ours = getattr(module, which)(batch)
    torch.manual_seed(1)
    rllibs = getattr(TorchRLModule, which)(module, batch)  # RLlib's: eval(), the pass, train()
    same(ours, rllibs)
    assert not any(t.requires_grad for t in tensors(ours))  # the recurrent state included
    calls = count_mode_switches(module, monkeypatch)
    getattr(module, which)(batch)
    assert calls == []  # no walk of the module tree
    assert module.training  # left as it was


def test_a_mode_dependent_layer_brings_rllibs_switch_back(monkeypatch):
    module, batch = acting_batch(TeamPPOModule)
    module.policy_head = nn.Sequential(nn.Dropout(0.5), module.policy_head)
    assert mode_matters(module)
    module.train()
    calls = count_mode_switches(module, monkeypatch)
    a = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    b = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    assert calls and module.training
    torch.testing.assert_close(a, b)  # dropout off while acting, as RLlib does it


def test_mode_matters_sees_dropout_batch_norm_and_recurrent_dropout():
    assert not mode_matters(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.GRU(2, 2)))
    assert mode_matters(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
    assert mode_matters(nn.Sequential(nn.BatchNorm1d(2)))
    assert mode_matters(nn.GRU(2, 2, num_layers=2, dropout=0.2))
