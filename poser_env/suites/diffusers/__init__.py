"""The real-model suite: diffusers experts, a VLM (or HTTP, or CLIP) critic, an LLM (or rules) extractor.

Registered as ``"diffusers"``::

    env = gym.make("ImagePoser-v0", suite="diffusers", suite_kwargs={"memory_budget_gb": 60})

Importing this package needs no heavy dependency; :func:`make_diffusers_suite` raises
:class:`~poser_env.error.MissingDependencyError` naming ``pip install "image-poser[models]"``
when torch or diffusers is missing. Models load lazily, on first use. See
``docs/real_pool.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from poser_env.components import CommandExtractor, Critic, TaskSource
from poser_env.error import ConfigError, UnknownNameError
from poser_env.suites.diffusers.models import DEFAULT_POOL, ExpertSpec, default_pool, pool_table
from poser_env.suites.registration import Suite

__all__ = ["DEFAULT_POOL", "ExpertSpec", "default_pool", "make_critic", "make_diffusers_suite", "pool_table"]


def make_critic(kind: str | Critic, device: str = "auto", **kwargs: Any) -> Critic:
    """``"vlm"``, ``"http"`` or ``"clip"`` (or a critic instance, returned as is)."""
    if isinstance(kind, Critic):
        return kind
    from poser_env.suites.diffusers.critics import CLIPCritic, HTTPCritic, VLMCritic

    table = {"vlm": VLMCritic, "http": HTTPCritic, "clip": CLIPCritic}
    if kind not in table:
        raise UnknownNameError("critic", str(kind), table)
    if kind != "http":
        kwargs.setdefault("device", device)
    try:
        return table[kind](**kwargs)
    except TypeError as e:
        raise ConfigError(f"Bad critic_kwargs for critic {kind!r}: {e}") from e


def make_diffusers_suite(
    pool: Sequence[ExpertSpec | dict[str, Any]] | str = "default",
    experts: Sequence[str] | None = None,
    critic: str | Critic = "vlm",
    critic_kwargs: dict[str, Any] | None = None,
    extractor: str | CommandExtractor = "llm",
    extractor_kwargs: dict[str, Any] | None = None,
    tasks: TaskSource | Sequence[Any] | str | None = None,
    device: str = "auto",
    memory_budget_gb: float = 70.0,
    model_root: str | None = None,
    local_files_only: bool | None = None,
    image_size: tuple[int, int] = (512, 512),
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Suite:
    """Build the real-model suite. Nothing is loaded until first use.

    Args:
        pool: ``"default"`` (the 12 models of :data:`DEFAULT_POOL`) or a list of
            :class:`ExpertSpec` (or dicts of their fields).
        experts: Names to keep, in action order (``None``: all of ``pool``).
        critic: ``"vlm"`` (local VLM, VQAScore), ``"http"`` (OpenAI-compatible server),
            ``"clip"`` (open_clip) or a :class:`~poser_env.components.Critic`.
        critic_kwargs: Keyword arguments for the critic (``model``, ``base_url``...).
        extractor: ``"llm"`` (local LLM), ``"http"``, ``"rules"`` (no model) or a
            :class:`~poser_env.components.CommandExtractor`.
        extractor_kwargs: Keyword arguments for the extractor.
        tasks: ``None`` (the built-in prompts), a list of prompts, a ``.jsonl`` path or a
            :class:`~poser_env.components.TaskSource`.
        device: ``"auto"``, ``"cuda"``, ``"cuda:N"`` or ``"cpu"`` for experts and local models.
        memory_budget_gb: Most expert weights kept on the device at once (GB).
        model_root: Folder of local checkpoints, searched before the hub.
        local_files_only: Never contact the hub (``None`` follows ``HF_HUB_OFFLINE``).
        image_size: ``(height, width)`` of the images experts return (and the env observes).
        overrides: Per-expert field changes, e.g. ``{"sd3.5-medium": {"steps": 20}}``.

    Raises:
        MissingDependencyError: torch or diffusers is not installed.
        ConfigError: an argument is invalid.
    """
    from poser_env.suites.diffusers.pool import PipelinePool, require_torch_diffusers

    require_torch_diffusers("The 'diffusers' suite")
    from poser_env.suites.diffusers.experts import make_expert
    from poser_env.suites.diffusers.extractors import make_extractor
    from poser_env.suites.diffusers.tasks import PromptTaskSource

    if isinstance(pool, str):
        if pool != "default":
            raise ConfigError(f"pool must be 'default' or a list of ExpertSpec, got {pool!r}.")
        specs = list(DEFAULT_POOL)
    else:
        specs = [s if isinstance(s, ExpertSpec) else ExpertSpec.from_dict(s) for s in pool]
    by_name = {s.name: s for s in specs}
    for name, changes in (overrides or {}).items():
        if name not in by_name:
            raise UnknownNameError("expert", name, by_name)
        by_name[name] = by_name[name].with_overrides(**changes)
    specs = [by_name[s.name] for s in specs]
    if experts is not None:
        for n in experts:
            if n not in by_name:
                raise UnknownNameError("expert", n, by_name)
        specs = [by_name[n] for n in experts]
    if len(image_size) != 2 or min(image_size) < 8:
        raise ConfigError(f"image_size must be (height, width) with sides >= 8, got {image_size!r}.")
    image_size = (int(image_size[0]), int(image_size[1]))

    shared = PipelinePool(
        device=device, memory_budget_gb=memory_budget_gb, model_root=model_root, local_files_only=local_files_only
    )
    expert_objs = [make_expert(s, shared, output_size=image_size) for s in specs]
    critic_kwargs = dict(critic_kwargs or {})
    extractor_kwargs = dict(extractor_kwargs or {})
    if isinstance(extractor, str) and extractor == "llm":
        extractor_kwargs.setdefault("device", device)
        extractor_kwargs.setdefault("local_files_only", local_files_only)
    if isinstance(critic, str) and critic == "vlm":
        critic_kwargs.setdefault("local_files_only", local_files_only)
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
