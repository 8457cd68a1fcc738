"""Scaling of ImagePoser: vectorised Shapes workers and the generation cache.

1. Shapes steps per second with ``gymnasium.make_vec(..., vectorization_mode="async")``
   for 1, 2, 4 and 8 workers (spawn, ``shared_memory=False`` because Gymnasium 1.4 cannot
   share ``Text`` observations), local pool (each worker owns its experts), plus the
   in-process single env for reference.
2. Warm-cache speed-up: the same seeded episodes twice on one cache directory (cold, then
   warm), against no cache. Run on plain Shapes (a Shapes call costs well under a
   millisecond, so the cache can only add overhead) and on Shapes experts that sleep
   ``--latency`` seconds per nominal second of cost, a stand-in for real GPU experts.

    nice python benchmarks/scaling.py --result benchmarks/results/scaling.json

Timings are wall-clock on whatever machine runs it and are not asserted by any test. The
Ray expert pool of issue 5 is not built, so there is no Ray column.
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
        self.name, self.kind, self.cost, self.description = inner.name, inner.kind, inner.cost, inner.description

    def __call__(self, command, image, seed) -> ExpertResult:
        time.sleep(self.latency * self.cost)
        return self.inner(command, image, seed)

    def cache_identity(self):
        return self.inner.cache_identity()


def slow_suite(latency: float):
    from dataclasses import replace

    suite = make_suite("shapes")
    return replace(suite, experts=tuple(SlowExpert(e, latency) for e in suite.experts))


def vector_rate(num_envs: int, steps: int, seed: int = 0) -> dict:
    venv = gym.make_vec(
        "ImagePoser-v0",
        num_envs=num_envs,
        vectorization_mode="async",
        vector_kwargs={"context": "spawn", "shared_memory": False},
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
    return {"workers": num_envs, "env_steps": n_steps * num_envs, "seconds": round(dt, 3), "steps_per_s": round(n_steps * num_envs / dt, 1)}


def single_rate(steps: int, seed: int = 0) -> dict:
    env = gym.make("ImagePoser-v0")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        obs, _, term, trunc, _ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
        if term or trunc:
            obs, _ = env.reset()
    dt = time.perf_counter() - t0
    return {"workers": "in-process", "env_steps": steps, "seconds": round(dt, 3), "steps_per_s": round(steps / dt, 1)}


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
            obs, r, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--steps", type=int, default=800, help="env steps per worker count")
    p.add_argument("--episodes", type=int, default=40, help="episodes per cache run")
    p.add_argument("--latency", type=float, default=0.02, help="simulated seconds slept per nominal cost second")
    p.add_argument("--result", default="benchmarks/results/scaling.json")
    args = p.parse_args(argv)

    vector = [single_rate(args.steps)] + [vector_rate(n, args.steps) for n in args.workers]
    for row in vector:
        print(f"workers {row['workers']!s:>10}: {row['steps_per_s']:8.1f} steps/s")
    caches = [
        cache_speedup("shapes", lambda: "shapes", args.episodes),
        cache_speedup(f"shapes+{args.latency}s/cost-second", lambda: slow_suite(args.latency), args.episodes),
    ]
    for row in caches:
        print(f"{row['suite']}: no cache {row['no_cache_s']}s, cold {row['cold_s']}s, warm {row['warm_s']}s "
              f"(x{row['warm_speedup_vs_no_cache']} vs no cache), same rewards: {row['same_rewards']}")
    result = {
        "command": "nice python benchmarks/scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "vector_async_local_pool": vector,
        "cache": caches,
        "ray_pool": "not built",
    }
    out = Path(args.result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
