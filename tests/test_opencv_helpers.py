"""The optional OpenCV fast paths give the same results as their fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from poser_env import _opencv

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (image-poser[fast]) not installed")


def _images():
    rng = np.random.default_rng(0)
    for _ in range(20):
        yield rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    yield rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    yield rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)[::2, ::2]  # not contiguous
    yield np.full((128, 128, 3), 255, np.uint8)


def test_half_size_is_pillow_reduce_2():
    for img in _images():
        np.testing.assert_array_equal(
            _opencv.half_size(img), np.asarray(Image.fromarray(np.ascontiguousarray(img)).reduce(2))
        )
    assert (
        _opencv.half_size(np.zeros((5, 8, 3), np.uint8)) is None
    )  # odd size: the caller falls back


def test_label4_finds_scipy_components():
    rng = np.random.default_rng(1)
    for density in (0.05, 0.3, 0.6):
        mask = rng.random((128, 128)) < density
        labels, n = _opencv.label4(mask)
        ref, n_ref = ndimage.label(mask)
        assert n == n_ref
        # The same partition: a one-to-one map between the two numberings.
        pairs = np.unique(np.stack([labels[mask], ref[mask]]), axis=1)
        assert pairs.shape[1] == n and len(set(pairs[0])) == n and len(set(pairs[1])) == n
        assert (labels[~mask] == 0).all()


def test_thread_setting_is_restored():
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(3)
        _opencv.half_size(np.zeros((8, 8, 3), np.uint8))
        _opencv.label4(np.ones((8, 8), bool))
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_without_opencv_every_helper_declines(monkeypatch):
    monkeypatch.setattr(_opencv, "_CV2", None)
    assert _opencv.half_size(np.zeros((8, 8, 3), np.uint8)) is None
    assert _opencv.label4(np.ones((8, 8), bool)) is None
