"""Measure the Shapes world's baselines: random, every single expert, every fixed
t2i -> i2i pipeline, and the oracle, on the default task distribution.

    python scripts/shapes_table.py --episodes 500 --out benchmarks/results/shapes_table.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from poser_env.envs.image_poser import ImagePoserEnv
from poser_env.suites.shapes.policies import (
    OraclePolicy,
    PipelinePolicy,
    RandomPolicy,
    RouterPolicy,
    SingleExpertPolicy,
)


def run(env: ImagePoserEnv, policy, episodes: int, seed: int) -> dict:
    succ, steps, cost, ret = [], [], [], []
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        total = 0.0
        while True:
            _, r, term, trunc, info = env.step(policy(env))
            total += r
            if term or trunc:
                break
        m = info["final_metrics"]
        succ.append(m["success"])
        steps.append(m["steps"])
        cost.append(m["total_cost"])
        ret.append(total)
    s = np.array(succ, float)
    return {
        "policy": policy.name,
        "success": float(s.mean()),
        "success_ci95": float(1.96 * s.std(ddof=1) / np.sqrt(len(s))) if len(s) > 1 else 0.0,
        "steps": float(np.mean(steps)),
        "cost": float(np.mean(cost)),
        "return": float(np.mean(ret)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--seed", type=int, default=10_000)
    ap.add_argument("--split", default="test")
    ap.add_argument("--difficulty", default="medium")
    ap.add_argument(
        "--pipelines", action="store_true", help="also every fixed t2i -> i2i pipeline (36)"
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    env = ImagePoserEnv(suite_kwargs={"split": args.split, "difficulty": args.difficulty})
    t2i = [e.name for e in env.experts if e.kind == "t2i"]
    i2i = [e.name for e in env.experts if e.kind == "i2i"]
    policies = [
        RandomPolicy(0),
        *[SingleExpertPolicy(n) for n in env.expert_names],
        RouterPolicy(),
        OraclePolicy(),
    ]
    if args.pipelines:
        policies += [PipelinePolicy(a, b) for a, b in itertools.product(t2i, i2i)]
    rows = []
    t0 = time.perf_counter()
    for pol in policies:
        row = run(env, pol, args.episodes, args.seed)
        rows.append(row)
        print(
            f"{row['policy']:40s} success {row['success']:.3f} ± {row['success_ci95']:.3f}  "
            f"steps {row['steps']:.2f}  cost {row['cost']:.1f}  return {row['return']:.2f}",
            flush=True,
        )
    result = {
        "command": "python " + " ".join(sys.argv),
        "episodes": args.episodes,
        "split": args.split,
        "difficulty": args.difficulty,
        "seconds": time.perf_counter() - t0,
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
