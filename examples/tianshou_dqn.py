"""Tianshou 2.x DQN on ImagePoser-v0: vectorised envs, a Collector, the off-policy trainer.

No glue: the env is ``gym.make("ImagePoser-v0")`` with the project's
``EncodeObservation`` wrapper (text fields to vectors) and Gymnasium's own
``FlattenObservation``; the rest is Tianshou's documented DQN recipe.

Tianshou 2.0.1 pins ``pandas<3`` and ``virtualenv<21``; install it in its own environment
if those conflict with yours (see docs/compatibility.md)::

    pip install "tianshou==2.0.1"
    python examples/tianshou_dqn.py --collect 300 --epochs 1

It prints what the Collector gathered, the trainer's result and a greedy evaluation.
"""

from __future__ import annotations

import argparse
import functools

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm import DQN
from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Collector, CollectStats, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OffPolicyTrainerParams
from tianshou.utils.net.common import Net

import poser_env  # noqa: F401  (registers ImagePoser-v0)
from poser_env.wrappers import EncodeObservation


def make_env(env_id: str = "ImagePoser-v0") -> gym.Env:
    """The env with the torch-free hashed text encoder, flattened to one vector."""
    env = EncodeObservation(gym.make(env_id), state="text", encoder="hashed")
    return gym.wrappers.FlattenObservation(env)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="ImagePoser-v0", help="any registered ImagePoser id")
    p.add_argument("--envs", type=int, default=2, help="training envs (Tianshou DummyVectorEnv)")
    p.add_argument(
        "--collect", type=int, default=300, help="random steps collected before training"
    )
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--epoch-steps", type=int, default=200, help="env steps per epoch")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    train_envs = DummyVectorEnv([functools.partial(make_env, args.env) for _ in range(args.envs)])
    test_envs = DummyVectorEnv([functools.partial(make_env, args.env) for _ in range(2)])
    train_envs.seed(args.seed)
    test_envs.seed(args.seed + 1000)

    env = make_env(args.env)
    net = Net(
        state_shape=env.observation_space.shape,
        action_shape=int(env.action_space.n),
        hidden_sizes=[128, 128],
    )
    policy = DiscreteQLearningPolicy(
        model=net,
        action_space=env.action_space,
        observation_space=env.observation_space,
        eps_training=0.2,
        eps_inference=0.0,
    )
    algorithm = DQN(
        policy=policy,
        optim=AdamOptimizerFactory(lr=1e-3),
        gamma=0.99,
        n_step_return_horizon=1,
        target_update_freq=100,
    )

    buffer = VectorReplayBuffer(10_000, buffer_num=args.envs)
    train_collector = Collector[CollectStats](algorithm, train_envs, buffer, exploration_noise=True)
    test_collector = Collector[CollectStats](algorithm, test_envs, exploration_noise=False)

    # Warm-up: random actions straight from the env's action space.
    warm = train_collector.collect(n_step=args.collect, random=True, reset_before_collect=True)
    print(
        f"collected {warm.n_collected_steps} steps, {warm.n_collected_episodes} episodes into a buffer of {len(buffer)}"
    )

    result = algorithm.run_training(
        OffPolicyTrainerParams(
            training_collector=train_collector,
            test_collector=test_collector,
            max_epochs=args.epochs,
            epoch_num_steps=args.epoch_steps,
            collection_step_num_env_steps=20,
            update_step_num_gradient_steps_per_sample=0.5,
            test_step_num_episodes=2,
            batch_size=32,
            show_progress=False,
            verbose=False,
        )
    )
    print(f"trained: {result.update_step} update steps, {result.train_step} env steps")

    test_collector.reset()
    stats = test_collector.collect(n_episode=4)
    mean_return = float(np.mean(stats.returns))
    print(
        f"greedy evaluation: {stats.n_collected_episodes} episodes, mean return {mean_return:.3f}"
    )
    train_envs.close()
    test_envs.close()
    return {
        "collected": warm.n_collected_steps,
        "update_steps": result.update_step,
        "eval_episodes": stats.n_collected_episodes,
        "mean_return": mean_return,
    }


if __name__ == "__main__":
    main()
