"""``poser_env._imports.require``: the one check of optional dependencies."""

from __future__ import annotations

import sys

import pytest
from gymnasium.error import DependencyNotInstalled

from poser_env._imports import require
from poser_env.error import MissingDependencyError


def test_require_returns_the_module():
    import json

    assert require("json", "cache", "Reading JSON") is json


def test_a_missing_module_names_its_package_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an absent package looks like to import
    monkeypatch.setitem(
        sys.modules, "pyarrow.parquet", None
    )  # also when an earlier test imported it
    with pytest.raises(
        DependencyNotInstalled,
        match=r"Exporting needs the package 'pyarrow', which is not installed\. "
        r'Install it with: pip install "image-poser\[cache\]"',
    ) as info:
        require("pyarrow.parquet", "cache", "Exporting")
    assert isinstance(info.value, MissingDependencyError) and isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ImportError)


def test_the_package_name_is_used_when_it_differs_from_the_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(
        MissingDependencyError, match=r"needs the package 'open_clip_torch'.*image-poser\[models\]"
    ):
        require("open_clip", "models", "The CLIP critic", package="open_clip_torch")


def test_a_missing_dependency_of_the_module_is_named_itself(tmp_path, monkeypatch):
    (tmp_path / "poser_fake_wrapper.py").write_text("import poser_fake_absent_dep\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        MissingDependencyError,
        match=r"needs the package 'poser_fake_absent_dep'.*image-poser\[agents\]",
    ):
        require("poser_fake_wrapper", "agents", "Wrapping")
    sys.modules.pop("poser_fake_wrapper", None)


def test_the_former_call_sites_raise_it(monkeypatch):
    from poser_agents import plots
    from poser_env.suites.diffusers import loader as pool

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(
        DependencyNotInstalled,
        match=r"Plotting needs the package 'matplotlib'.*image-poser\[agents\]",
    ):
        plots._plt()
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(
        DependencyNotInstalled, match=r"X needs the package 'diffusers'.*image-poser\[models\]"
    ):
        pool.require_torch_diffusers("X")
