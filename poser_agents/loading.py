"""Load a run folder's model back as an agent, with its eval env.

Below both :mod:`poser_agents.train` (which resumes runs with :func:`load_model_file`) and
:mod:`poser_agents.evaluate` (which evaluates them with :func:`load_agent`), so neither imports
the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from poser_agents.algos import AlgoSpec, SB3Agent, resolve_algo
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


def load_model_file(spec: AlgoSpec, file: Path, env=None):
    """``spec``'s class ``.load(file)``; a damaged or foreign file becomes a :class:`RunFolderError`."""
    try:
        return spec.load().load(str(file), env=env, device="cpu")
    except Exception as e:
        if isinstance(e, PoserError):
            raise
        raise RunFolderError(
            f"Could not load the model {str(file)!r}: {type(e).__name__}: {e}. The file is damaged or was not "
            "written by this algorithm; resume from a checkpoint (delete model.zip and use --resume) or retrain."
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
    kind, target = resolve_algo(info.algo)
    if kind == "sb3":
        spec: AlgoSpec = target
        model = load_model_file(spec, info.model_path)
        _check_spaces(model, env, info)
        return SB3Agent(model, name=info.algo, masked=bool(cfg.get("masked_eval", True))), env, info
    if hasattr(target, "load"):
        try:
            return target.load(str(info.model_path), env=env), env, info
        except Exception as e:
            env.close()
            if isinstance(e, PoserError):
                raise
            raise RunFolderError(
                f"Could not load the model {str(info.model_path)!r} of {info.algo!r}: {type(e).__name__}: {e}. "
                "The file is damaged or was not written by this algorithm; retrain the run."
            ) from e
    raise RunFolderError(f"Algorithm {info.algo!r} has no load(); its runs cannot be reloaded.")


def _check_spaces(model, env, info: RunInfo) -> None:
    """Refuse a model whose observation space does not match the env rebuilt from its
    config (SB3 stores images channel-first, the env gives them channel-last)."""

    def same(a, b) -> bool:
        if a.shape == b.shape:
            return True
        return len(a.shape) == 3 and a.shape == (b.shape[2], b.shape[0], b.shape[1])

    expected, got = getattr(model, "observation_space", None), env.observation_space
    if expected is None:
        return
    ok = set(getattr(expected, "spaces", {})) == set(getattr(got, "spaces", {})) and all(
        same(expected[k], got[k]) for k in got.spaces
    )
    if not ok:
        raise RunFolderError(
            f"The model in {str(info.path)!r} expects observations {expected}, but the env built from its "
            f"config gives {got}; the run is incompatible with this version."
        )
