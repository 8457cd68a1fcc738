"""Throughput of ImagePoser-v0 against Minigrid's DoorKey-8x8 with RGB image observations.

Random-policy steps per second and resets per second, both environments in the same
process and run, alternated in rounds so that machine load affects both alike, on one
core (numpy/scipy threads pinned to 1).

    pip install -e ".[bench]"
    python benchmarks/env_speed.py --seconds 3 --rounds 5 --out benchmarks/results/env_speed.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402

import poser_env  # noqa: E402


def make_poser():
    return gym.make("ImagePoser-v0")


def make_minigrid():
    import minigrid  # noqa: F401 - registers MiniGrid ids
    from minigrid.wrappers import RGBImgObsWrapper

    return RGBImgObsWrapper(gym.make("MiniGrid-DoorKey-8x8-v0"))


def steps_per_second(env, seconds: float, seed: int) -> float:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            n += 1
            if term or trunc:
                env.reset()
    return n / (time.perf_counter() - start)


def resets_per_second(env, seconds: float, seed: int) -> float:
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.reset(seed=seed + n)
        n += 1
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per environment")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/env_speed.json"))
    args = ap.parse_args(argv)
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    except (AttributeError, OSError):
        pass
    envs = {"ImagePoser-v0": make_poser(), "MiniGrid-DoorKey-8x8-v0+RGBImgObsWrapper": make_minigrid()}
    results: dict[str, dict[str, list[float]]] = {k: {"steps_per_s": [], "resets_per_s": []} for k in envs}
    for r in range(args.rounds):
        for name, env in envs.items():
            results[name]["steps_per_s"].append(steps_per_second(env, args.seconds, args.seed + r))
            results[name]["resets_per_s"].append(resets_per_second(env, args.seconds / 2, args.seed + r))
    summary = {name: {k: statistics.median(v) for k, v in res.items()} for name, res in results.items()}
    poser, grid = summary.values()
    out = {
        "command": "python benchmarks/env_speed.py " + " ".join(sys.argv[1:]),
        "median_of_rounds": summary,
        "all_rounds": results,
        "ratio_steps": poser["steps_per_s"] / grid["steps_per_s"],
        "ratio_resets": poser["resets_per_s"] / grid["resets_per_s"],
        "target": "ImagePoser-v0 steps/s >= 1.0x MiniGrid's",
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(), "cores_used": 1},
        "versions": {"image-poser": poser_env.__version__, "gymnasium": gym.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    for name, s in summary.items():
        print(f"{name:45s} {s['steps_per_s']:8.0f} steps/s {s['resets_per_s']:8.0f} resets/s")
    print(f"ratio (ImagePoser / MiniGrid): steps {out['ratio_steps']:.2f}x, resets {out['ratio_resets']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
