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

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from poser_env.constraints import Command, Constraint, Plan
from poser_env.error import ConfigError, UnknownNameError, did_you_mean

ExpertKind = Literal["t2i", "i2i"]

_PLAIN = (str, int, float, bool, type(None))


def _describe(value: Any, depth: int) -> Any:
    """A JSON-ready, process-independent description of ``value`` for cache identities.

    Plain values and dataclasses are kept whole; other objects (models, clients, locks)
    are described by their class and, a couple of levels deep, their public plain
    attributes. Nothing that varies between processes (ids, addresses) enters.
    """
    if isinstance(value, _PLAIN):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "__class__": type(value).__qualname__,
            **{f.name: _describe(getattr(value, f.name), depth) for f in dataclasses.fields(value)},
        }
    if isinstance(value, (tuple, list)):
        return [_describe(v, depth) for v in value]
    if isinstance(value, dict):
        return {
            str(k): _describe(v, depth) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
        }
    if isinstance(value, np.ndarray):
        return {"__ndarray__": [list(value.shape), str(value.dtype)]}
    if isinstance(value, np.generic):
        return value.item()
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if depth <= 0 or not hasattr(value, "__dict__"):
        return {"__class__": name}
    return {"__class__": name, **_public_state(value, depth - 1)}


def _public_state(obj: Any, depth: int) -> dict[str, Any]:
    return {k: _describe(v, depth) for k, v in sorted(vars(obj).items()) if not k.startswith("_")}


def default_cache_identity(component: Any) -> dict[str, Any]:
    """Default identity of a component for the generation cache (:mod:`poser_env.cache`).

    The component's class, its ``name`` and its public attributes (a Shapes expert's
    :class:`SkillProfile`, a diffusers expert's ``ExpertSpec``, a critic's thresholds),
    described two levels deep. Components whose outputs depend on state this misses (a
    model object without its id among its public attributes, a remote endpoint) should
    override ``cache_identity()`` and return the model id, revision and settings.
    """
    cls = type(component)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "name": getattr(component, "name", None),
        "state": _public_state(component, 2) if hasattr(component, "__dict__") else {},
    }


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

    def call_batch(
        self, calls: Sequence[tuple[Command, np.ndarray | None, int]]
    ) -> list[ExpertResult]:
        """Execute several ``(command, image, seed)`` calls; one result per call, in order.

        The shared expert pool (:mod:`poser_env.pools`) hands an expert the requests of
        all env workers that arrived together. The default runs them one after another;
        an expert whose model batches (one pipeline call for several prompts) overrides
        it. Each result must equal what ``self(*call)`` returns.
        """
        return [self(command, image, seed) for command, image, seed in calls]

    def cache_identity(self) -> dict[str, Any]:
        """JSON-ready identity of this expert and its settings, hashed into cache keys.

        Two components with the same identity must give the same output for the same
        inputs (and seed). The default is :func:`default_cache_identity`; override it
        when outputs depend on something it cannot see (model revision, remote endpoint).
        """
        return default_cache_identity(self)

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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConstraintCheck:
        """Inverse of :meth:`to_dict`."""
        return cls(
            constraint=Constraint.from_dict(d["constraint"]),
            expected=d["expected"],
            observed=d["observed"],
            passed=bool(d["passed"]),
            score=float(d["score"]),
        )


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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Critique:
        """Inverse of :meth:`to_dict`."""
        return cls(
            checks=tuple(ConstraintCheck.from_dict(c) for c in d["checks"]),
            prompt_checks=tuple(ConstraintCheck.from_dict(c) for c in d["prompt_checks"]),
            alignment=float(d["alignment"]),
            prompt_alignment=float(d["prompt_alignment"]),
            fidelity=float(d["fidelity"]),
            aesthetics=float(d["aesthetics"]),
            overall=float(d["overall"]),
            accepted=bool(d["accepted"]),
            reflection=d.get("reflection", ""),
        )


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

    def judge_batch(
        self, calls: Sequence[tuple[np.ndarray, Command | None, Sequence[Constraint]]]
    ) -> list[Critique]:
        """Judge several ``(image, command, prompt_constraints)`` calls, in order.

        Used by the shared expert pool like :meth:`Expert.call_batch`; the default judges
        one after another. Each critique must equal what ``self.judge(*call)`` returns.
        """
        return [self.judge(image, command, constraints) for image, command, constraints in calls]

    def cache_identity(self) -> dict[str, Any]:
        """JSON-ready identity of this critic and its settings, hashed into cache keys.

        Two components with the same identity must give the same output for the same
        inputs (and seed). The default is :func:`default_cache_identity`; override it
        when outputs depend on something it cannot see (model revision, remote endpoint).
        """
        return default_cache_identity(self)

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

    def cache_identity(self) -> dict[str, Any]:
        """JSON-ready identity of this extractor and its settings, hashed into cache keys.

        Two components with the same identity must give the same output for the same
        inputs (and seed). The default is :func:`default_cache_identity`; override it
        when outputs depend on something it cannot see (model revision, remote endpoint).
        """
        return default_cache_identity(self)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Optional."""


TaskKind = Literal["generation", "editing"]
#: The values of :attr:`Task.kind`.
TASK_KINDS: tuple[str, ...] = ("generation", "editing")


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

    def __post_init__(self) -> None:
        # Checked when the task is built, not when an episode trips over it.
        if not isinstance(self.prompt, str):
            raise ConfigError(f"Task.prompt must be a string, got {type(self.prompt).__name__}.")
        if self.kind not in TASK_KINDS:
            raise ConfigError(
                f"Task.kind must be one of {list(TASK_KINDS)}, got {self.kind!r}.{did_you_mean(self.kind, TASK_KINDS)}"
            )
        if self.image is not None and not isinstance(self.image, np.ndarray):
            raise ConfigError(
                f"Task.image must be None or an (H, W, 3) uint8 numpy array, got {type(self.image).__name__}."
            )
        if self.constraints is not None and not isinstance(self.constraints, (tuple, list)):
            raise ConfigError(
                f"Task.constraints must be None or a tuple of Constraint, got {type(self.constraints).__name__}."
            )
        if not isinstance(self.meta, dict):
            raise ConfigError(f"Task.meta must be a dict, got {type(self.meta).__name__}.")


class TaskSource(ABC):
    """Samples tasks."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Task:
        """Draw one task using only ``rng`` for randomness."""


@dataclass
class Suite:
    """A complete set of components for the environment.

    Attributes:
        name: Registry name of the suite.
        experts: The action set, in action-index order.
        critic: Judges every step and gives the reward signal.
        extractor: Turns prompts into commands; reflects on failures.
        tasks: Samples the episode's task.
        image_size: ``(height, width)`` of the images the experts produce.
    """

    name: str
    experts: Sequence[Expert]
    critic: Critic
    extractor: CommandExtractor
    tasks: TaskSource
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        self.experts = tuple(self.experts)
        if not self.experts:
            raise ConfigError(f"Suite {self.name!r} has no experts; a suite needs at least one.")
        names = [e.name for e in self.experts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(
                f"Expert names must be unique within suite {self.name!r}; repeated: {dupes}."
            )
        if not any(e.kind == "t2i" for e in self.experts):
            raise ConfigError(
                f"Suite {self.name!r} needs at least one 't2i' expert to start generation tasks; "
                f"got experts {names}."
            )
        for e in self.experts:
            if e.kind not in ("t2i", "i2i"):
                raise ConfigError(
                    f"Expert {e.name!r} has kind {e.kind!r}; expected 't2i' or 'i2i'."
                )

    @property
    def expert_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.experts)

    def select_experts(self, names: Sequence[str]) -> Suite:
        """A copy of this suite with only the named experts, in the order given."""
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise ConfigError(f"experts must be a list of expert names, got {names!r}.")
        by_name = {e.name: e for e in self.experts}
        chosen = []
        for n in names:
            if n not in by_name:
                raise UnknownNameError("expert", n, by_name)
            chosen.append(by_name[n])
        return replace(self, experts=tuple(chosen))

    def close(self) -> None:
        for component in (*self.experts, self.critic, self.extractor):
            component.close()
