"""The recurrent agent network: every agent's row goes through the same fc -> GRU (global parameter
sharing), or through its action group's own copy (`parameter_sharing="group"`, as Mava and BenchMARL
share per agent type)."""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from rllib_uas.modules.valid_rows import scatter_rows, valid_steps
from rllib_uas.settings import check_parameter_sharing
from rllib_uas.team_obs import check_team_space, space_groups

MASKED_LOGIT = -1e9  # exp() underflows to exactly 0 in float32, and 0 * MASKED_LOGIT is not NaN


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unavailable actions get MASKED_LOGIT: probability 0, never sampled, never the argmax."""
    return torch.where(mask > 0, logits, torch.full_like(logits, MASKED_LOGIT))


INPUT_COLUMNS = ("obs", "last_action", "group")  # the observation columns agent_inputs reads


def agent_inputs(
    obs: Dict[str, torch.Tensor], use_last_action: bool, use_agent_id: bool, n_groups: int, use_group_id: bool
) -> torch.Tensor:
    """[..., n, In]: own observation (+ last action one-hot) (+ agent id) (+ group one-hot)."""
    x = obs["obs"]
    parts = [x]
    if use_last_action:
        parts.append(obs["last_action"])
    if use_agent_id:
        parts.append(agent_ids(x))
    if use_group_id and n_groups > 1:
        parts.append(nn.functional.one_hot(obs["group"].long(), n_groups).to(x.dtype))
    return torch.cat(parts, -1)


def agent_ids(x: torch.Tensor) -> torch.Tensor:
    """Each agent's one-hot id [..., n, n] for per-agent rows x [..., n, F]."""
    n = x.shape[-2]
    return torch.eye(n, device=x.device, dtype=x.dtype).expand(*x.shape[:-2], n, n)


def agent_input_size(
    obs_dim: int,
    n_agents: int,
    n_actions: int,
    n_groups: int,
    use_last_action: bool,
    use_agent_id: bool,
    use_group_id: bool,
) -> int:
    return (
        obs_dim
        + n_actions * use_last_action
        + n_agents * use_agent_id
        + (n_groups if use_group_id and n_groups > 1 else 0)
    )


def setup_team_agent(module, defaults: Dict) -> Dict:
    """Shared setup of the team modules: config, threads, sizes and groups from the team observation
    space, the agent-input builder `module.agent_inputs(obs)` and the shared agent network
    `module.agent_net`. Returns the merged model config."""
    check_team_space(module.observation_space)
    cfg = {**defaults, **(module.model_config or {})}
    module.cfg = cfg
    configure_torch_threads(cfg["torch_num_threads"])
    spaces = module.observation_space.spaces
    module.n_agents, obs_dim = spaces["obs"].shape
    module.n_actions = spaces["action_mask"].shape[-1]
    agent_group, group_masks = space_groups(module.observation_space)
    module.n_groups = group_masks.shape[0]
    # groups come from the space, so they are not part of the saved state; with membership drawn at
    # every reset (agent_group None) each step's `group` observation says who is in which group
    module.fixed_groups = agent_group is not None
    module.register_buffer("group_masks", torch.as_tensor(group_masks), persistent=False)
    if agent_group is not None:
        module.register_buffer("agent_group", torch.as_tensor(agent_group), persistent=False)
    elif cfg["parameter_sharing"] == "group":
        raise ValueError(
            "parameter_sharing='group' needs fixed action groups, but this env draws each agent's group at "
            "every reset (SMACv2): use parameter_sharing='global'"
        )
    in_dim = agent_input_size(
        obs_dim,
        module.n_agents,
        module.n_actions,
        module.n_groups,
        cfg["use_last_action"],
        cfg["use_agent_id"],
        cfg["use_group_id"],
    )
    check_parameter_sharing(cfg["parameter_sharing"])

    def make_net():
        return RecurrentAgentNetwork(in_dim, cfg["fc_hidden"], cfg["gru_hidden"])

    # the agent inputs [..., n, In] as this config builds them (acting, training and the buckets read them)
    module.agent_inputs = functools.partial(
        agent_inputs,
        use_last_action=cfg["use_last_action"],
        use_agent_id=cfg["use_agent_id"],
        n_groups=module.n_groups,
        use_group_id=cfg["use_group_id"],
    )
    grouped = cfg["parameter_sharing"] == "group"
    module.agent_group_np = agent_group
    module.agent_net = GroupedAgentNetwork(make_net, agent_group) if grouped else make_net()
    return cfg


def agent_head(module, make: Callable[[], nn.Module]) -> nn.Module:
    """A per-agent head on the GRU state ([..., n, H] -> [..., n, out]) shared as the module's agent
    network is: one for all agents, or one per action group. Same inputs and sizes either way."""
    if not isinstance(module.agent_net, GroupedAgentNetwork):
        return make()
    return GroupedHead(make, module.agent_group_np)


def output_layers(head: nn.Module) -> List[nn.Module]:
    """A head's copies: [head] when shared globally, one per group otherwise."""
    return list(head.copies) if isinstance(head, GroupedHead) else [head]


class _PerGroup(nn.Module):
    """One copy of a per-agent module per group; copy g sees only the rows of group g's agents."""

    def __init__(self, make: Callable[[], nn.Module], agent_group: np.ndarray):
        super().__init__()
        agent_group = np.asarray(agent_group, np.int64)
        members = [np.flatnonzero(agent_group == g) for g in np.unique(agent_group)]
        self.copies = nn.ModuleList(make() for _ in members)
        for k, idx in enumerate(members):
            self.register_buffer(f"_members{k}", torch.as_tensor(idx), persistent=False)
        # rows come back grouped; this permutation puts them in agent order again
        self.register_buffer("_restore", torch.as_tensor(np.argsort(np.concatenate(members))), persistent=False)

    def _member(self, k: int) -> torch.Tensor:
        return getattr(self, f"_members{k}")


class GroupedHead(_PerGroup):
    """h [..., n, H] -> [..., n, A], each group through its own head."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        parts = [head(h.index_select(-2, self._member(k))) for k, head in enumerate(self.copies)]
        return torch.cat(parts, -2).index_select(-2, self._restore)


class GroupedAgentNetwork(_PerGroup):
    """RecurrentAgentNetwork's contract, each group's agents through the group's own fc -> GRU."""

    def __init__(self, make: Callable[[], nn.Module], agent_group: np.ndarray):
        super().__init__(make, agent_group)
        self.hidden = self.copies[0].hidden

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor, lengths: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, n, In], h0 [B, n, H] -> (h_seq [B, T, n, H], h_last [B, n, H])."""
        seqs, lasts = [], []
        for k, net in enumerate(self.copies):
            idx = self._member(k)
            h_seq, h_last = net(x.index_select(2, idx), h0.index_select(1, idx), lengths)
            seqs.append(h_seq)
            lasts.append(h_last)
        return (torch.cat(seqs, 2).index_select(2, self._restore), torch.cat(lasts, 1).index_select(1, self._restore))

    def valid_states(self, xs: List[torch.Tensor], h0: torch.Tensor, buckets: "Buckets") -> torch.Tensor:
        """RecurrentAgentNetwork.valid_states, each group through its own network: [M, n, H]."""
        parts = []
        for k, net in enumerate(self.copies):
            idx = self._member(k)
            parts.append(net.valid_states([x.index_select(2, idx) for x in xs], h0.index_select(1, idx), buckets))
        return torch.cat(parts, 1).index_select(1, self._restore)


class RecurrentAgentNetwork(nn.Module):
    """fc -> ReLU -> GRU over time, the same weights for every agent (global parameter sharing).

    Training batches are zero-padded: PPO's chunks end early where an episode ends, and U-QMIX's
    episodes are padded to the longest in the batch (about 60% padding on MMM2 early in training).
    Given each sequence's valid length, the unroll runs sequences in a few buckets of similar length,
    each only as long as its longest (`length_buckets`): the same values at every valid step, zeros
    after a sequence's end (where every loss masks), and a fraction of the work."""

    def __init__(self, in_dim: int, fc_hidden: int, gru_hidden: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(in_dim, fc_hidden), nn.ReLU())
        self.gru = nn.GRU(fc_hidden, gru_hidden, batch_first=True)
        self.hidden = gru_hidden

    def _unroll(self, x: torch.Tensor, h0: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        B, T, n, _ = x.shape
        z = self.fc(x).permute(0, 2, 1, 3).reshape(B * n, T, -1)  # [B*n, T, F]
        if z.is_cuda and len({w.untyped_storage().data_ptr() for w in self.gru.parameters()}) > 1:
            # cuDNN reads the GRU's weights from one flat buffer. A GRU moved to the GPU (`.to()`
            # does not re-flatten) or deep-copied (the target network) has them apart, and cuDNN
            # then warns and copies them at every call. Flattened once, they stay in one buffer:
            # the optimizer, weight syncs and target updates all write in place
            self.gru.flatten_parameters()
        out, h = self.gru(z, h0.reshape(1, B * n, self.hidden))
        h_seq = out.reshape(B, n, T, self.hidden).permute(0, 2, 1, 3)  # [B, T, n, H]
        return h_seq, h.reshape(B, n, self.hidden)

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor, lengths: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, n, In], h0 [B, n, H] -> (h_seq [B, T, n, H], h_last [B, n, H]).

        lengths [B] (valid steps per sequence, the rest zero padding): h_seq is zero after each
        sequence's end and h_last is the state after its last valid step."""
        B, T = x.shape[:2]
        if lengths is None:
            return self._unroll(x, h0)
        buckets = Buckets(lengths, T, x.shape[2])
        # one contract whichever way it runs: zeros after each end, the state at the last valid step
        if buckets.whole:  # little padding: one unroll, masked
            h_seq = self._unroll(x, h0)[0] * buckets.rows[..., None, None]
        else:
            h_seq = scatter_rows(self.valid_states(buckets.take(x), h0, buckets), buckets.rows)  # [B, T, n, H]
        last = (lengths.to(x.device).long() - 1).clamp(min=0)
        h_last = h_seq[torch.arange(B, device=x.device), last]  # [B, n, H]
        return h_seq, h_last

    def valid_states(self, xs: List[torch.Tensor], h0: torch.Tensor, buckets: "Buckets") -> torch.Tensor:
        """The states of forward() at the valid steps only: [M, n, H], in the row-major (b, t) order of
        the valid steps (what h_seq[valid] lists). xs: the inputs of each of `buckets`' groups,
        `buckets.take(x)` of x [B, T, n, In], or built per group (U-QMIX builds them from the
        observation columns, never the padded [B, T, n, In] grid).

        The padded [B, T, n, H] grid is never built: on U-QMIX's batches (three quarters padding on
        MMM2) filling, masking and indexing it cost more than the heads that then read it."""
        parts = [self._unroll(x, h0[idx])[0][valid] for x, (idx, _, valid) in zip(xs, buckets.groups)]
        if buckets.whole:  # one group of every row in order: already row-major
            return parts[0]
        return torch.cat(parts)[buckets.order]  # [M, n, H]


class Buckets:
    """How a padded batch of sequences [B, T] with valid `lengths` [B] is unrolled: groups of rows of
    neighbouring lengths, each for its longest (`length_buckets`; one group of every row for T steps
    when bucketing would not pay), and the permutation that lists the groups' valid steps in row-major
    (b, t) order. Computed once per batch, shared by the online and the target network."""

    def __init__(self, lengths: torch.Tensor, T: int, width: int):
        lengths = lengths.long()
        B, device = lengths.shape[0], lengths.device
        plan = length_buckets(lengths.detach().cpu().numpy(), T, width)
        self.whole = plan is None  # one group: every row, all T steps (take() then copies nothing)
        self.groups: List[Tuple[torch.Tensor, int, torch.Tensor]] = []  # (rows [b], steps, valid [b, steps])
        self.rows = valid_steps(lengths, T)  # [B, T]: the valid steps
        for rows, steps in plan or [(np.arange(B), T)]:
            idx = torch.as_tensor(rows, device=device)
            self.groups.append((idx, steps, self.rows[idx, :steps]))  # valid [b, steps]
        self.order = None  # the groups' valid steps -> row-major (b, t) order; the whole batch already is
        if not self.whole:
            flat = [(idx[:, None] * T + torch.arange(steps, device=device)[None])[v] for idx, steps, v in self.groups]
            self.order = torch.argsort(torch.cat(flat))

    def take(self, x: torch.Tensor) -> List[torch.Tensor]:
        """x [B, T, ...] -> each group's rows and steps, [b, steps, ...]."""
        if self.whole:
            return [x]
        return [x[idx, :steps] for idx, steps, _ in self.groups]

    def take_inputs(
        self, obs: Dict[str, torch.Tensor], build: Callable[[Dict[str, torch.Tensor]], torch.Tensor]
    ) -> List[torch.Tensor]:
        """Each group's agent inputs [b, steps, n, In], `build` (agent_inputs) applied to the group's
        rows of the observation columns: the padded [B, T, n, In] input grid is never built."""
        cols = {k: self.take(obs[k]) for k in INPUT_COLUMNS if k in obs}
        return [build({k: v[g] for k, v in cols.items()}) for g in range(len(self.groups))]


BUCKET_STEP_OVERHEAD = 32  # per unrolled step, a bucket's fixed cost is about this many GRU rows' work
MAX_BUCKETS = 4
# bucket when the model saves at least 5% of the work. With the states kept at the valid steps
# (valid_states) and the heads and loss on those rows, bucketing pays at U-MAPPO's ~25% chunk
# padding too: forward, loss and backward of a quick-start minibatch 1.19x faster than on the grid,
# against 1.17x with the earlier threshold of 0.75 (which left those batches unbucketed); 1.19x
# against 1.10x on an MMM2 minibatch (docs/training_speed.md)
MIN_SAVING = 0.95


def length_buckets(
    lengths: np.ndarray,
    T: int,
    width: int = 1,
    max_buckets: int = MAX_BUCKETS,
    step_overhead: int = BUCKET_STEP_OVERHEAD,
) -> Optional[List[Tuple[np.ndarray, int]]]:
    """Split sequences of valid `lengths` [B] (padded to T) into at most `max_buckets` groups of
    neighbouring lengths, each unrolled for its longest: [(row indices, steps)], minimising the
    modelled cost sum(steps * (rows * width + step_overhead)) exactly (dynamic programme over
    distinct lengths); `width` is the GRU rows per sequence (the agents).
    None when one bucket of all rows (the plain padded unroll) is as cheap."""
    lengths = np.minimum(np.maximum(np.asarray(lengths, np.int64), 1), T)
    values, counts = np.unique(lengths, return_counts=True)  # ascending distinct lengths
    m = len(values)
    prefix = np.concatenate([[0], np.cumsum(counts)])
    full = T * (len(lengths) * width + step_overhead)  # the plain unroll
    # best[k, j]: cheapest cover of values[:j+1] with k+1 buckets; cut[k, j]: where the last one starts
    best = np.full((max_buckets, m), np.inf)
    cut = np.zeros((max_buckets, m), np.int64)
    best[0] = (prefix[1:] * width + step_overhead) * values
    for k in range(1, max_buckets):
        for j in range(k, m):
            i = np.arange(k, j + 1)  # last bucket is values[i..j]
            cost = best[k - 1, i - 1] + ((prefix[j + 1] - prefix[i]) * width + step_overhead) * values[j]
            a = int(np.argmin(cost))
            best[k, j], cut[k, j] = cost[a], i[a]
    k = int(np.argmin(best[:, m - 1]))
    if best[k, m - 1] > MIN_SAVING * full:  # not worth the extra calls
        return None
    plan, j = [], m - 1
    while k >= 0:
        i = cut[k, j] if k > 0 else 0
        rows = np.flatnonzero((lengths >= values[i]) & (lengths <= values[j]))
        plan.append((rows, int(values[j])))
        j, k = i - 1, k - 1
    return plan[::-1]


def configure_torch_threads(n: int | None) -> None:
    """Set torch's intra-op threads for this process (env runner or learner).

    These networks are small: extra threads buy nothing, and when sampling and learning share a
    few cores, OpenMP threads spin against each other (a full-batch GRU update measured 29x
    slower with 2 threads than with 1 on a loaded 2-core machine). None leaves torch's default.
    """
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(int(n))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` torch intra-op threads, then restore the previous count.

    The learners use it to give their update the CPUs RLlib reserved for them
    (`num_cpus_per_learner`) while acting, in the same process, stays on one thread."""
    before = torch.get_num_threads()
    configure_torch_threads(n)
    try:
        yield
    finally:
        configure_torch_threads(before)
