"""The shared expert pool on Ray Serve: one deployment per expert and one for the critic.

Many env workers (``gym.make_vec(..., vectorization_mode="async")``, SB3's
``SubprocVecEnv``, several machines) send their expert and critic calls to one set of Ray
Serve deployments. Each deployment holds one component (its model loaded once, on the GPU
share its ``ray_actor_options`` ask for) and batches the requests that arrive together
from all workers (``serve.batch``) into one :meth:`~poser_env.components.Expert.call_batch`
or :meth:`~poser_env.components.Critic.judge_batch` call. A worker holds only a client per
component, which sends the call and waits for the answer with a timeout and bounded
retries; when the pool does not answer, the client raises
:class:`~poser_env.error.PoolError` and the env truncates the step with the error in
``info`` (``info["error_component"] == "pool"``).

The deployments form one Serve application whose name hashes the components' cache
identities and the pool's batching settings, so every worker that builds the same suite
finds the same application, and a worker with another suite gets its own. The first
worker to connect deploys it; deployment goes through one named Ray actor, so workers
starting at once never deploy twice. Applications outlive the workers; remove one with
:meth:`RayPool.shutdown` (or ``serve.delete(name)``, or by stopping the cluster).

Where the cluster is: ``address=None`` joins the cluster named by ``RAY_ADDRESS`` or
already initialised in this process, else starts a local one and exports its address as
``RAY_ADDRESS``, so env workers started afterwards from this process join it instead of
starting their own. ``address="auto"`` joins a cluster started with ``ray start --head``
on this machine; ``"ray://host:10001"`` or ``"host:6379"`` a remote one. Every node needs
image-poser (and the suite's extras) installed: components are shipped to the replicas by
pickling.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pickle
import re
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from poser_env._imports import require
from poser_env.cache import canonical_json
from poser_env.components import Critic, Critique, Expert, ExpertResult
from poser_env.constraints import Command, Constraint
from poser_env.error import ConfigError, PoolError
from poser_env.pools.base import ExpertPool

ray = require("ray", "ray", "The shared expert pool (pool='ray')")
serve = require("ray.serve", "ray", "The shared expert pool (pool='ray')")
cloudpickle = require("ray.cloudpickle", "ray", "The shared expert pool (pool='ray')")

NAMESPACE = "image-poser"
DEPLOYER_NAME = "image-poser-deployer"
CRITIC = "critic"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


# ---------------------------------------------------------------------- replica side
class RemoteError(RuntimeError):
    """An exception raised by a component in a replica that could not be sent back as it was."""

    def __init__(self, type_name: str, message: str):
        self.type_name = type_name
        super().__init__(f"{type_name}: {message}")


def _sendable(error: BaseException) -> BaseException:
    # The worker re-raises the component's own exception so that info["error"] reads the
    # same as with the local pool; one that does not survive pickling is described instead.
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RemoteError(type(error).__name__, str(error))


def run_batch(component: Any, method: str, requests: list[tuple]) -> list[Any]:
    """Run ``requests`` through ``component.<method>``; a failing request fails alone.

    Returns one result per request, or the exception that request raised: one bad
    request must not fail the other workers' requests that were batched with it.
    """
    fn = getattr(component, method)
    try:
        results = list(fn(requests))
        if len(results) != len(requests):
            raise RuntimeError(
                f"{method} returned {len(results)} results for {len(requests)} requests"
            )
        return results
    except Exception as batch_error:
        if len(requests) == 1:
            return [_sendable(batch_error)]
    out: list[Any] = []
    for request in requests:  # find the culprit: run the batch one request at a time
        try:
            out.append(fn([request])[0])
        except Exception as e:
            out.append(_sendable(e))
    return out


def replica_device(gpu_share: float, gpu_ids: Sequence[Any]) -> tuple[str, float]:
    """Where a replica's models run: ``("cuda", share)`` with a GPU share Ray assigned, else ``("cpu", 1.0)``."""
    if gpu_share > 0 and gpu_ids:
        return "cuda", min(float(gpu_share), 1.0)
    return "cpu", 1.0


def place_component(component: Any, gpu_share: float, gpu_ids: Sequence[Any]) -> str:
    """Pin a component rebuilt in a replica to the device its Ray resources give it.

    A replica with no GPU share must not touch a GPU: Ray 2.60 no longer hides the GPUs
    from such a process (``CUDA_VISIBLE_DEVICES`` is left as it was), so ``"auto"`` would
    find every GPU and load onto ``cuda:0`` beside the replicas that own it; older Ray hides
    them and a device fixed to ``"cuda"`` fails. The replica therefore hides the GPUs itself
    and calls the component's optional ``place(device, gpu_share)`` (diffusers experts and
    critics have one), so that a replica holding half a GPU plans for half of it.
    """
    device, share = replica_device(gpu_share, gpu_ids)
    place = getattr(component, "place", None)
    if callable(place):
        place(device, share)
    return device


@serve.deployment(max_ongoing_requests=64)
class ComponentReplica:
    """A Serve replica holding one expert or the critic; requests are batched."""

    def __init__(
        self,
        component: bytes,
        method: str,
        max_batch_size: int,
        batch_wait_timeout_s: float,
        gpu_share: float = 0.0,
    ):
        gpu_ids = ray.get_gpu_ids() if gpu_share > 0 else []
        if not gpu_ids:
            # Before anything can initialise CUDA in this process (see place_component).
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        # The component arrives pickled and is rebuilt here, so that one that cannot be
        # rebuilt on this node fails this replica (reported by Serve), not the deployer.
        self.component = cloudpickle.loads(component)
        self.device = place_component(self.component, gpu_share, gpu_ids)
        self.method = method
        self.__call__.set_max_batch_size(max_batch_size)
        self.__call__.set_batch_wait_timeout_s(batch_wait_timeout_s)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def __call__(self, requests: list[tuple]) -> list[Any]:
        # Model code blocks: run it off the event loop so that requests keep queueing for
        # the next batch meanwhile (one batch runs at a time, so no thread-safety issue).
        return await asyncio.to_thread(run_batch, self.component, self.method, list(requests))


@serve.deployment(max_ongoing_requests=64)
class PoolIndex:
    """The application's ingress: describes the pool (and binds its deployments together)."""

    def __init__(self, manifest: dict[str, Any], *deployments: Any):
        self.manifest = manifest

    def __call__(self) -> dict[str, Any]:
        return self.manifest


def _deployment_problems(app_name: str) -> str:
    """What Serve says went wrong with each unhealthy deployment of ``app_name`` (last lines)."""
    status = serve.status().applications.get(app_name)
    if status is None:
        return "Serve has no record of it."
    problems = []
    for name, deployment in status.deployments.items():
        if (
            getattr(deployment.status, "value", deployment.status) != "HEALTHY"
            and deployment.message
        ):
            last = [
                line.strip() for line in deployment.message.strip().splitlines() if line.strip()
            ][-1:]
            problems.append(f"{name}: {' '.join(last)}")
    return "; ".join(problems) or str(status.message)


def _deployed(app_name: str) -> bool:
    """Whether ``app_name`` runs or is being deployed (a failed deployment is redone)."""
    status = serve.status().applications.get(app_name)
    return status is not None and getattr(status.status, "value", status.status) != "DEPLOY_FAILED"


@ray.remote(num_cpus=0, max_concurrency=1)
class _Deployer:
    """One per cluster (a named, detached actor): serialises deployments of applications."""

    def ensure(self, app_name: str, application: Any) -> bool:
        """Deploy ``application`` as ``app_name`` unless it runs already; True if deployed now."""
        if _deployed(app_name):
            return False
        serve.start(proxy_location="Disabled")
        serve.run(application, name=app_name, route_prefix=None)
        return True


# ---------------------------------------------------------------------- worker side
class _Client:
    """Sends calls to one deployment with a per-call timeout and bounded retries."""

    def __init__(self, inner: Any, app_name: str, deployment: str, pool: RayPool):
        self.inner = inner  # kept for its metadata (profiles, specs); never called here
        self.name = inner.name
        self.app_name = app_name
        self.deployment = deployment
        self.address = pool.connected_address
        self.namespace = pool.namespace
        self.timeout_s = pool.timeout_s
        self.max_retries = pool.max_retries
        self.retry_backoff_s = pool.retry_backoff_s
        self._identity = inner.cache_identity()  # the cache then serves both pools alike
        self._handle: Any = None

    def __getattr__(self, attr: str) -> Any:
        # Metadata (a Shapes expert's profile, a diffusers expert's spec) reads through.
        if attr == "inner" or attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None  # a handle belongs to its process; reconnect after unpickling
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def cache_identity(self) -> Any:
        return self._identity

    def _get_handle(self) -> Any:
        if self._handle is None:
            init_ray(self.address, self.namespace)
            self._handle = serve.get_deployment_handle(self.deployment, app_name=self.app_name)
        return self._handle

    def _call(self, request: tuple) -> Any:
        """Send ``request`` once and wait for it; send again only if it was lost.

        A request that times out may be queued or running on the GPU, and a running call
        cannot be cancelled: sending it again would queue the same work twice. So a
        timeout waits again on the same request; only a failure that lost the request (a
        dead replica, a missing or redeployed application) sends it anew. After
        ``max_retries + 1`` waits or sends without an answer the request is cancelled (if
        it has not started yet) and :class:`~poser_env.error.PoolError` is raised.
        """
        errors: list[str] = []
        response = None
        for attempt in range(self.max_retries + 1):
            if response is None:
                if attempt:
                    time.sleep(self.retry_backoff_s * 2 ** (attempt - 1))
                try:
                    response = self._get_handle().remote(request)
                except Exception as e:  # no cluster, missing or redeploying app
                    errors.append(f"attempt {attempt + 1}: {type(e).__name__}: {e}")
                    self._handle = None  # look the deployment up afresh next time
                    continue
            try:
                result = response.result(timeout_s=self.timeout_s)
            except TimeoutError as e:  # includes Ray's GetTimeoutError: still queued or running
                errors.append(
                    f"attempt {attempt + 1}: {type(e).__name__}: no answer yet, kept waiting on the same request"
                )
                continue
            except Exception as e:  # the request was lost: a dead replica, a deleted app
                errors.append(f"attempt {attempt + 1}: {type(e).__name__}: {e}")
                self._handle = None
                response = None
                continue
            if isinstance(result, BaseException):
                raise result  # the component itself failed, as it would in-process
            return result
        if response is not None:
            try:
                response.cancel()  # not started yet: do not run it for nobody
            except Exception:
                pass
        raise PoolError(
            f"The Ray pool did not answer for {self.name!r} (deployment {self.deployment!r} of "
            f"application {self.app_name!r}) after {self.max_retries + 1} attempt(s) of up to "
            f"{self.timeout_s:g} s: {'; '.join(errors)}. Check that the Ray cluster is up "
            "(ray status) and the application is running (serve status); a first call that "
            "loads a large model may need a larger timeout_s."
        )

    def close(self) -> None:
        self._handle = None  # the shared deployment stays up for the other workers


class RayExpert(_Client, Expert):
    """A worker's stand-in for an expert that runs in the Ray pool."""

    def __init__(self, inner: Expert, app_name: str, deployment: str, pool: RayPool):
        super().__init__(inner, app_name, deployment, pool)
        self.kind = inner.kind
        self.cost = inner.cost
        self.description = inner.description

    def __call__(self, command: Command, image: np.ndarray | None, seed: int) -> ExpertResult:
        return self._call((command, image, int(seed)))

    def __repr__(self) -> str:
        return f"RayExpert(name={self.name!r}, kind={self.kind!r}, deployment={self.deployment!r})"


class RayCritic(_Client, Critic):
    """A worker's stand-in for the critic that runs in the Ray pool."""

    def judge(
        self, image: np.ndarray, command: Command | None, prompt_constraints: Sequence[Constraint]
    ) -> Critique:
        return self._call((image, command, tuple(prompt_constraints)))

    def __repr__(self) -> str:
        return f"RayCritic(name={self.name!r}, deployment={self.deployment!r})"


def probe(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast when nothing listens at a ``host:port`` or ``ray://host:port`` address.

    ``ray.init`` itself keeps retrying an unreachable address for minutes.
    """
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms are resolved by Ray itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise PoolError(
            f"Could not reach the Ray cluster at {address!r}: {type(e).__name__}: {e}. Start one with "
            "`ray start --head` (then address='auto' on that machine, or 'HEAD_IP:6379' elsewhere), or "
            "pass address=None to start a local one."
        ) from e


def init_ray(address: str | None, namespace: str, **init_kwargs: Any) -> str:
    """Join (or start) the Ray cluster; returns its address.

    See the module docstring for what ``address=None`` does.
    """
    if not ray.is_initialized():
        if address is not None:
            probe(address)
        started_here = address is None and not os.environ.get("RAY_ADDRESS")
        kwargs: dict[str, Any] = {"namespace": namespace, "log_to_driver": False, **init_kwargs}
        if started_here:
            kwargs.setdefault("include_dashboard", False)
        ray.init(address=address, **kwargs)
        if started_here:
            os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    return ray.get_runtime_context().gcs_address


def _deployment_name(prefix: str, name: str) -> str:
    return f"{prefix}-{_SAFE.sub('_', name)}"


class RayPool(ExpertPool):
    """The suite's experts and critic as Ray Serve deployments shared by every env worker.

    Args:
        address: The Ray cluster to use: ``None`` (join ``RAY_ADDRESS`` or this process's
            Ray, else start a local one), ``"auto"``, ``"host:6379"`` or
            ``"ray://host:10001"``.
        app_name: Serve application name; default ``"image-poser-<suite>-<hash>"`` from the
            components' cache identities, so equal suites share one application.
        timeout_s: Seconds a worker waits for an answer before waiting again (a request
            that times out is not sent twice: it may be running). Real experts take seconds
            per call, a first call also loads the model (minutes for a 12B FLUX from a slow
            disk), and requests queue behind other workers': keep it generous.
        max_retries: Further waits after a timeout, or sends after a lost request, before
            :class:`~poser_env.error.PoolError`. A component's own exception is not retried.
        retry_backoff_s: Wait before the first retry; doubles after each.
        max_batch_size: Most requests one deployment serves in one batch.
        batch_wait_timeout_s: How long a deployment waits for a batch to fill.
        num_replicas: Replicas per deployment (each holds its own copy of the model).
        actor_options: Ray actor options of every replica (``num_cpus``, ``num_gpus``,
            ``memory``, ``resources``, ``runtime_env``). Default ``{"num_cpus": 0}``:
            replicas reserve nothing, so a small machine can hold a whole pool.
        expert_options: Per-component overrides of ``actor_options``, keyed by expert name
            or ``"critic"``, e.g. ``{"sdxl": {"num_gpus": 0.5}}`` gives that expert half a
            GPU (see docs/scaling.md for a worked multi-GPU config). A replica's models run
            where its resources say: with ``num_gpus`` on the GPU Ray assigns (a diffusers
            expert's memory budget scaled by that share), without it on the CPU with the
            GPUs hidden from the process (:func:`place_component`).
        deploy: If True (default), deploy the application when it is missing; if False,
            only join one that runs already (a :class:`~poser_env.error.PoolError` if not).
        namespace: Ray namespace of the deployer actor and of this process's connection.
        ray_init_kwargs: Extra ``ray.init`` arguments when this process starts or joins Ray.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        app_name: str | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 2,
        retry_backoff_s: float = 1.0,
        max_batch_size: int = 8,
        batch_wait_timeout_s: float = 0.01,
        num_replicas: int = 1,
        actor_options: Mapping[str, Any] | None = None,
        expert_options: Mapping[str, Mapping[str, Any]] | None = None,
        deploy: bool = True,
        namespace: str = NAMESPACE,
        ray_init_kwargs: Mapping[str, Any] | None = None,
    ):
        for field, value, lo in (
            ("timeout_s", timeout_s, 1e-3),
            ("retry_backoff_s", retry_backoff_s, 0.0),
            ("batch_wait_timeout_s", batch_wait_timeout_s, 0.0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < lo:
                raise ConfigError(f"RayPool {field} must be a number >= {lo:g}, got {value!r}.")
        for field, value, lo in (
            ("max_retries", max_retries, 0),
            ("max_batch_size", max_batch_size, 1),
            ("num_replicas", num_replicas, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ConfigError(f"RayPool {field} must be an integer >= {lo}, got {value!r}.")
        if address is not None and not isinstance(address, str):
            raise ConfigError(
                f"RayPool address must be None or a string such as 'auto' or 'ray://host:10001', got {address!r}."
            )
        self.address = address
        self.app_name = app_name
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.retry_backoff_s = float(retry_backoff_s)
        self.max_batch_size = max_batch_size
        self.batch_wait_timeout_s = float(batch_wait_timeout_s)
        self.num_replicas = num_replicas
        self.actor_options = dict(actor_options) if actor_options is not None else {"num_cpus": 0}
        self.expert_options = {k: dict(v) for k, v in (expert_options or {}).items()}
        self.deploy = bool(deploy)
        self.namespace = namespace
        self.ray_init_kwargs = dict(ray_init_kwargs or {})
        self.connected_address: str | None = address
        self.connected_apps: list[str] = []

    # -------------------------------------------------------------------- connect
    def connect(self, suite: Any) -> Any:
        unknown = sorted(set(self.expert_options) - {*suite.expert_names, CRITIC})
        if unknown:
            raise ConfigError(
                f"RayPool expert_options names {unknown}, which are not in suite {suite.name!r}; "
                f"expected expert names {list(suite.expert_names)} or 'critic'."
            )
        self.connected_address = init_ray(self.address, self.namespace, **self.ray_init_kwargs)
        app_name = self.app_name or self.default_app_name(suite)
        names = [_deployment_name("expert", e.name) for e in suite.experts]
        if len(set(names)) != len(names):
            raise ConfigError(
                f"Expert names {list(suite.expert_names)} collide once made safe for Serve deployment names: {names}."
            )
        if not _deployed(app_name):
            if not self.deploy:
                raise PoolError(
                    f"No Serve application {app_name!r} runs on the Ray cluster at {self.connected_address} "
                    "and deploy=False; deploy it first (RayPool(...).connect(suite) in the driver) or pass deploy=True."
                )
            deployer = _Deployer.options(
                name=DEPLOYER_NAME,
                namespace=self.namespace,
                get_if_exists=True,
                lifetime="detached",
            ).remote()
            try:
                ray.get(deployer.ensure.remote(app_name, self._application(suite, names)))
            except Exception as e:  # a replica that cannot build its component, no resources...
                raise PoolError(
                    f"Deploying the pool application {app_name!r} on the Ray cluster at "
                    f"{self.connected_address} failed. {_deployment_problems(app_name)}"
                ) from e
        if app_name not in self.connected_apps:  # one pool may serve several envs
            self.connected_apps.append(app_name)
        experts = tuple(
            RayExpert(e, app_name, n, self) for e, n in zip(suite.experts, names, strict=True)
        )
        critic = RayCritic(suite.critic, app_name, CRITIC, self)
        return replace(suite, experts=experts, critic=critic)

    def default_app_name(self, suite: Any) -> str:
        """``image-poser-<suite>-<hash>``; the hash covers every identity and batching setting."""
        described = {
            "experts": [e.cache_identity() for e in suite.experts],
            "critic": suite.critic.cache_identity(),
            "batching": [self.max_batch_size, self.batch_wait_timeout_s, self.num_replicas],
            "options": [self.actor_options, self.expert_options],
        }
        digest = hashlib.sha256(canonical_json(described)).hexdigest()[:12]
        return f"image-poser-{_SAFE.sub('_', suite.name)}-{digest}"

    def _application(self, suite: Any, names: list[str]) -> Any:
        def bound(component: Any, deployment: str, key: str, method: str) -> Any:
            options = {**self.actor_options, **self.expert_options.get(key, {})}
            gpu_share = float(options.get("num_gpus", 0) or 0)
            return ComponentReplica.options(
                name=deployment, num_replicas=self.num_replicas, ray_actor_options=options
            ).bind(
                cloudpickle.dumps(component),
                method,
                self.max_batch_size,
                self.batch_wait_timeout_s,
                gpu_share,
            )

        deployments = [
            bound(e, n, e.name, "call_batch") for e, n in zip(suite.experts, names, strict=True)
        ]
        deployments.append(bound(suite.critic, CRITIC, CRITIC, "judge_batch"))
        manifest = {
            "suite": suite.name,
            "experts": {
                e.name: {"kind": e.kind, "deployment": n}
                for e, n in zip(suite.experts, names, strict=True)
            },
            "critic": {"name": suite.critic.name, "deployment": CRITIC},
        }
        return PoolIndex.options(ray_actor_options={"num_cpus": 0}).bind(manifest, *deployments)

    # -------------------------------------------------------------------- teardown
    def shutdown(self, app_name: str | None = None) -> None:
        """Delete ``app_name`` (default: the applications this pool connected to) from the cluster.

        Every worker using it then gets :class:`~poser_env.error.PoolError` on its next call.
        """
        for name in [app_name] if app_name else list(self.connected_apps):
            serve.delete(name)
            if name in self.connected_apps:
                self.connected_apps.remove(name)

    def __repr__(self) -> str:
        return (
            f"RayPool(address={self.address!r}, app_name={self.app_name!r}, "
            f"timeout_s={self.timeout_s:g}, max_retries={self.max_retries})"
        )


def list_pools(address: str | None = None, namespace: str = NAMESPACE) -> dict[str, str]:
    """The image-poser pool applications on the cluster and their Serve status."""
    init_ray(address, namespace)
    return {
        name: str(getattr(app.status, "value", app.status))
        for name, app in sorted(serve.status().applications.items())
        if name.startswith("image-poser-")
    }


def describe(
    app_name: str, address: str | None = None, namespace: str = NAMESPACE
) -> dict[str, Any]:
    """The manifest of a running pool application: its suite, experts and critic."""
    init_ray(address, namespace)
    return serve.get_app_handle(app_name).remote().result(timeout_s=60)


__all__ = [
    "ComponentReplica",
    "PoolIndex",
    "RayCritic",
    "RayExpert",
    "RayPool",
    "RemoteError",
    "describe",
    "init_ray",
    "list_pools",
    "place_component",
    "replica_device",
    "run_batch",
]
