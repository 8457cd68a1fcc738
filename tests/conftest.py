"""Shared test helpers: tiny random models built once per test session (no download, CPU only)."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # any model-hub access must fail loudly


@pytest.fixture(scope="session")
def tiny_specs(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from poser_env.suites.diffusers.testing import tiny_pool

    return tiny_pool(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from poser_env.suites.diffusers.testing import save_tiny_vlm

    return str(save_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm")))


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from poser_env.suites.diffusers.testing import save_tiny_llm

    return str(save_tiny_llm(tmp_path_factory.mktemp("tiny-llm")))


@pytest.fixture
def tiny_suite_kwargs(tiny_specs, tiny_vlm):
    """``make_suite("diffusers", **kwargs)`` arguments for the tiny models on CPU."""
    return {
        "catalog": [s.to_dict() for s in tiny_specs],
        "critic": "vlm",
        "critic_kwargs": {"model": tiny_vlm, "reflection": "template"},
        "extractor": "rules",
        "device": "cpu",
        "memory_budget_gb": 1.0,
        "image_size": (32, 32),
    }
