"""The Shapes extractor on hand-phrased prompts (issue 12).

``data/prompts_corpus.txt`` holds prompts written by hand for this test, each annotated
with the commands and constraints it means (its header documents the format). Most must
parse to exactly their annotation; every out-of-vocabulary or meaningless one must raise a
``PromptParseError`` naming the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from poser_env.constraints import Constraint, ObjectRef
from poser_env.error import PromptParseError
from poser_env.suites.shapes.experts import place
from poser_env.suites.shapes.extractor import ShapesExtractor
from poser_env.suites.shapes.scene import Scene, render
from poser_env.suites.shapes.vocab import COLORS, RELATIONS, SHAPES, SIZES

CORPUS = Path(__file__).parent / "data" / "prompts_corpus.txt"
#: The phrasing kinds issue 12 lists; every one has a section of the corpus.
KINDS = (
    "politeness and filler",
    "digits for counts",
    "references by noun alone",
    "partitive and counted references",
    "verbless follow-ups and pronouns",
    "bare descriptions with no verb",
    "increments and ordinals",
    "a relation between the two groups of one drawing command",
    'lists with a final "and"',
)


@dataclass
class Entry:
    section: str
    prompt: str
    line: int
    scene: list[tuple[int, ObjectRef]]
    commands: list[tuple[str, list[Constraint]]]
    error: str | None = None


def _ref(words: list[str]) -> ObjectRef:
    size = words.pop(0) if words[0] in SIZES else None
    color = words.pop(0) if words[0] in COLORS else None
    assert len(words) == 1 and words[0] in SHAPES, words
    return ObjectRef(words[0], color, size)


def _constraint(text: str) -> Constraint:
    text = text.strip()
    if text.startswith("bg "):
        return Constraint("background", style=text[3:])
    if " @ " in text:
        ref, region = text.split(" @ ")
        return Constraint("region", subject=_ref(ref.split()), region=region)
    for rel in RELATIONS:
        if f" {rel} " in text:
            a, b = text.split(f" {rel} ")
            return Constraint(
                "relation", subject=_ref(a.split()), relation=rel, other=_ref(b.split())
            )
    n, ref = text.split(" ", 1)
    return Constraint("count", subject=_ref(ref.split()), count=int(n))


def load_corpus() -> list[Entry]:
    entries: list[Entry] = []
    section = ""
    for number, raw in enumerate(CORPUS.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or (line.startswith("#") and not line.startswith("## ")):
            continue
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("> "):
            entries.append(Entry(section, line[2:], number, [], []))
        elif line.startswith("scene: "):
            entries[-1].scene = [
                (int(p.split()[0]), _ref(p.split()[1:])) for p in line[7:].split(",")
            ]
        elif line.startswith("error: "):
            entries[-1].error = line[7:]
        else:
            kind, constraints = line.split(":", 1)
            entries[-1].commands.append((kind, [_constraint(c) for c in constraints.split(";")]))
    return entries


ENTRIES = load_corpus()
MEANINGFUL = [e for e in ENTRIES if e.error is None]
ERRORS = [e for e in ENTRIES if e.error is not None]


def _image(scene: list[tuple[int, ObjectRef]]) -> np.ndarray:
    rng = np.random.default_rng(0)
    objs = []
    for n, ref in scene:
        for _ in range(n):
            obj = place(objs, ref.noun, ref.color, ref.size or "small", rng)
            assert obj is not None, scene
            objs.append(obj)
    return render(Scene(tuple(objs), "plain"))


def _extract(entry: Entry):
    return ShapesExtractor().extract(entry.prompt, _image(entry.scene) if entry.scene else None)


def _mismatch(entry: Entry) -> str | None:
    """Why the entry's plan differs from its annotation (``None`` if it matches)."""
    try:
        plan = _extract(entry)
    except PromptParseError as e:
        return str(e)
    got = [(c.kind, sorted(map(repr, c.constraints))) for c in plan.commands]
    want = [(kind, sorted(map(repr, cs))) for kind, cs in entry.commands]
    if got != want:
        return "got " + " | ".join(
            f"{c.kind}: {'; '.join(x.statement() for x in c.constraints)}" for c in plan.commands
        )
    return None


def test_corpus_covers_every_phrasing_kind_of_the_issue():
    assert len(MEANINGFUL) >= 300, len(MEANINGFUL)
    assert len(ERRORS) >= 40, len(ERRORS)
    sections = {e.section for e in MEANINGFUL}
    assert set(KINDS) <= sections, set(KINDS) - sections
    for kind in KINDS:
        assert sum(e.section == kind for e in MEANINGFUL) >= 25, kind
    assert all(e.commands for e in MEANINGFUL)
    prompts = [e.prompt for e in ENTRIES]
    assert len(set(prompts)) == len(prompts), "a prompt appears twice"


def test_hand_phrased_prompts_parse_to_exactly_their_annotated_constraints():
    failures = {
        f"line {e.line}: {e.prompt!r}": why for e in MEANINGFUL if (why := _mismatch(e)) is not None
    }
    rate = 1 - len(failures) / len(MEANINGFUL)
    detail = "\n".join(f"{k}\n    {v}" for k, v in failures.items())
    assert rate >= 0.95, (
        f"{rate:.1%} of {len(MEANINGFUL)} parse to their annotation; failures:\n{detail}"
    )


@pytest.mark.parametrize("entry", ERRORS, ids=lambda e: e.prompt[:40])
def test_out_of_vocabulary_and_meaningless_prompts_name_the_problem(entry):
    with pytest.raises(PromptParseError, match=re.escape(entry.error)):
        _extract(entry)
