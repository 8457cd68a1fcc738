"""Several env workers sharing one expert pool on Ray Serve.

On one machine (starts a local Ray instance, CPU only, the Shapes world)::

    pip install -e ".[ray]"
    python examples/ray_pool.py --workers 4 --steps 40

On a Ray cluster of GPU machines, with the real models (see docs/scaling.md)::

    ray start --head --port=6379              # on the head machine
    ray start --address=HEAD_IP:6379          # on every other machine
    python examples/ray_pool.py --address auto --suite diffusers --gpu-gb 80 --workers 8

Each expert (and the critic) becomes one Ray Serve deployment; with ``--suite diffusers``
each asks for the share of a GPU its model needs (``ExpertSpec.memory_gb`` plus 15%
headroom, over ``--gpu-gb``), so Ray packs small models together and gives the large ones
a GPU of their own. The env workers hold only clients. The script checks that the pooled
workers see exactly what in-process envs see for the same seeds.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import poser_env  # noqa: F401 - registers the ids


def gpu_shares(gpu_gb: float, critic_gb: float) -> dict[str, dict[str, float]]:
    """Ray actor options per deployment: a GPU fraction sized by each model's memory."""
    from poser_env.suites.diffusers import DEFAULT_CATALOG

    def share(gb: float) -> float:
        return round(min(1.0, gb * 1.15 / gpu_gb), 2)

    options = {spec.name: {"num_gpus": share(spec.memory_gb)} for spec in DEFAULT_CATALOG}
    options["critic"] = {"num_gpus": share(critic_gb)}
    return options


def run(venv, seeds: list[int], steps: int) -> list:
    """Fixed, mask-respecting actions; everything the agents would see."""
    obs, _ = venv.reset(seed=seeds)
    seen = []
    for t in range(steps):
        actions = np.array(
            [np.flatnonzero(m)[(t + i) % int(m.sum())] for i, m in enumerate(obs["action_mask"])]
        )
        obs, reward, terminated, truncated, info = venv.step(actions)
        if any(info["error"]):
            raise SystemExit(f"a step failed: {info['error']}")
        seen.append((obs["image"].copy(), reward.copy(), terminated.copy(), truncated.copy()))
    return seen


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address ('auto', 'host:6379'); default: start a local one",
    )
    p.add_argument("--suite", default="shapes", choices=("shapes", "diffusers"))
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--steps", type=int, default=40, help="vector steps")
    p.add_argument("--gpu-gb", type=float, default=80.0, help="memory of one GPU (diffusers only)")
    p.add_argument(
        "--critic-gb", type=float, default=18.0, help="memory the VLM critic needs (diffusers only)"
    )
    args = p.parse_args(argv)

    pool_kwargs = {"address": args.address, "timeout_s": 120 if args.suite == "shapes" else 900}
    if args.suite == "diffusers":
        pool_kwargs["expert_options"] = gpu_shares(args.gpu_gb, args.critic_gb)
        pool_kwargs["max_batch_size"] = 4
    env_kwargs = {"suite": args.suite}
    vector = {
        "context": "spawn",
        "shared_memory": False,
    }  # Text observations need shared_memory=False

    t0 = time.perf_counter()
    pooled = gym.make_vec(
        "ImagePoser-v0",
        num_envs=args.workers,
        vectorization_mode="async",
        vector_kwargs=vector,
        pool="ray",
        pool_kwargs=pool_kwargs,
        **env_kwargs,
    )
    print(
        f"{args.workers} workers connected to the Ray pool in {time.perf_counter() - t0:.1f} s (deployments included)"
    )
    seeds = list(range(args.workers))
    t0 = time.perf_counter()
    remote = run(pooled, seeds, args.steps)
    dt = time.perf_counter() - t0
    pooled.close()
    print(
        f"ray pool: {args.steps * args.workers} env steps in {dt:.1f} s ({args.steps * args.workers / dt:.1f} steps/s)"
    )

    from poser_env.pools.ray_pool import RayPool, describe

    app = RayPool(**pool_kwargs).default_app_name(poser_env.make_suite(args.suite))
    manifest = describe(app)
    print(
        f"application {app!r}: suite {manifest['suite']!r}, "
        f"{len(manifest['experts'])} expert deployments and the critic"
    )

    if args.suite == "shapes":  # the in-process reference is cheap only for Shapes
        local = gym.make_vec(
            "ImagePoser-v0", num_envs=args.workers, vectorization_mode="sync", **env_kwargs
        )
        same = all(
            all(np.array_equal(a, b) for a, b in zip(x, y, strict=True))
            for x, y in zip(remote, run(local, seeds, args.steps), strict=True)
        )
        local.close()
        print(f"same as in-process envs: {same}")


if __name__ == "__main__":
    main()
