"""Words of the Shapes extractor: tokens, normal forms, synonyms and multi-word phrases.

The world's vocabulary itself (shapes, colours, sizes, regions, relations, styles) lives in
:mod:`~poser_env.suites.shapes.vocab`; this module adds how people write it (plurals,
digits, British spellings, "large", "the middle", "on top of") and the words a prompt may
carry without meaning anything for the plan ("please", "I want", "of the picture"). It
also knows common words *outside* the world (hexagon, pink, next to...) so that an error can
say what the world offers instead.
"""

from __future__ import annotations

import re
from itertools import product
from typing import NamedTuple

from poser_env.suites.shapes.vocab import (
    COLORS,
    NUMBER_WORDS,
    REGIONS,
    RELATIONS,
    SHAPES,
    SIZES,
    STYLES,
)


class Token(NamedTuple):
    """One word (normal form) or punctuation mark, with its span in the prompt."""

    word: str
    start: int
    end: int
    plural: bool = False
    text: str = ""


# Hyphens and quotes join nothing here ("left-hand side" reads as "left hand side").
_TOKEN_RE = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+|[.,;:!?]|[^\sa-z\d\-\"'()]", re.IGNORECASE)

#: Spelling variants and synonyms mapped to the world's words.
SYNONYMS: dict[str, str] = {
    "colour": "color",
    "colours": "color",
    "colors": "color",
    "recolour": "recolor",
    "coloured": "colored",
    "centre": "center",
    "middle": "center",
    "centered": "center",
    "centred": "center",
    "large": "big",
    "huge": "big",
    "little": "small",
    "tiny": "small",
    "checked": "checkered",
    "chequered": "checkered",
    "checkerboard": "checkered",
    "checkered": "checkered",
    "stripes": "striped",
    "stripy": "striped",
    "dots": "dotted",
    "spotted": "dotted",
    "polka": "dotted",
    "gridded": "grid",
    "blank": "plain",
    "grey": "gray",
    "upper": "top",
    "lower": "bottom",
    "backdrop": "background",
    "rightmost": "right",
    "leftmost": "left",
}
_SHAPE_PLURALS = {(s + "es" if s.endswith(("s", "x")) else s + "s"): s for s in SHAPES}
_NUMBER_DIGITS = {str(n): n for n in range(0, 100)}
#: Counts the world does not draw (it draws one to MAX_COUNT of a kind).
TOO_MANY = {
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "zero": 0,
    "dozen": 12,
    "hundred": 100,
}
ORDINALS = {"second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6}
COUNTS: dict[str, int] = {k: v for k, v in NUMBER_WORDS.items()}

#: Region words as people write them ("the middle" is normalised to center before this).
REGION_WORDS = {r: r for r in REGIONS}
_REGION_PREPS = ("", "on", "at", "in", "to", "towards", "toward", "into", "onto", "near")
_REGION_SUFFIXES = ("", "side", "part", "half", "edge", "area", "hand side")

RELATION_PHRASES: dict[tuple[str, ...], str] = {}
for _side in ("left", "right"):
    for _prep, _art, _suffix in product(("", "to", "on"), ("", "the"), ("", "side", "hand side")):
        RELATION_PHRASES[tuple(f"{_prep} {_art} {_side} {_suffix} of".split())] = f"{_side} of"
for _words, _rel in {
    "above": "above",
    "over": "above",
    "on top of": "above",
    "higher than": "above",
    "below": "below",
    "under": "below",
    "beneath": "below",
    "underneath": "below",
    "lower than": "below",
    "bottom than": "below",
}.items():
    RELATION_PHRASES[tuple(_words.split())] = _rel
assert set(RELATION_PHRASES.values()) == set(RELATIONS)

#: "to its right", "on their left": a relation to the group mentioned last.
PRONOUN_RELATION_PHRASES = {
    (prep, pron, side): f"{side} of"
    for prep in ("to", "on", "at")
    for pron in ("its", "their")
    for side in ("left", "right")
}

REGION_PHRASES: dict[tuple[str, ...], str] = {}
for _prep, _art, _word, _suffix in product(_REGION_PREPS, ("", "the"), REGIONS, _REGION_SUFFIXES):
    if _prep == "" and _art == "":
        continue  # a bare "left" is a region only after a move verb (handled by the parser)
    REGION_PHRASES[tuple(f"{_prep} {_art} {_word} {_suffix}".split())] = _word

#: Verbs and the command kinds each may start; the arguments decide among them.
VERB_PHRASES: dict[tuple[str, ...], frozenset[str]] = {}
_VERBS = {
    "generate": "draw;generate;create;render;sketch;produce;depict;show;"
    "create an image of;create a picture of;create an image with;"
    "start with;begin with;start by drawing;begin by drawing;start by adding;"
    "make an image of;make a picture of;draw a picture of;draw an image of;generate an image of;"
    "generate a picture of;paint a picture of;create a scene with",
    "add": "add;insert;include;put;place;also draw;throw in;put in;add in",
    "remove": "remove;delete;erase;take away;take out;get rid of;eliminate;clear;wipe out;drop",
    "recolor": "recolor;color;paint;turn;change the color of;change;make;repaint;switch;set",
    "move": "move;shift;drag;slide;push;relocate;bring;put;place;reposition;send",
    "restyle": "use;give it;set;change;make;switch to;apply;put;add;switch",
}
for _kind, _phrases in _VERBS.items():
    for _p in _phrases.split(";"):
        key = tuple(_p.split())
        VERB_PHRASES[key] = VERB_PHRASES.get(key, frozenset()) | {_kind}
# "make" and "paint" also draw ("make three red circles", "paint a blue star").
for _w in ("make", "paint"):
    VERB_PHRASES[(_w,)] |= {"generate"}

#: Words and phrases that carry no meaning for the plan: politeness, hedges, "the picture".
FILLER_PHRASES: set[tuple[str, ...]] = {
    tuple(p.split())
    for p in (
        "please",
        "kindly",
        "now",
        "just",
        "also",
        "too",
        "as well",
        "exactly",
        "for me",
        "thanks",
        "thank you",
        "ok",
        "okay",
        "could you",
        "can you",
        "would you",
        "will you",
        "could you please",
        "i want you to",
        "i'd like you to",
        "i would like you to",
        "i need you to",
        "go ahead and",
        "let's",
        "let us",
        "you should",
        "we should",
        "i'd love",
        "right away",
        "first",
        "firstly",
        "first of all",
        "to start",
        "to begin",
        "edit the image",
        "edit this image",
        "edit the picture",
        "edit this picture",
        "change this image",
        "change this picture",
        "in this picture",
        "in this image",
        "in the picture",
        "in the image",
        "on the canvas",
        "on the picture",
        "on the image",
        "of the picture",
        "of the image",
        "of the canvas",
        "of the scene",
        "of the frame",
        "in the scene",
        "somewhere",
        "to the picture",
        "to the image",
        "to the scene",
        "to the canvas",
        "into the picture",
        "into the image",
        "from the picture",
        "from the image",
        "from the scene",
        "from the canvas",
        "hey",
        "hi",
        "well",
        "simply",
        "quickly",
        "instead",
        "that are",
        "that is",
        "which are",
        "which is",
        "so that they are",
        "so that it is",
        "so they are",
        "so it is",
        "should be",
        "to be",
        "have to be",
        "must be",
        "needs to be",
        "need to be",
        "placed",
        "positioned",
        "located",
        "sitting",
        "drawn",
        "in it",
        "show me",
        "give me",
        "i want",
        "i'd like",
        "i would like",
        "i need",
        "we need",
        "an image of",
        "a picture of",
        "an image with",
        "a picture with",
        "a scene with",
        "a scene of",
        "an image showing",
        "a picture showing",
        "a drawing of",
        "an image containing",
        "there should be",
        "there is",
        "there are",
        "there's",
        "i'd like to see",
        "i want to see",
        "want",
        "would like",
        "how about",
        "what about",
        "can i have",
        "can i get",
        "could i have",
        "let's have",
        "can we have",
        "could we have",
        "we'll have",
        "me",
        "very",
        "on it",
        "in there",
        "right now",
        "for us",
    )
}
#: Words that end a clause and start the next one ("then", "after that").
CONNECTOR_PHRASES: set[tuple[str, ...]] = {
    tuple(p.split())
    for p in (
        "then",
        "after that",
        "afterwards",
        "afterward",
        "after this",
        "next",
        "finally",
        "lastly",
        "and then",
        "and finally",
        "and next",
        "and after that",
        "later",
        "and lastly",
    )
}
CLAUSE_MARKS = {".", ";", "!", "?", ":"}

#: Common words outside the world, with what the world has instead.
FOREIGN_SHAPES = (
    "hexagon",
    "pentagon",
    "octagon",
    "rectangle",
    "oval",
    "ellipse",
    "heart",
    "arrow",
    "line",
    "sphere",
    "cube",
    "moon",
    "crescent",
    "polygon",
    "rhombus",
    "trapezoid",
    "spiral",
    "ring",
    "dot",
    "cloud",
    "tree",
    "house",
    "cat",
    "dog",
    "car",
    "bottle",
    "box",
    "flower",
    "sun",
    "blob",
    "parallelogram",
    "cylinder",
    "cone",
    "pyramid",
    "letter",
    "rectangles",
)
FOREIGN_COLORS = (
    "pink",
    "black",
    "white",
    "brown",
    "gray",
    "cyan",
    "magenta",
    "violet",
    "teal",
    "gold",
    "golden",
    "silver",
    "navy",
    "indigo",
    "maroon",
    "turquoise",
    "beige",
    "lime",
    "crimson",
    "scarlet",
    "lavender",
    "olive",
    "aqua",
    "transparent",
    "colorful",
    "rainbow",
    "dark",
    "light",
    "pale",
    "bright",
)
FOREIGN_SIZES = (
    "giant",
    "enormous",
    "massive",
    "gigantic",
    "mini",
    "miniature",
    "microscopic",
    "medium-sized",
    "wide",
    "tall",
    "thin",
    "long",
    "short",
)
FOREIGN_STYLES = (
    "wavy",
    "gradient",
    "marble",
    "wooden",
    "textured",
    "noisy",
    "blurry",
    "starry",
    "zigzag",
    "plaid",
    "floral",
    "black",
    "white",
    "transparent",
)
FOREIGN_PLACES = (
    "corner",
    "diagonal",
    "diagonally",
    "edge",
    "border",
    "around",
    "inside",
    "outside",
    "between",
    "behind",
    "front",
    "near",
    "beside",
    "next",
    "row",
    "column",
    "randomly",
    "scattered",
)
VAGUE_COUNTS = (
    "some",
    "several",
    "many",
    "few",
    "lots",
    "lot",
    "bunch",
    "couple",
    "multiple",
    "numerous",
    "plenty",
    "dozens",
    "various",
    "more",
)

#: Every word the extractor knows, for spelling suggestions.
KNOWN_WORDS: set[str] = (
    set(SHAPES)
    | set(COLORS)
    | set(SIZES)
    | set(STYLES)
    | set(REGIONS)
    | set(NUMBER_WORDS)
    | set(ORDINALS)
    | {
        w
        for phrases in (VERB_PHRASES, FILLER_PHRASES, RELATION_PHRASES, REGION_PHRASES)
        for p in phrases
        for w in p
    }
    | {
        "background",
        "them",
        "it",
        "they",
        "those",
        "these",
        "the",
        "a",
        "an",
        "another",
        "more",
        "other",
        "of",
        "and",
        "with",
        "to",
        "one",
        "ones",
    }
)


#: Words dropped before parsing: they qualify a place or size the world has no degrees of.
_INTENSIFIERS = {"very", "really", "quite", "fairly", "pretty", "rather", "nicely", "neatly"}


def tokenize(text: str) -> list[Token]:
    """Lower-cased normal-form tokens of ``text`` (plurals and synonyms resolved)."""
    low = text.lower()
    if len(low) != len(text):  # a character whose lower case is longer: spans would shift
        low = text
    out = []
    new = tuple.__new__  # Token(...) runs a Python-level __new__ per token
    for m in _TOKEN_RE.finditer(low):
        w = m.group().lower()
        if w in _INTENSIFIERS:
            continue
        start, end = m.span()
        word, plural = _NORMAL.get(w) or (SYNONYMS.get(w, w), False)
        out.append(new(Token, (word, start, end, plural, text[start:end])))
    return out


#: Plural nouns' singular forms ("circles": "circle", "ones": "one"), marked plural.
_NORMAL = {w: (s, True) for w, s in _SHAPE_PLURALS.items()} | {"ones": ("one", True)}


def count_of(word: str) -> int | None:
    """The count a word names (``"two"``, ``"2"``), also beyond the world's range; else ``None``."""
    if word in COUNTS:
        return COUNTS[word]
    if word in TOO_MANY:
        return TOO_MANY[word]
    if word in _NUMBER_DIGITS:
        return _NUMBER_DIGITS[word]
    return None


def combine(*tables: tuple[str, object]) -> dict[tuple[str, ...], tuple[str, object]]:
    """One phrase table from ``(kind, table)`` pairs: ``phrase -> (kind, value)``.

    A phrase in several tables keeps the first kind given (the caller's priority).
    """
    out: dict[tuple[str, ...], tuple[str, object]] = {}
    for kind, table in tables:
        for key in table:
            out.setdefault(key, (kind, table[key] if isinstance(table, dict) else key))
    return out


def longest_match(words: list[str], i: int, table) -> tuple[int, object] | None:
    """Longest phrase of ``table`` (a dict or set of word tuples) starting at ``words[i]``."""
    trie = _TRIES.get(id(table))
    if trie is None or trie[0] is not table:
        trie = _TRIES[id(table)] = (table, _trie(table))
    node, best, j = trie[1], None, i
    while j < len(words):
        node = node.get(words[j])
        if node is None:
            break
        j += 1
        if _END in node:
            best = (j - i, node[_END])
    return best


# A word trie per phrase table: matching costs one dict lookup per word, however many
# phrases share a first word ("on the left", "on the left side of", "on top of"...).
_END = object()
_TRIES: dict[int, tuple[object, dict]] = {}


def _trie(table) -> dict:
    root: dict = {}
    for key in table:
        node = root
        for word in key:
            node = node.setdefault(word, {})
        node[_END] = table[key] if isinstance(table, dict) else key
    return root
