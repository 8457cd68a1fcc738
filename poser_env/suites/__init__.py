"""Suites bundle experts, a critic, an extractor and a task source behind one name."""

from poser_env.suites.registration import (
    Suite,
    SuiteSpec,
    list_suites,
    make_suite,
    register_suite,
    registry,
)

register_suite(
    "shapes",
    "poser_env.suites.shapes:make_shapes_suite",
    description="Built-in Shapes world: procedural, deterministic, CPU only (default).",
)
register_suite(
    "shapes-v1",
    "poser_env.suites.shapes:make_shapes_suite",
    description="Shapes world v1 (ImagePoser-v1): skill depends on the command's content and the current image.",
    world="v1",
    editing_fraction=0.3,
)


register_suite(
    "diffusers",
    "poser_env.suites.diffusers:make_diffusers_suite",
    description="Real models: diffusers experts, a transformers VLM critic, an LLM extractor (GPU; extra 'models').",
)

__all__ = ["Suite", "SuiteSpec", "list_suites", "make_suite", "register_suite", "registry"]
