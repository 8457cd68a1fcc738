"""Task sources for the real-model suite.

:data:`BUILTIN_PROMPTS` is a small list of long compositional prompts **written for this
project** in the style of T2I-CompBench and GenEval (counts, colours, spatial relations,
sequential edits, backgrounds). It is not a published benchmark and no result on it is
comparable with the paper's. Each prompt carries hand-written ground-truth constraints, so
final images are scored independently of whatever the extractor makes of the prompt.

Use :class:`PromptTaskSource` with your own prompts (a list, or a JSONL file with
``{"prompt": ..., "constraints": [...]}`` lines) for real experiments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from poser_env.components import Task, TaskSource
from poser_env.constraints import Constraint, ObjectRef
from poser_env.error import ConfigError


def _count(noun: str, n: int, color: str | None = None) -> Constraint:
    return Constraint(kind="count", subject=ObjectRef(noun, color=color), count=n)


def _rel(a: str, relation: str, b: str) -> Constraint:
    return Constraint(kind="relation", subject=ObjectRef(a), relation=relation, other=ObjectRef(b))


def _region(noun: str, region: str) -> Constraint:
    return Constraint(kind="region", subject=ObjectRef(noun), region=region)


def _bg(style: str) -> Constraint:
    return Constraint(kind="background", style=style)


#: ``(prompt, ground-truth constraints)`` pairs; see the module docstring for provenance.
BUILTIN_PROMPTS: tuple[tuple[str, tuple[Constraint, ...]], ...] = (
    (
        "Three glass bottles standing on a wooden table, each with a different label. "
        "Then add a red apple to the left of the bottles. Finally, make the background a brick wall.",
        (
            _count("bottle", 3),
            _count("apple", 1, "red"),
            _rel("apple", "left of", "bottle"),
            _bg("a brick wall"),
        ),
    ),
    (
        "A white cat sitting on the left and a black dog sitting on the right, in a sunny park. "
        "Then add a yellow ball between them.",
        (
            _count("cat", 1, "white"),
            _count("dog", 1, "black"),
            _rel("cat", "left of", "dog"),
            _count("ball", 1, "yellow"),
        ),
    ),
    (
        "Two blue mugs on a kitchen counter. Then remove one of the mugs. "
        "After that, add a green plant to the right of the mug.",
        (_count("mug", 1, "blue"), _count("plant", 1, "green"), _rel("plant", "right of", "mug")),
    ),
    (
        "A red car parked below a large billboard at night. "
        "Then restyle the whole image as a watercolor painting.",
        (
            _count("car", 1, "red"),
            _rel("car", "below", "billboard"),
            Constraint(kind="text", text="the image looks like a watercolor painting"),
        ),
    ),
    (
        "Four yellow tulips in a white vase in the center of a wooden table. "
        "Then add a pair of glasses next to the vase.",
        (
            _count("tulip", 4, "yellow"),
            _count("vase", 1, "white"),
            _region("vase", "center"),
            _count("glasses", 1),
        ),
    ),
    (
        "A lighthouse on the right side of a rocky coast at sunset, with two sailboats on the left. "
        "Then make the sky stormy.",
        (
            _count("lighthouse", 1),
            _region("lighthouse", "right"),
            _count("sailboat", 2),
            _region("sailboat", "left"),
            Constraint(kind="text", text="the sky is stormy"),
        ),
    ),
    (
        "A green frog sitting above a pink water lily on a pond. Then add three small fish below the lily.",
        (_count("frog", 1, "green"), _rel("frog", "above", "lily"), _count("fish", 3)),
    ),
    (
        "Five orange traffic cones in a row on an empty road. Then remove two of the cones. "
        "Finally, make the background a snowy forest.",
        (_count("cone", 3, "orange"), _bg("a snowy forest")),
    ),
    (
        "A wooden chair to the left of a blue sofa in a bright living room. "
        "Then add a small lamp on top of a table to the right of the sofa.",
        (
            _count("chair", 1),
            _count("sofa", 1, "blue"),
            _rel("chair", "left of", "sofa"),
            _count("lamp", 1),
        ),
    ),
    (
        "A birthday cake with six candles in the center of the image, on a purple tablecloth. "
        "Then recolor the tablecloth to green.",
        (
            _count("cake", 1),
            _count("candle", 6),
            _region("cake", "center"),
            Constraint(kind="text", text="the tablecloth is green"),
        ),
    ),
    (
        "Two astronauts standing on the moon, one holding a red flag, with the Earth at the top of the image. "
        "Then render the scene in the style of a vintage poster.",
        (
            _count("astronaut", 2),
            _count("flag", 1, "red"),
            _region("earth", "top"),
            Constraint(kind="text", text="the image looks like a vintage poster"),
        ),
    ),
    (
        "A black bicycle leaning against a yellow wall, with a brown dog lying below the bicycle. "
        "Then add a blue bird above the bicycle.",
        (
            _count("bicycle", 1, "black"),
            _count("dog", 1, "brown"),
            _rel("dog", "below", "bicycle"),
            _count("bird", 1, "blue"),
            _rel("bird", "above", "bicycle"),
        ),
    ),
)


class PromptTaskSource(TaskSource):
    """Samples generation tasks uniformly from a list of prompts.

    Args:
        prompts: ``None`` for :data:`BUILTIN_PROMPTS`; a list of prompt strings or of
            ``(prompt, constraints)`` pairs; or a path to a JSONL file with one
            ``{"prompt": str, "constraints": [Constraint.to_dict(), ...]}`` object per line
            (``constraints`` optional).
    """

    def __init__(self, prompts: Sequence[Any] | str | os.PathLike | None = None):
        if prompts is None:
            items = list(BUILTIN_PROMPTS)
        elif isinstance(prompts, (str, os.PathLike)) and Path(prompts).suffix == ".jsonl":
            items = []
            for n, line in enumerate(Path(prompts).read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    cons = (
                        tuple(Constraint.from_dict(c) for c in d["constraints"])
                        if "constraints" in d
                        else None
                    )
                    items.append((str(d["prompt"]), cons))
                except (ValueError, KeyError, TypeError) as e:
                    raise ConfigError(
                        f"{prompts}:{n}: expected {{'prompt': str, 'constraints': [...]}}, got {line[:80]!r} ({e})."
                    ) from e
        elif isinstance(prompts, str):
            raise ConfigError(
                f"prompts must be a list of prompts or a .jsonl path, got the string {prompts!r}."
            )
        else:
            items = [(p, None) if isinstance(p, str) else (str(p[0]), tuple(p[1])) for p in prompts]
        if not items:
            raise ConfigError("PromptTaskSource needs at least one prompt, got none.")
        self.items: list[tuple[str, tuple[Constraint, ...] | None]] = items

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, rng: np.random.Generator) -> Task:
        i = int(rng.integers(len(self.items)))
        prompt, constraints = self.items[i]
        return Task(
            prompt=prompt,
            kind="generation",
            constraints=constraints,
            meta={"index": i, "source": "prompts"},
        )
