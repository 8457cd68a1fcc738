"""The one registry shape (poser_env.registry) behind suites, pools, algorithms, encoders,
critics and extractors."""

from __future__ import annotations

import doctest
import sys

import pytest

import poser_env.registry as registry_module
from poser_env.error import (
    ArgumentTypeError,
    ConfigError,
    MissingDependencyError,
    UnknownArgumentError,
    UnknownNameError,
)
from poser_env.registry import Registry, accepted_arguments, check_kwargs, load_entry_point


def _factory(size: int = 1, colour: str = "red") -> dict:
    return {"size": size, "colour": colour}


def test_doctests_pass():
    result = doctest.testmod(registry_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


def test_make_merges_defaults_and_checks_keywords():
    shapes = Registry("shape")
    shapes.register("box", _factory, description="a box", colour="blue")
    shapes.register("lazy", "tests.test_registry:_factory")
    assert shapes.names() == ["box", "lazy"] and shapes["box"].description == "a box"
    assert shapes.make("box", size=3) == {"size": 3, "colour": "blue"}
    assert shapes.make("lazy") == {"size": 1, "colour": "red"}
    with pytest.raises(UnknownArgumentError, match=r"'sise' for shape 'box'\. Did you mean 'size'"):
        shapes.make("box", sise=3)
    with pytest.raises(ArgumentTypeError, match=r"Argument 'size' of shape 'box' must be an int"):
        shapes.make("box", size="big")
    with pytest.raises(UnknownNameError, match=r"Unknown shape 'bx'\. Did you mean 'box'\?"):
        shapes.make("bx")
    with pytest.raises(ConfigError, match="Shape name must be a non-empty string"):
        shapes.register("", _factory)


def test_an_unknown_name_is_a_config_error_and_a_key_error():
    error = UnknownNameError("pool", "rey", ["local", "ray"])
    assert isinstance(error, ConfigError) and isinstance(error, KeyError)
    assert str(error) == "Unknown pool 'rey'. Did you mean 'ray'? Known pools: local, ray."


def test_entry_point_errors_say_what_is_wrong():
    with pytest.raises(ConfigError, match=r"x: expected an import path 'package.module:attribute'"):
        load_entry_point("no_colon", "x")
    with pytest.raises(ConfigError, match=r"cannot import module 'no_such_pkg'.*PYTHONPATH"):
        load_entry_point("no_such_pkg:A", "x")
    with pytest.raises(
        MissingDependencyError, match=r"x needs the package 'no_such_pkg'.*\[agents\]"
    ):
        load_entry_point("no_such_pkg:A", "x", extra="agents")  # a built-in entry point
    with pytest.raises(
        ConfigError, match=r"has no attribute 'Registy'\. Did you mean 'Registry'\?"
    ):
        load_entry_point("poser_env.registry:Registy", "x")


def test_a_missing_extra_raised_by_the_module_passes_through(tmp_path, monkeypatch):
    (tmp_path / "poser_fake_plugin.py").write_text(
        "from poser_env._imports import require\n"
        "require('poser_no_such_dependency', 'agents', 'The fake plug-in')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(
            MissingDependencyError, match=r"The fake plug-in.*image-poser\[agents\]"
        ):
            load_entry_point("poser_fake_plugin:X")
    finally:
        sys.modules.pop("poser_fake_plugin", None)


def test_keywords_passed_on_are_listed_once():
    def with_kwargs(model: str, **client_kwargs):
        return model

    assert accepted_arguments(with_kwargs) is None  # anything goes
    assert accepted_arguments(with_kwargs, ["model", "timeout"]) == ("model", "timeout")
    with pytest.raises(UnknownArgumentError, match=r"Valid arguments: model, timeout\.$"):
        check_kwargs("client", with_kwargs, {"timeot": 1}, ["model", "timeout"])
