"""The v1 reference policies by name in poser_agents (what `poser evaluate --compare` and
the benchmark build)."""

from __future__ import annotations

import gymnasium as gym
import pytest

import poser_env  # noqa: F401 - registers the ids
from poser_agents.baselines import make_baseline
from poser_agents.error import AgentsConfigError


@pytest.mark.parametrize(
    "name", ["kind-router", "word-router", "plan-oracle", "lookahead", "oracle", "router"]
)
def test_v1_baselines_by_name_play_valid_actions(name):
    env = gym.make("ImagePoser-v1")
    agent = make_baseline(name, env)
    assert agent.name == name
    obs, _ = env.reset(seed=2)
    for _ in range(3):
        a = agent.act(obs, env)
        assert env.unwrapped.action_masks()[a]
        obs, _, term, trunc, _ = env.step(a)
        if term or trunc:
            break


def test_unknown_baseline_suggests_the_closest():
    with pytest.raises(
        AgentsConfigError, match=r"Unknown baseline 'plan-orcale'\. Did you mean 'plan-oracle'\?"
    ):
        make_baseline("plan-orcale", gym.make("ImagePoser-v1"))


def test_the_kind_router_uses_one_expert_per_kind_on_v1():
    env = gym.make("ImagePoser-v1").unwrapped
    agent = make_baseline("kind-router", env)
    seen: dict[str, set] = {}
    for ep in range(20):
        obs, _ = env.reset(seed=ep)
        while True:
            kind = env.current_command.kind if env.progress_has_image else "generate"
            a = agent.act(obs, env)
            seen.setdefault(kind, set()).add(a)
            obs, _, term, trunc, _ = env.step(a)
            if term or trunc:
                break
    assert all(len(v) == 1 for v in seen.values()), seen
    assert len(set().union(*seen.values())) >= 3
