"""Issue 13, defect 6 in the review panel: a read-only dataset (e.g. a read-only bind mount) opens
in review-only mode with its saved scores, cases show, and every refused write is a notification in
plain words; nothing in the dataset changes."""

from __future__ import annotations

import errno
import sqlite3

import numpy as np
import pytest
from helpers import errors, make_tiny_dataset
from reliability_helpers import read_only, tree_state


pytestmark = pytest.mark.gui
WAIT_MS = 60_000


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_read_only_dataset_is_reviewable_and_refused_writes_are_notifications(panel_factory, qtbot, notifications,
                                                                               monkeypatch, tmp_path, code):
    from napari_aleatoric.pipelines.scoring import ScoringFinished, score_dataset

    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=6)
    assert isinstance(list(score_dataset(root, "tiny", device="cpu"))[-1], ScoringFinished)
    before = tree_state(root)
    read_only(monkeypatch, root, code)
    real_connect = sqlite3.connect

    def connect(database, *args, **kwargs):  # SQLite opens its files itself, below the os module
        if str(database).startswith(str(root)):
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    viewer, panel = panel_factory()
    assert panel.open_dataset(root)
    qtbot.waitUntil(lambda: panel.current is not None and not panel.is_busy(), timeout=WAIT_MS)
    assert panel.table is not None and len(panel.table.rows) == 6  # review-only: the saved scores
    assert "annotation" in viewer.layers
    data = np.array(viewer.layers["annotation"].data)
    data[:3, :3] = 1
    viewer.layers["annotation"].data = data
    panel.save_case(wait=True)
    panel.accept_case()
    shown = errors(notifications)
    assert any("review store cannot be used" in text and "read-only" in text for text in shown), shown
    assert any(text.startswith("Cannot save") for text in shown), shown
    assert all("Traceback" not in text and "Errno" not in text for text in shown), shown
    assert tree_state(root) == before


def test_a_scores_csv_with_an_extra_field_is_a_notification_not_an_exception(panel_factory, qtbot, notifications,
                                                                           tmp_path):
    from napari_aleatoric.pipelines.scoring import score_dataset

    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=6)
    list(score_dataset(root, "tiny", device="cpu"))
    csv_path = root / ".aleatoric" / "scores.csv"
    lines = csv_path.read_text().splitlines()
    lines[3] += ",surplus"
    csv_path.write_text("\n".join(lines) + "\n")
    viewer, panel = panel_factory()
    assert panel.open_dataset(root)
    shown = errors(notifications)
    assert shown and "scores.csv" in shown[0] and "line 4" in shown[0], notifications
    qtbot.waitUntil(lambda: panel.current is not None and not panel.is_busy(), timeout=WAIT_MS)
