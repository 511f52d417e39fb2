"""JaxMARL's SMAX measured the way benchmarks/engine_throughput.py measures our engine.

Runs under a separate virtualenv that has jaxmarl (`pip install jaxmarl` there); it never imports
rllib_uas. engine_throughput.py starts it with `--smax-python <venv>/bin/python` and reads the one
JSON line it prints. By hand:

    <venv>/bin/python benchmarks/smax_worker.py --map 3m --envs 16 --mode loop --seconds 4

Workload per env step, as ours: random valid actions drawn from the availability masks, every
battle stepped (SMAX's step computes every agent's observation and the world state, and resets
finished battles). HeuristicEnemySMAX with its default arguments, on the XLA CPU backend with one
compute thread (the process is pinned to one core by the caller).

Modes:
- loop: one jitted, vmapped step per Python call, its outputs waited on: how a Python training loop
  such as RLlib's env runner drives an env.
- scan: `steps` env steps fused in one jitted `lax.scan` per call: how JaxMARL's own end-to-end JAX
  training drives it. A running sum of every step's observations and world state is returned so
  XLA cannot drop that work.
Compilation (lower + compile) is timed on its own and left out of the steps/s.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

# SMAX has SMAC's unit-type maps without Medivacs; these are the ones both engines ship
SMAX_MAPS = ("3m", "2s3z", "3s5z_vs_3s6z", "27m_vs_30m")


def scan_steps(n_envs: int, n_units: int) -> int:
    """Steps fused per scan call: about 8k unit-steps, so one call stays well under a second."""
    return int(min(256, max(1, 8192 // (n_envs * n_units))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--map", required=True, choices=SMAX_MAPS)
    ap.add_argument("--envs", type=int, required=True)
    ap.add_argument("--mode", choices=("loop", "scan"), required=True)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    n = args.envs

    import jax
    import jax.numpy as jnp

    with contextlib.redirect_stdout(io.StringIO()):  # jaxmarl prints a notice about optional envs
        from jaxmarl import make
        from jaxmarl.environments.smax import map_name_to_scenario

    env = make("HeuristicEnemySMAX", scenario=map_name_to_scenario(args.map))
    agents = env.agents

    def one_step(key, state):
        key, k_act, k_step = jax.random.split(key, 3)
        avail = jax.vmap(env.get_avail_actions)(state)
        masks = jnp.stack([avail[a] for a in agents], 1)  # [N, n_agents, A]
        acts = jax.random.categorical(k_act, jnp.where(masks > 0, 0.0, -jnp.inf))  # [N, n_agents]
        obs, state, _, dones, _ = jax.vmap(env.step)(
            jax.random.split(k_step, n), state, {a: acts[:, i] for i, a in enumerate(agents)}
        )
        return key, state, obs, dones

    key, reset_key = jax.random.split(jax.random.PRNGKey(0))
    _, state = jax.vmap(env.reset)(jax.random.split(reset_key, n))
    steps_per_call = 1
    t0 = time.perf_counter()
    if args.mode == "loop":
        fn = jax.jit(one_step).lower(key, state).compile()

        def call(key, state):
            key, state, obs, dones = fn(key, state)
            jax.block_until_ready((obs, dones))
            return key, state
    else:
        steps_per_call = scan_steps(n, env.num_allies + env.num_enemies)

        def many(key, state):
            def body(carry, _):
                key, state, acc = carry
                key, state, obs, dones = one_step(key, state)
                acc = acc + sum(jnp.sum(v) for v in obs.values()) + jnp.sum(dones["__all__"])
                return (key, state, acc), None

            (key, state, acc), _ = jax.lax.scan(body, (key, state, jnp.float32(0)), None, length=steps_per_call)
            return key, state, acc

        fn = jax.jit(many).lower(key, state).compile()

        def call(key, state):
            key, state, acc = fn(key, state)
            jax.block_until_ready(acc)
            return key, state

    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < min(1.0, args.seconds / 4):  # warm-up: first-call allocations
        key, state = call(key, state)
    steps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < args.seconds:
        key, state = call(key, state)
        steps += n * steps_per_call
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    result = {
        "wall": steps / wall,
        "cpu": steps / max(cpu, 1e-9),
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "compile_s": compile_s,
        "steps_per_call": steps_per_call,
        "jax": jax.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
