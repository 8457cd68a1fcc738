"""Collect `poser train` runs on ImagePoser-v1 into one JSON and a Markdown table (issue 11).

    python scripts/v1_dqn.py RUN_DIR [RUN_DIR ...] --oracle 0.85 --out benchmarks/results/v1_dqn.json

Each run folder's ``meta.json`` (command, config, train CPU and wall seconds) and
``eval.json`` (the end-of-training evaluation on the test split) are read; nothing is
re-run. Per state and step budget, the seeds are pooled: mean of the per-seed successes
and a 95% CI over all evaluation episodes (a normal interval on the pooled rate).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path


def read_run(run: Path) -> dict:
    meta = json.loads((run / "meta.json").read_text())
    ev = json.loads((run / "eval.json").read_text())
    cfg = meta["config"]
    m = ev["metrics"]
    return {
        "run": run.name,
        "command": meta["command"],
        "state": cfg["state"],
        "encoder": cfg["encoder"],
        "seed": ev["train_seed"],
        "timesteps": cfg["n_timesteps"],
        "train_cpu_seconds": round(meta["train_cpu_seconds"], 1),
        "train_wall_seconds": round(meta["train_wall_seconds"], 1),
        "eval_split": ev["split"],
        "eval_episodes": ev["episodes"],
        "success": m["success"]["mean"],
        "success_ci95": m["success"]["ci95"],
        "steps": m["steps"]["mean"],
        "total_cost": m["total_cost"]["mean"],
        "return": m["return"]["mean"],
    }


def pooled(runs: list[dict]) -> dict:
    n = sum(r["eval_episodes"] for r in runs)
    p = sum(r["success"] * r["eval_episodes"] for r in runs) / n
    return {
        "seeds": sorted(r["seed"] for r in runs),
        "success": p,
        "success_ci95": 1.96 * math.sqrt(p * (1 - p) / n),
        "per_seed": [r["success"] for r in sorted(runs, key=lambda r: r["seed"])],
        "max_train_wall_seconds": max(r["train_wall_seconds"] for r in runs),
        "max_train_cpu_seconds": max(r["train_cpu_seconds"] for r in runs),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--oracle", type=float, required=True, help="oracle success (test split)")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    runs = [read_run(r) for r in args.runs]
    groups = defaultdict(list)
    for r in runs:
        groups[(r["state"], r["timesteps"])].append(r)
    summary = {f"{s}|{t}": pooled(g) for (s, t), g in sorted(groups.items())}
    out = {"env": "ImagePoser-v1", "oracle": args.oracle, "note": args.note}
    out |= {"summary": summary, "runs": runs}
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(
        "| state | steps | seeds | success (test) | per seed | share of the oracle | max train CPU s (wall s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for key, s in summary.items():
        state, steps = key.split("|")
        print(
            f"| `{state}` | {int(steps):,} | {len(s['seeds'])} | {s['success']:.3f} ± {s['success_ci95']:.3f} "
            f"| {', '.join(f'{x:.3f}' for x in s['per_seed'])} | {s['success'] / args.oracle:.0%} "
            f"| {s['max_train_cpu_seconds']:.0f} ({s['max_train_wall_seconds']:.0f}) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
