"""QMIX as PyMARL2 runs it, on the embedded engine, without RLlib or any module of this package.

A yardstick for `learning_check.py`: when our QMIX's greedy win rate swings on a map, does a QMIX
written the way PyMARL2 writes it (hijkzzz/pymarl2: `parallel_runner`, `nq_learner`, `n_rnn_agent`,
`nmix`, the epsilon-greedy selector, the episode buffer, `run.py`'s loop) swing too on the same
battles? It shares only the battle engine (`VectorizedSMAC`) with the package, so a difference
between the two points at our algorithm, and the same behaviour at the task.

What it reproduces, with PyMARL2's tuned QMIX settings (`config/algs/qmix.yaml`, `default.yaml`):
- runs of `batch_size_run` (8) envs, each playing exactly one episode; envs that finished wait;
- a 5000-episode buffer; from 128 stored episodes on, one update per run on 128 episodes sampled
  uniformly without replacement, cut to the longest;
- agent: fc 64, ReLU, GRUCell 64, fc to Q, input obs + last action one-hot + agent id one-hot;
- mixer: hypernetworks (embed 64), mixing embed 32, abs weights, ELU, two-layer state bias;
- double Q (online masked argmax, target value), TD(lambda 0.6), gamma 0.99, loss 0.5 * masked mean
  of td^2, Adam lr 1e-3, global grad norm clip 10, hard target update every 200 episodes;
- epsilon 1.0 -> 0.05 over 100k env steps, a random *available* action with probability epsilon;
- the time limit ends the episode (SMAC's `continuing_episode=False`); `--continuing-episode` makes
  it a truncation that bootstraps, as our team env does with that flag.

Greedy evaluation and the CSV columns are those of `learning_check.py`, so its `--summary` reads
these files too:

    python benchmarks/pymarl2_qmix.py --map 3m --seed 0 --steps 200000
    python benchmarks/learning_check.py --summary benchmarks/results/pymarl2_qmix
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from learning_check import FIELDS  # the same CSV columns, so its --summary reads these files
from torch import nn
from torch.nn import functional as F


@dataclass
class Settings:
    batch_size_run: int = 8
    buffer_size: int = 5000
    batch_size: int = 128
    lr: float = 1e-3
    gamma: float = 0.99
    td_lambda: float = 0.6
    grad_norm_clip: float = 10.0
    target_update_interval: int = 200  # episodes
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_time: int = 100_000
    hidden: int = 64
    mixing_embed_dim: int = 32
    hypernet_embed: int = 64


class RNNAgent(nn.Module):
    """fc -> ReLU -> GRUCell -> fc, one row per (env, agent)."""

    def __init__(self, in_dim: int, n_actions: int, hidden: int):
        super().__init__()
        self.fc1, self.rnn, self.fc2 = (
            nn.Linear(in_dim, hidden),
            nn.GRUCell(hidden, hidden),
            nn.Linear(hidden, n_actions),
        )

    def forward(self, x: torch.Tensor, h: torch.Tensor):  # x [R, In], h [R, H]
        h = self.rnn(F.relu(self.fc1(x)), h)
        return self.fc2(h), h


class Mixer(nn.Module):
    """QMIX's monotonic mixer with PyMARL2's layer sizes."""

    def __init__(self, n_agents: int, state_dim: int, embed: int, hyper: int):
        super().__init__()
        self.n, self.embed = n_agents, embed
        self.w1 = nn.Sequential(nn.Linear(state_dim, hyper), nn.ReLU(), nn.Linear(hyper, n_agents * embed))
        self.b1 = nn.Linear(state_dim, embed)
        self.w2 = nn.Sequential(nn.Linear(state_dim, hyper), nn.ReLU(), nn.Linear(hyper, embed))
        self.v = nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def forward(self, q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # q [B, T, n], s [B, T, S] -> [B, T]
        B, T, _ = q.shape
        s = s.reshape(B * T, -1)
        w1 = self.w1(s).view(-1, self.n, self.embed).abs()
        hidden = F.elu(torch.bmm(q.reshape(B * T, 1, self.n), w1) + self.b1(s).view(-1, 1, self.embed))
        y = torch.bmm(hidden, self.w2(s).view(-1, self.embed, 1).abs()) + self.v(s).view(-1, 1, 1)
        return y.view(B, T)


def agent_inputs(obs: torch.Tensor, last_onehot: torch.Tensor) -> torch.Tensor:
    """[..., n, obs + A + n]: observation, last action one-hot, agent id one-hot."""
    n = obs.shape[-2]
    ids = torch.eye(n).expand(*obs.shape[:-2], n, n)
    return torch.cat([obs, last_onehot, ids], -1)


def td_lambda_targets(rewards, terminated, mask, target_qs, gamma: float, lam: float) -> torch.Tensor:
    """PyMARL2's backward recursion. rewards/terminated/mask [B, T], target_qs [B, T+1] -> [B, T]."""
    ret = torch.zeros_like(target_qs)
    ret[:, -1] = target_qs[:, -1] * (1 - terminated.sum(1))
    for t in range(ret.shape[1] - 2, -1, -1):
        ret[:, t] = lam * gamma * ret[:, t + 1] + mask[:, t] * (
            rewards[:, t] + (1 - lam) * gamma * target_qs[:, t + 1] * (1 - terminated[:, t])
        )
    return ret[:, :-1]


class EpisodeStore:
    """A ring of episodes padded to the episode limit + 1, as PyMARL2's ReplayBuffer keeps them."""

    def __init__(self, size: int, T1: int, n: int, A: int, obs_dim: int, state_dim: int):
        self.size, self.count, self.next = size, 0, 0
        self.obs = np.zeros((size, T1, n, obs_dim), np.float32)
        self.state = np.zeros((size, T1, state_dim), np.float32)
        self.avail = np.zeros((size, T1, n, A), np.float32)
        self.actions = np.zeros((size, T1, n), np.int64)
        self.reward = np.zeros((size, T1), np.float32)
        self.terminated = np.zeros((size, T1), np.float32)
        self.filled = np.zeros((size, T1), np.float32)

    def insert(self, run: Dict[str, np.ndarray]) -> None:
        for b in range(run["obs"].shape[0]):
            i = self.next
            for k, v in run.items():
                getattr(self, k)[i] = v[b]
            self.next, self.count = (i + 1) % self.size, min(self.count + 1, self.size)

    def sample(self, k: int, rng: np.random.Generator) -> Dict[str, torch.Tensor]:
        ids = rng.choice(self.count, k, replace=False)
        T = int(self.filled[ids].sum(1).max())  # max_t_filled
        keys = ("obs", "state", "avail", "actions", "reward", "terminated", "filled")
        return {key: torch.as_tensor(getattr(self, key)[ids, :T]) for key in keys}


class QMIX:
    def __init__(self, n: int, A: int, obs_dim: int, state_dim: int, cfg: Settings):
        self.cfg, self.n, self.A = cfg, n, A
        self.agent = RNNAgent(obs_dim + A + n, A, cfg.hidden)
        self.mixer = Mixer(n, state_dim, cfg.mixing_embed_dim, cfg.hypernet_embed)
        self.target_agent = RNNAgent(obs_dim + A + n, A, cfg.hidden)
        self.target_mixer = Mixer(n, state_dim, cfg.mixing_embed_dim, cfg.hypernet_embed)
        self.update_targets()
        self.params = list(self.agent.parameters()) + list(self.mixer.parameters())
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr)
        self.last_target_update = 0

    def update_targets(self) -> None:
        self.target_agent.load_state_dict(self.agent.state_dict())
        self.target_mixer.load_state_dict(self.mixer.state_dict())

    def unroll(self, net: RNNAgent, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q [B, T, n, A] over every step of the batch, one GRUCell step at a time."""
        B, T, n, _ = obs.shape
        last = F.one_hot(actions, self.A).float()
        last = torch.cat([torch.zeros_like(last[:, :1]), last[:, :-1]], 1)  # the previous step's actions
        x = agent_inputs(obs, last)
        h = torch.zeros(B * n, self.cfg.hidden)
        out = []
        for t in range(T):
            q, h = net(x[:, t].reshape(B * n, -1), h)
            out.append(q.view(B, n, -1))
        return torch.stack(out, 1)

    def loss(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """0.5 * masked mean of td^2 of the online networks against TD(lambda) double-Q targets."""
        cfg = self.cfg
        rewards, terminated = batch["reward"][:, :-1], batch["terminated"][:, :-1]
        mask = batch["filled"][:, :-1].clone()
        mask[:, 1:] = mask[:, 1:] * (1 - terminated[:, :-1])
        avail, actions = batch["avail"], batch["actions"]
        q = self.unroll(self.agent, batch["obs"], actions)  # [B, T, n, A]
        chosen = q[:, :-1].gather(3, actions[:, :-1, :, None]).squeeze(3)
        with torch.no_grad():
            q_target = self.unroll(self.target_agent, batch["obs"], actions)
            best = q.detach().masked_fill(avail == 0, -9999999).argmax(3, keepdim=True)
            target_max = self.target_mixer(q_target.gather(3, best).squeeze(3), batch["state"])
            y = td_lambda_targets(rewards, terminated, mask, target_max, cfg.gamma, cfg.td_lambda)
        td = self.mixer(chosen, batch["state"][:, :-1]) - y
        return (0.5 * td.pow(2) * mask).sum() / mask.sum()

    def train(self, batch: Dict[str, torch.Tensor], episode_num: int) -> float:
        cfg = self.cfg
        loss = self.loss(batch)
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, cfg.grad_norm_clip)
        self.opt.step()
        if (episode_num - self.last_target_update) / cfg.target_update_interval >= 1.0:
            self.update_targets()
            self.last_target_update = episode_num
        return loss.item()


def run_episodes(env, agent: QMIX, epsilon: float, rng: torch.Generator, continuing: bool, T1: int):
    """One run: every env plays one episode; (episode data [E, T1, ...], returns, wins, lengths)."""
    E, n, A = env.n_envs, env.n_agents, env.n_actions
    env.reset()
    data = {
        "obs": np.zeros((E, T1, n, env.obs_size), np.float32),
        "state": np.zeros((E, T1, env.state_size), np.float32),
        "avail": np.zeros((E, T1, n, A), np.float32),
        "actions": np.zeros((E, T1, n), np.int64),
        "reward": np.zeros((E, T1), np.float32),
        "terminated": np.zeros((E, T1), np.float32),
        "filled": np.zeros((E, T1), np.float32),
    }
    running = np.ones(E, bool)
    recording = running.copy()  # running, or ended at the last step: its final observation is stored too
    returns, wins, lengths = np.zeros(E), np.zeros(E, bool), np.zeros(E, np.int64)
    h = torch.zeros(E * n, agent.cfg.hidden)
    last = torch.zeros(E, n, A)
    t = 0
    while True:
        obs, state, avail = env.observations(), env.states(), env.avail_actions()
        rows = np.flatnonzero(recording)
        data["obs"][rows, t], data["state"][rows, t], data["avail"][rows, t] = obs[rows], state[rows], avail[rows]
        data["filled"][rows, t] = 1.0
        rows = np.flatnonzero(running)
        with torch.no_grad():
            q, h = agent.agent(agent_inputs(torch.as_tensor(obs), last).reshape(E * n, -1), h)
        q = q.view(E, n, A)
        av = torch.as_tensor(avail, dtype=torch.float32)
        greedy = q.masked_fill(av == 0, -float("inf")).argmax(-1)
        random = torch.multinomial(av.reshape(E * n, A), 1, generator=rng).view(E, n)
        explore = torch.rand(E, n, generator=rng) < epsilon
        act = torch.where(explore, random, greedy)
        data["actions"][rows, t] = act.numpy()[rows]
        if not running.any():
            break
        res = env.step(act.numpy(), active=running)
        last = F.one_hot(act, A).float()
        r = np.where(running, res.reward, 0.0)
        data["reward"][rows, t] = r[rows]
        returns += r
        lengths += running
        ended = running & res.terminated
        terminal = ended & ~(res.timeout & continuing)
        data["terminated"][np.flatnonzero(terminal), t] = 1.0
        wins |= ended & res.battle_won
        running &= ~ended
        recording = ended | running
        t += 1
    return data, returns, wins, lengths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--map", default="3m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--eval-every", type=int, default=10_000)
    ap.add_argument("--eval-episodes", type=int, default=64)
    ap.add_argument("--continuing-episode", action="store_true", help="the time limit bootstraps (a truncation)")
    ap.add_argument("--out", default="benchmarks/results/pymarl2_qmix")
    args = ap.parse_args()

    from rllib_uas.envs.engine.vec_smac import VectorizedSMAC  # the battles only

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    np_rng, t_rng = np.random.default_rng(args.seed), torch.Generator().manual_seed(args.seed)
    cfg = Settings()
    env = VectorizedSMAC(args.map, n_envs=cfg.batch_size_run, seed=args.seed)
    eval_env = VectorizedSMAC(args.map, n_envs=cfg.batch_size_run, seed=args.seed + 10_000)
    T1 = env.episode_limit + 1
    n, A = env.n_agents, env.n_actions
    agent = QMIX(n, A, env.obs_size, env.state_size, cfg)
    store = EpisodeStore(cfg.buffer_size, T1, n, A, env.obs_size, env.state_size)

    variant = "PyMARL2_QMIX" + ("_continuing" if args.continuing_episode else "")
    out = Path(args.out) / f"{args.map}__{variant}__seed{args.seed}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        csv.writer(f).writerow(FIELDS)
    t_env, episode, next_eval, updates, t0 = 0, 0, 0, 0, time.perf_counter()
    train_wins: List[bool] = []
    train_returns: List[float] = []
    while True:
        if t_env >= next_eval:
            ev = [
                run_episodes(eval_env, agent, 0.0, t_rng, args.continuing_episode, T1)
                for _ in range(-(-args.eval_episodes // cfg.batch_size_run))
            ]
            wins = np.concatenate([e[2] for e in ev])
            row = [
                t_env,
                round(time.perf_counter() - t0, 1),
                float(np.mean(train_wins)) if train_wins else 0.0,
                float(np.mean(train_returns)) if train_returns else 0.0,
                float(wins.mean()),
                len(wins),
                float(np.concatenate([e[1] for e in ev]).mean()),
                float(np.concatenate([e[3] for e in ev]).mean()),
            ]
            with out.open("a", newline="") as f:
                csv.writer(f).writerow(row)
            print(" ".join(f"{k}={v}" for k, v in zip(FIELDS, row)), flush=True)
            train_wins, train_returns = [], []
            next_eval += args.eval_every
            if t_env >= args.steps:
                break
        eps = max(
            cfg.epsilon_finish,
            cfg.epsilon_start - (cfg.epsilon_start - cfg.epsilon_finish) * t_env / cfg.epsilon_anneal_time,
        )
        data, returns, wins, lengths = run_episodes(env, agent, eps, t_rng, args.continuing_episode, T1)
        store.insert(data)
        t_env += int(lengths.sum())
        train_wins += wins.tolist()
        train_returns += returns.tolist()
        if store.count >= cfg.batch_size:
            loss = agent.train(store.sample(cfg.batch_size, np_rng), episode)
            if not np.isfinite(loss):
                raise SystemExit(f"the TD loss is {loss} at {t_env} env steps; lower the learning rate")
            updates += 1
        episode += cfg.batch_size_run
    print(f"{out}: {updates} updates, {episode} training episodes, {t_env} env steps", flush=True)


if __name__ == "__main__":
    main()
