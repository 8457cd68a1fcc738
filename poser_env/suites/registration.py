"""The suite registry: named factories of experts, critic, extractor and task source.

A :class:`~poser_env.registry.Registry` as for every plug-in point (Gymnasium's env registry
is the model): entry points as ``"module:function"`` strings, so nothing heavy is imported
before a suite is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from poser_env.components import Suite
from poser_env.error import ConfigError
from poser_env.registry import Registry, Spec, accepted_arguments

SuiteSpec = Spec  # the spec of one suite is the generic one
registry: Registry = Registry("suite")


def register_suite(
    name: str,
    entry_point: str | Callable[..., Suite],
    description: str = "",
    **kwargs: Any,
) -> None:
    """Register a suite under ``name`` (re-registering replaces the old spec)."""
    registry.register(name, entry_point, description, **kwargs)


def list_suites() -> list[str]:
    """Names of the registered suites."""
    return registry.names()


def suite_accepts(name: str, key: str) -> bool:
    """Whether suite ``name`` takes the keyword argument ``key`` (``split``, for instance).

    Training code passes ``split`` only to suites that have task splits (Shapes); a suite
    without one (diffusers, with its prompt list) has one task set for training and tests.
    """
    valid = accepted_arguments(registry.load(name))
    return valid is None or key in valid


def make_suite(name: str, **kwargs: Any) -> Suite:
    """Build the suite registered as ``name``; ``kwargs`` override the spec's defaults.

    Raises:
        UnknownNameError: No suite is registered as ``name``.
        UnknownArgumentError: A keyword argument the suite's factory does not take.
        ArgumentTypeError: A keyword argument of the wrong type.
    """
    suite = registry.make(name, **kwargs)
    if not isinstance(suite, Suite):
        raise ConfigError(
            f"Suite entry point {registry[name].entry_point!r} returned {type(suite).__name__}, expected Suite."
        )
    return suite
