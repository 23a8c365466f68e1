"""Exporting the label-issue maps and the FM segmentation on the image's own geometry (tiny model)."""

from __future__ import annotations

import json
import re
import shutil

import nibabel as nib
import numpy as np
import pytest
import tifffile
from helpers import make_tiny_dataset, write_ct_slice
from PIL import Image

from napari_aleatoric.cli import main
from napari_aleatoric.data.dataset import load_case, open_dataset
from napari_aleatoric.data.errors import AleatoricError
from napari_aleatoric.data.medio import read_image
from napari_aleatoric.pipelines.class_maps import fm_segmentation
from napari_aleatoric.pipelines.export_maps import (
    PNG_SCALE,
    CaseMapsExported,
    CaseMapsSkipped,
    MapsExportFinished,
    check_export_dir,
    export_maps,
    export_paths,
    write_case_maps,
)
from napari_aleatoric.labelquality.assess import load_issue_maps
from napari_aleatoric.pipelines.scoring import load_class_maps, score_dataset

MODEL = "tiny@seed0"
#: label values that are not class indices: an export writing indices (1, 2) instead fails
LABELS = {"background": 0, "disc": 3, "square": 7}
#: file voxel order (i, j, k); the cases are read as (k, j, i) = (D, H, W)
FILE_SHAPE = (20, 24, 4)
#: 3D Slicer's Add Data dialog ticks "LabelMap" for a file whose base name matches one of these
#: (qSlicerVolumesIOOptionsWidget::setFileNames)
SLICER_LABEL_MAP_NAMES = (re.compile(r"(\b|_)([Ll]abel(s)?)(\b|_)"), re.compile(r"(\b|_)([Ss]eg)(\b|_)"))


def oblique_affine() -> np.ndarray:
    """Voxel-to-world: spacing (0.8, 1.2, 3.0) mm, x flipped, rotated 30° about z, offset."""
    angle = np.deg2rad(30.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([-0.8, 1.2, 3.0])
    affine[:3, 3] = [41.5, -12.25, 7.0]
    return affine


def save_nifti(path, data, affine):
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))


def make_nifti_dataset(root, cases: int = 5, seed: int = 0):
    """nnU-Net dataset of small oblique NIfTI volumes: a bright disc (3) and a dark square (7) per slice."""
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    depth, height, width = FILE_SHAPE[::-1]
    yy, xx = np.mgrid[:height, :width]
    for i in range(cases):
        label = np.zeros((depth, height, width), np.uint8)
        for d in range(depth):
            cy, cx, r = int(rng.integers(7, height - 7)), int(rng.integers(7, width - 7)), int(rng.integers(3, 6))
            label[d][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 3
            sy, sx = rng.integers(0, height - 5), rng.integers(0, width - 5)
            square = label[d, sy:sy + 4, sx:sx + 4]
            square[square == 0] = 7
        image = np.select([label == 3, label == 7], [220.0, 30.0], 100.0) + rng.normal(0, 10, label.shape)
        save_nifti(root / "imagesTr" / f"case{i}_0000.nii.gz", image.astype(np.int16).T, oblique_affine())
        save_nifti(root / "labelsTr" / f"case{i}.nii.gz", label.T, oblique_affine())
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MRI"}, "labels": LABELS,
                                                   "numTraining": cases, "file_ending": ".nii.gz"}))
    return root


def score(root):
    finished = list(score_dataset(root, "tiny", device="cpu"))[-1]
    assert finished.table.rows and not finished.skipped
    return finished


@pytest.fixture(scope="module")
def scored_nifti(tmp_path_factory):
    """A scored NIfTI dataset (scored once for the module; tests that edit it work on a copy)."""
    root = make_nifti_dataset(tmp_path_factory.mktemp("nifti") / "Dataset901_Oblique")
    score(root)
    return root


def run_export(root, out_dir, **kwargs):
    events = list(export_maps(root, out_dir, MODEL, "raw", **kwargs))
    assert isinstance(events[-1], MapsExportFinished)
    return events


def test_nifti_maps_have_the_image_affine_shape_and_cached_values(scored_nifti, tmp_path):
    out = tmp_path / "maps"
    events = run_export(scored_nifti, out)
    finished = events[-1]
    assert finished.exported == [f"case{i}" for i in range(5)] and finished.skipped == {}
    assert [type(e) for e in events[:-1]] == [CaseMapsExported] * 5
    expected = {f"case{i}_{suffix}.nii.gz" for i in range(5)
                for suffix in ("disc_issue", "square_issue", "fm_seg")}
    assert {p.name for p in out.iterdir()} == expected == {p.name for p in finished.files}
    ds = open_dataset(scored_nifti)
    seen_values = set()
    for i in range(5):
        image = nib.load(str(scored_nifti / "imagesTr" / f"case{i}_0000.nii.gz"))
        assert image.shape == FILE_SHAPE and np.allclose(image.affine, oblique_affine(), atol=1e-5)
        case = load_case(ds, ds.case(f"case{i}"))
        maps = load_issue_maps(ds, f"case{i}", MODEL, case.image, case.label)
        probabilities = load_class_maps(ds, f"case{i}", MODEL, "raw", case.image, case.label)[0]["probabilities"]
        for c, name in enumerate(["disc", "square"]):
            exported = nib.load(str(out / f"case{i}_{name}_issue.nii.gz"))
            assert exported.shape == image.shape
            assert np.array_equal(exported.affine, image.affine)
            assert exported.get_qform(coded=True)[1] == image.get_qform(coded=True)[1] == 1
            assert exported.get_sform(coded=True)[1] == 1
            assert exported.get_data_dtype() == np.float32
            data = np.asanyarray(exported.dataobj)
            assert np.array_equal(data, maps[c].astype(np.float32).T)  # (D, H, W) back to the file's (i, j, k)
            assert 0.0 <= data.min() and data.max() <= 1.0
        segmentation = nib.load(str(out / f"case{i}_fm_seg.nii.gz"))
        assert segmentation.shape == image.shape and np.array_equal(segmentation.affine, image.affine)
        assert segmentation.get_data_dtype() == np.uint8
        values = np.asanyarray(segmentation.dataobj)
        assert np.array_equal(values, fm_segmentation(probabilities, [3, 7]).T)
        seen_values |= set(np.unique(values).tolist())
    assert seen_values <= {0, 3, 7} and seen_values & {3, 7}  # the dataset's values, not class indices


def test_slicer_loads_the_issue_maps_as_volumes_and_the_segmentation_as_a_label_map():
    issues, segmentation = export_paths("maps", "case_007", ["disc", "left kidney"], ".nii.gz")
    assert [p.name for p in issues] == ["case_007_disc_issue.nii.gz", "case_007_left_kidney_issue.nii.gz"]

    def label_map_name(path):
        return any(pattern.search(path.name[:-len(".nii.gz")]) for pattern in SLICER_LABEL_MAP_NAMES)

    assert not any(label_map_name(p) for p in issues) and label_map_name(segmentation)


def test_a_case_edited_after_scoring_or_never_scored_is_skipped_not_exported(scored_nifti, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(scored_nifti, root)
    label_path = root / "labelsTr" / "case1.nii.gz"
    label = nib.load(str(label_path))
    edited = np.asanyarray(label.dataobj).copy()
    edited[:4, :4, 0] = 3
    save_nifti(label_path, edited, label.affine)
    (root / ".aleatoric" / "cache" / "quality" / "case3.npz").unlink()
    out = tmp_path / "maps"
    events = run_export(root, out)
    finished = events[-1]
    assert finished.exported == ["case0", "case2", "case4"]
    assert set(finished.skipped) == {"case1", "case3"}
    assert "out of date" in finished.skipped["case1"] and "score again" in finished.skipped["case1"]
    assert "not scored" in finished.skipped["case3"]
    assert [e.case_id for e in events if isinstance(e, CaseMapsSkipped)] == ["case1", "case3"]
    assert not any(p.name.startswith(("case1_", "case3_")) for p in out.iterdir())


def test_export_folder_inside_the_image_or_label_folders_is_refused(tmp_path):
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=2)
    ds = open_dataset(root)
    for bad in (root / "imagesTr", root / "imagesTr" / "maps", root / "labelsTr" / "x", root):
        with pytest.raises(AleatoricError) as error:
            check_export_dir(ds, bad)
        assert str(bad) in str(error.value)
        with pytest.raises(AleatoricError):
            list(export_maps(root, bad, MODEL))
    assert not (root / "imagesTr" / "maps").exists() and not (root / "labelsTr" / "x").exists()
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(AleatoricError, match="is a file"):
        check_export_dir(ds, tmp_path / "a_file")
    assert check_export_dir(ds, root / "maps") == root / "maps" and (root / "maps").is_dir()


def test_png_dataset_exports_16_bit_maps_with_a_scale_sidecar(tmp_path):
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=5)
    score(root)
    out = tmp_path / "maps"
    finished = run_export(root, out)[-1]
    assert len(finished.exported) == 5 and finished.skipped == {}
    ds = open_dataset(root)
    case = load_case(ds, ds.case("c00"))
    maps = load_issue_maps(ds, "c00", MODEL, case.image, case.label)
    for c, name in enumerate(["disc", "square"]):
        path = out / f"c00_{name}_issue.png"
        with Image.open(path) as im:
            stored = np.asarray(im)
        assert stored.shape == case.image.shape == (32, 32) and stored.dtype == np.uint16
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar["scale"] == pytest.approx(1 / PNG_SCALE) and sidecar["offset"] == 0.0
        assert sidecar["class"] == name and sidecar["file"] == path.name
        restored = stored * sidecar["scale"] + sidecar["offset"]
        assert np.allclose(restored, maps[c, 0].astype(np.float32), atol=0.5 / PNG_SCALE + 1e-7)
    with Image.open(out / "c00_fm_seg.png") as im:
        segmentation = np.asarray(im)
    assert segmentation.shape == (32, 32) and set(np.unique(segmentation).tolist()) <= {0, 1, 2}
    assert (out / "c00_fm_seg.png").is_file() and not (out / "c00_fm_seg.json").exists()


def test_tiff_maps_keep_the_shape_axis_order_and_spacing_metadata(tmp_path):
    path = tmp_path / "case_0000.tif"
    volume = np.arange(3 * 10 * 14, dtype=np.uint16).reshape(3, 10, 14)
    tifffile.imwrite(path, volume, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"spacing": 2.5, "unit": "um", "axes": "ZYX"})
    _, geometry = read_image(path)
    rng = np.random.default_rng(1)
    issue = rng.random((2, 3, 10, 14)).astype(np.float16)
    segmentation = rng.choice([0, 3, 7], size=(3, 10, 14)).astype(np.uint8)
    out = tmp_path / "maps"
    out.mkdir()
    files = write_case_maps(out, "case", geometry, (3, 10, 14), ["disc", "square"], [3, 7],
                            issue_maps=issue, segmentation=segmentation)
    assert [p.name for p in files] == ["case_disc_issue.tif", "case_square_issue.tif",
                                       "case_fm_seg.tif"]
    for file, expected in zip(files, [issue[0].astype(np.float32), issue[1].astype(np.float32), segmentation]):
        with tifffile.TiffFile(file) as tif:
            assert tif.series[0].shape == volume.shape
            assert np.array_equal(tif.series[0].asarray(), expected)
            assert tif.imagej_metadata["spacing"] == 2.5 and tif.imagej_metadata["unit"] == "um"
            x_resolution = tif.pages[0].tags["XResolution"].value
            assert x_resolution[0] / x_resolution[1] == pytest.approx(2.0)


def test_dicom_series_maps_are_nifti_with_the_series_affine(tmp_path):
    series = tmp_path / "case_0000"
    series.mkdir()
    for k in range(3):
        write_ct_slice(series / f"s{k}.dcm", np.full((12, 16), 40 * k, np.int16), spacing=(0.7, 0.9),
                       ImagePositionPatient=[-20.0, 10.0, 2.5 * k], ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
                       InstanceNumber=k + 1, SeriesInstanceUID="1.2.3")
    image, geometry = read_image(series)
    assert image.shape == (3, 12, 16)
    out = tmp_path / "maps"
    out.mkdir()
    issue = np.linspace(0, 1, 2 * 3 * 12 * 16, dtype=np.float32).reshape(2, 3, 12, 16)
    files = write_case_maps(out, "case", geometry, image.shape, ["a b", "c/d"], [1, 2], issue_maps=issue,
                            segmentation=np.ones(image.shape, np.uint8))
    assert [p.name for p in files] == ["case_a_b_issue.nii.gz", "case_c_d_issue.nii.gz",
                                       "case_fm_seg.nii.gz"]
    for file in files:
        exported = nib.load(str(file))
        assert exported.shape == (16, 12, 3)
        assert np.allclose(exported.affine, geometry.affine, atol=1e-5)
    assert np.allclose(np.asanyarray(nib.load(str(files[1])).dataobj), issue[1].T)


def test_cli_scores_and_exports_then_refuses_a_bad_folder_before_scoring(tmp_path, capsys):
    root = make_nifti_dataset(tmp_path / "Dataset901_Oblique")
    out = tmp_path / "maps"
    assert main(["score", str(root), "--model", "tiny", "--device", "cpu", "--export-maps", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"maps: 15 files written for 5 cases to {out}; 0 cases skipped" in captured.out
    image = nib.load(str(root / "imagesTr" / "case2_0000.nii.gz"))
    exported = nib.load(str(out / "case2_square_issue.nii.gz"))
    assert exported.shape == image.shape and np.array_equal(exported.affine, image.affine)
    # scoring fully cached: the export runs again
    (out / "case0_disc_issue.nii.gz").unlink()
    assert main(["score", str(root), "--model", "tiny", "--device", "cpu", "--export-maps", str(out)]) == 0
    assert "maps: 15 files written for 5 cases" in capsys.readouterr().out
    assert (out / "case0_disc_issue.nii.gz").is_file()
    bad = root / "labelsTr" / "maps"
    (root / ".aleatoric" / "scores.csv").unlink()
    assert main(["score", str(root), "--model", "tiny", "--export-maps", str(bad)]) == 2
    captured = capsys.readouterr()
    assert str(bad) in captured.err and "labels" in captured.err
    assert not bad.exists() and not (root / ".aleatoric" / "scores.csv").exists()  # refused before scoring
