"""The Shapes world: a fast, seeded, procedural stand-in for real image experts.

It keeps the structure of the real problem (long compositional prompts, experts with
complementary strengths and realistic failure modes, a critic that judges pixels, a parser
that decomposes prompts) so that RL algorithms can be developed and benchmarked on a CPU.
"""

from __future__ import annotations

from poser_env.suites.registration import Suite
from poser_env.suites.shapes.critic import ShapesCritic
from poser_env.suites.shapes.experts import ShapesExpert, SkillProfile, default_experts
from poser_env.suites.shapes.extractor import ShapesExtractor
from poser_env.suites.shapes.tasks import ShapesTaskConfig, ShapesTaskSource
from poser_env.suites.shapes.vocab import CANVAS


def make_shapes_suite(
    difficulty: str = "medium",
    split: str = "train",
    editing_fraction: float = 0.25,
    reflect: bool = True,
    accept_fidelity: float = 0.5,
) -> Suite:
    """Build the Shapes suite.

    Args:
        difficulty: ``"easy"`` (1-2 commands), ``"medium"`` (1-4) or ``"hard"`` (4-6).
        split: ``"train"``, ``"test"`` (held-out shape/colour combinations) or ``"all"``.
        editing_fraction: Share of editing tasks (source image plus edits).
        reflect: Whether the extractor rewrites failed commands into repairs.
        accept_fidelity: The critic's minimum fidelity to accept a command.
    """
    return Suite(
        name="shapes",
        experts=default_experts(),
        critic=ShapesCritic(accept_fidelity=accept_fidelity),
        extractor=ShapesExtractor(reflect=reflect),
        tasks=ShapesTaskSource(ShapesTaskConfig(difficulty, split, editing_fraction)),
        image_size=(CANVAS, CANVAS),
    )


__all__ = [
    "ShapesCritic",
    "ShapesExpert",
    "ShapesExtractor",
    "ShapesTaskConfig",
    "ShapesTaskSource",
    "SkillProfile",
    "default_experts",
    "make_shapes_suite",
]
