"""Stable-Baselines3 callbacks that record what the paper's figures need.

:class:`PoserLogger` writes three CSV files into the run folder while training:

* ``episodes.csv`` - one row per finished episode: timestep, return, length, success,
  alignment, total cost (the cumulative average reward of Figure 4 comes from it);
* ``losses.csv`` - the algorithm's training loss after every update (Figure 4);
* ``experts.csv`` - every ``window`` steps, per expert: calls, mean step reward, mean
  critic alignment and acceptance rate of its calls (Figure 5).

It also records ``poser/success_rate`` and ``poser/ep_cost`` in SB3's logger (TensorBoard,
``progress.csv``). Files are opened in append mode so a resumed run continues them.
Nothing time-dependent is written, so two runs with the same seed write the same files.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from poser_agents.error import AgentsConfigError

EPISODE_FIELDS = ("timestep", "episode", "return", "length", "success", "alignment", "total_cost")
LOSS_FIELDS = ("timestep", "loss")
EXPERT_FIELDS = ("timestep", "expert", "calls", "mean_reward", "mean_alignment", "accept_rate")
#: SB3 logger keys holding a training loss, by preference.
LOSS_KEYS = ("train/loss", "train/value_loss")


class PoserLogger(BaseCallback):
    """Per-episode, per-update and per-expert logging for ``ImagePoser`` training.

    Args:
        run_dir: Folder for the CSV files.
        window: Steps per row block of ``experts.csv``.
        verbose: SB3 verbosity.
    """

    def __init__(self, run_dir: str | Path, window: int = 1000, verbose: int = 0):
        super().__init__(verbose)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise AgentsConfigError(f"window must be an integer >= 1, got {window!r}.")
        self.run_dir = Path(run_dir)
        self.window = window
        self._files: dict[str, Any] = {}
        self._writers: dict[str, csv.writer] = {}
        self._returns: np.ndarray | None = None
        self._lengths: np.ndarray | None = None
        self._episode = 0
        self._recent_success: list[float] = []
        self._last_loss_step = -1
        self._window_start = 0
        self._expert: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0])

    # ------------------------------------------------------------------ files
    def _writer(self, name: str, fields: tuple[str, ...]) -> csv.writer:
        if name not in self._writers:
            path = self.run_dir / name
            new = not path.exists() or path.stat().st_size == 0
            f = open(path, "a", newline="")  # noqa: SIM115 - closed in _on_training_end
            w = csv.writer(f)
            if new:
                w.writerow(fields)
            self._files[name], self._writers[name] = f, w
        return self._writers[name]

    def _on_training_start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        n = self.training_env.num_envs
        self._returns = np.zeros(n)
        self._lengths = np.zeros(n, int)
        self._window_start = self.num_timesteps
        # Continue episode numbering on resume.
        path = self.run_dir / "episodes.csv"
        if path.exists():
            with open(path) as f:
                self._episode = max(0, sum(1 for _ in f) - 1)

    def _on_rollout_start(self) -> None:
        # The previous update's loss is in the logger until the next dump.
        values = self.model.logger.name_to_value
        for key in LOSS_KEYS:
            if key in values and self.num_timesteps != self._last_loss_step:
                self._writer("losses.csv", LOSS_FIELDS).writerow(
                    [self.num_timesteps, f"{float(values[key]):.6g}"]
                )
                self._last_loss_step = self.num_timesteps
                break

    def _on_step(self) -> bool:
        infos = self.locals.get("infos", [])
        rewards = np.asarray(self.locals.get("rewards", np.zeros(len(infos))), float)
        dones = np.asarray(self.locals.get("dones", np.zeros(len(infos), bool)))
        for i, info in enumerate(infos):
            self._returns[i] += rewards[i]
            self._lengths[i] += 1
            expert = info.get("expert")
            if expert is not None:
                stats = self._expert[expert]
                stats[0] += 1
                stats[1] += float(rewards[i])
                verdict = info.get("verdict") or {}
                stats[2] += float(verdict.get("alignment", 0.0))
                stats[3] += int(bool(info.get("accepted")))
            if dones[i]:
                final = info.get("final_metrics") or {}
                self._episode += 1
                success = float(bool(final.get("success", False)))
                self._writer("episodes.csv", EPISODE_FIELDS).writerow(
                    [
                        self.num_timesteps,
                        self._episode,
                        f"{self._returns[i]:.6g}",
                        int(self._lengths[i]),
                        int(success),
                        f"{float(final.get('alignment', 0.0)):.6g}",
                        f"{float(final.get('total_cost', 0.0)):.6g}",
                    ]
                )
                self._recent_success = (self._recent_success + [success])[-100:]
                self.logger.record("poser/success_rate", float(np.mean(self._recent_success)))
                self.logger.record("poser/ep_cost", float(final.get("total_cost", 0.0)))
                self._returns[i] = 0.0
                self._lengths[i] = 0
        if self.num_timesteps - self._window_start >= self.window:
            self._flush_experts()
        return True

    def _flush_experts(self) -> None:
        w = self._writer("experts.csv", EXPERT_FIELDS)
        for name in sorted(self._expert):
            calls, rew, align, acc = self._expert[name]
            if calls:
                w.writerow(
                    [
                        self.num_timesteps,
                        name,
                        int(calls),
                        f"{rew / calls:.6g}",
                        f"{align / calls:.6g}",
                        f"{acc / calls:.6g}",
                    ]
                )
        self._expert.clear()
        self._window_start = self.num_timesteps

    def _on_training_end(self) -> None:
        if self._expert:
            self._flush_experts()
        self.close()

    def close(self) -> None:
        """Flush and close the CSV files (safe to call twice)."""
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._writers.clear()


class StopOnFlag(BaseCallback):
    """Stops training when ``flag["stop"]`` becomes True (set by a SIGINT handler), so that
    Ctrl-C ends ``learn()`` between steps and the model can be saved in a usable state."""

    def __init__(self, flag: dict[str, bool]):
        super().__init__()
        self.flag = flag

    def _on_step(self) -> bool:
        return not self.flag.get("stop", False)
