"""Pictures: captioned frames and whole-trajectory sheets (Pillow only)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_FONT = ImageFont.load_default()
_LINE = 12


def _wrap(lines: Sequence[str], width_px: int) -> list[str]:
    chars = max(8, width_px // 6)
    out: list[str] = []
    for line in lines:
        out += textwrap.wrap(line, chars) or [""]
    return out


def captioned(
    image: np.ndarray, lines: Sequence[str], width: int = 256, max_lines: int | None = None
) -> np.ndarray:
    """The image scaled to ``width`` with the text ``lines`` drawn under it (uint8 RGB).

    Args:
        image: ``(H, W, 3)`` uint8 image.
        lines: Text drawn under the image, each wrapped to the width.
        width: Width of the result in pixels.
        max_lines: If given, the caption area holds exactly this many text lines: shorter
            text leaves it blank, longer text is cut (the last line kept ends in "...").
            Every frame of one image size then has the same shape, as video writers need.
    """
    h, w = image.shape[:2]
    height = int(round(h * width / w))
    top = Image.fromarray(image).resize((width, height), Image.NEAREST)
    text = _wrap(lines, width - 8)
    rows = len(text)
    if max_lines is not None:
        rows = max_lines
        if len(text) > max_lines:
            chars = max(8, (width - 8) // 6)
            text = text[:max_lines]
            text[-1] = text[-1][: chars - 3] + "..."
    canvas = Image.new("RGB", (width, height + 6 + _LINE * rows), (255, 255, 255))
    canvas.paste(top, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(text):
        draw.text((4, height + 3 + _LINE * i), line, fill=(0, 0, 0), font=_FONT)
    return np.asarray(canvas)


def trajectory_sheet(
    prompt: str,
    frames: Sequence[dict[str, Any]],
    final: dict[str, Any] | None = None,
    tile: int = 192,
) -> Image.Image:
    """A picture of a whole episode.

    Args:
        prompt: The task's prompt (drawn on top).
        frames: One dict per step with ``image`` and ``lines`` (text under the image).
        final: Final metrics to print at the bottom.
        tile: Width of each image tile in pixels.
    """
    tiles = [Image.fromarray(captioned(f["image"], f["lines"], tile)) for f in frames]
    header = _wrap([f"Prompt: {prompt}"], tile * max(1, len(tiles)))
    footer = []
    if final:
        footer = _wrap(
            [
                ", ".join(
                    f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}"
                    for k, v in final.items()
                )
            ],
            tile * max(1, len(tiles)),
        )
    tile_h = max((t.height for t in tiles), default=tile)
    width = max(tile * max(1, len(tiles)) + 4 * len(tiles), 400)
    height = 8 + _LINE * len(header) + tile_h + 8 + _LINE * len(footer) + 8
    sheet = Image.new("RGB", (width, height), (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    y = 4
    for line in header:
        draw.text((4, y), line, fill=(0, 0, 0), font=_FONT)
        y += _LINE
    y += 4
    for i, t in enumerate(tiles):
        sheet.paste(t, (4 + i * (tile + 4), y))
    y += tile_h + 4
    for line in footer:
        draw.text((4, y), line, fill=(0, 0, 0), font=_FONT)
        y += _LINE
    return sheet
