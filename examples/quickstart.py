"""Quick start: one ImagePoser-v0 episode with the masked-random policy, then your own prompt
orchestrated by the Shapes world's oracle. Runs on a CPU in about a second.

    python examples/quickstart.py
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import poser_env  # registers the ids
from poser_env.suites.shapes.policies import OraclePolicy


def main() -> None:
    env = gym.make("ImagePoser-v0")
    obs, info = env.reset(seed=0)
    print("prompt:  ", obs["prompt"])
    print("commands:", poser_env.read_details(info)["commands"])
    rng = np.random.default_rng(0)
    total = 0.0
    while True:
        action = int(rng.choice(np.flatnonzero(obs["action_mask"])))  # only valid experts
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        print(
            f"  {info['expert']:>16s}: {'accepted' if info['accepted'] else 'rejected'} ({reward:+.2f})"
        )
        if terminated or truncated:
            break
    print("random policy:", bool(info["is_success"]), f"return {total:.2f}")

    prompt = (
        "Draw three red circles on the left, then add a big blue square to their right "
        "and make the background striped."
    )
    obs, info = env.reset(seed=1, options={"prompt": prompt})
    oracle = OraclePolicy()
    while True:
        obs, reward, terminated, truncated, info = env.step(oracle(env))
        print(
            f"  {info['command']!r:50s} -> {info['expert']}: {'accepted' if info['accepted'] else 'rejected'}"
        )
        if terminated or truncated:
            break
    # info's numbers are numpy scalars (TorchRL reads their dtype); .item() prints them plainly.
    print("oracle:", {k: v.item() for k, v in info["final_metrics"].items() if k != "episode_over"})


if __name__ == "__main__":
    main()
