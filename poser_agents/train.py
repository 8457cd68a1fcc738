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

import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from poser_agents.algos import PluginAgent, SB3Agent, make_learner
from poser_agents.config import (
    POSER_KEYS,
    RUN_FORMAT,
    RUN_FORMAT_VERSION,
    RunClaim,
    RunInfo,
    check_env_id,
    claim_run_folder,
    command_line,
    latest_checkpoint,
    load_hyperparams,
    make_env,
    read_run,
    versions,
    write_meta,
)
from poser_agents.error import AgentsConfigError, RunFolderError
from poser_agents.evaluate import evaluate_run
from poser_agents.loading import check_threads, load_agent, load_model_file, require_sb3  # noqa: F401 (load_agent: public path)
from poser_agents.plots import expert_figure, training_figure
from poser_env.error import PoserError
from poser_env.registry import check_kwargs

DEFAULTS: dict[str, Any] = {key: default for key, (default, _) in POSER_KEYS.items()}


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
            make_env(
                env_id,
                config["state"],
                config["encoder"],
                config["encoder_kwargs"],
                config["env_kwargs"],
                split="train",
            )
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
        from poser_agents.networks import resolve_policy_kwargs

        kw["policy_kwargs"] = resolve_policy_kwargs(kw["policy_kwargs"])
    return kw


def _check_config(config: dict[str, Any], learner: SB3Agent | PluginAgent) -> None:
    for key in ("n_timesteps", "n_envs", "eval_episodes", "log_window"):
        v = config[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise AgentsConfigError(f"{key} must be an integer >= 1, got {v!r}.")
    v = config["checkpoint_freq"]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise AgentsConfigError(
            f"checkpoint_freq must be an integer >= 0 (0: no checkpoints), got {v!r}."
        )
    for key in ("encoder_kwargs", "env_kwargs"):
        if not isinstance(config[key], dict):
            raise AgentsConfigError(
                f"{key} must be a mapping of keyword arguments, got {type(config[key]).__name__} {config[key]!r}."
            )
    if not isinstance(config["masked_eval"], bool):
        raise AgentsConfigError(
            f"masked_eval must be true or false, got {config['masked_eval']!r}."
        )
    if config["vec_env"] not in VEC_ENVS:
        raise AgentsConfigError(
            f"vec_env must be one of {list(VEC_ENVS)}, got {config['vec_env']!r}."
        )
    if config["vec_env"] != "dummy" and not learner.vec_envs:
        raise AgentsConfigError(
            f"vec_env={config['vec_env']!r} needs a Stable-Baselines3 algorithm; "
            f"{learner.name!r} acts on one env in this process."
        )


def _build_model(learner, config: dict[str, Any], env, seed: int, verbose: int) -> None:
    """Build the algorithm from the config; a value it rejects becomes one clear error."""
    kwargs = _algo_kwargs(config)
    try:
        learner.build(env, seed, verbose, config["policy"], **kwargs)
    except (AssertionError, ValueError, TypeError, KeyError) as e:
        if isinstance(e, PoserError):
            raise
        raise AgentsConfigError(
            f"{learner.name} could not be built from its hyperparameters ({type(e).__name__}: {e}); "
            f"check the values of {sorted(kwargs)} and policy={config['policy']!r}."
        ) from e


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
        run_dir: Output folder (default ``runs/<algo>_<env>_s<seed>``, or the next free
            ``_2``, ``_3``...); must not exist or be empty. It is claimed with a lock before
            any slow work, so a second process writing it is refused at once; if anything
            fails before training starts, what this call wrote is removed.
        hyperparams: Overrides merged over the YAML file (``{"n_timesteps": 5000}``).
        hyperparams_file: Another YAML file instead of ``hyperparams/<algo>.yml``.
        progress_bar: Show SB3's progress bar (tqdm + rich).
        evaluate: Evaluate on the test split at the end (``eval_episodes`` episodes).
        resume: A run folder to continue (its config is reused; ``hyperparams`` may change
            ``n_timesteps``), from ``model.zip`` or, when a later one exists (a killed
            run), from the newest ``checkpoints/model_<steps>_steps.zip``.
        threads: ``torch.set_num_threads`` (1 is fastest for these small networks and keeps
            results identical across machines with different core counts); None leaves it.
        verbose: SB3 verbosity.
        callbacks: Extra SB3 callbacks, run after poser's own.

    Returns:
        The run folder.

    Raises:
        AgentsConfigError: An invalid setting (unknown key, value out of range, a value the
            algorithm rejects).
        ArgumentTypeError: A hyperparameter of the wrong type (``learning_rate="fast"``).
        RunLockedError: Another process is writing the run folder.
        RunFolderError: The run folder holds files (or, with ``resume``, has no model).
        OutputPathError: The run folder cannot be created or written.
    """
    check_threads(threads)
    if resume is not None:
        return _resume(
            Path(resume), hyperparams or {}, progress_bar, evaluate, verbose, callbacks, threads
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise AgentsConfigError(f"seed must be an integer >= 0, got {seed!r}.")
    check_env_id(env_id)
    learner = make_learner(algo)
    # Claimed first (imports, the env and the model take seconds): a second writer is
    # refused now, and whatever fails before training starts removes what it wrote.
    if run_dir is not None:
        path = Path(run_dir)
        claim = claim_run_folder(path, new=True)
    else:
        claim = _claim_default_run_dir(algo, env_id, seed)
        path = claim.path
    try:
        try:
            env_config, meta = _setup(
                claim,
                learner,
                env_id,
                seed,
                hyperparams,
                hyperparams_file,
                threads,
                verbose,
            )
        except BaseException:
            claim.discard()
            raise
        return _learn(
            learner,
            path,
            meta,
            env_config,
            int(env_config["n_timesteps"]),
            progress_bar,
            evaluate,
            True,
            callbacks,
        )
    finally:
        claim.release()


def _claim_default_run_dir(algo: str, env_id: str, seed: int) -> RunClaim:
    """Claim ``runs/<algo>_<env>_s<seed>`` or the next free ``_2``, ``_3``...: two runs
    started together without ``--run-dir`` get one folder each instead of one refused."""
    for _ in range(1000):
        try:
            return claim_run_folder(default_run_dir(algo, env_id, seed), new=True)
        except RunFolderError:  # taken by another process since default_run_dir looked
            continue
    raise RunFolderError(
        f"Could not find a free run folder for {algo} on {env_id} seed {seed} under runs/; pass --run-dir."
    )


def _setup(
    claim: RunClaim,
    learner,
    env_id,
    seed,
    hyperparams,
    hyperparams_file,
    threads,
    verbose,
):
    """Everything between claiming a new run folder and training: config, files, env, model."""
    require_sb3()
    import torch

    if threads is not None:
        torch.set_num_threads(int(threads))
    path, algo = claim.path, learner.name
    cls = learner.algo_class
    params = load_hyperparams(algo, env_id, cls, hyperparams_file, hyperparams)
    config = {**DEFAULTS, **params}
    _check_config(config, learner)
    # Types against the constructor's annotations, before SB3's asserts (learning_rate=fast).
    check_kwargs(
        f"{algo} ({getattr(cls, '__name__', cls)})",
        cls,
        {k: v for k, v in config.items() if k not in DEFAULTS},
    )
    meta = {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "algo": algo,
        "kind": learner.kind,
        "env_id": env_id,
        "seed": seed,
        "config": config,
        "versions": versions(),
        "command": command_line(),
        "timesteps_done": 0,
        "finished": False,
        "interrupted": False,
    }
    (path / "config.yaml").write_text(
        yaml.safe_dump({"algo": algo, "env_id": env_id, "seed": seed, **config}, sort_keys=True)
    )
    write_meta(path, meta)

    from stable_baselines3.common.utils import set_random_seed

    set_random_seed(seed)
    env = _vec_env(config, env_id, seed)
    try:
        _build_model(learner, config, env, seed, verbose)
    except BaseException:
        env.close()
        raise
    return config, meta


def _learn(
    learner,
    path: Path,
    meta: dict,
    config: dict,
    steps: int,
    progress_bar: bool,
    evaluate: bool,
    reset: bool,
    extra: list | None = None,
) -> Path:
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback

    from poser_agents.callbacks import PoserLogger, StopOnFlag

    logger_cb = PoserLogger(path, window=int(config["log_window"]))
    flag = {"stop": False}
    callbacks = [logger_cb, StopOnFlag(flag), *(extra or [])]
    if int(config.get("checkpoint_freq") or 0) > 0:
        callbacks.append(
            CheckpointCallback(
                int(config["checkpoint_freq"]), str(path / "checkpoints"), name_prefix="model"
            )
        )

    def on_sigint(signum, frame):
        if flag["stop"]:  # second Ctrl-C: give up immediately
            raise KeyboardInterrupt
        flag["stop"] = True
        print(
            "\nCtrl-C: stopping after this step and saving a checkpoint (press again to abort).",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        learner.learn(steps, CallbackList(callbacks), progress_bar, reset, path / "logs")
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        logger_cb.close()
    done = int(getattr(learner.model, "num_timesteps", steps))
    # Kept in meta.json only (never in the CSV curves, which must match across same-seed runs).
    meta["train_wall_seconds"] = meta.get("train_wall_seconds", 0.0) + time.perf_counter() - wall
    meta["train_cpu_seconds"] = meta.get("train_cpu_seconds", 0.0) + time.process_time() - cpu
    learner.save(path)
    if config["vec_env"] != "dummy":
        learner.model.get_env().close()  # stop the worker processes
    meta.update(timesteps_done=done, interrupted=flag["stop"], finished=not flag["stop"])
    write_meta(path, meta)
    training_figure(
        path,
        path / "training_curves.png",
        title=f"{meta['algo']} on {meta['env_id']} (seed {meta['seed']})",
    )
    expert_figure(
        path,
        path / "expert_rewards.png",
        title=f"{meta['algo']} on {meta['env_id']} (seed {meta['seed']})",
    )
    if evaluate and not flag["stop"]:
        evaluate_run(path, episodes=int(config["eval_episodes"]))
    return path


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _resume(
    path: Path,
    overrides: dict[str, Any],
    progress_bar: bool,
    evaluate: bool,
    verbose: int,
    extra: list | None = None,
    threads: int | None = 1,
) -> Path:
    unknown = sorted(set(overrides) - {"n_timesteps"})
    if unknown:
        raise AgentsConfigError(
            f"--resume only accepts an n_timesteps override (the run's config is kept), got {unknown}."
        )
    claim = claim_run_folder(path, new=False)  # refused while another process writes it
    try:
        return _resume_claimed(path, overrides, progress_bar, evaluate, verbose, extra, threads)
    finally:
        claim.release()


def _resume_point(info: RunInfo) -> tuple[Path, int]:
    """The newest saved model of a run: ``model.zip`` or a later checkpoint, and its step."""
    done = int(info.meta.get("timesteps_done", 0))
    best = (info.model_path, done) if info.model_path.is_file() else None
    checkpoint = latest_checkpoint(info.path)
    if checkpoint is not None and (best is None or checkpoint[1] > best[1]):
        best = checkpoint
    if best is None:
        raise RunFolderError(
            f"{str(info.path)!r} has no model.zip and no checkpoints/model_<steps>_steps.zip: the run stopped "
            "before anything was saved, so there is nothing to resume. Start it again (with checkpoint_freq > 0 "
            "a killed run keeps checkpoints to resume from)."
        )
    return best


def _truncate_logs(path: Path, steps: int) -> None:
    """Drop CSV rows written after ``steps``: they belong to the part of a killed run whose
    model was lost, and the resumed run writes those steps again."""
    for name in ("episodes.csv", "losses.csv", "experts.csv"):
        f = path / name
        if not f.is_file():
            continue
        lines = f.read_text().splitlines(keepends=True)
        if not lines:
            continue
        kept = [lines[0]]
        for line in lines[1:]:
            first = line.split(",", 1)[0]
            if first.isdigit() and int(first) <= steps:
                kept.append(line)
        if len(kept) != len(lines):
            tmp = f.with_name(f.name + ".tmp")
            tmp.write_text("".join(kept))
            tmp.replace(f)


def _resume_claimed(
    path: Path,
    overrides: dict[str, Any],
    progress_bar: bool,
    evaluate: bool,
    verbose: int,
    extra,
    threads,
) -> Path:
    require_sb3()
    import torch

    if threads is not None:
        torch.set_num_threads(int(threads))
    info = read_run(path, need_model=False)
    learner = make_learner(info.algo)
    if not learner.resumable:
        raise RunFolderError(
            f"Resuming is supported for SB3-shaped algorithms; {info.algo!r} is an Agent plug-in."
        )
    # DEFAULTS first: a run written before a key existed (vec_env) gets its old behaviour.
    config = {**DEFAULTS, **info.config, **overrides}
    model_file, done = _resume_point(info)
    if model_file != info.model_path:
        print(
            f"Resuming {str(path)!r} from checkpoint {model_file.relative_to(path)} ({done} steps): the run was "
            "stopped before it saved model.zip. Log rows after that step are dropped; "
            "the replay buffer restarts empty.",
            file=sys.stderr,
        )
        _truncate_logs(path, done)
    meta = dict(info.meta, config=config, timesteps_done=done)
    left = int(config["n_timesteps"]) - done
    if left <= 0:
        raise RunFolderError(
            f"{str(path)!r} already trained {done} of n_timesteps={config['n_timesteps']}; "
            "pass a larger n_timesteps (--hyperparams n_timesteps=...) to continue."
        )
    env = _vec_env(config, info.env_id, info.seed + done)  # fresh tasks, still seeded
    buffer = path / "replay_buffer.pkl" if model_file == info.model_path else None
    try:
        load_model_file(learner, model_file, env=env, buffer=buffer)
    except BaseException:
        env.close()
        raise
    return _learn(learner, path, meta, config, left, progress_bar, evaluate, False, extra)
