"""Scaling of ImagePoser: vectorised Shapes workers, the Ray pool and the generation cache.

1. Shapes steps per second with ``gymnasium.make_vec(..., vectorization_mode="async")``
   for 1, 2, 4 and 8 workers (spawn, ``shared_memory=False`` because Gymnasium 1.4 cannot
   share ``Text`` observations), with the local pool (each worker owns its experts) and
   with the Ray pool (every worker sends its calls to one set of Ray Serve deployments on
   a local Ray cluster), plus the in-process single env for reference.
2. Per-call overhead of the Ray pool: the latency of one expert call and one critic call
   through a worker's client against the same call in-process.
3. Warm-cache speed-up: the same seeded episodes twice on one cache directory (cold, then
   warm), against no cache. Run on plain Shapes (a Shapes call costs well under a
   millisecond, so the cache can only add overhead) and on Shapes experts that sleep
   ``--latency`` seconds per nominal second of cost, a stand-in for real GPU experts.
4. A second identical DQN training run (``poser_agents.train``, same seed) on a warm
   cache, against the first on a cold one, with the slow experts.

    nice python benchmarks/scaling.py --result benchmarks/results/scaling.json

Timings are wall-clock on whatever machine runs it and are not asserted by any test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import poser_env  # noqa: F401 - registers the ids
from poser_env.components import Expert, ExpertResult
from poser_env.suites import make_suite


class SlowExpert(Expert):
    """A Shapes expert that also sleeps ``latency * cost`` seconds, like a GPU model would."""

    def __init__(self, inner: Expert, latency: float):
        self.inner, self.latency = inner, float(latency)
        self.name, self.kind, self.cost, self.description = (
            inner.name,
            inner.kind,
            inner.cost,
            inner.description,
        )

    def __call__(self, command, image, seed) -> ExpertResult:
        time.sleep(self.latency * self.cost)
        return self.inner(command, image, seed)

    def cache_identity(self):
        return self.inner.cache_identity()


def slow_suite(latency: float, **suite_kwargs):
    from dataclasses import replace

    suite = make_suite("shapes", **suite_kwargs)
    return replace(suite, experts=tuple(SlowExpert(e, latency) for e in suite.experts))


def vector_rate(num_envs: int, steps: int, seed: int = 0, **env_kwargs) -> dict:
    venv = gym.make_vec(
        "ImagePoser-v0",
        num_envs=num_envs,
        vectorization_mode="async",
        vector_kwargs={"context": "spawn", "shared_memory": False},
        **env_kwargs,
    )
    rng = np.random.default_rng(seed)
    obs, _ = venv.reset(seed=[seed + i for i in range(num_envs)])

    def act(obs):
        return np.array([rng.choice(np.flatnonzero(m)) for m in obs["action_mask"]])

    for _ in range(5):  # warm up the workers
        obs, *_ = venv.step(act(obs))
    n_steps = max(1, steps // num_envs)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        obs, *_ = venv.step(act(obs))
    dt = time.perf_counter() - t0
    venv.close()
    return {
        "workers": num_envs,
        "env_steps": n_steps * num_envs,
        "seconds": round(dt, 3),
        "steps_per_s": round(n_steps * num_envs / dt, 1),
    }


def single_rate(steps: int, seed: int = 0, **env_kwargs) -> dict:
    env = gym.make("ImagePoser-v0", **env_kwargs)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        obs, _, term, trunc, _ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
        if term or trunc:
            obs, _ = env.reset()
    dt = time.perf_counter() - t0
    return {
        "workers": "in-process",
        "env_steps": steps,
        "seconds": round(dt, 3),
        "steps_per_s": round(steps / dt, 1),
    }


def episodes(suite, cache, n: int) -> tuple[float, int, int, list]:
    """Seconds, hits, misses and the trajectory of ``n`` seeded random-policy episodes."""
    env = gym.make("ImagePoser-v0", suite=suite, cache=cache)
    hits = misses = 0
    trace = []
    t0 = time.perf_counter()
    for ep in range(n):
        rng = np.random.default_rng(ep)
        obs, info = env.reset(seed=ep)
        c = info.get("cache", {})
        hits, misses = hits + c.get("hits", 0), misses + c.get("misses", 0)
        while True:
            obs, r, term, trunc, info = env.step(
                int(rng.choice(np.flatnonzero(obs["action_mask"])))
            )
            c = info.get("cache", {})
            hits, misses = hits + c.get("hits", 0), misses + c.get("misses", 0)
            trace.append(round(float(r), 9))
            if term or trunc:
                break
    return time.perf_counter() - t0, hits, misses, trace


def cache_speedup(label: str, make, n: int) -> dict:
    directory = tempfile.mkdtemp(prefix="poser-cache-bench-")
    try:
        t_plain, _, _, plain = episodes(make(), None, n)
        t_cold, h_cold, m_cold, cold = episodes(make(), directory, n)
        t_warm, h_warm, m_warm, warm = episodes(make(), directory, n)
        size = sum(p.stat().st_size for p in Path(directory).glob("*"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "suite": label,
        "episodes": n,
        "no_cache_s": round(t_plain, 3),
        "cold_s": round(t_cold, 3),
        "warm_s": round(t_warm, 3),
        "warm_speedup_vs_no_cache": round(t_plain / t_warm, 2),
        "warm_speedup_vs_cold": round(t_cold / t_warm, 2),
        "cold": {"hits": h_cold, "misses": m_cold},
        "warm": {"hits": h_warm, "misses": m_warm},
        "same_rewards": plain == cold == warm,
        "cache_file_bytes": size,
    }


def call_latency(fn, n: int) -> dict:
    """Median and 90th percentile of ``n`` calls to ``fn``, in milliseconds."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {
        "calls": n,
        "median_ms": round(float(np.median(times)), 3),
        "p90_ms": round(float(np.percentile(times, 90)), 3),
    }


def ray_overhead(address: str, n: int) -> dict:
    """One expert call and one critic call through the Ray pool's client vs in-process."""
    from poser_env.pools.ray_pool import RayPool

    local = make_suite("shapes")
    remote = RayPool(address=address).connect(local)
    # A lone caller's request waits batch_wait_timeout_s (default 10 ms) for company.
    unbatched = RayPool(address=address, batch_wait_timeout_s=0.0).connect(local)
    task = local.tasks.sample(np.random.default_rng(0))
    plan = local.extractor.extract(task.prompt, task.image)
    command = plan.commands[0]
    image = local.experts[0](command, None, 0).image
    rows = {}
    for label, suite in (("local", local), ("ray", remote), ("ray_no_batch_wait", unbatched)):
        expert = suite.experts[0]
        rows[label] = {
            "expert": call_latency(lambda e=expert: e(command, None, 1), n),
            "critic": call_latency(
                lambda c=suite.critic: c.judge(image, command, plan.constraints), n
            ),
        }
    for part in ("expert", "critic"):
        rows[f"{part}_overhead_ms"] = round(
            rows["ray"][part]["median_ms"] - rows["local"][part]["median_ms"], 3
        )
        rows[f"{part}_overhead_no_batch_wait_ms"] = round(
            rows["ray_no_batch_wait"][part]["median_ms"] - rows["local"][part]["median_ms"], 3
        )
    return rows


def ray_rates(workers: list[int], steps: int) -> tuple[list, dict]:
    import ray

    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        namespace="image-poser",
    )
    address = ray.get_runtime_context().gcs_address
    pool_kwargs = {"address": address, "timeout_s": 60}
    t0 = time.perf_counter()
    gym.make(
        "ImagePoser-v0", pool="ray", pool_kwargs=pool_kwargs
    ).close()  # deploys the 13 deployments
    deploy_s = time.perf_counter() - t0
    try:
        rates = [single_rate(steps, pool="ray", pool_kwargs=pool_kwargs)]
        rates += [vector_rate(n, steps, pool="ray", pool_kwargs=pool_kwargs) for n in workers]
        overhead = {"deploy_s": round(deploy_s, 1), **ray_overhead(address, 200)}
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
    return rates, overhead


def register_slow_suite(latency: float) -> str:
    from poser_env.suites import register_suite

    register_suite(
        "shapes-slow",
        lambda **kw: slow_suite(latency, **kw),
        description="Shapes experts that sleep like GPU models",
    )
    return "shapes-slow"


def training_speedup(latency: float, timesteps: int) -> dict:
    """Two identical DQN runs (same seed) on one cache directory: cold, then warm."""
    from stable_baselines3.common.callbacks import BaseCallback

    from poser_agents.train import train
    from poser_env.cache import GenerationCache

    class Episodes(BaseCallback):
        def __init__(self):
            super().__init__()
            self.episodes = []

        def _on_step(self) -> bool:
            self.episodes += [
                (round(i["episode"]["r"], 6), i["episode"]["l"])
                for i in self.locals["infos"]
                if "episode" in i
            ]
            return True

    suite = register_slow_suite(latency)
    directory = tempfile.mkdtemp(prefix="poser-cache-train-")
    runs = tempfile.mkdtemp(prefix="poser-train-bench-")
    rows, logs = [], []
    try:
        for label in ("cold", "warm"):
            hp = {
                "n_timesteps": timesteps,
                "env_kwargs": {"suite": suite, "cache": directory},
                "learning_starts": 200,
            }
            log = Episodes()
            t0 = time.perf_counter()
            train(
                "dqn",
                seed=0,
                run_dir=Path(runs) / label,
                hyperparams=hp,
                evaluate=False,
                callbacks=[log],
            )
            seconds = time.perf_counter() - t0
            rows.append(
                {
                    "run": label,
                    "seconds": round(seconds, 1),
                    "episodes": len(log.episodes),
                    "cache_entries_after": GenerationCache(directory).stats()["entries"],
                }
            )
            logs.append(log.episodes)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(runs, ignore_errors=True)
    return {
        "suite": f"shapes+{latency}s/cost-second",
        "timesteps": timesteps,
        "runs": rows,
        "warm_speedup": round(rows[0]["seconds"] / rows[1]["seconds"], 2),
        "warm_run_added_no_entries": rows[0]["cache_entries_after"]
        == rows[1]["cache_entries_after"],
        "same_episode_rewards_and_lengths": logs[0] == logs[1],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--steps", type=int, default=800, help="env steps per worker count")
    p.add_argument("--episodes", type=int, default=40, help="episodes per cache run")
    p.add_argument(
        "--latency",
        type=float,
        default=0.02,
        help="simulated seconds slept per nominal cost second",
    )
    p.add_argument(
        "--train-steps",
        type=int,
        default=1500,
        help="DQN timesteps per training run (cache part 4)",
    )
    p.add_argument("--no-ray", action="store_true", help="skip the Ray pool columns")
    p.add_argument("--result", default="benchmarks/results/scaling.json")
    args = p.parse_args(argv)

    vector = [single_rate(args.steps)] + [vector_rate(n, args.steps) for n in args.workers]
    ray_vector, overhead = ([], {}) if args.no_ray else ray_rates(args.workers, args.steps)
    for row in vector:
        print(f"local pool, workers {row['workers']!s:>10}: {row['steps_per_s']:8.1f} steps/s")
    for row in ray_vector:
        print(f"ray pool,   workers {row['workers']!s:>10}: {row['steps_per_s']:8.1f} steps/s")
    if overhead:
        print(
            f"ray pool per-call overhead (median): expert {overhead['expert_overhead_ms']} ms, "
            f"critic {overhead['critic_overhead_ms']} ms; "
            f"without the batch wait: expert {overhead['expert_overhead_no_batch_wait_ms']} ms, "
            f"critic {overhead['critic_overhead_no_batch_wait_ms']} ms"
        )
    caches = [
        cache_speedup("shapes", lambda: "shapes", args.episodes),
        cache_speedup(
            f"shapes+{args.latency}s/cost-second", lambda: slow_suite(args.latency), args.episodes
        ),
    ]
    for row in caches:
        print(
            f"{row['suite']}: no cache {row['no_cache_s']}s, cold {row['cold_s']}s, warm {row['warm_s']}s "
            f"(x{row['warm_speedup_vs_no_cache']} vs no cache), same rewards: {row['same_rewards']}"
        )
    training = training_speedup(args.latency, args.train_steps)
    print(
        f"DQN training run, {training['timesteps']} steps: cold {training['runs'][0]['seconds']}s, "
        f"warm {training['runs'][1]['seconds']}s "
        f"(x{training['warm_speedup']}), same episodes: {training['same_episode_rewards_and_lengths']}"
    )
    result = {
        "command": "nice python benchmarks/scaling.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "vector_async_local_pool": vector,
        "vector_async_ray_pool": ray_vector or "skipped (--no-ray)",
        "ray_pool_per_call": overhead or "skipped (--no-ray)",
        "cache": caches,
        "cache_training_run": training,
    }
    out = Path(args.result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
