"""Command extractors for open-vocabulary prompts: rule-based, local LLM, OpenAI-compatible server.

* :class:`RuleExtractor` needs no model. It splits the prompt into sentences and on
  sequencing words ("then", "after that", "finally"), makes the first clause a
  ``generate`` command and classifies the others by their leading verb (add, remove,
  recolor, move, restyle, else refine). It recognises counts ("three red bottles"), regions
  ("on the left"), relations ("a cat to the left of a dog"), backgrounds ("the background
  is a beach") and removals; a clause where it recognises none keeps one free-text
  constraint (for model critics). It is the fallback when no LLM is available.
* :class:`LLMExtractor` (a local instruct model through transformers) and
  :class:`HTTPExtractor` (any OpenAI-compatible server; the paper used a hosted model)
  ask for the plan as JSON, validate it against a pydantic schema and the constraint
  dataclasses, and retry with the validation error on invalid output; after the last
  attempt they raise :class:`~poser_env.error.PromptParseError`.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import numpy as np

from poser_env._imports import require
from poser_env.components import CommandExtractor, Critique
from poser_env.constraints import COMMAND_KINDS, Command, Constraint, ObjectRef, Plan
from poser_env.error import PromptParseError
from poser_env.registry import Registry
from poser_env.suites.diffusers.openai_client import ChatClient, HTTPComponentError, extract_json

_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "pair": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
COLORS = (
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray", "grey",
    "cyan", "gold", "silver",
)  # fmt: skip
SIZES = ("small", "tiny", "little", "big", "large", "huge", "medium")
_ADJ = set(COLORS) | set(SIZES)
_STOP_NOUNS = {
    "the",
    "a",
    "an",
    "it",
    "them",
    "image",
    "picture",
    "scene",
    "background",
    "style",
    "of",
    "and",
    "with",
}
_SEQ = re.compile(r"\b(?:and then|then|after that|afterwards|next|finally|lastly)\b[,]?", re.I)
_REGION = re.compile(
    r"\b(?:on|at|in|to) the (left|right|top|bottom|center|centre|middle)\b(?! of)", re.I
)
_RELATION = re.compile(
    r"\b(to the left of|to the right of|left of|right of|above|below|under|on top of)\b", re.I
)
_BACKGROUND = re.compile(
    r"\bbackground (?:is |to |into |in |of |as )?(?:an? |the )?([a-z ,'-]+)", re.I
)
_VERBS = {
    "add": ("add", "put", "place", "insert", "include", "draw"),
    "remove": ("remove", "delete", "erase", "take away", "get rid of"),
    "recolor": ("recolor", "recolour", "paint", "color", "colour"),
    "move": ("move", "shift", "place", "slide"),
    "restyle": ("restyle", "stylize", "stylise", "render", "convert"),
}


def singular(word: str) -> str:
    """Naive English singular ("bottles" -> "bottle", "boxes" -> "box")."""
    w = word.lower()
    if len(w) > 3 and w.endswith(("ches", "shes", "xes", "sses")):
        return w[:-2]
    if len(w) > 3 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 2 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


_FUNCTION_WORDS = {
    "on", "in", "at", "to", "of", "with", "and", "or", "the", "a", "an", "is", "are", "next", "near", "beside",
    "behind", "under", "above", "below", "left", "right", "that", "which", "each", "holding", "sitting",
    "standing", "lying", "arranged", "from", "for", "by", "over", "into", "onto", "it", "its", "their", "then",
    ",", ".", ";",
}  # fmt: skip


def parse_objects(text: str) -> list[tuple[int | None, ObjectRef]]:
    """``(count, object)`` phrases in ``text``: "three small red bottles" -> ``(3, bottle/red/small)``.

    After a number word, colour and size words are collected; the noun is the last word
    of the following run of up to three content words ("a wooden table" -> table).
    """
    words = re.findall(r"[a-zA-Z]+|\d+|[,.;]", text.lower())
    found: list[tuple[int | None, ObjectRef]] = []
    i = 0
    while i < len(words):
        w = words[i]
        count = int(w) if w.isdigit() else _NUMBERS.get(w)
        if count is None or (
            w in ("a", "an") and i + 1 < len(words) and words[i + 1] in ("few", "lot", "bit")
        ):
            i += 1
            continue
        j, color, size, run = i + 1, None, None, []
        while (
            j < len(words)
            and len(run) < 3
            and words[j] not in _FUNCTION_WORDS
            and words[j] not in _NUMBERS
        ):
            if words[j] in COLORS and not run:
                color = "gray" if words[j] == "grey" else words[j]
            elif words[j] in SIZES and not run:
                size = words[j]
            elif not words[j].isdigit():
                run.append(words[j])
            j += 1
        if run and run[-1] not in _STOP_NOUNS:
            found.append((count, ObjectRef(noun=singular(run[-1]), color=color, size=size)))
        i = max(j, i + 1)
    return found


def _first_ref(text: str) -> ObjectRef | None:
    objs = parse_objects(text)
    if objs:
        return objs[0][1]
    m = re.search(r"\bthe ((?:\w+ ){0,2}?)(\w+)\b", text.lower())
    if m and m.group(2) not in _STOP_NOUNS:
        adjs = m.group(1).split()
        color = next((a for a in adjs if a in COLORS), None)
        size = next((a for a in adjs if a in SIZES), None)
        return ObjectRef(noun=singular(m.group(2)), color=color, size=size)
    return None


def clause_kind(clause: str, first: bool) -> str:
    """The command kind of a clause, from its leading verb."""
    low = clause.lower().strip()
    if _BACKGROUND.search(low) and not first and not low.startswith(_VERBS["add"]):
        return "restyle"
    for kind in ("remove", "add", "recolor", "move", "restyle"):
        if low.startswith(_VERBS[kind]):
            return kind
    if re.match(r"(make|change|turn)\b.*\b(" + "|".join(COLORS) + r")\b", low):
        return "recolor"
    if re.match(
        r"(make|change|turn)\b.*\b(style|look like|painting|sketch|watercolou?r|cartoon)\b", low
    ):
        return "restyle"
    return "generate" if first else "refine"


def _relation_constraints(low: str, rel: re.Match) -> list[Constraint]:
    """A relation between the first objects either side of ``rel``, and their counts."""
    out: list[Constraint] = []
    left, right = low[: rel.start()], low[rel.end() :]
    a, b = _first_ref(left), _first_ref(right)
    relation = {
        "to the left of": "left of",
        "to the right of": "right of",
        "under": "below",
        "on top of": "above",
    }.get(rel.group(1), rel.group(1))
    if a is not None and b is not None:
        out.append(Constraint(kind="relation", subject=a, relation=relation, other=b))
    for count, ref in parse_objects(left)[:1] + parse_objects(right)[:1]:
        if count is not None and count > 1:
            out.append(Constraint(kind="count", subject=ref, count=count))
    return out


def _placement_constraints(low: str, kind: str) -> list[Constraint]:
    """Counts of the objects a generate/add clause names, and a region if one is named."""
    out: list[Constraint] = []
    objs = parse_objects(low)
    region = _REGION.search(low)
    for count, ref in objs:
        if count is not None and kind in ("generate", "add"):
            out.append(Constraint(kind="count", subject=ref, count=count))
    subject = objs[-1][1] if objs else (_first_ref(low) if kind == "move" else None)
    if region and subject is not None:
        name = {"centre": "center", "middle": "center"}.get(region.group(1), region.group(1))
        out.append(Constraint(kind="region", subject=subject, region=name))
    return out


def clause_constraints(clause: str, kind: str) -> tuple[Constraint, ...]:
    """The constraints the rules recognise in ``clause``; a free-text one if none."""
    out: list[Constraint] = []
    low = clause.lower()
    bg = _BACKGROUND.search(low)
    if bg:
        style = bg.group(1).strip(" ,.")
        if style:
            out.append(Constraint(kind="background", style=style))
        low = low[: bg.start()]
    rel = _RELATION.search(low)
    if kind == "remove":
        ref = _first_ref(low)
        if ref is not None:
            out.append(Constraint(kind="count", subject=ref, count=0))
    elif kind == "recolor":
        target = re.search(
            r"\b(?:to|into|in|be)\s+(" + "|".join(COLORS) + r")\b", low
        ) or re.search(r"\b(" + "|".join(COLORS) + r")\s*$", low.strip(" ."))
        ref = _first_ref(low)
        if ref is not None and target:
            # Counts of the recoloured object are unknown here, so state the colour only.
            out.append(Constraint(kind="text", text=f"the {ref.noun} is {target.group(1)}"))
    elif rel and kind in ("generate", "add", "move"):
        out += _relation_constraints(low, rel)
    elif kind in ("generate", "add", "move"):
        out += _placement_constraints(low, kind)
    if not out:
        out.append(Constraint(kind="text", text=clause.strip().rstrip(".")))
    return tuple(out)


def split_clauses(prompt: str) -> list[str]:
    """Sentences, further split on sequencing words; empty pieces dropped."""
    pieces: list[str] = []
    for sentence in re.split(r"(?<=[.!?;])\s+", prompt.strip()):
        for part in _SEQ.split(sentence):
            part = part.strip(" ,.;!?")
            if part.lower().startswith("and "):
                part = part[4:]
            if len(part) >= 2:
                pieces.append(part)
    return pieces


class RuleExtractor(CommandExtractor):
    """Plain-English prompts to plans with rules; no model, deterministic.

    The whole-prompt constraints are the union of the commands' structured constraints,
    except counts superseded by later commands about the same object. Free-text
    constraints are kept only on their command.
    """

    name = "rules"

    def extract(self, prompt: str, image: np.ndarray | None = None) -> Plan:
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptParseError(str(prompt), str(prompt), "the prompt is empty")
        clauses = split_clauses(prompt)
        if not clauses:
            raise PromptParseError(prompt, prompt, "no instruction found")
        commands = []
        for i, clause in enumerate(clauses):
            kind = clause_kind(clause, first=(i == 0 and image is None))
            if i == 0 and image is not None and kind == "generate":
                kind = "refine"
            commands.append(
                Command(text=clause, kind=kind, constraints=clause_constraints(clause, kind))
            )
        final: dict[Any, Constraint] = {}
        for cmd in commands:
            for c in cmd.constraints:
                if c.kind == "text":
                    continue
                key = (c.kind, c.subject.noun if c.subject else None, c.relation, c.other)
                if c.kind == "background":
                    key = ("background",)
                final[key] = c
        return Plan(commands=tuple(commands), constraints=tuple(final.values()))

    def reflect(self, command: Command, critique: Critique) -> Command | None:
        failed = [c for c in critique.checks if not c.passed]
        if not failed:
            return None
        base = command.reflection_of or command.text
        fix = "; ".join(c.expected for c in failed)
        return Command(
            text=f"{base} (make sure {fix})",
            kind=command.kind,
            constraints=command.constraints,
            reflection_of=base,
        )


_PLAN_SYSTEM = f"""You turn an image prompt into a sequence of commands for image generation and editing experts.
Reply with only JSON of this form:
{{"commands": [{{"text": "instruction for one expert", "kind": "generate", "constraints": [CONSTRAINT, ...]}}],
 "constraints": [CONSTRAINT, ...]}}
kind is one of {list(COMMAND_KINDS)}; the first command of a generation task is "generate".
CONSTRAINT is one of:
{{"kind": "count", "subject": {{"noun": "bottle", "color": "red", "size": null}}, "count": 3}}
{{"kind": "region", "subject": {{"noun": "cat"}}, "region": "left"}}   (left, right, top, bottom, center)
{{"kind": "relation", "subject": {{"noun": "cat"}}, "relation": "left of", "other": {{"noun": "dog"}}}}   \
(left of, right of, above, below)
{{"kind": "background", "style": "a sunny beach"}}
{{"kind": "text", "text": "any other checkable statement"}}
Top-level "constraints" must hold in the final image."""

_REFLECT_SYSTEM = """An image expert failed a command. Rewrite the command so an expert is more likely to succeed.
Reply with only JSON: {"text": "new instruction", "kind": "same kind as before"}"""


def _schemas() -> tuple[Any, Any]:
    pydantic = require("pydantic", "models", "The LLM/HTTP command extractor")
    BaseModel, ConfigDict, Field = pydantic.BaseModel, pydantic.ConfigDict, pydantic.Field

    class Obj(BaseModel):
        model_config = ConfigDict(extra="forbid")
        noun: str = Field(min_length=1)
        color: str | None = None
        size: str | None = None

    class Con(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kind: str
        subject: Obj | None = None
        count: int | None = None
        region: str | None = None
        relation: str | None = None
        other: Obj | None = None
        style: str | None = None
        text: str | None = None

    class Cmd(BaseModel):
        text: str = Field(min_length=1)
        kind: str
        constraints: list[Con] = []

    class PlanModel(BaseModel):
        commands: list[Cmd] = Field(min_length=1)
        constraints: list[Con] = []

    class Reflection(BaseModel):
        text: str = Field(min_length=1)
        kind: str

    return PlanModel, Reflection


def plan_from_json(data: Any, plan_model: Any) -> Plan:
    """Validate ``data`` with the pydantic schema and the dataclasses; raise ``ValueError`` if invalid."""
    model = plan_model.model_validate(data)
    commands = tuple(
        Command(
            text=c.text,
            kind=c.kind,
            constraints=tuple(
                Constraint.from_dict(k.model_dump(exclude_none=True)) for k in c.constraints
            ),
        )
        for c in model.commands
    )
    constraints = tuple(
        Constraint.from_dict(k.model_dump(exclude_none=True)) for k in model.constraints
    )
    return Plan(commands=commands, constraints=constraints)


class _JSONExtractor(CommandExtractor):
    """Shared logic: prompt a chat model for JSON, validate, retry, reflect."""

    max_retries: int = 2

    def __init__(self) -> None:
        self._plan_model, self._reflection_model = _schemas()
        self._rules = RuleExtractor()

    def complete(self, messages: list[dict[str, Any]]) -> str:
        raise NotImplementedError

    def _ask(self, messages: list[dict[str, Any]], parse: Any) -> Any:
        """Ask, validate, and retry with the error; raise ValueError with every reason."""
        reasons: list[str] = []
        convo = list(messages)
        for _ in range(self.max_retries + 1):
            text = self.complete(convo)
            try:
                return parse(text)
            except Exception as e:  # noqa: BLE001 - any invalid answer is retried
                reason = f"{type(e).__name__}: {str(e)[:300]}"
                reasons.append(reason)
                convo = [
                    *messages,
                    {"role": "assistant", "content": text},
                    {
                        "role": "user",
                        "content": f"That was not valid ({reason}). Reply with only the corrected JSON.",
                    },
                ]
        raise ValueError(f"no valid JSON after {len(reasons)} attempt(s): " + " | ".join(reasons))

    def extract(self, prompt: str, image: np.ndarray | None = None) -> Plan:
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptParseError(str(prompt), str(prompt), "the prompt is empty")
        task = (
            "This is an editing task on an existing image: do not start with 'generate'.\n"
            if image is not None
            else ""
        )
        messages = [
            {"role": "system", "content": _PLAN_SYSTEM},
            {"role": "user", "content": f"{task}Prompt: {prompt}"},
        ]
        try:
            return self._ask(messages, lambda t: plan_from_json(extract_json(t), self._plan_model))
        except (ValueError, HTTPComponentError) as e:
            raise PromptParseError(prompt, prompt, f"{self.name} extractor: {e}") from e

    def reflect(self, command: Command, critique: Critique) -> Command | None:
        failed = [c.expected for c in critique.checks if not c.passed]
        user = json.dumps(
            {
                "command": command.text,
                "kind": command.kind,
                "failed": failed,
                "critic_says": critique.reflection,
            }
        )
        messages = [
            {"role": "system", "content": _REFLECT_SYSTEM},
            {"role": "user", "content": user},
        ]

        def parse(text: str) -> Command:
            r = self._reflection_model.model_validate(extract_json(text))
            base = command.reflection_of or command.text
            return Command(
                text=r.text, kind=r.kind, constraints=command.constraints, reflection_of=base
            )

        try:
            return self._ask(messages, parse)
        except (ValueError, HTTPComponentError) as e:
            # A failed reflection must not end the episode: fall back to the rules, loudly.
            warnings.warn(
                f"{self.name} extractor could not reflect ({e}); using the rule-based rewrite.",
                stacklevel=2,
            )
            return self._rules.reflect(command, critique)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_plan_model", None)
        state.pop("_reflection_model", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._plan_model, self._reflection_model = _schemas()


class LLMExtractor(_JSONExtractor):
    """A local instruct LLM (transformers ``AutoModelForCausalLM``), greedy decoding.

    Args:
        model: Hub id or folder (default ``"Qwen/Qwen2.5-7B-Instruct"``, Apache-2.0; the
            1.5B variant fits beside the experts more easily).
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        dtype: ``"auto"`` (bfloat16 on CUDA, float32 on CPU) or a dtype name.
        max_new_tokens: Longest answer.
        max_retries: Further attempts after an invalid answer.
    """

    name = "llm"

    def __init__(
        self,
        model: str = "Qwen/Qwen2.5-7B-Instruct",
        device: str = "auto",
        dtype: str = "auto",
        max_new_tokens: int = 768,
        max_retries: int = 2,
        local_files_only: bool | None = None,
    ):
        from poser_env.suites.diffusers.loader import check_device

        super().__init__()
        self.model_name = model
        self.device = check_device(device)
        self.dtype = dtype
        self.max_new_tokens = int(max_new_tokens)
        self.max_retries = int(max_retries)
        self.local_files_only = local_files_only
        self._model: Any = None
        self._tok: Any = None

    def load(self) -> None:
        if self._model is not None:
            return
        from poser_env.suites.diffusers.loader import resolve_device
        from poser_env.suites.diffusers.scorers import _load_error, _local_only, _model_dtype

        torch = require("torch", "models", "The LLM command extractor")
        transformers = require("transformers", "models", "The LLM command extractor")
        self.device = resolve_device(self.device)
        dtype = _model_dtype(torch, self.dtype, self.device)
        local = _local_only(self.local_files_only)
        try:
            tok = transformers.AutoTokenizer.from_pretrained(
                self.model_name, local_files_only=local
            )
            model = transformers.AutoModelForCausalLM.from_pretrained(
                self.model_name, dtype=dtype, local_files_only=local
            )
        except Exception as e:  # noqa: BLE001
            raise _load_error(self.model_name, "LLM", e, local) from e
        self._tok, self._model = tok, model.to(self.device).eval()

    def complete(self, messages: list[dict[str, Any]]) -> str:
        import torch

        self.load()
        inputs = self._tok.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        with torch.inference_mode():
            out = self._model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False
            )
        return self._tok.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    def close(self) -> None:
        self._model = self._tok = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_model"] = state["_tok"] = None  # reload lazily in the new process
        return state


class HTTPExtractor(_JSONExtractor):
    """The extractor behind an OpenAI-compatible server (hosted API or local vLLM).

    Args:
        base_url: Server URL up to ``/v1``.
        model: Model name for the server.
        max_retries: Further attempts after an invalid (but delivered) answer; transport
            failures are retried separately by the client.
        **client_kwargs: Passed to :class:`ChatClient`.
    """

    name = "http"

    def __init__(
        self,
        base_url: str,
        model: str,
        max_retries: int = 2,
        client: ChatClient | None = None,
        **client_kwargs: Any,
    ):
        super().__init__()
        self.max_retries = int(max_retries)
        self.client = client or ChatClient(base_url, model, **client_kwargs)

    def complete(self, messages: list[dict[str, Any]]) -> str:
        return self.client.complete(messages, lambda text: text)

    def close(self) -> None:
        self.client.close()


#: The command extractors of the diffusers suite (``extractor=``).
EXTRACTORS = Registry("extractor")
EXTRACTORS.register("rules", RuleExtractor, "rules, no model")
EXTRACTORS.register("llm", LLMExtractor, "a local LLM")
EXTRACTORS.register("http", HTTPExtractor, "an OpenAI-compatible server")


def make_extractor(kind: str | CommandExtractor, **kwargs: Any) -> CommandExtractor:
    """``"rules"``, ``"llm"`` or ``"http"`` (or an extractor instance, returned as is)."""
    if isinstance(kind, CommandExtractor):
        return kind
    from poser_env.suites.diffusers import build

    return build(EXTRACTORS.load(kind), kwargs, f"extractor {kind!r}", "extractor_kwargs")
