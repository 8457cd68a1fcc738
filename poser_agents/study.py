"""The study: the ablations the paper's reviewers asked for, reproduced by one command.

A study is a YAML file shipped in ``poser_agents/studies/`` (or any path). It names env ids,
agents (learned algorithms and baselines) and variants (env keyword arguments and
hyperparameters that change between rows); every (env, variant, agent, seed) is one
**cell**. Running a study writes a results folder::

    <out>/<study>/study.json        the spec, the package version, quick or not
    <out>/<study>/cells/<id>.json   one finished cell: config, seed, episode records, wall time
    <out>/<study>/cells/<id>.failed.json   a cell that raised (its error); the study goes on
    <out>/<study>/runs/<id>/        run folders of learned agents (see poser_agents.train)
    <out>/<study>/report.md         tables (mean ± 95% CI over episodes and seeds), plots
    <out>/<study>/results.json      every number with its seed, config and the package version

A finished cell is never re-run: an interrupted study continues where it stopped when the
same command is run again (a failed cell is retried). Cells run in parallel processes with
``workers > 1``. Every agent is scored by the world's final metrics, which judge the final
image against the hidden scene (an evaluator independent of the reward critic); when the
world reports what the critic itself believes (``critic_*`` keys of
``info["final_metrics"]``), the report shows both.

Command line::

    python -m poser_agents.study list
    python -m poser_agents.study run rl_vs_heuristics --quick --workers 2
    python -m poser_agents.study run all --out study
    python -m poser_agents.study report rl_vs_heuristics --out study
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

import poser_env  # noqa: F401  (registers the ids)
from poser_agents import __version__
from poser_agents.algos import resolve_algo
from poser_agents.baselines import make_baseline, t2i_experts
from poser_agents.config import EVAL_SEED, make_raw_env
from poser_agents.error import AgentsConfigError, close_hint
from poser_agents.evaluate import ci95, run_episodes, summarise
from poser_agents.plots import _plt, _save, learning_curves
from poser_agents.train import load_agent, train
from poser_env.error import PoserError

#: Keys of a study file, with what they mean (unknown keys are refused).
STUDY_KEYS: dict[str, str] = {
    "description": "one paragraph: the question the study answers",
    "envs": "env ids (an id that is not registered is skipped and the report says so)",
    "agents": "agent names: built-in algorithms (dqn, ppo, ...) or baselines "
    "(random, oracle, router, best-single, best-pipeline, ...); "
    "a mapping {name: [env ids]} limits an agent to some envs",
    "variants": "list of {label, x, env_kwargs, hyperparams}: what changes between rows (default: one variant)",
    "hyperparams": "hyperparameter overrides of every learned agent",
    "seeds": "training seeds of learned agents (a count or a list)",
    "n_timesteps": "training budget of every learned agent",
    "episodes": "test episodes per cell",
    "eval_seed": "first reset seed of the test episodes",
    "split": "task split of the test episodes",
    "select_episodes": "train-split episodes used to pick best-single and best-pipeline",
    "quick": "overrides of seeds, n_timesteps, episodes, select_episodes for --quick",
    "plots": "list of plots: success_vs_x, success_vs_cost, learning_curves",
    "x_label": "axis label of the variants' x values in the success_vs_x plot",
}
VARIANT_KEYS = ("label", "x", "env_kwargs", "hyperparams")
QUICK_KEYS = ("seeds", "n_timesteps", "episodes", "select_episodes")
PLOTS = ("success_vs_x", "success_vs_cost", "learning_curves")
#: Metrics of every table (the world's final metrics, judged against the hidden scene).
TABLE_METRICS = ("success", "alignment", "fidelity", "aesthetics", "steps", "total_cost")
#: Baselines whose result does not depend on the seed (run once, with the first seed).
DETERMINISTIC = (
    "oracle",
    "router",
    "kind-router",
    "word-router",
    "plan-oracle",
    "lookahead",
    "best-single",
    "best-pipeline",
)
FORMAT = "poser-study"
FORMAT_VERSION = 1


class StudyError(AgentsConfigError):
    """A study file, name or results folder is invalid."""


# ---------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class Variant:
    """One row setting of a study: env keyword arguments and hyperparameters."""

    label: str
    x: float | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    """A parsed study file (see :data:`STUDY_KEYS`)."""

    name: str
    description: str
    envs: tuple[str, ...]
    agents: dict[str, tuple[str, ...] | None]  # name -> env ids it runs on (None: all)
    variants: tuple[Variant, ...]
    hyperparams: dict[str, Any]
    seeds: tuple[int, ...]
    n_timesteps: int
    episodes: int
    eval_seed: int
    split: str
    select_episodes: int
    plots: tuple[str, ...]
    raw: dict[str, Any]


def studies_dir() -> Path:
    """The folder of the shipped study files."""
    return Path(str(resources.files("poser_agents") / "studies"))


def study_names() -> list[str]:
    """Names of the shipped studies, in the order ``run all`` runs them."""
    order_file = studies_dir() / "ORDER"
    names = sorted(p.stem for p in studies_dir().glob("*.yml"))
    if order_file.is_file():
        order = [n.strip() for n in order_file.read_text().split() if n.strip()]
        names = [n for n in order if n in names] + [n for n in names if n not in order]
    return names


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise StudyError(f"{where}: seeds must be a count or a list of integers, got {value!r}.")
    if isinstance(value, int):
        if value < 1:
            raise StudyError(f"{where}: seeds must be >= 1, got {value!r}.")
        return tuple(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
    ):
        return tuple(value)
    raise StudyError(
        f"{where}: seeds must be a count or a non-empty list of integers >= 0, got {value!r}."
    )


def _positive_int(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StudyError(f"{where}: {key} must be an integer >= 1, got {value!r}.")
    return value


def _check_keys(data: dict[str, Any], known: Sequence[str], where: str) -> None:
    for key in data:
        if key not in known:
            raise StudyError(
                f"{where}: unknown key {key!r}.{close_hint(key, known)} Valid keys: {', '.join(known)}."
            )


def _variants(value: Any, where: str) -> tuple[Variant, ...]:
    if value is None:
        return (Variant("default"),)
    if not isinstance(value, list) or not value:
        raise StudyError(f"{where}: variants must be a non-empty list of mappings, got {value!r}.")
    out = []
    for i, v in enumerate(value):
        if not isinstance(v, dict):
            raise StudyError(
                f"{where}: variant {i} must be a mapping with keys {list(VARIANT_KEYS)}, got {v!r}."
            )
        _check_keys(v, VARIANT_KEYS, f"{where}, variant {i}")
        label = v.get("label")
        if not isinstance(label, str) or not label:
            raise StudyError(
                f"{where}: variant {i} needs a non-empty string 'label', got {label!r}."
            )
        x = v.get("x")
        if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float))):
            raise StudyError(f"{where}: variant {label!r}: x must be a number, got {x!r}.")
        for key in ("env_kwargs", "hyperparams"):
            if not isinstance(v.get(key, {}), dict):
                raise StudyError(
                    f"{where}: variant {label!r}: {key} must be a mapping, got {v[key]!r}."
                )
        out.append(
            Variant(
                label,
                None if x is None else float(x),
                dict(v.get("env_kwargs", {})),
                dict(v.get("hyperparams", {})),
            )
        )
    labels = [v.label for v in out]
    if len(set(labels)) != len(labels):
        raise StudyError(f"{where}: variant labels must be unique, got {labels}.")
    return tuple(out)


def _agents(value: Any, where: str) -> dict[str, tuple[str, ...] | None]:
    if not isinstance(value, list) or not value:
        raise StudyError(f"{where}: agents must be a non-empty list, got {value!r}.")
    out: dict[str, tuple[str, ...] | None] = {}
    for item in value:
        if isinstance(item, str):
            out[item] = None
        elif isinstance(item, dict) and len(item) == 1:
            ((name, envs),) = item.items()
            if not isinstance(envs, list) or not all(isinstance(e, str) for e in envs):
                raise StudyError(
                    f"{where}: agent {name!r} must map to a list of env ids, got {envs!r}."
                )
            out[str(name)] = tuple(envs)
        else:
            raise StudyError(f"{where}: an agent is a name or {{name: [env ids]}}, got {item!r}.")
    return out


def parse_study(data: Any, name: str, quick: bool = False) -> Study:
    """Validate a study mapping (as read from YAML) and apply ``quick`` overrides."""
    where = f"study {name!r}"
    if not isinstance(data, dict):
        raise StudyError(f"{where} must be a mapping of settings, got {type(data).__name__}.")
    _check_keys(data, list(STUDY_KEYS), where)
    for key in ("envs", "agents"):
        if key not in data:
            raise StudyError(f"{where}: missing key {key!r} ({STUDY_KEYS[key]}).")
    settings = dict(data)
    q = settings.get("quick", {}) or {}
    if not isinstance(q, dict):
        raise StudyError(f"{where}: quick must be a mapping of {list(QUICK_KEYS)}, got {q!r}.")
    _check_keys(q, QUICK_KEYS, f"{where}, quick")
    if quick:
        settings.update(q)
    envs = settings["envs"]
    if not isinstance(envs, list) or not envs or not all(isinstance(e, str) for e in envs):
        raise StudyError(f"{where}: envs must be a non-empty list of env ids, got {envs!r}.")
    plots = settings.get("plots", [])
    if not isinstance(plots, list) or any(p not in PLOTS for p in plots):
        bad = [p for p in plots if p not in PLOTS] if isinstance(plots, list) else plots
        raise StudyError(f"{where}: unknown plot(s) {bad!r}; known plots: {', '.join(PLOTS)}.")
    hyper = settings.get("hyperparams", {}) or {}
    if not isinstance(hyper, dict):
        raise StudyError(f"{where}: hyperparams must be a mapping, got {hyper!r}.")
    split = settings.get("split", "test")
    if split not in ("train", "test", "all"):
        raise StudyError(f"{where}: split must be 'train', 'test' or 'all', got {split!r}.")
    eval_seed = settings.get("eval_seed", EVAL_SEED)
    if isinstance(eval_seed, bool) or not isinstance(eval_seed, int) or eval_seed < 0:
        raise StudyError(f"{where}: eval_seed must be an integer >= 0, got {eval_seed!r}.")
    return Study(
        name=name,
        description=str(settings.get("description", "")).strip(),
        envs=tuple(envs),
        agents=_agents(settings["agents"], where),
        variants=_variants(settings.get("variants"), where),
        hyperparams=dict(hyper),
        seeds=_seeds(settings.get("seeds", 3), where),
        n_timesteps=_positive_int(settings.get("n_timesteps", 30_000), "n_timesteps", where),
        episodes=_positive_int(settings.get("episodes", 300), "episodes", where),
        eval_seed=eval_seed,
        split=split,
        select_episodes=_positive_int(
            settings.get("select_episodes", 100), "select_episodes", where
        ),
        plots=tuple(plots),
        raw=dict(data),
    )


def load_study(name_or_path: str | Path, quick: bool = False) -> Study:
    """A shipped study by name, or a study file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yml", ".yaml"):
        if not path.is_file():
            raise StudyError(f"Study file {str(path)!r} does not exist.")
        name = path.stem
    else:
        name = str(name_or_path)
        known = study_names()
        if name not in known:
            raise StudyError(
                f"Unknown study {name!r}.{close_hint(name, known)} Known studies: {', '.join(known)}, or all."
            )
        path = studies_dir() / f"{name}.yml"
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise StudyError(f"Could not parse study file {path}: {e}") from e
    return parse_study(data, name, quick=quick)


# ---------------------------------------------------------------------------- cells
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text)


def cell_id(env_id: str, variant: str, agent: str, seed: int) -> str:
    """The file-name-safe id of a cell."""
    return _slug(f"{env_id}__{variant}__{agent}__s{seed}")


def _is_learned(agent: str) -> bool:
    if agent in ("best-single", "best-pipeline"):
        return False
    kind, _ = resolve_algo(agent)
    return kind != "baseline"


def plan_cells(
    study: Study, registered: Sequence[str] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every cell of ``study`` as a picklable dict, and the env ids skipped (not registered).

    Raises:
        StudyError: An agent name that is neither an algorithm nor a baseline.
    """
    registered = list(gym.registry) if registered is None else list(registered)
    for agent in study.agents:
        try:
            _is_learned(agent)
        except Exception as e:
            raise StudyError(f"study {study.name!r}: agent {agent!r}: {e}") from e
    envs = [e for e in study.envs if e in registered]
    skipped = [e for e in study.envs if e not in registered]
    cells = []
    for env_id in envs:
        for variant in study.variants:
            for agent, only in study.agents.items():
                if only is not None and env_id not in only:
                    continue
                learned = _is_learned(agent)
                seeds = study.seeds if (learned or agent not in DETERMINISTIC) else study.seeds[:1]
                for seed in seeds:
                    hyper = {**study.hyperparams, **variant.hyperparams} if learned else {}
                    cells.append(
                        {
                            "id": cell_id(env_id, variant.label, agent, seed),
                            "study": study.name,
                            "env_id": env_id,
                            "variant": variant.label,
                            "x": variant.x,
                            "agent": agent,
                            "learned": learned,
                            "seed": seed,
                            "env_kwargs": variant.env_kwargs,
                            "hyperparams": hyper,
                            "n_timesteps": study.n_timesteps if learned else 0,
                            "episodes": study.episodes,
                            "eval_seed": study.eval_seed,
                            "split": study.split,
                            "select_episodes": study.select_episodes,
                        }
                    )
    return cells, skipped


def _select_best(cell: dict[str, Any], candidates: list[str]) -> str:
    """The candidate with the highest success (then the lowest cost) on train-split
    episodes, so the pick is not made on the test episodes it is scored on."""
    env = make_raw_env(cell["env_id"], cell["env_kwargs"], split="train")
    try:
        scores = []
        for cand in candidates:
            recs, _ = run_episodes(make_baseline(cand, env), env, cell["select_episodes"], seed=0)
            m = summarise(recs)["metrics"]
            scores.append((m["success"]["mean"], -m["total_cost"]["mean"], cand))
    finally:
        env.close()
    return max(scores)[2]


def _run_baseline(cell: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    env = make_raw_env(cell["env_id"], cell["env_kwargs"], split=cell["split"])
    try:
        name, extra = cell["agent"], {}
        if name in ("best-single", "best-pipeline"):
            t2i = t2i_experts(env)
            i2i = [e.name for e in env.unwrapped.experts if e.kind == "i2i"]
            # best-single: the same expert at every step (as issue 11's tables define it)
            experts = [e.name for e in env.unwrapped.experts]
            cands = (
                [f"always:{e}" for e in experts]
                if name == "best-single"
                else [f"pipeline:{t}>{i}" for t in t2i for i in i2i]
            )
            name = _select_best(cell, cands)
            extra["picked"] = name
        records, _ = run_episodes(
            make_baseline(name, env, cell["seed"]),
            env,
            cell["episodes"],
            cell["eval_seed"],
            train_seed=cell["seed"],
        )
    finally:
        env.close()
    return records, extra


def _run_learned(cell: dict[str, Any], out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    run = out / "runs" / cell["id"]
    if run.exists():  # an interrupted cell: its run is retrained from scratch
        shutil.rmtree(run)
    hyper = dict(cell["hyperparams"])
    env_kwargs = {**hyper.pop("env_kwargs", {}), **cell["env_kwargs"]}
    hyper.update(n_timesteps=cell["n_timesteps"], env_kwargs=env_kwargs)
    train(
        cell["agent"], cell["env_id"], cell["seed"], run_dir=run, hyperparams=hyper, evaluate=False
    )
    agent, env, _ = load_agent(run, split=cell["split"])
    try:
        records, _ = run_episodes(
            agent, env, cell["episodes"], cell["eval_seed"], train_seed=cell["seed"]
        )
    finally:
        env.close()
    return records, {"run": str(run.relative_to(out))}


def run_cell(cell: dict[str, Any], out: str | Path) -> dict[str, Any]:
    """Run one cell and write its result file (``cells/<id>.json``, or ``.failed.json``
    with the error when it raises). Never raises for a failing agent or env."""
    out = Path(out)
    cells_dir = out / "cells"
    start = time.perf_counter()
    try:
        records, extra = _run_learned(cell, out) if cell["learned"] else _run_baseline(cell)
        result = {"status": "done", "cell": cell, "records": records, **extra}
        target = cells_dir / f"{cell['id']}.json"
        (cells_dir / f"{cell['id']}.failed.json").unlink(missing_ok=True)
    except Exception as e:  # a crashed cell is recorded and the study goes on
        result = {
            "status": "failed",
            "cell": cell,
            "error": f"{type(e).__name__}: {e}"[:2000],
            "traceback": traceback.format_exc()[-4000:],
        }
        target = cells_dir / f"{cell['id']}.failed.json"
    result["wall_s"] = time.perf_counter() - start
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, target)  # atomic: a cell file is either whole or absent
    return result


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _manifest(study: Study, quick: bool) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "study": study.name,
        "version": __version__,
        "quick": quick,
        "spec": study.raw,
    }


def _claim_folder(folder: Path, study: Study, quick: bool) -> None:
    """Create the results folder or check that it was written by this version for this
    study; refuse (never delete) a folder from another version, study or mode."""
    manifest = _manifest(study, quick)
    path = folder / "study.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise StudyError(
                f"{path} is not valid JSON ({e}); is {str(folder)!r} a study results folder?"
            ) from e
        for key, what in (
            ("format", "format"),
            ("study", "study"),
            ("version", "image-poser version"),
            ("quick", "--quick setting"),
            ("spec", "study file"),
        ):
            if old.get(key) != manifest[key]:
                was = "" if key == "spec" else f" ({old.get(key)!r}; now {manifest[key]!r})"
                raise StudyError(
                    f"The results folder {str(folder)!r} was written with another {what}{was}. "
                    "Its finished cells are kept; "
                    "use another --out to start afresh, or run the version and settings that wrote it."
                )
        return
    if folder.exists() and any(folder.iterdir()):
        raise StudyError(
            f"{str(folder)!r} exists, is not empty and has no study.json: "
            "not a study results folder. Pick another --out."
        )
    (folder / "cells").mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2))


def run_study(
    name_or_path: str | Path,
    out: str | Path = "study",
    quick: bool = False,
    workers: int = 1,
    progress: bool = True,
    envs: Sequence[str] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Run every unfinished cell of a study, then write its report.

    Args:
        name_or_path: A shipped study name or a YAML path.
        out: Parent folder; the study writes ``<out>/<name>/`` (``<out>/<name>-quick/``
            with ``quick``).
        quick: One seed, fewer steps and episodes (the file's ``quick`` entry).
        workers: Parallel processes for cells (1: in this process).
        progress: Show a progress bar over cells.
        envs: Restrict to these env ids.
        log: Where progress lines go.

    Returns:
        The results (as written to ``results.json``).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise StudyError(f"workers must be an integer >= 1, got {workers!r}.")
    log = log or (lambda *a, **k: None)
    study = load_study(name_or_path, quick=quick)
    if envs is not None:
        unknown = [e for e in envs if e not in study.envs]
        if unknown:
            raise StudyError(
                f"--envs {unknown} are not envs of study {study.name!r}: {list(study.envs)}."
            )
        study = Study(**{**study.__dict__, "envs": tuple(e for e in study.envs if e in envs)})
    folder = Path(out) / (study.name + ("-quick" if quick else ""))
    _claim_folder(folder, study, quick)
    cells, skipped = plan_cells(study)
    for env_id in skipped:
        log(
            f"{env_id} is not registered in this version of image-poser; study {study.name!r} runs without it."
        )
    todo = [c for c in cells if not (folder / "cells" / f"{c['id']}.json").is_file()]
    log(
        f"study {study.name}: {len(cells)} cells, {len(cells) - len(todo)} already done, {len(todo)} to run -> {folder}"
    )
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(cells),
        initial=len(cells) - len(todo),
        desc=study.name,
        unit="cell",
        disable=not progress,
    )
    failed = 0
    if workers == 1:
        for cell in todo:
            res = run_cell(cell, folder)
            failed += res["status"] == "failed"
            bar.update()
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(
            workers, mp_context=mp.get_context("spawn"), initializer=_worker_init
        ) as pool:
            futures = [pool.submit(run_cell, c, folder) for c in todo]
            for fut in as_completed(futures):
                failed += fut.result()["status"] == "failed"
                bar.update()
    bar.close()
    if failed:
        log(
            f"{failed} cell(s) failed; see {folder / 'report.md'} (run the same command again to retry them)."
        )
    return write_report(study, folder, skipped=skipped, quick=quick)


# ---------------------------------------------------------------------------- report
def _read_cells(folder: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    done, failed = {}, {}
    for path in sorted((folder / "cells").glob("*.json")):
        data = json.loads(path.read_text())
        (failed if data["status"] == "failed" else done)[data["cell"]["id"]] = data
    return done, failed


def _metrics_of(records: list[dict[str, Any]]) -> list[str]:
    """The table metrics plus any numeric ``critic_*`` keys the world reported."""
    extra = sorted(
        {
            k
            for r in records
            for k in r
            if k.startswith("critic_") and isinstance(r[k], (int, float))
        }
    )
    return [*TABLE_METRICS, *extra]


def summarise_rows(done: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """Pool cells over seeds: ``"env|variant|agent"`` -> summary (mean, ci95 per metric)."""
    groups: dict[str, list[dict]] = {}
    for data in done.values():
        c = data["cell"]
        groups.setdefault(f"{c['env_id']}|{c['variant']}|{c['agent']}", []).append(data)
    rows = {}
    for key, cells in groups.items():
        records = [r for d in cells for r in d["records"]]
        metrics = {}
        for m in _metrics_of(records):
            vals = [float(r[m]) for r in records if m in r]
            per_seed = [
                sum(float(r[m]) for r in d["records"]) / len(d["records"])
                for d in cells
                if d["records"] and m in d["records"][0]
            ]
            metrics[m] = {"mean": sum(vals) / len(vals), "ci95": ci95(vals), "per_seed": per_seed}
        c0 = cells[0]["cell"]
        rows[key] = {
            "env_id": c0["env_id"],
            "variant": c0["variant"],
            "x": c0["x"],
            "agent": c0["agent"],
            "seeds": sorted(d["cell"]["seed"] for d in cells),
            "episodes": len(records),
            "metrics": metrics,
            "picked": sorted({d["picked"] for d in cells if "picked" in d}),
            "config": {
                k: c0[k]
                for k in (
                    "env_kwargs",
                    "hyperparams",
                    "n_timesteps",
                    "episodes",
                    "eval_seed",
                    "split",
                )
            },
            "wall_s": sum(d["wall_s"] for d in cells),
            "runs": [d["run"] for d in cells if "run" in d],
        }
    return rows


def _fmt(v: dict[str, Any]) -> str:
    return f"{v['mean']:.3f} ± {v['ci95']:.3f}"


def _table(rows: list[dict[str, Any]], metrics: Sequence[str], variants: bool) -> str:
    head = ["variant"] * variants + ["agent", *metrics, "seeds", "episodes", "compute (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        name = r["agent"] + (f" ({', '.join(r['picked'])})" if r["picked"] else "")
        cells = (
            [r["variant"]] * variants
            + [name]
            + [_fmt(r["metrics"][m]) if m in r["metrics"] else "-" for m in metrics]
        )
        cells += [str(len(r["seeds"])), str(r["episodes"]), f"{r['wall_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot_success_vs_x(env_rows: list[dict], out: Path, title: str, xlabel: str) -> Path | None:
    pts = [r for r in env_rows if r["x"] is not None]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, agent in enumerate(dict.fromkeys(r["agent"] for r in pts)):
        rs = sorted((r for r in pts if r["agent"] == agent), key=lambda r: r["x"])
        xs = [r["x"] for r in rs]
        for metric, style in (("success", "-o"), ("critic_success", "--x")):
            if all(metric in r["metrics"] for r in rs):
                ys = [r["metrics"][metric]["mean"] for r in rs]
                err = [r["metrics"][metric]["ci95"] for r in rs]
                label = agent + (
                    " (as the critic judges)"
                    if metric == "critic_success"
                    else " (independent judge)"
                    if any("critic_success" in r["metrics"] for r in rs)
                    else ""
                )
                ax.errorbar(xs, ys, yerr=err, fmt=style, color=f"C{i}", capsize=3, label=label)
    ax.set(xlabel=xlabel, ylabel="success", ylim=(0, 1.02), title=title)
    ax.legend(fontsize=7)
    return _save(plt, fig, out)


def _plot_success_vs_cost(env_rows: list[dict], out: Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, agent in enumerate(dict.fromkeys(r["agent"] for r in env_rows)):
        rs = sorted(
            (r for r in env_rows if r["agent"] == agent),
            key=lambda r: r["metrics"]["total_cost"]["mean"],
        )
        xs = [r["metrics"]["total_cost"]["mean"] for r in rs]
        ys = [r["metrics"]["success"]["mean"] for r in rs]
        ax.errorbar(
            xs,
            ys,
            xerr=[r["metrics"]["total_cost"]["ci95"] for r in rs],
            yerr=[r["metrics"]["success"]["ci95"] for r in rs],
            fmt="-o",
            color=f"C{i}",
            capsize=3,
            label=agent,
        )
        for r in rs:
            ax.annotate(
                r["variant"],
                (r["metrics"]["total_cost"]["mean"], r["metrics"]["success"]["mean"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set(
        xlabel="expert cost per episode (simulated seconds)",
        ylabel="success",
        ylim=(0, 1.02),
        title=title,
    )
    ax.legend(fontsize=7)
    return _save(plt, fig, out)


def write_report(
    study: Study, folder: Path, skipped: Sequence[str] = (), quick: bool = False
) -> dict[str, Any]:
    """Write ``report.md``, the plots and ``results.json`` from the finished cells."""
    done, failed = _read_cells(folder)
    rows = summarise_rows(done)
    # rows in the study file's order: env, then variant, then agent
    order = {
        "env": list(study.envs),
        "variant": [v.label for v in study.variants],
        "agent": list(study.agents),
    }

    def rank(r):
        return tuple(
            order[k].index(r[k2]) if r[k2] in order[k] else len(order[k])
            for k, k2 in (("env", "env_id"), ("variant", "variant"), ("agent", "agent"))
        )

    rows = dict(sorted(rows.items(), key=lambda kv: rank(kv[1])))
    lines = [f"# Study: {study.name}{' (quick)' if quick else ''}", "", study.description, ""]
    lines.append(
        f"image-poser {__version__}. Test split `{study.split}`, {study.episodes} episodes per cell (reset seeds from "
        f"{study.eval_seed}); learned agents: seeds {list(study.seeds)}, {study.n_timesteps} steps each. "
        "Mean ± 95% CI over episodes (pooled over seeds). Success, alignment, fidelity and aesthetics are judged "
        "against the hidden scene, independently of the reward critic."
    )
    for env_id in skipped:
        lines.append(
            f"\n**{env_id} is not registered in this version: this report covers the other envs only.**"
        )
    total = sum(d["wall_s"] for d in done.values()) + sum(d["wall_s"] for d in failed.values())
    planned = {c["id"] for c in plan_cells(study)[0]}
    missing = sorted(planned - set(done) - set(failed))
    lines.append(
        f"\nCompute: {total:.0f} s of cell wall time ({len(done)} cells done, {len(failed)} failed)."
    )
    if missing:
        lines.append(
            f"\n**Partial: {len(missing)} of {len(planned)} cells not run yet** "
            f"(run the same command again to continue): {', '.join(missing)}."
        )
    plots = []
    for env_id in study.envs:
        env_rows = [r for r in rows.values() if r["env_id"] == env_id]
        if not env_rows:
            continue
        # The critic's own view only where it differs from the judge's somewhere (an
        # imperfect critic); with an exact critic the columns would repeat success/alignment.
        differs = any(
            r["metrics"][f"critic_{m}"]["mean"] != r["metrics"][m]["mean"]
            for r in env_rows
            for m in ("success", "alignment")
            if f"critic_{m}" in r["metrics"]
        )
        metrics = list(TABLE_METRICS) + (["critic_success", "critic_alignment"] if differs else [])
        lines += [
            "",
            f"## {env_id}",
            "",
            _table(env_rows, metrics, variants=len(study.variants) > 1),
        ]
        stem = _slug(env_id)
        if "success_vs_x" in study.plots:
            p = _plot_success_vs_x(
                env_rows,
                folder / f"{stem}_success_vs_x.png",
                f"{study.name}: {env_id}",
                study.raw.get("x_label", "variant"),
            )
            plots.append(p)
        if "success_vs_cost" in study.plots:
            plots.append(
                _plot_success_vs_cost(
                    env_rows, folder / f"{stem}_success_vs_cost.png", f"{study.name}: {env_id}"
                )
            )
        if "learning_curves" in study.plots:
            runs = {
                f"{r['agent']} {r['variant']}": [folder / p for p in r["runs"]]
                for r in env_rows
                if r["runs"]
            }
            if runs:
                plots.append(
                    learning_curves(
                        runs,
                        folder / f"{stem}_learning_curves.png",
                        title=f"{study.name}: {env_id}",
                    )
                )
        for p in plots:
            if p is not None and p.name.startswith(stem):
                lines += ["", f"![{p.stem}]({p.name})"]
    if failed:
        lines += ["", "## Failed cells", ""]
        lines += [f"- `{cid}`: {d['error']}" for cid, d in sorted(failed.items())]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    results = {
        **_manifest(study, quick),
        "skipped_envs": list(skipped),
        "not_run": missing,
        "compute_s": total,
        "rows": rows,
        "cells": {
            cid: {k: v for k, v in d.items() if k != "records"} | {"n_records": len(d["records"])}
            for cid, d in done.items()
        },
        "failed": {cid: {"cell": d["cell"], "error": d["error"]} for cid, d in failed.items()},
    }
    (folder / "results.json").write_text(
        json.dumps(
            results,
            indent=2,
            default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o),
        )
    )
    return results


# ---------------------------------------------------------------------------- CLI
def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``study`` command line (also ``poser study``)."""
    p = parser or argparse.ArgumentParser(
        prog="python -m poser_agents.study",
        description="Run the ablation studies and write their reports.",
    )
    sub = p.add_subparsers(dest="study_cmd", required=True)
    sub.add_parser("list", help="list the shipped studies")
    r = sub.add_parser(
        "run", help="run a study (or 'all'); re-running continues an interrupted one"
    )
    r.add_argument("name", help="a shipped study name, 'all', or a path to a study YAML file")
    r.add_argument("--out", default="study", help="parent folder of the results (default: study/)")
    r.add_argument("--quick", action="store_true", help="one seed, fewer steps and episodes")
    r.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    r.add_argument("--envs", help="comma-separated env ids to restrict to")
    r.add_argument("--no-progress", action="store_true")
    rep = sub.add_parser(
        "report", help="rewrite the report of a results folder from its finished cells"
    )
    rep.add_argument("name")
    rep.add_argument("--out", default="study")
    rep.add_argument("--quick", action="store_true")
    return p


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    """Entry point; returns the exit code (2 with a one-line message for bad input)."""
    args = args if args is not None else build_parser().parse_args(argv)
    try:
        if args.study_cmd == "list":
            for name in study_names():
                print(f"{name}: {load_study(name).description.split('. ')[0]}")
            return 0
        if args.study_cmd == "report":
            study = load_study(args.name, quick=args.quick)
            folder = Path(args.out) / (study.name + ("-quick" if args.quick else ""))
            if not (folder / "study.json").is_file():
                raise StudyError(
                    f"{str(folder)!r} is not a study results folder (no study.json); run the study first."
                )
            _claim_folder(folder, study, args.quick)
            write_report(study, folder, quick=args.quick)
            print(folder / "report.md")
            return 0
        names = study_names() if args.name == "all" else [args.name]
        envs = [e.strip() for e in args.envs.split(",")] if args.envs else None
        start = time.perf_counter()
        for name in names:
            run_study(
                name,
                out=args.out,
                quick=args.quick,
                workers=args.workers,
                progress=not args.no_progress,
                envs=envs,
            )
        print(f"done in {time.perf_counter() - start:.0f} s; reports under {args.out}/")
        return 0
    except PoserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
