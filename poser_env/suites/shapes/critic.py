"""The Shapes world's critic: judges from pixels alone.

It perceives the image (``perception.py``), checks each constraint against what it sees,
and scores fidelity (how far the image is from a clean rendering of what it sees: noise,
blur, broken objects) and aesthetics (balance and breathing room). It never sees the
expert's hidden scene.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from poser_env.components import ConstraintCheck, Critic, Critique
from poser_env.constraints import Command, Constraint
from poser_env.error import ConfigError
from poser_env.suites.shapes.perception import Perception, perceive
from poser_env.suites.shapes.scene import evaluate
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


class ShapesCritic(Critic):
    """Exact, pixel-based critic of the Shapes world.

    Args:
        accept_fidelity: Minimum fidelity for a command to be accepted, in [0, 1].
        weights: Weights of alignment, fidelity and aesthetics in the overall score.
    """

    name = "shapes-critic"

    def __init__(self, accept_fidelity: float = 0.5, weights: tuple[float, float, float] = (0.6, 0.2, 0.2)):
        if not 0.0 <= accept_fidelity <= 1.0:
            raise ConfigError(f"accept_fidelity must be in [0, 1], got {accept_fidelity!r}.")
        if len(weights) != 3 or min(weights) < 0 or sum(weights) <= 0:
            raise ConfigError(f"weights must be 3 non-negative numbers with a positive sum, got {weights!r}.")
        self.accept_fidelity = float(accept_fidelity)
        self.weights = tuple(float(w) / sum(weights) for w in weights)

    def check(self, perception: Perception, constraints: Sequence[Constraint]) -> tuple[ConstraintCheck, ...]:
        scene = perception.scene
        out = []
        for c in constraints:
            passed, observed = evaluate(c, scene.objects, scene.background)
            out.append(ConstraintCheck(c, c.statement(), observed, passed, 1.0 if passed else 0.0))
        return tuple(out)

    def judge(self, image: np.ndarray, command: Command | None, prompt_constraints: Sequence[Constraint]) -> Critique:
        p = perceive(image)
        checks = self.check(p, command.constraints) if command is not None else ()
        prompt_checks = self.check(p, prompt_constraints)
        alignment = sum(c.passed for c in checks) / len(checks) if checks else 1.0
        prompt_alignment = sum(c.passed for c in prompt_checks) / len(prompt_checks) if prompt_checks else 1.0
        fidelity = p.fidelity
        aesthetics = aesthetics_score(p)
        wa, wf, we = self.weights
        overall = wa * (alignment if command is not None else prompt_alignment) + wf * fidelity + we * aesthetics
        notes = [f"Expected {c.expected}; observed {c.observed}." for c in checks if not c.passed]
        if fidelity < self.accept_fidelity:
            notes.append(f"The image is noisy or blurred (fidelity {fidelity:.2f} < {self.accept_fidelity:.2f}).")
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
