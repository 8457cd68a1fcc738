"""The fast Shapes perception sees exactly what the straightforward one saw.

``_reference_perceive`` is the routine perception used before issue 15 made it faster
(colour table on every pixel, ``scipy.ndimage.label`` and ``find_objects``, a template
match per component, every background style compared pixel by pixel). The fast routine
must return the same objects, in the same order, with the same residual and confidences,
on clean, noisy, blurred, overlapping, clipped and random images, with either labeller.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import ndimage

from poser_env.suites.shapes import perception
from poser_env.suites.shapes.perception import PerceptionCache, classify_pixels, foreground
from poser_env.suites.shapes.scene import Obj, Scene, background, render
from poser_env.suites.shapes.vocab import CANVAS, COLORS, SHAPES, SIZES, STYLES


# ----------------------------------------------------------------------------- reference
def _reference_classify(image):
    q = (image >> 3).astype(np.uint16)
    idx = q[..., 0] << 10
    idx |= q[..., 1] << 5
    idx |= q[..., 2]
    return perception._LUT.take(idx)


_REF_BG_GREY = np.stack([background(style)[::2, ::2, 1] for style in STYLES]).astype(np.int16)


def _reference_perceive(image):
    """(objects, background, residual, confidences) as perception computed them before."""
    cls = _reference_classify(image)
    labels, n = ndimage.label(cls > 0)
    labels = labels.astype(np.intp, copy=False)
    objects, conf = [], []
    if n:
        hist = np.bincount((labels.ravel() << 3) | cls.ravel(), minlength=(n + 1) * 8).reshape(
            n + 1, 8
        )[:, 1:7]
        areas = hist.sum(axis=1)
        colors = hist.argmax(axis=1)
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            if areas[i] < perception._MIN_AREA:
                continue
            comp = labels[sl] == i
            h, w = comp.shape
            size = perception._size_word(max(h, w))
            bits = perception._bits(perception._normalise(comp))
            scores = [
                1.0 - (bits ^ t).bit_count() / perception._N_BITS
                for t in perception._TEMPLATES[size]
            ]
            k = max(range(len(scores)), key=scores.__getitem__)
            objects.append(
                Obj(
                    SHAPES[k],
                    tuple(COLORS)[int(colors[i])],
                    size,
                    sl[1].start + w // 2,
                    sl[0].start + h // 2,
                )
            )
            conf.append(scores[k])
    bg = cls[::2, ::2] == 0
    n_bg = int(bg.sum())
    if n_bg:
        diff = np.abs(image[::2, ::2, 1].astype(np.int16)[None] - _REF_BG_GREY)
        errs = (diff * bg[None]).sum(axis=(1, 2))
        k = int(errs.argmin())
        style, residual = STYLES[k], float(errs[k]) / n_bg
    else:
        style, residual = "plain", 0.0
    return tuple(objects), style, residual, tuple(conf)


# ----------------------------------------------------------------------------- images
def _scene(rng) -> Scene:
    """Objects anywhere: overlapping, touching, clipped by the border."""
    objs = []
    for _ in range(int(rng.integers(0, 9))):
        objs.append(
            Obj(
                str(rng.choice(SHAPES)),
                str(rng.choice(list(COLORS))),
                str(rng.choice(list(SIZES))),
                int(rng.integers(-8, CANVAS + 8)),
                int(rng.integers(-8, CANVAS + 8)),
            )
        )
    return Scene(tuple(objs), str(rng.choice(STYLES)))


def _images(seed: int, n: int):
    """Rendered scenes under every artefact the experts make, and a few odd images."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = render(_scene(rng)).astype(np.int16)
        kind = i % 6
        if kind == 1:  # light noise, as every expert adds
            img = img + np.round(rng.standard_normal(img.shape) * rng.uniform(0.5, 4.0)).astype(
                np.int16
            )
        elif kind == 2:  # heavy noise: many speckle components
            img = img + np.round(rng.standard_normal(img.shape) * 28.0).astype(np.int16)
        elif kind == 3:  # blur: soft, merged edges
            img = ndimage.uniform_filter(img, size=(5, 5, 1))
        elif kind == 4:  # blur then light noise
            img = ndimage.uniform_filter(img, size=(5, 5, 1)) + rng.integers(-3, 4, img.shape)
        yield np.clip(img, 0, 255).astype(np.uint8)
    yield np.zeros((CANVAS, CANVAS, 3), np.uint8)  # nothing coloured
    yield np.tile(
        np.array(COLORS["red"], np.uint8), (CANVAS, CANVAS, 1)
    )  # one object fills the canvas
    for _ in range(3):  # random pixels: every colour cell, hundreds of components
        yield rng.integers(0, 256, (CANVAS, CANVAS, 3), dtype=np.uint8)


def _labellers():
    out = [pytest.param(perception._label_scipy, id="scipy")]
    try:
        import cv2  # noqa: F401

        out.append(pytest.param(perception._label_opencv, id="opencv"))
    except ImportError:
        out.append(
            pytest.param(
                None,
                id="opencv",
                marks=pytest.mark.skip(reason="opencv-python-headless not installed"),
            )
        )
    return out


@pytest.mark.parametrize("labeller", _labellers())
def test_fast_perception_equals_the_reference(labeller, monkeypatch):
    monkeypatch.setattr(perception, "label_components", labeller)
    n_objects = 0
    for k, img in enumerate(_images(seed=15, n=360)):
        p = perception._perceive(img)
        got = (p.scene.objects, p.scene.background, p.residual, p.shape_confidence)
        want = _reference_perceive(img)
        assert got == want, f"image {k}: {got} != {want}"
        assert all(type(v) is int for o in p.scene.objects for v in (o.x, o.y))
        n_objects += len(p.scene.objects)
    assert n_objects > 500  # the images hold many objects, not only empty canvases


def test_foreground_is_the_colour_table_above_zero():
    rng = np.random.default_rng(3)
    for _ in range(20):
        img = rng.integers(0, 256, (CANVAS, CANVAS, 3), dtype=np.uint8)
        np.testing.assert_array_equal(foreground(img), _reference_classify(img) > 0)
    np.testing.assert_array_equal(classify_pixels(img), _reference_classify(img))
    # Every 5-bit colour cell once: the span test is the table's saturation test.
    levels = np.arange(32, dtype=np.uint8) * 8
    cells = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(CANVAS, 256, 3)
    np.testing.assert_array_equal(foreground(cells), perception._LUT.reshape(CANVAS, 256) > 0)


def test_cache_hits_only_identical_images():
    cache = PerceptionCache(maxsize=4)
    img = render(Scene((Obj("star", "blue", "big", 64, 64),), "dotted"))
    first = cache(img)
    assert cache(img.copy()) is first  # equal bytes: a hit
    other = img.copy()
    other[0, 1, 0] ^= 1  # a byte the sampled hash skips: same hash, different key
    assert perception._ImageKey(other).__hash__() == perception._ImageKey(img).__hash__()
    assert perception._ImageKey(other) != perception._ImageKey(img)
    assert cache(other) is not first
    cache2 = pickle.loads(pickle.dumps(cache))
    assert cache2.maxsize == 4 and len(cache2._data) == 0


def test_cache_accepts_non_contiguous_images():
    img = render(Scene((Obj("circle", "red", "medium", 40, 40),), "grid"))
    flipped = img[:, ::-1]
    assert (
        PerceptionCache()(flipped).scene == PerceptionCache()(np.ascontiguousarray(flipped)).scene
    )


def test_opencv_labelling_leaves_the_thread_setting_alone():
    cv2 = pytest.importorskip("cv2")
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(3)
        labels, n = perception._label_opencv(
            foreground(render(Scene((Obj("cross", "green", "big", 50, 60),), "plain")))
        )
        assert n == 1 and labels.max() == 1
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)
