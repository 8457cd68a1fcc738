"""Task generator and extractor of the Shapes world: phrasings, splits, parsing, reflection."""

from __future__ import annotations

import re

import numpy as np
import pytest

from poser_env.components import ConstraintCheck, Critique
from poser_env.constraints import Command, Constraint, ObjectRef
from poser_env.error import PromptParseError
from poser_env.suites.shapes import language
from poser_env.suites.shapes.extractor import ShapesExtractor, split_clauses
from poser_env.suites.shapes.perception import perceive
from poser_env.suites.shapes.scene import evaluate
from poser_env.suites.shapes.tasks import DIFFICULTIES, HELD_OUT, ShapesTaskConfig, ShapesTaskSource


@pytest.mark.parametrize("difficulty", sorted(DIFFICULTIES))
@pytest.mark.parametrize("split", ["train", "test"])
def test_extractor_parses_every_generated_prompt_back_to_its_commands(difficulty, split):
    source = ShapesTaskSource(difficulty=difficulty, split=split, editing_fraction=0.3)
    extractor = ShapesExtractor()
    rng = np.random.default_rng(hash((difficulty, split)) % 2**32)
    for _ in range(150):
        task = source.sample(rng)
        plan = extractor.extract(task.prompt, task.image)
        expected = [Command.from_dict(d) for d in task.meta["commands"]]
        assert list(plan.commands) == expected, task.prompt
        assert set(plan.constraints) == set(task.constraints), task.prompt


def test_generator_uses_every_phrasing_and_command_kind():
    source = ShapesTaskSource(difficulty="hard", split="all", editing_fraction=0.3)
    rng = np.random.default_rng(0)
    prompts = [source.sample(rng).prompt.lower() for _ in range(600)]
    text = " ".join(prompts)
    for verb in (
        *language.GENERATE_VERBS,
        *language.ADD_VERBS,
        *language.REMOVE_VERBS,
        *language.MOVE_VERBS,
    ):
        assert re.search(rf"\b{re.escape(verb)}\b", text), verb
    for form in (*language.RECOLOR_FORMS, *language.RESTYLE_FORMS):
        head = form.split("{")[0].strip()
        assert head in text, form
    for connector in language.CONNECTORS:
        assert connector.lower() in text, connector
    kinds: set[str] = set()
    rng = np.random.default_rng(1)
    for _ in range(400):
        kinds |= {c["kind"] for c in source.sample(rng).meta["commands"]}
    assert kinds == {"generate", "add", "remove", "recolor", "move", "restyle"}


def test_task_counts_and_vocabulary_ranges():
    rng = np.random.default_rng(3)
    for difficulty, ranges in DIFFICULTIES.items():
        source = ShapesTaskSource(difficulty=difficulty, split="all", editing_fraction=0.5)
        for _ in range(100):
            task = source.sample(rng)
            lo, hi = ranges[task.kind]
            assert lo <= task.meta["n_commands"] <= hi
            assert (task.image is not None) == (task.kind == "editing")
    counts = {
        c.count
        for t in (ShapesTaskSource(split="all").sample(rng) for _ in range(300))
        for c in t.constraints
        if c.kind == "count"
    }
    assert counts == {1, 2, 3, 4}


def test_train_and_test_splits_hold_out_attribute_combinations():
    rng = np.random.default_rng(11)

    def pairs(task):
        out = {(c.subject.noun, c.subject.color) for c in task.constraints if c.subject}
        for cmd in task.meta["commands"]:
            for c in cmd["constraints"]:
                if "subject" in c:
                    out.add((c["subject"]["noun"], c["subject"].get("color")))
        if task.image is not None:
            out |= {(o.shape, o.color) for o in perceive(task.image).scene.objects}
        return out

    train = ShapesTaskSource(split="train", editing_fraction=0.3)
    test = ShapesTaskSource(split="test", editing_fraction=0.3)
    for _ in range(200):
        assert not pairs(train.sample(rng)) & HELD_OUT
        assert pairs(test.sample(rng)) & HELD_OUT


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
def test_perfect_experts_solve_nearly_every_task(difficulty):
    # The generator checks solvability with its own random placement; a perfect expert
    # with other seeds can still run out of room (measured: about 4% of medium tasks).
    from poser_env.suites.shapes.tasks import _PERFECT_I2I, _PERFECT_T2I

    rng = np.random.default_rng(5)
    source = ShapesTaskSource(difficulty=difficulty, split="all")
    solved = 0
    for _ in range(100):
        task = source.sample(rng)
        image = task.image
        for d in task.meta["commands"]:
            cmd = Command.from_dict(d)
            expert = _PERFECT_T2I if cmd.kind == "generate" else _PERFECT_I2I
            image = expert(cmd, image, seed=int(rng.integers(1000))).image
        scene = perceive(image).scene
        solved += all(evaluate(c, scene.objects, scene.background)[0] for c in task.constraints)
    assert solved >= 90, solved


def test_same_rng_gives_same_task():
    source = ShapesTaskSource()
    a = source.sample(np.random.default_rng(9))
    b = source.sample(np.random.default_rng(9))
    assert a.prompt == b.prompt and a.constraints == b.constraints


def test_hand_written_prompt_with_pronouns_and_sizes():
    plan = ShapesExtractor().extract(
        "Draw two small green stars at the top and a big red cross below them. "
        "Then recolour the big red cross to blue; after that, move the small green stars to the right."
    )
    assert [c.kind for c in plan.commands] == ["generate", "recolor", "move"]
    below = Constraint(
        "relation",
        subject=ObjectRef("cross", "red", "big"),
        relation="below",
        other=ObjectRef("star", "green", "small"),
    )
    assert below in plan.commands[0].constraints, "'below them' refers to the stars"
    assert (
        Constraint("count", subject=ObjectRef("cross", "red", "big"), count=0)
        in plan.commands[1].constraints
    )
    assert (
        Constraint("region", subject=ObjectRef("star", "green", "small"), region="right")
        in plan.constraints
    )
    # Moving the stars releases the cross from its placement relative to them.
    assert not any(c.kind == "relation" for c in plan.constraints)


@pytest.mark.parametrize(
    "prompt, unparsed",
    [
        ("Draw three red circles, then juggle the circles.", "juggle the circles"),
        ("Draw a red circle. Then remove the blue squares.", "remove the blue squares"),
        ("Draw seven red circles.", "draw seven red circles"),
        ("   ", "   "),
        ("Add a blue square to their right.", "add a blue square to their right"),
    ],
)
def test_unparseable_text_names_the_unparsed_part(prompt, unparsed):
    with pytest.raises(PromptParseError, match=re.escape(repr(unparsed))):
        ShapesExtractor().extract(prompt)


def test_split_clauses_handles_connectors_and_edit_prefix():
    clauses, editing = split_clauses(
        "Edit the image: remove the red circles, then make the background dotted. "
        "After that, add a blue star and paint the green squares red."
    )
    assert editing
    assert clauses == [
        "remove the red circles",
        "make the background dotted",
        "add a blue star",
        "paint the green squares red",
    ]


def _critique(command, observed_by_index):
    checks = tuple(
        ConstraintCheck(
            c,
            c.statement(),
            observed_by_index.get(i, "ok"),
            i not in observed_by_index,
            float(i not in observed_by_index),
        )
        for i, c in enumerate(command.constraints)
    )
    return Critique(checks, (), 0.0, 0.0, 1.0, 0.5, 0.3, False, "")


def test_reflection_writes_repairs():
    red = ObjectRef("circle", "red")
    cmd = Command(
        "draw three red circles on the left",
        "generate",
        (
            Constraint("count", subject=red, count=3),
            Constraint("region", subject=red, region="left"),
        ),
    )
    ex = ShapesExtractor()
    fewer = ex.reflect(cmd, _critique(cmd, {0: "2 red circles"}))
    assert (fewer.kind, fewer.text) == ("add", "add one more red circle")
    assert fewer.constraints == cmd.constraints and fewer.reflection_of == cmd.text
    more = ex.reflect(cmd, _critique(cmd, {0: "5 red circles"}))
    assert (more.kind, more.text) == ("remove", "remove two of the red circles")
    wrong_colour = ex.reflect(
        cmd, _critique(cmd, {0: "0 red circles (other circles: 3 blue circles)"})
    )
    assert (wrong_colour.kind, wrong_colour.text) == ("recolor", "recolor the blue circles to red")
    moved = ex.reflect(cmd, _critique(cmd, {1: "1 of 3 outside the left region"}))
    assert (moved.kind, moved.text) == ("move", "move the red circles to the left")
    assert ShapesExtractor(reflect=False).reflect(cmd, _critique(cmd, {0: "2 red circles"})) is None


def test_source_image_seeds_the_plan_for_editing():
    source = ShapesTaskSource(editing_fraction=1.0, split="all")
    task = source.sample(np.random.default_rng(4))
    plan = ShapesExtractor().extract(task.prompt, task.image)
    assert set(plan.constraints) == set(task.constraints)
    # Without the image, the extractor cannot know what the edits refer to.
    with pytest.raises(PromptParseError, match="the plan so far has nothing yet"):
        ShapesExtractor().extract("Edit the image: remove the red circles.")


def test_task_config_rejects_bad_values():
    with pytest.raises(ValueError, match="editing_fraction must be in"):
        ShapesTaskConfig(editing_fraction=1.5)


# ------------------------------------------------------------------ hand-phrased prompts (issue 12)
def test_tokenizer_normalises_case_digits_plurals_and_spellings():
    from poser_env.suites.shapes.lexicon import tokenize

    tokens = tokenize("Please draw 3 Purple CROSSES in the Centre, then recolour them.")
    assert [t.word for t in tokens] == [
        "please",
        "draw",
        "3",
        "purple",
        "cross",
        "in",
        "the",
        "center",
        ",",
        "then",
        "recolor",
        "them",
        ".",
    ]
    assert [t.plural for t in tokens][4] and not tokens[3].plural
    assert tokens[4].text == "CROSSES" and (tokens[4].start, tokens[4].end) == (21, 28)


def test_command_text_is_the_clause_without_filler():
    plan = ShapesExtractor().extract(
        "Could you please draw two red circles at the top of the picture? Thanks! Then, please, erase them."
    )
    assert [c.text for c in plan.commands] == ["draw two red circles at the top", "erase them"]


def test_symbolic_state_increments_partial_removals_and_relative_moves():
    red, blue = ObjectRef("circle", "red"), ObjectRef("square", "blue")
    state = language.SymbolicState()
    state.apply(
        language.Intent(
            "generate", groups=(language.Group(red, 2, region="left"), language.Group(blue, 1))
        )
    )
    more = state.apply(language.Intent("add", groups=(language.Group(red, 1),), increment=True))
    assert more == (
        Constraint("count", subject=red, count=3),
        Constraint("region", subject=red, region="left"),
    )
    with pytest.raises(ValueError, match="already a group"):
        state.copy().apply(language.Intent("add", groups=(language.Group(red, 1),)))
    with pytest.raises(ValueError, match="counts go up to four"):
        state.copy().apply(language.Intent("add", groups=(language.Group(red, 2),), increment=True))
    assert state.apply(language.Intent("remove", target=red, count=2))[0] == Constraint(
        "count", subject=red, count=1
    )
    with pytest.raises(ValueError, match="only one"):
        state.copy().apply(language.Intent("remove", target=red, count=2))
    moved = state.apply(language.Intent("move", target=blue, relation=("above", red)))
    assert moved == (
        Constraint("count", subject=blue, count=1),
        Constraint("relation", subject=blue, relation="above", other=red),
    )
    assert state.apply(language.Intent("remove", target=red, count=1)) == (
        Constraint("count", subject=red, count=0),
    )


def test_ambiguous_reference_names_every_candidate_and_guesses_nothing():
    with pytest.raises(
        PromptParseError,
        match="'the circle' is ambiguous: it could be the blue circles or the red circles",
    ):
        ShapesExtractor().extract("Draw a red circle and two blue circles. Make the circle green.")
    plan = ShapesExtractor().extract(
        "Draw a red circle and two blue circles. Make the blue circle green."
    )
    assert (
        Constraint("count", subject=ObjectRef("circle", "green"), count=2)
        in plan.commands[1].constraints
    )


def test_unknown_words_get_the_worlds_alternatives():
    with pytest.raises(
        PromptParseError,
        match=r"'hexagons' is not a shape of this world; shapes: circle, square, triangle, diamond, star, cross",
    ):
        ShapesExtractor().extract("Draw two hexagons.")
    with pytest.raises(
        PromptParseError, match=r"'sqare' is not a word this world knows; did you mean 'square'\?"
    ):
        ShapesExtractor().extract("Draw a red sqare.")
    with pytest.raises(PromptParseError, match="counts go up to four"):
        ShapesExtractor().extract("Draw 9 red squares.")


@pytest.mark.parametrize(
    "prompt, last",
    [
        (
            "Draw a circle in red at the top.",
            [
                Constraint("count", subject=ObjectRef("circle", "red"), count=1),
                Constraint("region", subject=ObjectRef("circle", "red"), region="top"),
            ],
        ),
        (
            "Draw 3 stars, all purple, at the bottom.",
            [
                Constraint("count", subject=ObjectRef("star", "purple"), count=3),
                Constraint("region", subject=ObjectRef("star", "purple"), region="bottom"),
            ],
        ),
        (
            "Draw two purple crosses. Now take one away.",
            [Constraint("count", subject=ObjectRef("cross", "purple"), count=1)],
        ),
        (
            "Draw two green circles, then paint them both orange.",
            [
                Constraint("count", subject=ObjectRef("circle", "green"), count=0),
                Constraint("count", subject=ObjectRef("circle", "orange"), count=2),
            ],
        ),
        (
            "Draw a yellow star on a grid background, then change it to dotted.",
            [Constraint("background", style="dotted")],
        ),
    ],
)
def test_postposed_colours_split_particles_and_background_pronouns(prompt, last):
    assert sorted(map(repr, ShapesExtractor().extract(prompt).commands[-1].constraints)) == sorted(
        map(repr, last)
    )
