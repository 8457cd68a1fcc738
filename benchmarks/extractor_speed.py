r"""The Shapes extractor's share of an ImagePoser-v0 reset(), and its time per prompt.

Times every ``extractor.extract`` call inside ``env.reset()`` (the same seeds give the same
task prompts on every commit since the v0 pin), the whole reset, and the extractor alone
on the prompts those resets drew (repeated, for a steadier per-prompt time). With
``--corpus`` it also parses the hand-phrased prompts of the extractor's test corpus (only
meaningful on commits that can parse them). Times are CPU seconds of this process
(``time.process_time``), so that other jobs on a shared machine inflate them less than
wall-clock times; one core (numpy threads pinned to 1); the median of ``--rounds`` rounds.

``--compare-with DIR`` also loads ``DIR/poser_env/suites/shapes/extractor.py`` (another
commit's extractor) next to this one and times both on the same drawn prompts, alternating,
in the same process: the parser's own cost, free of every other change between commits.

    python benchmarks/extractor_speed.py --resets 300 --rounds 5 --out benchmarks/results/extractor_speed.json

To compare with an older commit, run this file against that commit's package:

    git worktree add /tmp/before 7374bf1
    PYTHONPATH=/tmp/before python benchmarks/extractor_speed.py --label before --out /tmp/before.json
    python benchmarks/extractor_speed.py --compare-with /tmp/before --corpus \
        --out benchmarks/results/extractor_speed.json
    git worktree remove /tmp/before
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402

import poser_env  # noqa: E402
from poser_env.error import PromptParseError  # noqa: E402

CORPUS = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "suites"
    / "shapes"
    / "data"
    / "prompts_corpus.txt"
)


def _commit(package_dir: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=package_dir,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def reset_round(resets: int, first_seed: int) -> tuple[float, float, list]:
    """Seconds in reset() and in extract() over ``resets`` resets, and the (prompt, image) pairs."""
    env = gym.make("ImagePoser-v0")
    extractor = env.unwrapped.suite.extractor
    inner = extractor.extract
    spent = [0.0]
    seen = []

    def timed(prompt, image=None):
        start = time.process_time()
        try:
            return inner(prompt, image)
        finally:
            spent[0] += time.process_time() - start
            seen.append((prompt, image))

    extractor.extract = timed  # instance attribute: the env's calls go through it
    env.reset(seed=first_seed - 1)  # warm-up (imports, caches) outside the timing
    spent[0], seen[:] = 0.0, []
    start = time.process_time()
    for i in range(resets):
        env.reset(seed=first_seed + i)
    total = time.process_time() - start
    env.close()
    return total, spent[0], seen


def parse_round(extractor, items: list, repeats: int) -> float:
    """Mean seconds per extract() over ``items`` parsed ``repeats`` times."""
    start = time.process_time()
    for _ in range(repeats):
        for prompt, image in items:
            try:
                extractor.extract(prompt, image)
            except PromptParseError:
                pass
    return (time.process_time() - start) / (repeats * len(items))


def load_extractor(tree: Path):
    """The ShapesExtractor class of another checkout (its module loaded under a new name)."""
    import importlib.util

    path = tree / "poser_env" / "suites" / "shapes" / "extractor.py"
    spec = importlib.util.spec_from_file_location("_other_shapes_extractor", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ShapesExtractor


def corpus_prompts() -> list[tuple[str, None]]:
    """The corpus prompts that need no source image."""
    entries: list[list] = []
    for line in CORPUS.read_text().splitlines():
        if line.startswith("> "):
            entries.append([line[2:], False])
        elif line.startswith("scene: "):
            entries[-1][1] = True
    return [(prompt, None) for prompt, has_scene in entries if not has_scene]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resets", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="passes over the drawn prompts when timing extract() alone",
    )
    parser.add_argument(
        "--corpus", action="store_true", help="also time the hand-phrased corpus prompts"
    )
    parser.add_argument(
        "--compare-with",
        type=Path,
        default=None,
        help="another checkout whose extractor to time alongside",
    )
    parser.add_argument("--label", default="after")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from poser_env.suites.shapes import ShapesExtractor

    package_dir = Path(poser_env.__file__).resolve().parent
    Other = load_extractor(args.compare_with) if args.compare_with is not None else None
    shares, reset_ms, extract_ms, alone_us, corpus_us, other_us = [], [], [], [], [], []
    for r in range(args.rounds):
        total, spent, seen = reset_round(args.resets, first_seed=10_000)
        shares.append(spent / total)
        reset_ms.append(1e3 * total / args.resets)
        extract_ms.append(1e3 * spent / args.resets)
        if Other is not None:
            other_us.append(1e6 * parse_round(Other(), seen, args.repeats))
        alone_us.append(1e6 * parse_round(ShapesExtractor(), seen, args.repeats))
        if args.corpus:
            corpus_us.append(1e6 * parse_round(ShapesExtractor(), corpus_prompts(), args.repeats))
        print(
            f"round {r}: reset {reset_ms[-1]:.2f} ms, extract {extract_ms[-1]:.3f} ms ({100 * shares[-1]:.2f}%), "
            f"extract alone {alone_us[-1]:.0f} us/prompt"
            + (f" (other {other_us[-1]:.0f})" if other_us else "")
            + (f", corpus {corpus_us[-1]:.0f} us/prompt" if corpus_us else "")
        )
    result = {
        "label": args.label,
        "commit": _commit(package_dir),
        "package": str(package_dir.name),
        "resets_per_round": args.resets,
        "rounds": args.rounds,
        "reset_ms_median": round(statistics.median(reset_ms), 3),
        "extract_in_reset_ms_median": round(statistics.median(extract_ms), 4),
        "extractor_share_of_reset_median": round(statistics.median(shares), 5),
        "extract_alone_us_per_prompt_median": round(statistics.median(alone_us), 1),
        "compare_with_commit": _commit(args.compare_with)
        if args.compare_with is not None
        else None,
        "compare_with_extract_alone_us_per_prompt_median": round(statistics.median(other_us), 1)
        if other_us
        else None,
        "corpus_us_per_prompt_median": round(statistics.median(corpus_us), 1)
        if corpus_us
        else None,
        "clock": "process_time (CPU seconds of this process)",
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(result, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
