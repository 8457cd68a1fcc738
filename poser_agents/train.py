"""Train an orchestration policy and write a self-contained run folder.

A run folder holds::

    model.zip            the SB3 model (or the Agent's own save, if it has one)
    replay_buffer.pkl    off-policy algorithms: the replay buffer, for --resume
    meta.json            format version, algo, env id, seed, resolved config, versions, command
    config.yaml          the resolved hyperparameters, human-readable
    logs/                SB3 progress.csv and TensorBoard events
    episodes.csv, losses.csv, experts.csv   (see poser_agents.callbacks)
    training_curves.png  Figure 4: loss and cumulative average reward over steps
    expert_rewards.png   Figure 5: mean step reward and usage per expert over steps
    eval.json, trajectories.png   test-split evaluation at the end of training

Ctrl-C stops training between two steps and saves everything above (the run is marked
``interrupted`` in meta.json); ``train(resume=run_dir)`` continues up to ``n_timesteps``.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from poser_agents.algos import AlgoSpec, SB3Agent, resolve_algo
from poser_agents.callbacks import PoserLogger, StopOnFlag
from poser_agents.config import (
    RUN_FORMAT,
    RUN_FORMAT_VERSION,
    RunInfo,
    check_env_id,
    command_line,
    load_hyperparams,
    make_env,
    read_run,
    versions,
    write_meta,
)
from poser_agents.error import AgentsConfigError, RunFolderError
from poser_agents.networks import resolve_policy_kwargs

DEFAULTS: dict[str, Any] = {
    "n_timesteps": 100_000,
    "policy": "MultiInputPolicy",
    "state": "text",
    "encoder": "minilm",
    "encoder_kwargs": {},
    "env_kwargs": {},
    "n_envs": 1,
    "vec_env": "dummy",
    "eval_episodes": 200,
    "masked_eval": True,
    "log_window": 1000,
    "checkpoint_freq": 0,
}


def _require_sb3() -> None:
    try:
        import stable_baselines3  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        from poser_env.error import MissingDependencyError

        raise MissingDependencyError(e.name or "stable-baselines3", "agents", "Training") from e


def default_run_dir(algo: str, env_id: str, seed: int, root: str | Path = "runs") -> Path:
    """``runs/<algo>_<env_id>_s<seed>``, with ``_2``, ``_3``... if it exists."""
    safe = algo.replace(":", "_").replace("/", "_")
    base = Path(root) / f"{safe}_{env_id}_s{seed}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}_{i}")
    return path


VEC_ENVS = ("dummy", "subproc")


def _vec_env(config: dict[str, Any], env_id: str, seed: int):
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    kind = config["vec_env"]

    def factory():
        return Monitor(
            make_env(env_id, config["state"], config["encoder"], config["encoder_kwargs"], config["env_kwargs"], split="train")
        )

    def worker_factory():
        # Runs in the worker: Ctrl-C is the parent's to handle (it stops after the step and
        # saves a checkpoint), so a worker must not die of it first.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return factory()

    n = int(config["n_envs"])
    if kind == "dummy":
        vec = DummyVecEnv([factory] * n)
    else:
        # One env here first, as Gymnasium's AsyncVectorEnv does: a bad config fails in this
        # process with its own message, and whatever the env starts on first use (the local
        # Ray instance of pool="ray", which exports RAY_ADDRESS) exists before the workers
        # start, so they join it instead of each starting their own.
        factory().close()
        # spawn, not fork: forking a process that holds torch (or CUDA, or Ray) state is unsafe.
        vec = SubprocVecEnv([worker_factory] * n, start_method="spawn")
    vec.seed(seed)
    return vec


def _algo_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    kw = {k: v for k, v in config.items() if k not in DEFAULTS}
    if "policy_kwargs" in kw:
        kw["policy_kwargs"] = resolve_policy_kwargs(kw["policy_kwargs"])
    return kw


def train(
    algo: str = "dqn",
    env_id: str = "ImagePoser-v0",
    seed: int = 0,
    run_dir: str | Path | None = None,
    hyperparams: dict[str, Any] | None = None,
    hyperparams_file: str | Path | None = None,
    progress_bar: bool = False,
    evaluate: bool = True,
    resume: str | Path | None = None,
    threads: int | None = 1,
    verbose: int = 0,
    callbacks: list[Any] | None = None,
) -> Path:
    """Train ``algo`` on ``env_id`` and write a run folder (see the module docstring).

    Args:
        algo: A name from :data:`poser_agents.algos.ALGOS` or an import path
            ``"pkg.module:Class"`` (SB3-shaped or an :class:`~poser_agents.algos.Agent`).
        env_id: A registered env id (``ImagePoser-v0`` and its presets).
        seed: Seeds torch, numpy, the env's tasks and the algorithm.
        run_dir: Output folder (default ``runs/<algo>_<env>_s<seed>``); must not exist.
        hyperparams: Overrides merged over the YAML file (``{"n_timesteps": 5000}``).
        hyperparams_file: Another YAML file instead of ``hyperparams/<algo>.yml``.
        progress_bar: Show SB3's progress bar (tqdm + rich).
        evaluate: Evaluate on the test split at the end (``eval_episodes`` episodes).
        resume: A run folder to continue (its config is reused; ``hyperparams`` may change
            ``n_timesteps``).
        threads: ``torch.set_num_threads`` (1 is fastest for these small networks and keeps
            results identical across machines with different core counts); None leaves it.
        verbose: SB3 verbosity.
        callbacks: Extra SB3 callbacks, run after poser's own.

    Returns:
        The run folder.
    """
    _require_sb3()
    import torch

    if threads is not None:
        torch.set_num_threads(int(threads))
    if resume is not None:
        return _resume(Path(resume), hyperparams or {}, progress_bar, evaluate, verbose, callbacks)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise AgentsConfigError(f"seed must be an integer >= 0, got {seed!r}.")
    check_env_id(env_id)
    kind, target = resolve_algo(algo)
    if kind == "baseline":
        raise AgentsConfigError(
            f"{algo!r} is a baseline; it does not learn. Evaluate it with 'poser benchmark --algos {algo}'."
        )
    cls = target.load() if kind == "sb3" else target
    params = load_hyperparams(algo, env_id, cls, hyperparams_file, hyperparams)
    config = {**DEFAULTS, **params}
    for key in ("n_timesteps", "n_envs", "eval_episodes", "log_window"):
        v = config[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise AgentsConfigError(f"{key} must be an integer >= 1, got {v!r}.")
    if config["vec_env"] not in VEC_ENVS:
        raise AgentsConfigError(f"vec_env must be one of {list(VEC_ENVS)}, got {config['vec_env']!r}.")
    if config["vec_env"] != "dummy" and kind != "sb3":
        raise AgentsConfigError(f"vec_env={config['vec_env']!r} needs a Stable-Baselines3 algorithm; {algo!r} acts on one env in this process.")
    path = Path(run_dir) if run_dir is not None else default_run_dir(algo, env_id, seed)
    if path.exists() and any(path.iterdir()):
        raise RunFolderError(f"Run folder {str(path)!r} already exists and is not empty; pick another or use --resume.")
    path.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "algo": algo,
        "kind": kind,
        "env_id": env_id,
        "seed": seed,
        "config": config,
        "versions": versions(),
        "command": command_line(),
        "timesteps_done": 0,
        "finished": False,
        "interrupted": False,
    }
    (path / "config.yaml").write_text(yaml.safe_dump({"algo": algo, "env_id": env_id, "seed": seed, **config}, sort_keys=True))
    write_meta(path, meta)

    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.utils import set_random_seed

    set_random_seed(seed)
    env = _vec_env(config, env_id, seed)
    if kind == "sb3":
        model = cls(config["policy"], env, seed=seed, verbose=verbose, device="cpu", **_algo_kwargs(config))
        model.set_logger(configure(str(path / "logs"), ["csv", "tensorboard"]))
    else:
        model = cls(env.envs[0], seed=seed, **_algo_kwargs(config))
    return _learn(model, kind, path, meta, config, int(config["n_timesteps"]), progress_bar, evaluate, True, callbacks)


def _learn(model, kind, path: Path, meta: dict, config: dict, steps: int, progress_bar: bool, evaluate: bool, reset: bool, extra: list | None = None) -> Path:
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback

    logger_cb = PoserLogger(path, window=int(config["log_window"]))
    flag = {"stop": False}
    callbacks = [logger_cb, StopOnFlag(flag), *(extra or [])]
    if int(config.get("checkpoint_freq") or 0) > 0:
        callbacks.append(CheckpointCallback(int(config["checkpoint_freq"]), str(path / "checkpoints"), name_prefix="model"))

    def on_sigint(signum, frame):
        if flag["stop"]:  # second Ctrl-C: give up immediately
            raise KeyboardInterrupt
        flag["stop"] = True
        print("\nCtrl-C: stopping after this step and saving a checkpoint (press again to abort).", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        if kind == "sb3":
            model.learn(steps, callback=CallbackList(callbacks), progress_bar=progress_bar, reset_num_timesteps=reset)
        else:
            model.learn(steps, callback=CallbackList(callbacks))
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        logger_cb.close()
    done = int(getattr(model, "num_timesteps", steps))
    # Kept in meta.json only (never in the CSV curves, which must match across same-seed runs).
    meta["train_wall_seconds"] = meta.get("train_wall_seconds", 0.0) + time.perf_counter() - wall
    meta["train_cpu_seconds"] = meta.get("train_cpu_seconds", 0.0) + time.process_time() - cpu
    _save(model, kind, path)
    if config["vec_env"] != "dummy":
        model.get_env().close()  # stop the worker processes
    meta.update(timesteps_done=done, interrupted=flag["stop"], finished=not flag["stop"])
    write_meta(path, meta)
    from poser_agents.plots import expert_figure, training_figure

    training_figure(path, path / "training_curves.png", title=f"{meta['algo']} on {meta['env_id']} (seed {meta['seed']})")
    expert_figure(path, path / "expert_rewards.png", title=f"{meta['algo']} on {meta['env_id']} (seed {meta['seed']})")
    if evaluate and not flag["stop"]:
        from poser_agents.evaluate import evaluate_run

        evaluate_run(path, episodes=int(config["eval_episodes"]))
    return path


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _save(model, kind: str, path: Path) -> None:
    if kind == "sb3":
        tmp = path / "model.tmp.zip"
        model.save(str(tmp))
        shutil.move(str(tmp), str(path / "model.zip"))  # never leave a half-written model.zip
        if hasattr(model, "save_replay_buffer") and getattr(model, "replay_buffer", None) is not None:
            model.save_replay_buffer(str(path / "replay_buffer.pkl"))
    elif hasattr(model, "save"):
        model.save(str(path / "model.zip"))


def _resume(path: Path, overrides: dict[str, Any], progress_bar: bool, evaluate: bool, verbose: int, extra: list | None = None) -> Path:
    info = read_run(path)
    unknown = sorted(set(overrides) - {"n_timesteps"})
    if unknown:
        raise AgentsConfigError(f"--resume only accepts an n_timesteps override (the run's config is kept), got {unknown}.")
    kind, target = resolve_algo(info.algo)
    if kind != "sb3":
        raise RunFolderError(f"Resuming is supported for SB3-shaped algorithms; {info.algo!r} is an Agent plug-in.")
    # DEFAULTS first: a run written before a key existed (vec_env) gets its old behaviour.
    config = {**DEFAULTS, **info.config, **overrides}
    meta = dict(info.meta, config=config)
    done = int(meta.get("timesteps_done", 0))
    left = int(config["n_timesteps"]) - done
    if left <= 0:
        raise RunFolderError(
            f"{str(path)!r} already trained {done} of n_timesteps={config['n_timesteps']}; "
            "pass a larger n_timesteps (--hyperparams n_timesteps=...) to continue."
        )
    from stable_baselines3.common.logger import configure

    env = _vec_env(config, info.env_id, info.seed + done)  # fresh tasks, still seeded
    model = target.load().load(str(info.model_path), env=env, device="cpu")
    buffer = path / "replay_buffer.pkl"
    if buffer.is_file() and hasattr(model, "load_replay_buffer"):
        model.load_replay_buffer(str(buffer))
    model.set_logger(configure(str(path / "logs"), ["csv", "tensorboard"]))
    return _learn(model, kind, path, meta, config, left, progress_bar, evaluate, False, extra)


def load_agent(run_dir: str | Path, split: str = "test", threads: int | None = 1):
    """Load a run folder's model as an :class:`~poser_agents.algos.Agent` with its eval env.

    Args:
        run_dir: A folder written by :func:`train`.
        split: Task split of the returned env.
        threads: ``torch.set_num_threads`` (1, as in training, so greedy actions match).

    Returns:
        ``(agent, env, RunInfo)``; ``env`` is the encoded env on ``split``.
    """
    _require_sb3()
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))
    info: RunInfo = read_run(run_dir)
    cfg = info.config
    env = make_env(info.env_id, cfg["state"], cfg["encoder"], cfg.get("encoder_kwargs"), cfg.get("env_kwargs"), split=split)
    kind, target = resolve_algo(info.algo)
    if kind == "sb3":
        spec: AlgoSpec = target
        model = spec.load().load(str(info.model_path), device="cpu")
        _check_spaces(model, env, info)
        return SB3Agent(model, name=info.algo, masked=bool(cfg.get("masked_eval", True))), env, info
    if hasattr(target, "load"):
        return target.load(str(info.model_path), env=env), env, info
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
