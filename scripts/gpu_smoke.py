"""GPU acceptance test of the real-model pool: one script, named checks, one JSON and one Markdown table.

On one CUDA machine with the weights in the Hugging Face cache (or under --model-root):

    python scripts/gpu_smoke.py --fast --out gpu_smoke      # writes gpu_smoke.json and gpu_smoke.md

Named checks (each a row of the table; the JSON has the measurements):

* ``load:<group>`` - every default model group loads; a gated repository it could not load
  is reported as ``gated`` with the fix (accept the licence, ``hf auth login``), not as a crash.
* ``output:<expert>`` - the expert's own output at its native resolution is finite and not
  uniform (a black or flat image fails); warm pipeline-only latency next to its ``cost``.
* ``memory:<group>`` - peak reserved GPU memory of loading and running the group, alone,
  against ``memory_gb + activation_gb`` of its specs.
* ``critic:prefers-match`` / ``scorer:prefers-match`` - the VLM critic (and the evaluation
  scorer, another model family) score a matching caption above a mismatching one.
* ``extractor:plan`` - the LLM extractor turns a built-in prompt into a valid plan.
* ``eviction:80gb`` - with ``torch.cuda.set_per_process_memory_fraction`` emulating an
  80 GB card, critic and extractor resident and the 80 GB plan's expert budget, the experts
  run in an order that forces evictions (both 12B FLUX models): no out-of-memory error,
  never both FLUX resident.

``--fast`` (one warm call per expert, one eviction round) is sized for under 10 minutes on
one H100/H200 once the weights are cached; download them first (``--print-downloads``).
Exit status 1 when a check fails (gated repositories are reported, not failed).

Without a GPU, ``--dry-run`` runs every check on tiny random models on CPU (plus a fake
gated repository). It tests the script, not the models: the preference checks are then
reported but not judged, and memory figures are absent.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

MATCH_PROMPT = "a red apple on a white table"
MISMATCH_PROMPT = "a blue car parked on a snowy street"
EMULATED_GPU_GB = 80.0


@dataclass
class Check:
    """One named check: ``pass``, ``fail``, ``gated`` (could not load, fix given) or ``info``."""

    name: str
    status: str
    detail: str = ""
    measured: dict[str, Any] = field(default_factory=dict)


def image_problems(image: Any, expected_hw: tuple[int, int] | None) -> list[str]:
    """What is wrong with a pipeline's output image (empty when it looks like an image).

    Args:
        image: A float array in [0, 1] (``output_type="np"``) or a PIL image.
        expected_hw: The model's native ``(height, width)``, or ``None`` not to check it.
    """
    arr = np.asarray(image, dtype=np.float32)
    if arr.dtype != np.float32 or arr.ndim != 3 or arr.shape[2] != 3:
        return [f"shape {arr.shape}, expected (H, W, 3)"]
    problems = []
    if expected_hw is not None and tuple(arr.shape[:2]) != tuple(expected_hw):
        problems.append(
            f"size {arr.shape[0]}x{arr.shape[1]}, native is {expected_hw[0]}x{expected_hw[1]}"
        )
    if arr.max() > 1.5:  # a PIL/uint8 image
        arr = arr / 255.0
    if not np.isfinite(arr).all():
        problems.append("non-finite pixels (NaN/inf: fp16 overflow?)")
        return problems
    if float(arr.std()) < 0.01:
        problems.append(
            f"uniform image (std {float(arr.std()):.4f}, mean {float(arr.mean()):.3f}): black or flat output"
        )
    return problems


def synthetic_image(hw: tuple[int, int]) -> np.ndarray:
    """A deterministic test picture for image-to-image experts: a red disc on a blue-grey gradient."""
    h, w = hw
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x / w * 0.3 + 0.3, y / h * 0.3 + 0.3, np.full((h, w), 0.6)], axis=-1)
    disc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(h, w) / 4) ** 2
    img[disc] = (0.85, 0.1, 0.1)
    return (img * 255).astype(np.uint8)


class Gpu:
    """CUDA memory readings, or nothing on CPU (dry run)."""

    def __init__(self, torch: Any, cuda: bool):
        self.torch, self.cuda = torch, cuda

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def reset_peak(self) -> float | None:
        if not self.cuda:
            return None
        self.torch.cuda.empty_cache()
        self.torch.cuda.reset_peak_memory_stats()
        return self.torch.cuda.memory_reserved() / 1e9

    def peak_since(self, base: float | None) -> float | None:
        if not self.cuda or base is None:
            return None
        return self.torch.cuda.max_memory_reserved() / 1e9 - base


def timed(gpu: Gpu, fn: Callable[[], Any]) -> tuple[Any, float]:
    gpu.sync()
    start = time.perf_counter()
    out = fn()
    gpu.sync()
    return out, time.perf_counter() - start


def pipeline_call(expert: Any, command: Any, image: np.ndarray | None, seed: int) -> Any:
    """The expert's pipeline alone (no resizing, no critic): what warm latency measures."""
    return expert.raw_images(expert.pipeline_kwargs(command, image), [seed])


def groups_of(specs: Sequence[Any]) -> dict[str, list[Any]]:
    """Specs by weight group (same model), in first-use order."""
    out: dict[str, list[Any]] = {}
    for s in specs:
        out.setdefault(s.model, []).append(s)
    return out


def check_experts(specs, pool_factory, gpu: Gpu, warm_calls: int, checks: list[Check]) -> None:
    """``load:``, ``output:`` and ``memory:`` checks, one group at a time on an empty pool."""
    from poser_env.constraints import Command
    from poser_env.error import ModelLoadError
    from poser_env.suites.diffusers.experts import make_expert
    from poser_env.suites.diffusers.pool import is_gated_error

    pool = pool_factory()
    for model, members in groups_of(specs).items():
        pool.clear()
        base = gpu.reset_peak()
        try:
            _, load_s = timed(gpu, partial(pool.get, members[0]))
        except ModelLoadError as e:
            gated = members[0].gated or is_gated_error(e)
            checks.append(
                Check(
                    f"load:{model}",
                    "gated" if gated else "fail",
                    str(e)[:600],
                    {"experts": [m.name for m in members]},
                )
            )
            for m in members:
                checks.append(
                    Check(f"output:{m.name}", "gated" if gated else "fail", f"not loaded: {model}")
                )
            continue
        checks.append(Check(f"load:{model}", "pass", "", {"load_s": round(load_s, 2)}))
        for spec in members:
            expert = make_expert(spec, pool, output_size=None)
            command = Command(MATCH_PROMPT, "generate" if spec.kind == "t2i" else "restyle")
            image = None if spec.kind == "t2i" else synthetic_image(spec.resolution)
            try:
                raw, cold_s = timed(gpu, partial(pipeline_call, expert, command, image, 0))
                warm = [
                    timed(gpu, partial(pipeline_call, expert, command, image, 1))[1]
                    for _ in range(warm_calls)
                ]
            except Exception as e:  # noqa: BLE001 - a failing expert is a failed check, not a crash
                checks.append(
                    Check(f"output:{spec.name}", "fail", f"{type(e).__name__}: {e}"[:600])
                )
                continue
            problems = image_problems(raw[0], spec.resolution)
            latency = statistics.median(warm) if warm else cold_s
            checks.append(
                Check(
                    f"output:{spec.name}",
                    "fail" if problems else "pass",
                    "; ".join(problems),
                    {
                        "native": f"{spec.resolution[0]}x{spec.resolution[1]}",
                        "first_call_s": round(cold_s, 3),
                        "warm_latency_s": round(latency, 3),
                        "cost": spec.cost,
                        "steps": spec.steps,
                    },
                )
            )
        peak = gpu.peak_since(base)
        estimate = max(s.resident_gb for s in members) + max(s.activation_gb for s in members)
        if peak is None:
            checks.append(
                Check(f"memory:{model}", "info", "no CUDA: not measured", {"estimate_gb": estimate})
            )
        else:
            ok = peak <= estimate * 1.10
            checks.append(
                Check(
                    f"memory:{model}",
                    "pass" if ok else "fail",
                    ""
                    if ok
                    else "peak over memory_gb + activation_gb by more than 10%: raise them in the spec table",
                    {
                        "peak_reserved_gb": round(peak, 2),
                        "estimate_gb": estimate,
                        "weights_gb_measured": round(pool.memory_used_gb(), 2),
                    },
                )
            )
    pool.clear()


def check_preference(
    name: str,
    score: Callable[[np.ndarray, str], float],
    image: np.ndarray,
    judged: bool,
    checks: list[Check],
) -> None:
    """``<name>:prefers-match``: the matching caption scores above the mismatching one."""
    try:
        match, mismatch = score(image, MATCH_PROMPT), score(image, MISMATCH_PROMPT)
    except Exception as e:  # noqa: BLE001
        checks.append(Check(f"{name}:prefers-match", "fail", f"{type(e).__name__}: {e}"[:600]))
        return
    measured = {"match": round(match, 4), "mismatch": round(mismatch, 4)}
    if not judged:
        checks.append(
            Check(f"{name}:prefers-match", "info", "tiny random model: not judged", measured)
        )
    else:
        ok = match > mismatch
        checks.append(
            Check(
                f"{name}:prefers-match",
                "pass" if ok else "fail",
                "" if ok else "mismatch scored higher",
                measured,
            )
        )


def check_eviction(
    specs, pool_factory, critic, extractor, gpu: Gpu, budget_gb: float, checks: list[Check]
) -> None:
    """``eviction:80gb``: run experts so that the budget forces evictions, under the emulated card."""
    from poser_env.constraints import Command
    from poser_env.suites.diffusers.experts import make_expert

    sizes = {s.model: s.resident_gb for s in specs}
    shrunk = sum(sizes.values()) <= budget_gb
    if shrunk:  # these experts all fit the plan's budget: shrink it so that every switch evicts
        budget_gb = max(sizes.values())
    pool = pool_factory(budget_gb)
    flux = {s.model for s in specs if "FLUX" in s.model}
    order = sorted(specs, key=lambda s: -s.resident_gb)  # biggest first: each evicts the others
    order = order + order[:2]  # and back, so a second round reloads the evicted
    evictions, both_flux, errors = 0, False, []
    for spec in order:
        before = set(pool.resident())
        expert = make_expert(spec, pool, output_size=(64, 64))
        image = None if spec.kind == "t2i" else synthetic_image(spec.resolution)
        try:
            expert(Command(MATCH_PROMPT, "generate" if spec.kind == "t2i" else "restyle"), image, 0)
            critic.judge(synthetic_image((256, 256)), Command(MATCH_PROMPT, "generate"), ())
        except Exception as e:  # noqa: BLE001
            errors.append(f"{spec.name}: {type(e).__name__}: {e}"[:300])
        after = set(pool.resident())
        evictions += len(before - after)
        both_flux = both_flux or (len(flux) > 1 and flux <= after)
    extractor.complete(
        [{"role": "user", "content": MATCH_PROMPT}]
    )  # still resident, still generating
    ok = not errors and evictions > 0 and not both_flux
    checks.append(
        Check(
            "eviction:80gb",
            "pass" if ok else "fail",
            "; ".join(errors)
            or ("" if evictions else "no eviction happened")
            + (" both FLUX resident" if both_flux else ""),
            {
                "expert_budget_gb": budget_gb,
                "budget_shrunk_to_force_eviction": shrunk,
                "evictions": evictions,
                "calls": len(order),
                "peak_reserved_gb": None
                if not gpu.cuda
                else round(gpu.torch.cuda.max_memory_reserved() / 1e9, 2),
            },
        )
    )
    pool.clear()


def markdown(report: dict[str, Any]) -> str:
    rows = [
        f"# gpu_smoke: {report['device']}",
        "",
        f"`{report['command']}`",
        "",
        "| check | status | measured | detail |",
        "| --- | --- | --- | --- |",
    ]
    for c in report["checks"]:
        measured = ", ".join(f"{k}={v}" for k, v in c["measured"].items())
        detail = c["detail"].replace("|", "/").replace("\n", " ")
        detail = detail if len(detail) <= 240 else detail[:237] + "..."  # the JSON has it all
        rows.append(f"| {c['name']} | {c['status']} | {measured} | {detail} |")
    s = report["summary"]
    rows += [
        "",
        f"{s['pass']} passed, {s['fail']} failed, {s['gated']} gated, {s['info']} info; "
        f"{report['wall_seconds']:.0f} s.",
    ]
    return "\n".join(rows)


def dry_run_setup(tmp: Path) -> dict[str, Any]:
    """Tiny random models on CPU, plus one gated repository that cannot be loaded offline."""
    from poser_env.suites.diffusers.models import ExpertSpec
    from poser_env.suites.diffusers.testing import save_tiny_llm, save_tiny_vlm, tiny_pool

    specs = list(tiny_pool(tmp / "models"))
    specs.append(
        ExpertSpec(
            name="tiny-gated",
            model="no-org/gated-model",
            family="text2image",
            pipeline="AutoPipelineForText2Image",
            steps=1,
            guidance=0.0,
            resolution=(32, 32),
            dtype="float32",
            memory_gb=0.001,
            gated=True,
        )
    )
    return {
        "specs": specs,
        "vlm": str(save_tiny_vlm(tmp / "vlm")),
        "llm": str(save_tiny_llm(tmp / "llm")),
        "device": "cpu",
        "budget": 0.001,
    }  # room for one tiny group (memory_gb 0.001): every switch evicts


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from poser_env.suites.diffusers.critics import VLMCritic
    from poser_env.suites.diffusers.extractors import LLMExtractor
    from poser_env.suites.diffusers.loader import PipelineLoader
    from poser_env.suites.diffusers.memory import PRESETS, preset_plan
    from poser_env.suites.diffusers.models import DEFAULT_CATALOG
    from poser_env.suites.diffusers.scorers import VQAScorer, default_scorer

    start = time.perf_counter()
    checks: list[Check] = []
    tmp = None
    if args.dry_run:
        tmp = tempfile.TemporaryDirectory()
        setup = dry_run_setup(Path(tmp.name))
        specs, device, budget = setup["specs"], "cpu", setup["budget"]
        if args.experts:
            specs = [s for s in specs if s.name in args.experts.split(",")]
        critic = VLMCritic(setup["vlm"], device="cpu", reflection="template")
        scorer = VQAScorer(
            setup["vlm"], device="cpu"
        )  # the same tiny model: independence is not what is tested here
        extractor = LLMExtractor(setup["llm"], device="cpu", max_new_tokens=8, max_retries=0)
        gpu = Gpu(torch, cuda=False)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("No CUDA device: run with --dry-run to check the script on CPU.")
        preset = PRESETS["80gb"]
        names = args.experts.split(",") if args.experts else [s.name for s in DEFAULT_CATALOG]
        unknown = sorted(set(names) - {s.name for s in DEFAULT_CATALOG})
        if unknown:
            raise SystemExit(
                f"Unknown expert(s) {unknown}; the default pool has: {', '.join(s.name for s in DEFAULT_CATALOG)}"
            )
        specs = [s for s in DEFAULT_CATALOG if s.name in names]
        device, budget = "cuda", preset_plan(preset).expert_budget_gb
        critic = VLMCritic(preset.critic_model, device="cuda", reflection="template")
        scorer = default_scorer(critic, device="cuda")
        extractor = LLMExtractor(preset.extractor_model, device="cuda")
        gpu = Gpu(torch, cuda=True)

    def pool_factory(budget_gb: float = 1e6) -> PipelineLoader:
        return PipelineLoader(
            device=device,
            memory_budget_gb=budget_gb,
            model_root=args.model_root,
            local_files_only=True if args.dry_run else None,
        )

    # 1. every expert alone (the card's whole memory, nothing else resident)
    check_experts(specs, pool_factory, gpu, 1 if args.fast or args.dry_run else 3, checks)
    loadable = [
        s for s in specs if any(c.name == f"output:{s.name}" and c.status == "pass" for c in checks)
    ]
    # 2. critic, scorer, extractor
    picture = next((s for s in loadable if s.kind == "t2i"), None)
    if picture is not None:
        from poser_env.constraints import Command
        from poser_env.suites.diffusers.experts import make_expert

        pool = pool_factory()
        image = make_expert(picture, pool, output_size=None)(
            Command(MATCH_PROMPT, "generate"), None, 0
        ).image
        pool.clear()
        base = gpu.reset_peak()
        try:
            _, critic_load = timed(gpu, critic.vqa.load)
            peak = gpu.peak_since(base)
            checks.append(
                Check(
                    "load:critic",
                    "pass",
                    "",
                    {
                        "model": critic.vqa.model_name,
                        "load_s": round(critic_load, 2),
                        "peak_reserved_gb": None if peak is None else round(peak, 2),
                    },
                )
            )
        except Exception as e:  # noqa: BLE001 - reported; the preference checks then fail with it too
            checks.append(Check("load:critic", "fail", f"{type(e).__name__}: {e}"[:600]))

        def critic_score(img: np.ndarray, caption: str) -> float:
            return critic.judge(img, Command(caption, "generate"), ()).alignment

        check_preference("critic", critic_score, image, not args.dry_run, checks)
        check_preference(
            "scorer",
            lambda img, caption: scorer.score(img, caption)["vqascore"],
            image,
            not args.dry_run,
            checks,
        )
        scorer.close()  # evaluation runs after training: not resident with the experts
        if gpu.cuda:
            import gc

            gc.collect()
            torch.cuda.empty_cache()
    try:
        plan, plan_s = timed(
            gpu, lambda: extractor.extract(MATCH_PROMPT + ", then make the background a beach")
        )
        checks.append(
            Check(
                "extractor:plan",
                "pass",
                "",
                {"commands": len(plan.commands), "seconds": round(plan_s, 2)},
            )
        )
    except Exception as e:  # noqa: BLE001 - a tiny random LLM writes no JSON: reported, judged only on GPU
        checks.append(
            Check(
                "extractor:plan",
                "info" if args.dry_run else "fail",
                f"{type(e).__name__}: {e}"[:300],
            )
        )
    # 3. forced eviction on an emulated 80 GB card, critic and extractor resident
    if gpu.cuda:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, EMULATED_GPU_GB * 1e9 / total))
        try:
            extractor.load()
            critic.vqa.load()
        except Exception as e:  # noqa: BLE001
            checks.append(
                Check(
                    "eviction:80gb",
                    "fail",
                    f"critic or extractor not loaded: {type(e).__name__}: {e}"[:600],
                )
            )
            loadable = []
        torch.cuda.reset_peak_memory_stats()
    if loadable:
        check_eviction(loadable, pool_factory, critic, extractor, gpu, budget, checks)
    report = {
        "device": "cpu (dry run, tiny random models: nothing here is a GPU measurement)"
        if args.dry_run
        else torch.cuda.get_device_name(0),
        "command": "python scripts/gpu_smoke.py " + " ".join(args.argv),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            **{m: __import__(m).__version__ for m in ("diffusers", "transformers")},
        },
        "wall_seconds": round(time.perf_counter() - start, 1),
        "checks": [asdict(c) for c in checks],
        "summary": {
            k: sum(c.status == k for c in checks) for k in ("pass", "fail", "gated", "info")
        },
    }
    if tmp is not None:
        tmp.cleanup()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="GPU acceptance test of the diffusers suite (see the module docstring)."
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny random models on CPU: checks the script only"
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="one warm call per expert (under 10 min on one H100/H200)",
    )
    parser.add_argument(
        "--experts", default=None, help="comma-separated expert names (default: all 12)"
    )
    parser.add_argument(
        "--model-root",
        default=None,
        help="folder of local checkpoints, searched before the hub cache",
    )
    parser.add_argument(
        "--out", default="gpu_smoke", help="write OUT.json and OUT.md (default: gpu_smoke)"
    )
    parser.add_argument(
        "--print-downloads", action="store_true", help="print the `hf download` commands and exit"
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.print_downloads:
        from poser_env.suites.diffusers.memory import PRESETS
        from poser_env.suites.diffusers.models import DEFAULT_CATALOG
        from poser_env.suites.diffusers.scorers import DEFAULT_SCORER_MODEL

        preset = PRESETS["80gb"]
        models = dict.fromkeys(
            [s.model for s in DEFAULT_CATALOG]
            + [preset.critic_model, preset.extractor_model, DEFAULT_SCORER_MODEL]
        )
        for m in models:
            gated = any(s.gated for s in DEFAULT_CATALOG if s.model == m)
            print(
                f"hf download {m}"
                + ("   # gated: accept the licence on huggingface.co first" if gated else "")
            )
        return 0
    report = run(args)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    table = markdown(report)
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    return 1 if report["summary"]["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
