"""Load a run folder's model back as an agent, with its eval env.

Below both :mod:`poser_agents.train` (which resumes runs with :func:`load_model_file`) and
:mod:`poser_agents.evaluate` (which evaluates them with :func:`load_agent`), so neither imports
the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from poser_agents.algos import PluginAgent, SB3Agent, make_learner
from poser_agents.config import RunInfo, make_env, read_run
from poser_agents.error import AgentsConfigError, RunFolderError
from poser_env._imports import require
from poser_env.error import PoserError


def require_sb3() -> None:
    """Raise :class:`~poser_env.error.MissingDependencyError` unless SB3 and torch import."""
    require("stable_baselines3", "agents", "Training", package="stable-baselines3")
    require("torch", "agents", "Training")


def check_threads(threads: Any) -> None:
    """Refuse a ``threads`` value that is not ``None`` or an integer >= 1."""
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise AgentsConfigError(
            f"threads must be an integer >= 1 (or None to keep torch's setting), got {threads!r}."
        )


def load_model_file(learner: SB3Agent | PluginAgent, file: Path, **kwargs: Any):
    """``learner.load(file, **kwargs)``; a damaged or foreign file becomes a :class:`RunFolderError`."""
    try:
        return learner.load(file, **kwargs)
    except Exception as e:
        if isinstance(e, PoserError):
            raise
        resume = "resume from a checkpoint (delete model.zip and use --resume) or "
        raise RunFolderError(
            f"Could not load the model {str(file)!r} of {learner.name!r}: {type(e).__name__}: {e}. The file is "
            f"damaged or was not written by this algorithm; {resume if learner.resumable else ''}retrain."
        ) from e


def load_agent(run_dir: str | Path, split: str = "test", threads: int | None = 1):
    """Load a run folder's model as an :class:`~poser_agents.algos.Agent` with its eval env.

    Args:
        run_dir: A folder written by :func:`train`.
        split: Task split of the returned env.
        threads: ``torch.set_num_threads`` (1, as in training, so greedy actions match).

    Returns:
        ``(agent, env, RunInfo)``; ``env`` is the encoded env on ``split``.
    """
    check_threads(threads)
    require_sb3()
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))
    info: RunInfo = read_run(run_dir)
    cfg = info.config
    env = make_env(
        info.env_id,
        cfg["state"],
        cfg["encoder"],
        cfg.get("encoder_kwargs"),
        cfg.get("env_kwargs"),
        split=split,
    )
    learner = make_learner(info.algo)
    learner.masked = bool(cfg.get("masked_eval", True))
    try:
        return load_model_file(learner, info.model_path, eval_env=env), env, info
    except BaseException:
        env.close()
        raise
