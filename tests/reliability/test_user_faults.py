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


# -- defect 4: bit flips in files that carry a checksum -----------------------------------------

#: single-bit flips per format; every flip of a .nii.gz or .png must be refused or change nothing
BIT_FLIPS = 300


@pytest.mark.parametrize("ending", [".nii.gz", ".png"])
def test_every_single_bit_flip_of_a_checksummed_label_is_refused_or_harmless(tmp_path, ending):
    import random

    from napari_aleatoric.data.errors import CaseError

    rng = np.random.default_rng(4)
    labels = (rng.random((6, 40, 48)) > 0.7).astype(np.uint8) * 2
    path = tmp_path / f"label{ending}"
    medio.write_label(path, labels if ending == ".nii.gz" else labels[0], None)
    data = path.read_bytes()
    reference, _ = medio.read_label(path)
    choose = random.Random(13)
    outcome = {"refused": 0, "same": 0, "changed": 0}
    flipped = tmp_path / f"flipped{ending}"
    for _ in range(BIT_FLIPS):
        bit = choose.randrange(len(data) * 8)
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        flipped.write_bytes(bytes(damaged))
        try:
            loaded, _ = medio.read_label(flipped)
        except CaseError as error:
            assert str(flipped) in str(error)
            outcome["refused"] += 1
            continue
        outcome["same" if loaded.shape == reference.shape and np.array_equal(loaded, reference) else "changed"] += 1
    print(f"{ending}: {BIT_FLIPS} single-bit flips of a {len(data)}-byte label: {outcome}")
    assert outcome["changed"] == 0, outcome
    assert outcome["refused"] >= BIT_FLIPS * 0.9


def test_a_nii_gz_with_a_bad_crc_is_reported_as_corrupt(tmp_path):
    import gzip

    from napari_aleatoric.data.errors import CaseError

    path = tmp_path / "label.nii.gz"
    medio.write_label(path, np.ones((3, 8, 8), np.uint8), None)
    data = bytearray(path.read_bytes())
    data[-8] ^= 1  # the CRC-32 in the gzip trailer: the voxels themselves decode fine
    path.write_bytes(bytes(data))
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(bytes(data))
    with pytest.raises(CaseError, match="fail the integrity check"):
        medio.read_label(path)
