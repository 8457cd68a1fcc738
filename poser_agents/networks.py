"""Feature extractors and network presets for the encoded ``ImagePoser`` observations.

* ``text`` state: SB3's ``CombinedExtractor`` concatenates the embeddings, progress and
  mask; the Q-network is then a 3-layer MLP (two hidden layers of 256 and the output
  layer), as in the paper.
* ``text+image`` state: :class:`PoserExtractor` adds a small CNN on the 64x64 image
  (three conv layers, 32-64-64 channels, to a 128-d vector), cheaper on a CPU than SB3's
  NatureCNN; the concatenation then goes through the same MLP.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from poser_agents.error import AgentsConfigError
from poser_env.registry import Registry


class SmallCNN(nn.Module):
    """Three strided conv layers and a linear layer, for channel-first uint8 images
    (SB3 scales them to [0, 1] before the extractor sees them)."""

    def __init__(self, n_channels: int, height: int, width: int, out_dim: int = 128):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(n_channels, 32, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(64 * 16, out_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x))


class PoserExtractor(BaseFeaturesExtractor):
    """Concatenate flattened vector entries and a :class:`SmallCNN` embedding of images.

    Args:
        observation_space: The ``Dict`` space of :class:`~poser_agents.wrappers.EncodeObservation`.
        cnn_output_dim: Size of the image embedding.
    """

    def __init__(self, observation_space: spaces.Dict, cnn_output_dim: int = 128):
        super().__init__(observation_space, features_dim=1)
        extractors: dict[str, nn.Module] = {}
        total = 0
        for key, sub in observation_space.spaces.items():
            if is_image_space(sub, check_channels=False, normalized_image=False):
                c, h, w = sub.shape  # SB3 transposes HWC images to CHW (VecTransposeImage)
                if c not in (1, 3, 4):  # still channel-last: the env was not transposed
                    h, w, c = sub.shape
                extractors[key] = SmallCNN(c, h, w, cnn_output_dim)
                total += cnn_output_dim
            else:
                extractors[key] = nn.Flatten()
                total += int(torch.tensor(sub.shape).prod())
        self.extractors = nn.ModuleDict(extractors)
        self._features_dim = total

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([ext(observations[key]) for key, ext in self.extractors.items()], dim=1)


#: Names usable as ``features_extractor_class`` in the YAML hyperparameter files.
EXTRACTORS = Registry("features extractor")
EXTRACTORS.register("poser", PoserExtractor, "CNN on the image, MLP on the text vectors")


def resolve_policy_kwargs(policy_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """Turn YAML-friendly ``policy_kwargs`` into SB3's (extractor names into classes,
    activation names like ``"relu"`` into ``nn`` modules)."""
    kw = dict(policy_kwargs or {})
    ext = kw.get("features_extractor_class")
    if isinstance(ext, str):
        kw["features_extractor_class"] = EXTRACTORS.load(ext)
    act = kw.get("activation_fn")
    if isinstance(act, str):
        acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}
        if act.lower() not in acts:
            raise AgentsConfigError(f"Unknown activation_fn {act!r}; known: {', '.join(acts)}.")
        kw["activation_fn"] = acts[act.lower()]
    return kw
