"""Pixel perception for the Shapes world: image -> objects and background.

Used by the critic (which must judge from pixels alone) and by image-to-image experts
(which, like real editing models, only see the image they are given). No hidden state.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from poser_env.suites.shapes.scene import Obj, Scene, background, render, sprite
from poser_env.suites.shapes.vocab import CANVAS, COLORS, SHAPES, SIZE_THRESHOLDS, SIZES, STYLES

_COLOR_NAMES = tuple(COLORS)
_TEMPLATE = 16  # side of the normalised mask used to classify shapes
_MIN_AREA = 20  # pixels; smaller components are noise speckles
#: Mean absolute pixel error (0-255 scale) at which fidelity reaches 0.
FIDELITY_SCALE = 16.0


def _build_lut() -> np.ndarray:
    """Colour class (0 = background, i+1 = COLORS[i]) for each 5-bit-per-channel RGB cell."""
    levels = np.arange(32) * 8 + 4
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    rgb = np.stack([r, g, b], -1).reshape(-1, 3).astype(np.float32)
    pal = np.array(list(COLORS.values()), np.float32)
    dist = ((rgb[:, None, :] - pal[None]) ** 2).sum(-1)
    cls = dist.argmin(1) + 1
    sat = rgb.max(1) - rgb.min(1)
    cls[sat < 70] = 0
    return cls.astype(np.uint8)


_LUT = _build_lut()


def classify_pixels(image: np.ndarray) -> np.ndarray:
    """Per-pixel colour class map (0 = background)."""
    q = (image >> 3).astype(np.uint16)
    return _LUT[(q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]]


def _normalise(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    rows = ((np.arange(_TEMPLATE) + 0.5) * h / _TEMPLATE).astype(np.intp)
    cols = ((np.arange(_TEMPLATE) + 0.5) * w / _TEMPLATE).astype(np.intp)
    return mask[rows][:, cols]


def _size_word(extent: float) -> str:
    small_medium, medium_big = SIZE_THRESHOLDS
    return "small" if extent < small_medium else ("medium" if extent < medium_big else "big")


_TEMPLATES = {
    size: np.stack([_normalise(sprite(shape, ext)) for shape in SHAPES]).astype(np.int8)
    for size, ext in SIZES.items()
}
# Background patterns, sampled on every other row and column (all periods are even).
_BG_GREY = {style: background(style)[::2, ::2, 1].astype(np.int16) for style in STYLES}


@dataclass(frozen=True)
class Perception:
    """What perception makes of an image.

    Attributes:
        scene: Recovered objects and background.
        residual: Mean absolute difference (0-255) between the image and a clean rendering
            of ``scene``: noise, blur and broken objects all raise it.
        shape_confidence: Per object, the template agreement of its shape in [0, 1].
    """

    scene: Scene
    residual: float
    shape_confidence: tuple[float, ...]

    @property
    def fidelity(self) -> float:
        return float(np.clip(1.0 - self.residual / FIDELITY_SCALE, 0.0, 1.0))


def _perceive(image: np.ndarray) -> Perception:
    cls = classify_pixels(image)
    labels, n = ndimage.label(cls > 0)
    objects: list[Obj] = []
    conf: list[float] = []
    if n:
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            comp = labels[sl] == i
            area = int(comp.sum())
            if area < _MIN_AREA:
                continue
            h, w = comp.shape
            color = _COLOR_NAMES[int(np.bincount(cls[sl][comp], minlength=7)[1:].argmax())]
            size = _size_word(max(h, w))
            scores = (_TEMPLATES[size] == _normalise(comp)[None]).mean(axis=(1, 2))
            k = int(scores.argmax())
            x = sl[1].start + w // 2
            y = sl[0].start + h // 2
            objects.append(Obj(SHAPES[k], color, size, x, y))
            conf.append(float(scores[k]))
    # Background: nearest style pattern on the pixels no object covers.
    bg_mask = cls[::2, ::2] == 0
    if bg_mask.any():
        vals = image[::2, ::2, 1][bg_mask].astype(np.int16)
        errs = {s: int(np.abs(vals - t[bg_mask]).sum()) for s, t in _BG_GREY.items()}
        style = min(errs, key=errs.get)
    else:
        style = "plain"
    scene = Scene(tuple(objects), style)
    # Residual on a quarter of the pixels: enough to measure noise and blur.
    clean = render(scene, image.shape[0])[::2, ::2]
    residual = float(np.abs(image[::2, ::2].astype(np.int16) - clean).mean())
    return Perception(scene, residual, tuple(conf))


class PerceptionCache:
    """Small LRU of perceptions keyed by the image's bytes (critic and experts share it)."""

    def __init__(self, maxsize: int = 64):
        self.maxsize = maxsize
        self._data: OrderedDict[bytes, Perception] = OrderedDict()

    def __call__(self, image: np.ndarray) -> Perception:
        if image.shape != (CANVAS, CANVAS, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"Shapes perception expects a ({CANVAS}, {CANVAS}, 3) uint8 image, "
                f"got shape {image.shape} and dtype {image.dtype}."
            )
        key = image.tobytes()  # exact key: dict lookups compare bytes on hash collisions
        hit = self._data.get(key)
        if hit is not None:
            self._data.move_to_end(key)
            return hit
        result = _perceive(image)
        self._data[key] = result
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)
        return result

    def __getstate__(self):  # do not pickle the cache contents
        return {"maxsize": self.maxsize}

    def __setstate__(self, state):
        self.__init__(state["maxsize"])


#: Process-wide default cache.
perceive = PerceptionCache()
