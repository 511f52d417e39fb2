"""How hard the CGI loss pulls on the shared agent network, against the RL loss.

    python benchmarks/cgi_gradient.py --variant U-MAPPO --map 3m1m_vs_4m --lambdas 0.01,0.1,1 --seed 0 --iters 12

The lambda_I sweep (docs/results.md) finds every lambda_I from 0.01 to 1 as good as another and
all of them better than 0. This says how large CGI's share of the learning signal is at each one:
the gradient that lambda_I * L_CGI puts on the agent network's trunk (its encoder and GRU, which
the policy head and the CGI head share) beside the gradient of the rest of the loss (PPO's
clipped surrogate, value and entropy terms, or U-QMIX's TD loss).

Each lambda_I trains a fresh run of the study's cell (its settings and seed: `--map` must be a
study map) in this process for `--iters` iterations. On every minibatch the learner also takes the
two terms' gradients with respect to the trunk apart: two extra backward passes, a diagnostic
only. Printed per lambda_I: the medians over minibatches of both norms, of their ratio (with its
10th and 90th percentiles) and of the cosine between the two gradients.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TRUNK = "agent_net"  # the shared network's parameters (RecurrentAgentNetwork: fc, gru)


_TERMS: List = []  # the CGI loss the learner computed for the minibatch at hand (one learner here)


@contextlib.contextmanager
def _capturing(*learner_modules) -> Iterator[None]:
    """While open, the learner modules' `cgi_loss` also hands its result (with its graph) to the
    probe; restored on leaving, so that no later loss in this process keeps its graph in `_TERMS`."""
    originals = [m.cgi_loss for m in learner_modules]

    def recording(original):
        def recorded(*args, **kwargs):
            out = original(*args, **kwargs)
            _TERMS.append(out)
            return out

        return recorded

    for module, original in zip(learner_modules, originals):
        module.cgi_loss = recording(original)
    try:
        yield
    finally:
        for module, original in zip(learner_modules, originals):
            module.cgi_loss = original
        _TERMS.clear()


def probing(base):
    """`base` (a team learner class) that, per minibatch, records the trunk gradient norms of the
    CGI term and of the rest of the loss and their cosine."""
    import torch

    class CGIGradientProbe(base):
        def compute_loss_for_module(self, **kwargs):
            _TERMS.clear()
            total = super().compute_loss_for_module(**kwargs)
            if not _TERMS:  # no CGI term in this loss
                return total
            module = self.module[kwargs["module_id"]].unwrapped()
            params = [p for name, p in module.named_parameters() if name.startswith(TRUNK)]
            if not params:
                raise ValueError(f"the module has no '{TRUNK}' parameters (parameter_sharing='group'?)")
            scaled = kwargs["config"].cgi_coeff * _TERMS.pop()
            flat = []
            for loss in (total - scaled, scaled):
                grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
                flat.append(
                    torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for g, p in zip(grads, params)])
                )
            rl, cgi = flat
            self.probe_rows.append(
                dict(
                    rl=float(rl.norm()),
                    cgi=float(cgi.norm()),
                    cos=float(rl @ cgi / (rl.norm() * cgi.norm()).clamp(min=1e-30)),
                )
            )
            return total

    return CGIGradientProbe


def measure(cell, iters: int) -> List[Dict[str, float]]:
    """Train `cell` (a study Cell whose variant has lambda_I > 0) for `iters` iterations; one row per
    minibatch: the trunk gradient norms `rl` and `cgi` (lambda_I included), `cos` and the env steps
    sampled by the end of its iteration."""
    from rllib_uas.algorithms.u_mappo import learner as mappo_learner
    from rllib_uas.algorithms.u_qmix import learner as qmix_learner

    config = cell.config()
    if not config.cgi_coeff > 0:
        raise ValueError(f"{cell.variant} has lambda_I {config.cgi_coeff:g}: no CGI term to measure")
    with _capturing(mappo_learner, qmix_learner):
        algo = config.learners(learner_class=probing(config.learner_class)).build_algo()
        try:
            learner = algo.learner_group._learner
            learner.probe_rows = []
            for _ in range(iters):
                steps = int(algo.train()["num_env_steps_sampled_lifetime"])
                for row in learner.probe_rows:  # the iteration's minibatches: the env steps sampled by its end
                    row.setdefault("env_steps", steps)
            return list(learner.probe_rows)
        finally:
            algo.stop()


def summary(lam: float, rows: List[Dict[str, float]]) -> str:
    """One markdown table row for one lambda_I."""
    if not rows:
        return (
            f"| {lam:g} | | 0 | no update yet: give more --iters (U-QMIX learns once its buffer holds a batch) | | | |"
        )
    ratio = np.array([r["cgi"] / r["rl"] for r in rows if r["rl"] > 0])
    med = lambda k: float(np.median([r[k] for r in rows]))  # noqa: E731
    p10, p50, p90 = np.percentile(ratio, [10, 50, 90])
    return (
        f"| {lam:g} | {rows[-1]['env_steps']:,} | {len(rows)} | {med('rl'):.4f} | {med('cgi'):.4f} "
        f"| {p50:.2f} [{p10:.2f}, {p90:.2f}] | {med('cos'):+.2f} |"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="U-MAPPO", choices=["U-MAPPO", "U-QMIX"])
    parser.add_argument("--map", default="3m1m_vs_4m")
    parser.add_argument("--lambdas", default="0.01,0.1,1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, default=12)
    args = parser.parse_args(argv)
    import torch

    from rllib_uas.study.grid import Cell

    torch.set_num_threads(1)  # as the study's cells run
    try:
        lambdas = [float(x) for x in args.lambdas.split(",")]
        cells = [Cell(args.map, f"{args.variant} lambda_I={lam}", args.seed) for lam in lambdas]
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.variant} on {args.map}, seed {args.seed}, {args.iters} iterations per lambda_I; trunk = '{TRUNK}'")
    print(
        "| lambda_I | env steps | minibatches | RL grad norm | lambda_I x CGI grad norm | ratio, median [p10, p90] "
        "| cosine |"
    )
    print("|---|---|---|---|---|---|---|")
    for lam, cell in zip(lambdas, cells):
        try:
            rows = measure(cell, args.iters)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(summary(lam, rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
