"""Machine-checkable constraints, commands and plans.

These are the currency between the components: the extractor turns a prompt into a
:class:`Plan` of :class:`Command` objects, each carrying :class:`Constraint` objects; experts
execute commands; the critic checks constraints against an image. Everything here is a
frozen dataclass made of plain values, so it pickles, hashes and converts to JSON.

Object vocabulary is open (``noun`` may be "circle" or "bottle"): the Shapes world uses a
closed vocabulary, real-model suites may use any English words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ConstraintKind = Literal["count", "region", "relation", "background", "text"]
CommandKind = Literal["generate", "add", "remove", "recolor", "move", "restyle", "refine"]

CONSTRAINT_KINDS: tuple[str, ...] = ("count", "region", "relation", "background", "text")
COMMAND_KINDS: tuple[str, ...] = (
    "generate",
    "add",
    "remove",
    "recolor",
    "move",
    "restyle",
    "refine",
)
#: Command kinds that need an existing image (image-to-image edits).
EDIT_KINDS: frozenset[str] = frozenset({"add", "remove", "recolor", "move", "restyle", "refine"})

_NUMBER_WORDS = {0: "no", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def number_word(n: int) -> str:
    """English word for a small count (``3 -> "three"``)."""
    return _NUMBER_WORDS.get(n, str(n))


def per_object(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Memoise ``fn(obj)`` by the identity of an immutable ``obj`` (a plan's constraints
    are checked and encoded every step). Bounded; an entry keeps its ``obj`` alive, so its
    id is not reused while cached."""
    memo: dict[int, tuple[Any, Any]] = {}

    def cached(obj):
        hit = memo.get(id(obj))
        if hit is None or hit[0] is not obj:
            if len(memo) >= 4096:
                memo.clear()
            hit = memo[id(obj)] = (obj, fn(obj))
        return hit[1]

    return cached


def plural(noun: str, n: int) -> str:
    """Naive English plural, enough for the nouns used here."""
    if n == 1:
        return noun
    if noun.endswith(("s", "x", "sh", "ch")):
        return noun + "es"
    return noun + "s"


@dataclass(frozen=True)
class ObjectRef:
    """A kind of object: a noun with optional colour and size ("big blue square").

    Attributes:
        noun: What the object is ("circle", "bottle").
        color: Colour word, or ``None`` when any colour matches.
        size: Size word ("small", "medium", "big"), or ``None`` when any size matches.
    """

    noun: str
    color: str | None = None
    size: str | None = None

    def phrase(self, n: int = 1) -> str:
        """Words for this object without a count: ``"big blue squares"``."""
        words = [w for w in (self.size, self.color) if w]
        return " ".join([*words, plural(self.noun, n)])

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict without ``None`` fields."""
        out = {"noun": self.noun}
        if self.color is not None:
            out["color"] = self.color
        if self.size is not None:
            out["size"] = self.size
        return out

    def matches(self, noun: str, color: str, size: str) -> bool:
        """Whether an object with these attributes is of this kind."""
        return (
            noun == self.noun
            and (self.color is None or color == self.color)
            and (self.size is None or size == self.size)
        )


@dataclass(frozen=True)
class Constraint:
    """One checkable statement about an image.

    Attributes:
        kind: ``"count"`` (exactly ``count`` objects of ``subject``; 0 means absent),
            ``"region"`` (every ``subject`` lies in ``region``), ``"relation"`` (every
            ``subject`` is ``relation`` every ``other``), ``"background"`` (the background
            has ``style``) or ``"text"`` (free-form ``text``, for model critics only).
        subject: The object the statement is about (not for background/text).
        count: Expected number of ``subject`` objects (count constraints).
        region: One of the region words, e.g. ``"left"`` (region constraints).
        relation: ``"left of"``, ``"right of"``, ``"above"`` or ``"below"``.
        other: The reference object of a relation.
        style: Background style word (background constraints).
        text: Free-form statement (text constraints).
    """

    kind: ConstraintKind
    subject: ObjectRef | None = None
    count: int | None = None
    region: str | None = None
    relation: str | None = None
    other: ObjectRef | None = None
    style: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        need = _NEEDED_FIELDS.get(self.kind)
        if need is None:
            raise ValueError(
                f"Constraint kind must be one of {CONSTRAINT_KINDS}, got {self.kind!r}."
            )
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"A {self.kind!r} constraint needs {missing}, got {self!r}.")
        if self.kind == "count" and self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}.")

    def statement(self) -> str:
        """The constraint as an English statement ("there are exactly three red circles")."""
        if self.kind == "count":
            if self.count == 0:
                return f"there are no {self.subject.phrase(2)}"
            return (
                f"there {'is' if self.count == 1 else 'are'} exactly "
                f"{number_word(self.count)} {self.subject.phrase(self.count)}"
            )
        if self.kind == "region":
            return f"the {self.subject.phrase(2)} are {region_phrase(self.region)}"
        if self.kind == "relation":
            return f"the {self.subject.phrase(2)} are {self.relation} the {self.other.phrase(2)}"
        if self.kind == "background":
            return f"the background is {self.style}"
        return str(self.text)

    def question(self) -> str:
        """The constraint as a yes/no question, for VQA-style critics."""
        s = self.statement()
        if s.startswith("there is "):
            return "Is there " + s[len("there is ") :] + "?"
        if s.startswith("there are "):
            return "Are there " + s[len("there are ") :] + "?"
        if s.startswith("the ") and " are " in s:
            head, tail = s.split(" are ", 1)
            return f"Are {head} {tail}?"
        if s.startswith("the background is "):
            return "Is the background " + s[len("the background is ") :] + "?"
        return f"Is it true that {s}?"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict without ``None`` fields."""
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("subject", "count", "region", "relation", "other", "style", "text"):
            v = getattr(self, key)
            if v is not None:
                out[key] = v.to_dict() if isinstance(v, ObjectRef) else v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Constraint:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        for key in ("subject", "other"):
            if isinstance(d.get(key), dict):
                d[key] = ObjectRef(**d[key])
        return cls(**d)


#: Fields each constraint kind needs (built once: constraints are made on every reset).
_NEEDED_FIELDS: dict[str, tuple[str, ...]] = {
    "count": ("subject", "count"),
    "region": ("subject", "region"),
    "relation": ("subject", "relation", "other"),
    "background": ("style",),
    "text": ("text",),
}


def region_phrase(region: str) -> str:
    """``"left" -> "on the left"``, ``"center" -> "in the center"``."""
    return {
        "left": "on the left",
        "right": "on the right",
        "top": "at the top",
        "bottom": "at the bottom",
    }.get(region, f"in the {region}")


def known_counts(
    constraints: Sequence[Constraint],
) -> dict[tuple[str, str | None, str | None], int]:
    """How many of each object the constraints ask for (from their count constraints)."""
    return {
        (c.subject.noun, c.subject.color, c.subject.size): int(c.count)
        for c in constraints
        if c.kind == "count" and c.subject is not None and c.count
    }


def _how_many(ref: ObjectRef, counts: dict[tuple[str, str | None, str | None], int]) -> int:
    # The exact object first, then any count of the noun; one when nothing says otherwise
    # ("a cat to the left of a dog": a region or relation alone is about one object).
    exact = counts.get((ref.noun, ref.color, ref.size))
    if exact is not None:
        return exact
    same_noun = [n for (noun, _, _), n in counts.items() if noun == ref.noun]
    return sum(same_noun) if same_noun else 1


def constraint_text(
    constraint: Constraint, counts: dict[tuple[str, str | None, str | None], int], question: bool
) -> str:
    """A statement or yes/no question whose number agrees with how many objects are asked for.

    ``Constraint.statement()`` (shared with the Shapes world, whose regions are about every
    object of a kind) always says "the cats are on the left"; a VLM asked "Are the cats on
    the left?" about an image with one cat may rightly answer No. Regions and relations are
    therefore singular unless a count constraint of the same object says more.
    """
    if constraint.kind not in ("region", "relation") or constraint.subject is None:
        return constraint.question() if question else constraint.statement()
    n = _how_many(constraint.subject, counts)
    subject = f"the {constraint.subject.phrase(n)}"
    if constraint.kind == "region":
        where = region_phrase(str(constraint.region))
    else:
        other = constraint.other
        where = (
            f"{constraint.relation} the {other.phrase(_how_many(other, counts))}"
            if other is not None
            else str(constraint.relation)
        )
    if question:
        return f"{'Is' if n == 1 else 'Are'} {subject} {where}?"
    return f"{subject} {'is' if n == 1 else 'are'} {where}"


@dataclass(frozen=True)
class Command:
    """One step of a plan, executed by one expert call.

    Attributes:
        text: The instruction an expert receives ("add a big blue square to their right").
        kind: What kind of operation it is; ``"generate"`` draws from scratch, the other
            kinds edit an existing image.
        constraints: What must hold in the image once the command is done. The critic
            accepts the command when every one holds.
        reflection_of: Text of the command this one rewrites after a failed attempt, if any.
    """

    text: str
    kind: CommandKind
    constraints: tuple[Constraint, ...] = ()
    reflection_of: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in COMMAND_KINDS:
            raise ValueError(f"Command kind must be one of {COMMAND_KINDS}, got {self.kind!r}.")

    @property
    def is_edit(self) -> bool:
        """Whether the command edits an existing image."""
        return self.kind in EDIT_KINDS

    def to_dict(self) -> dict[str, Any]:
        d = {
            "text": self.text,
            "kind": self.kind,
            "constraints": [c.to_dict() for c in self.constraints],
        }
        if self.reflection_of is not None:
            d["reflection_of"] = self.reflection_of
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Command:
        return cls(
            text=d["text"],
            kind=d["kind"],
            constraints=tuple(Constraint.from_dict(c) for c in d.get("constraints", ())),
            reflection_of=d.get("reflection_of"),
        )


@dataclass(frozen=True)
class Plan:
    """What the extractor makes of a prompt.

    Attributes:
        commands: Ordered commands to execute.
        constraints: What must hold in the final image for the whole prompt to be satisfied.
    """

    commands: tuple[Command, ...]
    constraints: tuple[Constraint, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "commands": [c.to_dict() for c in self.commands],
            "constraints": [c.to_dict() for c in self.constraints],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        """Inverse of :meth:`to_dict`."""
        return cls(
            commands=tuple(Command.from_dict(c) for c in d["commands"]),
            constraints=tuple(Constraint.from_dict(c) for c in d.get("constraints", ())),
        )
