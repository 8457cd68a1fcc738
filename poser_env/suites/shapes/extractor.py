"""Rule-based command extractor of the Shapes world.

Parses prompts as people write them over the world's closed vocabulary, in free word order:
the text is tokenised and normalised (case, digits, plurals, spelling variants, punctuation),
split into clauses at sentence marks and sequencing words ("then", "after that", "and"
before a verb), and each clause is read as a small bag of chunks (a verb, object phrases,
places, a colour, a background) whose combination decides the command. References ("the
star", "them", "its", "one of them", "the other") are resolved against the
:class:`~poser_env.suites.shapes.language.SymbolicState` of the commands so far, which then
derives each command's constraints and the whole prompt's constraints, exactly as for the
task generator's own phrasings.

Text it cannot understand raises :class:`~poser_env.error.PromptParseError` naming the
clause and the words it could not place, with the world's words where a word is close to
one ("'hexagon' is not a shape of this world; shapes: ..."); an ambiguous reference ("the
circle" with red and blue circles) is an error naming the candidates, never a guess.

The extractor also reflects on failures by rewriting the command into a repair ("add one
more red circle").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poser_env.components import CommandExtractor, Critique
from poser_env.constraints import Command, ObjectRef, Plan, number_word, plural
from poser_env.error import PromptParseError, closest
from poser_env.suites.shapes import lexicon as lx
from poser_env.suites.shapes.language import Group, Intent, SymbolicState, fix_text, intent_command
from poser_env.suites.shapes.vocab import (
    COLORS,
    MAX_COUNT,
    REGIONS,
    RELATIONS,
    SHAPES,
    SIZES,
    STYLES,
)

_EXAMPLES = (
    "expected a command such as 'draw three red circles on the left', 'add a big blue square to their right', "
    "'remove the red circles', 'make the star green', 'move the stars to the top', 'make the background striped'"
)
_PICTURE_WORDS = {"picture", "image", "canvas", "scene", "frame", "drawing"}
_DIRECTIONS = {
    "up": "top",
    "upwards": "top",
    "down": "bottom",
    "downwards": "bottom",
    "leftwards": "left",
    "rightwards": "right",
}
_PRONOUNS = {"them", "it", "they", "those", "these"}
_SEPARATORS = {
    ("and",),
    ("with",),
    ("plus",),
    ("along", "with"),
    ("as", "well", "as"),
    ("alongside",),
    ("together", "with"),
}
#: What a clause may hold at a position, by priority when one phrase is in several tables.
_CHUNK_PHRASES = lx.combine(
    ("rel", lx.RELATION_PHRASES),
    ("prel", lx.PRONOUN_RELATION_PHRASES),
    ("region", lx.REGION_PHRASES),
    ("verb", lx.VERB_PHRASES),
    ("filler", lx.FILLER_PHRASES),
    ("sep", _SEPARATORS),
)
_SPLIT_PHRASES = lx.combine(("connector", lx.CONNECTOR_PHRASES), ("filler", lx.FILLER_PHRASES))
_CONTENT_PHRASES = lx.combine(("verb", lx.VERB_PHRASES), ("filler", lx.FILLER_PHRASES))
# Most words start no phrase; a set lookup skips them before any phrase matching.
_SPLIT_FIRST = {k[0] for k in _SPLIT_PHRASES}
_CHUNK_FIRST = {k[0] for k in _CHUNK_PHRASES}
_STYLE_PREPS = {"on", "with", "against", "in", "onto", "to", "into"}


# ------------------------------------------------------------------------------ clauses
@dataclass
class _Clause:
    tokens: list[lx.Token]
    sequenced: bool = False  # started by "then", "after that"...
    after_comma: bool = False  # separated from the previous clause by a comma only
    content: tuple[int, int] | None = None  # span of its words that are not filler

    @property
    def span(self) -> tuple[int, int] | None:
        return _content_span(self.tokens)


def _starts_command(words: list[str], i: int) -> bool:
    while i < len(words):
        m = lx.longest_match(words, i, lx.FILLER_PHRASES)
        if m is None:
            break
        i += m[0]
    return i < len(words) and lx.longest_match(words, i, lx.VERB_PHRASES) is not None


def _has_verb(tokens: list[lx.Token]) -> bool:
    words = [t.word for t in tokens]
    return any(lx.longest_match(words, i, lx.VERB_PHRASES) is not None for i in range(len(words)))


def split_clauses(prompt: str) -> tuple[list[str], bool]:
    """Lower-cased clause texts of ``prompt`` and whether it starts with an editing phrase."""
    clauses = _clauses(lx.tokenize(prompt))
    texts = [_text(prompt, c.content) for c in clauses]
    head = " ".join(prompt.lower().split())
    editing = head.startswith(
        ("edit the image", "edit this image", "in this picture", "change this image")
    )
    return [t for t in texts if t], editing


def _names_object(tokens: list[lx.Token]) -> bool:
    return any(t.word in SHAPES or t.word in _PRONOUNS or t.word == "one" for t in tokens)


def _clauses(tokens: list[lx.Token]) -> list[_Clause]:
    words = [t.word for t in tokens]
    out: list[_Clause] = []
    cur = _Clause([])

    def flush(comma: bool = False) -> None:
        nonlocal cur
        if cur.tokens:
            out.append(cur)
            cur = _Clause([], after_comma=comma)
        elif not comma:
            cur.after_comma = False

    i = 0
    while i < len(words):
        w = words[i]
        if w in lx.CLAUSE_MARKS:
            flush()
            i += 1
            continue
        if w == ",":
            flush(comma=True)
            i += 1
            continue
        m = lx.longest_match(words, i, _SPLIT_PHRASES) if w in _SPLIT_FIRST else None
        if (
            m is not None
            and m[1][0] == "connector"
            and not (w == "next" and words[i + 1 : i + 2] == ["to"])
        ):
            flush()
            cur.sequenced, cur.after_comma = True, False
            i += m[0]
            continue
        if (
            m is not None and m[1][0] == "filler" and m[0] > 1
        ):  # "go ahead and draw": the "and" is filler
            cur.tokens += tokens[i : i + m[0]]
            i += m[0]
            continue
        if w == "and" and not cur.tokens:
            i += 1  # ", and use a striped background": the "and" only joins
            continue
        if w == "and" and _starts_command(words, i + 1):
            flush()
            i += 1
            continue
        cur.tokens.append(tokens[i])
        i += 1
    flush()
    # "Draw a red circle, a blue square and a green star": a verbless part after a plain
    # comma continues the previous clause.
    merged: list[_Clause] = []
    carry = False
    for c in out:
        c.content = c.span
        if c.content is None:  # only filler: "Please,", "In this picture,"
            carry = carry or c.sequenced
            continue
        c.sequenced, carry = c.sequenced or carry, False
        if (
            merged
            and c.after_comma
            and not c.sequenced
            and not _has_verb(merged[-1].tokens)
            and not _names_object(merged[-1].tokens)
        ):
            # "On the left, draw three red circles": a leading place belongs to what follows.
            glue = lx.Token("and", c.tokens[0].start, c.tokens[0].start)
            c.tokens = [*merged.pop().tokens, glue, *c.tokens]
            c.content = c.span
            merged.append(c)
        elif merged and c.after_comma and not c.sequenced and not _has_verb(c.tokens):
            glue = lx.Token("and", c.tokens[0].start, c.tokens[0].start)
            merged[-1].tokens += [glue, *c.tokens]
            merged[-1].content = merged[-1].span
        else:
            merged.append(c)
    return merged


def _text(prompt: str, span: tuple[int, int] | None) -> str:
    return "" if span is None else " ".join(prompt[span[0] : span[1]].split()).lower()


def _content_span(tokens: list[lx.Token]) -> tuple[int, int] | None:
    """Characters from the first to the last word that is not filler ("please", "thanks")."""
    words = [t.word for t in tokens]
    i, j = 0, len(words)
    while i < j:
        if words[i] == "and" or tokens[i].start == tokens[i].end:
            i += 1
            continue
        m = lx.longest_match(words, i, _CONTENT_PHRASES)
        if m is None or m[1][0] != "filler":
            break
        i += m[0]
    while j > i:
        if words[j - 1] == "and" or tokens[j - 1].start == tokens[j - 1].end:
            j -= 1
            continue
        n = next(
            (
                n
                for n in range(min(_LONGEST_FILLER, j - i), 0, -1)
                if tuple(words[j - n : j]) in _TRAILING_FILLER
            ),
            0,
        )
        if not n:
            break
        j -= n
    return None if i >= j else (tokens[i].start, tokens[j - 1].end)


_TRAILING_FILLER = lx.FILLER_PHRASES - set(lx.VERB_PHRASES)
_LONGEST_FILLER = max(map(len, _TRAILING_FILLER))


# ------------------------------------------------------------------------------ chunks
@dataclass
class _Obj:
    """An object phrase: "two big red circles", "the star", "them", "one of the circles"."""

    det: str  # indef | def | other | part | more | bare | pron
    words: str
    count: int | None = None
    size: str | None = None
    color: str | None = None
    noun: str | None = None
    plural: bool = False
    one: bool = False  # "a blue one", "the other ones"
    ordinal: int | None = None
    pron: str | None = None
    inner: _Obj | None = None  # the group of a partitive ("two of the circles")


@dataclass
class _Chunk:
    kind: str  # verb | obj | region | rel | prel | style | bg | color | size | sep | to
    value: object = None
    words: str = ""


@dataclass
class _Reading:
    chunks: list[_Chunk] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _explain(word: str) -> str:
    """Why ``word`` is not understood, with what the world offers instead."""
    stem = (
        word[:-2]
        if word.endswith("es") and word[:-2] in lx.FOREIGN_SHAPES
        else word.rstrip("s")
        if word.endswith("s")
        else word
    )
    if word in lx.FOREIGN_SHAPES or stem in lx.FOREIGN_SHAPES:
        return f"'{word}' is not a shape of this world; shapes: {', '.join(SHAPES)}"
    if word in lx.FOREIGN_COLORS:
        return f"'{word}' is not a colour of this world; colours: {', '.join(COLORS)}"
    if word in lx.FOREIGN_SIZES:
        return f"'{word}' is not a size of this world; sizes: {', '.join(SIZES)}"
    if word in lx.FOREIGN_STYLES:
        return f"'{word}' is not a background of this world; backgrounds: {', '.join(STYLES)}"
    if word in lx.FOREIGN_PLACES:
        return (
            f"'{word}' is not a place of this world; regions: {', '.join(REGIONS)}; "
            f"relations: {', '.join(RELATIONS)} another group"
        )
    if word in lx.VAGUE_COUNTS:
        return f"'{word}' is not a count; give a number from one to {number_word(MAX_COUNT)}"
    if word in lx.KNOWN_WORDS:
        return f"'{word}' does not fit here"
    close = closest(word, sorted(w for w in lx.KNOWN_WORDS if len(w) > 2), cutoff=0.75)
    hint = f"; did you mean '{close}'?" if close else ""
    return f"'{word}' is not a word this world knows{hint}"


def _chunk(tokens: list[lx.Token]) -> _Reading:
    words = [t.word for t in tokens]
    if "take" in words and "away" in words[words.index("take") + 2 :]:
        # "take one away": a verb whose particle follows the object
        k = words.index("take")
        away = words.index("away", k + 2)
        tokens = [
            *tokens[:k],
            tokens[k]._replace(word="remove"),
            *tokens[k + 1 : away],
            *tokens[away + 1 :],
        ]
        words = [t.word for t in tokens]
    orig = [t.text.lower() or t.word for t in tokens]
    out = _Reading()
    reader = _Words(tokens, words, orig, out.problems)
    n = len(words)
    i = 0
    while i < n:
        w = words[i]
        if w == "and" and tokens[i].start == tokens[i].end:  # glue of merged clauses
            out.chunks.append(_Chunk("sep", words="and"))
            i += 1
            continue
        m = lx.longest_match(words, i, _CHUNK_PHRASES) if w in _CHUNK_FIRST else None
        best = None if m is None else (m[0], *m[1])
        if best is not None and best[1] == "rel":
            # "on the left of the picture" is a region, not a relation to a picture.
            j = i + best[0]
            after = words[j : j + 2]
            if len(after) == 2 and after[0] in ("the", "this") and after[1] in _PICTURE_WORDS:
                side = best[2].split()[0]
                side = {"above": "top", "below": "bottom"}.get(side, side)
                out.chunks.append(_Chunk("region", side, " ".join(orig[i : j + 2])))
                i = j + 2
                continue
        if best is not None and not (best[1] == "sep" and w == "with" and _styled(words, i + 1)):
            size, kind, value = best
            if kind == "sep":
                value = None
            if kind != "filler":
                out.chunks.append(_Chunk(kind, value, " ".join(orig[i : i + size])))
            i += size
            continue
        # Backgrounds: "on a checkered background", "make the background striped".
        start = i + 1 if w in _STYLE_PREPS else i
        if _styled(words, start):
            j = start + 1 if words[start] in ("a", "an", "the") else start
            kind = "bg" if words[j] == "background" else "style"
            out.chunks.append(_Chunk(kind, None if kind == "bg" else words[j], words[j]))
            i = j + 1
            continue
        if w in ("all", "both", "in") and i + 1 < n and words[i + 1] in COLORS:
            i += 1  # "three stars, all purple", "a circle in red": the colour follows
            continue
        if w in REGIONS or w in _DIRECTIONS:
            out.chunks.append(_Chunk("region", _DIRECTIONS.get(w, w), w))
            i += 1
            continue
        if w in ("to", "into"):
            out.chunks.append(_Chunk("to", None, w))
            i += 1
            continue
        obj, j = reader.object(i)
        if j > i:
            if obj is not None:
                out.chunks.append(obj)
            i = j
            continue
        out.problems.append(_explain(w))
        i += 1
    return out


def _styled(words: list[str], i: int) -> bool:
    """Whether a background phrase starts at ``i`` ("a striped background")."""
    if i < len(words) and words[i] in ("a", "an", "the"):
        i += 1
    return i < len(words) and (words[i] in STYLES or words[i] == "background")


class _Words:
    """A clause's tokens being read into chunks: words, original spellings, problems."""

    def __init__(self, tokens: list[lx.Token], words: list[str], orig: list[str], problems):
        self.tokens, self.words, self.orig, self.problems = tokens, words, orig, problems

    def at(self, k: int) -> str:
        return self.words[k] if k < len(self.words) else ""

    def object(self, i: int) -> tuple[_Chunk | None, int]:
        """Reads an object phrase at ``i``; returns the chunk (or a stray colour/size) and the next index."""
        at, start, obj = self.at, i, _Obj("bare", "")
        i = self.determiner(i, obj)
        if isinstance(i, tuple):  # a whole phrase: a pronoun or a partitive
            return i
        while at(i) in SIZES or at(i) in COLORS:
            attr = "size" if at(i) in SIZES else "color"
            if getattr(obj, attr) is not None:
                break
            setattr(obj, attr, at(i))
            i += 1
        if at(i) in SHAPES or at(i) == "one":
            obj.noun, obj.one = (at(i), False) if at(i) in SHAPES else (None, True)
            obj.plural = self.tokens[i].plural
            i += 1
        if i == start:
            return None, start
        if obj.det == "bare" and obj.noun is None and not obj.one:
            # A colour or size on its own: "make the star red".
            kind, value = ("size", obj.size) if obj.size is not None else ("color", obj.color)
            if obj.size is not None and obj.color is not None:
                self.problems.append(f"'{obj.size} {obj.color}' is not attached to a shape")
            return _Chunk(kind, value, value), i
        obj.words = " ".join(self.orig[start:i])
        top = number_word(MAX_COUNT)
        if obj.count is not None and not 1 <= obj.count <= MAX_COUNT and obj.det != "def":
            self.problems.append(f"'{obj.words}': counts go up to {top} (one to {top} of a kind)")
        if obj.ordinal is not None and obj.ordinal > MAX_COUNT:
            self.problems.append(f"'{obj.words}': counts go up to {top}")
        return _Chunk("obj", obj, obj.words), i

    def determiner(self, i: int, obj: _Obj) -> int | tuple[_Chunk | None, int]:
        """Reads the determiner or count at ``i`` into ``obj``; the next index, or the whole
        phrase's result when the determiner ends it (a pronoun, a partitive)."""
        at, w = self.at, self.at(i)
        attribute = any(at(i + 1) in vocab for vocab in (SHAPES, COLORS, SIZES))
        if w in ("them", "it", "they") or (w in _PRONOUNS and not attribute):
            obj.det, obj.pron, obj.words = "pron", w, w
            return _Chunk("obj", obj, w), i + (2 if at(i + 1) in ("both", "all") else 1)
        if w in ("those", "these", "the"):
            obj.det = "def"
            if w == "the" and at(i + 1) == "other":
                obj.det = "other"
                return i + 2
            if w == "the" and lx.count_of(at(i + 1)) is not None and at(i + 1) not in ("a", "an"):
                obj.count = lx.count_of(at(i + 1))
                return i + 2
            return i + 1
        if w in ("all", "both"):
            return self.all(i, obj)
        if w in ("another", "a", "an"):
            obj.det, obj.count = "more" if w == "another" else "indef", 1
            if w != "another" and at(i + 1) in lx.ORDINALS:
                obj.det, obj.ordinal = "more", lx.ORDINALS[at(i + 1)]
                return i + 2
            return i + 1
        if lx.count_of(w) is not None:
            return self.counted(i, obj)
        if w in lx.VAGUE_COUNTS and (attribute or at(i + 1) == "of"):
            self.problems.append(_explain(w))
            obj.det = "indef"
            return i + 1
        return i

    def all(self, i: int, obj: _Obj) -> int | tuple[_Chunk, int]:
        """ "all (of) the circles", "both of them"."""
        start, obj.det = i, "def"
        i += 2 if self.at(i + 1) == "of" else 1
        if self.at(i) in ("the", "those", "these"):
            return i + 1
        if self.at(i) == "them":
            obj.det, obj.pron = "pron", "them"
            obj.words = " ".join(self.orig[start : i + 1])
            return _Chunk("obj", obj, obj.words), i + 1
        return i

    def counted(self, i: int, obj: _Obj) -> int | tuple[_Chunk | None, int]:
        """ "three", "two more", "two of the circles" (a partitive, read whole)."""
        start = i
        obj.det, obj.count = "indef", lx.count_of(self.at(i))
        if self.at(i + 1) == "more":
            obj.det = "more"
            return i + 2
        if self.at(i + 1) != "of":
            return i + 1
        i += 2
        inner = self.object(i)
        if inner[0] is None or inner[0].value.det not in ("def", "pron", "other", "bare"):
            self.problems.append(
                f"'{' '.join(self.orig[start:i])}' must be followed by a group such as 'the circles' or 'them'"
            )
            return None, max(inner[1], i)
        obj.det, obj.inner = "part", inner[0].value
        obj.words = " ".join(self.orig[start : inner[1]])
        return _Chunk("obj", obj, obj.words), inner[1]


# ------------------------------------------------------------------------------ meaning
class _Parse:
    """Reads one prompt's clauses into intents against a symbolic state."""

    def __init__(self, prompt: str, state: SymbolicState):
        self.prompt = prompt
        self.state = state
        self.recent: list[ObjectRef] = []  # what the previous clause talked about ("the other")
        self.clause = ""

    def fail(self, reason: str) -> PromptParseError:
        return PromptParseError(self.prompt, self.clause, reason)

    # ---------------------------------------------------------------- references
    def _known(self, pool: list[ObjectRef]) -> str:
        return ", ".join(r.phrase(2) for r in pool) or "nothing yet"

    def resolve(self, obj: _Obj, pool: list[ObjectRef], last: ObjectRef | None) -> ObjectRef:
        """The existing group an object phrase points to (never a guess)."""
        if obj.det == "pron":
            if (last is None or last not in pool) and len(pool) == 1:
                return pool[0]  # "make them orange" when the picture has one group
            if last is None or last not in pool:
                raise self.fail(
                    f"'{obj.pron}' with nothing before it to refer to (the plan so far has {self._known(pool)})"
                )
            return last
        if obj.det == "part":
            return self.resolve(obj.inner, pool, last)
        noun = obj.noun
        if noun is None and obj.det != "other":  # "the blue ones": the shape talked about last
            if last is None:
                raise self.fail(f"'{obj.words}' names no shape and nothing before it says which")
            noun = last.noun
        cands = [
            r
            for r in pool
            if (noun is None or r.noun == noun) and (obj.color is None or r.color == obj.color)
        ]
        if obj.size is not None and any(r.size == obj.size for r in cands):
            cands = [r for r in cands if r.size == obj.size]
        if obj.det == "other":
            mentioned = [r for r in ([last] if last else []) + self.recent if r is not None]
            cands = [r for r in cands if r not in mentioned]
            if noun is None and mentioned:
                same = [r for r in cands if r.noun == mentioned[0].noun]
                cands = same or cands
        if not cands:
            what = ObjectRef(noun or "object", obj.color, obj.size).phrase(2)
            raise self.fail(f"it refers to {what}, but the plan so far has {self._known(pool)}")
        if len(cands) > 1:
            options = " or ".join(sorted(f"the {r.phrase(2)}" for r in cands))
            raise self.fail(
                f"'{obj.words}' is ambiguous: it could be {options}; say which (for example 'the {cands[0].phrase(2)}')"
            )
        return cands[0]

    # ---------------------------------------------------------------- clauses
    def intent(self, reading: _Reading, first: bool) -> Intent:
        chunks = reading.chunks
        if reading.problems:
            raise self.fail("; ".join(reading.problems))
        verbs = [c for c in chunks if c.kind == "verb"]
        if len(verbs) > 1:
            raise self.fail(
                f"two verbs in one command ({', '.join(repr(v.words) for v in verbs)}); separate commands with 'then'"
            )
        kinds = set(verbs[0].value) if verbs else None
        verb = verbs[0].words if verbs else ""
        rest = [c for c in chunks if c.kind != "verb"]
        objs = [c.value for c in rest if c.kind == "obj"]
        has = {c.kind for c in rest}
        if not rest:
            raise self.fail(
                f"'{verb}' with nothing to do it to; {_EXAMPLES}" if verb else _EXAMPLES
            )
        if (
            not objs
            and has & {"style", "bg"}
            and (kinds is None or kinds & {"restyle", "generate"})
        ):
            return self._restyle(rest)
        if (
            [o.pron for o in objs] == ["it"]
            and "style" in has
            and "color" not in has
            and kinds
            and "restyle" in kinds
        ):
            return self._restyle(
                [c for c in rest if c.kind != "obj"]
            )  # "change it to dotted": the background
        if kinds is not None and "remove" in kinds:
            return self._remove(rest, verb)
        head = objs[0] if objs else None
        definite = head is not None and (
            head.det in ("def", "pron", "other", "part")
            # "erase red circles" names a group only when there is one ("red circles on the left" draws)
            or (
                head.det == "bare"
                and head.plural
                and any(g.ref.noun == head.noun for g in self.state.groups)
            )
        )
        if definite and "color" in has and (kinds is None or "recolor" in kinds):
            return self._recolor(rest)
        if definite and has & {"region", "rel", "prel"} and (kinds is None or "move" in kinds):
            return self._move(rest)
        if definite and kinds is not None and not kinds & {"generate", "add", "remove"}:
            wants = (
                "a colour ('make the stars red')"
                if "move" not in kinds
                else "a destination ('to the left', 'above the circles')"
            )
            raise self.fail(f"'{verb} {head.words}' needs {wants}")
        if kinds is None or kinds & {"generate", "add"}:
            generate = (kinds is None or "generate" in kinds) and first and not self.state.groups
            if kinds is not None and "add" in kinds and "generate" not in kinds:
                generate = False
            return self._groups(rest, generate)
        raise self.fail(
            f"'{verb}' cannot be done with {', '.join(c.words for c in rest)}; {_EXAMPLES}"
        )

    def _restyle(self, rest: list[_Chunk]) -> Intent:
        styles = [c.value for c in rest if c.kind == "style"]
        if len(styles) != 1:
            raise self.fail(
                f"expected one background style ({', '.join(STYLES)}), got {len(styles)}"
            )
        extra = [c.words for c in rest if c.kind not in ("style", "bg", "to", "sep")]
        if extra:
            raise self.fail(f"'{' '.join(extra)}' does not belong to a background change")
        return Intent("restyle", style=styles[0])

    def _single_target(
        self, rest: list[_Chunk], allowed: set[str], what: str
    ) -> tuple[_Obj, list[_Chunk]]:
        objs = [c for c in rest if c.kind == "obj"]
        if not objs:
            raise self.fail(f"{what} needs an object such as 'the red circles' or 'them'")
        first = objs[0].value
        if first.det == "part" and "part" not in allowed:
            raise self.fail(
                f"'{first.words}' is part of a group; {what} applies to whole groups only ('the blue squares', 'them')"
            )
        if first.det not in allowed:
            raise self.fail(
                f"'{first.words}' is not a group of the picture; {what} refers to one, like 'the red circles'"
            )
        others = [c for c in rest if c is not objs[0]]
        return first, others

    def _pool(self) -> list[ObjectRef]:
        return [g.ref for g in self.state.groups]

    def _remove(self, rest: list[_Chunk], verb: str) -> Intent:
        obj, others = self._single_target(
            rest, {"def", "pron", "other", "part", "indef", "more", "bare"}, f"'{verb}'"
        )
        extra = [c.words for c in others if c.kind not in ("sep",)]
        if extra:
            raise self.fail(f"'{' '.join(extra)}' does not belong to a removal")
        ref = self.resolve(obj, self._pool(), self.state.last_mentioned)
        count = (
            obj.count
            if obj.det in ("part", "indef", "more") or (obj.det == "def" and obj.count is not None)
            else None
        )
        self.recent = [ref]
        return Intent("remove", target=ref, count=count)

    def _recolor(self, rest: list[_Chunk]) -> Intent:
        obj, others = self._single_target(rest, {"def", "pron", "other", "bare"}, "a colour change")
        colors = [c.value for c in others if c.kind == "color"]
        extra = [c.words for c in others if c.kind not in ("color", "to")]
        if len(colors) != 1 or extra:
            raise self.fail(
                f"a colour change takes one group and one colour (got {', '.join(c.words for c in rest)})"
            )
        ref = self.resolve(obj, self._pool(), self.state.last_mentioned)
        if ref.color == colors[0]:
            raise self.fail(f"the {ref.phrase(2)} are already {colors[0]}")
        if self.state.find(ref.noun, colors[0]) is not None:
            raise self.fail(
                f"there are already {ObjectRef(ref.noun, colors[0]).phrase(2)}; recolouring would mix two groups"
            )
        self.recent = [ref]
        return Intent("recolor", target=ref, color=colors[0])

    def _move(self, rest: list[_Chunk]) -> Intent:
        obj, others = self._single_target(rest, {"def", "pron", "other", "bare"}, "a move")
        pool = self._pool()
        ref = self.resolve(obj, pool, self.state.last_mentioned)
        region = relation = None
        k = 0
        while k < len(others):
            c = others[k]
            if c.kind == "region" and region is None and relation is None:
                region = c.value
            elif c.kind == "rel" and region is None and relation is None:
                if k + 1 >= len(others) or others[k + 1].kind != "obj":
                    raise self.fail(
                        f"'{c.words}' needs a group after it, such as 'the red circles'"
                    )
                other = self.resolve(
                    others[k + 1].value,
                    [r for r in pool if r != ref],
                    self.recent[0] if self.recent else None,
                )
                relation = (c.value, other)
                k += 1
            elif c.kind != "to":
                raise self.fail(
                    f"'{c.words}' does not belong to a move (one destination: a region or a place relative to a group)"
                )
            k += 1
        self.recent = [ref]
        return Intent("move", target=ref, region=region, relation=relation)

    def _groups(self, rest: list[_Chunk], generate: bool) -> Intent:
        g = _Groups(self, generate)
        g.read(_postposed_colors(rest))
        out = g.ordered()
        self.recent = [x.ref for x in out]
        return Intent(
            "generate" if generate else "add", groups=out, style=g.style, increment=g.increment
        )


class _Groups:
    """The groups a drawing clause asks for ("two red circles on the left and a star above
    them"), read chunk by chunk for :meth:`_Parse._groups`."""

    def __init__(self, parse: _Parse, generate: bool):
        self.parse, self.fail, self.generate = parse, parse.fail, generate
        self.last_mentioned = parse.state.last_mentioned
        self.state_groups = parse.state.groups
        self.pool_state = [] if generate else parse._pool()
        self.groups: list[dict] = []
        self.style: str | None = None
        self.increment = False
        self.current: dict | None = None
        self.leading: str | None = None  # "on the left, three red circles"

    def _last(self, refs: list[ObjectRef]) -> ObjectRef | None:
        """What "them" means after ``refs`` of this clause."""
        return refs[-1] if refs else (None if self.generate else self.last_mentioned)

    def read(self, rest: list[_Chunk]) -> None:
        k = 0
        while k < len(rest):
            k = self._chunk(rest, k) + 1

    def _chunk(self, rest: list[_Chunk], k: int) -> int:
        """Reads ``rest[k]``; the index of the last chunk it used."""
        c = rest[k]
        if c.kind == "obj":
            self.current = self.new_group(c.value)
            if self.leading is not None:
                self.current["region"], self.leading = self.leading, None
        elif c.kind == "sep":
            self.current = None
        elif c.kind == "style":
            if self.style is not None:
                raise self.fail("two background styles in one command")
            self.style = c.value
        elif c.kind in ("region", "rel", "prel"):
            return self._place(rest, k)
        elif c.kind not in ("bg", "to"):
            raise self.fail(f"'{c.words}' is not attached to a shape; {_EXAMPLES}")
        return k

    def _place(self, rest: list[_Chunk], k: int) -> int:
        c = rest[k]
        target = (
            self.current if self.current is not None else (self.groups[-1] if self.groups else None)
        )
        if target is None and c.kind == "region" and self.leading is None:
            self.leading = c.value
            return k
        if target is None:
            raise self.fail(f"'{c.words}' comes before any object it could place")
        if target["region"] is not None or target["relation"] is not None:
            raise self.fail(
                f"the {target['ref'].phrase(2)} get two places ('{c.words}' too); give one"
            )
        before = [g["ref"] for g in self.groups if g is not target]
        if c.kind == "region":
            target["region"] = c.value
        elif c.kind == "prel":
            other = self._last(before)
            if other is None:
                raise self.fail(f"'{c.words}' with nothing before it to refer to")
            target["relation"] = (c.value, other)
        else:
            self._relate(rest, k, target, before)
            return k + 1
        return k

    def _relate(self, rest: list[_Chunk], k: int, target: dict, before: list[ObjectRef]) -> None:
        """ "above the circles" (a group already there) or "above a green cross" (drawn too)."""
        c = rest[k]
        if k + 1 >= len(rest) or rest[k + 1].kind != "obj":
            raise self.fail(f"'{c.words}' needs a group after it, such as 'the red circles'")
        o = rest[k + 1].value
        if o.det in ("def", "pron", "other", "bare"):
            other = self.parse.resolve(o, before + self.pool_state, self._last(before))
            target["relation"] = (c.value, other)
            self.current = target
        else:
            # "a purple square above a green cross": the cross is drawn by the same command.
            og = self.new_group(o)
            target["relation"] = (c.value, og["ref"])
            og["before"] = target
            self.current = og

    def new_group(self, obj: _Obj) -> dict:
        if obj.det in ("def", "pron", "other", "part"):
            raise self.fail(
                f"'{obj.words}' refers to objects already there; "
                f"to draw new ones give a count ('two {(obj.noun or 'circle')}s')"
            )
        if obj.det == "bare" and obj.plural:
            raise self.fail(
                f"how many {obj.words}? give a count from one to {number_word(MAX_COUNT)}"
            )
        pending = [g["ref"] for g in self.groups]
        existing = pending + self.pool_state
        ref = self._ref(obj, existing, self._last(pending))
        self._check(obj, ref, existing, pending)
        g = {"ref": ref, "count": obj.count or 1, "region": None, "relation": None}
        self.groups.append(g)
        return g

    def _ref(self, obj: _Obj, existing: list[ObjectRef], base: ObjectRef | None) -> ObjectRef:
        if obj.noun is None:  # "a blue one", "one more", "a third one"
            if base is None:
                raise self.fail(f"'{obj.words}' names no shape and nothing before it says which")
            if obj.color is None and obj.size is None:
                return base
            return ObjectRef(base.noun, obj.color or base.color, obj.size)
        if (
            obj.color is None
            and (obj.det == "more" or obj.ordinal)
            and any(r.noun == obj.noun for r in existing)
        ):
            return self.parse.resolve(
                _Obj("def", obj.words, noun=obj.noun, size=obj.size), existing, base
            )
        return ObjectRef(obj.noun, obj.color, obj.size)

    def _check(
        self, obj: _Obj, ref: ObjectRef, existing: list[ObjectRef], pending: list[ObjectRef]
    ) -> None:
        """Refuses mixed or repeated groups; "one more blue star" joins the blue stars."""
        mixed = next(
            (
                r
                for r in existing
                if r.noun == ref.noun and r != ref and None in (r.color, ref.color)
            ),
            None,
        )
        if mixed is not None:
            raise self.fail(
                f"'{obj.words}' and the {mixed.phrase(2)} are {plural(ref.noun, 2)} of unstated and stated colours; "
                f"give each colour its own count ('a red {ref.noun} and a blue {ref.noun}')"
            )
        same = next((r for r in existing if r.noun == ref.noun and r.color == ref.color), None)
        if same is None:
            if obj.ordinal is not None:
                raise self.fail(f"'{obj.words}' but there are no {ref.phrase(2)} yet")
            return
        if same in pending:
            raise self.fail(
                f"'{obj.words}' repeats the {same.phrase(2)} of the same command; give one count"
            )
        if obj.ordinal is not None:
            have = next(g.count for g in self.state_groups if g.ref == same)
            if have != obj.ordinal - 1:
                nth = next(w for w, k in lx.ORDINALS.items() if k == obj.ordinal)
                raise self.fail(
                    f"'{obj.words}': there {'is' if have == 1 else 'are'} {number_word(have)} "
                    f"{same.phrase(have)} so far, so the next is not the {nth}"
                )
        self.increment = True

    def ordered(self) -> tuple[Group, ...]:
        """The groups, those another one is placed relative to first."""
        if not self.groups:
            raise self.fail(f"nothing to draw; {_EXAMPLES}")
        if self.leading is not None:
            raise self.fail(f"the place '{self.leading}' is not attached to an object")
        groups = self.groups
        out: list[dict] = []
        for g in groups:
            if "before" in g:
                continue
            chain = [g]
            for h in groups:
                if h.get("before") is g:
                    chain.insert(0, h)
            out += chain
        out += [g for g in groups if "before" in g and g not in out]
        return tuple(Group(g["ref"], g["count"], g["region"], g["relation"]) for g in out)


def _postposed_colors(rest: list[_Chunk]) -> list[_Chunk]:
    """Gives a colour written after its object ("a circle in red", "three stars, all purple")
    to that object, when it has none and nothing but places stands between them."""
    out: list[_Chunk] = []
    for c in rest:
        if c.kind == "color":
            owner = next((o for o in reversed(out) if o.kind not in ("region", "sep")), None)
            if (
                owner is not None
                and owner.kind == "obj"
                and owner.value.color is None
                and owner.value.det in ("indef", "more", "bare")
            ):
                owner.value.color = c.value
                continue
        out.append(c)
    return out


class ShapesExtractor(CommandExtractor):
    """Parses Shapes prompts as people write them; reflects by writing repair commands.

    Args:
        reflect: Whether :meth:`reflect` rewrites failed commands (``False``: plain retries).
    """

    name = "shapes-rules"

    def __init__(self, reflect: bool = True):
        self.reflect_enabled = reflect

    def extract(self, prompt: str, image: np.ndarray | None = None) -> Plan:
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptParseError(
                str(prompt), str(prompt), "the prompt is empty; expected English instructions"
            )
        state = SymbolicState()
        if image is not None:
            self._seed_from_image(state, image)
        parse = _Parse(prompt, state)
        commands = []
        for clause in _clauses(lx.tokenize(prompt)):
            text = _text(prompt, clause.content)
            reading = _chunk(clause.tokens)
            if not text or (not reading.chunks and not reading.problems):
                continue  # only filler ("Please,", "In this picture,")
            parse.clause = text
            intent = parse.intent(reading, first=not commands)
            try:
                commands.append(intent_command(intent, text, state))
            except (ValueError, KeyError) as e:
                raise PromptParseError(prompt, text, str(e)) from None
        if not commands:
            raise PromptParseError(prompt, prompt, f"no command found; {_EXAMPLES}")
        return Plan(tuple(commands), state.constraints())

    @staticmethod
    def _seed_from_image(state: SymbolicState, image: np.ndarray) -> None:
        from poser_env.suites.shapes.perception import perceive

        counts: dict[ObjectRef, int] = {}
        for o in perceive(image).scene.objects:
            ref = ObjectRef(o.shape, o.color)
            counts[ref] = counts.get(ref, 0) + 1
        for ref, n in counts.items():
            state.apply(Intent("add", groups=(Group(ref, n),)))
        state.last_mentioned = None

    # ------------------------------------------------------------------ reflection
    def reflect(self, command: Command, critique: Critique) -> Command | None:
        if not self.reflect_enabled:
            return None
        failed = [(c.constraint, c.observed) for c in critique.checks if not c.passed]
        if not failed:
            kind, text = "refine", f"clean up the image: {command.reflection_of or command.text}"
        else:
            wanted = {
                (c.constraint.subject.noun, c.constraint.subject.color)
                for c in critique.prompt_checks
                if c.constraint.subject
            }
            wanted |= {
                (c.subject.noun, c.subject.color)
                for c in command.constraints
                if c.subject and c.kind == "count" and c.count
            }
            kind, text = fix_text(command, failed, wanted)
        return Command(
            text=text,
            kind=kind,
            constraints=command.constraints,
            reflection_of=command.reflection_of or command.text,
        )
