"""Train Stable-Baselines3 DQN on ImagePoser in a few lines, then evaluate it greedily.

    python examples/train_dqn.py                 # real MiniLM sentence embeddings
    python examples/train_dqn.py --quick         # hashed bag of words, 5k steps (seconds)

Any SB3 algorithm with ``MultiInputPolicy`` works the same way on the wrapped env; the
``poser train`` command does this plus run folders, curves and evaluation.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
from stable_baselines3 import DQN

import poser_env  # noqa: F401  (registers ImagePoser-v0)
from poser_agents.wrappers import EncodeObservation


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="hashed encoder and 5k steps")
    args = ap.parse_args()
    encoder = "hashed" if args.quick else "minilm"
    steps = 5_000 if args.quick else 30_000

    # Text observations -> fixed-size vectors (the paper's "text" state).
    env = EncodeObservation(gym.make("ImagePoser-v0"), state="text", encoder=encoder)
    model = DQN(
        "MultiInputPolicy",
        env,
        learning_rate=1e-4,
        buffer_size=30_000,
        learning_starts=1_000,
        batch_size=128,
        gamma=0.95,
        target_update_interval=500,
        exploration_fraction=0.25,
        exploration_final_eps=0.02,
        policy_kwargs={"net_arch": [256, 256]},
        seed=0,
    )
    model.learn(steps, progress_bar=True)

    # Greedy evaluation on held-out (test split) tasks.
    test_env = EncodeObservation(
        gym.make("ImagePoser-v0", suite_kwargs={"split": "test"}), state="text", encoder=encoder
    )
    successes = []
    for ep in range(100):
        obs, _ = test_env.reset(seed=10_000 + ep)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = test_env.step(int(action))
            done = terminated or truncated
        successes.append(info["final_metrics"]["success"])
    print(f"test success over 100 episodes: {np.mean(successes):.2f}")


if __name__ == "__main__":
    main()
