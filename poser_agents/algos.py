"""Algorithm registry: built-in SB3 algorithms, baselines, and plug-ins by import path.

Three kinds of entries share one namespace (``poser train --algo``, ``poser benchmark
--algos``):

* **SB3-shaped learners** - ``dqn``, ``qrdqn``, ``a2c``, ``ppo``, ``maskable_ppo``, or any
  class given as ``"my_pkg.module:MyAlgo"`` whose constructor is SB3's
  (``MyAlgo(policy, env, seed=..., **hyperparams)``) and which has ``learn`` and
  ``predict`` (SB3's ``BaseAlgorithm`` shape).
* **Agents** - any class given as ``"my_pkg.module:MyAgent"`` that follows the small
  :class:`Agent` protocol below (for algorithms that are not SB3-shaped): built as
  ``MyAgent(env, seed=seed, **hyperparams)``.
* **Baselines** - ``random``, ``oracle``, ``router``, ``single:<t2i expert>``,
  ``always:<expert>``, ``pipeline:<t2i>><i2i>`` and ``best-single`` (see
  :mod:`poser_agents.baselines`); they do not learn.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from poser_agents.error import AgentsConfigError, RunFolderError, close_hint
from poser_env.registry import Registry, Spec, load_entry_point


@runtime_checkable
class Agent(Protocol):
    """The protocol an algorithm implements to be trained, evaluated and benchmarked.

    ``poser`` builds it as ``AgentClass(env, seed=seed, **hyperparams)`` where ``env`` is
    the encoded training env (a Gymnasium env, not a VecEnv).

    Attributes:
        name: Short name for tables and plots.
    """

    name: str

    def learn(self, total_timesteps: int, callback: Any = None) -> Any:
        """Train for ``total_timesteps`` env steps. ``callback`` is an SB3 callback list
        that may be ignored (the run then has no training curves)."""
        ...

    def act(self, observation: Any, env: gym.Env) -> int:
        """The action for ``observation``; ``env`` is the evaluation env (for
        ``env.unwrapped.action_masks()`` and, for oracles, suite internals)."""
        ...


@dataclass(frozen=True)
class AlgoSpec(Spec):
    """One registered algorithm (a :class:`~poser_env.registry.Spec` with three more fields).

    Attributes:
        masks: Whether it takes action masks while training (MaskablePPO).
        off_policy: Whether it uses a replay buffer (its size bounds memory).
        extra: The ``pip install "image-poser[...]"`` extra that provides it (``None`` for
            your own: a missing module is then a configuration error, not a missing extra).
    """

    masks: bool = False
    off_policy: bool = False
    extra: str | None = None

    def load(self, what: str = "") -> type:
        """Import and return the class."""
        what = what or f"algorithm {self.name!r}"
        return load_entry_point(self.entry_point, what, self.extra, AgentsConfigError)


#: The algorithm registry (name -> :class:`AlgoSpec`); baselines are named in BASELINE_NAMES.
ALGOS = Registry("algorithm")
for _spec in (
    AlgoSpec("dqn", "stable_baselines3:DQN", off_policy=True, extra="agents"),
    AlgoSpec("qrdqn", "sb3_contrib:QRDQN", off_policy=True, extra="agents"),
    AlgoSpec("a2c", "stable_baselines3:A2C", extra="agents"),
    AlgoSpec("ppo", "stable_baselines3:PPO", extra="agents"),
    AlgoSpec("maskable_ppo", "sb3_contrib:MaskablePPO", masks=True, extra="agents"),
):
    ALGOS[_spec.name] = _spec
BASELINE_NAMES: tuple[str, ...] = (
    "random",
    "oracle",
    "router",
    "kind-router",
    "word-router",
    "plan-oracle",
    "lookahead",
    "best-single",
    "best-always",
)
BASELINE_PREFIXES: tuple[str, ...] = ("single:", "always:", "pipeline:")


def register_algo(spec: AlgoSpec) -> None:
    """Register an algorithm under ``spec.name`` (replaces an existing one of that name)."""
    if not isinstance(spec, AlgoSpec):
        raise AgentsConfigError(f"register_algo expects an AlgoSpec, got {type(spec).__name__}.")
    ALGOS[spec.name] = spec


def is_baseline(name: str) -> bool:
    """Whether ``name`` is a baseline (no learning)."""
    return name in BASELINE_NAMES or name.startswith(BASELINE_PREFIXES)


def known_algos() -> list[str]:
    """Every name ``resolve_algo`` accepts without an import path."""
    return [*ALGOS, *BASELINE_NAMES, *(p + "<expert>" for p in BASELINE_PREFIXES)]


def resolve_algo(name: str) -> tuple[str, Any]:
    """Classify an algorithm name.

    Returns:
        ``("sb3", AlgoSpec)``, ``("agent", AgentClass)``, ``("sb3", AlgoSpec)`` for an
        SB3-shaped plug-in, or ``("baseline", name)``.

    Raises:
        AgentsConfigError: For an unknown name (lists the known ones) or a plug-in class
            with neither SB3's ``learn``/``predict`` nor the :class:`Agent` methods.
    """
    if not isinstance(name, str) or not name:
        raise AgentsConfigError(f"Algorithm name must be a non-empty string, got {name!r}.")
    if is_baseline(name):
        return "baseline", name
    if name in ALGOS:
        return "sb3", ALGOS[name]
    if ":" in name:  # "pkg.module:Class" (the baselines with a colon are handled above)
        cls = load_entry_point(name, f"algorithm {name!r}", None, AgentsConfigError)
        if hasattr(cls, "act") and hasattr(cls, "learn"):
            return "agent", cls
        if hasattr(cls, "learn") and hasattr(cls, "predict"):
            return "sb3", AlgoSpec(name, name)
        raise AgentsConfigError(
            f"Algorithm {name!r} has neither SB3's learn()/predict() nor the Agent protocol's "
            "learn()/act(); see docs/adding_an_algorithm.md."
        )
    raise AgentsConfigError(
        f"Unknown algorithm {name!r}.{close_hint(name, [*ALGOS, *BASELINE_NAMES])} Known algorithms: "
        f"{', '.join(known_algos())}, or an import path 'my_pkg.module:MyAlgo'."
    )


# ---------------------------------------------------------------------------- one interface
def make_learner(name: str) -> SB3Agent | PluginAgent:
    """The algorithm ``name`` (not built yet) behind the one interface of ``train``, ``--resume``
    and ``evaluate``: ``build``, ``learn``, ``save``, ``load``, ``act``. A baseline is refused."""
    kind, target = resolve_algo(name)
    if kind == "baseline":
        raise AgentsConfigError(
            f"{name!r} is a baseline; it does not learn. Evaluate it with 'poser benchmark --algos {name}'."
        )
    return SB3Agent(None, name, spec=target) if kind == "sb3" else PluginAgent(target, name)


class PluginAgent:
    """An :class:`Agent` plug-in class behind the interface of :class:`SB3Agent`, built as
    ``cls(env, seed=seed, **hyperparams)`` on the one env of the training VecEnv."""

    kind = "agent"
    resumable = False  # no replay buffer or optimiser state to continue from
    vec_envs = False  # acts on one env in this process

    def __init__(self, cls: type, name: str):
        self.algo_class, self.name, self.model = cls, name, None

    def build(self, env: Any, seed: int, verbose: int, policy: Any, **hyperparams: Any) -> None:
        self.model = self.algo_class(env.envs[0], seed=seed, **hyperparams)

    def learn(
        self, total_timesteps: int, callback=None, progress_bar=False, reset=True, log_dir=None
    ):
        """The plug-in's ``learn`` (SB3's progress bar and logger do not apply)."""
        return self.model.learn(total_timesteps, callback=callback)

    def save(self, folder: Path) -> None:
        if hasattr(self.model, "save"):
            self.model.save(str(folder / "model.zip"))

    def load(self, file: Path, env: Any = None, buffer: Any = None, eval_env: Any = None):
        """The plug-in's ``load(file, env=eval_env)``: the plug-in itself, an :class:`Agent`."""
        if not hasattr(self.algo_class, "load"):
            raise RunFolderError(
                f"Algorithm {self.name!r} has no load(); its runs cannot be reloaded."
            )
        self.model = self.algo_class.load(str(file), env=eval_env)
        return self.model

    def act(self, observation: Any, env: gym.Env) -> int:
        return self.model.act(observation, env)


class SB3Agent:
    """An SB3-shaped algorithm (or a trained SB3 model) behind the one interface: ``build``,
    ``learn``, ``save``, ``load`` (with the replay buffer) and ``act``.

    Greedy actions are taken among the valid ones (``env.unwrapped.action_masks()``) when
    ``masked`` is True: DQN and QR-DQN take the arg-max of their Q-values over valid
    actions, policy-gradient models the arg-max of their logits, MaskablePPO its own masked
    prediction. Training itself is unmasked except for MaskablePPO.

    Args:
        model: A trained SB3 ``BaseAlgorithm``, or ``None`` until ``build``/``load``.
        name: Name for tables.
        masked: Restrict greedy actions to valid ones.
        spec: The algorithm's :class:`AlgoSpec` (needed to build or load).
    """

    kind = "sb3"
    resumable = True
    vec_envs = True

    def __init__(
        self, model: Any, name: str = "sb3", masked: bool = True, spec: AlgoSpec | None = None
    ):
        self.model, self.name, self.masked, self.spec = model, name, masked, spec

    @property
    def algo_class(self) -> type:
        return self.spec.load()

    def build(self, env: Any, seed: int, verbose: int, policy: Any, **hyperparams: Any) -> None:
        cls = self.algo_class
        self.model = cls(policy, env, seed=seed, verbose=verbose, device="cpu", **hyperparams)

    def learn(
        self, total_timesteps: int, callback=None, progress_bar=False, reset=True, log_dir=None
    ):
        """SB3's ``learn``; ``log_dir`` gets SB3's progress.csv and TensorBoard events."""
        if log_dir is not None:
            from stable_baselines3.common.logger import configure

            self.model.set_logger(configure(str(log_dir), ["csv", "tensorboard"]))
        return self.model.learn(
            total_timesteps, callback=callback, progress_bar=progress_bar, reset_num_timesteps=reset
        )

    def save(self, folder: Path) -> None:
        """``model.zip`` (written whole or not at all) and, off-policy, ``replay_buffer.pkl``."""
        self.model.save(str(folder / "model.tmp.zip"))
        shutil.move(str(folder / "model.tmp.zip"), str(folder / "model.zip"))
        if hasattr(self.model, "save_replay_buffer") and self.model.replay_buffer is not None:
            self.model.save_replay_buffer(str(folder / "replay_buffer.pkl"))

    def load(self, file: Path, env: Any = None, buffer: Path | None = None, eval_env: Any = None):
        """The model in ``file``: with the training VecEnv ``env`` and replay ``buffer`` to
        continue training, or checked against the ``eval_env`` it will act in; returns self."""
        self.model = self.algo_class.load(str(file), env=env, device="cpu")
        if buffer is not None and buffer.is_file() and hasattr(self.model, "load_replay_buffer"):
            self.model.load_replay_buffer(str(buffer))
        if eval_env is not None:
            _check_spaces(self.model, eval_env, Path(file).parent)
        return self

    def act(self, observation: Any, env: gym.Env) -> int:
        mask = env.unwrapped.action_masks() if self.masked else None
        if mask is not None and type(self.model).__name__ == "MaskablePPO":
            action, _ = self.model.predict(observation, deterministic=True, action_masks=mask)
            return int(np.asarray(action).item())
        scores = self._scores(observation) if mask is not None else None
        if scores is None:
            action, _ = self.model.predict(observation, deterministic=True)
            return int(np.asarray(action).item())
        scores = np.where(mask, scores, -np.inf)
        return int(np.argmax(scores))

    def _scores(self, observation: Any) -> np.ndarray | None:
        import torch

        policy = self.model.policy
        obs, _ = policy.obs_to_tensor(observation)
        with torch.no_grad():
            if hasattr(policy, "q_net"):  # DQN
                return policy.q_net(obs)[0].cpu().numpy()
            if hasattr(policy, "quantile_net"):  # QR-DQN: mean over quantiles
                return policy.quantile_net(obs).mean(dim=1)[0].cpu().numpy()
            if hasattr(policy, "get_distribution"):  # A2C / PPO: logits
                dist = policy.get_distribution(obs).distribution
                logits = getattr(dist, "logits", None)
                return None if logits is None else logits[0].cpu().numpy()
        return None


def _check_spaces(model: Any, env: gym.Env, folder: Path) -> None:
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
            f"The model in {str(folder)!r} expects observations {expected}, but the env built from its "
            f"config gives {got}; the run is incompatible with this version."
        )


# ---------------------------------------------------------------------------- plug-in helper
class _CallbackHost:
    """The few attributes of an SB3 model that poser's callbacks read."""

    class _Env:
        num_envs = 1

    def __init__(self, agent: Any):
        from stable_baselines3.common.logger import Logger

        self.agent = agent
        self.logger = Logger(folder=None, output_formats=[])
        self._env = self._Env()

    @property
    def num_timesteps(self) -> int:
        return int(getattr(self.agent, "num_timesteps", 0))

    def get_env(self) -> Any:
        return self._env


class CallbackDriver:
    """Feeds the SB3 callbacks ``poser train`` passes (curves, per-expert logs, Ctrl-C) from
    a hand-written training loop, so an :class:`Agent` plug-in gets the same run folder.

    Use it inside ``learn``; the agent must keep ``num_timesteps`` up to date::

        driver = CallbackDriver(callback, self)
        for ...:
            obs, reward, terminated, truncated, info = env.step(action)
            self.num_timesteps += 1
            if not driver.step(info, reward, terminated or truncated):
                break  # Ctrl-C asked to stop
        driver.end()

    Args:
        callback: The callback given to ``learn`` (``None`` makes every call a no-op).
        agent: The agent (for ``num_timesteps``).
    """

    def __init__(self, callback: Any, agent: Any):
        self.callback = callback
        if callback is not None:
            callback.init_callback(_CallbackHost(agent))
            callback.on_training_start({}, {})

    def step(self, info: dict[str, Any], reward: float, done: bool) -> bool:
        """Report one env step; returns False when training should stop."""
        if self.callback is None:
            return True
        self.callback.update_locals(
            {"infos": [info], "rewards": np.array([reward], float), "dones": np.array([done])}
        )
        return bool(self.callback.on_step())

    def end(self) -> None:
        """Report the end of training (flushes the CSV files)."""
        if self.callback is not None:
            self.callback.on_training_end()
