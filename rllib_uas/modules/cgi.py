"""The Cross-Group Inverse (CGI) predictor and loss (docs/method.md).

From its GRU state h_i, each agent predicts a distribution over the UAS; masking it with another
group g's mask AM_g gives agent i's prediction of group g's policy. The loss is the squared L2
distance to the mean current (detached) policy of g's alive agents at the same step, averaged
over agents, other groups present at that step and valid time steps.
"""

from __future__ import annotations

import torch
from torch import nn

from rllib_uas.modules.agent_network import MASKED_LOGIT
from rllib_uas.modules.softmax import softmax


class CGIPredictor(nn.Module):
    """h_i [..., H] -> logits over the UAS [..., A]."""

    def __init__(self, hidden: int, n_actions: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_actions))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def cgi_loss(
    pred_logits: torch.Tensor,
    policy_probs: torch.Tensor,
    group: torch.Tensor,
    alive: torch.Tensor,
    group_masks: torch.Tensor,
    valid: torch.Tensor,
) -> torch.Tensor:
    """L_CGI = E[ sum_{g != g_i} || softmax_{AM_g}(pred_i) - mean_{j in g, alive} pi_j ||^2 ].

    pred_logits [..., n, A]; policy_probs [..., n, A] (detached by the caller); group [..., n] (each step's
    membership, any number type) or [n] (fixed); alive [..., n]; group_masks [G, A] bool; valid [...] (loss
    mask of time steps). A group absent at a step (no alive member) gives no term there.
    Returns a scalar; 0 when no (agent, other group) pair is valid (e.g. a single group).
    """
    n, A = pred_logits.shape[-2:]
    G = group_masks.shape[0]
    pred = pred_logits.reshape(-1, n, A)  # [M, n, A]
    M = pred.shape[0]
    probs = policy_probs.reshape(-1, n, A)
    live = alive.reshape(-1, n).to(pred.dtype)  # [M, n]
    ok = valid.reshape(-1).to(pred.dtype)  # [M]
    own = group.long().reshape(-1, n)  # [M or 1, n]
    member = nn.functional.one_hot(own, G).to(pred.dtype)  # [M or 1, n, G]
    weights = live[:, :, None] * member  # [M, n, G]
    count = weights.sum(1)  # [M, G]
    target = torch.einsum("mng,mna->mga", weights, probs) / count.clamp(min=1.0)[..., None]  # [M, G, A]
    # only each agent's G - 1 other groups are predicted (in index order): the own group's term, which
    # the loss leaves out, would be half the softmax and error work with two groups
    k = torch.arange(G - 1, device=pred.device)
    others = (k + (k >= own[..., None]).long()).expand(M, n, G - 1)  # [M, n, G-1]
    flat = others.reshape(M, n * (G - 1))
    masks = group_masks.to(torch.bool)[others]  # [M, n, G-1, A] AM_g of each other group
    pred_g = softmax(torch.where(masks, pred[:, :, None, :], MASKED_LOGIT))  # [M, n, G-1, A]
    target_g = target.gather(1, flat[..., None].expand(M, n * (G - 1), A)).reshape(M, n, G - 1, A)
    err = ((pred_g - target_g) ** 2).sum(-1)  # [M, n, G-1]
    present = (count > 0).to(pred.dtype).gather(1, flat).reshape(M, n, G - 1)  # the other group has a live member
    w = ok[:, None, None] * live[:, :, None] * present
    return (err * w).sum() / w.sum().clamp(min=1.0)
