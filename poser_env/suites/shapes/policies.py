"""Reference policies for the Shapes world (no learning, no torch).

* :class:`RandomPolicy` - uniform over the valid actions;
* :class:`SingleExpertPolicy` - always the same expert;
* :class:`PipelinePolicy` - a fixed text-to-image expert until there is an image, then a
  fixed image-to-image expert (the hand-made chains people build);
* :class:`RouterPolicy` - one fixed expert per command kind (hand-written rules);
* :class:`OraclePolicy` - knows every expert's skill profile and picks the one most likely
  to satisfy the current command without damaging the rest, net of cost.

Each is called as ``policy(env) -> action`` on an ``ImagePoserEnv`` (wrappers are
unwrapped). Only the oracle reads suite internals (the profiles and the perceived scene).
"""

from __future__ import annotations

import numpy as np

from poser_env.error import ConfigError, UnknownNameError
from poser_env.suites.shapes.experts import ShapesExpert
from poser_env.suites.shapes.perception import perceive
from poser_env.suites.shapes.scene import Scene


def _base(env):
    return env.unwrapped


class RandomPolicy:
    """Uniform over valid actions (uses its own seeded generator)."""

    name = "random"

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def __call__(self, env) -> int:
        valid = np.flatnonzero(_base(env).action_masks())
        return int(self.rng.choice(valid))


class SingleExpertPolicy:
    """Always calls the same expert (an i2i expert is invalid until there is an image)."""

    def __init__(self, expert: str):
        self.expert = expert
        self.name = f"single:{expert}"

    def __call__(self, env) -> int:
        names = _base(env).expert_names
        if self.expert not in names:
            raise UnknownNameError("expert", self.expert, names)
        return names.index(self.expert)


class PipelinePolicy:
    """A fixed text-to-image expert first, then a fixed image-to-image expert."""

    def __init__(self, t2i: str, i2i: str):
        self.t2i, self.i2i = t2i, i2i
        self.name = f"pipeline:{t2i}>{i2i}"

    def __call__(self, env) -> int:
        base = _base(env)
        names = base.expert_names
        for n in (self.t2i, self.i2i):
            if n not in names:
                raise UnknownNameError("expert", n, names)
        return names.index(self.i2i if base.progress_has_image else self.t2i)


class OraclePolicy:
    """Picks ``argmax_e P(success) * P(others preserved) - cost_weight * cost``.

    The probabilities come from the experts' skill profiles
    (``ShapesExpert.success_probability`` and ``preservation_probability``) applied to
    the perceived current image: the oracle knows the experts, it does not sample them.
    (Sampling each expert a few times and keeping the best estimate was tried and is
    worse: with 12 noisy estimates the maximum is biased towards lucky, cheap experts.)

    Args:
        cost_weight: Success probability traded per second of expert cost.
    """

    name = "oracle"

    def __init__(self, cost_weight: float = 0.01):
        self.cost_weight = cost_weight

    def __call__(self, env) -> int:
        base = _base(env)
        command = base.current_command
        mask = base.action_masks()
        has_image = bool(base.progress_has_image)
        scene = perceive(base.current_image).scene if has_image else Scene((), "plain")
        best, best_score = None, -np.inf
        for i, expert in enumerate(base.experts):
            if not mask[i]:
                continue
            if not isinstance(expert, ShapesExpert):
                raise ConfigError(f"OraclePolicy needs Shapes experts; {expert.name!r} is {type(expert).__name__}.")
            p = expert.success_probability(command, scene) * expert.preservation_probability(command, scene)
            score = p - self.cost_weight * expert.cost
            if score > best_score:
                best, best_score = i, score
        return int(best)


class RouterPolicy:
    """``kind-router``: a fixed hand-written router, one expert per command kind, chosen by reading the
    expert descriptions once (what a careful engineer would wire by hand)."""

    name = "kind-router"
    ROUTES = {
        "generate": "generalist-xl",
        "add": "object-adder",
        "remove": "object-eraser",
        "recolor": "recolorist",
        "move": "object-mover",
        "restyle": "restyler",
        "refine": "edit-generalist",
    }

    def __call__(self, env) -> int:
        base = _base(env)
        names = base.expert_names
        kind = base.current_command.kind
        if not base.progress_has_image:
            kind = "generate"
        choice = self.ROUTES.get(kind, "generalist-xl")
        if choice not in names:
            raise UnknownNameError("expert", choice, names)
        return names.index(choice)


def baseline_policies(expert_names, seed: int = 0) -> list:
    """Random, every single expert, the hand-written router, and the oracle."""
    return [RandomPolicy(seed), *[SingleExpertPolicy(n) for n in expert_names], RouterPolicy(), OraclePolicy()]
