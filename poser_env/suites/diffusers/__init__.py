"""The real-model suite: diffusers experts, a VLM (or HTTP, or CLIP) critic, an LLM (or rules) extractor.

Registered as ``"diffusers"``::

    env = gym.make("ImagePoser-v0", suite="diffusers")                             # one 80 GB GPU
    env = gym.make("ImagePoser-v0", suite="diffusers", suite_kwargs={"preset": "24gb"})  # a 24 GB card

Importing this package needs no heavy dependency; :func:`make_diffusers_suite` raises
:class:`~poser_env.error.MissingDependencyError` naming ``pip install "image-poser[models]"``
when torch or diffusers is missing. Models load lazily, on first use. See
``docs/real_pool.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from poser_env.components import CommandExtractor, Critic, TaskSource
from poser_env.error import ConfigError, UnknownNameError
from poser_env.registry import Registry, accepted_arguments, check_kwargs
from poser_env.suites.diffusers.models import (
    DEFAULT_CATALOG,
    DEFAULT_POOL,
    ExpertSpec,
    catalog_table,
    default_pool,
    pool_table,
)
from poser_env.suites.registration import Suite

__all__ = [
    "CRITICS",
    "DEFAULT_CATALOG",
    "DEFAULT_POOL",
    "ExpertSpec",
    "catalog_table",
    "default_pool",
    "make_critic",
    "make_diffusers_suite",
    "pool_table",
]


#: The critics of the diffusers suite (``critic=``).
CRITICS = Registry("critic")
CRITICS.register("vlm", f"{__name__}.critics:VLMCritic", "a local VLM, VQAScore")
CRITICS.register("http", f"{__name__}.critics:HTTPCritic", "an OpenAI-compatible server")
CRITICS.register("clip", f"{__name__}.critics:CLIPCritic", "open_clip similarity")


def make_critic(kind: str | Critic, device: str = "auto", **kwargs: Any) -> Critic:
    """``"vlm"``, ``"http"`` or ``"clip"`` (or a critic instance, returned as is)."""
    if isinstance(kind, Critic):
        return kind
    cls = CRITICS.load(kind)
    if kind != "http":
        kwargs.setdefault("device", device)
    if kind == "clip":
        kwargs.pop("local_files_only", None)
    return build(cls, kwargs, f"critic {kind!r}", "critic_kwargs")


def build(cls: type, kwargs: dict[str, Any], what: str, argument: str) -> Any:
    """``cls(**kwargs)`` after :func:`~poser_env.registry.check_kwargs`; the HTTP critic and
    extractor pass the rest of their keywords on to their ``ChatClient``."""
    from poser_env.suites.diffusers.openai_client import ChatClient

    check_kwargs(f"{what} ({argument})", cls, kwargs, accepted_arguments(ChatClient))
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"Bad {argument} for {what}: {e}") from e


def _expert_specs(catalog, experts, overrides, chosen) -> list[ExpertSpec]:
    """The specs of the suite's experts: ``catalog``, ``overrides`` applied, ``experts`` kept."""
    if isinstance(catalog, str):
        if catalog != "default":
            raise ConfigError(
                f"catalog must be 'default' or a list of ExpertSpec, got {catalog!r}."
            )
        specs = list(DEFAULT_CATALOG)
        if experts is None:
            experts = chosen.experts(specs)
        overrides = {**chosen.overrides(), **(overrides or {})}
    else:
        specs = [s if isinstance(s, ExpertSpec) else ExpertSpec.from_dict(s) for s in catalog]
    by_name = {s.name: s for s in specs}
    for name, changes in (overrides or {}).items():
        if name not in by_name:
            raise UnknownNameError("expert", name, by_name)
        by_name[name] = by_name[name].with_overrides(**changes)
    for n in experts or ():
        if n not in by_name:
            raise UnknownNameError("expert", n, by_name)
    specs = (
        [by_name[n] for n in experts] if experts is not None else [by_name[s.name] for s in specs]
    )
    if not specs:
        raise ConfigError("The diffusers suite needs at least one expert; 'experts' selected none.")
    return specs


def make_diffusers_suite(
    catalog: Sequence[ExpertSpec | dict[str, Any]] | str = "default",
    experts: Sequence[str] | None = None,
    critic: str | Critic | None = None,
    critic_kwargs: dict[str, Any] | None = None,
    extractor: str | CommandExtractor | None = None,
    extractor_kwargs: dict[str, Any] | None = None,
    tasks: TaskSource | Sequence[Any] | str | None = None,
    device: str = "auto",
    memory_budget_gb: float | None = None,
    model_root: str | None = None,
    local_files_only: bool | None = None,
    image_size: tuple[int, int] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    preset: str = "80gb",
    pool: Sequence[ExpertSpec | dict[str, Any]] | str | None = None,
) -> Suite:
    """Build the real-model suite. Nothing is loaded until first use.

    Args:
        catalog: ``"default"`` (the 12 models of :data:`DEFAULT_CATALOG`) or a list of
            :class:`ExpertSpec` (or dicts of their fields) to choose the experts from.
        experts: Names to keep, in action order (``None``: the preset's experts for the
            default catalog, all of ``catalog`` otherwise).
        critic: ``"vlm"`` (local VLM, VQAScore), ``"http"`` (OpenAI-compatible server),
            ``"clip"`` (open_clip) or a :class:`~poser_env.components.Critic`
            (``None``: the preset's).
        critic_kwargs: Keyword arguments for the critic (``model``, ``base_url``...); the
            preset's VLM model unless ``model`` is given.
        extractor: ``"llm"`` (local LLM), ``"http"``, ``"rules"`` (no model) or a
            :class:`~poser_env.components.CommandExtractor` (``None``: the preset's).
        extractor_kwargs: Keyword arguments for the extractor.
        tasks: ``None`` (the built-in prompts), a list of prompts, a ``.jsonl`` path or a
            :class:`~poser_env.components.TaskSource`.
        device: ``"auto"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"cpu"`` for experts and
            local models; anything else is refused here.
        memory_budget_gb: Most expert weights kept on the device at once (GB). ``None``:
            computed by the memory plan for the preset's card with this critic and
            extractor resident (``python -m poser_env pool plan``).
        model_root: Folder of local checkpoints, searched before the hub.
        local_files_only: Never contact the hub (``None`` follows ``HF_HUB_OFFLINE``).
        image_size: ``(height, width)`` of the images experts return and the episode
            stores. ``None``: the largest native resolution of the chosen experts, so a
            1024-native editor (SDXL refiner, Kontext, SD3.5 img2img) is never handed a
            2x-upsampled image (the env's observation is resized separately).
        overrides: Per-expert field changes, e.g. ``{"sd3.5-medium": {"steps": 20}}``.
        preset: ``"80gb"`` (default), ``"48gb"`` or ``"24gb"``: the card the defaults are
            planned for (critic and extractor models, experts, CPU offload, budget); see
            :mod:`poser_env.suites.diffusers.memory`. Explicit arguments win.
        pool: Deprecated name of ``catalog`` (a *pool* is where components run).

    Raises:
        MissingDependencyError: torch, diffusers or an expert's tokenizer package is not installed.
        ConfigError: an argument is invalid.
    """
    from poser_env.suites.diffusers.loader import (
        PipelineLoader,
        check_device,
        require_spec_packages,
        require_torch_diffusers,
    )
    from poser_env.suites.diffusers.memory import get_preset, memory_plan

    check_device(device)
    chosen = get_preset(preset)
    require_torch_diffusers("The 'diffusers' suite")
    from poser_env.suites.diffusers.experts import make_expert
    from poser_env.suites.diffusers.extractors import make_extractor
    from poser_env.suites.diffusers.tasks import PromptTaskSource

    if pool is not None:
        warnings.warn("pool= is deprecated: use catalog=.", DeprecationWarning, stacklevel=2)
        catalog = pool
    specs = _expert_specs(catalog, experts, overrides, chosen)
    if image_size is None:
        image_size = max((s.resolution for s in specs), key=lambda r: r[0] * r[1])
    if len(image_size) != 2 or min(image_size) < 8:
        raise ConfigError(
            f"image_size must be (height, width) with sides >= 8, got {image_size!r}."
        )
    image_size = (int(image_size[0]), int(image_size[1]))
    require_spec_packages(specs)

    critic = chosen.critic if critic is None else critic
    extractor = chosen.extractor if extractor is None else extractor
    critic_kwargs = dict(critic_kwargs or {})
    extractor_kwargs = dict(extractor_kwargs or {})
    if isinstance(critic, str) and critic == "vlm":
        critic_kwargs.setdefault("model", chosen.critic_model or "Qwen/Qwen2.5-VL-7B-Instruct")
        critic_kwargs.setdefault("local_files_only", local_files_only)
    if isinstance(extractor, str) and extractor == "llm":
        extractor_kwargs.setdefault("model", chosen.extractor_model or "Qwen/Qwen2.5-1.5B-Instruct")
        extractor_kwargs.setdefault("device", device)
        extractor_kwargs.setdefault("local_files_only", local_files_only)
    if memory_budget_gb is None:
        critic_model = (
            critic_kwargs.get("model")
            if critic == "vlm"
            else ("clip" if critic == "clip" else None)
        )
        extractor_model = extractor_kwargs.get("model") if extractor == "llm" else None
        plan = memory_plan(chosen.gpu_gb, specs, critic_model, extractor_model)
        # A plan with no room left still gets a small positive budget: the loader then refuses
        # each model with the plan's advice instead of the suite failing to build.
        memory_budget_gb = max(plan.expert_budget_gb, 0.1)

    shared = PipelineLoader(
        device=device,
        memory_budget_gb=memory_budget_gb,
        model_root=model_root,
        local_files_only=local_files_only,
    )
    expert_objs = [make_expert(s, shared, output_size=image_size) for s in specs]
    if isinstance(tasks, TaskSource):
        task_source = tasks
    else:
        task_source = PromptTaskSource(tasks)
    return Suite(
        name="diffusers",
        experts=expert_objs,
        critic=make_critic(critic, device=device, **critic_kwargs),
        extractor=make_extractor(extractor, **extractor_kwargs),
        tasks=task_source,
        image_size=image_size,
    )
