"""Evaluate agents on held-out tasks: means and 95% confidence intervals.

Every agent is evaluated on the same episodes (reset seeds ``seed, seed + 1, ...`` on the
test split), so differences between agents are not differences in tasks. Metrics per
episode: success, alignment, fidelity, aesthetics (from ``info["final_metrics"]``, scored
against the task's reference constraints), steps, total expert cost, return, invalid
actions, and each expert's share of the steps. :func:`summarise` pools episodes (over one
or several training seeds) and reports ``mean`` and ``ci95``, the half-width of the 95%
Student-t interval of the mean; with several seeds it also reports the spread of the
per-seed means.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from scipy import stats

from poser_agents.algos import BASELINE_NAMES, BASELINE_PREFIXES, is_baseline
from poser_agents.baselines import make_baseline, t2i_experts
from poser_agents.config import EVAL_SEED, make_raw_env, read_run
from poser_agents.error import AgentsConfigError, close_hint
from poser_agents.loading import load_agent
from poser_agents.plots import trajectory_figure
from poser_env.paths import check_output_file

METRICS: tuple[str, ...] = (
    "success",
    "alignment",
    "fidelity",
    "aesthetics",
    "steps",
    "total_cost",
    "return",
    "invalid_actions",
)


def run_episodes(
    agent: Any,
    env: gym.Env,
    episodes: int,
    seed: int = EVAL_SEED,
    trajectories: int = 0,
    train_seed: int = 0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Roll out ``agent`` (an :class:`~poser_agents.algos.Agent`) for ``episodes`` episodes.

    Args:
        agent: Has ``act(observation, env) -> int``.
        env: The evaluation env (encoded for learned agents, raw for baselines).
        episodes: Number of episodes; episode ``i`` resets with seed ``seed + i``.
        seed: First reset seed.
        trajectories: Record prompt, commands, experts, images and verdicts of this many
            first episodes (for :func:`poser_agents.plots.trajectory_figure`).
        train_seed: Stored in each record (which training seed the agent came from).

    Returns:
        ``(records, trajectories)``: one dict per episode, and the recorded trajectories.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise AgentsConfigError(f"episodes must be an integer >= 1, got {episodes!r}.")
    names = list(env.unwrapped.expert_names)
    records, trajs = [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        traj = (
            {"prompt": info["prompt"], "task_kind": info["task_kind"], "steps": []}
            if ep < trajectories
            else None
        )
        usage = np.zeros(len(names))
        total, invalid = 0.0, 0
        while True:
            action = int(agent.act(obs, env))
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            usage[action] += 1
            invalid += int(info["invalid_action"])
            if traj is not None:
                verdict = info.get("verdict") or {}
                traj["steps"].append(
                    {
                        "command": info["command"],
                        "expert": info["expert"],
                        "accepted": bool(info["accepted"]),
                        "alignment": float(verdict.get("alignment", 0.0)),
                        "feedback": verdict.get("reflection", "") or "",
                        "image": np.array(env.unwrapped.current_image),
                    }
                )
            if terminated or truncated:
                break
        final = info["final_metrics"]
        steps = max(1, int(final["steps"]))
        rec = {
            "train_seed": train_seed,
            "episode": ep,
            "success": float(final["success"]),
            "alignment": float(final["alignment"]),
            "fidelity": float(final["fidelity"]),
            "aesthetics": float(final["aesthetics"]),
            "steps": float(final["steps"]),
            "total_cost": float(final["total_cost"]),
            # what the reward critic believed (differs from success with an imperfect critic)
            "critic_success": float(final.get("critic_success", final["success"])),
            "critic_alignment": float(final.get("critic_alignment", final["alignment"])),
            "return": float(total),
            "invalid_actions": float(invalid),
            "usage": {n: float(u / steps) for n, u in zip(names, usage, strict=False)},
        }
        records.append(rec)
        if traj is not None:
            traj["final"] = {k: final[k] for k in ("success", "alignment", "steps", "total_cost")}
            trajs.append(traj)
    return records, trajs


def ci95(values: Sequence[float]) -> float:
    """Half-width of the 95% Student-t confidence interval of the mean (0 for n < 2)."""
    x = np.asarray(values, float)
    if x.size < 2:
        return 0.0
    sem = x.std(ddof=1) / np.sqrt(x.size)
    return float(stats.t.ppf(0.975, x.size - 1) * sem)


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and 95% CI of every metric and of each expert's usage share.

    Returns:
        ``{"episodes": n, "seeds": k, "metrics": {m: {"mean", "ci95", "seed_std"}},
        "usage": {expert: {"mean", "ci95"}}}``.
    """
    if not records:
        raise AgentsConfigError("summarise() needs at least one episode record, got none.")
    seeds = sorted({r["train_seed"] for r in records})
    out: dict[str, Any] = {
        "episodes": len(records),
        "seeds": len(seeds),
        "metrics": {},
        "usage": {},
    }
    for m in METRICS:
        vals = [r[m] for r in records]
        per_seed = [np.mean([r[m] for r in records if r["train_seed"] == s]) for s in seeds]
        out["metrics"][m] = {
            "mean": float(np.mean(vals)),
            "ci95": ci95(vals),
            "seed_std": float(np.std(per_seed, ddof=1)) if len(seeds) > 1 else 0.0,
        }
    for name in records[0]["usage"]:
        vals = [r["usage"][name] for r in records]
        out["usage"][name] = {"mean": float(np.mean(vals)), "ci95": ci95(vals)}
    return out


def format_table(
    rows: dict[str, dict[str, Any]],
    metrics: Sequence[str] = (
        "success",
        "alignment",
        "fidelity",
        "aesthetics",
        "steps",
        "total_cost",
    ),
) -> str:
    """A Markdown table: one row per agent, ``mean ± ci95`` per metric."""
    head = "| agent | " + " | ".join(metrics) + " |"
    sep = "|---|" + "---|" * len(metrics)
    lines = [head, sep]
    for name, summ in rows.items():
        cells = []
        for m in metrics:
            v = summ["metrics"][m]
            cells.append(f"{v['mean']:.3f} ± {v['ci95']:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Baselines that pick, on the evaluation episodes, the best of several candidates.
BEST_OF = ("best-single", "best-always")


def best_candidates(name: str, env: gym.Env) -> list[str]:
    """What ``best-single`` (every ``single:<t2i expert>``) or ``best-always``
    (every ``always:<expert>``) picks from."""
    return (
        [f"single:{n}" for n in t2i_experts(env)]
        if name == "best-single"
        else [f"always:{n}" for n in env.unwrapped.expert_names]
    )


def pick_best(summaries: dict[str, dict[str, Any]]) -> str:
    """The candidate whose summary has the highest mean success (the first of equals)."""
    return max(summaries, key=lambda c: summaries[c]["metrics"]["success"]["mean"])


def check_baselines(names: Sequence[str]) -> None:
    """Refuse a name that is not a baseline (before any episode runs).

    Raises:
        AgentsConfigError: Naming the bad name, the closest baseline and the known ones.
    """
    known = [*BASELINE_NAMES, *(p + "<expert>" for p in BASELINE_PREFIXES)]
    for name in names:
        if not is_baseline(name):
            raise AgentsConfigError(
                f"Unknown baseline {name!r} in --compare.{close_hint(name, known)} Known baselines: {', '.join(known)}."
            )


def baseline_env(run_dir: str | Path, split: str = "test") -> gym.Env:
    """The raw env the baselines of a run are compared on: built from the run's full saved
    env configuration (env id, ``env_kwargs`` with its ``suite_kwargs``), exactly as the
    agent's own evaluation env is, without the observation encoder.
    """
    info = read_run(run_dir, need_model=False)
    return make_raw_env(info.env_id, info.config.get("env_kwargs"), split=split)


def evaluate_baselines(
    run_dir: str | Path,
    names: Sequence[str],
    episodes: int = 200,
    seed: int = EVAL_SEED,
    split: str = "test",
) -> dict[str, dict[str, Any]]:
    """Evaluate baselines on the same episodes and the same env configuration as a run.

    Args:
        run_dir: A folder written by :func:`poser_agents.train.train`.
        names: Baseline names (see :func:`poser_agents.baselines.make_baseline`), plus
            ``best-single`` (the best ``single:<t2i>``, picked on these episodes) and
            ``best-always`` (the best ``always:<expert>``).
        episodes: Episodes per baseline; episode ``i`` resets with seed ``seed + i``.
        seed: First reset seed (the agent's evaluation uses the same).
        split: Task split.

    Returns:
        ``{row name: summary}`` (see :func:`summarise`).
    """
    check_baselines(names)
    info = read_run(run_dir, need_model=False)
    rows: dict[str, dict[str, Any]] = {}
    env = baseline_env(run_dir, split)
    try:
        for name in names:
            if name in BEST_OF:
                cands = {
                    c: summarise(run_episodes(make_baseline(c, env), env, episodes, seed)[0])
                    for c in best_candidates(name, env)
                }
                best = pick_best(cands)
                rows[f"{name} ({best})"] = cands[best]
            else:
                rows[name] = summarise(
                    run_episodes(make_baseline(name, env, info.seed), env, episodes, seed)[0]
                )
    finally:
        env.close()
    return rows


def evaluate_run(
    run_dir: str | Path,
    episodes: int = 200,
    seed: int = EVAL_SEED,
    split: str = "test",
    trajectories: int = 4,
    write: bool = True,
) -> dict[str, Any]:
    """Evaluate a run folder's model; write ``eval.json`` and ``trajectories.png``.

    Returns:
        The summary (see :func:`summarise`) with the evaluation settings.
    """
    agent, env, info = load_agent(run_dir, split=split)
    if write:  # before the episodes, which may take long
        try:
            check_output_file(info.path / "eval.json", "the run folder's eval.json")
        except BaseException:
            env.close()
            raise
    try:
        records, trajs = run_episodes(
            agent, env, episodes, seed=seed, trajectories=trajectories, train_seed=info.seed
        )
    finally:
        env.close()
    summary = summarise(records)
    summary.update(
        {
            "agent": info.algo,
            "run": str(info.path),
            "env_id": info.env_id,
            "split": split,
            "eval_seed": seed,
            "train_seed": info.seed,
        }
    )
    if write:
        (info.path / "eval.json").write_text(json.dumps(summary, indent=2))
        if trajs:
            trajectory_figure(
                trajs,
                info.path / "trajectories.png",
                title=f"{info.algo} on {info.env_id} ({split} split)",
            )
    return summary
