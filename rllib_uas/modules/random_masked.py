"""A module that acts uniformly at random among the available actions (baseline and benchmarks)."""

from __future__ import annotations

from typing import Any, Dict

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override


class MaskedRandomModule(TorchRLModule):
    """Reads `obs["action_mask"]` ([B, A] per agent or [B, n, A] for a team) and samples from it."""

    @override(TorchRLModule)
    def setup(self) -> None:
        self._dummy = torch.nn.Parameter(torch.zeros(1))  # learners need at least one parameter

    @override(TorchRLModule)
    def _forward(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        mask = batch[Columns.OBS]["action_mask"]
        weights = mask.reshape(-1, mask.shape[-1]).float()
        actions = torch.multinomial(weights, 1).reshape(mask.shape[:-1])
        return {Columns.ACTIONS: actions}

    @override(TorchRLModule)
    def _forward_train(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        return {}
