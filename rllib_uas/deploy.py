"""A trained team policy outside RLlib: load a checkpoint, act on live team observations, carry the GRU state.

    policy = TeamPolicy.from_checkpoint("results/quickstart-u-mappo")    # a run, trial or checkpoint dir
    env = TeamVectorEnv(policy.env_config, num_envs=1)
    obs, _ = env.reset(seed=0)
    state = policy.initial_state(env.num_envs)
    actions, state = policy.act(obs, state)          # greedy; [n_envs, n_agents] SMAC action numbers

Checkpoints are pickles: load only ones you made or trust.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import numpy as np
import torch

from rllib_uas.evaluation import greedy_actions, load_policy


class TeamPolicy:
    """The checkpoint's RLModule in eval mode, with the env_config it was trained on."""

    def __init__(self, module: Any, env_config: Dict[str, Any], algorithm: str):
        self.module, self.env_config, self.algorithm = module, dict(env_config), algorithm

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "TeamPolicy":
        return cls(*load_policy(path))

    def initial_state(self, n_envs: int = 1) -> torch.Tensor:
        """The recurrent state before an episode's first step, [n_envs, ...]."""
        h0 = torch.as_tensor(self.module.get_initial_state()["h"])
        return h0.expand(n_envs, *h0.shape).clone()

    def act(self, obs: Mapping[str, np.ndarray], state: torch.Tensor) -> Tuple[np.ndarray, torch.Tensor]:
        """Greedy actions [n_envs, n_agents] for team observations (batched as TeamVectorEnv gives them,
        or one env's unbatched as TeamEnv does) and the state to pass with the next step."""
        single = np.ndim(obs["obs"]) == 2  # [n_agents, D]: one env
        batch = {k: np.asarray(v)[None] if single else np.asarray(v) for k, v in obs.items()}
        actions, state = greedy_actions(self.module, batch, state)
        return (actions[0] if single else actions), state

    def reset_state(self, state: torch.Tensor, restarted: np.ndarray) -> torch.Tensor:
        """The state with the rows of `restarted` [n_envs] bool back at the start. TeamVectorEnv restarts
        an ended battle at the step after its end, so pass the previous step's `terminated | truncated`
        after each step."""
        done_t = torch.as_tensor(np.asarray(restarted, dtype=bool))
        if not done_t.any():
            return state
        fresh = self.initial_state(state.shape[0])
        shape = (-1,) + (1,) * (state.dim() - 1)
        return torch.where(done_t.view(shape), fresh, state)

    def save_to_path(self, path: str | Path) -> str:
        """The module alone (RLlib's format): `RLModule.from_checkpoint(path)` loads it back."""
        return self.module.save_to_path(str(Path(path).expanduser().resolve()))  # RLlib needs a full path
