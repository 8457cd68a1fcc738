"""The shared loader of diffusers pipelines: lazy loading, an LRU memory budget, ``from_pipe`` sharing.

Twelve real models do not fit one GPU at once, and a training run calls only a few of them
most of the time. The loader therefore:

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

One lock guards the loader and every pipeline call: diffusers schedulers keep state and are
not thread-safe, and a model must not be evicted while another thread runs it.
"""

from __future__ import annotations

import gc
import os
import re
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poser_env._imports import require
from poser_env.error import ConfigError, MissingDependencyError, ModelLoadError, closest, short_repr
from poser_env.suites.diffusers.models import ExpertSpec


def require_torch_diffusers(feature: str) -> tuple[Any, Any]:
    """Import torch and diffusers, or raise :class:`MissingDependencyError` naming the extra."""
    return require("torch", "models", feature), require("diffusers", "models", feature)


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_DEVICES = ("auto", "cpu", "cuda", "cuda:0", "cuda:1", "mps")


def check_device(device: Any, where: str = "device") -> str:
    """Refuse a device string torch cannot use here, when the object is built (not on the first step).

    Accepts ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and ``"mps"``.

    Raises:
        ConfigError: anything else (``"tpu"``, ``"gpu"``, ``3``), naming the closest valid one.
    """
    if not isinstance(device, str) or not _DEVICE.match(device):
        near = closest(device, _DEVICES)
        hint = f" Did you mean {near!r}?" if near else ""
        raise ConfigError(
            f"{where} must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {short_repr(device)}.{hint} "
            "(TPUs and other accelerators are not supported by the diffusers suite.)"
        )
    return device


def placed_device(requested: str, given: str, what: str) -> str:
    """The device for a component whose Ray replica was given ``given`` (``"cuda"`` or ``"cpu"``).

    Raises:
        ConfigError: the component was built for an explicit CUDA device but its replica has
            no GPU share (it would fail, or land on a GPU another replica owns).
    """
    check_device(given)
    if requested.startswith("cuda") and given == "cpu":
        raise ConfigError(
            f"{what} were built with device={requested!r} but their Ray replica has no GPU share. Give the replica "
            "one (RayPool(expert_options={name: {'num_gpus': 1}}) or actor_options) or build the suite with "
            "device='auto'."
        )
    if requested in ("cpu", "mps"):
        return requested  # asked for explicitly: a GPU share does not change it
    # In a replica the assigned GPUs are renumbered from 0 (CUDA_VISIBLE_DEVICES): "cuda:1" is "cuda" there.
    return given


def card_gb(device: str) -> float:
    """Total memory of a CUDA device in GB (10^9 bytes)."""
    import torch

    return torch.cuda.get_device_properties(torch.device(device)).total_memory / 1e9


def resolve_device(device: str) -> str:
    """``"auto"`` becomes ``"cuda"`` when available, else ``"cpu"``; others pass through."""
    import torch

    check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r} was asked for but CUDA is not available; use device='cpu' or 'auto'."
        )
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


class PipelineLoader:
    """Loads diffusers pipelines lazily and keeps what fits a memory budget.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cuda"``, ``"cuda:1"``, ``"mps"`` or
            ``"cpu"``. ``"auto"`` is resolved in the process that loads the first model (a
            Ray replica decides for itself, see :meth:`place`); an explicit CUDA device is
            checked at once.
        memory_budget_gb: Most expert weights (GB) kept resident at once. The suite's
            default is the expert budget of the 80 GB memory plan
            (:data:`~poser_env.suites.diffusers.memory.DEFAULT_EXPERT_BUDGET_GB`), which
            leaves room for the critic, the extractor and one call's activations.
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
        memory_budget_gb: float | None = None,
        model_root: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
    ):
        require_torch_diffusers("The diffusers pipeline loader")
        if memory_budget_gb is None:
            from poser_env.suites.diffusers.memory import DEFAULT_EXPERT_BUDGET_GB

            memory_budget_gb = DEFAULT_EXPERT_BUDGET_GB
        if (
            isinstance(memory_budget_gb, bool)
            or not isinstance(memory_budget_gb, (int, float))
            or not memory_budget_gb > 0
        ):
            raise ConfigError(
                f"memory_budget_gb must be a number > 0 (GB), got {short_repr(memory_budget_gb)}."
            )
        self.device_request = check_device(device)
        # "auto" stays unresolved until a model loads, in the process that loads it.
        self._device: str | None = None if device == "auto" else resolve_device(device)
        self.memory_budget_gb = float(memory_budget_gb)
        self.model_root = Path(model_root) if model_root is not None else None
        if self.model_root is not None and not self.model_root.is_dir():
            raise ConfigError(
                f"model_root must be an existing folder, got {str(self.model_root)!r}."
            )
        if local_files_only is None:
            local_files_only = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
        self.local_files_only = bool(local_files_only)
        self.lock = threading.RLock()
        self._groups: OrderedDict[tuple[str, str, str | None], _Group] = OrderedDict()
        self.load_log: list[tuple[str, float]] = []

    # -- public -------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """The torch device the pipelines run on (``"auto"`` resolved on first use)."""
        if self._device is None:
            self._device = resolve_device(self.device_request)
        return self._device

    def place(self, device: str, gpu_share: float = 1.0) -> None:
        """Pin this loader (in a Ray replica, before anything loads) to ``device`` and a GPU share.

        A replica holding ``gpu_share`` of a GPU (``num_gpus=0.5``) keeps at most that share
        of the card for weights (``min(memory_budget_gb, gpu_share * card memory)``), so
        replicas sharing one card do not each plan for the whole card; one with no GPU share
        runs on the CPU.

        Raises:
            ConfigError: models are already loaded, or the share is not in (0, 1].
        """
        if self._groups:
            raise ConfigError(
                f"PipelineLoader.place({device!r}) after models were loaded ({self.resident()})."
            )
        if not 0.0 < gpu_share <= 1.0:
            raise ConfigError(f"gpu_share must be in (0, 1], got {gpu_share!r}.")
        device = placed_device(self.device_request, device, "The diffusers experts")
        self.device_request = device
        self._device = resolve_device(device)
        if self._device.startswith("cuda") and gpu_share < 1.0:
            self.memory_budget_gb = min(
                self.memory_budget_gb, float(gpu_share) * card_gb(self._device)
            )

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
        if state["device_request"] == "auto":
            state["_device"] = None  # the copy's process decides ("auto" in a Ray replica)
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

        need = spec.resident_gb
        if need > self.memory_budget_gb:
            what = " while it runs with cpu_offload" if spec.cpu_offload else ""
            raise ModelLoadError(
                spec.model,
                spec.name,
                MemoryError(
                    f"needs about {need:g} GB{what}, budget is {self.memory_budget_gb:g} GB"
                ),
                "Raise memory_budget_gb (see `python -m poser_env pool plan`), set cpu_offload=True in the expert "
                "spec, or drop this expert.",
            )
        self._make_room(need)
        start = time.perf_counter()
        pipe = self._try_from_pretrained(spec, key[0])
        if pipe is None:
            # Our size estimate was too low. The failed attempt is gone by now (see
            # _try_from_pretrained), so evicting the other groups really frees memory.
            self.clear()
            pipe = self._try_from_pretrained(spec, key[0])
            if pipe is None:
                raise ModelLoadError(
                    spec.model,
                    spec.name,
                    MemoryError(
                        f"out of GPU memory loading {spec.model} with every other model evicted"
                    ),
                    "Set cpu_offload=True, use a smaller dtype, lower memory_budget_gb so the critic and extractor "
                    "keep their room, or run this expert on another GPU.",
                )
        seconds = time.perf_counter() - start
        size_gb = module_bytes(pipe) / 1e9
        # An offloaded pipeline lives on the CPU but needs room for its largest component
        # while it runs: it keeps that much of the budget (resident_gb), not zero.
        group = _Group(key=key, size_gb=need if spec.cpu_offload else size_gb, load_seconds=seconds)
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

    def _try_from_pretrained(self, spec: ExpertSpec, where: str) -> Any:
        """The loaded pipeline, or ``None`` after an out-of-memory error.

        The retry must not happen inside the ``except`` block: while the exception is
        being handled its traceback keeps every frame of the failed load alive, and with
        them the half-moved pipeline's GPU tensors, so evicting other models would not free
        enough. Returning ``None`` ends the handling, then the memory is released.
        """
        import torch

        try:
            return self._from_pretrained(spec, where)
        except torch.OutOfMemoryError:
            pass
        self._free()
        return None

    def _from_pretrained(self, spec: ExpertSpec, where: str) -> Any:
        torch, diffusers = require_torch_diffusers("The diffusers pipeline loader")
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
            raise ModelLoadError(spec.model, spec.name, e, _load_hint(spec, where, self, e)) from e
        oom = False
        try:
            if spec.cpu_offload and self.device.startswith("cuda"):
                pipe.enable_model_cpu_offload(device=self.device)
            else:
                pipe.to(self.device)
        except torch.OutOfMemoryError:
            oom = True
        if oom:
            # Outside the handler, so that the traceback's frames (holding modules half on
            # the GPU) are gone; a fresh error carries no reference to them.
            del pipe
            self._free()
            raise torch.OutOfMemoryError(f"CUDA out of memory moving {spec.model} to {self.device}")
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
        torch, diffusers = require_torch_diffusers("The diffusers pipeline loader")
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


def require_spec_packages(specs: Any) -> None:
    """Check, when the suite is built, the packages the experts' tokenizers need (``spec.needs``).

    Under transformers 5, a T5 tokenizer shipped only as ``spiece.model`` (PixArt-Sigma,
    SD3.5, FLUX) is converted with sentencepiece and protobuf; without them the first call of
    that expert would fail minutes into a run.

    Raises:
        MissingDependencyError: naming the package, the experts and ``image-poser[models]``.
    """
    import importlib.util

    missing: dict[str, list[str]] = {}
    for spec in specs:
        for module in spec.needs:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.setdefault(module, []).append(spec.name)
    if missing:
        module, names = next(iter(missing.items()))
        package = {"google.protobuf": "protobuf"}.get(module, module)
        raise MissingDependencyError(
            package, "models", f"The tokenizer of expert(s) {', '.join(names)}"
        )


def _pipeline_class(diffusers: Any, spec: ExpertSpec) -> Any:
    cls = getattr(diffusers, spec.pipeline, None)
    if cls is None:
        raise ConfigError(
            f"Expert {spec.name!r}: diffusers {diffusers.__version__} has no pipeline class {spec.pipeline!r}. "
            "Upgrade diffusers or pick another pipeline."
        )
    return cls


def gated_hint(model: str) -> str:
    """What to do about a gated hub repository."""
    return (
        f"{model} is a gated repository: open https://huggingface.co/{model} with your Hugging Face account and "
        "accept its licence, then log in on this machine (`hf auth login`, or set HF_TOKEN). Or drop this "
        "expert (the 'experts' argument)."
    )


def is_gated_error(error: BaseException) -> bool:
    """Whether ``error`` (or its causes) says the repository is gated or the token is refused."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = f"{type(e).__name__} {e}".lower()
        if (
            "gatedrepo" in text
            or "gated repo" in text
            or "401" in text
            or "403" in text
            or "restricted" in text
        ):
            return True
        e = e.__cause__ or e.__context__
    return False


def _load_hint(
    spec: ExpertSpec, where: str, loader: PipelineLoader, error: BaseException | None = None
) -> str:
    if Path(where).is_dir():
        return (
            f"The folder {where!r} exists but is not a complete {spec.pipeline} checkpoint "
            "(model_index.json and component folders written by save_pretrained)."
        )
    gated = spec.gated or (error is not None and is_gated_error(error))
    if loader.local_files_only:
        also = f" It is also gated: {gated_hint(spec.model)}" if gated else ""
        return (
            "The hub is off (HF_HUB_OFFLINE=1 or local_files_only=True) and the weights are not in the local "
            f"cache: download them first (`hf download {spec.model}`), or pass model_root=<folder> holding them.{also}"
        )
    if gated:
        return gated_hint(spec.model)
    return (
        "Check the model id and your network. If the repository is gated, accept its licence on "
        f"https://huggingface.co/{spec.model} and log in (`hf auth login` or HF_TOKEN)."
    )
