"""Loading a case for display (no Qt): the model's segmentation and the maps as cached."""

from __future__ import annotations

import numpy as np
import pytest

from napari_aleatoric.gui.case_view import CaseView


def reference_segmentation(probabilities: np.ndarray, values: list[int]) -> np.ndarray:
    """Value of the most probable class (first on ties) where its probability is above 0.5."""
    probabilities = probabilities.astype(np.float32)
    best = np.argmax(probabilities, axis=0)
    return np.where(probabilities.max(axis=0) > 0.5, np.asarray(values)[best], 0)


@pytest.mark.parametrize("shape", [(3, 23, 19), (3, 1, 23, 19), (3, 9, 40, 33)])
def test_fm_segmentation_is_the_most_probable_class_above_half(shape):
    rng = np.random.default_rng(0)
    probabilities = rng.random(shape, dtype=np.float32).astype(np.float16)
    probabilities[1, ..., :3] = probabilities[0, ..., :3]  # ties go to the first class
    probabilities[:, ..., 3:5] = np.float16(0.5)  # exactly 0.5 is not above it
    view = CaseView.__new__(CaseView)  # only what fm_segmentation reads
    view.probabilities, view.class_values, view._segmentation = probabilities, [1, 4, 2], None
    segmentation = view.fm_segmentation()
    assert segmentation.shape == shape[1:] and segmentation.dtype == np.uint8
    assert np.array_equal(segmentation, reference_segmentation(probabilities, [1, 4, 2]))
    assert not segmentation[..., 3:5].any()
    assert view.fm_segmentation() is segmentation  # computed once, when the case loads


def test_a_volume_opens_on_its_worst_contradicted_region_while_the_maps_are_current():
    from types import SimpleNamespace

    label = np.zeros((10, 8, 8), np.uint8)
    label[7, :, :] = 1  # most annotation on slice 7
    label[3, :2, :2] = 1
    view = CaseView.__new__(CaseView)  # only what focus_slice reads
    view.case = SimpleNamespace(image=np.zeros(label.shape, np.float32), label=label)
    view.class_names, view.heatmaps, view._slice_uncertainty = ["organ"], None, None
    view.row = {"worst_region_slice": 3.0, "label_issue_organ": 0.9}
    view.heatmap_kind, view.maps_stale = "label issue", False
    assert view.focus_slice() == 3
    view.maps_stale = True  # the region was found on another annotation: not where to look now
    assert view.focus_slice() == 7
    view.maps_stale, view.row = False, {"label_issue_organ": 0.9}  # not scored with regions
    assert view.focus_slice() == 7


def test_the_summary_names_the_worst_structures_and_outlines_share_of_a_volume_and_nothing_for_a_slice():
    from types import SimpleNamespace

    from napari_aleatoric.gui.case_summary import summary_html

    view = CaseView(SimpleNamespace(case_id="ct007", image=np.zeros((6, 8, 8), np.float32),
                                    label=np.zeros((6, 8, 8), np.uint8), geometry=SimpleNamespace(spacing=(6.0, 3.0, 3.0))),
                    ["tumour"], [1], "CT")
    view.row = {"rank": 1, "label_issue": 0.4, "contradicted": 0.05, "worst_structure": 0.97, "worst_outline": 0.74,
                "auv": 0.5,
                "contradicted_tumour": 0.13, "label_issue_tumour": 0.4, "flagged": True}
    assert "worst structure 97 % contradicted · worst outline 74 % contradicted" in summary_html(view, "unreviewed", 42, False)
    view.row["flag_reason"] = "a structure 97 % contradicted; tumour's <share>"
    assert "<b>flagged</b>: a structure 97 % contradicted; tumour&#x27;s &lt;share&gt;" in summary_html(
        view, "unreviewed", 42, False)
    view.row["worst_structure"] = view.row["worst_outline"] = float("nan")  # a single slice has no structures
    assert "worst structure" not in summary_html(view, "unreviewed", 42, False)
    assert "outline" not in summary_html(view, "unreviewed", 42, False)
