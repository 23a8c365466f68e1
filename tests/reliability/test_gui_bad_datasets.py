"""The review panel opening the bad datasets of the reliability suite: every problem becomes a
napari notification naming the file, and the viewer stays usable (a good case still opens)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import make_tiny_dataset
from PIL import Image
from reliability_helpers import png_with_declared_shape

from conftest import tree_digest

pytestmark = pytest.mark.gui
WAIT_MS = 60_000


def broken_dataset(root: Path) -> dict[str, str]:
    """The tiny PNG dataset with one broken case per kind of fault; returns case -> file to name."""
    make_tiny_dataset(root)
    labels, images = root / "labelsTr", root / "imagesTr"
    data = (labels / "c01.png").read_bytes()
    (labels / "c01.png").write_bytes(data[: len(data) // 2])                      # truncated label
    (images / "c02_0000.png").write_bytes(os.urandom(300))                          # random bytes image
    png_with_declared_shape(labels / "c03.png", 40000, 40000)                       # giant declared shape
    Image.fromarray(np.zeros((20, 32), np.uint8)).save(labels / "c04.png")          # geometry mismatch
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(labels / "c05.png")        # undeclared value 7
    outside = root.parent / "outside.png"
    shutil.copy(labels / "c06.png", outside)
    (labels / "c06.png").unlink()
    (labels / "c06.png").symlink_to(outside)                                        # leaves the folder
    return {"c01": "c01.png", "c02": "c02_0000.png", "c03": "c03.png", "c04": "c04.png", "c05": "c05.png",
            "c06": "c06.png"}


def test_bad_cases_give_notifications_and_a_good_case_still_opens(panel_factory, notifications, qtbot, tmp_path):
    viewer, widget = panel_factory()
    root = tmp_path / "Dataset900_Broken"
    bad = broken_dataset(root)
    before = tree_digest(root)
    assert widget.open_dataset(root, select=False)
    for case_id, file_name in bad.items():
        notifications.clear()
        widget.select_case(case_id)
        qtbot.waitUntil(lambda: widget._loading is None and not widget.is_busy(), timeout=WAIT_MS)
        errors = [text for level, text in notifications if level == "error"]
        assert errors and file_name in errors[0], (case_id, notifications)
    widget.select_case("c00")  # the viewer is still usable: a good case opens with its layers
    qtbot.waitUntil(lambda: widget.current is not None and widget.current.case_id == "c00"
                    and not widget.is_busy(), timeout=WAIT_MS)
    assert len(viewer.layers) >= 2
    viewer.add_points(np.zeros((1, 2)))
    assert tree_digest(root) == before  # nothing in the dataset was written


@pytest.mark.parametrize("fault", ["no dataset.json", "garbage dataset.json", "path leaves the folder",
                                   "not a folder"])
def test_unusable_datasets_are_refused_with_a_notification(panel_factory, notifications, tmp_path, fault):
    viewer, widget = panel_factory()
    root = make_tiny_dataset(tmp_path / "Dataset900_Bad")
    named = "dataset.json"
    if fault == "no dataset.json":
        (root / "dataset.json").unlink()
    elif fault == "garbage dataset.json":
        (root / "dataset.json").write_bytes(b"\xff\xfe{not json")
    elif fault == "path leaves the folder":
        (root / "dataset.json").write_text(json.dumps({
            "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "disc"},
            "training": [{"image": "../../etc/passwd", "label": "./labelsTr/c00.png"}]}))
    else:
        root = root / "dataset.json"
        named = "not a folder"
    before = tree_digest(root.parent)
    assert not widget.open_dataset(root)
    errors = [text for level, text in notifications if level == "error"]
    assert errors and named in errors[0], notifications
    assert tree_digest(root.parent) == before
    viewer.add_points(np.zeros((1, 2)))  # still usable


def test_damaged_review_store_and_scores_are_reported_and_the_dataset_still_opens(panel_factory, notifications, qtbot,
                                                                                   tmp_path):
    viewer, widget = panel_factory()
    root = make_tiny_dataset(tmp_path / "Dataset900_Damaged")
    state = root / ".aleatoric"
    state.mkdir()
    (state / "review.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(2000))
    (state / "scores.csv").write_bytes(b"case_id,rank\n\xff\x00garbage")
    damaged = (state / "review.sqlite").read_bytes()
    assert widget.open_dataset(root, select=False)
    errors = [text for level, text in notifications if level == "error"]
    assert any("review.sqlite" in text for text in errors), notifications
    assert any("scores.csv" in text for text in errors), notifications
    assert (state / "review.sqlite").read_bytes() == damaged  # never deleted or rewritten
    widget.select_case("c00")
    qtbot.waitUntil(lambda: widget.current is not None and not widget.is_busy(), timeout=WAIT_MS)
    assert widget.current.case_id == "c00"
