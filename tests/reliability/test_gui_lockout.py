"""Issue 13, defect 1 in the review panel: napari's "new label" key cannot lead to a saved value that
``dataset.json`` does not declare, and a case locked out by such a file can still be reverted."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import errors, make_tiny_dataset
from PIL import Image

pytestmark = pytest.mark.gui
WAIT_MS = 60_000


def open_tiny(qtbot, panel, root, case_id="c00"):
    assert panel.open_dataset(root, select=False)
    panel.select_case(case_id)
    qtbot.waitUntil(lambda: panel.current is not None and panel.current.case_id == case_id
                    and not panel.is_busy(), timeout=WAIT_MS)


def test_new_label_key_cannot_select_an_undeclared_value(panel_factory, qtbot, notifications, tmp_path):
    from napari.layers.labels._labels_key_bindings import new_label

    viewer, panel = panel_factory()
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny")
    open_tiny(qtbot, panel, root)
    annotation = viewer.layers["annotation"]
    new_label(annotation)  # the M key: max(data) + 1 = 3 on a 3-class dataset
    assert annotation.selected_label in (1, 2)
    warnings = [text for level, text in notifications if level == "warning"]
    assert any("3" in text and "not declared" in text for text in warnings), notifications


def test_save_refuses_undeclared_values_and_names_them(panel_factory, qtbot, notifications, tmp_path):
    viewer, panel = panel_factory()
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny")
    open_tiny(qtbot, panel, root)
    label_path = root / "labelsTr" / "c00.png"
    before = label_path.read_bytes()
    data = np.array(viewer.layers["annotation"].data)
    data[:4, :4] = 3
    viewer.layers["annotation"].data = data
    assert not panel.save_case(wait=True)
    wait = errors(notifications)
    assert wait and "3" in wait[-1] and "c00.png" in wait[-1] and "declare" in wait[-1], notifications
    assert label_path.read_bytes() == before
    assert not (root / ".aleatoric" / "revisions").exists()


def test_a_locked_out_case_can_be_reverted_without_opening_it(panel_factory, qtbot, notifications, tmp_path):
    from napari_aleatoric.data import medio
    from napari_aleatoric.review.saving import save_correction
    from napari_aleatoric.review.store import ReviewStore

    viewer, panel = panel_factory()
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny")
    label_path = root / "labelsTr" / "c01.png"
    original = label_path.read_bytes()
    labels, geometry = medio.read_label(label_path)
    with ReviewStore.for_dataset(root) as store:  # a correction: the original is kept
        save_correction(root, "c01", label_path, np.where(labels == 2, 1, labels), geometry, user="u",
                        model=None, auv_before=None, store=store)
    locked = np.array(Image.open(label_path))
    locked[:3, :3] = 3  # what an unchecked save of the M key's value left on disk
    Image.fromarray(locked).save(label_path)

    open_tiny(qtbot, panel, root, "c00")
    notifications.clear()
    panel.select_case("c01")
    qtbot.waitUntil(lambda: panel._loading is None and not panel.is_busy(), timeout=WAIT_MS)
    assert errors(notifications) and "c01.png" in errors(notifications)[0]
    assert panel.revert_original_button.isEnabled()
    panel.rescore_check.setChecked(False)
    panel.revert_case("original")
    qtbot.waitUntil(lambda: panel.current is not None and panel.current.case_id == "c01"
                    and not panel.is_busy(), timeout=WAIT_MS)
    assert label_path.read_bytes() == original
    assert np.array_equal(viewer.layers["annotation"].data, labels)
