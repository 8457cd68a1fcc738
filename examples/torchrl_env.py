"""TorchRL on ImagePoser-v0: ``GymEnv`` with an action-mask transform, then a masked DQN.

Two parts, both with nothing but TorchRL's and the project's own pieces:

1. ``GymEnv("ImagePoser-v0")`` on the raw env. TorchRL carries the text fields as
   ``NonTensorData``; ``DTypeCastTransform`` makes the env's 0/1 ``action_mask`` boolean
   and ``ActionMask`` restricts the action spec to the valid experts, so a random rollout
   only picks valid ones. ``default_info_dict_reader`` copies ``info["is_success"]`` into
   the tensordict.
2. ``GymWrapper`` around the project's ``EncodeObservation`` (hashed text encoder, no
   torch model), ``CatTensors`` into one vector, a ``QValueActor`` that masks invalid
   actions, TorchRL's ``Collector`` and ``DQNLoss`` for a few updates::

    python examples/torchrl_env.py --rollout 50 --frames 200

It prints the rollout's length and whether every action was valid, then the frames
collected and the last DQN loss.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import torch
from tensordict.nn import TensorDictSequential
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, ReplayBuffer
from torchrl.envs import (
    ActionMask,
    CatTensors,
    Compose,
    DTypeCastTransform,
    GymEnv,
    GymWrapper,
    TransformedEnv,
)
from torchrl.envs.gym_like import default_info_dict_reader
from torchrl.modules import MLP, EGreedyModule, QValueActor
from torchrl.objectives import DQNLoss, SoftUpdate

import poser_env  # noqa: F401  (registers ImagePoser-v0)
from poser_env.wrappers import EncodeObservation


def mask_transforms() -> Compose:
    """Boolean ``action_mask`` and an action spec restricted to it."""
    return Compose(
        DTypeCastTransform(torch.int8, torch.bool, in_keys=["action_mask"]), ActionMask()
    )


def make_raw_env(env_id: str = "ImagePoser-v0", seed: int = 0) -> TransformedEnv:
    """``GymEnv("ImagePoser-v0")`` with text as NonTensorData, the mask and ``is_success``."""
    base = GymEnv(env_id)
    base.set_info_dict_reader(default_info_dict_reader(["is_success"]))
    env = TransformedEnv(base, mask_transforms())
    env.set_seed(seed)
    return env


def make_encoded_env(env_id: str = "ImagePoser-v0", seed: int = 0) -> TransformedEnv:
    """The encoded env (fixed-size float vectors) with the mask and one ``observation`` vector."""
    base = GymWrapper(EncodeObservation(gym.make(env_id), state="text", encoder="hashed"))
    env = TransformedEnv(
        base,
        Compose(
            DTypeCastTransform(torch.float32, torch.bool, in_keys=["action_mask"]),
            ActionMask(),
            CatTensors(
                in_keys=["command", "remaining", "progress"], out_key="observation", del_keys=False
            ),
        ),
    )
    env.set_seed(seed)
    return env


def random_rollout(steps: int, env_id: str = "ImagePoser-v0", seed: int = 0) -> dict:
    """A masked random rollout on the raw env; counts invalid actions (should be none)."""
    env = make_raw_env(env_id, seed)
    td = env.rollout(steps, break_when_any_done=False)
    chosen = td["action"].argmax(-1)
    valid = td["action_mask"].gather(-1, chosen[..., None]).squeeze(-1)
    episodes = int(td["next", "done"].sum())
    successes = int(td["next", "is_success"].sum())
    env.close()
    return {
        "steps": int(td.numel()),
        "invalid": int((~valid).sum()),
        "episodes": episodes,
        "successes": successes,
    }


def train_dqn(frames: int, env_id: str = "ImagePoser-v0", seed: int = 0) -> dict:
    """A few hundred frames of masked DQN with TorchRL's Collector and DQNLoss."""
    torch.manual_seed(seed)
    env = make_encoded_env(env_id, seed)
    n_actions = env.action_spec.shape[-1]
    obs_dim = env.observation_spec["observation"].shape[-1]
    actor = QValueActor(
        MLP(in_features=obs_dim, out_features=n_actions, num_cells=[128, 128]),
        in_keys=["observation"],
        spec=env.action_spec,
        action_mask_key="action_mask",
    )
    explore = EGreedyModule(
        env.action_spec,
        eps_init=1.0,
        eps_end=0.1,
        annealing_num_steps=frames,
        action_mask_key="action_mask",
    )
    policy = TensorDictSequential(actor, explore)
    loss = DQNLoss(actor, action_space=env.action_spec, delay_value=True)
    loss.make_value_estimator(gamma=0.99)
    target = SoftUpdate(loss, eps=0.99)
    optim = torch.optim.Adam(loss.parameters(), lr=1e-3)
    buffer = ReplayBuffer(storage=LazyTensorStorage(10_000), batch_size=32)

    collector = Collector(
        env, policy, frames_per_batch=50, total_frames=frames, auto_register_policy_transforms=True
    )
    collected, last_loss, updates = 0, float("nan"), 0
    for batch in collector:
        collected += batch.numel()
        buffer.extend(batch.reshape(-1))
        explore.step(batch.numel())
        for _ in range(4):
            values = loss(buffer.sample())
            optim.zero_grad()
            values["loss"].backward()
            optim.step()
            target.step()
            last_loss, updates = values["loss"].item(), updates + 1
    collector.shutdown()
    env.close()
    return {"frames": collected, "updates": updates, "loss": last_loss}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="ImagePoser-v0", help="any registered ImagePoser id")
    p.add_argument("--rollout", type=int, default=50, help="steps of the masked random rollout")
    p.add_argument("--frames", type=int, default=200, help="frames collected for DQN")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    r = random_rollout(args.rollout, args.env, args.seed)
    print(
        f"rollout: {r['steps']} steps, {r['episodes']} episodes ({r['successes']} successful), "
        f"{r['invalid']} invalid actions"
    )
    t = train_dqn(args.frames, args.env, args.seed)
    print(f"dqn: collected {t['frames']} frames, {t['updates']} updates, last loss {t['loss']:.4f}")
    return {"rollout": r, "dqn": t}


if __name__ == "__main__":
    main()
