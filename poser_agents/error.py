"""Exceptions raised by poser_agents (subclasses of poser_env's hierarchy)."""

from __future__ import annotations

from poser_env.error import ConfigError, PoserError, UnknownNameError
from poser_env.error import did_you_mean as close_hint


class AgentsConfigError(ConfigError):
    """A training, evaluation or benchmark setting is invalid."""


class RunFolderError(PoserError, ValueError):
    """A run folder is missing, incomplete or from an incompatible version."""


class RunLockedError(RunFolderError):
    """Another ``poser`` process is writing this run folder (training or resuming it)."""


__all__ = [
    "AgentsConfigError",
    "RunFolderError",
    "RunLockedError",
    "UnknownNameError",
    "close_hint",
]
