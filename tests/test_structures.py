"""The worst structure's contradicted share (labelquality/structures.py)."""

import math

import numpy as np
import pytest

from napari_aleatoric.labelquality.scores import MIN_SHARE_PIXELS, contradicted_shares
from napari_aleatoric.labelquality.structures import worst_outline_share, worst_structure_share


def tumour_case(blob: bool, depth: int = 6):
    """A ``(3, D, 24, 24)`` probability volume and its annotation: liver (1) with a real tumour (2) of
    ``4 × 8 × 8`` voxels whose top slice is contradicted (partial volume: 25 %), and optionally a
    separate ``2 × 4 × 4`` tumour blob drawn in the liver that the model calls liver everywhere."""
    index = np.ones((depth, 24, 24), np.int64)
    index[:, :, 20:] = 0
    index[1:5, 2:10, 2:10] = 2
    probabilities = np.zeros((3,) + index.shape, np.float32)
    probabilities[0] = np.where(index == 0, 0.9, 0.05)
    probabilities[1] = np.where(index == 1, 0.9, 0.05)
    probabilities[2] = np.where(index == 2, 0.9, 0.05)
    probabilities[:, 1, 2:10, 2:10] = np.array([0.05, 0.8, 0.15])[:, None, None]  # the tumour's top slice doubted
    if blob:
        index[2:4, 14:18, 14:18] = 2
        probabilities[:, 2:4, 14:18, 14:18] = np.array([0.05, 0.9, 0.05])[:, None, None, None]
    return probabilities, index


def test_a_blob_beside_its_classs_real_structure_is_seen_whole_while_the_class_share_dilutes_it():
    """Issue 16: a spurious 32-voxel tumour blob in a case with a 256-voxel tumour reads 33 % as the
    tumour class's share (mixed with the real tumour's partial-volume doubt) but 100 % as the worst
    structure's; without the blob the worst structure is the tumour itself, 25 %."""
    probabilities, index = tumour_case(blob=True)
    _, per_class = contradicted_shares(probabilities, index)
    assert per_class[1] == pytest.approx((64 + 32) / (256 + 32))
    assert worst_structure_share(probabilities, index) == 1.0
    assert worst_structure_share(*tumour_case(blob=False)) == pytest.approx(0.25)


def test_pieces_below_the_minimum_count_for_nothing_and_single_slices_have_no_structures():
    probabilities, index = tumour_case(blob=False)
    index[3, 14, 14:14 + MIN_SHARE_PIXELS - 1] = 2  # a fragment just under the minimum, all doubted
    probabilities[:, 3, 14, 14:14 + MIN_SHARE_PIXELS - 1] = np.array([0.05, 0.9, 0.05])[:, None]
    assert worst_structure_share(probabilities, index) == pytest.approx(0.25)
    assert math.isnan(worst_structure_share(probabilities[:, 2:3], index[2:3]))


def test_a_class_the_fold_never_learned_has_no_structures():
    probabilities, index = tumour_case(blob=True)
    seen = np.array([True, True, False])
    assert worst_structure_share(probabilities, index, seen) == 0.0
    assert math.isnan(worst_structure_share(probabilities, np.zeros_like(index)))


def test_the_worst_structure_does_not_depend_on_the_volumes_depth():
    for blob, share in ((True, 1.0), (False, 0.25)):
        assert worst_structure_share(*tumour_case(blob, depth=6)) == worst_structure_share(
            *tumour_case(blob, depth=60)) == pytest.approx(share)


def dilated_tumour_case(grown: int, depth: int = 4):
    """A ``(3, D, 32, 32)`` probability volume and its annotation: liver (1) around a ``16 × 16``
    tumour (2) in every slice, drawn ``grown`` pixels too wide on each side, where the model (right)
    says liver; the tumour's top slice is doubted (partial volume)."""
    index = np.ones((depth, 32, 32), np.int64)
    truth = index.copy()
    truth[:, 8:24, 8:24] = 2
    index[:, 8 - grown:24 + grown, 8 - grown:24 + grown] = 2
    probabilities = np.stack([np.full(index.shape, 0.05), np.where(truth == 1, 0.9, 0.05),
                              np.where(truth == 2, 0.9, 0.05)]).astype(np.float32)
    probabilities[:, 0, 8:24, 8:24] = np.array([0.05, 0.8, 0.15])[:, None, None]
    return probabilities, index


def test_a_dilation_shows_on_the_structures_outline_while_the_whole_structure_stays_low():
    """A tumour drawn 1 px too wide: 68 of each slice's 324 drawn pixels are liver (21 % of the
    structure, under the flag's 50 %), but they are 68 of the 128 pixels of its 2-px outline (53 %);
    drawn right, only the doubted top slice counts (25 % of outline and structure alike)."""
    probabilities, index = dilated_tumour_case(grown=1)
    structure = worst_structure_share(probabilities, index)
    outline = worst_outline_share(probabilities, index)
    assert structure == pytest.approx((4 * 68 + 256) / (4 * 324))  # the top slice's core doubted too
    assert outline == pytest.approx((3 * 68 + 128) / (4 * 128))
    assert outline > 0.6 > 0.5 > structure
    assert worst_outline_share(*dilated_tumour_case(grown=0)) == pytest.approx(0.25)


def test_small_structures_single_slices_and_unlearned_classes_have_no_outline_share():
    probabilities, index = tumour_case(blob=True)  # a 256-voxel tumour (outline) and a 32-voxel blob (none)
    assert worst_structure_share(probabilities, index) == 1.0
    assert worst_outline_share(probabilities, index) < 1.0
    probabilities, index = dilated_tumour_case(grown=1)
    assert math.isnan(worst_outline_share(probabilities[:, 1:2], index[1:2]))
    assert worst_outline_share(probabilities, index, np.array([True, True, False])) == 0.0  # liver's rim: right
    assert math.isnan(worst_outline_share(probabilities, np.zeros_like(index)))
