"""Throughput of ImagePoser against Minigrid's DoorKey-8x8 with RGB image observations.

Random masked-policy steps per second and resets per second, every environment in the
same process and run, alternated in rounds so that machine load affects all alike, on
one core (numpy/scipy/OpenCV threads pinned to 1). The median of the rounds is reported,
in wall-clock rates (the headline) and in rates of this process's CPU time, which other
sessions' load on a shared machine disturbs less.

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
import numpy as np  # noqa: E402
import scipy  # noqa: E402

import poser_env  # noqa: E402

MINIGRID = "MiniGrid-DoorKey-8x8-v0+RGBImgObsWrapper"
DEFAULT_ENVS = ("ImagePoser-v0", "ImagePoser-v1")


def make_minigrid():
    import minigrid  # noqa: F401 - registers MiniGrid ids
    from minigrid.wrappers import RGBImgObsWrapper

    return RGBImgObsWrapper(gym.make("MiniGrid-DoorKey-8x8-v0"))


def _sample(env, masked: bool = True):
    """A random action; with ``masked``, among the valid ones where the env masks actions
    (the unmasked policy's invalid actions are cheap no-op steps)."""
    masks = getattr(env.unwrapped, "action_masks", None) if masked else None
    if masks is None:
        return env.action_space.sample()
    return env.action_space.sample(mask=masks().astype(np.int8))


def steps_per_second(env, seconds: float, seed: int, masked: bool = True) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second) of random (masked) steps."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    n = 0
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            _, _, term, trunc, _ = env.step(_sample(env, masked))
            n += 1
            if term or trunc:
                env.reset()
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def resets_per_second(env, seconds: float, seed: int) -> tuple[float, float]:
    n = 0
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        env.reset(seed=seed + n)
        n += 1
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def labeller() -> str:
    """Which connected-components routine Shapes perception uses here."""
    from poser_env.suites.shapes import perception

    try:
        from poser_env._opencv import cv2_or_none
    except ImportError:  # before issue 15: scipy only
        return "scipy"
    chosen = getattr(perception, "label_components", None)
    if chosen is getattr(perception, "_label_scipy", None) or cv2_or_none() is None:
        return "scipy"
    return "opencv"


def _versions() -> dict[str, str]:
    out = {
        "image-poser": poser_env.__version__,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    try:
        import cv2

        cv2.setNumThreads(1)
        out["opencv"] = cv2.__version__
    except ImportError:
        pass
    try:
        import minigrid

        out["minigrid"] = minigrid.__version__
    except (ImportError, AttributeError):
        pass
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--seconds", type=float, default=3.0, help="seconds per step measurement (resets: half)"
    )
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per environment")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--envs",
        nargs="+",
        default=None,
        help=f"ImagePoser ids (default: those of {DEFAULT_ENVS} that are registered)",
    )
    ap.add_argument(
        "--policy",
        choices=("masked", "uniform"),
        default="masked",
        help="random among valid actions (default) or among all (invalid ones are no-op steps)",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/env_speed.json"))
    args = ap.parse_args(argv)
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    except (AttributeError, OSError):
        pass
    versions = _versions()
    ids = args.envs or [e for e in DEFAULT_ENVS if e in gym.registry]
    envs = {name: gym.make(name) for name in ids}
    envs[MINIGRID] = make_minigrid()
    keys = ("steps_per_s", "resets_per_s", "steps_per_cpu_s", "resets_per_cpu_s")
    results: dict[str, dict[str, list[float]]] = {k: {m: [] for m in keys} for k in envs}
    for r in range(args.rounds):
        for name, env in envs.items():
            s_wall, s_cpu = steps_per_second(
                env, args.seconds, args.seed + r, args.policy == "masked"
            )
            r_wall, r_cpu = resets_per_second(env, args.seconds / 2, args.seed + r)
            for k, v in zip(keys, (s_wall, r_wall, s_cpu, r_cpu), strict=True):
                results[name][k].append(v)
    summary = {
        name: {k: statistics.median(v) for k, v in res.items()} for name, res in results.items()
    }
    grid = summary[MINIGRID]
    ratios = {
        name: {k.replace("_per_", "_ratio_per_"): summary[name][k] / grid[k] for k in keys}
        for name in ids
    }
    out = {
        "command": "python benchmarks/env_speed.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "baseline": MINIGRID,
        "policy": f"random, {args.policy}",
        "median_of_rounds": summary,
        "ratio_vs_minigrid": ratios,
        "all_rounds": results,
        "target": "each ImagePoser id >= 2.0x MiniGrid's steps/s and resets/s (issue 15)",
        "perception_labeller": labeller(),
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cores_used": 1,
            "note": "shared machine: environments alternate within each round so that load affects all alike",
        },
        "versions": versions,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'':45s} {'steps/s':>9s} {'resets/s':>9s} {'steps/cpu-s':>12s} {'resets/cpu-s':>13s}")
    for name, s in summary.items():
        print(
            f"{name:45s} {s['steps_per_s']:9.0f} {s['resets_per_s']:9.0f} "
            f"{s['steps_per_cpu_s']:12.0f} {s['resets_per_cpu_s']:13.0f}"
        )
    for name, rt in ratios.items():
        print(
            f"{name} / MiniGrid: steps {rt['steps_ratio_per_s']:.2f}x, resets {rt['resets_ratio_per_s']:.2f}x "
            f"(CPU time: steps {rt['steps_ratio_per_cpu_s']:.2f}x, "
            f"resets {rt['resets_ratio_per_cpu_s']:.2f}x); labeller {out['perception_labeller']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
