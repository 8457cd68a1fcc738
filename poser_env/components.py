"""The pluggable components of an Image-POSER system and the results they return.

A suite (see :mod:`poser_env.suites`) bundles one of each:

* :class:`Expert` - a text-to-image (``"t2i"``) or image-to-image (``"i2i"``) model that
  executes one :class:`~poser_env.constraints.Command`;
* :class:`Critic` - judges an image against a command's and the whole prompt's constraints
  and returns a structured :class:`Critique`;
* :class:`CommandExtractor` - turns a prompt into a :class:`~poser_env.constraints.Plan`
  and, after a failed attempt, may rewrite the command from the critique (reflection);
* :class:`TaskSource` - samples :class:`Task` objects (a prompt, optionally a source image).

Images everywhere are ``numpy.ndarray`` of shape ``(H, W, 3)`` and dtype ``uint8``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from poser_env.constraints import Command, Constraint, Plan

ExpertKind = Literal["t2i", "i2i"]


@dataclass(frozen=True)
class ExpertResult:
    """What an expert call returns.

    Attributes:
        image: The new image, ``(H, W, 3)`` uint8.
        cost: Cost charged for the call, in (simulated or nominal) seconds of GPU time.
            Deterministic, so it may enter the reward.
        meta: JSON-ready details for ``info`` (must be deterministic for a given seed).
    """

    image: np.ndarray
    cost: float
    meta: dict[str, Any] = field(default_factory=dict)


class Expert(ABC):
    """One model the policy can call.

    Attributes:
        name: Unique name within a suite; the action table lists experts by it.
        kind: ``"t2i"`` draws from scratch and ignores the input image; ``"i2i"`` edits the
            current image and is invalid before there is one.
        cost: Nominal cost per call in seconds (used by the reward's cost penalty).
        description: One line for tables and docs.
    """

    name: str
    kind: ExpertKind
    cost: float
    description: str = ""

    @abstractmethod
    def __call__(self, command: Command, image: np.ndarray | None, seed: int) -> ExpertResult:
        """Execute ``command`` (on ``image`` for i2i experts) reproducibly for ``seed``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (GPU memory, files). Optional."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r}, cost={self.cost})"


@dataclass(frozen=True)
class ConstraintCheck:
    """The critic's verdict on one constraint.

    Attributes:
        constraint: The constraint checked.
        expected: What should be seen, in words.
        observed: What the critic saw, in words.
        passed: Whether the constraint holds.
        score: Confidence that it holds, in [0, 1] (1.0/0.0 for exact critics).
    """

    constraint: Constraint
    expected: str
    observed: str
    passed: bool
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "constraint": self.constraint.to_dict(),
            "expected": self.expected,
            "observed": self.observed,
            "passed": bool(self.passed),
            "score": float(self.score),
        }


@dataclass(frozen=True)
class Critique:
    """Structured feedback on one image.

    Attributes:
        checks: One verdict per constraint of the current command.
        prompt_checks: One verdict per constraint of the whole prompt.
        alignment: How well the image follows the command, in [0, 1].
        prompt_alignment: How well it follows the whole prompt, in [0, 1].
        fidelity: Absence of artefacts (noise, blur, broken objects), in [0, 1].
        aesthetics: Composition and look, in [0, 1].
        overall: The critic's single score, in [0, 1].
        accepted: Whether the command counts as done.
        reflection: Short text explaining what is wrong and how to fix it ("" if nothing).
    """

    checks: tuple[ConstraintCheck, ...]
    prompt_checks: tuple[ConstraintCheck, ...]
    alignment: float
    prompt_alignment: float
    fidelity: float
    aesthetics: float
    overall: float
    accepted: bool
    reflection: str = ""

    @property
    def prompt_satisfied(self) -> bool:
        """Whether every constraint of the whole prompt holds."""
        return all(c.passed for c in self.prompt_checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": [c.to_dict() for c in self.checks],
            "prompt_checks": [c.to_dict() for c in self.prompt_checks],
            "alignment": float(self.alignment),
            "prompt_alignment": float(self.prompt_alignment),
            "fidelity": float(self.fidelity),
            "aesthetics": float(self.aesthetics),
            "overall": float(self.overall),
            "accepted": bool(self.accepted),
            "reflection": self.reflection,
        }


class Critic(ABC):
    """Judges images; gives the reward signal."""

    name: str = "critic"

    @abstractmethod
    def judge(
        self,
        image: np.ndarray,
        command: Command | None,
        prompt_constraints: Sequence[Constraint],
    ) -> Critique:
        """Judge ``image`` against ``command`` (``None``: prompt only) and the prompt."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Optional."""


class CommandExtractor(ABC):
    """Decomposes prompts into commands, and reflects on failures."""

    name: str = "extractor"

    @abstractmethod
    def extract(self, prompt: str, image: np.ndarray | None = None) -> Plan:
        """Turn ``prompt`` (and, for editing tasks, the source ``image``) into a plan.

        Raises:
            poser_env.error.PromptParseError: if (part of) the prompt cannot be understood.
        """

    def reflect(self, command: Command, critique: Critique) -> Command | None:
        """Rewrite ``command`` after a failed attempt; ``None`` retries it unchanged."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Optional."""


TaskKind = Literal["generation", "editing"]


@dataclass(frozen=True)
class Task:
    """One episode's task.

    Attributes:
        prompt: The long-form prompt (for editing tasks, the edit instructions).
        kind: ``"generation"`` or ``"editing"``.
        image: Source image for editing tasks, else ``None``.
        constraints: Ground-truth constraints of the whole prompt, used to score the final
            image independently of the extractor; ``None`` falls back to the extractor's.
        meta: JSON-ready details (difficulty, split, generator seed...).
    """

    prompt: str
    kind: TaskKind = "generation"
    image: np.ndarray | None = None
    constraints: tuple[Constraint, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class TaskSource(ABC):
    """Samples tasks."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Task:
        """Draw one task using only ``rng`` for randomness."""
