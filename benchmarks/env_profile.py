"""Where an ImagePoser step and reset spend their time: cProfile's top functions and the
microseconds per step (and per reset) of each stage.

Random masked policy, one core (numpy/scipy/OpenCV threads pinned to 1). cProfile counts
CPU time too. The stage table
times each stage exclusively (a stage nested in another is subtracted from it) by wrapping
the stage's function, in CPU time of this process (``time.process_time``), which other
sessions' load on a shared machine inflates far less than wall time; the wrappers add
about a microsecond per call, so the table's total is slightly above an unwrapped step.

    pip install -e ".[bench]"
    python benchmarks/env_profile.py --steps 3000 --resets 1000 --out benchmarks/results/env_profile.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import poser_env  # noqa: E402, F401 - registers the ids

#: (stage label, module, attribute path): each is wrapped by a timer. Module-level
#: functions are patched in every module that imported them by name.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("task sampling", "poser_env.suites.shapes.tasks", "ShapesTaskSource.sample"),
    ("extractor: extract", "poser_env.suites.shapes.extractor", "ShapesExtractor.extract"),
    ("extractor: reflect", "poser_env.suites.shapes.extractor", "ShapesExtractor.reflect"),
    ("expert: edit scene", "poser_env.suites.shapes.experts", "ShapesExpert.edit_scene"),
    ("expert: place", "poser_env.suites.shapes.experts", "place"),
    ("expert: render", "poser_env.suites.shapes.scene", "render"),
    ("expert: artefacts", "poser_env.suites.shapes.experts", "ShapesExpert._artefacts"),
    ("expert: call (rest)", "poser_env.suites.shapes.experts", "ShapesExpert.__call__"),
    ("expert: edit scene", "poser_env.suites.shapes.skills", "V1Expert.edit_scene"),  # v1 experts
    ("expert: call (rest)", "poser_env.suites.shapes.skills", "V1Expert.__call__"),
    ("perception", "poser_env.suites.shapes.perception", "PerceptionCache.__call__"),
    ("critic: constraints", "poser_env.suites.shapes.critic", "ShapesCritic.check"),
    ("critic: judge (rest)", "poser_env.suites.shapes.critic", "ShapesCritic.judge"),
    ("info: Critique.to_dict", "poser_env.components", "Critique.to_dict"),
    ("env: observation", "poser_env.envs.image_poser", "ImagePoserEnv._obs"),
)


class StageTimer:
    """Exclusive wall time per stage, collected by wrapping functions."""

    def __init__(self):
        self.total: dict[str, float] = {}
        self._stack: list[list[float]] = []  # per open stage: [start, time of nested stages]

    def wrap(self, label: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._stack.append([time.process_time(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                start, nested = self._stack.pop()
                spent = time.process_time() - start
                self.total[label] = self.total.get(label, 0.0) + spent - nested
                if self._stack:
                    self._stack[-1][1] += spent

        return timed

    def install(self, stages=STAGES) -> list:
        """Wrap every stage; returns the undo list for :meth:`uninstall`."""
        undo = []
        for label, module_name, path in stages:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            owner_name, _, attr = path.rpartition(".")
            owner = getattr(module, owner_name, None) if owner_name else module
            # Only what the owner itself defines: an inherited method is timed on its class.
            original = vars(owner).get(attr) if owner is not None else None
            if original is None:
                continue
            wrapped = self.wrap(label, original)
            targets = [owner]
            if not owner_name:  # a function: also where it was imported by name
                targets += [
                    m
                    for m in list(sys.modules.values())
                    if m is not None
                    and m is not module
                    and getattr(m, "__name__", "").startswith("poser_env")
                    and getattr(m, attr, None) is original
                ]
            for t in targets:
                undo.append((t, attr, original))
                setattr(t, attr, wrapped)
        return undo

    @staticmethod
    def uninstall(undo) -> None:
        for t, attr, original in reversed(undo):
            setattr(t, attr, original)


def _sample(env):
    """A random action among the valid ones (as benchmarks/env_speed.py)."""
    return env.action_space.sample(mask=env.unwrapped.action_masks().astype(np.int8))


def run_steps(env, n: int, seed: int) -> None:
    """``n`` random masked steps (the benchmark's policy), resetting at episode ends."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(n):
        _, _, term, trunc, _ = env.step(_sample(env))
        if term or trunc:
            env.reset()


def run_resets(env, n: int, seed: int) -> None:
    for i in range(n):
        env.reset(seed=seed + i)


def _short_path(file: str, root: str) -> str:
    """A function's file without machine paths: relative to the repository, to
    site-packages or to the standard library."""
    file = file.split("site-packages" + os.sep)[-1].removeprefix(root)
    _, sep, tail = file.partition(os.sep + "lib" + os.sep + "python")
    return tail.partition(os.sep)[2] if sep else file


def top_functions(fn, k: int) -> tuple[str, list[dict]]:
    prof = cProfile.Profile(
        time.process_time
    )  # CPU time: preemption on a shared machine is not charged
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(k)
    rows = []
    root = str(Path(__file__).resolve().parents[1]) + os.sep
    for (file, line, name), (_, nc, tt, ct, _) in sorted(
        stats.stats.items(), key=lambda kv: -kv[1][2]
    )[:k]:
        where = _short_path(file, root)
        rows.append(
            {
                "function": f"{where}:{line}({name})",
                "ncalls": nc,
                "tottime_s": round(tt, 4),
                "cumtime_s": round(ct, 4),
            }
        )
    return buf.getvalue(), rows


def stage_table(fn, n: int) -> dict[str, float]:
    timer = StageTimer()
    undo = timer.install()
    try:
        start = time.process_time()
        fn()
        wall = time.process_time() - start
    finally:
        timer.uninstall(undo)
    table = {label: 1e6 * t / n for label, t in sorted(timer.total.items(), key=lambda kv: -kv[1])}
    table["env and gymnasium (rest)"] = 1e6 * (wall - sum(timer.total.values())) / n
    table["total"] = 1e6 * wall / n
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="ImagePoser-v0")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--resets", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None, help="write the tables as JSON here")
    args = ap.parse_args(argv)
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    env = gym.make(args.env)
    run_steps(env, 300, args.seed + 999)  # warm caches and imports
    out = {
        "command": "python benchmarks/env_profile.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "env": args.env,
    }
    for what, fn, n in (
        ("step", functools.partial(run_steps, env, args.steps, args.seed), args.steps),
        ("reset", functools.partial(run_resets, env, args.resets, args.seed), args.resets),
    ):
        text, rows = top_functions(fn, args.top)
        table = stage_table(fn, n)
        out[f"{what}_top_functions"] = rows
        out[f"{what}_stage_us"] = {k: round(v, 1) for k, v in table.items()}
        print(f"== {args.env}: cProfile of {n} {what}s (top {args.top} by own time)")
        print("\n".join(line for line in text.splitlines() if line.strip()))
        print(f"== {args.env}: microseconds per {what}, by stage (exclusive)")
        for k, v in table.items():
            print(f"  {k:32s} {v:8.1f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
