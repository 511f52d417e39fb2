"""Forward and backward of the action-axis (log-)softmax: torch's last-axis kernel against the
transposed route `rllib_uas/modules/softmax.py` takes below the CPU's register width.

    python benchmarks/softmax_axis.py [--threads 1] [--rows 1200] [--agents 4] [--actions 6,9,12,15,16,24,32]

Each cell is microseconds per forward + backward of [rows, agents, A], best of 5 repeats of 40
calls, the two routes interleaved. The default shape is the quick start's per-epoch batch (about
1,200 valid steps of 4 agents).
"""

from __future__ import annotations

import argparse
import time

import torch


def timed(f, x: torch.Tensor, calls: int = 40, repeats: int = 5) -> float:
    w = torch.randn_like(x)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            x.grad = None
            (f(x) * w).sum().backward()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", type=int, default=1200)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--actions", default="6,9,12,15,16,24,32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from rllib_uas.modules.softmax import lanes, short_axis, transposed

    print(
        f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{args.threads} thread(s); the package routes axes shorter than {lanes()}"
    )
    print("| A | log_softmax, torch's | log_softmax, transposed | softmax, torch's | softmax, transposed | route |")
    print("|---|---|---|---|---|---|")
    for a in (int(v) for v in args.actions.split(",")):
        x = torch.randn(args.rows, args.agents, a, requires_grad=True)
        cells = []
        for fn in (torch.log_softmax, torch.softmax):
            cells += [timed(lambda t, fn=fn: fn(t, -1), x), timed(lambda t, fn=fn: transposed(fn, t), x)]
        route = "transposed" if short_axis(x) else "torch's"
        print(f"| {a} | " + " | ".join(f"{c:,.0f}" for c in cells) + f" | {route} |")


if __name__ == "__main__":
    main()
