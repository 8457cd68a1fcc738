"""Reward critics for real images: a local VLM (VQAScore), an OpenAI-compatible server, open_clip.

All three fill the same :class:`~poser_env.components.Critique` as the Shapes critic:
one :class:`~poser_env.components.ConstraintCheck` per constraint of the command and of the
whole prompt, alignment scores, fidelity, aesthetics, an overall score, acceptance and a
reflection text for the extractor.

Shared rules (documented choices, not from the paper, which did not publish its formula):

* a constraint passes when its score is at least ``threshold`` (0.5);
* ``alignment`` is the mean score of the command's constraints, ``prompt_alignment`` the
  mean over the prompt's constraints (each falls back to the other when empty);
* ``overall = w_a * alignment + w_f * fidelity + w_e * aesthetics`` with weights
  ``(0.6, 0.2, 0.2)``;
* the command is accepted when every one of its constraints passes;
* a command without constraints is checked by one free-text constraint: the image matches
  the command's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from poser_env._imports import require
from poser_env.components import ConstraintCheck, Critic, Critique
from poser_env.constraints import Command, Constraint, constraint_text, known_counts
from poser_env.error import ConfigError
from poser_env.suites.diffusers.openai_client import ChatClient, extract_json, image_data_url
from poser_env.suites.diffusers.scorers import CLIPScoreModel, VQAScoreModel

FIDELITY_QUESTION = "Is this image sharp, clean and free of artifacts, noise and distorted objects?"
AESTHETICS_QUESTION = "Is this a beautiful, well-composed, high-quality image?"


def command_constraints(command: Command | None) -> tuple[Constraint, ...]:
    """The constraints checked for ``command``; a free-text one when it has none."""
    if command is None:
        return ()
    if command.constraints:
        return tuple(command.constraints)
    return (Constraint(kind="text", text=f'the image matches the instruction "{command.text}"'),)


class _ScoreCritic(Critic):
    """Builds a Critique from per-constraint scores in [0, 1]; subclasses provide the scores."""

    def __init__(
        self, threshold: float = 0.5, weights: tuple[float, float, float] = (0.6, 0.2, 0.2)
    ):
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {threshold}.")
        if len(weights) != 3 or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(
                f"weights must be three non-negative numbers with a positive sum, got {weights!r}."
            )
        total = float(sum(weights))
        self.threshold = float(threshold)
        self.weights = tuple(w / total for w in weights)

    def scores(
        self, image: np.ndarray, constraints: Sequence[Constraint]
    ) -> tuple[list[float], float, float]:
        """Scores of each constraint, then fidelity and aesthetics."""
        raise NotImplementedError

    def observed(self, constraint: Constraint, score: float) -> str:
        return f"P(yes)={score:.2f}"

    def reflection(self, image: np.ndarray, failed: list[ConstraintCheck]) -> str:
        if not failed:
            return ""
        return "Not yet true: " + "; ".join(f"{c.expected} ({c.observed})" for c in failed) + "."

    def judge(
        self, image: np.ndarray, command: Command | None, prompt_constraints: Sequence[Constraint]
    ) -> Critique:
        cmd = command_constraints(command)
        prompt = tuple(prompt_constraints)
        all_scores, fidelity, aesthetics = self.scores(image, [*cmd, *prompt])
        if len(all_scores) != len(cmd) + len(prompt):
            raise RuntimeError(
                f"{type(self).__name__} returned {len(all_scores)} scores for {len(cmd) + len(prompt)} constraints."
            )

        def make(cs: Sequence[Constraint], ss: Sequence[float]) -> tuple[ConstraintCheck, ...]:
            return tuple(
                ConstraintCheck(
                    constraint=c,
                    expected=c.statement(),
                    observed=self.observed(c, s),
                    passed=bool(s >= self.threshold),
                    score=float(np.clip(s, 0.0, 1.0)),
                )
                for c, s in zip(cs, ss, strict=True)
            )

        checks = make(cmd, all_scores[: len(cmd)])
        prompt_checks = make(prompt, all_scores[len(cmd) :])
        align = float(np.mean([c.score for c in checks])) if checks else None
        palign = float(np.mean([c.score for c in prompt_checks])) if prompt_checks else None
        align = align if align is not None else (palign if palign is not None else 1.0)
        palign = palign if palign is not None else align
        fidelity, aesthetics = float(np.clip(fidelity, 0, 1)), float(np.clip(aesthetics, 0, 1))
        wa, wf, we = self.weights
        accepted = (
            all(c.passed for c in checks)
            if command is not None
            else all(c.passed for c in prompt_checks)
        )
        failed = [c for c in (checks if command is not None else prompt_checks) if not c.passed]
        return Critique(
            checks=checks,
            prompt_checks=prompt_checks,
            alignment=align,
            prompt_alignment=palign,
            fidelity=fidelity,
            aesthetics=aesthetics,
            overall=float(wa * align + wf * fidelity + we * aesthetics),
            accepted=bool(accepted),
            reflection=self.reflection(image, failed),
        )


class VLMCritic(_ScoreCritic):
    """A local open VLM as critic, scoring yes/no questions from logits (VQAScore).

    Each constraint becomes ``constraint.question()``; fidelity and aesthetics are two more
    questions (:data:`FIDELITY_QUESTION`, :data:`AESTHETICS_QUESTION`). For failed checks a
    short reflection is generated by the same VLM (``reflection="generate"``) or written
    from a template (``"template"``, deterministic and cheaper).

    Args:
        model: Hub id or folder of an ``AutoModelForImageTextToText`` checkpoint
            (default ``"Qwen/Qwen2.5-VL-7B-Instruct"``, Apache-2.0, about 16 GB in bf16).
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        dtype: ``"auto"``, ``"bfloat16"``, ``"float16"`` or ``"float32"``.
        reflection: ``"generate"`` or ``"template"``.
        threshold: Score at which a constraint passes.
        weights: Weights of alignment, fidelity and aesthetics in ``overall``.
        vqa: An existing :class:`VQAScoreModel` to share (overrides ``model``/``device``/``dtype``).
        formula: ``"vqascore"`` (published: unnormalised ``P("Yes")``) or ``"yes_no"``
            (``P(Yes)/(P(Yes)+P(No))``); see :class:`VQAScoreModel`.
    """

    name = "vlm"

    def __init__(
        self,
        model: str = "Qwen/Qwen2.5-VL-7B-Instruct",
        device: str = "auto",
        dtype: str = "auto",
        reflection: Literal["generate", "template"] = "generate",
        threshold: float = 0.5,
        weights: tuple[float, float, float] = (0.6, 0.2, 0.2),
        vqa: VQAScoreModel | None = None,
        local_files_only: bool | None = None,
        formula: Literal["vqascore", "yes_no"] = "vqascore",
    ):
        super().__init__(threshold, weights)
        if reflection not in ("generate", "template"):
            raise ConfigError(f"reflection must be 'generate' or 'template', got {reflection!r}.")
        self.reflection_mode = reflection
        self.vqa = vqa or VQAScoreModel(
            model, device=device, dtype=dtype, local_files_only=local_files_only, formula=formula
        )

    def scores(
        self, image: np.ndarray, constraints: Sequence[Constraint]
    ) -> tuple[list[float], float, float]:
        counts = known_counts(constraints)
        questions = [constraint_text(c, counts, question=True) for c in constraints]
        p = self.vqa.p_yes(image, [*questions, FIDELITY_QUESTION, AESTHETICS_QUESTION])
        return p[:-2], p[-2], p[-1]

    def reflection(self, image: np.ndarray, failed: list[ConstraintCheck]) -> str:
        base = super().reflection(image, failed)
        if not failed or self.reflection_mode == "template":
            return base
        wanted = "; ".join(c.expected for c in failed)
        text = self.vqa.generate(
            image,
            f"The image should satisfy: {wanted}. It does not yet. In one sentence, what should change?",
        )
        return f"{base} {text}".strip()

    def place(self, device: str, gpu_share: float = 1.0) -> None:
        """Run the VLM on the device of the Ray replica that holds this critic."""
        self.vqa.place(device)

    def close(self) -> None:
        self.vqa.close()


class CLIPCritic(_ScoreCritic):
    """The cheap option: open_clip similarity, calibrated to [0, 1].

    A constraint's score is ``clip((cos(image, statement) - low) / (high - low), 0, 1)``;
    with the defaults (0.15, 0.35) a cosine of 0.25 scores 0.5. Fidelity and aesthetics are
    zero-shot two-way choices against a negative description. CLIP is weak at counting,
    negation and spatial relations: prefer the VLM critic where it fits.

    Args:
        model_name: open_clip architecture.
        pretrained: open_clip tag or checkpoint; ``None`` (random weights) is for tests only.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        low: Cosine that scores 0.
        high: Cosine that scores 1.
        threshold: Score at which a constraint passes.
        weights: Weights of alignment, fidelity and aesthetics in ``overall``.
    """

    name = "clip"

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = "laion2b_s34b_b79k",
        device: str = "auto",
        low: float = 0.15,
        high: float = 0.35,
        threshold: float = 0.5,
        weights: tuple[float, float, float] = (0.6, 0.2, 0.2),
        clip: CLIPScoreModel | None = None,
    ):
        super().__init__(threshold, weights)
        if not high > low:
            raise ConfigError(
                f"Expected high > low for the CLIP calibration, got low={low}, high={high}."
            )
        self.low, self.high = float(low), float(high)
        self.clip = clip or CLIPScoreModel(model_name, pretrained=pretrained, device=device)
        self._cos: dict[int, float] = {}

    def scores(
        self, image: np.ndarray, constraints: Sequence[Constraint]
    ) -> tuple[list[float], float, float]:
        counts = known_counts(constraints)
        texts = [constraint_text(c, counts, question=False) for c in constraints] + [
            "a sharp, clean, high quality image",
            "a blurry, noisy image with artifacts",
            "a beautiful, well-composed image",
            "an ugly, badly composed image",
        ]
        cos = self.clip.cosine(image, texts)
        n = len(constraints)
        self._cos = {id(c): float(v) for c, v in zip(constraints, cos[:n], strict=True)}
        cal = np.clip((cos[:n] - self.low) / (self.high - self.low), 0.0, 1.0)

        def pair(a: float, b: float) -> float:
            # Zero-shot choice with CLIP's usual logit scale of 100.
            return float(1.0 / (1.0 + np.exp(-100.0 * (a - b))))

        return [float(v) for v in cal], pair(cos[n], cos[n + 1]), pair(cos[n + 2], cos[n + 3])

    def observed(self, constraint: Constraint, score: float) -> str:
        cos = self._cos.get(id(constraint))
        return f"CLIP cosine {cos:.3f}" if cos is not None else f"score {score:.2f}"

    def place(self, device: str, gpu_share: float = 1.0) -> None:
        """Run the CLIP model on the device of the Ray replica that holds this critic."""
        self.clip.place(device)

    def close(self) -> None:
        self.clip.close()


_CRITIC_SYSTEM = """You are a strict image critic. You receive an image and numbered statements.
For each statement decide whether it is true of the image. Also rate fidelity (absence of
artifacts, 0-1) and aesthetics (0-1). Reply with only this JSON:
{"checks": [{"index": 0, "passed": true, "score": 0.9, "observed": "what you see"}],
 "fidelity": 0.8, "aesthetics": 0.7, "reflection": "one sentence on what to fix, or empty"}
Give exactly one check per statement, indices 0..N-1, scores in [0, 1]."""


def _critic_schema() -> Any:
    pydantic = require("pydantic", "models", "The HTTP critic")
    BaseModel, Field = pydantic.BaseModel, pydantic.Field

    class Check(BaseModel):
        index: int = Field(ge=0)
        passed: bool
        score: float = Field(ge=0.0, le=1.0)
        observed: str = ""

    class Verdict(BaseModel):
        checks: list[Check]
        fidelity: float = Field(ge=0.0, le=1.0)
        aesthetics: float = Field(ge=0.0, le=1.0)
        reflection: str = ""

    return Verdict


class HTTPCritic(Critic):
    """A critic behind an OpenAI-compatible chat API (hosted, as in the paper, or a local vLLM).

    The image goes as a PNG data URL with numbered statements; the answer must be JSON that
    validates against a pydantic schema and has exactly one check per statement. Invalid or
    failed answers are retried (see :class:`ChatClient`) and then raised as
    :class:`~poser_env.suites.diffusers.openai_client.HTTPComponentError`: never scored.

    Args:
        base_url: Server URL up to ``/v1``.
        model: Model name for the server.
        weights: Weights of alignment, fidelity and aesthetics in ``overall``.
        **client_kwargs: Passed to :class:`ChatClient` (``api_key``, ``timeout``,
            ``max_retries``, ``backoff``, ``json_mode``...).
    """

    name = "http"

    def __init__(
        self,
        base_url: str,
        model: str,
        weights: tuple[float, float, float] = (0.6, 0.2, 0.2),
        client: ChatClient | None = None,
        **client_kwargs: Any,
    ):
        self._helper = _ScoreCritic(0.5, weights)
        self.weights = self._helper.weights
        self.client = client or ChatClient(base_url, model, **client_kwargs)
        self._schema = _critic_schema()

    def judge(
        self, image: np.ndarray, command: Command | None, prompt_constraints: Sequence[Constraint]
    ) -> Critique:
        cmd = command_constraints(command)
        prompt = tuple(prompt_constraints)
        allc = [*cmd, *prompt]
        counts = known_counts(allc)
        listing = (
            "\n".join(
                f"{i}. {constraint_text(c, counts, question=False)}" for i, c in enumerate(allc)
            )
            or "(no statements)"
        )
        messages = [
            {"role": "system", "content": _CRITIC_SYSTEM},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"Statements:\n{listing}"},
                    {"type": "image_url", "image_url": {"url": image_data_url(image)}},
                ],
            },
        ]

        def parse(text: str) -> Any:
            verdict = self._schema.model_validate(extract_json(text))
            got = sorted(c.index for c in verdict.checks)
            if got != list(range(len(allc))):
                raise ValueError(
                    f"expected one check for each index 0..{len(allc) - 1}, got indices {got}"
                )
            return verdict

        verdict = self.client.complete(messages, parse)
        by_index = {c.index: c for c in verdict.checks}

        def make(offset: int, cs: Sequence[Constraint]) -> tuple[ConstraintCheck, ...]:
            out = []
            for i, c in enumerate(cs):
                v = by_index[offset + i]
                out.append(
                    ConstraintCheck(
                        c,
                        c.statement(),
                        v.observed or ("yes" if v.passed else "no"),
                        v.passed,
                        v.score,
                    )
                )
            return tuple(out)

        checks, prompt_checks = make(0, cmd), make(len(cmd), prompt)
        align = float(np.mean([c.score for c in checks])) if checks else None
        palign = float(np.mean([c.score for c in prompt_checks])) if prompt_checks else None
        align = align if align is not None else (palign if palign is not None else 1.0)
        palign = palign if palign is not None else align
        wa, wf, we = self.weights
        judged = checks if command is not None else prompt_checks
        return Critique(
            checks=checks,
            prompt_checks=prompt_checks,
            alignment=align,
            prompt_alignment=palign,
            fidelity=verdict.fidelity,
            aesthetics=verdict.aesthetics,
            overall=float(wa * align + wf * verdict.fidelity + we * verdict.aesthetics),
            accepted=all(c.passed for c in judged),
            reflection=verdict.reflection if any(not c.passed for c in judged) else "",
        )

    def close(self) -> None:
        self.client.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_schema"]  # a class defined in a function does not pickle
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._schema = _critic_schema()
