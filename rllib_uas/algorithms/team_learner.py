"""What both team algorithms' learners share: the update runs on the CPUs reserved for the learner.

RLlib reserves `num_cpus_per_learner` CPUs for each learner ("auto": 1), in the algorithm's own
process when `num_learners=0`. The modules act on one torch thread (small batches, and on a
busy machine extra threads spin against the env runners: `configure_torch_threads`); the update
is large matrix work, so here it gets as many intra-op threads as the learner has CPUs, and the
thread count goes back afterwards. Sampling and learning alternate in RLlib's synchronous PPO and
in U-QMIX, so the threads never compete with the algorithm's own env runners.
"""

from __future__ import annotations

from typing import Any

from rllib_uas.modules.agent_network import torch_threads

# what both learners' FloatingPointError says when the loss stops being finite (the CLI exits 2 on it)
NON_FINITE_LOSS = "loss is not finite"


def learner_threads(config: Any) -> int:
    """Torch intra-op threads for a learner's update: its reserved CPUs, 1 when on a GPU."""
    if (config.num_gpus_per_learner or 0) > 0:
        return 1
    cpus = config.num_cpus_per_learner
    return 1 if cpus == "auto" else max(1, int(cpus))


class TeamLearnerThreadsMixin:
    """Mix into a TorchLearner (before it in the bases)."""

    def update(self, *args, **kwargs):
        with torch_threads(learner_threads(self.config)):
            return super().update(*args, **kwargs)
