"""Issue 13, defect 3: napari's File > Save Selected Layer (the plugin's writer) goes through the same
safe save as the review panel inside a dataset: original kept, revision recorded, Revert works; any
other path inside the dataset is refused; outside a dataset it writes as before."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_tiny_dataset

from conftest import tree_digest
from napari_aleatoric import readers, writers
from napari_aleatoric.review.saving import revert
from napari_aleatoric.review.store import ReviewStore


@pytest.fixture
def shown(monkeypatch):
    errors: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", errors.append)
    return errors


def test_writer_over_a_case_label_keeps_the_original_and_records_a_revision(tmp_path, shown):
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=2)
    label_path = root / "labelsTr" / "c00.png"
    original = label_path.read_bytes()
    [(labels, kwargs, _)] = readers.read_paths(str(label_path))
    edited = np.array(labels, copy=True)
    edited[:5, :5] = 1
    assert writers.write_labels(str(label_path), edited, kwargs) == [str(label_path)], shown
    assert (root / ".aleatoric" / "originals" / "labelsTr" / "c00.png").read_bytes() == original
    with ReviewStore.for_dataset(root) as store:
        [revision] = store.revisions("c00")
        assert "File > Save" in revision.note and store.status("c00") == "corrected"
        revert(root, "c00", label_path, "original", store, "u")  # Revert finds the original
    assert label_path.read_bytes() == original


def test_writer_refuses_undeclared_values_and_other_paths_inside_a_dataset(tmp_path, shown):
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=2)
    before = tree_digest(root)
    [(labels, kwargs, _)] = readers.read_paths(str(root / "labelsTr" / "c00.png"))
    bad = np.array(labels, copy=True)
    bad[0, 0] = 3
    assert writers.write_labels(str(root / "labelsTr" / "c00.png"), bad, kwargs) == []
    assert "3" in shown[-1] and "not declared" in shown[-1]
    for other in ("labelsTr/new.png", "imagesTr/c00_0000.png", "mask.png"):
        assert writers.write_labels(str(root / other), labels, kwargs) == []
        assert "not the label file of one of its cases" in shown[-1]
    assert writers.write_labels(str(root / ".aleatoric" / "x.png"), labels, kwargs) == []
    assert tree_digest(root) == before


def test_writer_outside_a_dataset_writes_plainly(tmp_path, shown):
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=2)
    [(labels, kwargs, _)] = readers.read_paths(str(root / "labelsTr" / "c00.png"))
    out = tmp_path / "elsewhere" / "c00.png"
    out.parent.mkdir()
    assert writers.write_labels(str(out), labels, kwargs) == [str(out)]
    assert not shown
