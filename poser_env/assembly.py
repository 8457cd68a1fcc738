"""Suite assembly, above :mod:`poser_env.suites` and :mod:`poser_env.pools` (which import the suites' registry)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from poser_env.error import ConfigError
from poser_env.pools import ExpertPool, make_pool
from poser_env.suites.registration import Suite, make_suite


def build_suite(
    suite: str | Suite = "shapes",
    suite_kwargs: dict[str, Any] | None = None,
    experts: Sequence[str] | None = None,
    pool: str | ExpertPool = "local",
    pool_kwargs: dict[str, Any] | None = None,
    cache: Any = None,
) -> tuple[Suite, ExpertPool, Any]:
    """The suite an :class:`~poser_env.envs.image_poser.ImagePoserEnv` runs (the arguments are the env's).

    ``make_suite`` -> ``Suite.select_experts`` -> ``ExpertPool.connect`` -> ``cache.cached_suite``:
    the pool first, the cache around it, so a hit never leaves this process.

    Returns:
        ``(suite, pool, cache_counter)``; ``cache_counter`` is ``None`` without a cache.
    """
    if isinstance(suite, Suite):
        if suite_kwargs:
            raise ConfigError(
                "suite_kwargs only apply to a suite given by name, got a Suite instance too."
            )
    elif isinstance(suite, str):
        suite = make_suite(suite, **(suite_kwargs or {}))
    else:
        raise ConfigError(
            f"suite must be a registered suite name or a Suite, got {type(suite).__name__}."
        )
    if experts is not None:
        suite = suite.select_experts(experts)
    expert_pool = make_pool(pool, **(pool_kwargs or {}))
    suite, counter = expert_pool.connect(suite), None
    if cache is not None:
        from poser_env.cache import cached_suite

        suite, counter = cached_suite(suite, cache)
    return suite, expert_pool, counter
