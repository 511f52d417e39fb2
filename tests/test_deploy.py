"""Deploying a trained policy: the README's snippet runs as written against a real checkpoint, the
state is carried, actions respect the masks, and the saved module loads back."""

from pathlib import Path

import numpy as np
import pytest
import torch
from test_u_mappo import tiny as tiny_mappo
from test_u_qmix import tiny as tiny_qmix

from rllib_uas.deploy import TeamPolicy
from rllib_uas.envs.team import TeamEnv, TeamVectorEnv

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", params=["U-MAPPO", "U-QMIX"])
def checkpoint(request, ray_session, tmp_path_factory):
    algo = (tiny_mappo(map_name="3m1m_vs_4m") if request.param == "U-MAPPO" else tiny_qmix()).build_algo()
    try:
        algo.train()
        path = algo.save_to_path(str(tmp_path_factory.mktemp("ckpt")))
    finally:
        algo.stop()
    return path


def test_the_readme_deploy_snippet_runs_as_written(checkpoint, tmp_path, monkeypatch):
    section = (ROOT / "README.md").read_text().split("## Deploying a trained policy", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    line = next(ln for ln in code.splitlines() if ln.startswith("checkpoint = "))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code.replace(line, f"checkpoint = {str(checkpoint)!r}"), "README deploy snippet", "exec"), scope)
    assert (tmp_path / "deployed_module").exists()
    from ray.rllib.core.rl_module.rl_module import RLModule

    RLModule.from_checkpoint(str(tmp_path / "deployed_module"))


def test_actions_are_available_and_the_state_is_carried(checkpoint):
    policy = TeamPolicy.from_checkpoint(checkpoint)
    env = TeamVectorEnv(policy.env_config, num_envs=2)
    obs, _ = env.reset(seed=1)
    state = policy.initial_state(2)
    start = state.clone()
    for _ in range(5):
        mask = obs["action_mask"]
        actions, state = policy.act(obs, state)
        assert (np.take_along_axis(mask, actions[..., None], -1) == 1).all()
        obs, *_ = env.step(actions)
    assert not torch.equal(state, start)  # the GRU state moved
    assert torch.equal(policy.reset_state(state, np.array([True, False]))[0], start[0])
    assert torch.equal(policy.reset_state(state, np.array([True, False]))[1], state[1])
    one = TeamEnv(policy.env_config)  # one env's unbatched observation
    o, _ = one.reset(seed=0)
    a, s = policy.act(o, policy.initial_state(1))
    assert a.shape == (one.view.n_agents,) and s.shape[0] == 1
