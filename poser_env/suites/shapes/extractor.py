"""Rule-based command extractor of the Shapes world.

Parses every phrasing the task generator produces (and the same grammar written by hand),
derives each command's constraints and the whole prompt's constraints with
:class:`~poser_env.suites.shapes.language.SymbolicState`, and reflects on failures by
rewriting the command into a repair ("add one more red circle"). Text it cannot parse
raises :class:`~poser_env.error.PromptParseError` naming the unparsed part.
"""

from __future__ import annotations

import re

import numpy as np

from poser_env.components import CommandExtractor, Critique
from poser_env.constraints import Command, ObjectRef, Plan
from poser_env.error import PromptParseError
from poser_env.suites.shapes.language import (
    ADD_VERBS,
    EDIT_PREFIXES,
    GENERATE_VERBS,
    MOVE_REGION_WORDS,
    MOVE_VERBS,
    REGION_WORDS,
    RELATION_WORDS,
    REMOVE_VERBS,
    Group,
    Intent,
    SymbolicState,
    fix_text,
    intent_command,
)
from poser_env.suites.shapes.vocab import COLORS, NUMBER_WORDS, SHAPES, SIZES, STYLES

_alt = lambda words: "(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + ")"  # noqa: E731
_SHAPE = "(?P<{p}shape>" + "|".join(f"{s}(?:e?s)?" for s in SHAPES) + ")"
_COLOR = "(?P<{p}color>" + "|".join(COLORS) + ")"
_SIZE = "(?:(?P<{p}size>" + "|".join(SIZES) + r")\s+)?"
_COUNT = "(?P<{p}count>" + "|".join(NUMBER_WORDS) + ")"


def _obj(p: str, counted: bool) -> str:
    body = _SIZE.format(p=p) + _COLOR.format(p=p) + r"\s+" + _SHAPE.format(p=p)
    return (_COUNT.format(p=p) + r"\s+" + body) if counted else (r"the\s+" + body)


_REL_WORDS = {w: rel for rel, words in RELATION_WORDS.items() for w in words}
_LOC = (
    r"(?:\s+(?P<{p}region>" + _alt(REGION_WORDS.values()) + r")"
    r"|\s+(?P<{p}relw>" + _alt(_REL_WORDS) + r")\s+(?:(?P<{p}pron>them|it)|" + _obj("{p}o", False) + r")"
    r"|\s+to\s+(?:their|its)\s+(?P<{p}prel>left|right))?"
)


def _group_re(p: str) -> str:
    return _obj(p, True) + _LOC.format(p=p)


_BG = r"(?:\s+on\s+an?\s+(?P<style>" + "|".join(STYLES) + r")\s+background)?"
_GEN_RE = re.compile(r"^(?P<verb>" + _alt(GENERATE_VERBS) + r")\s+" + _group_re("a") + r"(?:\s+and\s+" + _group_re("b") + ")?" + _BG + "$")
_ADD_RE = re.compile(r"^(?P<verb>" + _alt(ADD_VERBS) + r")\s+" + _group_re("a") + "$")
_REMOVE_RE = re.compile(r"^" + _alt(REMOVE_VERBS) + r"\s+" + _obj("t", False) + "$")
_RESTYLE_RE = re.compile(
    r"^(?:make the background (?P<s1>{s})|give it an? (?P<s2>{s}) background|change the background to (?P<s3>{s})|use an? (?P<s4>{s}) background)$".format(
        s="|".join(STYLES)
    )
)
_RECOLOR_RE = re.compile(
    r"^(?:make|paint|recolou?r|change the colou?r of)\s+" + _obj("t", False) + r"\s+(?:to\s+)?(?P<new>" + "|".join(COLORS) + ")$"
)
_MOVE_RE = re.compile(
    r"^" + _alt(MOVE_VERBS) + r"\s+" + _obj("t", False) + r"\s+(?P<dest>" + _alt(MOVE_REGION_WORDS.values()) + ")$"
)
_SPLIT_RE = re.compile(
    r"\s*(?:[,.;]\s*(?:and\s+)?(?:then|after\s+that|next|finally|afterwards)\b,?\s*|[.;]\s+)",
    re.IGNORECASE,
)
_VERBS = [*ADD_VERBS, *REMOVE_VERBS, *MOVE_VERBS, "make", "recolor", "recolour", "change", "paint", "give", "use"]
_AND_VERB_RE = re.compile(r"\s+and\s+(?=" + _alt(_VERBS) + r"\b)")
_REGION_OF = {v: k for k, v in REGION_WORDS.items()}
_MOVE_REGION_OF = {v: k for k, v in MOVE_REGION_WORDS.items()}


def _noun(word: str) -> str:
    for s in SHAPES:
        if word in (s, s + "s", s + "es"):
            return s
    raise AssertionError(word)


def split_clauses(prompt: str) -> tuple[list[str], bool]:
    """Lower-cased clauses of ``prompt`` and whether it is an editing prompt."""
    text = " ".join(prompt.strip().split())
    editing = False
    for prefix in EDIT_PREFIXES:
        if text.lower().startswith(prefix.strip().lower()):
            text, editing = text[len(prefix.strip()) :].strip(), True
            break
    text = text.rstrip(".").strip()
    clauses = []
    for part in _SPLIT_RE.split(text):
        clauses += [c.strip().lower() for c in _AND_VERB_RE.split(part) if c.strip()]
    return clauses, editing


class ShapesExtractor(CommandExtractor):
    """Parses Shapes prompts with a grammar; reflects by writing repair commands.

    Args:
        reflect: Whether :meth:`reflect` rewrites failed commands (``False``: plain retries).
    """

    name = "shapes-rules"

    def __init__(self, reflect: bool = True):
        self.reflect_enabled = reflect

    def extract(self, prompt: str, image: np.ndarray | None = None) -> Plan:
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptParseError(str(prompt), str(prompt), "the prompt is empty; expected English instructions")
        clauses, _ = split_clauses(prompt)
        state = SymbolicState()
        if image is not None:
            self._seed_from_image(state, image)
        commands = []
        for clause in clauses:
            intent = self._parse(prompt, clause, state)
            try:
                commands.append(intent_command(intent, clause, state))
            except (ValueError, KeyError) as e:
                raise PromptParseError(prompt, clause, str(e)) from None
        if not commands:
            raise PromptParseError(prompt, prompt, "no command found")
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

    # ------------------------------------------------------------------ parsing
    def _ref(self, prompt, clause, state: SymbolicState, m: re.Match, p: str) -> ObjectRef:
        noun, color, size = _noun(m.group(p + "shape")), m.group(p + "color"), m.group(p + "size")
        ref = state.find(noun, color, size) or state.find(noun, color)
        if ref is None:
            known = ", ".join(g.ref.phrase(2) for g in state.groups) or "nothing yet"
            raise PromptParseError(prompt, clause, f"it refers to {color} {noun}s, but the plan so far has {known}")
        return ref

    def _group(self, prompt, clause, state, m: re.Match, p: str, previous: ObjectRef | None) -> Group:
        ref = ObjectRef(_noun(m.group(p + "shape")), m.group(p + "color"), m.group(p + "size"))
        count = NUMBER_WORDS[m.group(p + "count")]
        if m.group(p + "region"):
            return Group(ref, count, region=_REGION_OF[m.group(p + "region")])
        rel = None
        if m.group(p + "relw"):
            rel = _REL_WORDS[m.group(p + "relw")]
        elif m.group(p + "prel"):
            rel = m.group(p + "prel") + " of"
        if rel is None:
            return Group(ref, count)
        if m.group(p + "relw") and not m.group(p + "pron"):
            other = self._ref(prompt, clause, state, m, p + "o")
        else:
            if previous is None:
                raise PromptParseError(prompt, clause, "a pronoun ('them', 'their') with nothing before it to refer to")
            other = previous
        return Group(ref, count, relation=(rel, other))

    def _parse(self, prompt: str, clause: str, state: SymbolicState) -> Intent:
        m = _RESTYLE_RE.match(clause)
        if m:
            return Intent("restyle", style=next(v for v in m.groups() if v))
        m = _GEN_RE.match(clause)
        if m:
            g1 = self._group(prompt, clause, state, m, "a", None)
            groups = [g1]
            if m.group("bshape"):
                # Pronouns in the second group refer to the first one.
                tmp = state.copy()
                tmp.groups = []
                tmp.apply(Intent("add", groups=(g1,)))
                groups.append(self._group(prompt, clause, tmp, m, "b", g1.ref))
            return Intent("generate", groups=tuple(groups), style=m.group("style"))
        m = _ADD_RE.match(clause)
        if m:
            return Intent("add", groups=(self._group(prompt, clause, state, m, "a", state.last_mentioned),))
        m = _REMOVE_RE.match(clause)
        if m:
            return Intent("remove", target=self._ref(prompt, clause, state, m, "t"))
        m = _RECOLOR_RE.match(clause)
        if m:
            return Intent("recolor", target=self._ref(prompt, clause, state, m, "t"), color=m.group("new"))
        m = _MOVE_RE.match(clause)
        if m:
            return Intent("move", target=self._ref(prompt, clause, state, m, "t"), region=_MOVE_REGION_OF[m.group("dest")])
        raise PromptParseError(
            prompt, clause, "expected a command such as 'draw three red circles on the left', "
            "'add a big blue square to their right', 'remove the red circles', 'make the background striped'"
        )

    # ------------------------------------------------------------------ reflection
    def reflect(self, command: Command, critique: Critique) -> Command | None:
        if not self.reflect_enabled:
            return None
        failed = [(c.constraint, c.observed) for c in critique.checks if not c.passed]
        if not failed:
            kind, text = "refine", f"clean up the image: {command.reflection_of or command.text}"
        else:
            wanted = {(c.constraint.subject.noun, c.constraint.subject.color) for c in critique.prompt_checks if c.constraint.subject}
            wanted |= {(c.subject.noun, c.subject.color) for c in command.constraints if c.subject and c.kind == "count" and c.count}
            kind, text = fix_text(command, failed, wanted)
        return Command(text=text, kind=kind, constraints=command.constraints, reflection_of=command.reflection_of or command.text)
