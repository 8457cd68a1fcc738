"""Exceptions raised by poser_env.

Every message says what was expected, what arrived and, where it helps, how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PoserError(Exception):
    """Base class of every error raised on purpose by poser_env."""


class ConfigError(PoserError, ValueError):
    """A configuration value (keyword argument, dataclass field) is invalid."""


class UnknownNameError(PoserError, KeyError):
    """A name (suite, expert, task kind...) is not registered."""

    def __init__(self, what: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        self.message = f"Unknown {what} {name!r}.{hint} Known {what}s: {', '.join(known)}."
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class MissingDependencyError(PoserError, ImportError):
    """An optional dependency (an extra) is needed but not installed."""

    def __init__(self, package: str, extra: str, feature: str):
        self.message = (
            f"{feature} needs the package {package!r}, which is not installed. "
            f'Install it with: pip install "image-poser[{extra}]"'
        )
        super().__init__(self.message)


class PromptParseError(PoserError, ValueError):
    """The command extractor could not parse (part of) a prompt."""

    def __init__(self, prompt: str, unparsed: str, reason: str = ""):
        self.prompt = prompt
        self.unparsed = unparsed
        extra = f" ({reason})" if reason else ""
        super().__init__(
            f"Could not parse {unparsed!r} in prompt {prompt!r}{extra}. "
            "See docs/environment.md (Prompt grammar) for the phrasings the Shapes extractor understands."
        )


class ComponentError(PoserError, RuntimeError):
    """An expert, critic or extractor failed while the environment was stepping."""

    def __init__(self, component: str, name: str, cause: BaseException):
        self.component = component
        self.name = name
        self.cause = cause
        super().__init__(f"{component} {name!r} failed: {type(cause).__name__}: {cause}")


class PoolError(PoserError, RuntimeError):
    """The shared expert pool did not answer: a timeout, a lost replica, a missing deployment.

    Raised by a pool client after its bounded retries; the environment turns it into a
    truncated step with ``info["error_component"] == "pool"``.
    """


class ModelLoadError(PoserError, RuntimeError):
    """A model's weights could not be loaded (missing, offline, out of memory...).

    Attributes:
        model: The model id or folder that failed.
        expert: The expert that asked for it.
        cause: The original exception.
    """

    def __init__(self, model: str, expert: str, cause: BaseException, hint: str, role: str | None = None):
        self.model = model
        self.expert = expert
        self.cause = cause
        role = role or f"expert {expert!r}"
        super().__init__(f"Could not load model {model!r} for {role}: {type(cause).__name__}: {cause}. {hint}")
