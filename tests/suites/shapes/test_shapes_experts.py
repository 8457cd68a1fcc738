"""Shapes experts: determinism, skills that matter, failure modes, the default pool."""

from __future__ import annotations

import numpy as np
import pytest

from poser_env.constraints import Command, Constraint, ObjectRef
from poser_env.error import ConfigError
from poser_env.suites.shapes.critic import ShapesCritic
from poser_env.suites.shapes.experts import ShapesExpert, SkillProfile, default_experts
from poser_env.suites.shapes.perception import perceive
from poser_env.suites.shapes.scene import Obj, Scene, render

RED = ObjectRef("circle", "red")
BLUE = ObjectRef("square", "blue")
FOUR_RED_LEFT = Command(
    "draw four red circles on the left",
    "generate",
    (Constraint("count", subject=RED, count=4), Constraint("region", subject=RED, region="left")),
)


def success_rate(expert, command, image=None, n=200):
    critic = ShapesCritic()
    return np.mean(
        [
            critic.judge(expert(command, image, seed).image, command, []).accepted
            for seed in range(n)
        ]
    )


def test_default_pool_has_12_experts_with_both_kinds():
    pool = default_experts()
    assert len(pool) == 12 and len({e.name for e in pool}) == 12
    assert sum(e.kind == "t2i" for e in pool) >= 5 and sum(e.kind == "i2i" for e in pool) >= 5
    assert all(e.description and e.cost > 0 for e in pool)


@pytest.mark.parametrize("expert", default_experts(), ids=lambda e: e.name)
def test_same_seed_same_image_and_output_format(expert):
    image = (
        render(Scene((Obj("circle", "red", "medium", 30, 30),), "plain"))
        if expert.kind == "i2i"
        else None
    )
    cmd = Command(
        "add two blue squares to the right",
        "add",
        (
            Constraint("count", subject=BLUE, count=2),
            Constraint("region", subject=BLUE, region="right"),
        ),
    )
    a, b = expert(cmd, image, 17), expert(cmd, image, 17)
    assert a.image.shape == (128, 128, 3) and a.image.dtype == np.uint8
    np.testing.assert_array_equal(a.image, b.image)
    assert a.meta == b.meta and a.cost == expert.cost
    assert any(not np.array_equal(a.image, expert(cmd, image, s).image) for s in range(18, 30)), (
        "seeds matter"
    )


def by_name():
    return {e.name: e for e in default_experts()}


def test_specialists_beat_others_at_their_skill():
    pool = by_name()
    counting = {
        n: success_rate(
            pool[n],
            FOUR_RED_LEFT.__class__(
                "draw four red circles", "generate", (FOUR_RED_LEFT.constraints[0],)
            ),
        )
        for n in ("count-master", "color-binder", "sketch-turbo")
    }
    assert (
        counting["count-master"]
        > 0.9
        > max(counting["color-binder"], counting["sketch-turbo"]) + 0.3
    )
    one_in_center = Command(
        "draw a red circle in the center",
        "generate",
        (
            Constraint("count", subject=RED, count=1),
            Constraint("region", subject=RED, region="center"),
        ),
    )
    layout = {n: success_rate(pool[n], one_in_center) for n in ("layout-planner", "count-master")}
    assert layout["layout-planner"] > 0.9 > layout["count-master"] + 0.3


def test_i2i_edit_skills_and_damage():
    pool = by_name()
    scene = Scene(
        (
            Obj("circle", "red", "medium", 30, 30),
            Obj("circle", "red", "medium", 30, 80),
            Obj("star", "green", "small", 100, 100),
        ),
        "plain",
    )
    image = render(scene)
    recolor = Command(
        "make the red circles blue",
        "recolor",
        (
            Constraint("count", subject=RED, count=0),
            Constraint("count", subject=ObjectRef("circle", "blue"), count=2),
        ),
    )
    assert success_rate(pool["recolorist"], recolor, image, 100) > 0.9
    assert success_rate(pool["object-eraser"], recolor, image, 100) < 0.3
    remove = Command(
        "remove the red circles", "remove", (Constraint("count", subject=RED, count=0),)
    )
    assert success_rate(pool["object-eraser"], remove, image, 100) > 0.9

    # The generalist damages bystanders (the green star) more often than the eraser does.
    def damaged(expert):
        return np.mean(
            [
                not any(
                    o.shape == "star" and o.color == "green"
                    for o in perceive(expert(remove, image, s).image).scene.objects
                )
                or False
                for s in range(200)
            ]
        )

    assert damaged(pool["edit-generalist"]) > damaged(pool["object-eraser"])


def test_t2i_expert_draws_from_scratch_and_loses_previous_content():
    pool = by_name()
    image = render(Scene((Obj("star", "green", "small", 100, 100),), "dotted"))
    out = perceive(pool["layout-planner"](FOUR_RED_LEFT, image, 0).image).scene
    assert not any(o.shape == "star" for o in out.objects)


def test_i2i_expert_needs_an_image():
    with pytest.raises(ValueError, match="needs an input image"):
        by_name()["object-adder"](FOUR_RED_LEFT, None, 0)


def test_failure_modes_show_up_in_events():
    sloppy = ShapesExpert(
        "sloppy", "t2i", 1.0, SkillProfile(counting=0.0, spatial=0.0, artefacts=1.0)
    )
    events = set()
    for seed in range(40):
        events |= set(sloppy(FOUR_RED_LEFT, None, seed).meta["events"])
    assert {"miscount", "misplaced"} <= events and events & {"noise", "blur"}


def test_profile_and_expert_validation():
    with pytest.raises(ConfigError, match=r"SkillProfile.counting must be in \[0, 1.0\], got 1.5"):
        SkillProfile(counting=1.5)
    with pytest.raises(ConfigError, match="kind must be 't2i' or 'i2i', got 'x2y'"):
        ShapesExpert("e", "x2y", 1.0, SkillProfile())
    with pytest.raises(ConfigError, match="cost must be >= 0"):
        ShapesExpert("e", "t2i", -1.0, SkillProfile())
