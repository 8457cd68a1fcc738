"""Command line of poser_env.

python -m poser_env demo --seed 0 --out demo.png     # one episode, picture of the trajectory
python -m poser_env experts                          # the action table of a suite
python -m poser_env suites                           # registered suites
python -m poser_env cache stats --dir .poser-cache   # generation cache: stats|clear|export
python -m poser_env cache export --dir .poser-cache --out transitions.parquet
python -m poser_env cache export --dir .poser-cache --format datasets --out transitions/
python -m poser_env pool list --address auto         # the shared Ray pools: list|shutdown
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gymnasium as gym

import poser_env  # noqa: F401 - registers the ids
from poser_env.cache import DB_NAME, EXPORT_FORMATS, GenerationCache, export_transitions
from poser_env.error import PoserError
from poser_env.paths import check_output_dir, check_output_file, image_suffixes
from poser_env.rendering import trajectory_sheet
from poser_env.suites import make_suite, registry
from poser_env.suites.shapes.policies import OraclePolicy, RandomPolicy, RouterPolicy

POLICIES = ("router", "oracle", "random")


def _policy(name: str, seed: int):
    return {"router": RouterPolicy, "oracle": OraclePolicy, "random": lambda: RandomPolicy(seed)}[
        name
    ]()


def demo(args: argparse.Namespace) -> int:
    out = check_output_file(args.out, "--out", image_suffixes())  # before the episode runs
    env = gym.make(args.env, render_mode="rgb_array")
    base = env.unwrapped
    policy = _policy(args.policy, args.seed)
    options = {"prompt": args.prompt} if args.prompt else None
    obs, info = env.reset(seed=args.seed, options=options)
    frames = []
    if base.has_image:
        frames.append({"image": base.current_image.copy(), "lines": ["source image"]})
    print(f"Prompt: {info['prompt']}")
    for i, c in enumerate(poser_env.read_details(info)["commands"], 1):
        print(f"  command {i}: {c}")
    total = 0.0
    while True:
        action = policy(env)
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        verdict = info["verdict"] or {}
        status = (
            "accepted"
            if info["accepted"]
            else ("invalid action" if info["invalid_action"] else "rejected")
        )
        if info["error"]:
            status = "error: " + info["error"]
        lines = [
            f"{base._ep.step_count}. {info['command']}",
            f"expert: {info['expert']} ({info['expert_kind']})",
            f"{status}; overall {verdict.get('overall', 0.0):.2f}, prompt {info['prompt_score']:.2f}",
        ]
        if verdict.get("reflection"):
            lines.append(verdict["reflection"])
        frames.append({"image": base.current_image.copy(), "lines": lines})
        print(
            f"step {base._ep.step_count}: {info['expert']:>16s} -> {status:8s} reward {reward:+.3f}"
        )
        if terminated or truncated:
            break
    final = {k: v for k, v in info["final_metrics"].items() if k != "episode_over"}
    # item(): the info schema holds numpy scalars, which json cannot write.
    final = {k: v.item() if hasattr(v, "item") else v for k, v in final.items()}
    print(
        "final:",
        json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in final.items()}),
    )
    sheet = trajectory_sheet(
        info.get("prompt", base.task.prompt), frames, {**final, "return": total}
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"wrote {out}")
    env.close()
    return 0


def experts(args: argparse.Namespace) -> int:
    suite = make_suite(args.suite)
    print(f"{'index':>5}  {'expert':<18} {'kind':<5} {'cost (s)':>8}  description")
    for i, e in enumerate(suite.experts):
        print(f"{i:>5}  {e.name:<18} {e.kind:<5} {e.cost:>8.1f}  {e.description}")
    return 0


def suites(args: argparse.Namespace) -> int:
    for name, spec in sorted(registry.items()):
        print(f"{name:<12} {spec.description}")
    return 0


def cache(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not (directory / DB_NAME).exists():
        print(f"No cache at {directory} (expected {directory / DB_NAME}).", file=sys.stderr)
        return 1
    if args.action == "export":  # the output is checked before the transitions are read
        if not args.out:
            where = "PATH.parquet" if args.format == "parquet" else "DIRECTORY"
            print(f"cache export --format {args.format} needs --out {where}", file=sys.stderr)
            return 2
        (check_output_file if args.format == "parquet" else check_output_dir)(args.out, "--out")
    store = GenerationCache(directory)
    if args.action == "stats":
        print(json.dumps(store.stats(), indent=2))
    elif args.action == "clear":
        before = store.stats()
        store.clear()
        print(
            f"cleared {before['entries']} entries and {before['transitions']} transitions from {directory}"
        )
    else:
        n = export_transitions(store, args.out, format=args.format)
        print(f"wrote {n} transitions to {args.out}")
    store.close()
    return 0


def pool(args: argparse.Namespace) -> int:
    from poser_env.pools.ray_pool import describe, list_pools

    if args.address is None:
        print(
            "pool needs --address (a running cluster: 'auto', 'HOST:6379' or 'ray://HOST:10001').",
            file=sys.stderr,
        )
        return 2
    apps = list_pools(args.address)
    if args.action == "list":
        if not apps:
            print("no image-poser pool runs on this cluster")
        for name, status in apps.items():
            line = f"{name}  {status}"
            if status == "RUNNING":
                manifest = describe(name, args.address)
                line += f"  suite {manifest['suite']!r}, experts {', '.join(manifest['experts'])}"
            print(line)
        return 0
    from ray import serve

    targets = [args.app] if args.app else list(apps)
    unknown = [t for t in targets if t not in apps]
    if unknown:
        print(
            f"no pool application {unknown[0]!r} on this cluster; running: {', '.join(apps) or 'none'}",
            file=sys.stderr,
        )
        return 1
    for name in targets:
        serve.delete(name)
        print(f"deleted {name}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line (exit code 2, as argparse's own)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _report(error: BaseException, verbose: bool) -> int:
    """One line on stderr (and the traceback when ``verbose``); 2 for a user's error, 1 for a bug."""
    if verbose:
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (PoserError, OSError)):
        print(f"error: {text}", file=sys.stderr)
        return 2
    hint = "" if verbose else " (run again with --verbose for the traceback)"
    print(f"error: unexpected {type(error).__name__}: {text}{hint}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["pool", "plan"]:  # the GPU memory plan parses its own options
        from poser_env.suites.diffusers.memory import main as plan_main

        return plan_main(argv[2:])
    parser = _Parser(prog="python -m poser_env", description="image-poser environment tools")
    parser.add_argument("--verbose", action="store_true", help="print the traceback of an error")
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    d = sub.add_parser(
        "demo", help="run one episode with a built-in policy and save a picture of it"
    )
    d.add_argument("--env", default="ImagePoser-v0", help="environment id (default: ImagePoser-v0)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument(
        "--policy",
        choices=POLICIES,
        default="router",
        help="built-in Shapes policy (default: router)",
    )
    d.add_argument("--prompt", default=None, help="your own prompt instead of a sampled task")
    d.add_argument("--out", default="demo.png", help="where to write the trajectory picture")
    d.set_defaults(func=demo)
    x = sub.add_parser("experts", help="print a suite's action table")
    x.add_argument("--suite", default="shapes")
    x.set_defaults(func=experts)
    s = sub.add_parser("suites", help="list registered suites")
    s.set_defaults(func=suites)
    c = sub.add_parser("cache", help="inspect, clear or export a generation cache")
    c.add_argument("action", choices=("stats", "clear", "export"))
    c.add_argument("--dir", required=True, help="the cache directory (the env's cache= argument)")
    c.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="parquet",
        help="export: a Parquet file, or a Hugging Face dataset directory "
        "(datasets.load_from_disk) (default: parquet)",
    )
    c.add_argument(
        "--out",
        default=None,
        help="export: where to write (a .parquet file, or a directory for --format datasets)",
    )
    c.set_defaults(func=cache)
    r = sub.add_parser(
        "pool",
        help="list or shut down the shared expert pools on a Ray cluster; plan: GPU memory plan",
    )
    r.add_argument(
        "action", choices=("list", "shutdown", "plan"), help="plan: see `pool plan --help`"
    )
    r.add_argument(
        "--address", default=None, help="the Ray cluster: 'auto', 'HOST:6379' or 'ray://HOST:10001'"
    )
    r.add_argument(
        "--app",
        default=None,
        help="shutdown: only this application (default: every image-poser pool)",
    )
    r.set_defaults(func=pool)
    for command in sub.choices.values():  # also accepted after the command
        command.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print the traceback of an error",
        )
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        return _report(e, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
