"""Env overhead of the 'diffusers' suite: ImagePoser-v0 step time against the raw model calls inside it.

With tiny random models on CPU, every env step is timed end to end, and the time spent
inside the raw model calls it makes (the diffusers pipeline ``__call__`` and the critic
VLM's forward/generate) is measured by wrapping those calls. The overhead is

    overhead % = 100 * (step time - raw model time) / raw model time

i.e. everything the environment and the suite add around the models (extractor, prompt
handling, image conversion and resizing, reward, observation building, info). Tiny models
make the raw time small, so this is a pessimistic bound: with real models the same
absolute overhead is a far smaller fraction.

    python benchmarks/overhead.py --steps 60 --out benchmarks/results/overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="env steps to time (after warm-up)")
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/overhead.json")
    args = parser.parse_args()

    import diffusers
    import gymnasium as gym
    import numpy as np
    import torch
    import transformers

    import poser_env  # noqa: F401 - registers ImagePoser-v0
    from poser_env.suites.diffusers.testing import save_tiny_vlm, tiny_pool

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    raw = {"seconds": 0.0, "calls": 0}
    depth = [0]

    def timed(fn):
        # Only the outermost model call counts (generate calls forward inside).
        def wrapper(*a, **k):
            depth[0] += 1
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    raw["seconds"] += time.perf_counter() - start
                    raw["calls"] += 1

        return wrapper

    # Wrap the raw model calls: every diffusers pipeline call, the VLM forward and generate.
    for cls in {diffusers.StableDiffusionPipeline, diffusers.StableDiffusionImg2ImgPipeline,
                diffusers.StableDiffusionInstructPix2PixPipeline}:
        cls.__call__ = timed(cls.__call__)
    llava = transformers.LlavaForConditionalGeneration
    llava.forward = timed(llava.forward)
    llava.generate = timed(llava.generate)

    with tempfile.TemporaryDirectory() as tmp:
        specs = tiny_pool(Path(tmp) / "models")
        vlm = str(save_tiny_vlm(Path(tmp) / "vlm"))
        env = gym.make(
            "ImagePoser-v0",
            suite="diffusers",
            suite_kwargs={
                "pool": [s.to_dict() for s in specs],
                "critic": "vlm",
                "critic_kwargs": {"model": vlm, "reflection": "template"},
                "extractor": "rules",
                "device": "cpu",
                "image_size": (32, 32),
            },
            max_steps=6,
            image_size=(32, 32),
        )
        rng = np.random.default_rng(args.seed)
        obs, _ = env.reset(seed=args.seed)
        step_seconds, done_steps = 0.0, 0
        total = args.warmup + args.steps
        for i in range(total):
            valid = np.flatnonzero(obs["action_mask"])
            action = int(rng.choice(valid))
            if i == args.warmup:
                raw["seconds"], raw["calls"] = 0.0, 0
            start = time.perf_counter()
            obs, _, terminated, truncated, info = env.step(action)
            if i >= args.warmup:
                step_seconds += time.perf_counter() - start
                done_steps += 1
            if info.get("error"):
                raise RuntimeError(f"step failed: {info['error']}")
            if terminated or truncated:
                obs, _ = env.reset()
        env.close()

    overhead = 100.0 * (step_seconds - raw["seconds"]) / raw["seconds"]
    result = {
        "benchmark": "diffusers suite env overhead (tiny random models, CPU)",
        "command": "python benchmarks/overhead.py " + f"--steps {args.steps} --warmup {args.warmup} --seed {args.seed}",
        "steps": done_steps,
        "step_seconds_total": step_seconds,
        "raw_model_seconds_total": raw["seconds"],
        "raw_model_calls": raw["calls"],
        "mean_step_ms": 1000 * step_seconds / done_steps,
        "mean_raw_ms_per_step": 1000 * raw["seconds"] / done_steps,
        "overhead_percent": overhead,
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "diffusers": diffusers.__version__, "transformers": transformers.__version__},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
