"""The Shapes critic judges from pixels alone, and agrees with the hidden scene."""

from __future__ import annotations

import numpy as np
import pytest

from poser_env.constraints import Command, Constraint, ObjectRef
from poser_env.suites.shapes.critic import ShapesCritic
from poser_env.suites.shapes.experts import place
from poser_env.suites.shapes.perception import PerceptionCache
from poser_env.suites.shapes.scene import Obj, Scene, evaluate, render
from poser_env.suites.shapes.vocab import COLORS, REGIONS, RELATIONS, SHAPES, SIZES, STYLES


def random_scene(rng: np.random.Generator) -> Scene:
    objs: list[Obj] = []
    for _ in range(int(rng.integers(0, 8))):
        o = place(
            objs,
            str(rng.choice(SHAPES)),
            str(rng.choice(list(COLORS))),
            str(rng.choice(list(SIZES))),
            rng,
            aesthetic=0.0,
        )
        if o is not None:
            objs.append(o)
    return Scene(tuple(objs), str(rng.choice(STYLES)))


def random_constraints(rng: np.random.Generator, scene: Scene) -> list[Constraint]:
    def ref(obj: Obj | None = None) -> ObjectRef:
        if obj is None:
            return ObjectRef(str(rng.choice(SHAPES)), str(rng.choice(list(COLORS))), None)
        return ObjectRef(obj.shape, obj.color, obj.size if rng.random() < 0.4 else None)

    present = list(scene.objects)
    out = [Constraint("background", style=str(rng.choice(STYLES)))]
    for _ in range(3):
        r = ref(
            present[int(rng.integers(len(present)))] if present and rng.random() < 0.7 else None
        )
        true_n = sum(r.matches(o.shape, o.color, o.size) for o in present)
        n = true_n if rng.random() < 0.5 else int(rng.integers(0, 5))
        out.append(Constraint("count", subject=r, count=n))
    if present:
        for _ in range(2):
            out.append(
                Constraint(
                    "region",
                    subject=ref(present[int(rng.integers(len(present)))]),
                    region=str(rng.choice(list(REGIONS))),
                )
            )
            a, b = (present[int(i)] for i in rng.integers(len(present), size=2))
            out.append(
                Constraint(
                    "relation", subject=ref(a), relation=str(rng.choice(RELATIONS)), other=ref(b)
                )
            )
    return out


def test_verdicts_agree_with_ground_truth_on_500_clean_scenes():
    rng = np.random.default_rng(2026)
    critic = ShapesCritic()
    agree = total = truths = 0
    per_kind: dict[str, list[int]] = {}
    for _ in range(500):
        scene = random_scene(rng)
        constraints = random_constraints(rng, scene)
        critique = critic.judge(render(scene), None, constraints)
        for c, check in zip(constraints, critique.prompt_checks, strict=True):
            truth = evaluate(c, scene.objects, scene.background)[0]
            ok = truth == check.passed
            truths += truth
            agree += ok
            total += 1
            per_kind.setdefault(c.kind, [0, 0])
            per_kind[c.kind][0] += ok
            per_kind[c.kind][1] += 1
    assert total > 3000
    accuracy = agree / total
    assert accuracy >= 0.99, f"critic agreement {accuracy:.4f} per kind {per_kind}"
    # Both answers are common, so agreement cannot come from always answering the same.
    assert 0.25 < truths / total < 0.75, truths / total


def test_perception_recovers_clean_scenes_exactly():
    rng = np.random.default_rng(7)
    perceive = PerceptionCache()
    for _ in range(200):
        scene = random_scene(rng)
        seen = perceive(render(scene)).scene
        assert sorted(seen.objects, key=lambda o: (o.x, o.y)) == sorted(
            scene.objects, key=lambda o: (o.x, o.y)
        )
        assert seen.background == scene.background


def test_critique_structure_and_acceptance():
    scene = Scene(
        (Obj("circle", "red", "medium", 20, 30), Obj("circle", "red", "medium", 20, 80)), "striped"
    )
    ok = Command(
        "draw two red circles on the left",
        "generate",
        (
            Constraint("count", subject=ObjectRef("circle", "red"), count=2),
            Constraint("region", subject=ObjectRef("circle", "red"), region="left"),
        ),
    )
    bad = Command(
        "draw three red circles",
        "generate",
        (Constraint("count", subject=ObjectRef("circle", "red"), count=3),),
    )
    critic = ShapesCritic()
    good = critic.judge(render(scene), ok, [Constraint("background", style="striped")])
    assert good.accepted and good.alignment == 1.0 and good.prompt_alignment == 1.0
    assert good.fidelity == 1.0 and 0.0 < good.aesthetics <= 1.0 and 0.0 < good.overall <= 1.0
    assert good.reflection == ""
    miss = critic.judge(render(scene), bad, [Constraint("background", style="dotted")])
    assert not miss.accepted and miss.alignment == 0.0 and miss.prompt_alignment == 0.0
    assert miss.checks[0].observed == "2 red circles"
    assert (
        "Expected there are exactly three red circles; observed 2 red circles." in miss.reflection
    )
    d = miss.to_dict()
    assert d["checks"][0]["constraint"] == {
        "kind": "count",
        "subject": {"noun": "circle", "color": "red"},
        "count": 3,
    }


def test_noise_lowers_fidelity_and_blocks_acceptance():
    scene = Scene((Obj("star", "blue", "big", 64, 64),), "plain")
    img = render(scene).astype(np.int16)
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 28, img.shape), 0, 255).astype(
        np.uint8
    )
    cmd = Command(
        "draw a blue star",
        "generate",
        (Constraint("count", subject=ObjectRef("star", "blue"), count=1),),
    )
    critic = ShapesCritic(accept_fidelity=0.5)
    clean_c, noisy_c = critic.judge(render(scene), cmd, []), critic.judge(noisy, cmd, [])
    assert clean_c.fidelity > 0.95 and noisy_c.fidelity < 0.5
    assert clean_c.accepted and not noisy_c.accepted
    assert noisy_c.checks[0].passed, "the star is still seen through the noise"
    assert "noisy or blurred" in noisy_c.reflection


@pytest.mark.parametrize(
    "bad", [np.zeros((64, 64, 3), np.uint8), np.zeros((128, 128, 3), np.float32)]
)
def test_perception_rejects_wrong_images(bad):
    with pytest.raises(ValueError, match=r"expects a \(128, 128, 3\) uint8 image"):
        PerceptionCache()(bad)


def test_critic_config_errors():
    with pytest.raises(ValueError, match="accept_fidelity must be in"):
        ShapesCritic(accept_fidelity=2.0)
    with pytest.raises(ValueError, match="weights must be 3"):
        ShapesCritic(weights=(1.0, -1.0, 0.0))
