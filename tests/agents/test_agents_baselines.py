"""Baselines: what each one chooses, and that they run under the shared evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from poser_agents.baselines import SkillRouterPolicy, make_baseline, matching_i2i, t2i_experts
from poser_agents.config import make_raw_env
from poser_agents.error import AgentsConfigError
from poser_agents.evaluate import run_episodes, summarise
from poser_env.constraints import Command, Constraint, ObjectRef
from poser_env.error import UnknownNameError


@pytest.fixture(scope="module")
def env():
    return make_raw_env("ImagePoser-v0", split="test")


def _episode_experts(agent, env, seed):
    env.reset(seed=seed)
    out = []
    while True:
        _, _, term, trunc, info = env.step(agent.act(None, env))
        out.append((info["expert_kind"], info["command"], info["expert"]))
        if term or trunc:
            return out, info


def test_single_t2i_uses_its_expert_first_then_image_editors(env):
    agent = make_baseline("single:count-master", env)
    for seed in range(20):
        steps, _ = _episode_experts(agent, env, seed)
        if env.unwrapped.task.kind == "generation":
            assert steps[0][2] == "count-master"
        later = [s for s in steps if s[2] != "count-master"]
        assert all(kind == "i2i" for kind, _, _ in later)


def test_matching_i2i_follows_the_command_kind(env):
    base = env.unwrapped
    picks = {}
    for seed in range(60):
        env.reset(seed=seed)
        if not base.progress_has_image:
            env.step(base.expert_names.index("generalist-xl"))
        if base.current_command is not None:
            picks.setdefault(base.current_command.kind, set()).add(
                base.expert_names[matching_i2i(env)]
            )
    assert picks.get("remove") == {"object-eraser"}
    assert picks.get("recolor") == {"recolorist"}
    assert picks.get("restyle") == {"restyler"}


def test_router_routes_first_commands_by_the_skill_they_need():
    red = ObjectRef("circle", "red")
    blue = ObjectRef("square", "blue")
    need = SkillRouterPolicy.needed_skill
    assert (
        need(Command("draw three red circles", "generate", (Constraint("count", red, count=3),)))
        == "counting"
    )
    assert (
        need(
            Command(
                "draw a red circle on the left",
                "generate",
                (Constraint("count", red, count=1), Constraint("region", red, region="left")),
            )
        )
        == "spatial"
    )
    assert (
        need(
            Command(
                "draw a red circle and a blue square",
                "generate",
                (Constraint("count", red, count=1), Constraint("count", blue, count=1)),
            )
        )
        == "binding"
    )
    assert (
        need(
            Command(
                "draw three red circles and two blue squares",
                "generate",
                (Constraint("count", red, count=3), Constraint("count", blue, count=2)),
            )
        )
        is None
    )


def test_baseline_name_errors_list_the_valid_ones(env):
    with pytest.raises(
        UnknownNameError, match=r"Unknown expert 'count-mastr'.*Did you mean 'count-master'"
    ):
        make_baseline("single:count-mastr", env)
    with pytest.raises(
        AgentsConfigError, match=r"'restyler' is not one of \[.*'count-master'.*always:restyler"
    ):
        make_baseline("single:restyler", env)
    with pytest.raises(
        AgentsConfigError, match=r"Unknown baseline 'orcale'.*oracle.*single:<t2i expert>"
    ):
        make_baseline("orcale", env)
    with pytest.raises(AgentsConfigError, match="pipeline:<t2i>><i2i>"):
        make_baseline("pipeline:count-master", env)


def test_every_baseline_runs_and_random_respects_the_mask(env):
    names = ["random", "oracle", "router", "always:restyler", "pipeline:count-master>object-adder"]
    names += [f"single:{n}" for n in t2i_experts(env)]
    for name in names:
        recs, _ = run_episodes(make_baseline(name, env), env, 3)
        assert len(recs) == 3
    recs, _ = run_episodes(make_baseline("random", env, seed=1), env, 20)
    assert summarise(recs)["metrics"]["invalid_actions"]["mean"] == 0.0


def test_oracle_beats_random_on_the_same_episodes(env):
    # 60 fixed test episodes; the gap measured on 500 is about 0.7, so this is not a coin toss.
    oracle = summarise(run_episodes(make_baseline("oracle", env), env, 60)[0])["metrics"][
        "success"
    ]["mean"]
    rand = summarise(run_episodes(make_baseline("random", env), env, 60)[0])["metrics"]["success"][
        "mean"
    ]
    assert oracle > rand + 0.3


def test_run_episodes_is_reproducible_and_records_trajectories(env):
    a, trajs = run_episodes(make_baseline("random", env, seed=5), env, 4, trajectories=2)
    b, _ = run_episodes(make_baseline("random", env, seed=5), env, 4)
    assert [r["success"] for r in a] == [r["success"] for r in b]
    assert [r["return"] for r in a] == [r["return"] for r in b]
    assert len(trajs) == 2 and trajs[0]["steps"] and trajs[0]["steps"][0]["image"].dtype == np.uint8
    assert sum(a[0]["usage"].values()) == pytest.approx(1.0)
