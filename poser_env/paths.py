"""Checks of output paths, made before the work that produces the output starts.

A command that runs an episode with real models for minutes and only then finds that its
``--out`` is a directory, or on a read-only disk, wastes the user's time; these checks run
first and raise :class:`~poser_env.error.OutputPathError` with the reason.

    >>> from poser_env.paths import check_output_file
    >>> check_output_file("results/result.png", "--out", suffixes=[".png", ".jpg"]).name
    'result.png'
    >>> check_output_file("result.txt", "--out", suffixes=[".png", ".jpg"])
    Traceback (most recent call last):
    ...
    poser_env.error.OutputPathError: --out 'result.txt' has extension '.txt'; expected one of: .png, .jpg.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from poser_env.error import OutputPathError


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_can_create_in(path: Path, what: str, target: Path) -> None:
    """``path`` (a folder, or the place one would be created) can hold new files."""
    anchor = _nearest_existing(path)
    if not anchor.is_dir():
        raise OutputPathError(
            f"{what} {str(target)!r} cannot be written: {str(anchor)!r} is a file, not a folder."
        )
    try:
        # A real probe rather than os.access: root passes os.access on /proc and on
        # read-only bind mounts, and ACLs can refuse what the mode bits allow.
        with tempfile.TemporaryFile(dir=anchor, prefix=".poser-probe-"):
            pass
    except OSError as e:
        raise OutputPathError(
            f"{what} {str(target)!r} cannot be written: files cannot be created in {str(anchor)!r} "
            f"({e.strerror or e}). Pick a writable location."
        ) from e


def check_output_file(
    path: str | os.PathLike[str], what: str = "output", suffixes: Iterable[str] | None = None
) -> Path:
    """Check that a file can be written at ``path`` (its folder is created later if missing).

    Args:
        path: The file to be written.
        what: How the user named it, for the message (``"--out"``).
        suffixes: Allowed file extensions (lower case, with the dot), or None for any.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: ``path`` is a folder, has an unsupported extension, or its folder
            cannot be created or written.
    """
    p = Path(path)
    if str(path) == "" or p.is_dir():
        raise OutputPathError(
            f"{what} {str(path)!r} is a folder; give a file path (for example {str(p / 'result.png')!r})."
        )
    if suffixes is not None:
        common = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"]
        given = {s.lower() for s in suffixes}
        allowed = [s for s in common if s in given] + sorted(given - set(common))
        if p.suffix.lower() not in given:
            shown = ", ".join(allowed[:8]) + (", ..." if len(allowed) > 8 else "")
            raise OutputPathError(
                f"{what} {str(path)!r} has extension {p.suffix or '(none)'!r}; expected one of: {shown}."
            )
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputPathError(
            f"{what} {str(path)!r} exists and is read-only; pick another path or change its permissions."
        )
    _check_can_create_in(p.parent, what, p)
    return p


def check_output_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Check that ``path`` is (or can be created as) a folder that files can be written in.

    Raises:
        OutputPathError: ``path`` is a file, or the folder cannot be created or written.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{what} {str(path)!r} is a file; give a folder path.")
    _check_can_create_in(p, what, p)
    return p


def image_suffixes() -> list[str]:
    """File extensions Pillow can write (``.png``, ``.jpg``...)."""
    from PIL import Image

    Image.init()
    return sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE)


__all__ = ["check_output_dir", "check_output_file", "image_suffixes"]
