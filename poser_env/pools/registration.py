"""The pool registry: names to ``"module:Class"`` entry points, as for suites."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from poser_env.error import ConfigError, UnknownNameError
from poser_env.pools.base import ExpertPool
from poser_env.suites.registration import check_kwargs, load_entry_point

registry: dict[str, str | Callable[..., ExpertPool]] = {
    "local": "poser_env.pools.base:LocalPool",
    "ray": "poser_env.pools.ray_pool:RayPool",
}


def register_pool(name: str, entry_point: str | Callable[..., ExpertPool]) -> None:
    """Register a pool factory under ``name`` (re-registering replaces it)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"Pool name must be a non-empty string, got {name!r}.")
    registry[name] = entry_point


def list_pools() -> list[str]:
    """Names of the registered pools."""
    return sorted(registry)


def make_pool(pool: str | ExpertPool | None = "local", **kwargs: Any) -> ExpertPool:
    """Build the pool registered as ``pool`` with ``kwargs``; an :class:`ExpertPool` passes through.

    Raises:
        UnknownNameError: No pool is registered as ``pool``.
        UnknownArgumentError: A keyword argument (``pool_kwargs`` key) the pool does not
            take; the local pool takes none.
        ArgumentTypeError: A keyword argument of the wrong type.
    """
    if pool is None:
        pool = "local"
    if isinstance(pool, ExpertPool):
        if kwargs:
            raise ConfigError(
                f"pool_kwargs only apply to a pool given by name, got an ExpertPool instance ({pool!r}) too."
            )
        return pool
    if not isinstance(pool, str):
        raise ConfigError(
            f"pool must be a registered pool name or an ExpertPool, got {type(pool).__name__}."
        )
    if pool not in registry:
        raise UnknownNameError("pool", pool, registry)
    entry = registry[pool]
    factory = load_entry_point(entry) if isinstance(entry, str) else entry
    where = f"pool {pool!r} (pool_kwargs)"
    if pool == "local":  # the commonest slip: Ray settings with the default pool
        where = "pool 'local', which runs components in the env's process (pool_kwargs such as 'address' belong to pool='ray')"
    check_kwargs(where, factory, kwargs)
    made = factory(**kwargs)
    if not isinstance(made, ExpertPool):
        raise ConfigError(
            f"Pool entry point for {pool!r} returned {type(made).__name__}, expected an ExpertPool."
        )
    return made
