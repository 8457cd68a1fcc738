"""Scenes of the Shapes world and their pixel rendering.

A :class:`Scene` is the hidden, symbolic content of an image: objects and a background.
Experts produce scenes and render them; the critic never sees a scene, only pixels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from poser_env.constraints import Constraint, ObjectRef, plural
from poser_env.suites.shapes.vocab import (
    CANVAS,
    COLORS,
    REGIONS,
    RELATION_MARGIN,
    SHAPES,
    SIZES,
)


@dataclass(frozen=True)
class Obj:
    """One object: attributes and the pixel position of its centre."""

    shape: str
    color: str
    size: str
    x: int
    y: int

    def moved(self, x: int, y: int) -> Obj:
        return replace(self, x=int(x), y=int(y))


@dataclass(frozen=True)
class Scene:
    """Objects on a background."""

    objects: tuple[Obj, ...] = ()
    background: str = "plain"


# --------------------------------------------------------------------------- sprites
_SUPERSAMPLE = 4


def _polygon(shape: str, s: float) -> list[tuple[float, float]] | None:
    """Vertices of ``shape`` inside an ``s`` x ``s`` box (``None`` for the circle)."""
    if shape == "square":
        return [(0, 0), (s, 0), (s, s), (0, s)]
    if shape == "triangle":
        return [(s / 2, 0), (s, s), (0, s)]
    if shape == "diamond":
        return [(s / 2, 0), (s, s / 2), (s / 2, s), (0, s / 2)]
    if shape == "cross":
        a, b = s / 3, 2 * s / 3
        return [
            (a, 0),
            (b, 0),
            (b, a),
            (s, a),
            (s, b),
            (b, b),
            (b, s),
            (a, s),
            (a, b),
            (0, b),
            (0, a),
            (a, a),
        ]
    if shape == "star":
        c = s / 2
        pts = []
        for i in range(10):
            r = c if i % 2 == 0 else c * 0.42
            ang = -np.pi / 2 + i * np.pi / 5
            pts.append((c + r * np.cos(ang), c + 1.05 * r * np.sin(ang) + 0.05 * c))
        return pts
    return None


@functools.cache
def sprite(shape: str, extent: int) -> np.ndarray:
    """Boolean mask of ``shape`` in an ``extent`` x ``extent`` box (drawn supersampled)."""
    big = extent * _SUPERSAMPLE
    img = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(img)
    poly = _polygon(shape, big - 1)
    if poly is None:
        draw.ellipse([0, 0, big - 1, big - 1], fill=255)
    else:
        draw.polygon(poly, fill=255)
    small = img.resize((extent, extent), Image.BOX)
    mask = np.asarray(small) >= 128
    # Crop to the mask's own bounding box so that the critic's bounding-box centre of a
    # clean object is exactly the object's position.
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    mask = np.ascontiguousarray(mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    mask.setflags(write=False)
    return mask


@functools.cache
def background(style: str, size: int = CANVAS) -> np.ndarray:
    """The greyscale pattern of a background style, ``(size, size, 3)`` uint8 (read-only)."""
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.full(
        (size, size), 240, np.uint8
    )  # clean pixels stay in [12, 243] (see experts._artefacts)
    if style == "striped":
        base[(xx + yy) % 12 < 5] = 214
    elif style == "dotted":
        base[((xx % 10) - 4) ** 2 + ((yy % 10) - 4) ** 2 <= 3] = 196
    elif style == "checkered":
        base[((xx // 16) + (yy // 16)) % 2 == 1] = 222
    elif style == "grid":
        base[(xx % 16 == 0) | (yy % 16 == 0)] = 190
    elif style != "plain":
        raise ValueError(f"Unknown background style {style!r}.")
    img = np.repeat(base[:, :, None], 3, axis=2)
    img.setflags(write=False)
    return img


def render(scene: Scene, size: int = CANVAS) -> np.ndarray:
    """Draw ``scene`` as a ``(size, size, 3)`` uint8 image (crisp, no artefacts)."""
    img = background(scene.background, size).copy()
    for obj in scene.objects:
        mask = sprite(obj.shape, SIZES[obj.size])
        h, w = mask.shape
        x0 = int(obj.x) - w // 2
        y0 = int(obj.y) - h // 2
        # Clip to the canvas.
        sx0, sy0 = max(0, -x0), max(0, -y0)
        sx1, sy1 = min(w, size - x0), min(h, size - y0)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        # One masked copy of the colour (boolean-index assignment of a tuple costs more).
        where = _sprite_where(obj.shape, SIZES[obj.size])[sy0:sy1, sx0:sx1]
        np.copyto(
            img[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1], _COLOR_PIXELS[obj.color], where=where
        )
    return img


_COLOR_PIXELS = {name: np.array(rgb, np.uint8) for name, rgb in COLORS.items()}


@functools.cache
def _sprite_where(shape: str, extent: int) -> np.ndarray:
    """``sprite(shape, extent)`` with a channel axis, to broadcast over RGB."""
    return sprite(shape, extent)[..., None]


# --------------------------------------------------------------------------- placement
def free_grid(
    existing: Iterable[Obj], extent: int, x0: float, x1: float, y0: float, y1: float, gap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spots on a 2-pixel grid in a box where an object of ``extent`` keeps ``gap`` pixels
    clear of every ``existing`` object.

    The grid is ``xs = arange(ceil(x0), floor(x1) + 1, 2)`` by ``ys`` alike; a spot is free
    when, for every existing object ``o`` with ``reach = (extent + SIZES[o.size]) / 2 +
    gap``, ``|y - o.y| >= reach`` or ``|x - o.x| >= reach``. Each object blocks a
    rectangle of grid cells, cleared with one slice, rather than a comparison of the whole
    grid per object.

    Returns:
        ``(xs, ys, idx)``: the grid's columns and rows and the flat (row-major) indices of
        the free spots, in increasing order.
    """
    xa, ya = math.ceil(x0), math.ceil(y0)
    xs = np.arange(xa, math.floor(x1) + 1, 2)
    ys = np.arange(ya, math.floor(y1) + 1, 2)
    nx, ny = xs.size, ys.size
    free = np.ones((ny, nx), bool)
    for o in existing:
        # Cells j with |start + 2j - centre| < reach: an open interval of j, in integers
        # (r2 is twice the reach): j0 = floor((d - r2) / 4) + 1, j1 = ceil((d + r2) / 4).
        r2 = extent + SIZES[o.size] + 2 * gap
        dy, dx = 2 * (o.y - ya), 2 * (o.x - xa)
        j0, j1 = max(0, (dy - r2) // 4 + 1), min(ny, -((-dy - r2) // 4))
        i0, i1 = max(0, (dx - r2) // 4 + 1), min(nx, -((-dx - r2) // 4))
        if j0 < j1 and i0 < i1:
            free[j0:j1, i0:i1] = False
    return xs, ys, np.flatnonzero(free)


# --------------------------------------------------------------------------- constraints
def in_region(x: float, y: float, region: str, size: int = CANVAS) -> bool:
    """Whether a centroid lies in ``region``."""
    x0, x1, y0, y1 = REGIONS[region]
    return x0 * size <= x < x1 * size and y0 * size <= y < y1 * size


def relation_holds(a: Sequence[Obj], rel: str, b: Sequence[Obj]) -> bool:
    """Whether group ``a`` is ``rel`` group ``b``: their mean centres differ by at least
    ``RELATION_MARGIN`` pixels in the relation's direction (how people read "to the right
    of the circles" for groups)."""
    if not a or not b:
        return False
    m = RELATION_MARGIN
    ax, ay = sum(o.x for o in a) / len(a), sum(o.y for o in a) / len(a)
    bx, by = sum(o.x for o in b) / len(b), sum(o.y for o in b) / len(b)
    if rel == "left of":
        return ax + m <= bx
    if rel == "right of":
        return ax >= bx + m
    if rel == "above":
        return ay + m <= by
    if rel == "below":
        return ay >= by + m
    raise ValueError(f"Unknown relation {rel!r}.")


def matching(objects: Iterable[Obj], ref: ObjectRef) -> list[Obj]:
    """The objects of kind ``ref`` (``ref.matches`` inlined: this runs for every group of
    every command an expert executes and every task the generator draws)."""
    noun, color, size = ref.noun, ref.color, ref.size
    return [
        o
        for o in objects
        if o.shape == noun
        and (color is None or o.color == color)
        and (size is None or o.size == size)
    ]


def describe_counts(objs: Sequence[Obj]) -> str:
    if not objs:
        return "nothing"
    counts: dict[tuple[str, str], int] = {}
    for o in objs:
        counts[(o.color, o.shape)] = counts.get((o.color, o.shape), 0) + 1
    return ", ".join(f"{n} {c} {plural(s, n)}" for (c, s), n in sorted(counts.items()))


def holds(c: Constraint, objects: Sequence[Obj], bg: str) -> bool:
    """``evaluate(c, objects, bg)[0]`` without the words (for the task generator)."""
    if c.kind not in ("count", "region", "relation"):
        return evaluate(c, objects, bg)[0]
    subj = matching(objects, c.subject)
    if c.kind == "count":
        return len(subj) == c.count
    if c.kind == "region":
        return bool(subj) and all(in_region(o.x, o.y, c.region) for o in subj)
    return relation_holds(subj, c.relation, matching(objects, c.other))


def evaluate(
    constraint: Constraint, objects: Sequence[Obj], bg: str, size: int = CANVAS
) -> tuple[bool, str]:
    """Check ``constraint`` against symbolic content; returns ``(passed, observed words)``."""
    k = constraint.kind
    if k == "background":
        return bg == constraint.style, f"a {bg} background"
    if k == "text":
        raise ValueError("The Shapes world cannot check free-text constraints.")
    subj = matching(objects, constraint.subject)
    if k == "count":
        observed = f"{len(subj)} {constraint.subject.phrase(len(subj))}"
        if len(subj) != constraint.count:
            others = [o for o in objects if o.shape == constraint.subject.noun and o not in subj]
            if others:
                observed += (
                    f" (other {plural(constraint.subject.noun, 2)}: {describe_counts(others)})"
                )
        return len(subj) == constraint.count, observed
    if not subj:
        return False, f"no {constraint.subject.phrase(2)}"
    if k == "region":
        outside = [o for o in subj if not in_region(o.x, o.y, constraint.region, size)]
        if outside:
            return False, f"{len(outside)} of {len(subj)} outside the {constraint.region} region"
        return True, f"all {len(subj)} in the {constraint.region} region"
    if k == "relation":
        others = matching(objects, constraint.other)
        if not others:
            return False, f"no {constraint.other.phrase(2)} to compare with"
        if not relation_holds(subj, constraint.relation, others):
            return (
                False,
                f"the {constraint.subject.phrase(2)} are not {constraint.relation} "
                f"the {constraint.other.phrase(2)} (group centres)",
            )
        return (
            True,
            f"the {constraint.subject.phrase(2)} are {constraint.relation} the {constraint.other.phrase(2)}",
        )
    raise AssertionError(k)


assert set(SHAPES) == {"circle", "square", "triangle", "diamond", "star", "cross"}
