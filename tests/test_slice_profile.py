"""Per-slice issue profile and hot slices of a volume (core, no display)."""

from __future__ import annotations

import numpy as np

from napari_aleatoric.labelquality.profile import (
    contradicted_from_issue_maps,
    next_hot_slice,
    slice_profile,
)
from napari_aleatoric.labelquality.scores import CONTRADICTED_BELOW, annotated_class_probability, issue_maps

DEPTH, SIZE = 30, 32


def case_with_two_wrong_places(seed: int = 0):
    """Two classes; the annotation is right except a region drawn as class 1 that the model calls
    background (slices 4..8, centred on 6) and a missed class-2 blob (slices 19..21, centred on 20)."""
    rng = np.random.default_rng(seed)
    index = np.zeros((DEPTH, SIZE, SIZE), np.int64)
    index[:, 4:12, 4:12] = 1  # class 1, everywhere right
    index[:, 20:28, 20:28] = 2
    q = np.zeros((3, DEPTH, SIZE, SIZE), np.float32)
    q[np.arange(3)[:, None, None, None] == index[None]] = 0.9
    q += rng.uniform(0, 0.05, q.shape).astype(np.float32)
    # drawn class 1 on slices 4..8, but the model sees background (largest on slice 6)
    for z, half in zip(range(4, 9), (1, 3, 5, 3, 1)):
        index[z, 16 - half:16 + half, 4:10] = 1
        q[:, z, 16 - half:16 + half, 4:10] = [[[0.9]], [[0.05]], [[0.05]]]
    # a class-2 blob missed by the annotation on slices 19..21 (largest on 20)
    for z, half in zip(range(19, 22), (2, 4, 2)):
        q[:, z, 4:4 + 2 * half, 20:26] = [[[0.1]], [[0.05]], [[0.85]]]
    q /= q.sum(axis=0, keepdims=True)
    return q, index


def test_contradicted_pixels_are_recovered_from_the_issue_maps():
    q, index = case_with_two_wrong_places()
    expected = annotated_class_probability(q, index) < CONTRADICTED_BELOW
    assert np.array_equal(contradicted_from_issue_maps(issue_maps(q, index), index), expected)
    assert np.array_equal(contradicted_from_issue_maps(issue_maps(q, index).astype(np.float16), index), expected)


def test_hot_slices_are_the_wrong_regions_slices_in_z_order():
    q, index = case_with_two_wrong_places()
    maps = issue_maps(q, index).astype(np.float16)  # as cached
    profile = slice_profile(maps, index)
    assert profile.depth == DEPTH and profile.mass.shape == (DEPTH,)
    assert profile.hot == [6, 20]
    assert profile.contradicted[6] == 10 * 6 and profile.contradicted[20] == 8 * 6
    assert profile.contradicted[:4].sum() == 0 and profile.contradicted[9:19].sum() == 0
    assert np.argmax(profile.mass) in (6, 20)


def test_without_the_annotation_the_mass_peaks_are_hot():
    q, index = case_with_two_wrong_places()
    profile = slice_profile(issue_maps(q, index), None)
    assert profile.hot == [6, 20]
    assert not profile.contradicted.any()
    flat = slice_profile(np.zeros((2, DEPTH, 8, 8), np.float16))
    assert flat.hot == [] and flat.mass.sum() == 0


def test_next_and_previous_hot_slice():
    hot = [6, 20, 41]
    assert next_hot_slice(hot, 0, +1) == 6
    assert next_hot_slice(hot, 6, +1) == 20
    assert next_hot_slice(hot, 41, +1) is None
    assert next_hot_slice(hot, 20, -1) == 6
    assert next_hot_slice(hot, 6, -1) is None
    assert next_hot_slice([], 3, +1) is None
