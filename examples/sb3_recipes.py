"""Stable-Baselines3 DQN and PPO, and sb3-contrib MaskablePPO, on ImagePoser-v0.

SB3 cannot read ``spaces.Text``; ``poser_env.wrappers.EncodeObservation`` turns the text
fields into vectors (``encoder="hashed"`` needs no torch model; ``poser_agents`` adds the
MiniLM encoder). The encoded observation is a ``Dict`` of boxes, so every algorithm uses
``MultiInputPolicy``. ``EncodeObservation.action_masks()`` is what MaskablePPO reads.
The env reports ``info["is_success"]`` at episode end, so SB3's logger and
``EvalCallback`` show a success rate with no callback of your own::

    python examples/sb3_recipes.py --algo all --steps 256

It prints, per algorithm, the steps trained, the episodes SB3 saw finish with their success
rate, and a short deterministic evaluation.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import poser_env  # noqa: F401  (registers ImagePoser-v0)
from poser_env.wrappers import EncodeObservation

ALGOS = ("dqn", "ppo", "maskable_ppo")
WRAPPER_KWARGS = {"state": "text", "encoder": "hashed"}


def make_env(env_id: str = "ImagePoser-v0") -> gym.Env:
    """One encoded env (an env factory for SB3's ``make_vec_env``)."""
    return EncodeObservation(gym.make(env_id), **WRAPPER_KWARGS)


def train(algo: str, steps: int, seed: int = 0, n_envs: int = 2, env_id: str = "ImagePoser-v0"):
    """Train ``algo`` for ``steps`` env steps on ``n_envs`` encoded envs; return the model."""
    venv = make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        wrapper_class=EncodeObservation,
        wrapper_kwargs=WRAPPER_KWARGS,
    )
    if algo == "dqn":
        model = DQN(
            "MultiInputPolicy",
            venv,
            learning_starts=min(100, steps // 2),
            buffer_size=10_000,
            batch_size=32,
            train_freq=4,
            target_update_interval=100,
            seed=seed,
            verbose=0,
        )
    elif algo == "ppo":
        model = PPO(
            "MultiInputPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=seed, verbose=0
        )
    elif algo == "maskable_ppo":
        from sb3_contrib import MaskablePPO

        model = MaskablePPO(
            "MultiInputPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=seed, verbose=0
        )
    else:
        raise ValueError(f"Unknown algo {algo!r}; choose one of {', '.join(ALGOS)}.")
    return model.learn(total_timesteps=steps)


def evaluate(
    model, algo: str, episodes: int, seed: int = 1000, env_id: str = "ImagePoser-v0"
) -> tuple[float, float]:
    """Mean and std of the deterministic return over ``episodes`` episodes."""
    env = make_vec_env(make_env, n_envs=1, seed=seed, env_kwargs={"env_id": env_id})
    if algo == "maskable_ppo":
        from sb3_contrib.common.maskable.evaluation import evaluate_policy as maskable_evaluate

        return maskable_evaluate(model, env, n_eval_episodes=episodes, deterministic=True)
    return evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="ImagePoser-v0", help="any registered ImagePoser id")
    p.add_argument("--algo", default="all", choices=(*ALGOS, "all"))
    p.add_argument("--steps", type=int, default=256, help="training env steps per algorithm")
    p.add_argument("--episodes", type=int, default=3, help="evaluation episodes")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    out = {}
    for algo in ALGOS if args.algo == "all" else (args.algo,):
        model = train(algo, args.steps, seed=args.seed, env_id=args.env)
        # SB3 fills ep_success_buffer from info["is_success"] of every finished episode.
        finished = len(model.ep_info_buffer)
        success = (
            float(np.mean(model.ep_success_buffer)) if model.ep_success_buffer else float("nan")
        )
        mean, std = evaluate(model, algo, args.episodes, env_id=args.env)
        print(
            f"{algo}: trained {model.num_timesteps} steps, {finished} episodes finished "
            f"(success rate {success:.2f} over {len(model.ep_success_buffer)}), "
            f"eval return {mean:.3f} +/- {std:.3f} over {args.episodes} episodes"
        )
        out[algo] = {
            "num_timesteps": model.num_timesteps,
            "episodes": finished,
            "success_episodes": len(model.ep_success_buffer),
            "eval_mean": float(mean),
        }
    return out


if __name__ == "__main__":
    main()
