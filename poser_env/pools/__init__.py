"""Where a suite's experts and critic run: in the env's own process, or in a shared pool.

``gym.make("ImagePoser-v0", pool="local")`` (the default) calls the experts and the critic
in the env's process, as they are. ``pool="ray"`` runs each of them as a Ray Serve
deployment that every env worker on the cluster shares; the env then holds only a
lightweight client per component (see :mod:`poser_env.pools.ray_pool` and
``docs/scaling.md``). The extractor and the task source always stay in the env's process.

Pools are registered like suites: :func:`register_pool` with a ``"module:Class"`` entry
point, :func:`make_pool` to build one, so ``ray`` is imported only when it is used.
"""

from poser_env.pools.base import ExpertPool, LocalPool
from poser_env.pools.registration import list_pools, make_pool, register_pool

__all__ = ["ExpertPool", "LocalPool", "list_pools", "make_pool", "register_pool"]
