import os

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """One Ray instance for all tests that build algorithms (init + shutdown cost ~5 s)."""
    import ray

    if not ray.is_initialized():
        # a Ray of the tests' own: without address="local", ray.init joins any cluster already running
        # on the machine (`ray start`), and then refuses num_cpus
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
