"""The pure parts of assisted correction (no display needed): prompts and applying a preview."""

from __future__ import annotations

import numpy as np

from napari_aleatoric.gui.assist import apply_changes, box_mask, slice_prompts


def annotation() -> np.ndarray:
    labels = np.zeros((10, 10), dtype=np.uint8)
    labels[2:5, 2:8] = 1  # another class
    labels[6:9, 2:8] = 2  # the chosen class
    return labels


def apply(labels, indices_values):
    (rows, cols), values = indices_values
    out = labels.copy()
    out[rows, cols] = values
    return out


def test_apply_sets_background_and_keeps_other_classes():
    labels = annotation()
    mask = np.zeros_like(labels, dtype=bool)
    mask[1:9, 1:9] = True
    out = apply(labels, apply_changes(labels, mask, 2))
    assert np.array_equal(out == 1, labels == 1)  # class 1 untouched
    assert np.all(out[mask & (labels != 1)] == 2)
    assert np.array_equal(out[~mask], labels[~mask])


def test_overwrite_and_box_limits():
    labels = annotation()
    mask = np.ones_like(labels, dtype=bool)
    box = np.array([3, 3, 5, 6], dtype=np.float32)  # x0, y0, x1, y1
    out = apply(labels, apply_changes(labels, mask, 2, overwrite=True, box=box))
    inside = box_mask(labels.shape, box)
    assert np.all(out[inside] == 2)
    assert np.array_equal(out[~inside], labels[~inside])


def test_replace_in_box_clears_the_class_outside_the_mask_only_in_the_box():
    labels = annotation()
    mask = np.zeros_like(labels, dtype=bool)
    mask[6:9, 2:4] = True
    box = np.array([0, 5, 9, 9], dtype=np.float32)
    out = apply(labels, apply_changes(labels, mask, 2, box=box, replace_in_box=True))
    assert np.all(out[6:9, 2:4] == 2) and np.all(out[6:9, 4:8] == 0)
    assert np.array_equal(out[:5], labels[:5])


def test_slice_prompts_from_layer_data():
    rectangle = np.array([[4, 10, 20], [4, 10, 60], [4, 40, 60], [4, 40, 20]], dtype=float)
    other_slice = rectangle.copy()
    other_slice[:, 0] = 7
    points = np.array([[4, 25, 30], [4, 12, 50], [7, 1, 1]], dtype=float)
    positive = np.array([True, False, True])
    prompts = slice_prompts([rectangle, other_slice], ["rectangle", "rectangle"], points, positive, 3, 4, (64, 64))
    assert np.allclose(prompts.box, [20, 10, 60, 40])
    assert np.allclose(prompts.points, [[30, 25], [50, 12]])
    assert list(prompts.point_labels) == [1, 0]
    empty = slice_prompts([], [], np.zeros((0, 2)), np.zeros(0, bool), 2, 0, (8, 8))
    assert empty.empty
