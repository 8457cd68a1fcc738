"""examples/custom_expert.py: runs as a script, and its experts do what the docs say."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from poser_env.constraints import Command

pytest.importorskip("torch")
pytest.importorskip("diffusers")

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "custom_expert.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("custom_expert_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_runs_as_a_script():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=EXAMPLE.parents[1],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "actions: ('tiny-t2i', 'tiny-img2img', 'pil-tint', 'kind-aware-img2img')"
    steps = [line for line in lines if line.startswith("step ")]
    assert len(steps) == 8  # two episodes of four steps: registered suite, then a Suite instance
    assert steps[:4] == steps[4:]  # same seed, same episode, whichever way the suite was given
    # Which command it works on depends on the tiny random critic (under VQAScore's
    # unnormalised P("Yes") it accepts nothing, so the first command is retried).
    assert steps[2].startswith("step 2: kind-aware-img2img on '")
    assert steps[1].startswith("step 1: pil-tint")


def test_tint_expert_moves_towards_the_named_colour(example):
    expert = example.TintExpert(amount=0.5)
    image = np.full((16, 16, 3), 128, np.uint8)
    red = expert(Command("make the sofa red", "recolor"), image, seed=0)
    assert red.image.shape == image.shape and red.image.dtype == np.uint8
    assert red.meta == {"colour": "red"} and red.cost == expert.cost
    r, g, b = red.image.reshape(-1, 3).mean(0)
    assert r > 128 > g and b < 128
    plain = expert(Command("make it nicer", "refine"), image, seed=0)
    assert plain.meta == {"colour": None} and plain.image.shape == image.shape
    with pytest.raises(ValueError, match="edits an image but got image=None"):
        expert(Command("make it red", "recolor"), None, seed=0)
    with pytest.raises(ValueError, match=r"amount must be in \(0, 1\]"):
        example.TintExpert(amount=0.0)


def test_kind_aware_img2img_raises_strength_only_for_restyling(example, tiny_specs):
    from poser_env.suites.diffusers.loader import PipelineLoader

    spec = next(s for s in tiny_specs if s.name == "tiny-img2img")
    expert = example.kind_aware_img2img_class()(
        spec, PipelineLoader(device="cpu"), output_size=(32, 32)
    )
    image = np.zeros((32, 32, 3), np.uint8)
    assert (
        expert.call_kwargs(Command("restyle it as a watercolor", "restyle"), image)["strength"]
        == 0.8
    )
    assert (
        expert.call_kwargs(Command("make the cat blue", "recolor"), image)["strength"]
        == spec.strength
    )


def test_custom_suite_shares_the_pipeline_pool(example, tiny_specs, tiny_vlm):
    suite = example.make_custom_suite(
        catalog=[s.to_dict() for s in tiny_specs],
        experts=["tiny-t2i", "tiny-img2img"],
        critic_kwargs={"model": tiny_vlm, "reflection": "template"},
        extractor="rules",
        device="cpu",
        image_size=(32, 32),
    )
    assert suite.expert_names == ("tiny-t2i", "tiny-img2img", "pil-tint", "kind-aware-img2img")
    assert (
        suite.experts[3].loader is suite.experts[0].loader
        and suite.experts[0].loader.resident() == []
    )
