"""The DQN bar of issue 3: DQN with the shipped default hyperparameters, 3 seeds, against
the baselines on the ImagePoser-v0 test split.

The bar: mean test success >= 90% of the oracle's, and >= 20 points above the best
single-expert baseline, with at most 15 minutes of training per seed on the project's
2-core CPU machine. Both readings of "single expert" are reported: ``best-always`` (the
same expert at every step, poser_env's ``SingleExpertPolicy``) and ``best-single`` (the
issue's definition: one text-to-image expert for the first command, then the
image-to-image expert matching each later command).

    nice python benchmarks/dqn_bar.py --out runs/dqn_bar --result benchmarks/results/dqn_bar.json

``--hyperparams KEY=VALUE ...`` overrides the YAML for DQN (``encoder=minilm-static``
measures the bar with another text encoder; the run folders' meta.json record it).

Run folders (models, replay buffers, curves) go under ``--out`` (not committed); the
summary JSON and Markdown go to ``--result``. Re-running with the same arguments reuses
finished seeds, so the measurement can be run one seed at a time (``--seeds 0`` ...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from poser_agents.benchmark import _run_dir, benchmark
from poser_agents.config import parse_override

BASELINES = ["random", "best-always", "best-single", "router", "oracle"]


def env_fingerprint() -> dict:
    """The commit and a hash of the Shapes world's source, so a result names its env."""
    import poser_env

    root = Path(poser_env.__file__).parent
    digest = hashlib.sha256()
    for f in sorted((root / "suites" / "shapes").glob("*.py")) + [
        root / "envs" / "image_poser.py",
        root / "reward.py",
    ]:
        digest.update(f.read_bytes())

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, cwd=root.parent, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    return {
        "commit": git("rev-parse", "HEAD"),
        "poser_env_uncommitted_changes": bool(git("status", "--porcelain", "poser_env")),
        "shapes_source_sha256": digest.hexdigest()[:16],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2", help="training seeds (comma-separated)")
    ap.add_argument("--episodes", type=int, default=500, help="test episodes per seed")
    ap.add_argument("--out", default="runs/dqn_bar")
    ap.add_argument("--result", default="benchmarks/results/dqn_bar.json")
    ap.add_argument("--minutes", type=float, default=15.0, help="time limit per seed in the bar")
    ap.add_argument(
        "--hyperparams",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="DQN overrides, e.g. encoder=minilm-static",
    )
    args = ap.parse_args(argv)
    overrides = dict(parse_override(o) for o in args.hyperparams)
    seeds = [int(s) for s in args.seeds.split(",")]
    fingerprint = env_fingerprint()
    state = benchmark(
        ["dqn", *BASELINES],
        "ImagePoser-v0",
        seeds=seeds,
        episodes=args.episodes,
        out_dir=args.out,
        hyperparams=overrides or None,
    )
    rows = state["rows"]

    def success(prefix: str) -> tuple[str, float]:
        name = next(n for n in rows if n == prefix or n.startswith(prefix + " ("))
        return name, rows[name]["metrics"]["success"]["mean"]

    _, dqn = success("dqn")
    _, oracle = success("oracle")
    single_name, single = success("best-single")
    always_name, always = success("best-always")
    timing = []
    for s in seeds:
        meta = json.loads((_run_dir(Path(args.out), "dqn", s) / "meta.json").read_text())
        timing.append(
            {
                "seed": s,
                "encoder": meta["config"]["encoder"],
                "wall_minutes": meta["train_wall_seconds"] / 60,
                "cpu_minutes": meta["train_cpu_seconds"] / 60,
                "timesteps": meta["timesteps_done"],
            }
        )
    within_time = all(t["wall_minutes"] <= args.minutes for t in timing)
    bar = {
        "dqn_success": dqn,
        "oracle_success": oracle,
        "ratio_to_oracle": dqn / oracle if oracle else None,
        "meets_90pct_of_oracle": dqn >= 0.9 * oracle,
        "best_single_t2i_then_matching_i2i": {
            "name": single_name,
            "success": single,
            "dqn_margin": dqn - single,
            "meets_20_points": dqn - single >= 0.20,
        },
        "best_always_same_expert": {
            "name": always_name,
            "success": always,
            "dqn_margin": dqn - always,
            "meets_20_points": dqn - always >= 0.20,
        },
        "training_time": timing,
        "within_time_limit": within_time,
    }
    result = {
        "command": "python " + " ".join(sys.argv if argv is None else [sys.argv[0], *argv]),
        "env_source": fingerprint,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "bar": bar,
        "settings": state["settings"],
        "rows": rows,
    }
    out = Path(args.result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    md = (Path(args.out) / "results.md").read_text()
    md += (
        f"\nDQN / oracle success: {dqn:.3f} / {oracle:.3f} = {bar['ratio_to_oracle']:.2f} "
        f"({'meets' if bar['meets_90pct_of_oracle'] else 'misses'} the 90% bar). "
        f"DQN - {single_name}: {dqn - single:+.3f}; DQN - {always_name}: {dqn - always:+.3f} (bar: +0.20). "
        "Training time per seed (wall / CPU minutes): "
        + ", ".join(
            f"seed {t['seed']}: {t['wall_minutes']:.1f} / {t['cpu_minutes']:.1f}" for t in timing
        )
        + "\n"
    )
    if overrides:
        md += f"DQN overrides of the shipped YAML: {overrides}.\n"
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
