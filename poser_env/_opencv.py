"""Optional OpenCV fast paths (``pip install "image-poser[fast]"``).

Each function returns ``None`` when OpenCV is not installed, and the caller falls back to
its numpy/scipy/Pillow routine; where it returns a result, that result is identical to
the fallback's (``tests/test_opencv_helpers.py`` and the Shapes perception tests check).

OpenCV runs these on one thread: on 128x128 images its thread pool waits longer than it
saves, badly so on a busy machine. The process-wide thread setting is restored after each
call, under a lock.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

_LOCK = threading.Lock()
_CV2: Any = False  # not looked up yet


def cv2_or_none():
    """The ``cv2`` module, or ``None`` when OpenCV is not installed (looked up once)."""
    global _CV2
    if _CV2 is False:
        try:
            import cv2
        except ImportError:
            cv2 = None
        _CV2 = cv2
    return _CV2


def _one_thread(fn, *args):
    cv2 = _CV2
    with _LOCK:
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return fn(*args)
        finally:
            cv2.setNumThreads(threads)


def label4(mask: np.ndarray) -> tuple[np.ndarray, int] | None:
    """4-connected components of a boolean mask: ``(int32 labels, count)`` as
    ``scipy.ndimage.label`` numbers the same components (the numbering may differ)."""
    cv2 = cv2_or_none()
    if cv2 is None:
        return None
    n, labels = _one_thread(
        cv2.connectedComponentsWithAlgorithm, mask.view(np.uint8), 4, cv2.CV_32S, cv2.CCL_SAUF
    )
    return labels, n - 1


def half_size(image: np.ndarray) -> np.ndarray | None:
    """An ``(H, W, C)`` uint8 image at half its size by 2x2 box averaging, the same pixels
    as Pillow's ``Image.reduce(2)`` (OpenCV's INTER_AREA matches it at factor 2 only)."""
    cv2 = cv2_or_none()
    if cv2 is None or image.shape[0] % 2 or image.shape[1] % 2:
        return None
    h, w = image.shape[0] // 2, image.shape[1] // 2
    return _one_thread(cv2.resize, np.ascontiguousarray(image), (w, h), None, 0, 0, cv2.INTER_AREA)
