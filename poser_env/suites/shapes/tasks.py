"""Procedural task generator of the Shapes world.

Generation tasks start from an empty canvas; editing tasks start from a rendered source
scene. Every task is checked for solvability before it is returned: a perfect expert
executes its commands on the symbolic scene, and every command's and the whole prompt's
constraints must then hold (otherwise the task is redrawn).

The test split holds (shape, colour) combinations that never appear in training tasks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from poser_env.components import Task, TaskSource
from poser_env.constraints import Command, ObjectRef
from poser_env.error import ConfigError
from poser_env.suites.shapes.experts import PERFECT, ShapesExpert, place
from poser_env.suites.shapes.language import (
    EDIT_PREFIXES,
    Group,
    Intent,
    SymbolicState,
    intent_command,
    join_clauses,
    phrase,
)
from poser_env.suites.shapes.scene import Scene, holds, render
from poser_env.suites.shapes.vocab import (
    COLORS,
    MAX_COUNT,
    REGIONS,
    RELATIONS,
    SHAPES,
    SIZES,
    STYLES,
)

#: (shape, colour) pairs held out of the training split (one per shape and per colour).
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {
        ("circle", "purple"),
        ("square", "orange"),
        ("triangle", "blue"),
        ("diamond", "yellow"),
        ("star", "green"),
        ("cross", "red"),
    }
)

#: Number of commands per difficulty (inclusive ranges), for generation and editing tasks.
DIFFICULTIES: dict[str, dict[str, tuple[int, int]]] = {
    "easy": {"generation": (1, 2), "editing": (1, 1)},
    "medium": {"generation": (2, 4), "editing": (1, 3)},
    "hard": {"generation": (4, 6), "editing": (3, 5)},
}
SPLITS = ("train", "test", "all")

_PERFECT = PERFECT  # aesthetic 0: random placement, a strict solvability check
_PERFECT_T2I = ShapesExpert("perfect-t2i", "t2i", 0.0, _PERFECT)
_PERFECT_I2I = ShapesExpert("perfect-i2i", "i2i", 0.0, _PERFECT)


@dataclass(frozen=True)
class ShapesTaskConfig:
    """Distribution of Shapes tasks.

    Attributes:
        difficulty: ``"easy"``, ``"medium"`` or ``"hard"`` (number of commands per task).
        split: ``"train"`` (never uses held-out combinations), ``"test"`` (each task uses
            at least one) or ``"all"``.
        editing_fraction: Share of editing tasks (source image + edits), in [0, 1].
    """

    difficulty: str = "medium"
    split: str = "train"
    editing_fraction: float = 0.25

    def __post_init__(self) -> None:
        if self.difficulty not in DIFFICULTIES:
            raise ConfigError(
                f"difficulty must be one of {sorted(DIFFICULTIES)}, got {self.difficulty!r}."
            )
        if self.split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {self.split!r}.")
        if not 0.0 <= self.editing_fraction <= 1.0:
            raise ConfigError(f"editing_fraction must be in [0, 1], got {self.editing_fraction!r}.")


@functools.cache
def _cdf(p: tuple[float, ...]) -> np.ndarray:
    cdf = np.array(p).cumsum()
    return cdf / cdf[-1]


def _choice(rng: np.random.Generator, p: tuple[float, ...]) -> int:
    """``int(rng.choice(len(p), p=p))``, the same draw: numpy looks one ``rng.random()`` up
    in this normalised cumulative sum, after 10 us of checks of ``p``."""
    return int(_cdf(p).searchsorted(rng.random(), side="right"))


@functools.cache
def _longer(n: int) -> tuple[float, ...]:
    """Probabilities of 1..n commands over lo..hi: longer tasks are likelier (1, 2, 3...)."""
    weights = np.arange(1, n + 1, dtype=float)
    return tuple((weights / weights.sum()).tolist())


class ShapesTaskSource(TaskSource):
    """Samples solvable Shapes tasks (see module docstring)."""

    def __init__(self, config: ShapesTaskConfig | None = None, **kwargs):
        self.config = config if config is not None else ShapesTaskConfig(**kwargs)

    def sample(self, rng: np.random.Generator) -> Task:
        for _ in range(200):
            task = self._try(rng)
            if task is not None:
                return task
        raise RuntimeError("Could not draw a solvable task in 200 tries; this is a bug.")

    # ------------------------------------------------------------------ internals
    def _pair_ok(self, shape: str, color: str) -> bool:
        return self.config.split != "train" or (shape, color) not in HELD_OUT

    def _new_ref(
        self, rng, state: SymbolicState, extra: tuple = (), sized: float = 0.35
    ) -> ObjectRef | None:
        used = {(g.ref.noun, g.ref.color) for g in state.groups} | set(extra)
        for _ in range(30):
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            color = list(COLORS)[int(rng.integers(len(COLORS)))]
            if (shape, color) in used or not self._pair_ok(shape, color):
                continue
            size = list(SIZES)[int(rng.integers(len(SIZES)))] if rng.random() < sized else None
            return ObjectRef(shape, color, size)
        return None

    def _new_group(
        self, rng, state: SymbolicState, others: list[ObjectRef], extra=()
    ) -> Group | None:
        ref = self._new_ref(rng, state, extra)
        if ref is None:
            return None
        max_count = 2 if ref.size == "big" else MAX_COUNT
        count = int(rng.integers(1, max_count + 1))
        u = rng.random()
        if others and u < 0.45:
            rel = RELATIONS[int(rng.integers(len(RELATIONS)))]
            return Group(ref, count, relation=(rel, others[int(rng.integers(len(others)))]))
        if u < 0.75:
            return Group(ref, count, region=list(REGIONS)[int(rng.integers(len(REGIONS)))])
        return Group(ref, count)

    def _intent(self, rng, state: SymbolicState, first_generation: bool) -> Intent | None:
        if first_generation:
            g1 = self._new_group(rng, state, [])
            if g1 is None:
                return None
            groups = [g1]
            if rng.random() < 0.3:
                g2 = self._new_group(rng, state, [g1.ref], extra=((g1.ref.noun, g1.ref.color),))
                if g2 is not None:
                    groups.append(g2)
            style = STYLES[1 + int(rng.integers(len(STYLES) - 1))] if rng.random() < 0.2 else None
            return Intent("generate", groups=tuple(groups), style=style)
        kinds = ("add", "recolor", "move", "remove", "restyle")
        kind = kinds[_choice(rng, (0.28, 0.2, 0.2, 0.12, 0.2))]
        refs = [g.ref for g in state.groups]
        if kind == "add":
            g = self._new_group(rng, state, refs)
            return None if g is None else Intent("add", groups=(g,))
        if kind == "restyle":
            choices = [s for s in STYLES if s != state.background and s != "plain"]
            return Intent("restyle", style=choices[int(rng.integers(len(choices)))])
        if not refs or (kind == "remove" and len(refs) < 2):
            return None
        target = refs[int(rng.integers(len(refs)))]
        if kind == "remove":
            return Intent("remove", target=target)
        if kind == "recolor":
            used = {(r.noun, r.color) for r in refs}
            colors = [
                c for c in COLORS if (target.noun, c) not in used and self._pair_ok(target.noun, c)
            ]
            return (
                None
                if not colors
                else Intent("recolor", target=target, color=colors[int(rng.integers(len(colors)))])
            )
        current = next(g.region for g in state.groups if g.ref == target)
        regions = [r for r in REGIONS if r != current]
        return Intent("move", target=target, region=regions[int(rng.integers(len(regions)))])

    def _source_scene(self, rng, state: SymbolicState) -> Scene | None:
        """A random clean scene for an editing task; fills ``state`` with its groups."""
        objs = []
        for _ in range(int(rng.integers(1, 4))):
            ref = self._new_ref(rng, state, sized=0.0)
            if ref is None:
                return None
            count = int(rng.integers(1, 4))
            size = list(SIZES)[int(rng.integers(2))]  # small or medium leave room for edits
            for _ in range(count):
                o = place(objs, ref.noun, ref.color, size, rng)
                if o is None:
                    return None
                objs.append(o)
            state.apply(Intent("add", groups=(Group(ref, count),)))
        bg = STYLES[int(rng.integers(len(STYLES)))]
        state.background = None  # the source background is not a requirement
        state.last_mentioned = None
        return Scene(tuple(objs), bg)

    def _try(self, rng: np.random.Generator) -> Task | None:
        cfg = self.config
        editing = rng.random() < cfg.editing_fraction
        kind = "editing" if editing else "generation"
        lo, hi = DIFFICULTIES[cfg.difficulty][kind]
        n_commands = lo + _choice(rng, _longer(hi - lo + 1))
        state = SymbolicState()
        scene = Scene((), "plain")
        source = None
        if editing:
            scene = self._source_scene(rng, state)
            if scene is None:
                return None
            source = render(scene)
            source_objects = scene.objects
        clauses: list[str] = []
        commands: list[Command] = []
        for i in range(n_commands):
            intent = None
            for _ in range(10):
                intent = self._intent(rng, state, first_generation=(i == 0 and not editing))
                if intent is not None:
                    break
            if intent is None:
                return None
            text = phrase(intent, state, rng)
            try:
                command = intent_command(intent, text, state)
            except ValueError:
                return None
            expert = _PERFECT_T2I if command.kind == "generate" else _PERFECT_I2I
            scene, _ = expert.edit_scene(scene, command, rng)
            if not all(holds(c, scene.objects, scene.background) for c in command.constraints):
                return None
            clauses.append(text)
            commands.append(command)
        constraints = state.constraints()
        if not all(holds(c, scene.objects, scene.background) for c in constraints):
            return None
        if cfg.split == "test":
            pairs = {
                (c.subject.noun, c.subject.color)
                for cmd in commands
                for c in cmd.constraints
                if c.subject
            }
            if editing:
                pairs |= {(o.shape, o.color) for o in source_objects}
            if not pairs & HELD_OUT:
                return None
        prefix = EDIT_PREFIXES[int(rng.integers(len(EDIT_PREFIXES)))] if editing else ""
        prompt = join_clauses(clauses, rng, prefix)
        return Task(
            prompt=prompt,
            kind=kind,
            image=source,
            constraints=constraints,
            meta={
                "difficulty": cfg.difficulty,
                "split": cfg.split,
                "n_commands": n_commands,
                "commands": [c.to_dict() for c in commands],
            },
        )
