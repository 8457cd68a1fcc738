"""The pool registry: a :class:`~poser_env.registry.Registry` of ``"module:Class"`` entry points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from poser_env.error import ConfigError
from poser_env.pools.base import ExpertPool
from poser_env.registry import Registry

registry: Registry = Registry("pool")
registry.register("local", "poser_env.pools.base:LocalPool", "components in the env's process")
registry.register("ray", "poser_env.pools.ray_pool:RayPool", "Ray Serve deployments (extra 'ray')")


def register_pool(name: str, entry_point: str | Callable[..., ExpertPool]) -> None:
    """Register a pool factory under ``name`` (re-registering replaces it)."""
    registry.register(name, entry_point)


def list_pools() -> list[str]:
    """Names of the registered pools."""
    return registry.names()


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
    where = f"pool {pool!r} (pool_kwargs)"
    if pool == "local":  # the commonest slip: Ray settings with the default pool
        where = (
            "pool 'local', which runs components in the env's process "
            "(pool_kwargs such as 'address' belong to pool='ray')"
        )
    made = registry.make(pool, where=where, **kwargs)
    if not isinstance(made, ExpertPool):
        raise ConfigError(
            f"Pool entry point for {pool!r} returned {type(made).__name__}, expected an ExpertPool."
        )
    return made
