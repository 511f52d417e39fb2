"""The team algorithms with their learner on a CUDA GPU (`num_gpus_per_learner: 1`).

One update there ends where the same update on the CPU ends (to float tolerance: the GPU sums in
another order), for U-MAPPO (learner connectors, GAE, value normalization, the chunked GRU
unroll) and U-QMIX (replay batch, target network, mixer, CGI head); every named variant trains
end to end with its learner on the GPU while acting stays on the CPU; and `rllib train file`
places a trial asking for a GPU. Skipped where torch sees no GPU (CI has none): run
`pytest tests/test_cuda.py` on a machine with one.
"""

import copy

import numpy as np
import pytest
import torch

from rllib_uas.variants import VARIANTS, variant

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

MAP = "3m1m_vs_4m"  # two action groups and a Medivac's heals: the CGI term and every mask are on
TINY = {
    "mappo": dict(train_batch_size_per_learner=200, minibatch_size=200, num_epochs=2),
    "qmix": dict(batch_size_episodes=8, learning_starts_episodes=4, episodes_per_iteration=4, buffer_size_episodes=50),
}


@pytest.fixture
def fp32_on_gpu():
    """Full float32 on the GPU for the CPU comparisons: torch lets cuDNN (the GRU) use TF32 by default,
    whose 10-bit mantissa would differ from the CPU by about 1e-3, an arithmetic choice, not a defect."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _device(module) -> str:
    return next(module.parameters()).device.type


def _cpu_state(module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _assert_close_states(gpu: dict, cpu: dict) -> None:
    assert set(gpu) == set(cpu)
    for k in cpu:
        torch.testing.assert_close(gpu[k], cpu[k], rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")


def test_u_mappo_update_on_the_gpu_ends_where_the_cpus_does(fp32_on_gpu):
    from rllib_uas.algorithms.u_mappo import UMAPPOConfig
    from rllib_uas.env_runner import TeamEnvRunner
    from rllib_uas.envs.registry import register_envs

    def config(gpus: int):
        return (
            UMAPPOConfig()
            .environment(env_config={"map_name": MAP})
            .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
            .learners(num_gpus_per_learner=gpus)
            .training(train_batch_size_per_learner=480, minibatch_size=240, num_epochs=2)
            .debugging(seed=3)
        )

    register_envs()
    runner = TeamEnvRunner(config=config(0))
    torch.manual_seed(0)
    # two fragments: episodes cut and continued, so the recurrent state comes from the lookback
    episodes = runner.sample(num_timesteps=240, explore=True) + runner.sample(num_timesteps=240, explore=True)
    spaces = runner.get_spaces()
    runner.stop()
    episodes = [e if e.is_numpy else e.to_numpy() for e in episodes]
    out = {}
    for gpus in (0, 1):
        learner = config(gpus).build_learner(spaces=spaces)
        module = learner.module["default_policy"]
        assert _device(module) == ("cuda" if gpus else "cpu")
        if gpus:  # the same starting weights as the CPU learner's
            module.load_state_dict({k: v.to("cuda") for k, v in out[0][2].items()})
        before = _cpu_state(module)
        np.random.seed(0)  # the chunk shuffle's draws
        results = learner.update(
            episodes=copy.deepcopy(episodes), num_epochs=2, minibatch_size=240, shuffle_batch_per_epoch=True
        )
        metrics = {k: float(results["default_policy"][k].peek()) for k in ("policy_loss", "vf_loss", "cgi_loss")}
        out[gpus] = (metrics, _cpu_state(module), before)
    (m_cpu, w_cpu, w0), (m_gpu, w_gpu, _) = out[0], out[1]
    assert any(not torch.equal(w0[k], w_cpu[k]) for k in w0)  # the update moved the weights
    assert m_cpu["cgi_loss"] > 0
    print("U-MAPPO losses, CPU then GPU:", m_cpu, m_gpu)
    for k in m_cpu:
        assert m_gpu[k] == pytest.approx(m_cpu[k], rel=1e-4, abs=1e-6), k
    _assert_close_states(w_gpu, w_cpu)


def test_u_qmix_update_on_the_gpu_ends_where_the_cpus_does(ray_session, fp32_on_gpu):
    from u_qmix_update import one_update

    before_cpu, after_cpu, losses_cpu = one_update()
    before_gpu, after_gpu, losses_gpu = one_update(num_gpus_per_learner=1)
    assert all(v.device.type == "cuda" for v in after_gpu.values())
    _assert_close_states({k: v.cpu() for k, v in before_gpu.items()}, before_cpu)  # same seeds, same start
    assert losses_cpu["cgi_loss"] > 0
    print("U-QMIX losses, CPU then GPU:", losses_cpu, losses_gpu)
    for k in losses_cpu:
        assert losses_gpu[k] == pytest.approx(losses_cpu[k], rel=1e-4, abs=1e-6), k
    _assert_close_states({k: v.cpu() for k, v in after_gpu.items()}, after_cpu)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_trains_with_its_learner_on_the_gpu(ray_session, name):
    v = variant(name)
    algo = (
        v.config()
        .environment(env_config={"map_name": MAP})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .learners(num_gpus_per_learner=1)
        .training(**TINY[v.algorithm])
        .evaluation(evaluation_interval=2)
        .debugging(seed=0)
    ).build_algo()
    try:
        assert _device(algo.learner_group._learner.module["default_policy"]) == "cuda"
        acting = algo.env_runner.module
        assert _device(acting) == "cpu"
        before = _cpu_state(acting)
        algo.train()
        result = algo.train()
        losses = ("policy_loss", "vf_loss") if v.algorithm == "mappo" else ("td_loss",)
        for k in losses + ("cgi_loss",):
            assert np.isfinite(float(result["learners"]["default_policy"][k])), k
        # the GPU learner's weights reached the CPU module that acts
        after = _cpu_state(acting)
        assert any(not torch.equal(before[k], after[k]) for k in before)
        assert "win_rate" in result["evaluation"]["env_runners"]
    finally:
        algo.stop()


def test_u_mappo_on_a_smacv2_scenario_trains_on_the_gpu(ray_session):
    """Groups drawn at every reset: the `group` column and the CGI targets built per step on the GPU."""
    algo = (
        variant("U-MAPPO")
        .config()
        .environment(env_config={"map_name": "terran_5_vs_5"})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .learners(num_gpus_per_learner=1)
        .training(**TINY["mappo"])
        .debugging(seed=0)
    ).build_algo()
    try:
        result = algo.train()
        learner = result["learners"]["default_policy"]
        assert all(np.isfinite(float(learner[k])) for k in ("policy_loss", "vf_loss", "cgi_loss"))
    finally:
        algo.stop()


def test_rllib_train_file_places_a_trial_that_asks_for_a_gpu(tmp_path):
    (tmp_path / "gpu.yaml").write_text(
        "gpu-run:\n"
        "  run: U-QMIX\n"
        "  stop: {training_iteration: 3}\n"
        "  config:\n"
        f"    env_config: {{map_name: {MAP}}}\n"
        "    num_env_runners: 0\n"
        "    num_gpus_per_learner: 1\n"
        "    num_envs_per_env_runner: 4\n"
        "    batch_size_episodes: 8\n"
        "    learning_starts_episodes: 4\n"
        "    episodes_per_iteration: 4\n"
    )
    from test_cli import rllib  # the command as a user runs it, in a subprocess

    done = rllib("train", "file", "gpu.yaml", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert [p for p in (tmp_path / "results" / "gpu-run").rglob("checkpoint_*") if p.is_dir()]
