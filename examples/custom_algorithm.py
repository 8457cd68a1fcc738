"""Plug your own algorithm into ``poser train`` / ``poser benchmark``.

Two ways, both by import path (see docs/adding_an_algorithm.md):

1. An SB3-shaped class (``MyAlgo(policy, env, seed=..., **hyperparams)`` with ``learn`` and
   ``predict``), e.g. a subclass of an SB3 algorithm.
2. A class following the small ``poser_agents.algos.Agent`` protocol - here a tabular
   epsilon-greedy bandit over (command kind word, has image) that learns which expert to
   call, with no neural network at all.

Run it against the built-in baselines on the same test episodes::

    PYTHONPATH=examples poser benchmark --algos custom_algorithm:CommandBandit,random,oracle \\
        --seeds 2 --timesteps 20000 --episodes 200 --out runs/bench_bandit
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import gymnasium as gym
import numpy as np


class CommandBandit:
    """A contextual bandit: context = (first word of the command, whether an image exists).

    It keeps a running mean of the step reward of each expert in each context and acts
    epsilon-greedily among the valid actions while learning, greedily when evaluated.

    Args:
        env: The encoded training env ``poser`` builds (only ``env.unwrapped`` is read here:
            the raw command text; a real algorithm would use the encoded observation).
        seed: Seeds exploration.
        epsilon: Exploration rate while learning.
    """

    name = "command-bandit"

    def __init__(self, env: gym.Env, seed: int = 0, epsilon: float = 0.1):
        self.env = env
        self.rng = np.random.default_rng(seed)
        self.epsilon = epsilon
        self.seed = seed
        n = env.action_space.n
        self.value: dict[tuple[str, bool], np.ndarray] = defaultdict(lambda: np.zeros(n))
        self.count: dict[tuple[str, bool], np.ndarray] = defaultdict(lambda: np.zeros(n))
        self.num_timesteps = 0

    def _context(self, env: gym.Env) -> tuple[str, bool]:
        base = env.unwrapped
        command = base.current_command
        word = command.text.split()[0] if command is not None else ""
        return word, bool(base.has_image)

    def learn(self, total_timesteps: int, callback: Any = None) -> CommandBandit:
        from poser_agents.algos import CallbackDriver

        env = self.env
        env.reset(seed=self.seed)
        driver = CallbackDriver(callback, self)  # poser's curves and per-expert logs
        for _ in range(total_timesteps):
            ctx = self._context(env)
            valid = np.flatnonzero(env.unwrapped.action_masks())
            if self.rng.random() < self.epsilon:
                action = int(self.rng.choice(valid))
            else:
                action = int(valid[np.argmax(self.value[ctx][valid])])
            _, reward, terminated, truncated, info = env.step(action)
            self.count[ctx][action] += 1
            self.value[ctx][action] += (reward - self.value[ctx][action]) / self.count[ctx][action]
            self.num_timesteps += 1
            done = terminated or truncated
            if not driver.step(info, reward, done):
                break  # Ctrl-C
            if done:
                env.reset()
        driver.end()
        return self

    def act(self, observation: Any, env: gym.Env) -> int:
        ctx = self._context(env)
        valid = np.flatnonzero(env.unwrapped.action_masks())
        return int(valid[np.argmax(self.value[ctx][valid])])

    def save(self, path: str) -> None:
        import pickle

        with open(path, "wb") as f:
            pickle.dump(
                {"value": dict(self.value), "count": dict(self.count), "seed": self.seed}, f
            )

    @classmethod
    def load(cls, path: str, env: gym.Env) -> CommandBandit:
        import pickle

        with open(path, "rb") as f:
            data = pickle.load(f)
        agent = cls(env, seed=data["seed"])
        agent.value.update(data["value"])
        agent.count.update(data["count"])
        return agent


if __name__ == "__main__":
    from poser_agents.config import make_env
    from poser_agents.evaluate import run_episodes, summarise

    train_env = make_env("ImagePoser-v0", encoder="hashed", split="train")
    agent = CommandBandit(train_env, seed=0).learn(20_000)
    test_env = make_env("ImagePoser-v0", encoder="hashed", split="test")
    records, _ = run_episodes(agent, test_env, 200)
    s = summarise(records)["metrics"]["success"]
    print(f"CommandBandit test success: {s['mean']:.3f} ± {s['ci95']:.3f}")
