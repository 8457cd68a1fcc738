"""The suite registry: named factories of experts, critic, extractor and task source.

Modelled on Gymnasium's env registry: a :class:`SuiteSpec` per name, entry points as
``"module:function"`` strings so nothing heavy is imported before a suite is made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from poser_env.components import CommandExtractor, Critic, Expert, TaskSource
from poser_env.error import ConfigError, UnknownNameError


@dataclass
class Suite:
    """A complete set of components for the environment.

    Attributes:
        name: Registry name of the suite.
        experts: The action set, in action-index order.
        critic: Judges every step and gives the reward signal.
        extractor: Turns prompts into commands; reflects on failures.
        tasks: Samples the episode's task.
        image_size: ``(height, width)`` of the images the experts produce.
    """

    name: str
    experts: Sequence[Expert]
    critic: Critic
    extractor: CommandExtractor
    tasks: TaskSource
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        self.experts = tuple(self.experts)
        if not self.experts:
            raise ConfigError(f"Suite {self.name!r} has no experts; a suite needs at least one.")
        names = [e.name for e in self.experts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"Expert names must be unique within suite {self.name!r}; repeated: {dupes}.")
        if not any(e.kind == "t2i" for e in self.experts):
            raise ConfigError(
                f"Suite {self.name!r} needs at least one 't2i' expert to start generation tasks; "
                f"got experts {names}."
            )
        for e in self.experts:
            if e.kind not in ("t2i", "i2i"):
                raise ConfigError(f"Expert {e.name!r} has kind {e.kind!r}; expected 't2i' or 'i2i'.")

    @property
    def expert_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.experts)

    def select_experts(self, names: Sequence[str]) -> Suite:
        """A copy of this suite with only the named experts, in the order given."""
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise ConfigError(f"experts must be a list of expert names, got {names!r}.")
        by_name = {e.name: e for e in self.experts}
        chosen = []
        for n in names:
            if n not in by_name:
                raise UnknownNameError("expert", n, by_name)
            chosen.append(by_name[n])
        return replace(self, experts=tuple(chosen))

    def close(self) -> None:
        for component in (*self.experts, self.critic, self.extractor):
            component.close()


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
    registry[name] = SuiteSpec(name=name, entry_point=entry_point, kwargs=kwargs, description=description)


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


def make_suite(name: str, **kwargs: Any) -> Suite:
    """Build the suite registered as ``name``; ``kwargs`` override the spec's defaults."""
    if name not in registry:
        raise UnknownNameError("suite", name, registry)
    spec = registry[name]
    factory = spec.entry_point if callable(spec.entry_point) else load_entry_point(spec.entry_point)
    suite = factory(**{**spec.kwargs, **kwargs})
    if not isinstance(suite, Suite):
        raise ConfigError(f"Suite entry point {spec.entry_point!r} returned {type(suite).__name__}, expected Suite.")
    return suite
