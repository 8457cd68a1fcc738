"""Exceptions raised by poser_env.

Every message says what was expected, what arrived and, where it helps, how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from gymnasium.error import DependencyNotInstalled

#: Longest error message kept (characters). A user value can be huge (a 10 MB prompt);
#: the message must stay readable on one screen and cheap to log.
MAX_MESSAGE_CHARS = 2000
#: Longest quoted user value inside a message (characters).
MAX_VALUE_CHARS = 200


def cap(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut in the middle to at most about ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    keep = max(limit - 40, 20)
    head, tail = text[: keep * 3 // 4], text[len(text) - keep // 4 :]
    return f"{head}... [{len(text) - len(head) - len(tail)} characters cut] ...{tail}"


def short_repr(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)``, cut to about ``limit`` characters (for quoting user input in messages)."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        # Cut the value itself (never build the repr of a 10 MB string), saying how much went.
        keep = max(limit - 40, 20)
        head, tail = value[: keep * 3 // 4], value[len(value) - keep // 4 :]
        return f"{head!r}... [{len(value) - len(head) - len(tail)} characters cut] ...{tail!r}"
    return cap(repr(value), limit)


def closest(name: Any, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name closest to ``name`` (``difflib``), or None."""
    close = difflib.get_close_matches(str(name)[:MAX_VALUE_CHARS], list(known), 1, cutoff)
    return close[0] if close else None


def did_you_mean(name: Any, known: Iterable[str], cutoff: float = 0.6) -> str:
    """`` Did you mean 'x'?`` for the closest known name, or an empty string (every did-you-mean)."""
    close = closest(name, known, cutoff)
    return f" Did you mean {close!r}?" if close else ""


class PoserError(Exception):
    """Base class of every error raised on purpose by poser_env.

    Messages are capped at :data:`MAX_MESSAGE_CHARS` characters.
    """

    def __init__(self, *args: Any):
        super().__init__(*(cap(a) if isinstance(a, str) else a for a in args))

    def __str__(self) -> str:
        return cap(super().__str__())

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take other constructor arguments than their message; rebuild from
        # args and attributes so every error survives pickling (subprocess and Ray workers).
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(cls: type, args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(PoserError, ValueError):
    """A configuration value (keyword argument, dataclass field) is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """A name (suite, pool, algorithm, encoder, expert...) is not registered."""

    def __init__(self, what: str, name: str, known: Iterable[str]):
        known = sorted(known)
        self.name = name
        self.known = known
        self.message = cap(
            f"Unknown {what} {short_repr(name)}.{did_you_mean(name, known)} Known {what}s: {', '.join(known)}."
        )
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class UnknownArgumentError(ConfigError):
    """A keyword argument (of a suite, pool, expert spec, encoder, env...) does not exist.

    Not a ``TypeError`` on purpose: ``gym.make`` rewrites a ``TypeError`` from the env's
    constructor into a longer message; a :class:`ConfigError` reaches the user as written.

    Attributes:
        key: The unknown argument.
        valid: The arguments that exist.
    """

    def __init__(self, where: str, key: str, valid: Iterable[str]):
        self.key = key
        self.valid = sorted(valid)
        listing = ", ".join(self.valid) if self.valid else "none (it takes no arguments)"
        super().__init__(
            f"Unknown argument {short_repr(key)} for {where}.{did_you_mean(key, self.valid)} "
            f"Valid arguments: {listing}."
        )


class ArgumentTypeError(ConfigError):
    """A keyword argument has the wrong type (``difficulty=3`` where a string is expected)."""

    def __init__(self, where: str, key: str, expected: str, value: Any):
        self.key = key
        self.expected = expected
        super().__init__(
            f"Argument {key!r} of {where} must be {expected}, got {type(value).__name__} {short_repr(value)}."
        )


class CacheError(ConfigError):
    """The generation cache's directory or database cannot be used (a file where the
    directory should be, no permission, a read-only file system)."""


class OutputPathError(ConfigError):
    """An output path (``--out``, an export path, a run folder) cannot be written. Raised
    before the work that would produce the output starts."""


class MissingDependencyError(PoserError, ImportError, DependencyNotInstalled):
    """An optional dependency (an extra) is needed but not installed (raised by ``poser_env._imports.require``)."""

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
            f"Could not parse {short_repr(unparsed)} in prompt {short_repr(prompt)}{extra}. "
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

    def __init__(
        self, model: str, expert: str, cause: BaseException, hint: str, role: str | None = None
    ):
        self.model = model
        self.expert = expert
        self.cause = cause
        role = role or f"expert {expert!r}"
        super().__init__(
            f"Could not load model {model!r} for {role}: {type(cause).__name__}: {cause}. {hint}"
        )


class ComponentOutputError(PoserError, ValueError):
    """A component returned a value outside its contract: an expert's image of the wrong
    shape or dtype, a NaN or negative cost, a critic's score that is NaN or outside [0, 1].

    Raised inside the environment, which treats it like a failing component: the step is
    truncated, ``info["error"]`` names the component and the bad value, and
    ``info["error_component"]`` says which kind of component it was. Nothing of the bad
    output reaches a reward or an observation.
    """
