"""Shared fixtures: tiny training budgets with the no-torch hashed encoder."""

from __future__ import annotations

import pytest

pytest.importorskip("stable_baselines3")

#: Overrides that make a DQN run take a few seconds.
TINY = {
    "n_timesteps": 300,
    "encoder": "hashed",
    "learning_starts": 100,
    "buffer_size": 1000,
    "batch_size": 16,
    "target_update_interval": 100,
    "eval_episodes": 4,
    "log_window": 100,
    "policy_kwargs": {"net_arch": [32, 32]},
}


@pytest.fixture
def tiny():
    """A fresh copy of the tiny DQN overrides."""
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished tiny DQN run folder, shared by read-only tests."""
    from poser_agents.train import train

    return train(
        "dqn",
        "ImagePoser-v0",
        seed=0,
        run_dir=tmp_path_factory.mktemp("runs") / "dqn",
        hyperparams=dict(TINY),
    )
