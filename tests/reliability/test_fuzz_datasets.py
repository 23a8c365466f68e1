"""Property-based attacks on dataset opening and validation: malformed ``dataset.json``, paths
that leave the folder, symlinks, mismatched geometry, undeclared label values, empty masks,
unusual and non-UTF-8 file names. Every problem is a ``DatasetError``/``CaseError`` naming the
file; nothing else escapes and no file on disk changes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reliability_helpers import AFFINE, tree_state, write_nifti

from napari_aleatoric.data.dataset import load_case, open_dataset, validate_case_files, validate_dataset
from napari_aleatoric.data.errors import AleatoricError, CaseError, DatasetError

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LABELS = {"background": 0, "liver": 1, "tumour": 2}
SHAPE = (4, 5, 6)  # file voxel order

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def make_nnunet(root: Path, case_ids=("case_a", "case_b"), labels=LABELS) -> Path:
    rng = np.random.default_rng(5)
    for case_id in case_ids:
        write_nifti(root / "imagesTr" / f"{case_id}_0000.nii.gz", rng.normal(size=SHAPE).astype(np.float32))
        write_nifti(root / "labelsTr" / f"{case_id}.nii.gz", rng.integers(0, 3, size=SHAPE).astype(np.uint8))
    (root / "dataset.json").write_text(json.dumps(
        {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": len(case_ids), "file_ending": ".nii.gz"}))
    return root


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return make_nnunet(tmp_path_factory.mktemp("template") / "Dataset001_Fuzz")


@pytest.fixture
def fresh(template, tmp_path_factory):
    """A function returning a new copy of the template dataset for each hypothesis example."""
    base = tmp_path_factory.mktemp("copies")
    counter = iter(range(10**6))

    def copy() -> Path:
        target = base / f"ds{next(counter)}"
        shutil.copytree(template, target, symlinks=True)
        return target
    return copy


def open_validate_load(root: Path) -> list[AleatoricError]:
    """Open, validate and load every case the way scoring does; return every problem found.

    Only DatasetError/CaseError may come out; anything else fails the test."""
    try:
        ds = open_dataset(root)
    except DatasetError as error:
        assert error.path is not None and str(error).startswith(str(error.path)), str(error)
        return [error]
    problems: list[AleatoricError] = list(validate_dataset(ds))
    for ref in ds.cases:
        try:
            validate_case_files(ds, ref)
            load_case(ds, ref)
        except CaseError as error:
            assert error.path is not None and str(error).startswith(str(error.path)), str(error)
            problems.append(error)
    return problems


@FUZZ
@given(key=st.sampled_from(["labels", "channel_names", "file_ending", "numTraining", "training", "test",
                            "name", "modality"]), value=json_values)
def test_malformed_dataset_json_values_give_dataset_errors(fresh, key, value):
    root = fresh()
    meta = json.loads((root / "dataset.json").read_text())
    meta[key] = value
    (root / "dataset.json").write_text(json.dumps(meta))
    before = tree_state(root)
    open_validate_load(root)
    assert tree_state(root) == before


@FUZZ
@given(data=st.binary(max_size=300))
def test_garbage_dataset_json_bytes_give_a_dataset_error(fresh, data):
    root = fresh()
    (root / "dataset.json").write_bytes(data)
    before = tree_state(root)
    problems = open_validate_load(root)
    assert problems and problems[0].path == root.resolve() / "dataset.json"
    assert tree_state(root) == before


escaping_paths = st.one_of(
    st.sampled_from(["../outside.nii.gz", "/etc/passwd", "imagesTr/../../outside.nii.gz", "C:\\x.nii.gz",
                     "\\\\server\\share\\x.nii.gz", "./../outside.nii.gz", "imagesTr/./../../x.nii.gz", "~/x.nii.gz",
                     "", " ", "imagesTr/\x00.nii.gz"]),
    st.lists(st.sampled_from(["..", ".", "imagesTr", "labelsTr", "x.nii.gz", "", "~", "\x00"]),
             min_size=1, max_size=6).map("/".join),
)


@FUZZ
@given(image=escaping_paths, label=escaping_paths)
def test_decathlon_paths_that_leave_the_folder_are_refused(fresh, tmp_path_factory, image, label):
    root = fresh()
    outside = root.parent / "outside.nii.gz"
    write_nifti(outside, np.ones(SHAPE, np.uint8))
    meta = {"name": "Task01", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "liver"},
            "training": [{"image": image, "label": label}]}
    (root / "dataset.json").write_text(json.dumps(meta))
    before, outside_before = tree_state(root), outside.read_bytes()
    problems = open_validate_load(root)
    assert problems, f"{image!r}/{label!r} accepted"
    assert tree_state(root) == before and outside.read_bytes() == outside_before


@pytest.mark.parametrize("what", ["image", "label"])
@pytest.mark.parametrize("kind", ["to_file_outside", "to_folder_outside", "loop", "dangling"])
def test_symlinks_that_leave_the_folder_are_refused(fresh, what, kind):
    root = fresh()
    target = root / ("imagesTr/case_a_0000.nii.gz" if what == "image" else "labelsTr/case_a.nii.gz")
    outside = root.parent / f"outside_{what}_{kind}.nii.gz"
    shutil.copy(target, outside)
    target.unlink()
    if kind == "to_file_outside":
        target.symlink_to(outside)
    elif kind == "to_folder_outside":  # the whole folder is a link to a copy outside
        folder = target.parent
        shutil.copytree(folder, root.parent / f"{folder.name}_{what}_{kind}")
        shutil.copy(outside, root.parent / f"{folder.name}_{what}_{kind}" / target.name)
        shutil.rmtree(folder)
        folder.symlink_to(root.parent / f"{folder.name}_{what}_{kind}")
    elif kind == "loop":
        target.symlink_to(target)
    else:
        target.symlink_to(root / "nowhere.nii.gz")
    before = tree_state(root)
    problems = [p for p in open_validate_load(root) if "case_a" in str(p.path)]
    assert problems, f"{kind} {what} link accepted"
    assert all(p.path.name.startswith(("case_a", "dataset.json")) for p in problems)
    if kind in ("to_file_outside", "to_folder_outside"):
        assert "outside the dataset folder" in str(problems[0])
    assert tree_state(root) == before


def test_symlink_inside_the_folder_is_followed(fresh):
    root = fresh()
    label = root / "labelsTr" / "case_a.nii.gz"
    kept = root / "labelsTr" / "kept" / "case_a.nii.gz"
    kept.parent.mkdir()
    label.rename(kept)
    label.symlink_to(kept)
    assert open_validate_load(root) == []


geometry_changes = st.sampled_from(["shape", "spacing", "origin", "orientation", "dims2d"])


@FUZZ
@given(change=geometry_changes, amount=st.floats(0.01, 10.0))
def test_mismatched_image_and_label_geometry_is_named(fresh, change, amount):
    root = fresh()
    label = root / "labelsTr" / "case_b.nii.gz"
    data = np.ones(SHAPE, np.uint8)
    affine = AFFINE.copy()
    if change == "shape":
        data = np.ones((SHAPE[0], SHAPE[1], SHAPE[2] + 1 + int(amount)), np.uint8)
    elif change == "spacing":
        affine[0, 0] *= 1.0 + amount
    elif change == "origin":
        affine[:3, 3] += amount
    elif change == "orientation":
        affine[:3, :3] = affine[:3, :3] @ np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
        assume(not np.allclose(affine, AFFINE))
    else:
        data = np.ones(SHAPE[:2], np.uint8)
    write_nifti(label, data, affine)
    before = tree_state(root)
    problems = open_validate_load(root)
    assert problems and all(p.path == label for p in problems), [str(p) for p in problems]
    assert "case_b_0000.nii.gz" in str(problems[0])  # the message names the image it must match
    assert tree_state(root) == before


@FUZZ
@given(values=st.lists(st.integers(3, 65535), min_size=1, max_size=4, unique=True))
def test_label_values_not_in_dataset_json_are_named(fresh, values):
    root = fresh()
    label = root / "labelsTr" / "case_a.nii.gz"
    data = np.zeros(SHAPE, np.uint16)
    data.reshape(-1)[: len(values)] = values
    write_nifti(label, data)
    before = tree_state(root)
    problems = [p for p in open_validate_load(root) if p.path == label]
    assert len(problems) == 1
    assert f"label values {', '.join(map(str, sorted(values)))} are not declared" in str(problems[0])
    assert tree_state(root) == before


def test_empty_masks_are_valid_annotations(fresh):
    """An all-background label is a legitimate answer ("nothing here"), loaded as zeros."""
    root = fresh()
    write_nifti(root / "labelsTr" / "case_a.nii.gz", np.zeros(SHAPE, np.uint8))
    assert open_validate_load(root) == []
    ds = open_dataset(root)
    assert not load_case(ds, ds.case("case_a")).label.any()


unusual_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00\\"),
    min_size=1, max_size=60,
).filter(lambda s: not s.startswith(".") and s.strip() == s and s not in (".", ".."))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case_id=unusual_names)
def test_unusual_case_names_open_validate_and_load(fresh, case_id):
    root = fresh()
    try:
        os.rename(root / "imagesTr" / "case_a_0000.nii.gz", root / "imagesTr" / f"{case_id}_0000.nii.gz")
        os.rename(root / "labelsTr" / "case_a.nii.gz", root / "labelsTr" / f"{case_id}.nii.gz")
    except OSError:
        assume(False)  # a name this file system cannot hold (too long in bytes)
    assert open_validate_load(root) == []
    ds = open_dataset(root)
    assert case_id in [ref.case_id for ref in ds.cases]
    assert load_case(ds, ds.case(case_id)).label.shape == SHAPE[::-1]


@pytest.mark.parametrize("raw_name", [b"caf\xe9", b"\xff\xfe", b"scan \x80\x81"])
def test_non_utf8_file_names_are_refused_naming_the_file(fresh, raw_name):
    root = fresh()
    image = os.fsencode(root / "imagesTr") + b"/" + raw_name + b"_0000.nii.gz"
    label = os.fsencode(root / "labelsTr") + b"/" + raw_name + b".nii.gz"
    os.rename(root / "imagesTr" / "case_a_0000.nii.gz", image)
    os.rename(root / "labelsTr" / "case_a.nii.gz", label)
    before = tree_state(root)
    problems = open_validate_load(root)
    assert problems and all("not valid UTF-8" in str(p) for p in problems)
    assert os.fsencode(problems[0].path).endswith(raw_name + b"_0000.nii.gz")
    ds = open_dataset(root)
    assert [ref.case_id for ref in ds.cases if ref.case_id != os.fsdecode(raw_name)] == ["case_b"]
    assert tree_state(root) == before
