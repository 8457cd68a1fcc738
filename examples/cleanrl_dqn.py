"""CleanRL-style single-file DQN on ImagePoser-v0 (plain PyTorch, Gymnasium vector envs).

The structure follows CleanRL's ``dqn.py``: a vector env from ``gym.make_vec``, Gymnasium's
``RecordEpisodeStatistics``, a replay buffer, an epsilon-greedy Q-network and a target
network, all in this one file. The env side is ``gym.make_vec("ImagePoser-v0", wrappers=...)``
with the project's ``EncodeObservation`` (torch-free hashed text encoder) and Gymnasium's
``FlattenObservation``. Invalid experts are masked with
``envs.unwrapped.call("action_masks")``, for
the greedy choice, for exploration and for the bootstrap target::

    python examples/cleanrl_dqn.py --total-timesteps 400

It prints the episodes finished, their mean return and success rate, and the last TD loss.
"""

from __future__ import annotations

import argparse
import functools
import random

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import poser_env  # noqa: F401  (registers ImagePoser-v0)
from poser_env.wrappers import EncodeObservation


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="ImagePoser-v0", help="any registered ImagePoser id")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-envs", type=int, default=2)
    p.add_argument("--vectorization-mode", default="sync", choices=("sync", "async"))
    p.add_argument("--total-timesteps", type=int, default=400, help="vector steps x num_envs")
    p.add_argument("--learning-rate", type=float, default=2.5e-4)
    p.add_argument("--buffer-size", type=int, default=10_000)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--target-network-frequency", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--start-e", type=float, default=1.0)
    p.add_argument("--end-e", type=float, default=0.05)
    p.add_argument("--exploration-fraction", type=float, default=0.5)
    p.add_argument("--learning-starts", type=int, default=100)
    p.add_argument("--train-frequency", type=int, default=2)
    return p.parse_args(argv)


class QNetwork(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(obs_dim, 128),
            nn.ReLU(),
            nn.Linear(128, 128),
            nn.ReLU(),
            nn.Linear(128, n_actions),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def masked(q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Q-values with invalid actions pushed to -inf."""
    return q.masked_fill(~mask, float("-inf"))


def linear_schedule(start_e: float, end_e: float, duration: int, t: int) -> float:
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    envs = gym.make_vec(
        args.env,
        num_envs=args.num_envs,
        vectorization_mode=args.vectorization_mode,
        wrappers=[
            functools.partial(EncodeObservation, state="text", encoder="hashed"),
            gym.wrappers.FlattenObservation,
        ],
    )
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    assert isinstance(envs.single_action_space, gym.spaces.Discrete), (
        "only discrete action space is supported"
    )
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    n_actions = int(envs.single_action_space.n)

    q_network = QNetwork(obs_dim, n_actions)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate)
    target_network = QNetwork(obs_dim, n_actions)
    target_network.load_state_dict(q_network.state_dict())

    # A plain circular replay buffer; the masks of the next state feed the masked target.
    size = args.buffer_size
    buf_obs = np.zeros((size, obs_dim), np.float32)
    buf_next = np.zeros((size, obs_dim), np.float32)
    buf_act = np.zeros(size, np.int64)
    buf_rew = np.zeros(size, np.float32)
    buf_done = np.zeros(size, np.float32)
    buf_next_mask = np.ones((size, n_actions), bool)
    pos, full = 0, False

    returns, successes, loss_value = [], [], float("nan")
    obs, _ = envs.reset(seed=args.seed)
    masks = np.stack(envs.unwrapped.call("action_masks")).astype(bool)
    # Gymnasium 1.x autoresets on the step after an episode ends ("next-step" mode): that
    # step's action is ignored and its transition (final obs -> first obs) is not stored.
    autoreset = np.zeros(args.num_envs, bool)
    num_iterations = args.total_timesteps // args.num_envs
    for global_step in range(num_iterations):
        epsilon = linear_schedule(
            args.start_e, args.end_e, int(args.exploration_fraction * num_iterations), global_step
        )
        if random.random() < epsilon:
            actions = np.array([np.random.choice(np.flatnonzero(m)) for m in masks])
        else:
            with torch.no_grad():
                q = masked(q_network(torch.as_tensor(obs)), torch.as_tensor(masks))
            actions = q.argmax(dim=1).numpy()

        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        next_masks = np.stack(envs.unwrapped.call("action_masks")).astype(bool)
        if "episode" in infos:
            for i in np.flatnonzero(infos["_episode"]):
                returns.append(float(infos["episode"]["r"][i]))
                successes.append(bool(infos["is_success"][i]))

        for i in np.flatnonzero(~autoreset):
            buf_obs[pos], buf_next[pos], buf_act[pos] = obs[i], next_obs[i], actions[i]
            buf_rew[pos], buf_done[pos], buf_next_mask[pos] = (
                rewards[i],
                terminations[i],
                next_masks[i],
            )
            pos = (pos + 1) % size
            full = full or pos == 0
        autoreset = np.logical_or(terminations, truncations)
        obs, masks = next_obs, next_masks

        if (
            global_step > args.learning_starts // args.num_envs
            and global_step % args.train_frequency == 0
        ):
            idx = np.random.randint(0, size if full else pos, args.batch_size)
            with torch.no_grad():
                target_q = masked(
                    target_network(torch.as_tensor(buf_next[idx])),
                    torch.as_tensor(buf_next_mask[idx]),
                )
                # A terminal next state has no valid continuation; (1 - done) zeroes it.
                target_max = torch.nan_to_num(target_q.max(dim=1).values, neginf=0.0)
                td_target = torch.as_tensor(buf_rew[idx]) + args.gamma * target_max * (
                    1 - torch.as_tensor(buf_done[idx])
                )
            old_val = (
                q_network(torch.as_tensor(buf_obs[idx]))
                .gather(1, torch.as_tensor(buf_act[idx])[:, None])
                .squeeze(1)
            )
            loss = F.mse_loss(td_target, old_val)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_value = loss.item()

        if global_step % args.target_network_frequency == 0:
            target_network.load_state_dict(q_network.state_dict())

    envs.close()
    mean_return = float(np.mean(returns)) if returns else float("nan")
    success = float(np.mean(successes)) if successes else float("nan")
    print(
        f"{len(returns)} episodes finished, mean return {mean_return:.3f}, success rate {success:.2f}, "
        f"last td_loss {loss_value:.4f}"
    )
    return {
        "episodes": len(returns),
        "mean_return": mean_return,
        "success_rate": success,
        "td_loss": loss_value,
    }


if __name__ == "__main__":
    main()
