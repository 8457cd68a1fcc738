"""The ``poser`` command line: ``train``, ``evaluate``, ``benchmark``, ``run``.

Examples::

    poser train --algo dqn --env ImagePoser-v0 --seed 0
    poser evaluate runs/dqn_ImagePoser-v0_s0 --episodes 200 --compare random,best-single,oracle
    poser benchmark --algos dqn,qrdqn,ppo,maskable_ppo,random,best-single,oracle --seeds 3
    poser run runs/dqn_ImagePoser-v0_s0 --prompt "Draw two red circles on the left." --out result.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from poser_env.error import PoserError


def _overrides(items: list[str] | None) -> dict[str, Any]:
    from poser_agents.config import parse_override

    return dict(parse_override(t) for t in (items or []))


def cmd_train(args: argparse.Namespace) -> int:
    from poser_agents.train import train

    path = train(
        algo=args.algo,
        env_id=args.env,
        seed=args.seed,
        run_dir=args.run_dir,
        hyperparams=_overrides(args.hyperparams),
        hyperparams_file=args.hyperparams_file,
        progress_bar=not args.no_progress,
        evaluate=not args.no_eval,
        resume=args.resume,
        threads=args.threads,
        verbose=args.verbose,
    )
    print(f"run folder: {path}")
    eval_path = path / "eval.json"
    if eval_path.is_file():
        from poser_agents.evaluate import format_table

        summary = json.loads(eval_path.read_text())
        print(f"test split, {summary['episodes']} episodes:")
        print(format_table({summary["agent"]: summary}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from poser_agents.baselines import make_baseline, t2i_experts
    from poser_agents.config import make_raw_env
    from poser_agents.evaluate import evaluate_run, format_table, run_episodes, summarise

    summary = evaluate_run(args.run, episodes=args.episodes, seed=args.seed, split=args.split, trajectories=args.trajectories)
    rows = {summary["agent"]: summary}
    if args.compare:
        env = make_raw_env(summary["env_id"], split=args.split)
        for name in [n.strip() for n in args.compare.split(",") if n.strip()]:
            if name == "best-single":
                cands = {c: summarise(run_episodes(make_baseline(c, env), env, args.episodes, args.seed)[0]) for c in (f"single:{n}" for n in t2i_experts(env))}
                best = max(cands, key=lambda c: cands[c]["metrics"]["success"]["mean"])
                rows[f"best-single ({best})"] = cands[best]
            else:
                rows[name] = summarise(run_episodes(make_baseline(name, env, summary["train_seed"]), env, args.episodes, args.seed)[0])
        env.close()
    print(f"{summary['env_id']}, {args.split} split, {args.episodes} episodes from reset seed {args.seed}; mean ± 95% CI")
    print(format_table(rows))
    usage = ", ".join(f"{k} {v['mean']:.2f}" for k, v in sorted(summary["usage"].items(), key=lambda kv: -kv[1]["mean"]) if v["mean"] > 0)
    print(f"expert usage (share of steps): {usage}")
    print(f"wrote {Path(summary['run']) / 'eval.json'} and trajectories.png")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from poser_agents.benchmark import benchmark

    seeds: Any = args.seeds
    if "," in seeds:
        seeds = [int(s) for s in seeds.split(",")]
    else:
        try:
            seeds = int(seeds)
        except ValueError as e:
            raise SystemExit(f"error: --seeds must be a count or a comma-separated list of integers, got {args.seeds!r}") from e
    state = benchmark(
        algos=[a.strip() for a in args.algos.split(",") if a.strip()],
        env_id=args.env,
        seeds=seeds,
        n_timesteps=args.timesteps,
        episodes=args.episodes,
        out_dir=args.out,
        hyperparams=_overrides(args.hyperparams),
        progress_bar=not args.no_progress,
    )
    print((Path(args.out) / "results.md").read_text())
    print(f"wrote {args.out}/results.md, results.csv, results.json" + (", learning_curves.png" if (Path(args.out) / "learning_curves.png").exists() else ""))
    return 0 if state["rows"] else 1


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from poser_agents.train import load_agent

    agent, env, info = load_agent(args.run, split="test")
    options: dict[str, Any] = {"prompt": args.prompt}
    if args.image:
        src = Image.open(args.image).convert("RGB")
        h, w = env.unwrapped.suite.image_size
        options["image"] = np.asarray(src.resize((w, h)))
    obs, reset_info = env.reset(seed=args.seed, options=options)
    print(f"prompt: {reset_info['prompt']}")
    for i, c in enumerate((c.text for c in env.unwrapped.plan.commands), 1):
        print(f"  command {i}: {c}")
    step = 0
    while True:
        step += 1
        action = agent.act(obs, env)
        obs, reward, terminated, truncated, step_info = env.step(action)
        verdict = "accepted" if step_info["accepted"] else "rejected"
        print(f"step {step}: {step_info['expert']:16s} on {step_info['command']!r}: {verdict}")
        if terminated or truncated:
            break
    final = step_info["final_metrics"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(env.unwrapped.current_image).save(out)
    print(
        f"success={final['success']} alignment={final['alignment']:.2f} steps={final['steps']} "
        f"cost={final['total_cost']:.1f}; image written to {out}"
    )
    env.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="poser", description="Train, evaluate and benchmark ImagePoser orchestration policies.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a policy and write a run folder")
    t.add_argument("--algo", default="dqn", help="dqn, qrdqn, a2c, ppo, maskable_ppo, or pkg.module:Class (default dqn)")
    t.add_argument("--env", default="ImagePoser-v0", help="env id (default ImagePoser-v0)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--run-dir", help="output folder (default runs/<algo>_<env>_s<seed>)")
    t.add_argument("--hyperparams", nargs="*", metavar="KEY=VALUE", help="override YAML settings, e.g. n_timesteps=20000 encoder=hashed")
    t.add_argument("--hyperparams-file", help="YAML file in the RL Zoo format instead of the shipped one")
    t.add_argument("--resume", metavar="RUN", help="continue a run folder (e.g. after Ctrl-C)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--no-eval", action="store_true", help="skip the test-split evaluation at the end")
    t.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    t.add_argument("--verbose", type=int, default=0)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a run folder on held-out tasks")
    e.add_argument("run", help="run folder written by poser train")
    e.add_argument("--episodes", type=int, default=200)
    e.add_argument("--seed", type=int, default=10_000, help="first reset seed of the test episodes")
    e.add_argument("--split", default="test", help="task split: test (default), train or all")
    e.add_argument("--trajectories", type=int, default=4, help="episodes drawn in trajectories.png")
    e.add_argument("--compare", help="baselines evaluated on the same episodes, e.g. random,best-single,router,oracle")
    e.set_defaults(func=cmd_evaluate)

    b = sub.add_parser("benchmark", help="several algorithms x seeds, same budget, same test episodes")
    b.add_argument("--algos", required=True, help="comma-separated names, e.g. dqn,ppo,random,best-single,oracle")
    b.add_argument("--env", default="ImagePoser-v0")
    b.add_argument("--seeds", default="3", help="a count (0..n-1) or a comma-separated list")
    b.add_argument("--timesteps", type=int, help="training budget of every learner (default: each YAML's n_timesteps)")
    b.add_argument("--episodes", type=int, default=200, help="test episodes per algorithm and seed")
    b.add_argument("--out", default="benchmark", help="output folder (default ./benchmark)")
    b.add_argument("--hyperparams", nargs="*", metavar="KEY=VALUE", help="overrides applied to every learner")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=cmd_benchmark)

    r = sub.add_parser("run", help="orchestrate one prompt with a trained policy")
    r.add_argument("run", help="run folder written by poser train")
    r.add_argument("--prompt", required=True)
    r.add_argument("--image", help="source image for an editing prompt")
    r.add_argument("--out", default="result.png")
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PoserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
