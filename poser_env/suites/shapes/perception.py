"""Pixel perception for the Shapes world: image -> objects and background.

Used by the critic (which must judge from pixels alone) and by image-to-image experts
(which, like real editing models, only see the image they are given). No hidden state.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from poser_env.suites.shapes.scene import Obj, Scene, background, sprite
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
    idx = q[..., 0] << 10
    idx |= q[..., 1] << 5
    idx |= q[..., 2]
    return _LUT.take(idx)


@functools.lru_cache(maxsize=4096)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rows = ((np.arange(_TEMPLATE) + 0.5) * h / _TEMPLATE).astype(np.intp)
    cols = ((np.arange(_TEMPLATE) + 0.5) * w / _TEMPLATE).astype(np.intp)
    return rows[:, None], cols[None, :]


def _normalise(mask: np.ndarray) -> np.ndarray:
    """Nearest-neighbour resample of a component mask to ``_TEMPLATE`` x ``_TEMPLATE``."""
    rows, cols = _grid(*mask.shape)
    return mask[rows, cols]


def _bits(mask: np.ndarray) -> int:
    """A normalised mask as one Python integer (for fast XOR/popcount comparison)."""
    return int.from_bytes(np.packbits(mask.ravel()).tobytes(), "big")


def _size_word(extent: float) -> str:
    small_medium, medium_big = SIZE_THRESHOLDS
    return "small" if extent < small_medium else ("medium" if extent < medium_big else "big")


_TEMPLATES = {size: [_bits(_normalise(sprite(shape, ext))) for shape in SHAPES] for size, ext in SIZES.items()}
_N_BITS = _TEMPLATE * _TEMPLATE
# Background patterns, sampled on every other row and column (all periods are even).
_BG_GREY = np.stack([background(style)[::2, ::2, 1] for style in STYLES]).astype(np.int16)


@dataclass(frozen=True)
class Perception:
    """What perception makes of an image.

    Attributes:
        scene: Recovered objects and background.
        residual: Mean absolute difference (0-255) between the background pixels and the
            recognised background pattern: noise and blur both raise it.
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
    labels = labels.astype(np.intp, copy=False)
    objects: list[Obj] = []
    conf: list[float] = []
    if n:
        # One pass for every component's area and colour histogram.
        hist = np.bincount((labels.ravel() << 3) | cls.ravel(), minlength=(n + 1) * 8).reshape(n + 1, 8)[:, 1:7]
        areas = hist.sum(axis=1)
        colors = hist.argmax(axis=1)
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            if areas[i] < _MIN_AREA:
                continue
            comp = labels[sl] == i
            h, w = comp.shape
            color = _COLOR_NAMES[int(colors[i])]
            size = _size_word(max(h, w))
            bits = _bits(_normalise(comp))
            scores = [1.0 - (bits ^ t).bit_count() / _N_BITS for t in _TEMPLATES[size]]
            k = max(range(len(scores)), key=scores.__getitem__)
            x = sl[1].start + w // 2
            y = sl[0].start + h // 2
            objects.append(Obj(SHAPES[k], color, size, x, y))
            conf.append(scores[k])
    # Background: the nearest style pattern on the pixels no object covers; the remaining
    # difference there is the residual that noise and blur leave.
    bg = cls[::2, ::2] == 0
    n_bg = int(bg.sum())
    if n_bg:
        diff = np.abs(image[::2, ::2, 1].astype(np.int16)[None] - _BG_GREY)
        errs = (diff * bg[None]).sum(axis=(1, 2))
        k = int(errs.argmin())
        style, residual = STYLES[k], float(errs[k]) / n_bg
    else:
        style, residual = "plain", 0.0
    scene = Scene(tuple(objects), style)
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
