"""Hyperparameter files (RL Zoo style), env construction and run folders.

A hyperparameter file ``hyperparams/<algo>.yml`` maps env ids (and ``default``) to
settings. Keys the algorithm's constructor accepts go to it; :data:`POSER_KEYS` are ours.
The entry for the env id, if any, is merged over ``default``; command-line overrides are
merged last. Unknown keys are refused with the list of valid ones.
"""

from __future__ import annotations

import inspect
import json
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

import poser_env
from poser_agents.algos import ALGOS
from poser_agents.error import AgentsConfigError, RunFolderError, RunLockedError, close_hint
from poser_agents.wrappers import EncodeObservation
from poser_env.error import OutputPathError
from poser_env.registry import accepted_arguments, check_kwargs, load_entry_point
from poser_env.suites.registration import suite_accepts

#: Keys of a hyperparameter entry that configure poser_agents rather than the algorithm:
#: ``key: (default, meaning)``.
POSER_KEYS: dict[str, tuple[Any, str]] = {
    "n_timesteps": (100_000, "total env steps to train"),
    "policy": ("MultiInputPolicy", "SB3 policy name (MultiInputPolicy)"),
    "state": ("text", "state preset: text or text+image"),
    "encoder": ("minilm", "text encoder: minilm, hashed, open_clip, sentence-transformers"),
    "encoder_kwargs": ({}, "keyword arguments of the encoder"),
    "env_kwargs": ({}, "keyword arguments of gym.make (merged with the id's own)"),
    "n_envs": (1, "parallel envs"),
    "vec_env": (
        "dummy",
        "dummy (the n_envs envs in this process) or subproc (one spawned process each, SubprocVecEnv)",
    ),
    "eval_episodes": (200, "test-split episodes evaluated at the end of training"),
    "masked_eval": (True, "restrict greedy evaluation actions to valid ones"),
    "log_window": (1000, "steps per block of experts.csv"),
    "checkpoint_freq": (0, "save model.zip every this many steps (0: only at the end)"),
}
#: Constructor arguments poser_agents sets itself.
RESERVED = (
    "self",
    "policy",
    "env",
    "seed",
    "tensorboard_log",
    "verbose",
    "device",
    "_init_setup_model",
)
RUN_FORMAT = "poser-run"
RUN_FORMAT_VERSION = 1
EVAL_SEED = 10_000  # first reset seed of evaluation episodes (as scripts/shapes_table.py)


def hyperparams_path(algo: str) -> Path:
    """The shipped YAML file of a built-in algorithm."""
    return Path(str(resources.files("poser_agents") / "hyperparams" / f"{algo}.yml"))


def load_hyperparams(
    algo: str,
    env_id: str,
    algo_class: type | None = None,
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Resolve the hyperparameters of ``algo`` on ``env_id``.

    Args:
        algo: Registry name (picks ``hyperparams/<algo>.yml`` when ``path`` is None).
        env_id: Env id; its entry is merged over ``default``.
        algo_class: The algorithm class, to validate keys against its constructor.
        path: Another YAML file in the same format.
        overrides: Settings merged last (command line ``--hyperparams key=value``).

    Raises:
        AgentsConfigError: Missing file, malformed YAML, or keys that are neither in
            :data:`POSER_KEYS` nor accepted by the algorithm (the message lists both).
    """
    file = (
        Path(path)
        if path is not None
        else hyperparams_path(algo.replace(".", "_").replace(":", "_"))
    )
    data: dict[str, Any] = {}
    if file.is_file():
        try:
            data = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as e:
            raise AgentsConfigError(f"Could not parse hyperparameter file {file}: {e}") from e
        if not isinstance(data, dict):
            raise AgentsConfigError(
                f"{file} must map env ids (and 'default') to settings, got {type(data).__name__}."
            )
    elif path is not None:
        raise AgentsConfigError(f"Hyperparameter file {file} does not exist.")
    else:
        if algo in ALGOS:
            raise AgentsConfigError(
                f"The shipped hyperparameter file {file} of {algo!r} is missing (a broken install?); "
                "reinstall image-poser or pass --hyperparams-file."
            )
    for key, value in data.items():
        if not isinstance(value, dict):
            raise AgentsConfigError(
                f"{file}: entry {key!r} must be a mapping of settings, got {value!r}."
            )
    params = {**data.get("default", {}), **data.get(env_id, {}), **(overrides or {})}
    validate_keys(params, algo_class, where=str(file) if file.is_file() else "hyperparameters")
    return params


def validate_keys(
    params: dict[str, Any], algo_class: type | None, where: str = "hyperparameters"
) -> None:
    """Refuse unknown keys, naming them and listing the valid ones."""
    # A plug-in with **kwargs validates its own (accepted_arguments gives None).
    args = accepted_arguments(algo_class) if algo_class is not None else ()
    if args is None:
        return
    args = sorted(n for n in args if n not in RESERVED)
    valid = [*POSER_KEYS, *args]
    bad = [k for k in params if k not in valid]
    if bad:
        name = getattr(algo_class, "__name__", "the algorithm")
        raise AgentsConfigError(
            f"Unknown key(s) {bad} in {where}.{close_hint(bad[0], valid)} Valid keys: poser keys "
            f"{sorted(POSER_KEYS)}; {name} arguments {args}."
        )


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` with a YAML value (``lr=1e-3``, ``net=[64, 64]``)."""
    if "=" not in text:
        raise AgentsConfigError(f"Hyperparameter override must look like key=value, got {text!r}.")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise AgentsConfigError(f"Could not parse the value of override {text!r}: {e}") from e
    if isinstance(parsed, str) and value.strip() and value.strip()[0].isdigit():
        try:  # PyYAML reads 1e-3 (no dot) as a string
            parsed = float(value)
        except ValueError:
            pass
    return key.strip(), parsed


# ---------------------------------------------------------------------------- envs
def check_env_id(env_id: str) -> None:
    """Refuse an env id that is not registered, listing the ImagePoser ids."""
    if env_id not in gym.registry:
        ids = sorted(poser_env.IDS)
        raise AgentsConfigError(
            f"Unknown env id {env_id!r}.{close_hint(env_id, ids)} Known ImagePoser ids: {', '.join(ids)}."
        )


def env_make_kwargs(
    env_id: str, env_kwargs: dict[str, Any] | None = None, split: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The keyword arguments :func:`make_raw_env` passes to ``gym.make(env_id, ...)``.

    ``env_kwargs`` are merged over the id's own keyword arguments (``suite_kwargs`` key by
    key), checked against the env's constructor (an unknown key is named with the closest
    valid one), and ``split`` is set in ``suite_kwargs`` only when the suite takes a
    ``split`` argument (Shapes does; the diffusers suite has one prompt set).

    Raises:
        AgentsConfigError: ``env_kwargs`` or ``suite_kwargs`` is not a mapping.
        UnknownArgumentError: A key the env's constructor does not take.
    """
    check_env_id(env_id)
    spec = gym.spec(env_id)
    kwargs = dict(spec.kwargs or {})
    if env_kwargs is not None and not isinstance(env_kwargs, dict):
        raise AgentsConfigError(
            "env_kwargs must be a mapping of gym.make keyword arguments, "
            f"got {type(env_kwargs).__name__} {env_kwargs!r}."
        )
    env_kwargs = dict(env_kwargs or {})
    extra_suite = env_kwargs.pop("suite_kwargs", None) or {}
    if not isinstance(extra_suite, dict):
        raise AgentsConfigError(
            f"env_kwargs.suite_kwargs must be a mapping, got {type(extra_suite).__name__} {extra_suite!r}."
        )
    suite_kwargs = {**kwargs.get("suite_kwargs", {}), **extra_suite}
    kwargs.update(env_kwargs)
    kwargs.update(extra)
    entry = spec.entry_point
    env_class = load_entry_point(entry) if isinstance(entry, str) else entry
    check_kwargs(
        f"env {env_id!r} (env_kwargs)",
        env_class,
        {k: v for k, v in kwargs.items() if k != "suite_kwargs"},
    )
    suite = kwargs.get("suite", _default_argument(env_class, "suite"))
    if split is not None and isinstance(suite, str) and suite_accepts(suite, "split"):
        suite_kwargs["split"] = split
    if suite_kwargs:
        kwargs["suite_kwargs"] = suite_kwargs
    return kwargs


def _default_argument(func: Any, name: str) -> Any:
    param = inspect.signature(func).parameters.get(name)
    return None if param is None or param.default is param.empty else param.default


def make_raw_env(
    env_id: str, env_kwargs: dict[str, Any] | None = None, split: str | None = None, **extra: Any
) -> gym.Env:
    """``gym.make(env_id)`` with the keyword arguments of :func:`env_make_kwargs`."""
    return gym.make(
        env_id, disable_env_checker=True, **env_make_kwargs(env_id, env_kwargs, split, **extra)
    )


def make_env(
    env_id: str,
    state: str = "text",
    encoder: str = "minilm",
    encoder_kwargs: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    split: str | None = "train",
    **extra: Any,
) -> EncodeObservation:
    """The encoded env every ``poser`` command trains and evaluates on."""
    return EncodeObservation(
        make_raw_env(env_id, env_kwargs, split, **extra),
        state=state,
        encoder=encoder,
        encoder_kwargs=encoder_kwargs,
    )


# ---------------------------------------------------------------------------- run folders
def command_line() -> str:
    """The command that is running, as a user would type it (``poser ...`` for the CLI)."""
    argv = list(sys.argv)
    if argv and (argv[0].endswith(("poser_agents/__main__.py", "/poser")) or argv[0] == "poser"):
        return " ".join(["poser", *argv[1:]])
    return " ".join(["python", *argv]) if argv and argv[0].endswith(".py") else " ".join(argv)


def env_source_fingerprint() -> dict[str, Any]:
    """The git commit, whether ``poser_env`` has uncommitted changes, and a hash of its
    source, so a result names the exact environment it was measured on."""
    import hashlib
    import subprocess

    root = Path(poser_env.__file__).parent
    digest = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        digest.update(f.relative_to(root).as_posix().encode())
        digest.update(f.read_bytes())

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args],
                capture_output=True,
                text=True,
                cwd=root.parent,
                check=True,
                timeout=10,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "poser_env_uncommitted_changes": bool(git("status", "--porcelain", "--", "poser_env")),
        "poser_env_source_sha256": digest.hexdigest()[:16],
    }


def versions() -> dict[str, Any]:
    """Versions of the packages that determine a run's result, and the env's source."""
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "image-poser": poser_env.__version__,
    }
    out["poser_env_source"] = env_source_fingerprint()
    for mod in (
        "numpy",
        "gymnasium",
        "torch",
        "stable_baselines3",
        "sb3_contrib",
        "sentence_transformers",
    ):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:
                continue
        out[mod] = getattr(m, "__version__", "?")
    return out


@dataclass
class RunInfo:
    """What a run folder's ``meta.json`` holds."""

    path: Path
    algo: str
    env_id: str
    seed: int
    config: dict[str, Any]
    meta: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / "model.zip"


#: The lock file of a run folder: held (``flock``) by the process writing the folder.
LOCK_NAME = ".poser.lock"


class RunClaim:
    """Exclusive right to write a run folder, held until :meth:`release` (or process exit).

    Made by :func:`claim_run_folder`. The lock is an advisory ``flock`` on
    ``<run>/.poser.lock``: the kernel drops it when the process dies, so a run killed with
    SIGKILL never leaves a stale lock behind.
    """

    def __init__(self, path: Path, fd: int, created: bool):
        self.path = path
        self.created = created
        self._fd: int | None = fd

    def release(self) -> None:
        """Let other processes claim the folder (safe to call twice)."""
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def discard(self) -> None:
        """Undo a run that failed before training: remove what it wrote, then release.

        The folder was empty when claimed, so everything in it is this run's.
        """
        try:
            if self.created:
                shutil.rmtree(self.path, ignore_errors=True)
            else:
                for p in self.path.iterdir():
                    if p.name == LOCK_NAME:
                        continue
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
        finally:
            self.release()

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: msvcrt locks the first byte instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def claim_run_folder(run_dir: str | Path, new: bool = True) -> RunClaim:
    """Claim ``run_dir`` for writing, atomically, before any slow work starts.

    Two ``poser train`` processes given the same ``--run-dir`` cannot both pass: the folder's
    lock is taken first, and only then is it checked to be empty, so the second one is
    refused at once instead of mixing its files with the first's.

    Args:
        run_dir: The run folder.
        new: A new run: the folder is created if missing and must hold nothing (but a lock
            file). Otherwise (``--resume``) it must exist.

    Raises:
        RunLockedError: Another process holds the folder.
        RunFolderError: ``new`` and the folder holds files, or not ``new`` and it is missing.
        OutputPathError: The folder cannot be created or written (a file there, no permission).
    """
    path = Path(run_dir)
    created = False
    if new:
        if path.exists() and not path.is_dir():
            raise OutputPathError(
                f"Run folder {str(path)!r} is a file, not a folder; pick another --run-dir."
            )
        try:
            path.mkdir(parents=True)
            created = True
        except FileExistsError:
            pass
        except OSError as e:
            raise OutputPathError(
                f"Cannot create run folder {str(path)!r}: {e.strerror or e}; pick another --run-dir."
            ) from e
    elif not path.is_dir():
        raise RunFolderError(
            f"Run folder {str(path)!r} does not exist; pass a folder written by 'poser train'."
        )
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        raise OutputPathError(
            f"Cannot write in run folder {str(path)!r}: {e.strerror or e}."
        ) from e
    if not _lock(fd):
        try:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
        finally:
            os.close(fd)
        raise RunLockedError(
            f"Run folder {str(path)!r} is being written by another poser process (pid {holder}); "
            "wait for it to finish or pick another --run-dir."
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    claim = RunClaim(path, fd, created)
    if new:
        others = sorted(p.name for p in path.iterdir() if p.name != LOCK_NAME)
        if others:
            claim.release()
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise RunFolderError(
                f"Run folder {str(path)!r} already exists and is not empty ({shown}); pick another --run-dir "
                "or continue it with --resume."
            )
    return claim


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """Write ``meta.json`` atomically (a killed process leaves the old one or the new one)."""
    tmp = run_dir / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    os.replace(tmp, run_dir / "meta.json")


def latest_checkpoint(run_dir: str | Path) -> tuple[Path, int] | None:
    """The newest ``checkpoints/model_<steps>_steps.zip`` of a run and its step count, or None."""
    found = []
    for p in (Path(run_dir) / "checkpoints").glob("model_*_steps.zip"):
        middle = p.name[len("model_") : -len("_steps.zip")]
        if middle.isdigit():
            found.append((int(middle), p))
    if not found:
        return None
    steps, path = max(found)
    return path, steps


def read_run(run_dir: str | Path, need_model: bool = True) -> RunInfo:
    """Open a run folder written by ``poser train``.

    Raises:
        RunFolderError: If the folder or its ``meta.json``/``model.zip`` is missing, or it
            was written by an incompatible run format version.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunFolderError(
            f"Run folder {str(path)!r} does not exist; pass a folder written by 'poser train'."
        )
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise RunFolderError(
            f"{str(path)!r} is not a poser run folder: it has no meta.json (written by 'poser train')."
        )
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{meta_path} is not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise RunFolderError(f"{meta_path} must hold a JSON object, got {type(meta).__name__}.")
    if meta.get("format") != RUN_FORMAT or meta.get("format_version") != RUN_FORMAT_VERSION:
        raise RunFolderError(
            f"{str(path)!r} has run format {meta.get('format')!r} version {meta.get('format_version')!r} "
            f"(image-poser {meta.get('versions', {}).get('image-poser', '?')}); this image-poser "
            f"({poser_env.__version__}) reads {RUN_FORMAT!r} version {RUN_FORMAT_VERSION}. Retrain the run "
            "with this version or install the version that wrote it."
        )
    missing = [k for k in ("algo", "env_id", "seed", "config") if k not in meta]
    if not missing and isinstance(meta["config"], dict):
        missing = [f"config.{k}" for k in ("state", "encoder") if k not in meta["config"]]
    elif not missing:
        missing = ["config (a mapping)"]
    if missing:
        raise RunFolderError(
            f"{meta_path} lacks {', '.join(missing)}; it was edited or damaged. Retrain the run."
        )
    if need_model and not (path / "model.zip").is_file():
        checkpoint = latest_checkpoint(path)
        hint = (
            f" Its newest checkpoint is {checkpoint[0].relative_to(path)}: continue from it with "
            f"'poser train --resume {path}'."
            if checkpoint
            else ""
        )
        raise RunFolderError(
            f"{str(path)!r} has no model.zip (training did not save a model yet).{hint}"
        )
    return RunInfo(path, meta["algo"], meta["env_id"], int(meta["seed"]), meta["config"], meta)
