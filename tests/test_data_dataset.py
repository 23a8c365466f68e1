"""Datasets on disk (napari_aleatoric.data.dataset): nnU-Net v2 raw and Decathlon layouts."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import write_ct_slice
from PIL import Image
from pydicom.uid import generate_uid

from napari_aleatoric.data.dataset import (
    Case,
    CaseRef,
    Dataset,
    load_case,
    open_dataset,
    validate_case_files,
    validate_dataset,
)
from napari_aleatoric.data.errors import CaseError, DatasetError

RNG = np.random.default_rng(7)
AFFINE = np.diag([0.8, 0.9, 2.0, 1.0])
LABELS = {"background": 0, "liver": 1, "tumour": 2}


# ------------------------------------------------------------------------------------ helpers

def tree_hash(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


def nii(path: Path, data: np.ndarray, affine=AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def volume(shape=(6, 5, 4)) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def labelmap(shape=(6, 5, 4), hi=2) -> np.ndarray:
    return RNG.integers(0, hi + 1, size=shape).astype(np.uint8)


def write_json(root: Path, meta: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps(meta))


def nnunet(root: Path, case_ids=("case_b", "case_a"), *, channels=("CT",), ending=".nii.gz",
           test_ids=(), labels=LABELS, **extra) -> Path:
    """A small nnU-Net v2 raw dataset of 3D NIfTI volumes."""
    for cid in case_ids:
        for c in range(len(channels)):
            nii(root / "imagesTr" / f"{cid}_{c:04d}{ending}", volume() + 100 * c)
        nii(root / "labelsTr" / f"{cid}{ending}", labelmap())
    for cid in test_ids:
        nii(root / "imagesTs" / f"{cid}_0000{ending}", volume())
    meta = {"channel_names": {str(i): n for i, n in enumerate(channels)}, "labels": labels,
            "numTraining": len(case_ids), "file_ending": ending, "name": "Dataset001_Test"}
    meta.update(extra)
    write_json(root, meta)
    return root


def msd(root: Path, *, modalities=("CT",), training=None, test=None) -> Path:
    """A small Decathlon dataset; multi-modal images are 4D (modality on the 4th axis)."""
    shape = (6, 5, 4)
    for i in range(2):
        if len(modalities) > 1:
            img = np.stack([np.full(shape, 10.0 * (m + 1), np.float32) for m in range(len(modalities))], -1)
        else:
            img = volume(shape)
        nii(root / "imagesTr" / f"organ_{i}.nii.gz", img)
        nii(root / "labelsTr" / f"organ_{i}.nii.gz", labelmap(shape, hi=1))
    nii(root / "imagesTs" / "organ_9.nii.gz", volume(shape) if len(modalities) == 1 else
        np.zeros(shape + (len(modalities),), np.float32))
    meta = {
        "name": "Task03_Organ",
        "modality": {str(i): m for i, m in enumerate(modalities)},
        "labels": {"0": "background", "1": "organ"},
        "numTraining": 2,
        "training": training if training is not None else [
            {"image": f"./imagesTr/organ_{i}.nii.gz", "label": f"./labelsTr/organ_{i}.nii.gz"} for i in range(2)],
        "test": test if test is not None else ["./imagesTs/organ_9.nii.gz"],
    }
    write_json(root, meta)
    return root


def dicom_series(folder: Path, depth=3, shape=(5, 6), spacing=(0.5, 0.5), dz=2.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    uid = generate_uid()
    for k in range(depth):
        write_ct_slice(folder / f"slice{k}.dcm", np.full(shape, 1000 + k, "<i2"), spacing,
                       SeriesInstanceUID=uid, InstanceNumber=k + 1, ImagePositionPatient=[0.0, 0.0, k * dz],
                       ImageOrientationPatient=[1, 0, 0, 0, 1, 0], RescaleSlope=1, RescaleIntercept=-1024)


# ------------------------------------------------------------------------------- nnU-Net v2

def test_open_nnunet_lists_cases_and_metadata(tmp_path):
    root = nnunet(tmp_path / "ds", test_ids=("t1",))
    (root / "imagesTr" / "._case_a_0000.nii.gz").write_bytes(b"AppleDouble junk")
    (root / "imagesTr" / "notes.txt").write_text("hello")
    (root / ".aleatoric" / "cache").mkdir(parents=True)
    (root / ".aleatoric" / "cache" / "x_0000.nii.gz").write_bytes(b"")
    ds = open_dataset(root)
    assert isinstance(ds, Dataset) and ds.layout == "nnunet"
    assert ds.root == root.resolve() and ds.name == "Dataset001_Test"
    assert [c.case_id for c in ds.cases] == ["case_a", "case_b"]
    assert ds.cases[0] == CaseRef("case_a", (ds.root / "imagesTr" / "case_a_0000.nii.gz",),
                                  ds.root / "labelsTr" / "case_a.nii.gz")
    assert [c.case_id for c in ds.test_cases] == ["t1"] and ds.test_cases[0].label_path is None
    assert ds.labels == LABELS
    assert ds.foreground == {"liver": 1, "tumour": 2}
    assert ds.label_names == {0: "background", 1: "liver", 2: "tumour"}
    assert ds.modality == "CT" and ds.file_ending == ".nii.gz"
    assert ds.state_dir == ds.root / ".aleatoric"
    assert ds.case("case_b").case_id == "case_b" and ds.case("t1").label_path is None
    with pytest.raises(CaseError, match="nope"):
        ds.case("nope")
    assert any("notes.txt" in w for w in ds.warnings)


def test_load_case_gives_napari_order_image_and_label(tmp_path):
    root = nnunet(tmp_path / "ds")
    ds = open_dataset(root)
    case = load_case(ds, ds.case("case_a"))
    assert isinstance(case, Case)
    assert case.image.dtype == np.float32 and case.image.shape == (4, 5, 6)
    assert case.label.dtype.kind in "iu" and case.label.shape == (4, 5, 6)
    assert case.geometry.spacing == pytest.approx((2.0, 0.9, 0.8))
    on_disk = np.asanyarray(nib.load(str(root / "labelsTr" / "case_a.nii.gz")).dataobj)
    assert np.array_equal(case.label, on_disk.T)
    test_root = nnunet(tmp_path / "ds2", test_ids=("t1",))
    ds2 = open_dataset(test_root)
    tcase = load_case(ds2, ds2.case("t1"))
    assert tcase.label is None and tcase.geometry.spacing == pytest.approx((2.0, 0.9, 0.8))


def test_multichannel_nnunet_uses_channel_0_and_checks_all(tmp_path):
    root = nnunet(tmp_path / "ds", channels=("T1", "T2"))
    ds = open_dataset(root)
    ref = ds.case("case_a")
    assert [p.name for p in ref.image_paths] == ["case_a_0000.nii.gz", "case_a_0001.nii.gz"]
    assert ds.modality == "T1" and ds.num_channels == 2
    case = load_case(ds, ref)
    channel0 = np.asanyarray(nib.load(str(ref.image_paths[0])).dataobj).T
    assert np.allclose(case.image, channel0)
    assert validate_dataset(ds) == []
    nii(ref.image_paths[1], volume((6, 5, 3)))
    (errors,) = validate_dataset(ds)
    assert "case_a_0001.nii.gz" in str(errors) and "channel 1 shape" in str(errors)


def test_png_dataset(tmp_path):
    root = tmp_path / "ds2d"
    for cid in ("x1", "x2"):
        (root / "imagesTr").mkdir(parents=True, exist_ok=True)
        (root / "labelsTr").mkdir(parents=True, exist_ok=True)
        Image.fromarray(RNG.integers(0, 255, size=(8, 9, 3)).astype(np.uint8)).save(root / "imagesTr" / f"{cid}_0000.png")
        Image.fromarray(labelmap((8, 9), hi=1)).save(root / "labelsTr" / f"{cid}.png")
    write_json(root, {"channel_names": {"0": "RGB"}, "labels": {"background": 0, "cell": 1},
                      "numTraining": 2, "file_ending": ".png"})
    ds = open_dataset(root)
    assert validate_dataset(ds) == []
    case = load_case(ds, ds.cases[1])
    assert case.image.shape == case.label.shape == (8, 9) and case.geometry.spacing == (1.0, 1.0)


def test_dicom_series_folders_as_images(tmp_path):
    root = tmp_path / "dcm"
    for name in ("p1_0000", "p2_0000.dcm"):
        dicom_series(root / "imagesTr" / name)
    for cid in ("p1", "p2"):
        nii(root / "labelsTr" / f"{cid}.nii.gz", labelmap((6, 5, 3), hi=1), affine=np.diag([0.5, 0.5, 2.0, 1.0]))
    write_json(root, {"channel_names": {"0": "CT"}, "labels": {"background": 0, "organ": 1},
                      "numTraining": 2, "file_ending": ".dcm"})
    ds = open_dataset(root)
    assert [c.case_id for c in ds.cases] == ["p1", "p2"]
    assert ds.case("p1").image_paths[0].name == "p1_0000" and ds.case("p1").label_path.name == "p1.nii.gz"
    assert validate_dataset(ds) == []
    case = load_case(ds, ds.case("p2"))
    assert case.image.shape == case.label.shape == (3, 5, 6)  # (slices, Rows, Columns)
    assert np.array_equal(case.image[:, 0, 0], [1000 - 1024, 1001 - 1024, 1002 - 1024])


# ------------------------------------------------------------------------------- Decathlon

def test_open_msd(tmp_path):
    ds = open_dataset(msd(tmp_path / "Task03"))
    assert ds.layout == "msd" and ds.name == "Task03_Organ"
    assert ds.labels == {"background": 0, "organ": 1} and ds.foreground == {"organ": 1}
    assert ds.modality == "CT" and ds.file_ending == ".nii.gz"
    assert [c.case_id for c in ds.cases] == ["organ_0", "organ_1"]
    assert ds.cases[0].image_paths == (ds.root / "imagesTr" / "organ_0.nii.gz",)
    assert [c.case_id for c in ds.test_cases] == ["organ_9"]
    assert validate_dataset(ds) == []
    assert load_case(ds, ds.cases[1]).label.shape == (4, 5, 6)


def test_msd_multimodal_uses_channel_0(tmp_path):
    ds = open_dataset(msd(tmp_path / "Task01", modalities=("FLAIR", "T1w")))
    assert ds.modality == "FLAIR" and ds.num_channels == 2
    assert validate_dataset(ds) == []
    case = load_case(ds, ds.cases[0])
    assert case.image.shape == (4, 5, 6) and np.all(case.image == 10.0)


@pytest.mark.parametrize("bad", ["../outside/x.nii.gz", "/etc/passwd", "./imagesTr/../../x.nii.gz",
                                 "C:\\data\\x.nii.gz"])
def test_msd_paths_outside_root_are_refused(tmp_path, bad):
    training = [{"image": bad, "label": "./labelsTr/organ_0.nii.gz"}]
    root = msd(tmp_path / "T", training=training)
    with pytest.raises(DatasetError) as info:
        open_dataset(root)
    assert bad in str(info.value) and "dataset.json" in str(info.value)


def test_symlink_escaping_the_root_is_refused(tmp_path):
    outside = nii(tmp_path / "elsewhere" / "secret.nii.gz", volume())
    root = nnunet(tmp_path / "ds")
    os.symlink(outside, root / "imagesTr" / "evil_0000.nii.gz")
    nii(root / "labelsTr" / "evil.nii.gz", labelmap())
    ds = open_dataset(root)
    ref = ds.case("evil")
    with pytest.raises(CaseError, match="evil_0000.nii.gz.*outside the dataset folder"):
        validate_case_files(ds, ref)
    with pytest.raises(CaseError, match="outside the dataset folder"):
        load_case(ds, ref)
    problems = validate_dataset(ds)
    assert len(problems) == 1 and "evil_0000" in str(problems[0])


# ---------------------------------------------------------------------------- dataset errors

def _broken_datasets(base: Path) -> list[tuple[Path, str, str]]:
    """(dataset root, file named in the message, message fragment)."""
    out = []

    def make(name: str, meta, fragment: str, *, raw: str | None = None, named="dataset.json"):
        root = nnunet(base / name)
        if raw is not None:
            (root / "dataset.json").write_text(raw)
        elif meta is not None:
            write_json(root, meta)
        out.append((root, named, fragment))
        return root

    good = {"channel_names": {"0": "CT"}, "labels": LABELS, "numTraining": 2, "file_ending": ".nii.gz"}
    make("invalid_json", None, "invalid JSON", raw="{not json")
    make("not_object", None, "JSON object", raw="[1, 2]")
    make("no_labels", {k: v for k, v in good.items() if k != "labels"}, "missing key 'labels'")
    make("no_ending", {k: v for k, v in good.items() if k != "file_ending"}, "missing key 'file_ending'")
    make("no_channels", {k: v for k, v in good.items() if k != "channel_names"}, "missing key 'channel_names'")
    make("regions", {**good, "labels": {"background": 0, "whole": [1, 2], "core": 2}}, "region-based")
    make("dup_value", {**good, "labels": {"background": 0, "a": 1, "b": 1}}, "used by both")
    make("neg_value", {**good, "labels": {"background": 0, "a": -1}}, "non-negative")
    make("bad_ending", {**good, "file_ending": ".jpg"}, "not supported")
    make("bad_channels", {**good, "channel_names": {"1": "CT"}}, "keys must be 0..0")
    root = make("no_json", None, "dataset.json is missing")
    (root / "dataset.json").unlink()
    root = make("no_imagesTr", good, "imagesTr folder is missing", named="imagesTr")
    for p in sorted((root / "imagesTr").iterdir()):
        p.unlink()
    (root / "imagesTr").rmdir()
    root = make("no_cases", good, "no training cases", named="imagesTr")
    for p in sorted((root / "imagesTr").iterdir()):
        p.rename(p.with_name(p.name.replace("_0000", "_img")))
    root = msd(base / "msd_bad_entry", training=[{"image": "./imagesTr/organ_0.nii.gz"}])
    out.append((root, "dataset.json", "training[0]"))
    root = msd(base / "msd_empty", training=[])
    out.append((root, "dataset.json", "lists no cases"))
    root = msd(base / "msd_dup", training=[{"image": "./imagesTr/organ_0.nii.gz", "label": "./labelsTr/organ_0.nii.gz"}] * 2)
    out.append((root, "dataset.json", "listed twice"))
    return out


def test_broken_datasets_give_dataset_errors(tmp_path):
    broken = _broken_datasets(tmp_path)
    before = tree_hash(tmp_path)
    for root, named, fragment in broken:
        with pytest.raises(DatasetError) as info:
            open_dataset(root)
        message = str(info.value)
        assert named in message and root.name in message, message
        assert fragment in message, (root.name, message)
    with pytest.raises(DatasetError, match="missing_folder.*does not exist"):
        open_dataset(tmp_path / "missing_folder")
    assert tree_hash(tmp_path) == before


def test_value_to_name_labels_and_implicit_background(tmp_path):
    ds = open_dataset(nnunet(tmp_path / "a", labels={"0": "background", "1": "liver"}))
    assert ds.labels == {"background": 0, "liver": 1}
    ds = open_dataset(nnunet(tmp_path / "b", labels={"liver": 1, "tumour": 2}))
    assert ds.labels == {"background": 0, "liver": 1, "tumour": 2}
    assert any("value 0" in w for w in ds.warnings)
    ds = open_dataset(nnunet(tmp_path / "c", labels={"background": 0, "liver": 1, "ignore": 2}))
    assert ds.foreground == {"liver": 1}


def test_numtraining_mismatch_is_a_warning(tmp_path):
    ds = open_dataset(nnunet(tmp_path / "ds", numTraining=5))
    assert len(ds.cases) == 2 and any("numTraining is 5" in w for w in ds.warnings)


# ------------------------------------------------------------------------------ case errors

def test_validate_dataset_reports_every_bad_case_and_changes_nothing(tmp_path):
    ids = ["good", "shape", "nolabel", "corrupt", "spacing", "affine", "missing_chan"]
    root = nnunet(tmp_path / "ds", case_ids=ids)
    nii(root / "labelsTr" / "shape.nii.gz", labelmap((6, 5, 3)))
    (root / "labelsTr" / "nolabel.nii.gz").unlink()
    (root / "imagesTr" / "corrupt_0000.nii.gz").write_bytes(b"\x1f\x8b\x08 not really")
    nii(root / "labelsTr" / "spacing.nii.gz", labelmap(), affine=np.diag([0.8, 0.9, 3.0, 1.0]))
    shifted = AFFINE.copy()
    shifted[:3, 3] = [5.0, 0.0, 0.0]
    nii(root / "labelsTr" / "affine.nii.gz", labelmap(), affine=shifted)
    ds = open_dataset(root)
    before = tree_hash(tmp_path)
    problems = validate_dataset(ds)
    assert all(isinstance(p, CaseError) for p in problems)
    messages = sorted(str(p) for p in problems)
    assert len(messages) == 5, messages
    expected = {
        "shape.nii.gz": "does not match image shape",
        "nolabel.nii.gz": "label file of case 'nolabel' is missing",
        "corrupt_0000.nii.gz": "cannot read NIfTI",
        "spacing.nii.gz": "spacing",
        "affine.nii.gz": "affine",
    }
    for name, fragment in expected.items():
        hits = [m for m in messages if f"/{name}:" in m]
        assert len(hits) == 1 and fragment in hits[0], (name, messages)
    for name in expected:
        cid = name.split(".")[0].replace("_0000", "")
        with pytest.raises(CaseError, match=name.replace(".", r"\.")):
            load_case(ds, ds.case(cid))
    assert load_case(ds, ds.case("good")).label is not None
    assert tree_hash(tmp_path) == before
    assert not ds.state_dir.exists()


def test_load_case_names_undeclared_label_values(tmp_path):
    root = nnunet(tmp_path / "ds")
    bad = labelmap()
    bad[0, 0, 0], bad[1, 0, 0] = 7, 9
    nii(root / "labelsTr" / "case_a.nii.gz", bad)
    ds = open_dataset(root)
    validate_case_files(ds, ds.case("case_a"))  # headers are fine
    with pytest.raises(CaseError, match=r"case_a\.nii\.gz: label values 7, 9 are not declared"):
        load_case(ds, ds.case("case_a"))


def test_load_case_refuses_nan_image_and_bad_label_values(tmp_path):
    root = nnunet(tmp_path / "ds", case_ids=("nan", "frac", "neg", "flat"))
    img = volume()
    img[2, 2, 2] = np.nan
    nii(root / "imagesTr" / "nan_0000.nii.gz", img)
    nii(root / "labelsTr" / "frac.nii.gz", np.full((6, 5, 4), 0.5, np.float32))
    nii(root / "labelsTr" / "neg.nii.gz", np.full((6, 5, 4), -1, np.int16))
    nii(root / "imagesTr" / "flat_0000.nii.gz", np.zeros((6, 5, 4, 3), np.float32))
    ds = open_dataset(root)
    for cid, name, fragment in [("nan", "nan_0000.nii.gz", "NaN/inf"), ("frac", "frac.nii.gz", "non-integer"),
                                ("neg", "neg.nii.gz", "negative"), ("flat", "flat_0000.nii.gz", "dimensionality")]:
        with pytest.raises(CaseError) as info:
            load_case(ds, ds.case(cid))
        assert name in str(info.value) and fragment in str(info.value), str(info.value)
