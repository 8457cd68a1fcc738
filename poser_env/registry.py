"""One registry shape for every plug-in point, modelled on Gymnasium's ``EnvSpec`` and loader.

A :class:`Registry` maps names to :class:`Spec` s: an entry point (a ``"module:attr"``
string, imported only when it is used, or a callable), default keyword arguments and a
one-line description. Suites, pools, algorithms, text encoders, critics, extractors and
feature extractors each have one. An unknown name raises
:class:`~poser_env.error.UnknownNameError` with the closest known name; a keyword argument
the entry point does not take, :class:`~poser_env.error.UnknownArgumentError`.

>>> shapes = Registry("shape")
>>> shapes.register("box", "builtins:dict", description="a dict", kind="box")
>>> shapes.names(), shapes.make("box", size=2)
(['box'], {'kind': 'box', 'size': 2})
>>> shapes.make("bx")
Traceback (most recent call last):
...
poser_env.error.UnknownNameError: Unknown shape 'bx'. Did you mean 'box'? Known shapes: box.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from poser_env._imports import require
from poser_env.error import (
    ArgumentTypeError,
    ConfigError,
    MissingDependencyError,
    UnknownArgumentError,
    UnknownNameError,
    did_you_mean,
)


def load_entry_point(
    entry_point: str, what: str = "entry point", extra: str | None = None, error=ConfigError
) -> Any:
    """The object a ``"package.module:attribute"`` string names, imported now.

    Args:
        entry_point: The import path.
        what: What it is, for messages (``"algorithm 'dqn'"``).
        extra: The ``image-poser[extra]`` that installs it, for a built-in entry point: a
            missing module then raises :class:`~poser_env.error.MissingDependencyError`.
        error: The :class:`~poser_env.error.ConfigError` subclass to raise.

    Raises:
        ConfigError: (or ``error``) A malformed string, a module that cannot be imported, a
            missing attribute (with the closest one).
        MissingDependencyError: The module (with ``extra``), or a dependency it ``require``s,
            is not installed.
    """
    if not isinstance(entry_point, str) or entry_point.count(":") != 1:
        raise error(
            f"{what}: expected an import path 'package.module:attribute', got {entry_point!r}."
        )
    mod_name, attr = entry_point.split(":")
    try:
        module = require(mod_name, extra, what) if extra else importlib.import_module(mod_name)
    except MissingDependencyError:
        raise
    except ImportError as e:
        raise error(
            f"{what}: cannot import module {mod_name!r} ({e}); check that it is installed or on "
            "PYTHONPATH."
        ) from e
    try:
        return getattr(module, attr)
    except AttributeError as e:
        public = [n for n in dir(module) if not n.startswith("_")]
        raise error(
            f"{what}: module {mod_name!r} has no attribute {attr!r}.{did_you_mean(attr, public)}"
        ) from e


@dataclass(frozen=True)
class Spec:
    """How to build one registered thing.

    Attributes:
        name: Registry name.
        entry_point: ``"module:attr"`` (imported when first used) or a callable.
        kwargs: Default keyword arguments for the entry point.
        description: One line for listings.
    """

    name: str
    entry_point: str | Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def load(self, what: str = "entry point") -> Callable[..., Any]:
        """The entry point itself (imported now when it is a string)."""
        return (
            self.entry_point
            if callable(self.entry_point)
            else load_entry_point(self.entry_point, what)
        )


class Registry(dict[str, Spec]):
    """Name -> :class:`Spec` for one kind of plug-in (``what``: ``"suite"``, ``"pool"``...).

    A ``dict`` of specs, so ``name in registry`` and ``registry.pop(name)`` work as usual.
    """

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(
        self, name: str, entry_point: str | Callable[..., Any], description: str = "", **kwargs: Any
    ) -> None:
        """Register ``entry_point`` under ``name`` (re-registering replaces the old spec)."""
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"{self.what.capitalize()} name must be a non-empty string, got {name!r}."
            )
        self[name] = Spec(name, entry_point, kwargs, description)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self)

    def load(self, name: str) -> Callable[..., Any]:
        """The entry point registered as ``name`` (imported now); UnknownNameError if none is."""
        if not isinstance(name, str) or name not in self:
            raise UnknownNameError(self.what, name, self)
        return self[name].load(f"{self.what} {name!r}")

    def make(self, name: str, where: str | None = None, **kwargs: Any) -> Any:
        """Call the entry point of ``name`` with its defaults updated by ``kwargs``.

        Args:
            name: A registered name.
            where: What is being built, for messages (default ``"<what> '<name>'"``).
            **kwargs: Keyword arguments, checked by :func:`check_kwargs` first.
        """
        factory = self.load(name)
        merged = {**self[name].kwargs, **kwargs}
        check_kwargs(where or f"{self.what} {name!r}", factory, merged)
        return factory(**merged)


# ---------------------------------------------------------------------------- keyword checks
def accepted_arguments(
    func: Callable[..., Any], passed_on: Sequence[str] | None = None
) -> tuple[str, ...] | None:
    """The keyword arguments ``func`` accepts, or None when it takes ``**kwargs`` (anything)
    and ``passed_on`` does not say which keys those ``**kwargs`` take."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # some builtins have none
        return None
    names = tuple(
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    )
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None if passed_on is None else tuple(dict.fromkeys((*names, *passed_on)))
    return names


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


def check_kwargs(
    where: str,
    func: Callable[..., Any],
    kwargs: Mapping[str, Any],
    passed_on: Sequence[str] | None = None,
) -> None:
    """Refuse keyword arguments ``func`` does not take, or whose type contradicts its annotations.

    The one check behind every registry that passes user ``**kwargs`` on (suites, pools,
    encoders, critics, env constructors): an unknown key is named with the closest valid
    key and the full list; a value of the wrong type is named with the type the annotation
    asks for.

    Args:
        where: What is being built, for the message (``"suite 'shapes'"``).
        func: The factory or class that will receive ``kwargs``.
        kwargs: The keyword arguments.
        passed_on: The keys ``func`` passes on through its ``**kwargs``, when known.

    Raises:
        UnknownArgumentError: A key ``func`` does not accept.
        ArgumentTypeError: A value of the wrong type.
    """
    valid = accepted_arguments(func, passed_on)
    if valid is not None:
        for key in kwargs:
            if key not in valid:
                raise UnknownArgumentError(where, key, valid)
    hints = _hints(func)
    for key, value in kwargs.items():
        if key in hints and not _matches(value, hints[key]):
            raise ArgumentTypeError(where, key, _describe(hints[key]), value)
