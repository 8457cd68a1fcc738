"""poser_agents: learn, evaluate and benchmark orchestration policies on ImagePoser.

Built on Stable-Baselines3 (``pip install "image-poser[agents]"``). The light parts
(wrappers with the hashed encoder, the algorithm registry, baselines) import without torch;
training, MiniLM and plotting import their dependencies when used.

Typical use::

    poser train --algo dqn --env ImagePoser-v0 --seed 0
    poser evaluate runs/dqn_ImagePoser-v0_s0 --episodes 200
"""

from poser_agents.algos import ALGOS, Agent, AlgoSpec, register_algo, resolve_algo
from poser_agents.wrappers import (
    ENCODERS,
    STATE_PRESETS,
    EncodeObservation,
    HashedBagOfWords,
    SentenceTransformerEncoder,
    StatePreset,
    TextEncoder,
    make_encoder,
    wrap_env,
)

__version__ = "0.1.0"

__all__ = [
    "ALGOS",
    "ENCODERS",
    "STATE_PRESETS",
    "Agent",
    "AlgoSpec",
    "EncodeObservation",
    "HashedBagOfWords",
    "SentenceTransformerEncoder",
    "StatePreset",
    "TextEncoder",
    "make_encoder",
    "register_algo",
    "resolve_algo",
    "wrap_env",
]
