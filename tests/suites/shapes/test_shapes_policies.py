"""Reference policies and the design targets of the Shapes world (small samples)."""

from __future__ import annotations

import numpy as np

from poser_env.envs.image_poser import ImagePoserEnv
from poser_env.suites.shapes.policies import (
    OraclePolicy,
    PipelinePolicy,
    RandomPolicy,
    RouterPolicy,
    SingleExpertPolicy,
)


def success(policy, episodes=120, seed=500):
    env = ImagePoserEnv(suite_kwargs={"split": "test"})
    wins, cost = [], []
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        while True:
            *_, term, trunc, info = env.step(policy(env))
            if term or trunc:
                break
        wins.append(info["final_metrics"]["success"])
        cost.append(info["final_metrics"]["total_cost"])
    return float(np.mean(wins)), float(np.mean(cost))


def test_expert_choice_matters():
    # Full-size measurements (800 episodes) are in scripts/shapes_table.py and the README;
    # this small sample checks the ordering with wide margins.
    oracle, oracle_cost = success(OraclePolicy())
    router, router_cost = success(RouterPolicy())
    random, _ = success(RandomPolicy(0))
    best_single = max(
        success(SingleExpertPolicy(n), 60)[0] for n in ("generalist-xl", "object-mover")
    )
    pipeline, _ = success(PipelinePolicy("style-painter", "object-mover"))
    assert oracle >= 0.75 and router >= 0.75
    assert random <= 0.3 and best_single <= 0.3 and pipeline <= 0.6
    assert oracle > pipeline + 0.2
    # The router knows which expert suits each command kind; the oracle also weighs cost.
    assert oracle_cost < router_cost


def test_policies_only_pick_valid_actions():
    env = ImagePoserEnv()
    for policy in (OraclePolicy(), RandomPolicy(1), RouterPolicy()):
        for ep in range(10):
            env.reset(seed=ep)
            while True:
                a = policy(env)
                assert env.action_masks()[a]
                *_, term, trunc, _ = env.step(a)
                if term or trunc:
                    break
