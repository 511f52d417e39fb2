"""The team modules' acting passes: no autograd, and no train/eval switch where it changes nothing.

RLlib's env runners call `forward_exploration` / `forward_inference` at every env step. Two costs
come with them that acting does not need:
- RLlib's `TorchRLModule` calls `eval()` and then `train()` on the whole module tree around every
  call, so that dropout and batch norm act as at inference. The team modules have no layer whose
  output depends on the mode, so the switch changes nothing; a module that gains such a layer (a
  subclass adding dropout, say) gets RLlib's switch back.
- Nothing in RLlib's sampling loop turns autograd off, and our `_forward_*` methods compute with the
  trainable parameters, so every step recorded a graph that nobody differentiates.
Measured side by side on the quick start's sampling (docs/training_speed.md): about 9% less time.
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from torch import nn

# layers that compute differently in train() and eval() mode
_MODE_DEPENDENT = (
    nn.modules.dropout._DropoutNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def mode_matters(module: nn.Module) -> bool:
    """Whether any layer of `module` computes differently in train() and eval() mode."""
    return any(
        isinstance(m, _MODE_DEPENDENT) or (isinstance(m, nn.RNNBase) and m.dropout > 0) for m in module.modules()
    )


class LeanActing:
    """Mixin for a TorchRLModule (listed before it): acting passes without autograd, and without the
    train/eval switch when no layer of the module depends on the mode (checked at the first call)."""

    def forward_exploration(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        with torch.no_grad():
            if self._mode_matters():
                return super().forward_exploration(batch, **kwargs)
            return self._forward_exploration(batch, **kwargs)

    def forward_inference(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        with torch.no_grad():
            if self._mode_matters():
                return super().forward_inference(batch, **kwargs)
            return self._forward_inference(batch, **kwargs)

    def _mode_matters(self) -> bool:
        cached = self.__dict__.get("_mode_matters_cached")  # a plain attribute, not a torch submodule
        if cached is None:
            cached = self.__dict__["_mode_matters_cached"] = mode_matters(self)
        return cached


__all__ = ["LeanActing", "mode_matters"]
