"""The ``poser`` command line: ``train``, ``evaluate``, ``benchmark``, ``run``, ``study``.

Examples::

    poser train --algo dqn --env ImagePoser-v0 --seed 0
    poser evaluate runs/dqn_ImagePoser-v0_s0 --episodes 200 --compare random,best-single,oracle
    poser benchmark --algos dqn,qrdqn,ppo,maskable_ppo,random,best-single,oracle --seeds 3
    poser run runs/dqn_ImagePoser-v0_s0 --prompt "Draw two red circles on the left." --out result.png
    poser study run all --quick --workers 2
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
    from poser_agents.evaluate import (
        check_baselines,
        evaluate_baselines,
        evaluate_run,
        format_table,
    )

    names = [n.strip() for n in (args.compare or "").split(",") if n.strip()]
    check_baselines(names)  # a typo fails before the agent's episodes run
    summary = evaluate_run(
        args.run,
        episodes=args.episodes,
        seed=args.seed,
        split=args.split,
        trajectories=args.trajectories,
    )
    rows = {summary["agent"]: summary}
    if names:
        rows.update(
            evaluate_baselines(
                args.run, names, episodes=args.episodes, seed=args.seed, split=args.split
            )
        )
    print(
        f"{summary['env_id']}, {args.split} split, {args.episodes} episodes from reset seed {args.seed}; mean ± 95% CI"
    )
    print(format_table(rows))
    usage = ", ".join(
        f"{k} {v['mean']:.2f}"
        for k, v in sorted(summary["usage"].items(), key=lambda kv: -kv[1]["mean"])
        if v["mean"] > 0
    )
    print(f"expert usage (share of steps): {usage}")
    print(f"wrote {Path(summary['run']) / 'eval.json'} and trajectories.png")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from poser_agents.benchmark import benchmark
    from poser_env.paths import check_output_dir

    seeds = args.seeds
    check_output_dir(args.out, "--out")
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
    print(
        f"wrote {args.out}/results.md, results.csv, results.json"
        + (", learning_curves.png" if (Path(args.out) / "learning_curves.png").exists() else "")
    )
    return 0 if state["rows"] else 1


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from poser_agents.train import load_agent
    from poser_env.paths import check_output_file, image_suffixes

    # Inputs and output first: the episode may take minutes with real models.
    out = check_output_file(args.out, "--out", image_suffixes())
    src = _read_image(args.image, "--image") if args.image else None
    agent, env, info = load_agent(args.run, split="test")
    options: dict[str, Any] = {"prompt": args.prompt}
    if src is not None:
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
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(env.unwrapped.current_image).save(out)
    print(
        f"success={final['success']} alignment={final['alignment']:.2f} steps={final['steps']} "
        f"cost={final['total_cost']:.1f}; image written to {out}"
    )
    env.close()
    return 0


def _read_image(path: str, what: str):
    """An RGB PIL image from ``path``, or a :class:`ConfigError` saying why it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    from poser_env.error import ConfigError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError as e:
        raise ConfigError(f"{what} {path!r} does not exist.") from e
    except IsADirectoryError as e:
        raise ConfigError(f"{what} {path!r} is a folder; give an image file (PNG, JPEG...).") from e
    except UnidentifiedImageError as e:
        raise ConfigError(
            f"{what} {path!r} is not an image Pillow can read; give a PNG, JPEG or WebP file."
        ) from e
    except (OSError, ValueError) as e:  # truncated or unreadable
        raise ConfigError(f"{what} {path!r} could not be read as an image: {e}.") from e


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (exit code 2, as argparse's)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _int_at_least(lo: int):
    """An argparse type: an integer >= ``lo``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)


def seeds_arg(text: str) -> int | list[int]:
    """argparse type of --seeds: a count (``3``) or a comma-separated list (``0,5,7``)."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
            if seeds and min(seeds) >= 0:
                return seeds
        elif int(text) >= 1:
            return int(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"expected a count or a comma-separated list of integers, got {text!r}"
    )


def cmd_study(args: argparse.Namespace) -> int:
    from poser_agents.study import main as study_main

    return study_main(args=args)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="poser", description="Train, evaluate and benchmark ImagePoser orchestration policies."
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train a policy and write a run folder")
    t.add_argument(
        "--algo",
        default="dqn",
        help="dqn, qrdqn, a2c, ppo, maskable_ppo, or pkg.module:Class (default dqn)",
    )
    t.add_argument("--env", default="ImagePoser-v0", help="env id (default ImagePoser-v0)")
    t.add_argument("--seed", type=non_negative_int, default=0)
    t.add_argument("--run-dir", help="output folder (default runs/<algo>_<env>_s<seed>)")
    t.add_argument(
        "--hyperparams",
        nargs="*",
        metavar="KEY=VALUE",
        help="override YAML settings, e.g. n_timesteps=20000 encoder=hashed",
    )
    t.add_argument(
        "--hyperparams-file", help="YAML file in the RL Zoo format instead of the shipped one"
    )
    t.add_argument("--resume", metavar="RUN", help="continue a run folder (e.g. after Ctrl-C)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument(
        "--no-eval", action="store_true", help="skip the test-split evaluation at the end"
    )
    t.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    t.add_argument(
        "--verbose",
        type=non_negative_int,
        nargs="?",
        const=1,
        default=0,
        help="SB3 verbosity (1 or 2); any value also prints the traceback of an error",
    )
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a run folder on held-out tasks")
    e.add_argument("run", help="run folder written by poser train")
    e.add_argument("--episodes", type=positive_int, default=200)
    e.add_argument(
        "--seed",
        type=non_negative_int,
        default=10_000,
        help="first reset seed of the test episodes",
    )
    e.add_argument("--split", default="test", help="task split: test (default), train or all")
    e.add_argument(
        "--trajectories",
        type=non_negative_int,
        default=4,
        help="episodes drawn in trajectories.png",
    )
    e.add_argument(
        "--compare",
        help="baselines evaluated on the same episodes, e.g. random,best-single,router,oracle",
    )
    e.add_argument("--verbose", action="store_true", help="print the traceback of an error")
    e.set_defaults(func=cmd_evaluate)

    b = sub.add_parser(
        "benchmark", help="several algorithms x seeds, same budget, same test episodes"
    )
    b.add_argument(
        "--algos",
        required=True,
        help="comma-separated names, e.g. dqn,ppo,random,best-single,oracle",
    )
    b.add_argument("--env", default="ImagePoser-v0")
    b.add_argument(
        "--seeds", type=seeds_arg, default=3, help="a count (0..n-1) or a comma-separated list"
    )
    b.add_argument(
        "--timesteps",
        type=positive_int,
        help="training budget of every learner (default: each YAML's n_timesteps)",
    )
    b.add_argument(
        "--episodes", type=positive_int, default=200, help="test episodes per algorithm and seed"
    )
    b.add_argument("--out", default="benchmark", help="output folder (default ./benchmark)")
    b.add_argument(
        "--hyperparams", nargs="*", metavar="KEY=VALUE", help="overrides applied to every learner"
    )
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--verbose", action="store_true", help="print the traceback of an error")
    b.set_defaults(func=cmd_benchmark)

    r = sub.add_parser("run", help="orchestrate one prompt with a trained policy")
    r.add_argument("run", help="run folder written by poser train")
    r.add_argument("--prompt", required=True)
    r.add_argument("--image", help="source image for an editing prompt")
    r.add_argument("--out", default="result.png")
    r.add_argument("--seed", type=non_negative_int, default=0)
    r.add_argument("--verbose", action="store_true", help="print the traceback of an error")
    r.set_defaults(func=cmd_run)

    from poser_agents.study import build_parser as study_parser

    s = sub.add_parser("study", help="the ablation studies: list, run (resumable), report")
    study_parser(s)
    s.set_defaults(func=cmd_study)
    return p


def report(error: BaseException, verbose: bool) -> int:
    """Print ``error`` as one line on stderr (the traceback too when ``verbose``); the exit code.

    Errors a user can cause (a :class:`PoserError`, a file that cannot be read or written)
    exit with 2, like a usage error; anything else is a bug and exits with 1.
    """
    if verbose:
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    text = " ".join(str(error).split()) or type(error).__name__  # one line
    if isinstance(error, PoserError):
        print(f"error: {text}", file=sys.stderr)
        return 2
    if isinstance(error, OSError):
        print(f"error: {text}", file=sys.stderr)
        return 2
    hint = "" if verbose else " (run again with --verbose for the traceback)"
    print(f"error: unexpected {type(error).__name__}: {text}{hint}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        return report(e, bool(getattr(args, "verbose", False)))


if __name__ == "__main__":
    raise SystemExit(main())
