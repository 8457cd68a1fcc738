"""The closed vocabulary of the Shapes world, with the numbers behind each word.

All geometry is in pixels of the world's canvas (``CANVAS`` x ``CANVAS``); the environment
resizes images to its observation size afterwards.
"""

from __future__ import annotations

#: Side of the square canvas every Shapes expert draws on, in pixels.
CANVAS = 128

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "cross")

#: Saturated colours, far apart in RGB so that noise and blur do not confuse them. Every
#: channel stays in [12, 243] (with the backgrounds) so that light noise cannot overflow.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 80, 225),
    "yellow": (235, 205, 20),
    "purple": (145, 45, 200),
    "orange": (240, 135, 20),
}

#: Extent (bounding-box side) of each size, in canvas pixels.
SIZES: dict[str, int] = {"small": 14, "medium": 22, "big": 30}
#: Extent thresholds the critic uses between small/medium and medium/big.
SIZE_THRESHOLDS: tuple[float, float] = (18.0, 26.0)

#: Regions as centroid boxes, (x0, x1, y0, y1) in fractions of the canvas.
REGIONS: dict[str, tuple[float, float, float, float]] = {
    "left": (0.0, 0.4, 0.0, 1.0),
    "right": (0.6, 1.0, 0.0, 1.0),
    "top": (0.0, 1.0, 0.0, 0.4),
    "bottom": (0.0, 1.0, 0.6, 1.0),
    "center": (0.3, 0.7, 0.3, 0.7),
}

RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
#: Minimum centroid gap (pixels) for a relation to hold between two objects.
RELATION_MARGIN = 4

#: Background styles; all greyscale so objects separate from them by saturation.
STYLES: tuple[str, ...] = ("plain", "striped", "dotted", "checkered", "grid")

MAX_COUNT = 4
NUMBER_WORDS: dict[str, int] = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4}
