"""Env overhead of the 'diffusers' suite: an ImagePoser-v0 step against the same model work done directly.

With tiny random models on CPU, each env step is timed end to end and then the same model
work is replayed **directly**, as a user without the environment would do it, and timed:

* every diffusers pipeline call the step made, with the same pipeline object and the same
  keyword arguments (prompt, input image, strength, steps, guidance, ``output_type``), and
  a fresh CPU ``torch.Generator`` with the same seed;
* every critic VLM call the step made (the end-of-episode judgement included), **with its
  processor preprocessing**: ``processor(text=..., images=..., padding=True,
  return_tensors="pt")`` on the same chat-formatted texts and images, then the model's
  forward (or ``generate``) under ``torch.inference_mode``.

The calls are recorded by thin class-level wrappers that stay installed during the replay
too, so both sides pay for them. The direct replay gets, for free, the things a user
would prepare once (the chat-formatted question strings, the input ``PIL`` image); the
environment is charged for everything else: extractor, prompt building, image conversions
and resizing, the critic's scoring arithmetic and verdict, reward, observation and info.

    env overhead = env step time - direct time of the same calls

A first, untimed pass records each step's calls; a second pass replays the same episodes
(same seed and actions, critic caches cleared) and times every env step next to the direct
replay of its calls, in random order within the pair, so machine drift, background load and
warm caches hit both alike. The report gives means, 10%-trimmed means, medians and the
paired differences. ``reset()`` is timed separately and not part of the step. Use
``--threads 1`` on a shared machine: oversubscribed torch threads stall for seconds.
Tiny models make the model time small, so the percentage is a pessimistic bound: with real
models the same absolute overhead is a far smaller fraction.

    python benchmarks/overhead.py --steps 400 --warmup 20 --seed 0 --threads 1
    python benchmarks/overhead.py --steps 150 --threads 1 --profile 30   # cProfile of the env steps
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import platform
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Recorder:
    """Records the model calls of one env step so that they can be replayed directly."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] | None = None
        self._depth = 0  # generate() calls forward() inside: record only the outermost call

    def wrap_pipeline(self, cls: type) -> None:
        if getattr(cls.__call__, "_recorded", False):
            return
        original = cls.__call__
        recorder = self

        @functools.wraps(original)
        def call(pipe, *args, **kwargs):
            if recorder.events is not None:
                assert not args, "experts call pipelines with keyword arguments only"
                seed = kwargs["generator"].initial_seed()
                recorder.events.append(
                    ("pipe", pipe, {k: v for k, v in kwargs.items() if k != "generator"}, seed)
                )
            return original(pipe, *args, **kwargs)

        call._recorded = True
        cls.__call__ = call

    def wrap_processor(self, cls: type) -> None:
        if getattr(cls.__call__, "_recorded", False):
            return
        original = cls.__call__
        recorder = self

        @functools.wraps(original)
        def call(processor, *args, **kwargs):
            if recorder.events is not None:
                assert not args, "the critic calls its processor with keyword arguments only"
                recorder.events.append(("processor", processor, dict(kwargs)))
            return original(processor, *args, **kwargs)

        call._recorded = True
        cls.__call__ = call

    def wrap_model(self, cls: type) -> None:
        for method in ("forward", "generate"):
            original = getattr(cls, method)
            if getattr(original, "_recorded", False):
                continue
            setattr(cls, method, self._model_wrapper(method, original))

    def _model_wrapper(self, method: str, original: Any) -> Any:
        recorder = self

        @functools.wraps(original)
        def call(model, *args, **kwargs):
            if recorder.events is not None and recorder._depth == 0:
                recorder.events.append(("model", model, method))
            recorder._depth += 1
            try:
                return original(model, *args, **kwargs)
            finally:
                recorder._depth -= 1

        call._recorded = True
        return call


def replay(events: list[tuple[Any, ...]], generate_kwargs: dict[str, Any]) -> None:
    """The recorded model calls, made directly (what a user without the env would run)."""
    import torch

    inputs = None
    for event in events:
        if event[0] == "pipe":
            _, pipe, kwargs, seed = event
            with torch.inference_mode():
                pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(seed))
        elif event[0] == "processor":
            _, processor, kwargs = event
            inputs = processor(**kwargs)
        else:
            _, model, method = event
            batch = inputs.to(model.device)
            with torch.inference_mode():
                if method == "forward":
                    model(**batch)
                else:
                    model.generate(**batch, **generate_kwargs)


def signature(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """What identifies a recorded call: the pipeline, seed and prompt; the processor texts."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        if e[0] == "pipe":
            out.append(("pipe", id(e[1]), e[3], e[2].get("prompt")))
        elif e[0] == "processor":
            out.append(("processor", tuple(e[2].get("text") or ())))
        else:
            out.append(("model", e[2]))
    return out


def trimmed_mean(values: list[float], cut: float = 0.1) -> float:
    """Mean without the lowest and highest ``cut`` fraction (robust to scheduler stalls)."""
    ordered = sorted(values)
    k = int(len(ordered) * cut)
    return statistics.fmean(ordered[k : len(ordered) - k])


def summary(values: list[float]) -> dict[str, float]:
    return {
        "mean_ms": 1000 * statistics.fmean(values),
        "trimmed_mean_10pct_ms": 1000 * trimmed_mean(values),
        "median_ms": 1000 * statistics.median(values),
        "max_ms": 1000 * max(values),
    }


def record_pass(env, recorder, total: int, seed: int) -> tuple[list[int], list[list[Any]]]:
    """Play ``total`` random valid steps from ``reset(seed)``; each step's action and model calls."""
    import numpy as np

    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    actions: list[int] = []
    recorded: list[list[tuple[Any, ...]]] = []
    for _ in range(total):
        action = int(rng.choice(np.flatnonzero(obs["action_mask"])))
        recorder.events = []
        obs, _, terminated, truncated, info = env.step(action)
        if info.get("error"):
            raise RuntimeError(f"step failed: {info['error']}")
        actions.append(action)
        recorded.append(recorder.events)
        recorder.events = None
        if terminated or truncated:
            obs, _ = env.reset()
    return actions, recorded


def print_profile(profiler: cProfile.Profile, top: int) -> None:
    """The ``top`` functions by cumulative and own time (and the raw stats to $OVERHEAD_PSTATS)."""
    if os.environ.get("OVERHEAD_PSTATS"):
        profiler.dump_stats(os.environ["OVERHEAD_PSTATS"])
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("cumulative")
    stats.print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def write_result(result: dict[str, Any], out: str) -> None:
    """Print the result as JSON, and write it to ``out`` unless that is empty."""
    text = json.dumps(result, indent=2)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="env steps to time (after warm-up)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument(
        "--out", default="benchmarks/results/overhead.json", help="JSON result ('' to skip)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="profile the env steps with cProfile and print the top N functions (no JSON)",
    )
    args = parser.parse_args()

    import diffusers
    import gymnasium as gym
    import numpy as np
    import torch
    import transformers

    import poser_env  # noqa: F401 - registers ImagePoser-v0
    from poser_env.suites.diffusers.testing import save_tiny_vlm, tiny_pool

    threads = args.threads or max(1, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        specs = tiny_pool(Path(tmp) / "models")
        vlm = str(save_tiny_vlm(Path(tmp) / "vlm"))
        env = gym.make(
            "ImagePoser-v0",
            suite="diffusers",
            suite_kwargs={
                "catalog": [s.to_dict() for s in specs],
                "critic": "vlm",
                "critic_kwargs": {"model": vlm, "reflection": "template"},
                "extractor": "rules",
                "device": "cpu",
                "image_size": (32, 32),
            },
            max_steps=6,
            image_size=(32, 32),
        )
        suite = env.unwrapped.suite
        recorder = Recorder()
        for expert in suite.experts:  # load every pipeline now, then wrap its class
            recorder.wrap_pipeline(type(expert.loader.get(expert.spec)))
        vqa = suite.critic.vqa
        vqa.load()
        recorder.wrap_processor(type(vqa._processor))
        recorder.wrap_model(type(vqa._model))

        total = args.warmup + args.steps

        def clear_critic_caches() -> None:
            # The second pass must not find the first pass's answers (same images).
            vqa._scores.clear()
            vqa._prompts.clear()

        # Pass 1 (untimed): play the episodes and record each step's model calls.
        actions, recorded = record_pass(env, recorder, total, args.seed)
        clear_critic_caches()

        # Pass 2 (timed): the same episodes again (same seed, same actions), each step paired
        # with the direct replay of its calls, in random order within the pair so that
        # neither side systematically runs on caches the other has just warmed.
        order = np.random.default_rng(args.seed + 1)
        obs, _ = env.reset(seed=args.seed)
        env_times: list[float] = []
        direct_times: list[float] = []
        reset_times: list[float] = []
        model_calls = {"pipe": 0, "processor": 0, "model": 0}
        profiler = cProfile.Profile() if args.profile else None
        generate_kwargs = {"max_new_tokens": 48, "do_sample": False}
        for i, (action, events) in enumerate(zip(actions, recorded, strict=True)):
            direct_first = bool(order.random() < 0.5)
            if direct_first:
                start = time.perf_counter()
                replay(events, generate_kwargs)
                direct_time = time.perf_counter() - start
            recorder.events = []
            if profiler is not None and i >= args.warmup:
                profiler.enable()
            start = time.perf_counter()
            obs, _, terminated, truncated, info = env.step(action)
            env_time = time.perf_counter() - start
            if profiler is not None:
                profiler.disable()
            if signature(recorder.events) != signature(events):
                raise RuntimeError(f"step {i} made other model calls than in the recording pass")
            recorder.events = None
            if not direct_first:
                start = time.perf_counter()
                replay(events, generate_kwargs)
                direct_time = time.perf_counter() - start
            if i >= args.warmup:
                env_times.append(env_time)
                direct_times.append(direct_time)
                for e in events:
                    model_calls[e[0]] += 1
            if terminated or truncated:
                start = time.perf_counter()
                obs, _ = env.reset()
                if i >= args.warmup:
                    reset_times.append(time.perf_counter() - start)
        env.close()

    if profiler is not None:
        print_profile(profiler, args.profile)
        return

    diffs = [e - d for e, d in zip(env_times, direct_times, strict=True)]
    env_s, direct_s = summary(env_times), summary(direct_times)
    n = len(env_times)
    result = {
        "benchmark": "diffusers suite env overhead: env step vs the same model calls made directly "
        "(tiny random models, CPU)",
        "command": (
            "python benchmarks/overhead.py "
            f"--steps {args.steps} --warmup {args.warmup} --seed {args.seed} --threads {args.threads}"
        ),
        "steps": n,
        "torch_threads": threads,
        "env_step": env_s,
        "direct_calls": direct_s,
        "overhead_ms": {
            "mean_of_paired_differences": 1000 * statistics.fmean(diffs),
            "trimmed_mean_of_paired_differences": 1000 * trimmed_mean(diffs),
            "median_of_paired_differences": 1000 * statistics.median(diffs),
        },
        "overhead_percent": {
            "mean": 100 * statistics.fmean(diffs) / statistics.fmean(direct_times),
            "trimmed_mean": 100 * trimmed_mean(diffs) / trimmed_mean(direct_times),
            "median": 100 * statistics.median(diffs) / statistics.median(direct_times),
        },
        "target_percent": 5.0,
        "model_calls_per_step": {k: v / n for k, v in model_calls.items()},
        "reset": summary(reset_times) | {"count": len(reset_times)} if reset_times else None,
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_1min_before_after": [
                round(load_before[0], 2),
                round(os.getloadavg()[0], 2),
            ],
            "python": platform.python_version(),
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
        },
    }
    result["target_met"] = {
        k: v < result["target_percent"] for k, v in result["overhead_percent"].items()
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
