"""Exceptions raised by poser_agents (subclasses of poser_env's hierarchy)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from poser_env.error import ConfigError, PoserError, UnknownNameError


class AgentsConfigError(ConfigError):
    """A training, evaluation or benchmark setting is invalid."""


class RunFolderError(PoserError, ValueError):
    """A run folder is missing, incomplete or from an incompatible version."""


class RunLockedError(RunFolderError):
    """Another ``poser`` process is writing this run folder (training or resuming it)."""


def close_hint(name: str, known: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` or an empty string."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


__all__ = [
    "AgentsConfigError",
    "RunFolderError",
    "RunLockedError",
    "UnknownNameError",
    "close_hint",
]
