"""A shared pool of diffusers pipelines: lazy loading, an LRU memory budget, ``from_pipe`` sharing.

Twelve real models do not fit one GPU at once, and a training run calls only a few of them
most of the time. The pool therefore:

* loads a pipeline on first use (never at construction);
* groups pipelines by weights (``ExpertSpec.model`` + dtype + variant): the first pipeline
  of a group is loaded with ``from_pretrained``, the others (a text-to-image and an
  image-to-image expert of the same model) are derived with ``from_pipe`` and share every
  component, so they cost no extra memory;
* keeps the groups in least-recently-used order and evicts the oldest whenever loading a
  new one would exceed ``memory_budget_gb``;
* turns every loading failure into a :class:`ModelLoadError` that names the model and says
  what to do. The environment reports such an error for the step (``truncated=True``)
  instead of crashing the training run.

One lock guards the pool and every pipeline call: diffusers schedulers keep state and are
not thread-safe, and a model must not be evicted while another thread runs it.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ModelLoadError lived here first; it is re-exported so that old imports keep working.
from poser_env.error import ConfigError, MissingDependencyError, ModelLoadError
from poser_env.suites.diffusers.models import ExpertSpec


def require_torch_diffusers(feature: str) -> tuple[Any, Any]:
    """Import torch and diffusers, or raise :class:`MissingDependencyError` naming the extra."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "models", feature) from None
    try:
        import diffusers
    except ImportError:
        raise MissingDependencyError("diffusers", "models", feature) from None
    return torch, diffusers


def resolve_device(device: str) -> str:
    """``"auto"`` becomes ``"cuda"`` when available, else ``"cpu"``; others pass through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} was asked for but CUDA is not available; use device='cpu' or 'auto'.")
    return device


def torch_dtype(name: str, device: str) -> Any:
    """The torch dtype for ``name``; half precision becomes float32 on CPU (fp16 does not run there)."""
    import torch

    if device == "cpu" and name in ("float16", "bfloat16"):
        return torch.float32
    return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[name]


def module_bytes(pipe: Any) -> int:
    """Bytes held by the parameters and buffers of a pipeline's torch modules."""
    import torch

    seen: set[int] = set()
    total = 0
    for component in getattr(pipe, "components", {}).values():
        if not isinstance(component, torch.nn.Module):
            continue
        for t in (*component.parameters(), *component.buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()
    return total


@dataclass
class _Group:
    """The pipelines that share one set of weights."""

    key: tuple[str, str, str | None]
    size_gb: float
    pipelines: dict[str, Any] = field(default_factory=dict)  # pipeline class name -> pipeline
    load_seconds: float = 0.0


class PipelinePool:
    """Loads diffusers pipelines lazily and keeps what fits a memory budget.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cuda"``, ``"cuda:1"`` or ``"cpu"``.
        memory_budget_gb: Most weights (GB) kept resident at once. The default, 70, leaves
            about 10 GB of an 80 GB GPU for activations at 1024x1024.
        model_root: Optional folder of local checkpoints. A spec's ``model`` is looked up
            there first as ``model_root/<model>`` (``org/name`` subfolders) and then as
            ``model_root/<name part of model>``.
        local_files_only: Never contact the hub. ``None`` follows ``HF_HUB_OFFLINE``.

    Attributes:
        lock: Held during loading and during every pipeline call.
        load_log: ``(model, seconds)`` for every load, in order (for ``scripts/gpu_smoke.py``).
    """

    def __init__(
        self,
        device: str = "auto",
        memory_budget_gb: float = 70.0,
        model_root: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
    ):
        require_torch_diffusers("The diffusers expert pool")
        if memory_budget_gb <= 0:
            raise ConfigError(f"memory_budget_gb must be > 0, got {memory_budget_gb}.")
        self.device = resolve_device(device)
        self.memory_budget_gb = float(memory_budget_gb)
        self.model_root = Path(model_root) if model_root is not None else None
        if self.model_root is not None and not self.model_root.is_dir():
            raise ConfigError(f"model_root must be an existing folder, got {str(self.model_root)!r}.")
        if local_files_only is None:
            local_files_only = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
        self.local_files_only = bool(local_files_only)
        self.lock = threading.RLock()
        self._groups: OrderedDict[tuple[str, str, str | None], _Group] = OrderedDict()
        self.load_log: list[tuple[str, float]] = []

    # -- public -------------------------------------------------------------------------
    def resolve_model(self, model: str) -> str:
        """Where ``model`` is loaded from: a folder under ``model_root`` if present, else as given."""
        if self.model_root is not None:
            for candidate in (self.model_root / model, self.model_root / model.rsplit("/", 1)[-1]):
                if candidate.is_dir():
                    return str(candidate)
        return model

    def get(self, spec: ExpertSpec) -> Any:
        """The pipeline for ``spec``, loading (or deriving) it on first use.

        Raises:
            ModelLoadError: if the weights cannot be loaded or derived.
        """
        with self.lock:
            key = self._key(spec)
            group = self._groups.get(key)
            if group is not None:
                self._groups.move_to_end(key)
                pipe = group.pipelines.get(spec.pipeline)
                if pipe is None:
                    pipe = self._derive(spec, group)
                    group.pipelines[spec.pipeline] = pipe
                return pipe
            return self._load(spec, key)

    def resident(self) -> list[str]:
        """Models currently loaded, least recently used first."""
        return [k[0] for k in self._groups]

    def memory_used_gb(self) -> float:
        """Size of the resident weights in GB (measured from the loaded modules)."""
        return sum(g.size_gb for g in self._groups.values())

    def evict(self, model: str) -> bool:
        """Drop every pipeline of ``model``; ``False`` if it was not resident."""
        with self.lock:
            keys = [k for k in self._groups if k[0] == self.resolve_model(model) or k[0] == model]
            for k in keys:
                del self._groups[k]
            if keys:
                self._free()
            return bool(keys)

    def clear(self) -> None:
        """Drop every pipeline."""
        with self.lock:
            self._groups.clear()
            self._free()

    def __getstate__(self) -> dict[str, Any]:
        # Pickling (e.g. to a vector-env worker) carries the configuration, not the weights:
        # the copy loads lazily again in its own process.
        state = self.__dict__.copy()
        state["_groups"] = OrderedDict()
        state["load_log"] = []
        del state["lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()

    # -- internals ----------------------------------------------------------------------
    def _key(self, spec: ExpertSpec) -> tuple[str, str, str | None]:
        return (self.resolve_model(spec.model), spec.dtype, spec.variant)

    def _free(self) -> None:
        gc.collect()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _make_room(self, need_gb: float, keep: tuple[Any, ...] = ()) -> None:
        while self._groups and self.memory_used_gb() + need_gb > self.memory_budget_gb:
            oldest = next((k for k in self._groups if k not in keep), None)
            if oldest is None:
                break
            del self._groups[oldest]
        self._free()

    def _load(self, spec: ExpertSpec, key: tuple[str, str, str | None]) -> Any:
        import torch

        if spec.memory_gb > self.memory_budget_gb and not spec.cpu_offload:
            raise ModelLoadError(
                spec.model,
                spec.name,
                MemoryError(f"needs about {spec.memory_gb:g} GB, budget is {self.memory_budget_gb:g} GB"),
                "Raise memory_budget_gb, set cpu_offload=True in the expert spec, or drop this expert.",
            )
        self._make_room(0.0 if spec.cpu_offload else spec.memory_gb)
        start = time.perf_counter()
        try:
            pipe = self._from_pretrained(spec, key[0])
        except torch.OutOfMemoryError:
            # Our size estimate was too low: free everything else once and retry.
            self.clear()
            try:
                pipe = self._from_pretrained(spec, key[0])
            except torch.OutOfMemoryError as e:
                raise ModelLoadError(
                    spec.model,
                    spec.name,
                    e,
                    "Out of GPU memory even with every other model evicted: set cpu_offload=True, "
                    "use a smaller dtype, or run this expert on another GPU.",
                ) from e
        seconds = time.perf_counter() - start
        size_gb = module_bytes(pipe) / 1e9
        group = _Group(key=key, size_gb=0.0 if spec.cpu_offload else size_gb, load_seconds=seconds)
        group.pipelines[spec.pipeline] = pipe
        self._groups[key] = group
        self._make_room(0.0, keep=(key,))
        if self.memory_used_gb() > self.memory_budget_gb:
            warnings.warn(
                f"Model {spec.model!r} alone takes {size_gb:.1f} GB, over memory_budget_gb={self.memory_budget_gb:g}.",
                stacklevel=3,
            )
        self.load_log.append((spec.model, seconds))
        return pipe

    def _from_pretrained(self, spec: ExpertSpec, where: str) -> Any:
        torch, diffusers = require_torch_diffusers("The diffusers expert pool")
        cls = _pipeline_class(diffusers, spec)
        dtype = torch_dtype(spec.dtype, self.device)
        kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": self.local_files_only}
        if spec.variant is not None:
            kwargs["variant"] = spec.variant
        if "safety_checker" in getattr(cls, "_optional_components", ()):
            # The env's critic judges every image; the SD safety checker would black out
            # images at random from the policy's point of view.
            kwargs["safety_checker"] = None
        try:
            pipe = cls.from_pretrained(where, **kwargs)
        except torch.OutOfMemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - every loading failure becomes one clear error
            raise ModelLoadError(spec.model, spec.name, e, _load_hint(spec, where, self)) from e
        try:
            if spec.cpu_offload and self.device.startswith("cuda"):
                pipe.enable_model_cpu_offload(device=self.device)
            else:
                pipe.to(self.device)
        except torch.OutOfMemoryError:
            del pipe
            self._free()
            raise
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        if spec.compile:
            for attr in ("unet", "transformer"):
                module = getattr(pipe, attr, None)
                if module is not None:
                    setattr(pipe, attr, torch.compile(module))
        return pipe

    def _derive(self, spec: ExpertSpec, group: _Group) -> Any:
        """Build ``spec.pipeline`` from a resident pipeline of the same weights (``from_pipe``)."""
        torch, diffusers = require_torch_diffusers("The diffusers expert pool")
        cls = _pipeline_class(diffusers, spec)
        base = next(iter(group.pipelines.values()))
        # from_pipe casts the shared modules to float32 unless told otherwise, which would
        # silently double the memory of a half-precision group: pass the group's dtype.
        kwargs: dict[str, Any] = {"dtype": base.dtype}
        scheduler = getattr(base, "scheduler", None)
        if scheduler is not None:
            # Schedulers hold per-call state: give the derived pipeline its own copy.
            kwargs["scheduler"] = type(scheduler).from_config(scheduler.config)
        try:
            pipe = cls.from_pipe(base, **kwargs)
        except Exception as e:  # noqa: BLE001
            raise ModelLoadError(
                spec.model,
                spec.name,
                e,
                f"{spec.pipeline} cannot be built from the {type(base).__name__} already loaded for these weights; "
                "give this expert its own model folder or a pipeline of the same family.",
            ) from e
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        return pipe


def _pipeline_class(diffusers: Any, spec: ExpertSpec) -> Any:
    cls = getattr(diffusers, spec.pipeline, None)
    if cls is None:
        raise ConfigError(
            f"Expert {spec.name!r}: diffusers {diffusers.__version__} has no pipeline class {spec.pipeline!r}. "
            "Upgrade diffusers or pick another pipeline."
        )
    return cls


def _load_hint(spec: ExpertSpec, where: str, pool: PipelinePool) -> str:
    if Path(where).is_dir():
        return (
            f"The folder {where!r} exists but is not a complete {spec.pipeline} checkpoint "
            "(model_index.json and component folders written by save_pretrained)."
        )
    if pool.local_files_only:
        return (
            "The hub is off (HF_HUB_OFFLINE=1 or local_files_only=True) and the weights are not in the local "
            f"cache: download them first (`hf download {spec.model}`), or pass model_root=<folder> holding them."
        )
    return (
        "Check the model id and your network; gated models (FLUX.1 [dev], SD3.5) need `hf auth login` and "
        "accepting the licence on the model page."
    )
