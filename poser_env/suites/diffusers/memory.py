"""The GPU memory plan of the diffusers suite, computed from the spec table, and card presets.

Everything the suite keeps on one GPU has to fit at once: the VLM critic and the LLM
extractor stay resident (they run every step), one expert runs at a time (the pool's lock),
and the experts' weights share what is left. :func:`memory_plan` adds these up from the
numbers in :data:`~poser_env.suites.diffusers.models.DEFAULT_CATALOG` and :data:`COMPONENTS`,
and the suite's default ``memory_budget_gb`` is the plan's expert budget, not a guess::

    python -m poser_env pool plan --gpu-gb 80
    python -m poser_env pool plan --gpu-gb 24 --preset 24gb

Every figure is an **estimate** (parameter counts x bytes per parameter from the model
cards, activation reserves guessed from resolution and model size); none was measured on a
GPU for this release. ``scripts/gpu_smoke.py`` measures the peak reserved memory of every
group on a real card and compares it with these figures.

GB here are 10^9 bytes, as in the pool's measured sizes. An "80 GB" H100 reports about
85.0e9 bytes (79.2 GiB), so planning for 80e9 leaves a little extra room.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poser_env.error import ConfigError, UnknownNameError
from poser_env.suites.diffusers.models import DEFAULT_CATALOG, ExpertSpec


@dataclass(frozen=True)
class ComponentSize:
    """Resident GPU memory of a non-expert model (critic, extractor, scorer).

    Attributes:
        weights_gb: Parameters x bytes per parameter at the dtype used on CUDA (bf16).
        activation_gb: Peak memory of one call above the weights (estimate).
        family: Model family (for the critic/scorer independence check).
        licence: From the model card.
    """

    weights_gb: float
    activation_gb: float
    family: str
    licence: str


#: Known critic/extractor/scorer models. Weights: parameter counts from the model cards x 2
#: bytes (bfloat16). Activations: one 512 px image and a few questions (VLMs) or a 768-token
#: answer (LLMs); estimates.
COMPONENTS: dict[str, ComponentSize] = {
    "Qwen/Qwen2.5-VL-7B-Instruct": ComponentSize(16.6, 2.0, "qwen", "Apache-2.0"),  # 8.29B
    "Qwen/Qwen2-VL-2B-Instruct": ComponentSize(4.4, 1.0, "qwen", "Apache-2.0"),  # 2.21B
    "Qwen/Qwen2.5-7B-Instruct": ComponentSize(15.2, 1.0, "qwen", "Apache-2.0"),  # 7.62B
    "Qwen/Qwen2.5-1.5B-Instruct": ComponentSize(3.1, 0.5, "qwen", "Apache-2.0"),  # 1.54B
    "llava-hf/llava-v1.6-mistral-7b-hf": ComponentSize(15.1, 2.0, "llava", "Apache-2.0"),  # 7.57B
}

#: Assumed for a model that is not in :data:`COMPONENTS` (a warning says so).
UNKNOWN_COMPONENT = ComponentSize(16.0, 2.0, "unknown", "unknown")

#: CUDA context, cuBLAS/cuDNN workspaces and allocator fragmentation (estimate).
RUNTIME_OVERHEAD_GB = 2.0


@dataclass(frozen=True)
class Preset:
    """A suite configuration sized for one class of GPU.

    Attributes:
        name: ``"24gb"``, ``"48gb"`` or ``"80gb"``.
        gpu_gb: The card size it is planned for.
        critic: Critic kind (``"vlm"``, ``"clip"``, ``"http"``).
        critic_model: Model of the VLM critic (``None`` for the other kinds).
        extractor: Extractor kind (``"llm"``, ``"rules"``, ``"http"``).
        extractor_model: Model of the LLM extractor (``None`` for the other kinds).
        drop: Default experts left out (they do not fit this card).
        offload: Default experts run with ``cpu_offload=True``.
        description: One line for the docs.
    """

    name: str
    gpu_gb: float
    critic: str
    critic_model: str | None
    extractor: str
    extractor_model: str | None
    drop: tuple[str, ...] = ()
    offload: tuple[str, ...] = ()
    description: str = ""

    def experts(self, catalog: Sequence[ExpertSpec] = DEFAULT_CATALOG) -> list[str]:
        """Names of ``catalog`` this preset keeps, in order."""
        return [s.name for s in catalog if s.name not in self.drop]

    def overrides(self) -> dict[str, dict[str, Any]]:
        """The per-expert changes this preset makes (``cpu_offload``)."""
        return {name: {"cpu_offload": True} for name in self.offload}


PRESETS: dict[str, Preset] = {
    "80gb": Preset(
        "80gb",
        80.0,
        "vlm",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "llm",
        "Qwen/Qwen2.5-7B-Instruct",
        description="A100/H100 80 GB: all 12 experts, 7B VLM critic and 7B LLM extractor resident; "
        "the two 12B FLUX models are never resident together (LRU).",
    ),
    "48gb": Preset(
        "48gb",
        48.0,
        "vlm",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "llm",
        "Qwen/Qwen2.5-1.5B-Instruct",
        drop=("flux-schnell", "flux-kontext"),
        description="L40S/A6000 48 GB: 10 experts (no 12B FLUX: its transformer alone is 23.8 GB), "
        "7B VLM critic, 1.5B LLM extractor.",
    ),
    "24gb": Preset(
        "24gb",
        24.0,
        "vlm",
        "Qwen/Qwen2-VL-2B-Instruct",
        "rules",
        None,
        drop=("flux-schnell", "flux-kontext"),
        offload=("sd3.5-medium", "sd3.5-medium-img2img", "pixart-sigma"),
        description="RTX 4090/L4/A10 24 GB: 10 experts, the T5-XXL models with CPU offload, "
        "2B VLM critic, rule extractor (no LLM).",
    ),
}

#: The preset the suite's defaults come from.
DEFAULT_PRESET = "80gb"


def component_size(model: str | None) -> ComponentSize:
    """The size of a critic/extractor model (zero for ``None``: no model on the GPU)."""
    if model is None:
        return ComponentSize(0.0, 0.0, "none", "")
    size = COMPONENTS.get(model)
    if size is None and Path(model).is_dir():
        # A local checkpoint: its weight files say how big it is (an upper bound when they
        # are float32 and the model runs in bfloat16).
        weights = sum(
            f.stat().st_size for f in Path(model).rglob("*") if f.suffix in (".safetensors", ".bin")
        )
        return ComponentSize(weights / 1e9, 0.1 * weights / 1e9, model, "local")
    if size is None:
        warnings.warn(
            f"Model {model!r} is not in the memory table (poser_env.suites.diffusers.memory.COMPONENTS); "
            f"planning with {UNKNOWN_COMPONENT.weights_gb:g} GB of weights for it. Pass memory_budget_gb to set the "
            "experts' budget yourself.",
            stacklevel=3,
        )
        return UNKNOWN_COMPONENT
    return size


@dataclass(frozen=True)
class MemoryPlan:
    """What one GPU holds: resident models, reserves, and the experts' budget (all GB).

    Attributes:
        gpu_gb: Card size planned for.
        resident: ``(what, GB)`` of everything always on the GPU besides the experts.
        activation_gb: Reserve for the largest single expert call (one runs at a time).
        expert_budget_gb: What is left for expert weights (``memory_budget_gb``).
        groups: ``(model, GB, expert names)`` of every weight group (experts sharing
            weights count once), offloaded ones at their ``offload_gb``.
        largest_group_gb: The biggest group, which must fit the budget alone.
        all_groups_gb: Every group resident at once.
        fits: The largest group fits the budget (so every expert can run).
        problems: Why it does not fit, when it does not.
    """

    gpu_gb: float
    resident: tuple[tuple[str, float], ...]
    activation_gb: float
    expert_budget_gb: float
    groups: tuple[tuple[str, float, tuple[str, ...]], ...]
    largest_group_gb: float
    all_groups_gb: float
    fits: bool
    problems: tuple[str, ...] = field(default=())

    def table(self) -> str:
        """The plan as a Markdown table and a verdict."""
        rows = ["| on the GPU | GB (est.) |", "| --- | --- |"]
        rows += [f"| {what} | {gb:.1f} |" for what, gb in self.resident]
        rows.append(f"| reserve for the largest expert call | {self.activation_gb:.1f} |")
        rows.append(
            f"| **expert weight budget (`memory_budget_gb`)** | **{self.expert_budget_gb:.1f}** |"
        )
        rows.append(f"| total | {self.gpu_gb:.1f} |")
        rows += ["", "| expert weight group | GB (est.) | experts |", "| --- | --- | --- |"]
        rows += [
            f"| `{model}` | {gb:.1f} | {', '.join(names)} |" for model, gb, names in self.groups
        ]
        resident_all = "yes" if self.all_groups_gb <= self.expert_budget_gb else "no (LRU eviction)"
        rows += [
            "",
            f"Largest group {self.largest_group_gb:.1f} GB; all groups {self.all_groups_gb:.1f} GB; "
            f"all resident at once: {resident_all}.",
            "Fits: yes." if self.fits else "Fits: NO. " + " ".join(self.problems),
        ]
        return "\n".join(rows)


def memory_plan(
    gpu_gb: float,
    specs: Sequence[ExpertSpec] = DEFAULT_CATALOG,
    critic_model: str | None = "Qwen/Qwen2.5-VL-7B-Instruct",
    extractor_model: str | None = "Qwen/Qwen2.5-7B-Instruct",
) -> MemoryPlan:
    """Plan one GPU of ``gpu_gb`` for ``specs`` with this critic and extractor resident.

    Args:
        gpu_gb: Card size in GB (10^9 bytes).
        specs: The experts of the suite.
        critic_model: The VLM critic's model (``None``: a critic with no GPU model,
            ``"clip"`` counts as 0.6 GB).
        extractor_model: The LLM extractor's model (``None``: rules or HTTP).

    Returns:
        The plan; ``plan.expert_budget_gb`` is the suite's default ``memory_budget_gb``.
    """
    if isinstance(gpu_gb, bool) or not isinstance(gpu_gb, (int, float)) or not gpu_gb > 0:
        raise ConfigError(f"gpu_gb must be a number > 0 (GB), got {gpu_gb!r}.")
    if not specs:
        raise ConfigError("memory_plan needs at least one ExpertSpec.")
    resident: list[tuple[str, float]] = [
        ("CUDA context, workspaces, fragmentation", RUNTIME_OVERHEAD_GB)
    ]
    activation = 0.0
    for role, model in (("critic", critic_model), ("extractor", extractor_model)):
        if model is None:
            continue
        size = ComponentSize(0.6, 0.2, "clip", "") if model == "clip" else component_size(model)
        resident.append((f"{role} `{model}` weights", size.weights_gb))
        resident.append((f"{role} activations", size.activation_gb))
    activation = max(s.activation_gb for s in specs)
    budget = float(gpu_gb) - sum(gb for _, gb in resident) - activation
    groups: dict[tuple[str, str, str | None], list[Any]] = {}
    for s in specs:
        entry = groups.setdefault((s.model, s.dtype, s.variant), [s.resident_gb, []])
        entry[0] = max(entry[0], s.resident_gb)
        entry[1].append(s.name)
    group_rows = tuple((key[0], float(gb), tuple(names)) for key, (gb, names) in groups.items())
    largest = max(gb for _, gb, _ in group_rows)
    problems = []
    if budget <= 0:
        problems.append(
            f"The resident models and reserves alone take {gpu_gb - budget:.1f} GB of {gpu_gb:g} GB."
        )
    elif largest > budget:
        big = [f"{m} ({gb:.1f} GB)" for m, gb, _ in group_rows if gb > budget]
        problems.append(
            f"Expert weights over the {budget:.1f} GB budget: {', '.join(big)}; drop them, set cpu_offload=True, "
            "or choose a smaller critic/extractor (see the presets)."
        )
    return MemoryPlan(
        gpu_gb=float(gpu_gb),
        resident=tuple(resident),
        activation_gb=float(activation),
        expert_budget_gb=math.floor(max(budget, 0.0) * 10) / 10,
        groups=group_rows,
        largest_group_gb=float(largest),
        all_groups_gb=float(sum(gb for _, gb, _ in group_rows)),
        fits=not problems,
        problems=tuple(problems),
    )


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an :class:`UnknownNameError` lists the others."""
    key = name.lower().replace(" ", "") if isinstance(name, str) else name
    if key not in PRESETS:
        raise UnknownNameError("memory preset", name, PRESETS)
    return PRESETS[key]


def preset_for(gpu_gb: float) -> Preset:
    """The largest preset planned for at most ``gpu_gb`` (the 24 GB one below that)."""
    fitting = [p for p in PRESETS.values() if p.gpu_gb <= gpu_gb]
    return max(fitting, key=lambda p: p.gpu_gb) if fitting else PRESETS["24gb"]


def preset_plan(
    preset: Preset | str, gpu_gb: float | None = None, specs: Sequence[ExpertSpec] = DEFAULT_CATALOG
) -> MemoryPlan:
    """The plan of ``preset`` on a card of ``gpu_gb`` (default: the preset's own size)."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    by_name = {s.name: s for s in specs}
    specs = [by_name[n].with_overrides(**p.overrides().get(n, {})) for n in p.experts(specs)]
    critic_model = p.critic_model if p.critic == "vlm" else ("clip" if p.critic == "clip" else None)
    extractor_model = p.extractor_model if p.extractor == "llm" else None
    return memory_plan(p.gpu_gb if gpu_gb is None else gpu_gb, specs, critic_model, extractor_model)


#: The suite's default ``memory_budget_gb``: the expert budget of the default preset.
DEFAULT_EXPERT_BUDGET_GB: float = preset_plan(DEFAULT_PRESET).expert_budget_gb


def describe(preset: Preset, gpu_gb: float) -> str:
    """The text ``pool plan`` prints for ``preset`` on a ``gpu_gb`` card."""
    plan = preset_plan(preset, gpu_gb)
    critic = f"{preset.critic} ({preset.critic_model})" if preset.critic_model else preset.critic
    extractor = (
        f"{preset.extractor} ({preset.extractor_model})"
        if preset.extractor_model
        else preset.extractor
    )
    lines = [
        f"Memory plan for one {gpu_gb:g} GB GPU, preset {preset.name!r}: {preset.description}",
        f"critic: {critic}; extractor: {extractor}; experts: {len(preset.experts())} "
        + (f"(dropped: {', '.join(preset.drop)})" if preset.drop else "(all)")
        + (f"; cpu_offload: {', '.join(preset.offload)}" if preset.offload else ""),
        "Estimates from parameter counts (not measured on a GPU); scripts/gpu_smoke.py measures them.",
        "",
        plan.table(),
        "",
        f'Use: suite_kwargs={{"preset": "{preset.name}", "memory_budget_gb": {plan.expert_budget_gb:g}}}',
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m poser_env pool plan``: print the memory plan for a GPU size."""
    parser = argparse.ArgumentParser(
        prog="python -m poser_env pool plan",
        description="Print the diffusers suite's GPU memory plan (estimates from the spec table).",
    )
    parser.add_argument("--gpu-gb", type=float, default=80.0, help="GPU memory in GB (default 80)")
    parser.add_argument(
        "--preset",
        default=None,
        help=f"one of {', '.join(PRESETS)} (default: the largest that fits --gpu-gb)",
    )
    parser.add_argument(
        "--all", action="store_true", help="print every preset on its own card size"
    )
    args = parser.parse_args(argv)
    if not args.gpu_gb > 0:
        parser.error(f"--gpu-gb must be > 0, got {args.gpu_gb:g}")
    if args.all:
        print("\n\n".join(describe(p, p.gpu_gb) for p in PRESETS.values()))
        return 0
    try:
        preset = get_preset(args.preset) if args.preset else preset_for(args.gpu_gb)
    except UnknownNameError as e:
        parser.error(str(e))
    print(describe(preset, args.gpu_gb))
    return 0 if preset_plan(preset, args.gpu_gb).fits else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
