"""The reference table of ImagePoser-v1 (or any id): random, every single expert, every
fixed t2i -> i2i pipeline, the kind-router, the word-router, the plan oracle, the oracle
and the lookahead planner, on the train and test splits, mean success ± 95% CI.

    python scripts/v1_table.py --episodes 1000 --workers 2 --out benchmarks/results/v1_table.json

Pipelines and single experts are many rows; ``--screen N`` evaluates them on N episodes
first and only the best of each on the full count (the table keeps the screening rows).
``--routes`` prints the kind-router's best table (per command kind, the expert with the
best mean P(success) * P(preserved) over the states the oracle meets) and exits.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import gymnasium as gym
import numpy as np

import poser_env  # noqa: F401 - registers the ids
from poser_env.suites.shapes.perception import perceive
from poser_env.suites.shapes.policies import (
    KindRouterPolicy,
    LookaheadPolicy,
    OraclePolicy,
    PipelinePolicy,
    PlanOraclePolicy,
    RandomPolicy,
    SingleExpertPolicy,
    WordRouterPolicy,
)
from poser_env.suites.shapes.scene import Scene


def make_policy(name: str):
    if name == "random":
        return RandomPolicy(0)
    if name == "oracle":
        return OraclePolicy()
    if name == "kind-router":
        return KindRouterPolicy()
    if name == "word-router":
        return WordRouterPolicy()
    if name == "plan-oracle":
        return PlanOraclePolicy()
    if name == "lookahead":
        return LookaheadPolicy()
    if name.startswith("always:"):
        return SingleExpertPolicy(name.split(":", 1)[1])
    if name.startswith("pipeline:"):
        a, b = name.split(":", 1)[1].split(">")
        return PipelinePolicy(a, b)
    raise ValueError(f"unknown policy {name!r}")


def run(job: tuple) -> dict:
    env_id, split, name, episodes, seed, critic_errors = job
    suite_kwargs = {**gym.spec(env_id).kwargs.get("suite_kwargs", {}), "split": split}
    if critic_errors is not None:
        suite_kwargs["critic_errors"] = critic_errors
    env = gym.make(env_id, suite_kwargs=suite_kwargs).unwrapped
    policy = make_policy(name)
    succ, steps, cost, ret, accepted = [], [], [], [], []
    t0 = time.perf_counter()
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
        accepted.append(m["commands_done"] == m["commands_total"])
        ret.append(total)
    s = np.array(succ, float)
    return {
        "env": env_id,
        "split": split,
        "policy": name,
        "episodes": episodes,
        "success": float(s.mean()),
        "success_ci95": float(1.96 * s.std(ddof=1) / np.sqrt(len(s))) if len(s) > 1 else 0.0,
        "critic_all_accepted": float(np.mean(accepted)),
        "steps": float(np.mean(steps)),
        "cost": float(np.mean(cost)),
        "return": float(np.mean(ret)),
        "seconds": time.perf_counter() - t0,
    }


def routes(env_id: str, episodes: int) -> dict[str, str]:
    """Per command kind, the expert with the best mean P(success) * P(preserved)."""
    env = gym.make(env_id).unwrapped
    oracle = OraclePolicy()
    totals: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for ep in range(episodes):
        env.reset(seed=ep)
        while True:
            cmd = env.current_command
            has = env.progress_has_image
            scene = perceive(env.current_image).scene if has else Scene((), "plain")
            kind = cmd.kind if has else "generate"
            mask = env.action_masks()
            v = np.array(
                [
                    e.success_probability(cmd, scene) * e.preservation_probability(cmd, scene)
                    if mask[i]
                    else 0.0
                    for i, e in enumerate(env.experts)
                ]
            )
            totals[kind] = totals.get(kind, 0) + v
            counts[kind] = counts.get(kind, 0) + 1
            _, _, term, trunc, _ = env.step(oracle(env))
            if term or trunc:
                break
    out = {}
    for kind, tot in totals.items():
        mean = tot / counts[kind]
        out[kind] = env.expert_names[int(mean.argmax())]
        print(
            kind,
            counts[kind],
            {n: round(float(m), 3) for n, m in zip(env.expert_names, mean, strict=True)},
        )
    return out


LABELS = {
    "lookahead": "lookahead planner (simulator copies, oracle rollouts)",
    "oracle": "oracle (skill model + actual image)",
    "plan-oracle": "plan oracle (skill model + the scene the text implies)",
    "word-router": "word-router (command words, plain uncluttered image assumed)",
    "kind-router": "kind-router (one expert per command kind)",
    "random": "uniform random (masked)",
}


def markdown(result: dict) -> str:
    """The table of each split: success ± 95% CI, steps, cost, return, time."""
    out = []
    for split in dict.fromkeys(r["split"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["split"] == split and not r.get("screening")]
        screened = [r for r in result["rows"] if r["split"] == split and r.get("screening")]
        out.append(
            f"| policy ({split} split, {rows[0]['episodes']} episodes) | success | steps | cost (s) | return |"
        )
        out.append("|---|---|---|---|---|")
        order = ["lookahead", "oracle", "plan-oracle", "word-router", "kind-router"]
        rows.sort(
            key=lambda r: (
                order.index(r["policy"]) if r["policy"] in order else len(order),
                -r["success"],
            )
        )
        for r in rows:
            name = LABELS.get(r["policy"], r["policy"])
            if r["policy"].startswith("pipeline:"):
                name = (
                    f"best of {sum(x['policy'].startswith('pipeline:') for x in screened)} "
                    f"fixed pipelines (`{r['policy'][9:]}`)"
                )
            elif r["policy"].startswith("always:"):
                name = (
                    f"best of {sum(x['policy'].startswith('always:') for x in screened)} "
                    f"single experts (`{r['policy'][7:]}`)"
                )
            out.append(
                f"| {name} | {r['success']:.3f} ± {r['success_ci95']:.3f} | {r['steps']:.2f} "
                f"| {r['cost']:.1f} | {r['return']:.2f} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="ImagePoser-v1")
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument(
        "--screen", type=int, default=200, help="episodes for screening singles and pipelines"
    )
    ap.add_argument("--seed", type=int, default=10_000)
    ap.add_argument("--splits", default="train,test")
    ap.add_argument(
        "--policies", default="random,kind-router,word-router,plan-oracle,oracle,lookahead"
    )
    ap.add_argument("--no-screen", action="store_true", help="skip singles and pipelines")
    ap.add_argument("--critic-errors", type=float, default=None)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--routes", action="store_true")
    ap.add_argument(
        "--markdown", type=Path, help="print the tables of a result JSON as Markdown and exit"
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    if args.routes:
        print(routes(args.env, args.episodes))
        return 0
    env = gym.make(args.env).unwrapped
    t2i = [e.name for e in env.experts if e.kind == "t2i"]
    i2i = [e.name for e in env.experts if e.kind == "i2i"]
    splits = args.splits.split(",")
    t0 = time.perf_counter()
    rows: list[dict] = []
    pool = ProcessPoolExecutor(args.workers) if args.workers > 1 else None
    mapper = pool.map if pool else map

    def show(row):
        rows.append(row)
        print(
            f"{row['split']:5s} {row['policy']:42s} n={row['episodes']:5d} "
            f"success {row['success']:.3f} ± {row['success_ci95']:.3f}"
            f"  steps {row['steps']:.2f}  cost {row['cost']:.1f}  return {row['return']:.2f}",
            flush=True,
        )

    best = {}
    if not args.no_screen:
        screen = [f"always:{n}" for n in env.expert_names] + [
            f"pipeline:{a}>{b}" for a, b in itertools.product(t2i, i2i)
        ]
        for split in splits:
            jobs = [
                (args.env, split, n, args.screen, args.seed, args.critic_errors) for n in screen
            ]
            res = list(mapper(run, jobs))
            for r in res:
                r["screening"] = True
                show(r)
            for prefix in ("always:", "pipeline:"):
                cand = [r for r in res if r["policy"].startswith(prefix)]
                best[(split, prefix)] = max(cand, key=lambda r: r["success"])["policy"]
    jobs = []
    for split in splits:
        names = args.policies.split(",") + [
            best[(split, p)] for p in ("always:", "pipeline:") if (split, p) in best
        ]
        jobs += [(args.env, split, n, args.episodes, args.seed, args.critic_errors) for n in names]
    for r in mapper(run, jobs):
        show(r)
    if pool:
        pool.shutdown()
    result = {
        "command": "python " + " ".join(sys.argv),
        "env": args.env,
        "episodes": args.episodes,
        "screen_episodes": args.screen,
        "seed": args.seed,
        "critic_errors": args.critic_errors,
        "seconds": time.perf_counter() - t0,
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
