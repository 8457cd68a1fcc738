"""RLlib PPO (new API stack) on ImagePoser-v0.

RLlib cannot build a model for ``spaces.Text``, so the env RLlib builds is the project's
``EncodeObservation`` wrapper (hashed text encoder, no torch model) around
``gym.make("ImagePoser-v0")``, registered with ``tune.register_env`` (RLlib's way to add
wrappers); RLlib's own ``FlattenObservations`` connector turns the ``Dict`` of boxes into
one vector for its default MLP.

``ray[rllib]`` 2.60 pins ``gymnasium==1.2.2``; install it in its own environment if you
need another Gymnasium (see docs/compatibility.md)::

    pip install "ray[rllib]==2.60.0"
    python examples/rllib_ppo.py --iterations 1

It prints, per iteration, the env steps sampled, the episodes finished and their mean return.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.connectors.env_to_module import FlattenObservations
from ray.tune.registry import register_env

import poser_env  # noqa: F401  (registers ImagePoser-v0)
from poser_env.wrappers import EncodeObservation

ENV_NAME = "ImagePoser-v0-encoded"


def make_env(config: dict) -> gym.Env:
    """RLlib's env creator: ``config`` is ``env_config``: ``id`` and keyword arguments of ``gym.make``."""
    kwargs = dict(config)
    return EncodeObservation(
        gym.make(kwargs.pop("id", "ImagePoser-v0"), **kwargs), state="text", encoder="hashed"
    )


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="ImagePoser-v0", help="any registered ImagePoser id")
    p.add_argument("--iterations", type=int, default=1)
    p.add_argument("--batch", type=int, default=200, help="train_batch_size_per_learner")
    p.add_argument(
        "--envs", type=int, default=2, help="envs per env runner (a Gymnasium vector env)"
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    register_env(ENV_NAME, make_env)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    config = (
        PPOConfig()
        .environment(ENV_NAME, env_config={"id": args.env})
        .env_runners(
            num_env_runners=0,  # sample in the driver: no extra processes for a tiny run
            num_envs_per_env_runner=args.envs,
            env_to_module_connector=lambda env, spaces=None, device=None: FlattenObservations(),
        )
        .training(train_batch_size_per_learner=args.batch, minibatch_size=50, num_epochs=1, lr=3e-4)
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    results = []
    for i in range(args.iterations):
        r = algo.train()
        runners = r["env_runners"]
        row = {
            "iteration": i + 1,
            "env_steps": int(runners["num_env_steps_sampled"]),
            "episodes": int(runners.get("num_episodes", 0)),
            "episode_return_mean": float(runners.get("episode_return_mean", float("nan"))),
        }
        print(
            f"iteration {row['iteration']}: {row['env_steps']} env steps, {row['episodes']} episodes, "
            f"mean return {row['episode_return_mean']:.3f}"
        )
        results.append(row)
    algo.stop()
    ray.shutdown()
    return results


if __name__ == "__main__":
    main()
