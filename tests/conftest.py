import os

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """One Ray instance for all tests that build algorithms (init + shutdown cost ~5 s)."""
    import ray

    from rllib_uas.local_ray import ray_for_run

    # a Ray of the tests' own, never a cluster already running on the machine (`ray start`)
    with ray_for_run(num_cpus=2, include_dashboard=False, log_to_driver=False):
        yield ray
