"""The v1 skill model (poser_env/suites/shapes/skills.py), the imperfect critic and the v1
reference policies.

The statistical tests sample an expert many times on one content or image slice and
check that the measured rate matches the model's probability within 4 standard errors
(a false alarm about once in 16,000 runs; every sample is seeded, so a run is repeatable).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import poser_env  # noqa: F401 - registers the ids
from poser_env.constraints import Command, Constraint, ObjectRef
from poser_env.error import ConfigError
from poser_env.suites.shapes.critic import CriticErrors, NoisyShapesCritic, ShapesCritic
from poser_env.suites.shapes.policies import (
    KindRouterPolicy,
    LookaheadPolicy,
    OraclePolicy,
    PlanOraclePolicy,
    RandomPolicy,
    WordRouterPolicy,
)
from poser_env.suites.shapes.scene import Obj, Scene, evaluate, render
from poser_env.suites.shapes.skills import SkillModel, V1Expert, v1_experts

EXPERTS = {e.name: e for e in v1_experts()}
RED_CIRCLE, BLUE_CIRCLE = ObjectRef("circle", "red"), ObjectRef("circle", "blue")
GREEN_STAR = ObjectRef("star", "green")


def draw(ref, n, region=None, style=None):
    cs = [Constraint("count", subject=ref, count=n)]
    if region:
        cs.append(Constraint("region", subject=ref, region=region))
    if style:
        cs.append(Constraint("background", style=style))
    return Command(f"draw {n} {ref.phrase(n)}", "generate", tuple(cs))


def add(ref, n):
    return Command(f"add {n} {ref.phrase(n)}", "add", (Constraint("count", subject=ref, count=n),))


def recolor(old, new, n):
    return Command(
        f"make the {old.phrase(2)} {new.color}",
        "recolor",
        (Constraint("count", subject=old, count=0), Constraint("count", subject=new, count=n)),
    )


def measured(expert, command, scene, n=500, seed=0):
    """Rates of (command satisfied, every bystander kept) over ``n`` seeded calls."""
    ok = kept = 0
    for i in range(n):
        out, _ = expert.edit_scene(scene, command, np.random.default_rng(seed + i))
        ok += all(evaluate(c, out.objects, out.background)[0] for c in command.constraints)
        if expert.kind == "i2i":
            refs = [c.subject for c in command.constraints if c.kind == "count"]
            bystanders = [
                o
                for o in scene.objects
                if not any(r.matches(o.shape, o.color, o.size) for r in refs)
            ]
            kept += all(o in out.objects for o in bystanders)
    return ok / n, kept / n


def close(rate, p, n):
    return abs(rate - p) <= 4 * math.sqrt(max(p * (1 - p), 1e-4) / n) + 1e-9


@pytest.mark.parametrize(
    ("expert", "command", "expected"),
    [
        # content: colour, shape and count slices of the text-to-image experts
        ("warm-painter", draw(RED_CIRCLE, 2, "left"), 0.99 * 0.97),
        ("warm-painter", draw(BLUE_CIRCLE, 2, "left"), 0.99 * 0.97 * 0.35),
        ("round-drafter", draw(GREEN_STAR, 1), 0.99 * 0.35),
        ("spiky-drafter", draw(GREEN_STAR, 1), 0.99),
        ("sketch-turbo", draw(RED_CIRCLE, 4), 0.6 * 0.6**2),
        ("generalist-xl", draw(RED_CIRCLE, 1, style="dotted"), 0.8 * 0.9),
    ],
)
def test_t2i_success_on_a_content_slice_matches_the_model(expert, command, expected):
    e = EXPERTS[expert]
    empty = Scene((), "plain")
    assert e.success_probability(command, empty) == pytest.approx(expected)
    rate, _ = measured(e, command, empty)
    assert close(rate, expected, 500), (rate, expected)


def _scene(background="plain", near=False, small=False):
    target = Obj("circle", "red", "small" if small else "medium", 40, 64)
    bystander = Obj("square", "green", "medium", 62 if near else 110, 64)
    return Scene((target, bystander), background)


@pytest.mark.parametrize(
    ("expert", "scene", "p_ok", "p_kept"),
    [
        # image: the same recolour on a plain or textured background, near or far bystander
        ("inpaint-fast", _scene("plain"), 0.97, 0.99 * (1 - 0.5 * 0.03)),
        ("inpaint-fast", _scene("striped"), 0.97 * 0.3, 0.99 * (1 - 0.5 * (1 - 0.97 * 0.3))),
        ("inpaint-fast", _scene("plain", near=True), 0.97, 0.79 * (1 - 0.5 * 0.03)),
        ("instruct-editor", _scene("plain"), 0.96 * 0.2, 0.99 * (1 - 0.5 * (1 - 0.96 * 0.2))),
        ("instruct-editor", _scene("dotted", near=True), 0.96, 0.84 * (1 - 0.5 * 0.04)),
        ("inpaint-masked", _scene("dotted", small=True), 0.3 * 0.3, 1 - 0.5 * (1 - 0.09)),
    ],
)
def test_i2i_success_and_damage_on_an_image_slice_match_the_model(expert, scene, p_ok, p_kept):
    e = EXPERTS[expert]
    command = recolor(RED_CIRCLE, BLUE_CIRCLE, 1)
    assert e.success_probability(command, scene) == pytest.approx(p_ok)
    assert e.preservation_probability(command, scene) == pytest.approx(p_kept)
    rate, kept = measured(e, command, scene)
    assert close(rate, p_ok, 500), (rate, p_ok)
    assert close(kept, p_kept, 500), (kept, p_kept)


def test_pixels_agree_with_the_symbolic_model():
    # Through the real call (render, noise, perception) on a slice where it matters.
    e = EXPERTS["inpaint-fast"]
    scene = _scene("plain", near=True)
    image = render(scene)
    command = recolor(RED_CIRCLE, BLUE_CIRCLE, 1)
    critic = ShapesCritic()
    n = 200
    ok = sum(critic.judge(e(command, image, s).image, command, ()).accepted for s in range(n))
    assert close(ok / n, 0.97, n)


def test_the_best_expert_depends_on_the_image_not_only_on_the_words():
    command = recolor(RED_CIRCLE, BLUE_CIRCLE, 1)

    def best(scene):
        return max(
            EXPERTS.values(),
            key=lambda e: (
                e.success_probability(command, scene) * e.preservation_probability(command, scene)
                - 0.01 * e.cost
            ),
        ).name

    assert best(_scene("plain")) == "inpaint-fast"
    assert best(_scene("striped")) == "instruct-editor"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"kinds": {"add": 1.2}},
            r"SkillModel.kinds\['add'\] must be a number in \[0, 1\], got 1.2",
        ),
        ({"kinds": {"ad": 0.9}}, r"SkillModel.kinds has unknown key 'ad'.*Did you mean 'add'"),
        ({"kinds": {}, "shapes": {"circel": 0.5}}, r"unknown key 'circel'.*Did you mean 'circle'"),
        ({"kinds": {}, "backgrounds": {"stripes": 0.5}}, r"Did you mean 'striped'"),
        (
            {"kinds": {}, "count_limit": -1},
            r"SkillModel.count_limit must be an integer >= 0, got -1",
        ),
        (
            {"kinds": {}, "damage_near": 2},
            r"SkillModel.damage_near must be a number in \[0, 1.0\], got 2",
        ),
        ({"kinds": [0.9]}, r"SkillModel.kinds must be a dict of name -> number, got list"),
    ],
)
def test_bad_skill_models_say_what_was_expected(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SkillModel(**kwargs)


def test_v1_expert_needs_a_skill_model():
    with pytest.raises(ConfigError, match="V1Expert skills must be a SkillModel, got dict"):
        V1Expert("x", "t2i", 1.0, {"generate": 1.0})


# ------------------------------------------------------------------ imperfect critic
def test_critic_errors_coerce_and_validate():
    assert CriticErrors.coerce(None).exact
    assert CriticErrors.coerce(0.2) == CriticErrors(0.2, 0.2, 0.2)
    with pytest.raises(
        ConfigError, match=r"critic_errors must be None \(exact\), a rate in \[0, 1\] or a dict"
    ):
        CriticErrors.coerce("high")


def _check(critic, image, constraint):
    command = Command("c", "add", (constraint,))
    return critic.judge(image, command, (constraint,)).checks[0].passed


@pytest.mark.parametrize(
    ("kind", "scene", "constraint"),
    [
        (
            "left_right",
            Scene((Obj("circle", "red", "medium", 20, 64),), "plain"),
            Constraint("region", subject=RED_CIRCLE, region="left"),
        ),
        (
            "miss_small",
            Scene((Obj("circle", "red", "small", 64, 64),), "plain"),
            Constraint("count", subject=RED_CIRCLE, count=1),
        ),
        (
            "miscount",
            Scene(tuple(Obj("circle", "red", "small", 20 + 28 * i, 64) for i in range(4)), "plain"),
            Constraint("count", subject=RED_CIRCLE, count=4),
        ),
    ],
)
def test_each_critic_error_kind_happens_at_its_rate_and_the_final_judge_stays_exact(
    kind, scene, constraint
):
    critic = NoisyShapesCritic(CriticErrors(**{kind: 0.3}))
    rng = np.random.default_rng(0)
    base = render(scene)
    n, wrong = 300, 0
    for _ in range(n):
        # Light noise makes each image distinct (errors are a function of the image).
        image = np.clip(base.astype(np.int16) + rng.integers(-2, 3, base.shape), 0, 255).astype(
            np.uint8
        )
        seen = _check(critic, image, constraint)
        wrong += not seen
        assert _check(critic, image, constraint) == seen  # deterministic per image
        assert critic.judge(image, None, (constraint,)).prompt_checks[0].passed  # the final judge
    assert close(wrong / n, 0.3, n), wrong / n


# ------------------------------------------------------------------ reference policies
def _success(policy, env_id="ImagePoser-v1", episodes=60, seed=500):
    env = gym.make(env_id, suite_kwargs={"split": "test"}).unwrapped
    wins = []
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        while True:
            *_, term, trunc, info = env.step(policy(env))
            if term or trunc:
                break
        wins.append(info["final_metrics"]["success"])
    return float(np.mean(wins))


def test_v1_reference_policies_are_ordered_on_small_seeds():
    # Full-size measurements: scripts/v1_table.py (docs/environment.md, v1 section).
    oracle = _success(OraclePolicy())
    assert oracle >= 0.75
    assert _success(KindRouterPolicy()) <= oracle - 0.1
    assert _success(WordRouterPolicy()) <= oracle - 0.1
    assert _success(PlanOraclePolicy()) <= oracle - 0.03
    assert _success(RandomPolicy(0)) <= 0.3


def test_lookahead_is_not_worse_than_the_oracle_on_small_seeds():
    oracle = _success(OraclePolicy(), episodes=20)
    assert (
        _success(LookaheadPolicy(rollouts=4, candidates=2, margin=1), episodes=20) >= oracle - 0.1
    )


def test_lookahead_does_not_touch_the_real_episode():
    env = gym.make("ImagePoser-v1").unwrapped
    env.reset(seed=1)
    state = env.np_random.bit_generator.state
    image = env.current_image.copy()
    LookaheadPolicy(rollouts=2, candidates=2)(env)
    assert env.np_random.bit_generator.state == state
    assert np.array_equal(env.current_image, image)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rollouts": 0}, "rollouts must be an integer >= 1, got 0"),
        ({"candidates": 1.5}, "candidates must be"),
    ],
)
def test_lookahead_arguments_are_checked(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LookaheadPolicy(**kwargs)
