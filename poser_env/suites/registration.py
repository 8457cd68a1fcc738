"""The suite registry: named factories of experts, critic, extractor and task source.

Modelled on Gymnasium's env registry: a :class:`SuiteSpec` per name, entry points as
``"module:function"`` strings so nothing heavy is imported before a suite is made.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from poser_env.components import Suite
from poser_env.error import ArgumentTypeError, ConfigError, UnknownArgumentError, UnknownNameError


@dataclass(frozen=True)
class SuiteSpec:
    """How to build a suite.

    Attributes:
        name: Registry name.
        entry_point: ``"module:function"`` (or a callable) returning a :class:`Suite`.
        kwargs: Default keyword arguments for the entry point.
        description: One line for listings.
    """

    name: str
    entry_point: str | Callable[..., Suite]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


registry: dict[str, SuiteSpec] = {}


def register_suite(
    name: str,
    entry_point: str | Callable[..., Suite],
    description: str = "",
    **kwargs: Any,
) -> None:
    """Register a suite under ``name`` (re-registering replaces the old spec)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"Suite name must be a non-empty string, got {name!r}.")
    registry[name] = SuiteSpec(
        name=name, entry_point=entry_point, kwargs=kwargs, description=description
    )


def list_suites() -> list[str]:
    """Names of the registered suites."""
    return sorted(registry)


def load_entry_point(entry_point: str) -> Callable[..., Any]:
    """The object a ``"module:attribute"`` string names (suites, pools), imported now."""
    if ":" not in entry_point:
        raise ConfigError(f"Entry point must look like 'module:function', got {entry_point!r}.")
    module_name, attr = entry_point.split(":", 1)
    module = importlib.import_module(module_name)
    return getattr(module, attr)


# ---------------------------------------------------------------------------- keyword checks
def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have none
        return None


def accepted_arguments(func: Callable[..., Any]) -> tuple[str, ...] | None:
    """The keyword arguments ``func`` accepts, or None when it takes ``**kwargs`` (anything)."""
    sig = _signature(func)
    if sig is None:
        return None
    params = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return tuple(
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    )


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    target = func.__init__ if inspect.isclass(func) else func
    try:
        return typing.get_type_hints(target)
    except Exception:  # a forward reference that only resolves under TYPE_CHECKING (SB3's)
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(inspect.unwrap(target), "__globals__", {})
    for name, ann in getattr(target, "__annotations__", {}).items():
        try:  # one at a time: the others are still checked
            hints[name] = eval(ann, namespace) if isinstance(ann, str) else ann  # noqa: S307 - the code's own annotations
        except Exception:
            continue
    return hints


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_describe(a) for a in args))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    names = {bool: "a bool", int: "an int", float: "a number", str: "a string", type(None): "None"}
    if hint in names:
        return names[hint]
    base = origin or hint
    if base in (list, tuple, collections.abc.Sequence):
        return "a list"
    if base in (dict, collections.abc.Mapping):
        return "a mapping"
    if base is collections.abc.Callable:
        return "a callable"
    return f"a {getattr(base, '__name__', str(base))}"


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint``; True whenever that cannot be told."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, (str, typing.TypeVar)):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if hint is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        )
    if hint is str:
        return isinstance(value, str)
    base = origin or hint
    if base in (list, tuple):
        return isinstance(value, (list, tuple))  # YAML and JSON give lists for tuples
    if base is collections.abc.Sequence:
        # A bare string is a sequence of characters, never the list of names meant.
        return isinstance(value, collections.abc.Sequence) and not isinstance(value, (str, bytes))
    if base in (dict, collections.abc.Mapping):
        return isinstance(value, Mapping)
    if base is collections.abc.Callable:
        return callable(value)
    if inspect.isclass(base):
        try:
            return isinstance(value, base)
        except TypeError:
            return True
    return True


def check_kwargs(where: str, func: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Refuse keyword arguments ``func`` does not take, or whose type contradicts its annotations.

    The one check behind every registry that passes user ``**kwargs`` on (suites, pools,
    env constructors): an unknown key is named with the closest valid key and the full
    list; a value of the wrong type is named with the type the annotation asks for.

    Args:
        where: What is being built, for the message (``"suite 'shapes'"``).
        func: The factory or class that will receive ``kwargs``.
        kwargs: The keyword arguments.

    Raises:
        UnknownArgumentError: A key ``func`` does not accept.
        ArgumentTypeError: A value of the wrong type.
    """
    valid = accepted_arguments(func)
    if valid is not None:
        for key in kwargs:
            if key not in valid:
                raise UnknownArgumentError(where, key, valid)
    hints = _hints(func)
    for key, value in kwargs.items():
        if key in hints and not _matches(value, hints[key]):
            raise ArgumentTypeError(where, key, _describe(hints[key]), value)


def suite_factory(name: str) -> Callable[..., Suite]:
    """The factory registered as suite ``name`` (imported now)."""
    if not isinstance(name, str) or name not in registry:
        raise UnknownNameError("suite", name, registry)
    spec = registry[name]
    return spec.entry_point if callable(spec.entry_point) else load_entry_point(spec.entry_point)


def suite_accepts(name: str, key: str) -> bool:
    """Whether suite ``name`` takes the keyword argument ``key`` (``split``, for instance).

    Training code passes ``split`` only to suites that have task splits (Shapes); a suite
    without one (diffusers, with its prompt list) has one task set for training and tests.
    """
    valid = accepted_arguments(suite_factory(name))
    return valid is None or key in valid


def make_suite(name: str, **kwargs: Any) -> Suite:
    """Build the suite registered as ``name``; ``kwargs`` override the spec's defaults.

    Raises:
        UnknownNameError: No suite is registered as ``name``.
        UnknownArgumentError: A keyword argument the suite's factory does not take.
        ArgumentTypeError: A keyword argument of the wrong type.
    """
    spec_kwargs = registry[name].kwargs if isinstance(name, str) and name in registry else {}
    factory = suite_factory(name)
    merged = {**spec_kwargs, **kwargs}
    check_kwargs(f"suite {name!r}", factory, merged)
    spec = registry[name]
    suite = factory(**merged)
    if not isinstance(suite, Suite):
        raise ConfigError(
            f"Suite entry point {spec.entry_point!r} returned {type(suite).__name__}, expected Suite."
        )
    return suite
