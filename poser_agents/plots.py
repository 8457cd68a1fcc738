"""Matplotlib figures of runs and benchmarks (written as PNG, no display needed).

* :func:`training_figure` - the paper's Figure 4: training loss and cumulative average
  reward (mean episode return so far) over training steps, with the rolling success rate.
* :func:`expert_figure` - the paper's Figure 5: average step reward of each expert's calls
  over training, and how often each expert was chosen.
* :func:`trajectory_figure` - sampled episodes: prompt, each command, expert, image, verdict.
* :func:`learning_curves` - benchmark success rate over training steps, mean across seeds
  with a 95% confidence band (the min-max range with only two seeds).
"""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    from poser_env._imports import require

    matplotlib = require("matplotlib", "agents", "Plotting")
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(
    plt: Any, fig: Any, out: Path, title: str = "", dpi: int = 100, rect: tuple | None = None
) -> Path:
    """Title, lay out, write (creating the folder) and close ``fig``; returns ``out``."""
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=rect)  # rect=None is matplotlib's default
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def read_csv(path: str | Path) -> dict[str, np.ndarray]:
    """A CSV file of numbers as ``{column: array}`` (non-numeric columns stay strings)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    out: dict[str, np.ndarray] = {}
    for key in rows[0]:
        vals = [r[key] for r in rows]
        try:
            out[key] = np.array([float(v) for v in vals])
        except ValueError:
            out[key] = np.array(vals)
    return out


def rolling(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (shorter at the start)."""
    if x.size == 0:
        return x
    c = np.cumsum(np.insert(np.asarray(x, float), 0, 0.0))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def training_figure(run_dir: str | Path, out: str | Path, title: str = "") -> Path:
    """Figure 4: loss and cumulative average reward over training steps."""
    plt = _plt()
    run_dir, out = Path(run_dir), Path(out)
    eps = read_csv(run_dir / "episodes.csv")
    losses = read_csv(run_dir / "losses.csv")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    if losses:
        ax.plot(losses["timestep"], losses["loss"], lw=0.5, alpha=0.4, color="C0")
        ax.plot(
            losses["timestep"],
            rolling(losses["loss"], 50),
            color="C0",
            label="rolling mean (50 updates)",
        )
        ax.set_yscale("log") if np.all(losses["loss"] > 0) else None
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no loss logged yet", ha="center", transform=ax.transAxes)
    ax.set(title="training loss", xlabel="env steps", ylabel="loss")
    ax = axes[1]
    if eps:
        ret = eps["return"]
        ax.plot(
            eps["timestep"],
            np.cumsum(ret) / np.arange(1, ret.size + 1),
            color="C1",
            label="cumulative average",
        )
        ax.plot(
            eps["timestep"],
            rolling(ret, 200),
            color="C2",
            alpha=0.7,
            label="rolling mean (200 episodes)",
        )
        ax.legend()
    ax.set(title="episode reward", xlabel="env steps", ylabel="return")
    ax = axes[2]
    if eps:
        ax.plot(eps["timestep"], rolling(eps["success"], 200), color="C3")
        ax.set_ylim(0, 1)
    ax.set(
        title="training success rate (rolling 200 episodes)", xlabel="env steps", ylabel="success"
    )
    return _save(plt, fig, out, title)


def expert_figure(run_dir: str | Path, out: str | Path, title: str = "") -> Path:
    """Figure 5: per-expert mean step reward and share of calls over training."""
    plt = _plt()
    run_dir, out = Path(run_dir), Path(out)
    data = read_csv(run_dir / "experts.csv")
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    if data:
        steps = np.unique(data["timestep"])
        experts = sorted(set(data["expert"].tolist()))
        calls_per_step = {s: data["calls"][data["timestep"] == s].sum() for s in steps}
        for i, name in enumerate(experts):
            sel = data["expert"] == name
            t, calls = data["timestep"][sel], data["calls"][sel]
            color = f"C{i % 10}"
            ls = "-" if i < 10 else "--"
            axes[0].plot(t, data["mean_reward"][sel], color=color, ls=ls, label=name)
            axes[1].plot(
                t, calls / np.array([calls_per_step[s] for s in t]), color=color, ls=ls, label=name
            )
        axes[1].legend(fontsize=7, ncol=2)
    axes[0].set(
        title="average step reward per expert",
        xlabel="env steps",
        ylabel="mean reward of its calls",
    )
    axes[1].set(
        title="how often each expert is chosen", xlabel="env steps", ylabel="share of calls"
    )
    return _save(plt, fig, out, title)


def trajectory_figure(
    trajectories: Sequence[dict[str, Any]], out: str | Path, title: str = ""
) -> Path:
    """One row per episode: the prompt, then each step's image with command, expert and verdict."""
    plt = _plt()
    out = Path(out)
    n = len(trajectories)
    cols = max(1, max(len(t["steps"]) for t in trajectories))
    fig, axes = plt.subplots(n, cols, figsize=(2.6 * cols, 3.1 * n), squeeze=False)
    for r, traj in enumerate(trajectories):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(traj["steps"]):
                continue
            s = traj["steps"][c]
            ax.imshow(s["image"])
            verdict = "accepted" if s["accepted"] else f"rejected ({s['alignment']:.2f})"
            caption = "\n".join(textwrap.wrap(s["command"], 30)[:3])
            ax.set_title(
                f"{s['expert']}: {verdict}\n{caption}",
                fontsize=7,
                color="green" if s["accepted"] else "red",
            )
        final = traj["final"]
        prompt = "\n".join(textwrap.wrap(traj["prompt"], 38)[:4])
        axes[r][0].text(
            -0.08,
            0.5,
            f"{prompt}\n\nsuccess={bool(final['success'])}\ncost={final['total_cost']:.1f}",
            transform=axes[r][0].transAxes,
            ha="right",
            va="center",
            fontsize=7,
        )
    return _save(plt, fig, out, title, dpi=90, rect=(0.18, 0, 1, 1))


def learning_curves(
    runs: dict[str, list[Path]],
    out: str | Path,
    points: int = 50,
    window: int = 200,
    title: str = "",
) -> Path:
    """Training success rate over steps per algorithm: mean over seeds with a band (the
    95% Student-t interval of the mean with 3 or more seeds, the min-max range with 2).

    Args:
        runs: algorithm name -> run folders (one per seed).
        points: Grid points on the step axis.
        window: Episodes in the rolling success rate.
    """
    from scipy import stats

    plt = _plt()
    out = Path(out)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, folders) in enumerate(runs.items()):
        curves = []
        horizon = None
        for folder in folders:
            eps = read_csv(Path(folder) / "episodes.csv")
            if not eps:
                continue
            curves.append((eps["timestep"], rolling(eps["success"], window)))
            last = eps["timestep"][-1]
            horizon = last if horizon is None else min(horizon, last)
        if not curves:
            continue
        grid = np.linspace(0, horizon, points)
        ys = np.array([np.interp(grid, t, y) for t, y in curves])
        mean = ys.mean(axis=0)
        n = len(curves)
        band = "95% CI" if n >= 3 else ("min-max" if n == 2 else "")
        ax.plot(
            grid,
            mean,
            color=f"C{i}",
            label=f"{name} ({n} seed{'s' if n > 1 else ''}{', band ' + band if band else ''})",
        )
        if n >= 3:
            half = stats.t.ppf(0.975, n - 1) * ys.std(axis=0, ddof=1) / np.sqrt(n)
            ax.fill_between(
                grid,
                np.clip(mean - half, 0, 1),
                np.clip(mean + half, 0, 1),
                color=f"C{i}",
                alpha=0.2,
            )
        elif n == 2:  # a t-interval from two seeds is uninformatively wide; show the range
            ax.fill_between(grid, ys.min(axis=0), ys.max(axis=0), color=f"C{i}", alpha=0.2)
    ax.set(
        xlabel="env steps",
        ylabel=f"training success (rolling {window} episodes)",
        ylim=(0, 1),
        title=title or "learning curves",
    )
    ax.legend(fontsize=8)
    return _save(plt, fig, out)
