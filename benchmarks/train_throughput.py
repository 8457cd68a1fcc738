"""Training throughput of ``poser train`` (DQN, ``text`` state) per text encoder (issue 17).

Runs the same command for every encoder, in fresh processes, with the same seed:

    poser train --algo dqn --seed 0 --no-eval --no-progress --hyperparams n_timesteps=8000 encoder=<enc>

and reports env steps per second (``timesteps_done / train_wall_seconds`` from the run's
``meta.json``), the process wall time (model loading included), CPU seconds, and each
encoder's wall time relative to ``hashed``. The variants alternate within every round
(and the order reverses in odd rounds), so contention from other work on a shared machine
hits them alike; use ``--rounds`` > 1 for a median. One-time artefact builds (the
distilled table of ``minilm-static``, the ONNX export of ``minilm-onnx``) happen before
the timed runs and are reported separately.

``--code LABEL=PATH`` (repeatable) runs every encoder under each of several copies of the
code (``PYTHONPATH=PATH``), alternating, e.g. before and after a speed change (issue 15);
each run's ``episodes.csv`` and ``losses.csv`` are digested, so equal digests show the
same training trajectory.

``--quality`` also compares each encoder's embeddings with ``minilm`` on the distinct
commands of the first train-split tasks: the Spearman correlation of pairwise cosine
similarities, how often the nearest other command is the same, and the largest
elementwise difference where the sizes match.

    nice python benchmarks/train_throughput.py --quality \
        --result benchmarks/results/train_throughput.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENCODERS = ["hashed", "minilm", "minilm-onnx", "minilm-static"]


def build_artefacts(encoders: list[str]) -> dict[str, float]:
    """Make each encoder's one-time artefact (if any); returns the seconds each took."""
    from poser_agents.wrappers import make_encoder

    out = {}
    for name in encoders:
        enc = make_encoder(name, shared=False)
        t = time.perf_counter()
        enc.encode(["warm up the encoder"])
        out[name] = time.perf_counter() - t
    return out


def run_once(
    encoder: str, seed: int, steps: int, extra: list[str], code: tuple[str, str] | None = None
) -> dict:
    """One ``poser train`` in a fresh process (with ``code = (label, path)``: the code at
    ``path``); returns its timings from meta.json."""
    with tempfile.TemporaryDirectory(prefix="poser_tp_") as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [
            "poser",
            "train",
            "--algo",
            "dqn",
            "--seed",
            str(seed),
            "--no-eval",
            "--no-progress",
            "--run-dir",
            str(run_dir),
            "--hyperparams",
            f"n_timesteps={steps}",
            f"encoder={encoder}",
            *extra,
        ]
        t = time.perf_counter()
        env = dict(os.environ, PYTHONPATH=code[1]) if code else None
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
            )
        meta = json.loads((run_dir / "meta.json").read_text())
        logs = [run_dir / f for f in ("episodes.csv", "losses.csv")]
        logs = [f.read_text() if f.is_file() else "" for f in logs]
    episodes = logs[0]
    done = meta["timesteps_done"]
    return {
        "encoder": encoder,
        "variant": f"{encoder}@{code[0]}" if code else encoder,
        "logs_sha256": hashlib.sha256("\0".join(logs).encode()).hexdigest()[:16],
        "process_wall_s": wall,
        "train_wall_s": meta["train_wall_seconds"],
        "train_cpu_s": meta["train_cpu_seconds"],
        "timesteps": done,
        "steps_per_s": done / meta["train_wall_seconds"],
        "episodes": max(0, episodes.count("\n") - 1),
    }


def quality(encoders: list[str], tasks: int) -> dict:
    """Each encoder's embeddings of the train split's commands compared with ``minilm``'s."""
    import numpy as np
    import torch
    from scipy.stats import spearmanr

    from poser_agents.config import make_raw_env
    from poser_agents.wrappers import REMAINING_SEPARATOR, make_encoder

    torch.set_num_threads(1)  # as in training

    env = make_raw_env("ImagePoser-v0", split="train")
    commands: dict[str, None] = {}
    for s in range(tasks):
        obs, _ = env.reset(seed=s)
        for c in [obs["command"], *obs["remaining"].split(REMAINING_SEPARATOR)]:
            if c:
                commands[c] = None
    texts = list(commands)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(texts), (2, 20_000))
    keep = i != j
    i, j = i[keep], j[keep]

    def cosines(vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
        sims = v @ v.T
        np.fill_diagonal(sims, -np.inf)
        return np.sum(v[i] * v[j], axis=1), sims.argmax(axis=1)

    ref = make_encoder("minilm", shared=False).encode(texts)
    ref_pairs, ref_nn = cosines(ref)
    out = {"commands": len(texts), "pairs": int(len(i))}
    for name in encoders:
        if name == "minilm":
            continue
        vecs = make_encoder(name, shared=False).encode(texts)
        pairs, nn = cosines(vecs)
        row = {
            "dim": int(vecs.shape[1]),
            "spearman_pairwise_cosine": float(spearmanr(ref_pairs, pairs).statistic),
            "nearest_neighbour_agreement": float(np.mean(nn == ref_nn)),
        }
        if vecs.shape == ref.shape:
            row["max_abs_diff"] = float(np.abs(vecs - ref).max())
        # Batched by plan (as at reset) vs one string per call: must be the same bits.
        enc = make_encoder(name, shared=False, cache_size=0)
        plans = [texts[k : k + 4] for k in range(0, len(texts), 4)]
        batched = np.concatenate([enc.encode(p) for p in plans])
        single = np.concatenate([enc.encode([t]) for t in texts])
        row["batched_equals_single"] = bool(np.array_equal(batched, single))
        out[name] = row
    return out


def summarise(runs: list[dict], encoders: list[str]) -> dict:
    table = {}
    for name in encoders:
        mine = [r for r in runs if r["variant"] == name]
        if not mine:
            continue
        table[name] = {
            "steps_per_s_median": statistics.median(r["steps_per_s"] for r in mine),
            "train_wall_s_median": statistics.median(r["train_wall_s"] for r in mine),
            "train_cpu_s_median": statistics.median(r["train_cpu_s"] for r in mine),
            "process_wall_s_median": statistics.median(r["process_wall_s"] for r in mine),
            "runs": len(mine),
            "logs_sha256": sorted({r["logs_sha256"] for r in mine}),
        }
    if table:  # relative to hashed, or to the first variant (--code)
        base = table.get("hashed") or next(iter(table.values()))
        for row in table.values():
            row["train_wall_vs_hashed"] = row["train_wall_s_median"] / base["train_wall_s_median"]
            row["train_cpu_vs_hashed"] = row["train_cpu_s_median"] / base["train_cpu_s_median"]
            row["process_wall_vs_hashed"] = (
                row["process_wall_s_median"] / base["process_wall_s_median"]
            )
    return table


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"`poser train --algo dqn --seed {s['seed']} --no-eval "
        f"--hyperparams n_timesteps={s['steps']} encoder=<encoder>`, "
        f"{s['rounds']} round(s), encoders alternating within each round; "
        f"machine: {result['machine']['cpus']} CPUs "
        f"(load average {result['load_average_before']} before, {result['load_average_after']} after).",
    ]
    if result["table"]:
        lines += [
            "",
            "| encoder | env steps/s | train wall s | x hashed (wall) "
            "| train CPU s | x hashed (CPU) | process wall s |",
            "|---|---|---|---|---|---|---|",
        ]
    for name, r in result["table"].items():
        lines.append(
            f"| {name} | {r['steps_per_s_median']:.0f} | {r['train_wall_s_median']:.1f} "
            f"| {r.get('train_wall_vs_hashed', float('nan')):.2f} "
            f"| {r['train_cpu_s_median']:.1f} | {r.get('train_cpu_vs_hashed', float('nan')):.2f} "
            f"| {r['process_wall_s_median']:.1f} |"
        )
    if result.get("artefact_seconds"):
        lines += [
            "",
            "One-time artefact build before the timed runs (seconds, includes loading): "
            + ", ".join(f"{k} {v:.1f}" for k, v in result["artefact_seconds"].items()),
        ]
    q = result.get("quality")
    if q:
        lines += [
            "",
            f"Agreement with `minilm` on {q['commands']} distinct train-split commands "
            f"({q['pairs']} random pairs):",
            "",
            "| encoder | dim | Spearman of pairwise cosines | nearest-neighbour agreement "
            "| max abs diff | batched = single |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in q.items():
            if isinstance(r, dict):
                diff = f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else "-"
                same = {True: "yes", False: "NO"}[r["batched_equals_single"]]
                lines.append(
                    f"| {name} | {r['dim']} | {r['spearman_pairwise_cosine']:.3f} "
                    f"| {r['nearest_neighbour_agreement']:.3f} | {diff} | {same} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated encoder names")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=8000, help="n_timesteps per run")
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="runs per encoder (alternating); 0 with --quality: no training",
    )
    ap.add_argument("--quality", action="store_true", help="also compare embeddings with minilm")
    ap.add_argument(
        "--quality-tasks", type=int, default=1000, help="train-split tasks for --quality"
    )
    ap.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="run under the code at PATH too (PYTHONPATH), labelled LABEL; repeatable",
    )
    ap.add_argument("--result", default="benchmarks/results/train_throughput.json")
    ap.add_argument("extra", nargs="*", help="more KEY=VALUE hyperparameters for every run")
    args = ap.parse_args(argv)
    if shutil.which("poser") is None:
        ap.error(
            "the `poser` command is not on PATH; install the package (pip install -e '.[agents]')."
        )
    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    artefacts = build_artefacts(encoders)
    load_before = os.getloadavg()
    codes = [tuple(c.split("=", 1)) for c in args.code] or [None]
    variants = [(e, c) for e in encoders for c in codes]
    names = [f"{e}@{c[0]}" if c else e for e, c in variants]
    runs = []
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for name, code in order:
            row = run_once(name, args.seed, args.steps, args.extra, code)
            row["round"] = r
            runs.append(row)
            print(
                f"round {r} {row['variant']}: {row['steps_per_s']:.0f} steps/s, train {row['train_wall_s']:.1f} s wall "
                f"/ {row['train_cpu_s']:.1f} s CPU, process {row['process_wall_s']:.1f} s",
                flush=True,
            )
    result = {
        "command": "python "
        + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "settings": {
            "encoders": encoders,
            "seed": args.seed,
            "steps": args.steps,
            "rounds": args.rounds,
            "extra": args.extra,
            "code": args.code,
        },
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "artefact_seconds": artefacts,
        "runs": runs,
        "table": summarise(runs, names),
    }
    if args.quality:
        result["quality"] = quality(encoders, args.quality_tasks)
    out = Path(args.result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    md = markdown(result)
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
