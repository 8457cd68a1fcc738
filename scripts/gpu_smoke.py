"""GPU smoke test of the real-model pool: load, run a few episodes, print latency and memory.

On a CUDA machine with the weights in the Hugging Face cache (or under --model-root):

    python scripts/gpu_smoke.py --episodes 2 --out gpu_smoke.json

prints per-expert load time, per-step latency and peak GPU memory. Sized to finish in under
8 minutes on one H100 with the default pool minus the two 12B FLUX models (add them with
``--experts all``). Without a GPU, ``--dry-run`` runs the same code on tiny random models on
CPU (it checks the script, it measures nothing meaningful):

    python scripts/gpu_smoke.py --dry-run
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

FAST_SET = ["sd-turbo", "sdxl-turbo", "sd3.5-medium", "pixart-sigma", "sd-turbo-img2img",
            "sdxl-turbo-img2img", "instruct-pix2pix", "magicbrush", "sdxl-refiner"]


def main() -> None:
    parser = argparse.ArgumentParser(description="GPU smoke test of the diffusers suite.")
    parser.add_argument("--dry-run", action="store_true", help="tiny random models on CPU, no weights needed")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--experts", default="fast", help="'fast' (no FLUX), 'all', or comma-separated names")
    parser.add_argument("--critic", default="vlm", choices=["vlm", "clip", "http"])
    parser.add_argument("--extractor", default="rules", choices=["rules", "llm", "http"])
    parser.add_argument("--memory-budget-gb", type=float, default=60.0)
    parser.add_argument("--model-root", default=None)
    parser.add_argument("--out", default=None, help="write the measurements as JSON here")
    args = parser.parse_args()

    import gymnasium as gym
    import numpy as np
    import torch

    import poser_env  # noqa: F401 - registers ImagePoser-v0

    tmp = None
    if args.dry_run:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from poser_env.suites.diffusers.testing import save_tiny_vlm, tiny_pool

        tmp = tempfile.TemporaryDirectory()
        specs = tiny_pool(Path(tmp.name) / "models")
        suite_kwargs = {
            "pool": [s.to_dict() for s in specs],
            "critic": "vlm",
            "critic_kwargs": {"model": str(save_tiny_vlm(Path(tmp.name) / "vlm")), "reflection": "template"},
            "extractor": "rules",
            "device": "cpu",
            "image_size": (32, 32),
        }
        image_size = (32, 32)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("No CUDA device: run with --dry-run to check the script on CPU.")
        experts = None if args.experts == "all" else FAST_SET if args.experts == "fast" else args.experts.split(",")
        suite_kwargs = {
            "experts": experts,
            "critic": args.critic,
            "extractor": args.extractor,
            "device": "cuda",
            "memory_budget_gb": args.memory_budget_gb,
            "model_root": args.model_root,
            "image_size": (512, 512),
        }
        image_size = (128, 128)
        torch.cuda.reset_peak_memory_stats()

    env = gym.make("ImagePoser-v0", suite="diffusers", suite_kwargs=suite_kwargs, max_steps=args.max_steps,
                   image_size=image_size)
    suite = env.unwrapped.suite
    pool = suite.experts[0].pool
    latency: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    rng = np.random.default_rng(0)
    start_all = time.perf_counter()
    for ep in range(args.episodes):
        obs, _ = env.reset(seed=ep)
        done = False
        while not done:
            action = int(rng.choice(np.flatnonzero(obs["action_mask"])))
            name = suite.experts[action].name
            loads_before = len(pool.load_log)
            t0 = time.perf_counter()
            obs, reward, terminated, truncated, info = env.step(action)
            dt = time.perf_counter() - t0
            if len(pool.load_log) == loads_before:  # steps that loaded a model are reported as load time
                latency[name].append(dt)
            if info.get("error"):
                errors.append(f"{name}: {info['error']}")
            done = terminated or truncated
    env.close()
    report = {
        "device": "cpu (dry run, tiny random models)" if args.dry_run else torch.cuda.get_device_name(0),
        "wall_seconds": time.perf_counter() - start_all,
        "load_seconds": [{"model": m, "seconds": s} for m, s in pool.load_log],
        "step_latency_seconds": {k: {"n": len(v), "mean": float(np.mean(v)), "max": float(np.max(v))}
                                 for k, v in sorted(latency.items())},
        "peak_gpu_memory_gb": None if args.dry_run else torch.cuda.max_memory_allocated() / 1e9,
        "resident_models": pool.resident(),
        "errors": errors,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
