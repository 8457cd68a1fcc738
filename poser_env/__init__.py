"""poser_env: a Gymnasium environment for orchestrating image-generation experts.

``import poser_env`` registers ``ImagePoser-v0`` and its presets; ``gym.make`` then works
with or without the ``poser_env:`` prefix. Nothing heavy (torch, diffusers) is imported.
:class:`~poser_env.wrappers.EncodeObservation` (in :mod:`poser_env.wrappers`) turns the text
observations into vectors for libraries that cannot read ``spaces.Text`` (SB3, Tianshou...).
"""

import warnings

from poser_env.components import (
    CommandExtractor,
    ConstraintCheck,
    Critic,
    Critique,
    Expert,
    ExpertResult,
    Task,
    TaskSource,
)
from poser_env.constraints import Command, Constraint, ObjectRef, Plan
from poser_env.envs.image_poser import INFO_KEYS, ImagePoserEnv, read_details
from poser_env.envs.registration import IDS, register_envs
from poser_env.reward import RewardConfig
from poser_env.suites import Suite, list_suites, make_suite, register_suite
from poser_env.wrappers import EncodeObservation

__version__ = "0.1.0"

register_envs()
# v1 does not deprecate v0: v0 is the paper's setting, v1 a harder world for comparing
# algorithms. Gymnasium warns about every id that has a newer version, so that one warning
# is silenced for our v0 ids (and only for them).
warnings.filterwarnings(
    "ignore",
    message=r".*The environment ImagePoser-(\w+-)?v0 is out of date",
    category=DeprecationWarning,
)

__all__ = [
    "IDS",
    "INFO_KEYS",
    "Command",
    "CommandExtractor",
    "Constraint",
    "ConstraintCheck",
    "Critic",
    "Critique",
    "EncodeObservation",
    "Expert",
    "ExpertResult",
    "ImagePoserEnv",
    "ObjectRef",
    "Plan",
    "RewardConfig",
    "Suite",
    "Task",
    "TaskSource",
    "list_suites",
    "make_suite",
    "read_details",
    "register_suite",
]
