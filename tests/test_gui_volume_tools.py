"""Volume tools of the review panel in a real (virtual) display: propagating a prompt through the
slices of a CT case, and the per-slice issue strip with next / previous hot slice (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import errors
from test_gui_review import scored_ct, scored_mni, scored_templates, wait_case, wait_idle  # noqa: F401 (fixtures)

pytestmark = pytest.mark.gui

SEED = 14


def show_slice(viewer, panel, index: int) -> None:
    viewer.dims.set_point(0, index * panel.current.spacing[0] + float(viewer.layers["image"].translate[0]))
    assert panel.current_slice() == index


def rectangle(index: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    (r0, r1), (c0, c1) = rows, cols
    return np.array([[index, r0, c0], [index, r0, c1], [index, r1, c1], [index, r1, c0]], dtype=float)


@pytest.fixture
def kidney_model(monkeypatch):
    """A deterministic stand-in for the model in the panel's propagation: the case's kidney (label 2)
    inside each prompt box. Returns the expected propagation from a box (the core walk, same stub)."""
    from napari_aleatoric.gui import propagation as gui_propagation
    from napari_aleatoric.models.propagation import inside_box, propagate

    state = {}

    def predictor(kidney):
        return lambda index, box: kidney[index] & inside_box(kidney.shape[1:], box)

    def fake(model, volume01, seed_slice, *, box=None, points=None, point_labels=None, seed_mask=None,
             embedding_cache=None, **options):
        predict = predictor(state["kidney"])
        seed = predict(seed_slice, box) if seed_mask is None else seed_mask
        return (yield from propagate(predict, seed, seed_slice, len(volume01), seed_box=box, **options))

    monkeypatch.setattr(gui_propagation, "propagate_prompts", fake)

    def expected(kidney, index, box):
        state["kidney"] = kidney
        walk = propagate(predictor(kidney), predictor(kidney)(index, box), index, len(kidney), seed_box=box)
        while True:
            try:
                next(walk)
            except StopIteration as stop:
                return stop.value

    return expected


def test_propagate_fills_the_preview_on_several_slices_and_apply_writes_them(
        panel_factory, scored_ct, qtbot, notifications, kidney_model):
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_ct)
    wait_case(qtbot, panel, "ct_002")
    panel._model = lambda spec, device: None  # the stand-in needs no model
    assert panel.propagation.button.isEnabled() and panel.propagation.button.text() == "Propagate through volume"
    annotation = viewer.layers["annotation"]
    before = np.array(annotation.data, copy=True)
    box_rows, box_cols = (55, 80), (15, 48)  # the left kidney
    expected = kidney_model(before == 2, SEED, np.array([box_cols[0], box_rows[0], box_cols[1], box_rows[1]], float))
    assert len(expected.slices) >= 5  # the stand-in itself spans several slices

    show_slice(viewer, panel, SEED)
    viewer.layers["FM box prompt"].add_rectangles(rectangle(SEED, box_rows, box_cols))
    panel.class_combo.setCurrentIndex(panel.class_combo.findData(3))  # tumour: the kidney is another class
    assert panel.propagation.start()
    wait_idle(qtbot, panel)
    assert not errors(notifications)
    preview = np.asarray(viewer.layers["FM preview"].data)
    assert preview.shape == before.shape
    filled = [z for z in range(preview.shape[0]) if preview[z].any()]
    assert filled == list(expected.slices) and SEED in filled and len(filled) >= 5
    assert np.array_equal(preview > 0, expected.masks) and set(np.unique(preview)) == {0, 3}
    assert panel.assist.preview_state["kind"] == "volume" and panel.apply_button.isEnabled()
    assert f"slices {expected.first}–{expected.last}" in panel.message.text()

    # without overwrite nothing is written (the kidney is drawn) and the message says why
    panel.overwrite_check.setChecked(False)
    assert panel.apply_preview() == 0
    assert "drawn as other classes and were kept" in panel.message.text()
    assert np.array_equal(np.asarray(annotation.data), before)

    # again with overwrite: every propagated slice is written, as one edit
    assert panel.propagation.start()
    wait_idle(qtbot, panel)
    panel.overwrite_check.setChecked(True)
    changed = panel.apply_preview()
    after = np.asarray(annotation.data)
    assert changed == int(expected.masks.sum()) == int((after != before).sum())
    assert np.all(after[expected.masks] == 3)
    assert np.array_equal(after[~expected.masks], before[~expected.masks])
    assert "FM preview" not in viewer.layers and panel.assist.preview_state is None
    assert panel.is_dirty()
    qtbot.waitUntil(lambda: "unsaved edits" in panel.summary.text(), timeout=5_000)
    annotation.undo()  # one Ctrl-Z takes the whole propagation back
    assert np.array_equal(np.asarray(annotation.data), before)
    qtbot.waitUntil(lambda: "unsaved edits" not in panel.summary.text(), timeout=5_000)
    assert not errors(notifications)


def test_propagation_with_the_model_runs_in_the_background_and_can_be_stopped(
        panel_factory, scored_ct, qtbot, notifications):
    """The real path (the tiny model, embeddings from the scoring run's cache): no error, and Stop
    leaves what was found."""
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_ct)
    wait_case(qtbot, panel, "ct_002")
    show_slice(viewer, panel, SEED)
    viewer.layers["FM box prompt"].add_rectangles(rectangle(SEED, (20, 80), (10, 80)))
    assert panel.propagation.start()
    assert panel.propagation.button.text() == "Stop propagation" and not panel.preview_button.isEnabled()
    wait_idle(qtbot, panel)
    assert not errors(notifications)
    assert panel.propagation.button.text() == "Propagate through volume"
    text = panel.message.text()
    assert "Propagated preview" in text or "nothing to propagate" in text
    # stopping: a run quit right away ends without an error and gives the button back
    assert panel.propagation.start()
    panel.propagation.button.click()  # "Stop propagation"
    wait_idle(qtbot, panel)
    assert not panel.propagation.running and panel.propagation.button.text() == "Propagate through volume"
    assert not errors(notifications)


def test_propagation_is_for_volumes_only(panel_factory, scored_mni, qtbot, notifications):
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    wait_case(qtbot, panel)
    assert not panel.propagation.button.isEnabled()
    assert not panel.hot_slices.isVisible() and panel.hot_slices.profile is None


# ---------------------------------------------------------------------------------- hot slices


def test_next_and_previous_hot_slice_keys_move_the_viewer(panel_factory, scored_ct, qtbot, notifications):
    from napari.utils.key_bindings import KeyBinding

    from napari_aleatoric.labelquality.profile import slice_profile

    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_ct)
    wait_case(qtbot, panel, "ct_002")
    wait_idle(qtbot, panel)
    strip = panel.hot_slices
    assert strip.profile is not None and not strip.isHidden()
    expected = slice_profile(panel.current.heatmaps).hot  # one case: uncertainty maps, no contradicted regions
    assert strip.profile.hot == expected and len(expected) >= 1
    assert strip.profile.mass.shape == (40,)
    assert "hot slices: " + ", ".join(str(z) for z in expected) in strip.label.text()

    keymap = viewer.keymap
    for key in ("Shift-PageDown", "Shift-PageUp"):
        assert KeyBinding.from_str(key) in keymap, key
    show_slice(viewer, panel, 0)
    if expected[0] == 0:
        expected = expected[1:]
    for target in expected:
        keymap[KeyBinding.from_str("Shift-PageDown")](viewer)
        assert panel.current_slice() == target
    keymap[KeyBinding.from_str("Shift-PageDown")](viewer)  # past the last hot slice: stays
    assert panel.current_slice() == expected[-1]
    assert not strip.next_button.isEnabled()
    if len(expected) > 1:
        keymap[KeyBinding.from_str("Shift-PageUp")](viewer)
        assert panel.current_slice() == expected[-2]
    # the strip: a click goes to the slice under it
    strip.strip.slice_clicked.emit(7)
    assert panel.current_slice() == 7 and strip.strip.current == 7
    assert not errors(notifications)


def test_hot_slices_of_label_issue_maps_include_the_contradicted_regions(panel_factory, scored_ct, qtbot,
                                                                         notifications):
    """With current label-issue maps, the slices of contradicted regions are hot (here maps made up
    for the case: a wrongly drawn liver block on slices 30..34)."""
    from napari_aleatoric.gui.hot_slices import case_profile

    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_ct)
    wait_case(qtbot, panel, "ct_002")
    wait_idle(qtbot, panel)
    view = panel.current
    label = np.asarray(view.case.label)
    maps = np.zeros((3, *label.shape), np.float16)
    for c, value in enumerate(view.class_values):
        maps[c] = np.where(label == value, 0.1, 0.02)
    for z, half in zip(range(30, 35), (2, 4, 6, 4, 2)):
        block = (slice(z, z + 1), slice(40 - half, 40 + half), slice(20, 30))
        maps[0][block] = np.where(label[block] == 1, 0.9, maps[0][block])
    view.heatmaps, view.heatmap_kind, view.maps_stale = maps, "label issue", False
    profile = case_profile(view)
    assert 32 in profile.hot and profile.contradicted[32] > 0
    assert not errors(notifications)
