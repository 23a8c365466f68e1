"""Issue 13: what an outside attacker found that loses or locks out an annotation, in the core
(no Qt): each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_tiny_dataset

from napari_aleatoric.data import medio
from napari_aleatoric.data.errors import AleatoricError
from napari_aleatoric.review.saving import revert, save_correction
from napari_aleatoric.review.store import ReviewStore


# -- defect 1: undeclared label values ---------------------------------------------------------


def test_save_refuses_label_values_dataset_json_does_not_declare(tmp_path):
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=2)
    label_path = root / "labelsTr" / "c00.png"
    before = label_path.read_bytes()
    labels, geometry = medio.read_label(label_path)
    labels = labels.astype(np.int32)
    labels[:2, :2] = 3
    labels[5, 5] = 300
    with ReviewStore.for_dataset(root) as store:
        with pytest.raises(AleatoricError) as caught:
            save_correction(root, "c00", label_path, labels, geometry, user="u", model=None, auv_before=None,
                            store=store)
        assert store.revisions("c00") == []
    message = str(caught.value)
    assert str(label_path) in message and "3, 300" in message and "not declared" in message
    assert label_path.read_bytes() == before
    assert not (root / ".aleatoric" / "originals").exists() and not (root / ".aleatoric" / "revisions").exists()


def test_revert_restores_a_label_file_that_cannot_be_opened(tmp_path):
    from PIL import Image

    from napari_aleatoric.data.dataset import load_case, open_dataset

    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=2)
    label_path = root / "labelsTr" / "c00.png"
    original = label_path.read_bytes()
    labels, geometry = medio.read_label(label_path)
    with ReviewStore.for_dataset(root) as store:
        save_correction(root, "c00", label_path, np.where(labels == 2, 0, labels), geometry, user="u", model=None,
                        auv_before=None, store=store)
        locked = np.array(Image.open(label_path))
        locked[0, 0] = 3
        Image.fromarray(locked).save(label_path)
        ds = open_dataset(root)
        with pytest.raises(AleatoricError):
            load_case(ds, ds.case("c00"))
        revert(root, "c00", label_path, "original", store, "u")
    assert label_path.read_bytes() == original
    load_case(ds, ds.case("c00"))
