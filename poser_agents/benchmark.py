"""Benchmark harness: several algorithms x several seeds, same budget, same test episodes.

For every learner and seed it trains a run folder (``<out>/runs/<algo>_s<seed>``) and
evaluates it greedily on the same test-split episodes (reset seeds ``eval_seed ...``);
baselines are evaluated on the same episodes (deterministic ones once, ``random`` once per
seed). It writes, as it goes:

* ``results.json`` - every summary (see :func:`poser_agents.evaluate.summarise`), the
  settings and the exact command;
* ``results.md`` and ``results.csv`` - the table (mean ± 95% CI over episodes and seeds);
* ``learning_curves.png`` - training success over steps, mean over seeds with a 95% band.

A benchmark folder can be re-run with the same arguments: finished (algo, seed) cells are
read back instead of recomputed, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from poser_agents.algos import is_baseline, make_learner, resolve_algo
from poser_agents.baselines import make_baseline
from poser_agents.config import (
    EVAL_SEED,
    check_env_id,
    command_line,
    load_hyperparams,
    make_raw_env,
    read_run,
    versions,
)
from poser_agents.error import AgentsConfigError
from poser_agents.evaluate import (
    BEST_OF,
    best_candidates,
    format_table,
    pick_best,
    run_episodes,
    summarise,
)
from poser_agents.plots import learning_curves
from poser_agents.train import load_agent, train
from poser_env.paths import check_output_dir

#: Baselines whose result does not depend on the seed (evaluated once).
DETERMINISTIC = ("oracle", "router", "best-single", "best-always")


def _parse_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise AgentsConfigError(f"seeds must be a count or a list of integers, got {seeds!r}.")
    if isinstance(seeds, int):
        if seeds < 1:
            raise AgentsConfigError(f"seeds must be >= 1, got {seeds!r}.")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out:
        raise AgentsConfigError("seeds must not be empty.")
    return out


def benchmark(
    algos: Sequence[str],
    env_id: str = "ImagePoser-v0",
    seeds: int | Sequence[int] = 3,
    n_timesteps: int | None = None,
    episodes: int = 200,
    out_dir: str | Path = "benchmark",
    hyperparams: dict[str, Any] | None = None,
    eval_seed: int = EVAL_SEED,
    split: str = "test",
    progress_bar: bool = False,
    log: Any = print,
) -> dict[str, Any]:
    """Run the benchmark and write its files (see the module docstring).

    Args:
        algos: Names for :func:`poser_agents.algos.resolve_algo`, plus ``best-single`` (the
            best ``single:<t2i>``) and ``best-always`` (the best ``always:<expert>``).
        env_id: Env id to train and evaluate on.
        seeds: A count (seeds ``0..n-1``) or a list of training seeds.
        n_timesteps: Training budget of every learner; ``None`` uses each algorithm's
            YAML ``n_timesteps`` (every shipped file uses the same budget).
        episodes: Test episodes per (algo, seed).
        out_dir: Output folder.
        hyperparams: Overrides applied to every learner.
        eval_seed: First reset seed of the test episodes.
        split: Task split for evaluation.
        progress_bar: Show a progress bar while training.
        log: Where progress lines go (``print`` by default; ``None`` for silence).

    Returns:
        ``{"rows": {name: summary}, ...}`` as written to ``results.json``.
    """
    check_env_id(env_id)
    if not algos:
        raise AgentsConfigError("algos must name at least one algorithm or baseline.")
    seed_list = _parse_seeds(seeds)
    for name in algos:  # fail before any training on a typo
        if name not in BEST_OF:
            resolve_algo(name)
    log = log or (lambda *a, **k: None)
    out = check_output_dir(out_dir, "benchmark output folder")
    env_kwargs = _shared_env_kwargs(algos, env_id, hyperparams)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    settings = {
        "algos": list(algos),
        "env_id": env_id,
        "seeds": seed_list,
        "n_timesteps": n_timesteps,
        "episodes": episodes,
        "eval_seed": eval_seed,
        "split": split,
        "hyperparams": hyperparams or {},
    }
    state: dict[str, Any] = {"settings": settings, "cells": {}, "rows": {}}
    if results_path.is_file():
        old = json.loads(results_path.read_text())
        if old.get("settings") == settings:
            state["cells"] = old.get("cells", {})
        else:
            log(f"{results_path} was written with other settings; starting afresh.")
    state["command"] = command_line()
    state["versions"] = versions()
    # The baselines play the env the learners train and are evaluated on (same env_kwargs).
    raw_env = make_raw_env(env_id, env_kwargs, split=split)
    run_folders: dict[str, list[Path]] = {}

    def save() -> None:
        results_path.write_text(json.dumps(state, indent=2))

    for name in algos:
        if name in BEST_OF:
            _best_of_row(name, raw_env, state, episodes, eval_seed, save, log)
            continue
        records = []
        cell_seeds = [seed_list[0]] if (is_baseline(name) and name != "random") else seed_list
        for seed in cell_seeds:
            key = f"{name}|{seed}"
            if key not in state["cells"]:
                if is_baseline(name):
                    recs, _ = run_episodes(
                        make_baseline(name, raw_env, seed),
                        raw_env,
                        episodes,
                        eval_seed,
                        train_seed=seed,
                    )
                else:
                    recs = _train_and_eval(
                        name,
                        env_id,
                        seed,
                        out,
                        n_timesteps,
                        hyperparams,
                        episodes,
                        eval_seed,
                        split,
                        progress_bar,
                        log,
                    )
                state["cells"][key] = recs
                save()
            records += state["cells"][key]
            if not is_baseline(name):
                run_folders.setdefault(name, []).append(_run_dir(out, name, seed))
        summ = summarise(records)
        state["rows"][name] = summ
        log(
            f"{name}: success {summ['metrics']['success']['mean']:.3f} "
            f"± {summ['metrics']['success']['ci95']:.3f} ({summ['seeds']} seeds)"
        )
        save()
    raw_env.close()
    _write_tables(out, state)
    if run_folders:
        learning_curves(
            run_folders, out / "learning_curves.png", title=f"{env_id}: training success"
        )
    save()
    return state


def _best_of_row(name, raw_env, state, episodes, eval_seed, save, log) -> None:
    """Evaluate every candidate of ``best-single``/``best-always`` (once) and keep the best row."""
    cands = best_candidates(name, raw_env)
    for cand in cands:
        if f"{cand}|0" not in state["cells"]:
            recs, _ = run_episodes(make_baseline(cand, raw_env), raw_env, episodes, eval_seed)
            state["cells"][f"{cand}|0"] = recs
            save()
    summaries = {c: summarise(state["cells"][f"{c}|0"]) for c in cands}
    best = pick_best(summaries)
    summ = summaries[best]
    summ["picked"] = best
    state["rows"][f"{name} ({best})"] = summ
    log(f"{name}: {best} success {summ['metrics']['success']['mean']:.3f}")


def _shared_env_kwargs(
    algos: Sequence[str], env_id: str, hyperparams: dict[str, Any] | None
) -> dict[str, Any]:
    """The ``env_kwargs`` every learner trains with (from its YAML and the overrides).

    Raises:
        AgentsConfigError: Two learners configure the env differently: their results
            would not be comparable, nor comparable with one set of baselines.
    """
    found: dict[str, dict[str, Any]] = {}
    for name in algos:
        if is_baseline(name):
            continue
        cls = make_learner(name).algo_class
        found[name] = load_hyperparams(name, env_id, cls, None, hyperparams).get("env_kwargs") or {}
    if not found:
        return dict((hyperparams or {}).get("env_kwargs") or {})
    distinct = {json.dumps(v, sort_keys=True, default=str) for v in found.values()}
    if len(distinct) > 1:
        raise AgentsConfigError(
            f"The learners configure the env differently ({found}); a benchmark compares them, and the "
            "baselines, on one env: give the same env_kwargs to all (--hyperparams env_kwargs=...)."
        )
    return dict(next(iter(found.values())))


def _run_dir(out: Path, name: str, seed: int) -> Path:
    return out / "runs" / f"{name.replace(':', '_').replace('/', '_')}_s{seed}"


def _train_and_eval(
    name, env_id, seed, out, n_timesteps, hyperparams, episodes, eval_seed, split, progress_bar, log
):
    run = _run_dir(out, name, seed)
    overrides = dict(hyperparams or {})
    if n_timesteps is not None:
        overrides["n_timesteps"] = int(n_timesteps)
    if run.exists():
        try:
            info = read_run(run)
            finished = info.meta.get("finished", False)
        except Exception:
            finished = False
        if not finished:
            raise AgentsConfigError(
                f"{run} exists but did not finish; "
                f"delete it or resume it with 'poser train --resume {run}', then rerun."
            )
    else:
        log(f"training {name} seed {seed} -> {run}")
        train(
            name,
            env_id,
            seed,
            run_dir=run,
            hyperparams=overrides,
            evaluate=False,
            progress_bar=progress_bar,
        )
    agent, env, info = load_agent(run, split=split)
    try:
        recs, _ = run_episodes(agent, env, episodes, eval_seed, train_seed=seed)
    finally:
        env.close()
    return recs


def _write_tables(out: Path, state: dict[str, Any]) -> None:
    rows = state["rows"]
    s = state["settings"]
    budget = s["n_timesteps"] if s["n_timesteps"] is not None else "YAML n_timesteps"
    header = (
        f"Env {s['env_id']}, {s['split']} split, {s['episodes']} episodes per seed (reset seeds from "
        f"{s['eval_seed']}), training seeds {s['seeds']}, budget {budget} steps. "
        "Mean ± 95% CI over episodes (and seeds).\n\n"
    )
    (out / "results.md").write_text(header + format_table(rows) + "\n")
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        metrics = list(next(iter(rows.values()))["metrics"]) if rows else []
        w.writerow(
            [
                "agent",
                "episodes",
                "seeds",
                *[f"{m}{suf}" for m in metrics for suf in ("", "_ci95", "_seed_std")],
            ]
        )
        for name, summ in rows.items():
            cells = []
            for m in metrics:
                v = summ["metrics"][m]
                cells += [f"{v['mean']:.6g}", f"{v['ci95']:.6g}", f"{v['seed_std']:.6g}"]
            w.writerow([name, summ["episodes"], summ["seeds"], *cells])
