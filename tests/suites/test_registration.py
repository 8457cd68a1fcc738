"""The suite registry."""

from __future__ import annotations

import gymnasium as gym
import pytest

import poser_env  # noqa: F401
from poser_env.error import ConfigError, UnknownNameError
from poser_env.suites import Suite, list_suites, make_suite, register_suite, registry


def test_shapes_is_registered_and_default():
    assert "shapes" in list_suites()
    suite = make_suite("shapes")
    assert isinstance(suite, Suite) and suite.name == "shapes"
    assert gym.make("ImagePoser-v0").unwrapped.suite.name == "shapes"


def test_unknown_suite_lists_known_and_suggests():
    with pytest.raises(
        UnknownNameError,
        match=r"Unknown suite 'shape'\. Did you mean 'shapes'\? Known suites: .*shapes",
    ):
        make_suite("shape")


def test_register_custom_suite_by_callable_and_entry_point():
    def factory(difficulty="easy"):
        suite = make_suite("shapes", difficulty=difficulty)
        suite.name = "mine"
        return suite

    register_suite("mine-test", factory, description="test suite")
    try:
        env = gym.make("ImagePoser-v0", suite="mine-test", suite_kwargs={"difficulty": "hard"})
        assert env.unwrapped.suite.name == "mine"
        register_suite("mine-ep", "poser_env.suites.shapes:make_shapes_suite")
        assert make_suite("mine-ep").name == "shapes"
    finally:
        registry.pop("mine-test", None)
        registry.pop("mine-ep", None)


def test_entry_point_errors():
    register_suite("broken-test", "no_colon_here")
    try:
        with pytest.raises(
            ConfigError,
            match="suite 'broken-test': expected an import path 'package.module:attribute', got 'no_colon_here'",
        ):
            make_suite("broken-test")
    finally:
        registry.pop("broken-test")
    with pytest.raises(ConfigError, match="non-empty string"):
        register_suite("", "a:b")


def test_expert_subset_keeps_order_and_rejects_duplicates():
    suite = make_suite("shapes")
    sub = suite.select_experts(["restyler", "count-master"])
    assert sub.expert_names == ("restyler", "count-master")
    with pytest.raises(ConfigError, match="repeated"):
        Suite(
            "x",
            [suite.experts[0], suite.experts[0]],
            suite.critic,
            suite.extractor,
            suite.tasks,
            (128, 128),
        )
    with pytest.raises(ConfigError, match="list of expert names"):
        suite.select_experts("restyler")
