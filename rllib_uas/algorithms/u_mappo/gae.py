"""GAE for the team module: team values [rows] (EP) or one value per agent [rows, n] (MAPPO's AS).

RLlib's `GeneralAdvantageEstimation` handles one value per row and standardizes the advantages over
every row, the artificial bootstrap rows included. This piece computes the same value targets
(RLlib's `compute_value_targets`, once per agent column with the shared team reward) and leaves the
advantages raw: the U-MAPPO loss standardizes them over the valid (step, alive agent) entries, as
MAPPO does (`docs/algorithms.md`).
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
from ray.rllib.connectors.common.numpy_to_tensor import NumpyToTensor
from ray.rllib.connectors.learner.general_advantage_estimation import GeneralAdvantageEstimation
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.annotations import override
from ray.rllib.utils.numpy import convert_to_numpy
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets
from ray.rllib.utils.postprocessing.zero_padding import split_and_zero_pad_n_episodes, unpad_data_if_necessary


def unpad(episode_lens: List[int], data: np.ndarray) -> np.ndarray:
    """Zero-padded chunks [B, T, ...] -> [rows, ...]: RLlib's `unpad_data_if_necessary`, which takes
    [B, T] only, extended to trailing axes (per-agent values [B, T, n])."""
    if data.ndim == 2:
        return unpad_data_if_necessary(episode_lens, data)
    T, rows, out = data.shape[1], 0, []
    for n in episode_lens:
        full, rest = divmod(n, T)
        out += [data[rows + i] for i in range(full)]
        rows += full
        if rest:
            out.append(data[rows, :rest])
            rows += 1
    return np.concatenate(out)


def team_value_targets(
    values: np.ndarray,
    rewards: np.ndarray,
    terminateds: np.ndarray,
    truncateds: np.ndarray,
    gamma: float,
    lambda_: float,
) -> np.ndarray:
    """GAE value targets for values [rows] or [rows, n] (each agent's column with the team reward)."""
    if values.ndim == 1:
        return compute_value_targets(values, rewards, terminateds, truncateds, gamma=gamma, lambda_=lambda_)
    return np.stack(
        [
            compute_value_targets(values[:, i], rewards, terminateds, truncateds, gamma=gamma, lambda_=lambda_)
            for i in range(values.shape[1])
        ],
        axis=1,
    )


class TeamGeneralAdvantageEstimation(GeneralAdvantageEstimation):
    @override(GeneralAdvantageEstimation)
    def __call__(self, *, rl_module, episodes: List[Any], batch: Dict[str, Any], **kwargs):
        sa_episodes = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        vf_preds = rl_module.foreach_module(
            func=lambda mid, module: (
                module.compute_values(batch[mid]) if mid in batch and isinstance(module, ValueFunctionAPI) else None
            ),
            return_dict=True,
        )
        device = None
        for mid, preds in vf_preds.items():
            if preds is None:
                continue
            module = rl_module[mid]
            device = preds.device
            lens = [len(e) for e in sa_episodes if e.module_id in (None, mid)]
            stateful = module.is_stateful()  # stateful: [B, T(, n)] padded chunks, else [rows(, n)]
            values = unpad(lens, convert_to_numpy(preds)) if stateful else convert_to_numpy(preds)
            rewards, terms, truncs = (
                unpad_data_if_necessary(lens, convert_to_numpy(batch[mid][key]))
                for key in (Columns.REWARDS, Columns.TERMINATEDS, Columns.TRUNCATEDS)
            )
            targets = team_value_targets(values, rewards, terms, truncs, self.gamma, self.lambda_).astype(np.float32)
            advantages = targets - values
            if stateful:
                max_len = module.model_config["max_seq_len"]
                advantages, targets = (
                    np.stack(split_and_zero_pad_n_episodes(a, episode_lens=lens, max_seq_len=max_len), axis=0)
                    for a in (advantages, targets)
                )
            batch[mid][Postprocessing.ADVANTAGES] = advantages
            batch[mid][Postprocessing.VALUE_TARGETS] = targets
        if device is None:
            return batch
        if self._numpy_to_tensor_connector is None:
            self._numpy_to_tensor_connector = NumpyToTensor(as_learner_connector=True, device=device)
        tensors = self._numpy_to_tensor_connector(
            rl_module=rl_module,
            episodes=episodes,
            batch={
                mid: {k: b[k] for k in (Postprocessing.ADVANTAGES, Postprocessing.VALUE_TARGETS)}
                for mid, b in batch.items()
                if vf_preds.get(mid) is not None
            },
        )
        for mid, b in tensors.items():
            batch[mid].update(b)
        return batch
