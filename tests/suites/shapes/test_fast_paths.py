"""The speed paths of issue 15 give exactly what the plain code they replace gives."""

from __future__ import annotations

import numpy as np
import pytest

from poser_env.components import ConstraintCheck, Critique
from poser_env.constraints import Constraint, ObjectRef, per_object
from poser_env.envs.image_poser import _to_json, _verdict_json
from poser_env.suites.shapes import tasks
from poser_env.suites.shapes.scene import Obj, evaluate, holds
from poser_env.suites.shapes.vocab import COLORS, REGIONS, RELATIONS, SHAPES, SIZES, STYLES


def _random_constraint(rng) -> Constraint:
    ref = lambda: ObjectRef(  # noqa: E731
        str(rng.choice(SHAPES)),
        str(rng.choice(list(COLORS))) if rng.random() < 0.8 else None,
        str(rng.choice(list(SIZES))) if rng.random() < 0.3 else None,
    )
    kind = str(rng.choice(["count", "region", "relation", "background"]))
    if kind == "count":
        return Constraint("count", subject=ref(), count=int(rng.integers(0, 4)))
    if kind == "region":
        return Constraint("region", subject=ref(), region=str(rng.choice(list(REGIONS))))
    if kind == "relation":
        return Constraint(
            "relation", subject=ref(), relation=str(rng.choice(RELATIONS)), other=ref()
        )
    return Constraint("background", style=str(rng.choice(STYLES)))


def _random_objects(rng) -> list[Obj]:
    return [
        Obj(
            str(rng.choice(SHAPES[:3])),
            str(rng.choice(list(COLORS)[:3])),
            str(rng.choice(list(SIZES))),
            int(rng.integers(0, 128)),
            int(rng.integers(0, 128)),
        )
        for _ in range(int(rng.integers(0, 7)))
    ]


def test_holds_is_evaluates_verdict():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        c, objs, bg = _random_constraint(rng), _random_objects(rng), str(rng.choice(STYLES))
        assert holds(c, objs, bg) == evaluate(c, objs, bg)[0], (c, objs, bg)


def test_verdict_json_is_the_json_of_to_dict():
    rng = np.random.default_rng(1)
    words = ["plain", "two red circles", 'a "quoted" word', "caf\u00e9 \u2713", "back\\slash\n"]
    for _ in range(500):
        checks = [
            ConstraintCheck(
                _random_constraint(rng),
                str(rng.choice(words)),
                str(rng.choice(words)),
                bool(rng.random() < 0.5),
                float(rng.random()),
            )
            for _ in range(int(rng.integers(0, 4)))
        ]
        k = int(rng.integers(0, len(checks) + 1))
        scores = (
            [float(v) for v in rng.random(5)] if rng.random() < 0.8 else [0.0, 1.0, 0.5, 1.0, 0.0]
        )
        critique = Critique(
            tuple(checks[:k]),
            tuple(checks[k:]),
            *scores,
            accepted=bool(rng.random() < 0.5),
            reflection=str(rng.choice(words)),
        )
        assert _verdict_json(critique) == _to_json(critique.to_dict())


def test_choice_draws_what_rng_choice_draws():
    p = (0.28, 0.2, 0.2, 0.12, 0.2)
    for n in range(1, 6):
        w = np.arange(1, n + 1, dtype=float)
        for probs in (p, tasks._longer(n), tuple((w / w.sum()).tolist())):
            a, b = np.random.default_rng(n), np.random.default_rng(n)
            got = [tasks._choice(a, probs) for _ in range(2000)]
            want = [int(b.choice(len(probs), p=list(probs))) for _ in range(2000)]
            assert got == want
            assert a.bit_generator.state == b.bit_generator.state


def test_per_object_memoises_by_identity():
    calls = []
    f = per_object(lambda c: calls.append(c) or len(calls))
    a, b = Constraint("background", style="grid"), Constraint("background", style="grid")
    assert (f(a), f(a), f(b)) == (1, 1, 2)  # b equals a but is another object


@pytest.mark.parametrize("count", [1, 1.0])
def test_per_object_never_mixes_equal_objects(count):
    c = Constraint("count", subject=ObjectRef("circle"), count=count)
    assert _verdict_json(
        Critique((), (ConstraintCheck(c, "", "", True, 1.0),), 1, 1, 1, 1, 1, True)
    ) == _to_json(
        Critique((), (ConstraintCheck(c, "", "", True, 1.0),), 1, 1, 1, 1, 1, True).to_dict()
    )


def test_one_pick_is_the_draw_rng_choice_makes():
    # experts.place draws a single pick with rng.integers instead of rng.choice(replace=False)
    for seed in range(2000):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        for _ in range(seed % 3):
            a.random(), b.random()
        idx = np.arange(1 + seed % 900) * 3
        assert a.choice(idx, size=1, replace=False).tolist() == [int(idx[b.integers(idx.size)])]
        assert a.bit_generator.state == b.bit_generator.state
