"""The Shapes world's language: command intents, their English phrasings, and the
symbolic state that turns a sequence of intents into constraints.

The task generator renders intents to text with :func:`phrase`; the extractor parses text
back into intents (``extractor.py``); both use :class:`SymbolicState` to derive each
command's constraints and the whole prompt's constraints, so the two always agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from poser_env.constraints import Command, Constraint, ObjectRef, number_word, plural
from poser_env.error import PromptParseError
from poser_env.suites.shapes.vocab import MAX_COUNT

INTENT_KINDS = ("generate", "add", "remove", "recolor", "move", "restyle")


@dataclass(frozen=True)
class Group:
    """A group of identical objects as a prompt describes it.

    Attributes:
        ref: Noun, colour and (if the prompt names one) size.
        count: How many.
        region: Region word, if the prompt places the group in a region.
        relation: ``(relation, other ref)`` if placed relative to another group.
    """

    ref: ObjectRef
    count: int
    region: str | None = None
    relation: tuple[str, ObjectRef] | None = None


@dataclass(frozen=True)
class Intent:
    """What one command asks for, structurally.

    ``generate``: ``groups`` (1 or 2) and optional ``style``; ``add``: one group in
    ``groups``; ``remove``/``recolor``/``move``: ``target`` plus ``color``/``region``;
    ``restyle``: ``style``. Hand-written prompts also give ``add`` with ``increment``
    ("one more blue star": the groups join existing groups of the same kind), ``remove``
    with ``count`` ("remove two of the circles": that many go, the rest stay) and ``move``
    with ``relation`` ("move the stars above the circles").
    """

    kind: str
    groups: tuple[Group, ...] = ()
    target: ObjectRef | None = None
    color: str | None = None
    region: str | None = None
    style: str | None = None
    count: int | None = None
    increment: bool = False
    relation: tuple[str, ObjectRef] | None = None


# --------------------------------------------------------------------------- phrasing
REGION_WORDS = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
MOVE_REGION_WORDS = {
    "left": "to the left",
    "right": "to the right",
    "top": "to the top",
    "bottom": "to the bottom",
    "center": "to the center",
}
RELATION_WORDS = {
    "left of": ("to the left of", "left of"),
    "right of": ("to the right of", "right of"),
    "above": ("above", "over"),
    "below": ("below", "under"),
}
PRONOUN_RELATIONS = {"left of": "to their left", "right of": "to their right"}

GENERATE_VERBS = ("draw", "create an image of", "generate", "start with")
ADD_VERBS = ("add", "put", "place", "insert")
REMOVE_VERBS = ("remove", "delete", "erase", "take away")
RECOLOR_FORMS = (
    "make the {ref} {color}",
    "recolor the {ref} to {color}",
    "change the color of the {ref} to {color}",
    "paint the {ref} {color}",
)
MOVE_VERBS = ("move", "shift", "drag")
RESTYLE_FORMS = (
    "make the background {style}",
    "give it a {style} background",
    "change the background to {style}",
    "use a {style} background",
)
CONNECTORS = (", then ", ". Then ", ", and then ", ". After that, ", ". Next, ")
EDIT_PREFIXES = ("Edit the image: ", "In this picture, ", "Change this image: ")


def count_phrase(ref: ObjectRef, n: int, rng: np.random.Generator) -> str:
    if n == 1:
        first = (ref.size or ref.color or ref.noun)[0]
        article = "an" if first in "aeiou" else "a"
        det = article if rng.random() < 0.7 else "one"
    else:
        det = number_word(n)
    return f"{det} {ref.phrase(n)}"


def ref_phrase(ref: ObjectRef, n: int) -> str:
    return f"the {ref.phrase(n)}"


def _location(group: Group, previous: ObjectRef | None, counts: dict[ObjectRef, int], rng) -> str:
    if group.region is not None:
        return " " + REGION_WORDS[group.region]
    if group.relation is not None:
        rel, other = group.relation
        if other == previous and rel in PRONOUN_RELATIONS and rng.random() < 0.4:
            return " " + PRONOUN_RELATIONS[rel]
        words = RELATION_WORDS[rel][int(rng.integers(2))]
        if other == previous and rng.random() < 0.3:
            return f" {words} {'them' if counts.get(other, 2) > 1 else 'it'}"
        return f" {words} {ref_phrase(other, counts.get(other, 2))}"
    return ""


def phrase(intent: Intent, state: SymbolicState, rng: np.random.Generator) -> str:
    """One English clause (lower case, no final period) for ``intent`` in ``state``."""
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    counts = state.counts()
    if intent.kind in ("generate", "add"):
        parts = []
        previous = state.last_mentioned
        for g in intent.groups:
            parts.append(
                count_phrase(g.ref, g.count, rng)
                + _location(g, previous, {**counts, g.ref: g.count}, rng)
            )
            counts[g.ref] = g.count
            previous = g.ref
        verb = pick(GENERATE_VERBS if intent.kind == "generate" else ADD_VERBS)
        text = f"{verb} {' and '.join(parts)}"
        if intent.style is not None:
            text += f" on a {intent.style} background"
        return text
    if intent.kind == "remove":
        return f"{pick(REMOVE_VERBS)} {ref_phrase(intent.target, counts[intent.target])}"
    if intent.kind == "recolor":
        return pick(RECOLOR_FORMS).format(
            ref=intent.target.phrase(counts[intent.target]), color=intent.color
        )
    if intent.kind == "move":
        return (
            f"{pick(MOVE_VERBS)} {ref_phrase(intent.target, counts[intent.target])} "
            f"{MOVE_REGION_WORDS[intent.region]}"
        )
    if intent.kind == "restyle":
        return pick(RESTYLE_FORMS).format(style=intent.style)
    raise ValueError(f"Unknown intent kind {intent.kind!r}; expected one of {INTENT_KINDS}.")


def join_clauses(clauses: list[str], rng: np.random.Generator, prefix: str = "") -> str:
    """Join clauses into a prompt with varied sequencing words."""
    text = ""
    for i, clause in enumerate(clauses):
        if i == 0:
            text = clause
        else:
            conn = CONNECTORS[int(rng.integers(len(CONNECTORS)))]
            text += conn + clause
    text = text[0].upper() + text[1:] if not prefix else prefix + text
    return text + "."


# --------------------------------------------------------------------------- state
@dataclass
class _GroupState:
    ref: ObjectRef
    count: int
    region: str | None = None
    relation: tuple[str, ObjectRef] | None = None


@dataclass
class SymbolicState:
    """What the image should contain after the commands so far.

    Attributes:
        groups: Object groups in order of mention.
        background: Required background style, ``None`` if unconstrained.
        last_mentioned: The group a pronoun ("them", "their") refers to.
    """

    groups: list[_GroupState] = field(default_factory=list)
    background: str | None = None
    last_mentioned: ObjectRef | None = None

    def copy(self) -> SymbolicState:
        return SymbolicState(
            [replace(g) for g in self.groups], self.background, self.last_mentioned
        )

    def counts(self) -> dict[ObjectRef, int]:
        return {g.ref: g.count for g in self.groups}

    def find(self, noun: str, color: str | None, size: str | None = None) -> ObjectRef | None:
        """The group a definite reference ("the red circles") points to."""
        for g in self.groups:
            if (
                g.ref.noun == noun
                and (color is None or g.ref.color == color)
                and (size is None or g.ref.size == size)
            ):
                return g.ref
        return None

    def _group(self, ref: ObjectRef) -> _GroupState:
        for g in self.groups:
            if g.ref == ref:
                return g
        raise KeyError(ref)

    def _group_constraints(self, g: _GroupState) -> list[Constraint]:
        out = [Constraint("count", subject=g.ref, count=g.count)]
        if g.region is not None:
            out.append(Constraint("region", subject=g.ref, region=g.region))
        if g.relation is not None:
            out.append(
                Constraint("relation", subject=g.ref, relation=g.relation[0], other=g.relation[1])
            )
        return out

    def apply(self, intent: Intent) -> tuple[Constraint, ...]:
        """Update the state with ``intent``; returns the command's own constraints."""
        k = intent.kind
        if k in ("generate", "add"):
            return self._draw(intent)
        if k == "restyle":
            self.background = intent.style
            return (Constraint("background", style=intent.style),)
        g = self._group(intent.target)
        self.last_mentioned = g.ref
        step = {"remove": self._remove, "recolor": self._recolor, "move": self._move}.get(k)
        if step is None:
            raise ValueError(f"Unknown intent kind {k!r}; expected one of {INTENT_KINDS}.")
        return step(g, intent)

    def _draw(self, intent: Intent) -> tuple[Constraint, ...]:
        if intent.kind == "generate":
            self.groups = []
        out: list[Constraint] = []
        for g in intent.groups:
            existing = self.find(g.ref.noun, g.ref.color)
            if existing is not None and intent.increment:
                gs = self._increment(self._group(existing), g)
            elif existing is not None:
                raise ValueError(f"There is already a group of {g.ref.phrase(2)}.")
            else:
                gs = _GroupState(g.ref, g.count, g.region, g.relation)
                self.groups.append(gs)
            out += self._group_constraints(gs)
            self.last_mentioned = gs.ref
        if intent.style is not None:
            self.background = intent.style
            out.append(Constraint("background", style=intent.style))
        return tuple(out)

    def _unlink(self, ref: ObjectRef) -> None:
        """Drop the relations of other groups to ``ref``."""
        for other in self.groups:
            if other.relation is not None and other.relation[1] == ref:
                other.relation = None

    def _remove(self, g: _GroupState, intent: Intent) -> tuple[Constraint, ...]:
        if intent.count is not None and intent.count != g.count:
            if intent.count > g.count:
                raise ValueError(
                    f"It removes {number_word(intent.count)} {g.ref.phrase(intent.count)}, "
                    f"but there {'is' if g.count == 1 else 'are'} only {number_word(g.count)}."
                )
            g.count -= intent.count
            # The ones left keep their place.
            return tuple(self._group_constraints(g))
        self.groups.remove(g)
        self._unlink(g.ref)
        self.last_mentioned = None
        return (Constraint("count", subject=g.ref, count=0),)

    def _recolor(self, g: _GroupState, intent: Intent) -> tuple[Constraint, ...]:
        old = g.ref
        g.ref = ObjectRef(old.noun, intent.color, old.size)
        for other in self.groups:
            if other.relation is not None and other.relation[1] == old:
                other.relation = (other.relation[0], g.ref)
        self.last_mentioned = g.ref
        # The recoloured group keeps its place: its region and relation still apply.
        return (Constraint("count", subject=old, count=0), *self._group_constraints(g))

    def _move(self, g: _GroupState, intent: Intent) -> tuple[Constraint, ...]:
        # A relation is a placement instruction given at the time: once either side
        # has been moved elsewhere it no longer binds.
        if intent.relation is not None and intent.relation[1] == g.ref:
            raise ValueError(f"The {g.ref.phrase(2)} cannot be placed relative to themselves.")
        g.region, g.relation = intent.region, intent.relation
        self._unlink(g.ref)
        return tuple(self._group_constraints(g))

    @staticmethod
    def _increment(gs: _GroupState, g: Group) -> _GroupState:
        """Join ``g`` ("one more blue star") to the existing group ``gs`` of its kind."""
        if g.ref.size is not None and g.ref.size != gs.ref.size:
            raise ValueError(
                f"There are already {gs.ref.phrase(2)}; {g.ref.phrase(2)} would be a second group "
                f"of {plural(g.ref.noun, 2)} of that colour."
            )
        if (g.region, g.relation) not in ((None, None), (gs.region, gs.relation)):
            raise ValueError(
                f"The new {g.ref.phrase(g.count)} would be placed elsewhere than the other "
                f"{gs.ref.phrase(2)}; move the group instead."
            )
        if gs.count + g.count > MAX_COUNT:
            raise ValueError(
                f"That makes {gs.count + g.count} {gs.ref.phrase(2)}, but counts go up to {number_word(MAX_COUNT)}."
            )
        gs.count += g.count
        return gs

    def constraints(self) -> tuple[Constraint, ...]:
        """Constraints of everything required so far (the whole prompt, at the end)."""
        out: list[Constraint] = []
        for g in self.groups:
            out += self._group_constraints(g)
        if self.background is not None:
            out.append(Constraint("background", style=self.background))
        return tuple(out)


def intent_command(intent: Intent, text: str, state: SymbolicState) -> Command:
    """Apply ``intent`` to ``state`` and wrap the result as a :class:`Command`."""
    constraints = state.apply(intent)
    return Command(text=text, kind=intent.kind, constraints=constraints)


_OTHER_RE = re.compile(r"(\d+) (\w+) (\w+)")


def fix_text(
    command: Command,
    failed: list[tuple[Constraint, str]],
    wanted: set[tuple[str, str]] = frozenset(),
) -> tuple[str, str]:
    """Kind and text of a command that repairs the failed checks (used by reflection).

    Args:
        command: The failed command.
        failed: ``(constraint, observed words)`` of the failed checks, in order.
        wanted: ``(noun, colour)`` pairs the whole prompt asks for; objects of these are
            never proposed for recolouring.
    """
    c, observed = failed[0]
    if c.kind == "count":
        try:
            found = int(observed.split(" ", 1)[0])
        except ValueError:
            found = 0
        if found < c.count:
            if "(other " in observed and c.subject.color is not None:
                others = _OTHER_RE.findall(observed.split("(other ", 1)[1])
                spare = [color for _, color, _ in others if (c.subject.noun, color) not in wanted]
                if spare:
                    return (
                        "recolor",
                        f"recolor the {spare[0]} {plural(c.subject.noun, 2)} to {c.subject.color}",
                    )
            k = c.count - found
            return "add", f"add {number_word(k)} more {c.subject.phrase(k)}"
        if c.count == 0:
            return "remove", f"remove the {c.subject.phrase(2)}"
        k = found - c.count
        return "remove", f"remove {number_word(k)} of the {c.subject.phrase(2)}"
    if c.kind == "region":
        return "move", f"move the {c.subject.phrase(2)} {MOVE_REGION_WORDS[c.region]}"
    if c.kind == "relation":
        return "move", f"move the {c.subject.phrase(2)} {c.relation} the {c.other.phrase(2)}"
    if c.kind == "background":
        return "restyle", f"make the background {c.style}"
    return "refine", f"redo: {command.text}"


def unparsed(prompt: str, part: str, reason: str = "") -> PromptParseError:
    return PromptParseError(prompt, part, reason)
