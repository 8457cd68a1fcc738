"""The Shapes world: a fast, seeded, procedural stand-in for real image experts.

It keeps the structure of the real problem (long compositional prompts, experts with
complementary strengths and realistic failure modes, a critic that judges pixels, a parser
that decomposes prompts) so that RL algorithms can be developed and benchmarked on a CPU.
"""

from __future__ import annotations

from poser_env.error import ConfigError, did_you_mean
from poser_env.suites.registration import Suite
from poser_env.suites.shapes.critic import CriticErrors, NoisyShapesCritic, ShapesCritic
from poser_env.suites.shapes.experts import ShapesExpert, SkillProfile, default_experts
from poser_env.suites.shapes.extractor import ShapesExtractor
from poser_env.suites.shapes.skills import SkillModel, V1Expert, v1_experts
from poser_env.suites.shapes.tasks import ShapesTaskConfig, ShapesTaskSource
from poser_env.suites.shapes.vocab import CANVAS

#: Versions of the Shapes world's skill model (``world=``).
WORLDS: tuple[str, ...] = ("v0", "v1")


def make_shapes_suite(
    difficulty: str = "medium",
    split: str = "train",
    editing_fraction: float = 0.25,
    reflect: bool = True,
    accept_fidelity: float = 0.5,
    world: str = "v0",
    critic_errors: CriticErrors | float | dict[str, float] | None = None,
) -> Suite:
    """Build the Shapes suite.

    Args:
        difficulty: ``"easy"`` (1-2 commands), ``"medium"`` (1-4) or ``"hard"`` (4-6).
        split: ``"train"``, ``"test"`` (held-out shape/colour combinations) or ``"all"``.
        editing_fraction: Share of editing tasks (source image plus edits).
        reflect: Whether the extractor rewrites failed commands into repairs.
        accept_fidelity: The critic's minimum fidelity to accept a command.
        world: ``"v0"`` (``ImagePoser-v0``: each expert's skill depends only on the kind
            of skill a command needs) or ``"v1"`` (``ImagePoser-v1``: it depends on the
            command's content and on the current image; see
            :mod:`poser_env.suites.shapes.skills`).
        critic_errors: ``None`` (default: an exact critic), one error rate for every
            kind, or a dict of rates for ``"miscount"``, ``"left_right"`` and
            ``"miss_small"`` (see :class:`~poser_env.suites.shapes.critic.CriticErrors`).
            Final metrics stay exact (an independent judge).
    """
    if world not in WORLDS:
        hint = did_you_mean(world, WORLDS, cutoff=0.5)
        raise ConfigError(f"world must be one of {list(WORLDS)}, got {world!r}.{hint}")
    errors = CriticErrors.coerce(critic_errors)
    if errors.exact:
        critic: ShapesCritic = ShapesCritic(accept_fidelity=accept_fidelity)
    else:
        critic = NoisyShapesCritic(errors, accept_fidelity=accept_fidelity)
    return Suite(
        name="shapes" if world == "v0" else "shapes-v1",
        experts=default_experts() if world == "v0" else v1_experts(),
        critic=critic,
        extractor=ShapesExtractor(reflect=reflect),
        tasks=ShapesTaskSource(ShapesTaskConfig(difficulty, split, editing_fraction)),
        image_size=(CANVAS, CANVAS),
    )


__all__ = [
    "WORLDS",
    "CriticErrors",
    "NoisyShapesCritic",
    "ShapesCritic",
    "ShapesExpert",
    "ShapesExtractor",
    "ShapesTaskConfig",
    "ShapesTaskSource",
    "SkillModel",
    "SkillProfile",
    "V1Expert",
    "default_experts",
    "make_shapes_suite",
    "v1_experts",
]
