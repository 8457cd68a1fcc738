"""The :class:`ExpertPool` interface and the in-process :class:`LocalPool`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poser_env.suites.registration import Suite


class ExpertPool(ABC):
    """Runs a suite's experts and critic on behalf of one or many environments.

    :meth:`connect` returns a copy of the suite whose experts and critic are stand-ins
    with the same names, kinds, costs and cache identities: calling them runs the real
    component wherever the pool keeps it. Results must be identical to calling the
    components in-process for the same inputs and seeds.

    A stand-in that cannot reach the pool raises :class:`~poser_env.error.PoolError`
    (after its own timeout and retries, never hanging); the environment reports it as a
    truncated step with ``info["error_component"] == "pool"``.
    """

    #: Registry name (``"local"``, ``"ray"``).
    name: str = "pool"

    @abstractmethod
    def connect(self, suite: Suite) -> Suite:
        """A copy of ``suite`` whose experts and critic run in this pool."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release this process's connection. Shared deployments stay up for other workers."""


class LocalPool(ExpertPool):
    """Every component runs in the env's own process (the default; no extra dependency)."""

    name = "local"

    def connect(self, suite: Suite) -> Suite:
        return suite

    def __repr__(self) -> str:
        return "LocalPool()"
