"""Scene helpers of the Shapes world: rendering and the free-spot grid used for placing
objects, each the same as the simpler code it replaced (issue 15)."""

from __future__ import annotations

import math

import numpy as np

from poser_env.suites.shapes.scene import Obj, Scene, background, free_grid, render, sprite
from poser_env.suites.shapes.vocab import CANVAS, COLORS, SHAPES, SIZES, STYLES


def _reference_free_grid(existing, extent, x0, x1, y0, y1, gap):
    """The whole-grid comparison per object that placing used before issue 15."""
    xs = np.arange(int(np.ceil(x0)), int(np.floor(x1)) + 1, 2)
    ys = np.arange(int(np.ceil(y0)), int(np.floor(y1)) + 1, 2)
    free = np.ones((ys.size, xs.size), bool)
    for o in existing:
        reach = (extent + SIZES[o.size]) / 2 + gap
        free &= (np.abs(ys - o.y) >= reach)[:, None] | (np.abs(xs - o.x) >= reach)[None, :]
    return xs, ys, np.flatnonzero(free)


def test_free_grid_equals_the_whole_grid_comparison():
    rng = np.random.default_rng(15)
    sizes = list(SIZES)
    n_free = n_blocked = 0
    for _ in range(3000):
        objs = [
            Obj(
                "circle",
                "red",
                sizes[int(rng.integers(3))],
                int(rng.integers(-20, CANVAS + 20)),
                int(rng.integers(-20, CANVAS + 20)),
            )
            for _ in range(int(rng.integers(0, 9)))
        ]
        extent = SIZES[sizes[int(rng.integers(3))]]
        # Box edges as place() makes them: integers, region edges such as 0.4 * 128 - 2,
        # group centres +- a margin (means of integers), quarters, and empty boxes.
        x0, x1, y0, y1 = (
            float(v) for v in rng.uniform(-5, CANVAS + 5, 4) * rng.choice([1.0, 0.5], 4)
        )
        x0, y0 = (round(v * 4) / 4 if rng.random() < 0.5 else v for v in (x0, y0))
        gap = int(rng.integers(0, 5))
        got = free_grid(objs, extent, x0, x1, y0, y1, gap)
        want = _reference_free_grid(objs, extent, x0, x1, y0, y1, gap)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        n_free += want[2].size
        n_blocked += want[0].size * want[1].size - want[2].size
    assert n_free > 0 and n_blocked > 0  # both outcomes are exercised


def test_free_grid_blocks_the_reach_around_an_object():
    xs, ys, idx = free_grid(
        [Obj("square", "blue", "medium", 64, 64)], SIZES["small"], 0, 127, 0, 127, 3
    )
    free = np.zeros((ys.size, xs.size), bool)
    free.flat[idx] = True
    reach = (SIZES["small"] + SIZES["medium"]) / 2 + 3  # 21 pixels
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            assert free[j, i] == (abs(y - 64) >= reach or abs(x - 64) >= reach)
    assert math.isclose(reach, 21.0)


def _reference_render(scene: Scene, size: int = CANVAS) -> np.ndarray:
    """Rendering before issue 15: boolean-index assignment of the colour per object."""
    img = background(scene.background, size).copy()
    for obj in scene.objects:
        mask = sprite(obj.shape, SIZES[obj.size])
        h, w = mask.shape
        x0, y0 = int(obj.x) - w // 2, int(obj.y) - h // 2
        sx0, sy0 = max(0, -x0), max(0, -y0)
        sx1, sy1 = min(w, size - x0), min(h, size - y0)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        img[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1][mask[sy0:sy1, sx0:sx1]] = COLORS[obj.color]
    return img


def test_render_equals_the_reference():
    rng = np.random.default_rng(151)
    for _ in range(1500):
        objs = tuple(
            Obj(
                str(rng.choice(SHAPES)),
                str(rng.choice(list(COLORS))),
                str(rng.choice(list(SIZES))),
                int(rng.integers(-20, CANVAS + 20)),
                int(rng.integers(-20, CANVAS + 20)),
            )
            for _ in range(int(rng.integers(0, 9)))
        )  # overlapping, clipped and fully outside objects
        scene = Scene(objs, str(rng.choice(STYLES)))
        np.testing.assert_array_equal(render(scene), _reference_render(scene))


def test_matching_is_object_ref_matches():
    from poser_env.constraints import ObjectRef
    from poser_env.suites.shapes.scene import matching

    rng = np.random.default_rng(9)
    colors, sizes = list(COLORS), list(SIZES)
    objs = [
        Obj(str(rng.choice(SHAPES)), str(rng.choice(colors)), str(rng.choice(sizes)), 0, 0)
        for _ in range(200)
    ]
    for shape in SHAPES:
        for color in [None, *colors]:
            for size in [None, *sizes]:
                ref = ObjectRef(shape, color, size)
                assert matching(objs, ref) == [
                    o for o in objs if ref.matches(o.shape, o.color, o.size)
                ]
