"""The Shapes world's critic: judges from pixels alone.

It perceives the image (``perception.py``), checks each constraint against what it sees,
and scores fidelity (how far the image is from a clean rendering of what it sees: noise,
blur, broken objects) and aesthetics (balance and breathing room). It never sees the
expert's hidden scene.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from poser_env.components import ConstraintCheck, Critic, Critique
from poser_env.constraints import Command, Constraint, per_object
from poser_env.error import ConfigError, did_you_mean
from poser_env.suites.shapes.perception import Perception, perceive
from poser_env.suites.shapes.scene import Obj, Scene, evaluate
from poser_env.suites.shapes.vocab import CANVAS, SIZES


def aesthetics_score(p: Perception) -> float:
    """Balance of the composition and room around objects, in [0, 1] (0 for an empty image)."""
    objs = p.scene.objects
    if not objs:
        return 0.0
    weights = [SIZES[o.size] ** 2 for o in objs]
    total = sum(weights)
    cx = sum(w * o.x for w, o in zip(weights, objs, strict=True)) / total
    cy = sum(w * o.y for w, o in zip(weights, objs, strict=True)) / total
    balance = 1.0 - min(1.0, math.hypot(cx - CANVAS / 2, cy - CANVAS / 2) / (CANVAS / 2))
    gaps = []
    for i, a in enumerate(objs):
        ea = SIZES[a.size] / 2
        gaps.append(min(a.x - ea, a.y - ea, CANVAS - 1 - a.x - ea, CANVAS - 1 - a.y - ea))
        for b in objs[i + 1 :]:
            eb = SIZES[b.size] / 2
            gaps.append(max(abs(a.x - b.x) - ea - eb, abs(a.y - b.y) - ea - eb))
    room = min(1.0, max(0.0, min(gaps) / 8.0))
    return float(0.5 * balance + 0.3 * room + 0.2 * p.fidelity)


_statement = per_object(Constraint.statement)


class ShapesCritic(Critic):
    """Exact, pixel-based critic of the Shapes world.

    Args:
        accept_fidelity: Minimum fidelity for a command to be accepted, in [0, 1].
        weights: Weights of alignment, fidelity and aesthetics in the overall score.
    """

    name = "shapes-critic"

    def __init__(
        self, accept_fidelity: float = 0.5, weights: tuple[float, float, float] = (0.6, 0.2, 0.2)
    ):
        if not 0.0 <= accept_fidelity <= 1.0:
            raise ConfigError(f"accept_fidelity must be in [0, 1], got {accept_fidelity!r}.")
        if len(weights) != 3 or min(weights) < 0 or sum(weights) <= 0:
            raise ConfigError(
                f"weights must be 3 non-negative numbers with a positive sum, got {weights!r}."
            )
        self.accept_fidelity = float(accept_fidelity)
        self.weights = tuple(float(w) / sum(weights) for w in weights)

    def check(
        self, perception: Perception, constraints: Sequence[Constraint]
    ) -> tuple[ConstraintCheck, ...]:
        scene = perception.scene
        out = []
        for c in constraints:
            passed, observed = evaluate(c, scene.objects, scene.background)
            out.append(ConstraintCheck(c, _statement(c), observed, passed, 1.0 if passed else 0.0))
        return tuple(out)

    def perceive(self, image: np.ndarray, exact: bool = False) -> Perception:
        """What the critic sees in ``image`` (exactly, for this critic)."""
        return perceive(image)

    def judge(
        self, image: np.ndarray, command: Command | None, prompt_constraints: Sequence[Constraint]
    ) -> Critique:
        # A whole-prompt judgement (no command) is the reference judgement: the env uses it
        # for the reset score and the final metrics, so it is exact for every critic.
        p = self.perceive(image, exact=command is None)
        checks = self.check(p, command.constraints) if command is not None else ()
        prompt_checks = self.check(p, prompt_constraints)
        alignment = sum(c.passed for c in checks) / len(checks) if checks else 1.0
        prompt_alignment = (
            sum(c.passed for c in prompt_checks) / len(prompt_checks) if prompt_checks else 1.0
        )
        fidelity = p.fidelity
        aesthetics = aesthetics_score(p)
        wa, wf, we = self.weights
        overall = (
            wa * (alignment if command is not None else prompt_alignment)
            + wf * fidelity
            + we * aesthetics
        )
        notes = [f"Expected {c.expected}; observed {c.observed}." for c in checks if not c.passed]
        if fidelity < self.accept_fidelity:
            notes.append(
                f"The image is noisy or blurred (fidelity {fidelity:.2f} < {self.accept_fidelity:.2f})."
            )
        accepted = all(c.passed for c in checks) and fidelity >= self.accept_fidelity
        return Critique(
            checks=checks,
            prompt_checks=prompt_checks,
            alignment=alignment,
            prompt_alignment=prompt_alignment,
            fidelity=fidelity,
            aesthetics=aesthetics,
            overall=float(overall),
            accepted=bool(accepted),
            reflection=" ".join(notes),
        )


#: Kinds of error a :class:`NoisyShapesCritic` makes, as VLM judges do.
CRITIC_ERROR_KINDS: tuple[str, ...] = ("miscount", "left_right", "miss_small")


@dataclass(frozen=True)
class CriticErrors:
    """Error rates of an imperfect critic (each a probability in [0, 1]).

    Attributes:
        miscount: Per group of three or more identical objects, the chance of seeing one
            too many or one too few.
        left_right: Per image, the chance of mirroring left and right.
        miss_small: Per small object, the chance of not seeing it.
    """

    miscount: float = 0.0
    left_right: float = 0.0
    miss_small: float = 0.0

    def __post_init__(self) -> None:
        for name in CRITIC_ERROR_KINDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ConfigError(
                    f"critic_errors[{name!r}] must be a probability in [0, 1], got {v!r}."
                )

    @property
    def exact(self) -> bool:
        return not any(getattr(self, n) for n in CRITIC_ERROR_KINDS)

    @classmethod
    def coerce(cls, value: CriticErrors | float | Mapping[str, float] | None) -> CriticErrors:
        """``None`` (exact), one rate for every kind, a dict of rates, or a CriticErrors."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(
                    f"critic_errors must be a probability in [0, 1] (one rate for every kind), got {value!r}."
                )
            return cls(*(float(value),) * len(CRITIC_ERROR_KINDS))
        if isinstance(value, Mapping):
            unknown = [k for k in value if k not in CRITIC_ERROR_KINDS]
            if unknown:
                hint = did_you_mean(unknown[0], CRITIC_ERROR_KINDS)
                raise ConfigError(
                    f"Unknown critic_errors kind {unknown[0]!r}; known kinds: {list(CRITIC_ERROR_KINDS)}.{hint}"
                )
            return cls(**value)
        raise ConfigError(
            f"critic_errors must be None (exact), a rate in [0, 1] or a dict of rates for {list(CRITIC_ERROR_KINDS)}, "
            f"got {type(value).__name__}."
        )


class NoisyShapesCritic(ShapesCritic):
    """A Shapes critic that makes a VLM judge's errors when it judges a step.

    Its errors are a deterministic function of the image (a judge at temperature 0):
    the same image is always misjudged the same way. Whole-prompt judgements without a
    command (the env's reset score and final metrics) stay exact: they are the
    independent judge the benchmark reports, so a policy that learns to please a wrong
    critic shows up as a gap between what the critic accepted and the final success.

    Args:
        errors: Error rates (see :class:`CriticErrors`).
        accept_fidelity, weights: As for :class:`ShapesCritic`.
    """

    name = "shapes-critic-noisy"
    #: Its step judgements are not its reference judgements (the env then never reuses a
    #: step's critique as the final metrics).
    exact_steps = False

    def __init__(
        self,
        errors: CriticErrors,
        accept_fidelity: float = 0.5,
        weights: tuple[float, float, float] = (0.6, 0.2, 0.2),
    ):
        super().__init__(accept_fidelity, weights)
        self.errors = CriticErrors.coerce(errors)

    def perceive(self, image: np.ndarray, exact: bool = False) -> Perception:
        p = perceive(image)
        if exact or self.errors.exact:
            return p
        e = self.errors
        rng = np.random.default_rng(zlib.crc32(image.tobytes()))
        objs = [
            o for o in p.scene.objects if not (o.size == "small" and rng.random() < e.miss_small)
        ]
        groups: dict[tuple[str, str], list[Obj]] = {}
        for o in objs:
            groups.setdefault((o.shape, o.color), []).append(o)
        for members in groups.values():
            if len(members) >= 3 and rng.random() < e.miscount:
                if rng.random() < 0.5:
                    objs.remove(members[-1])
                else:
                    objs.append(members[-1])  # seen twice
        if rng.random() < e.left_right:
            objs = [o.moved(CANVAS - 1 - o.x, o.y) for o in objs]
        return replace(p, scene=Scene(tuple(objs), p.scene.background))
