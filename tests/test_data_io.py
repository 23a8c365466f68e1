"""Medical I/O (napari_aleatoric.data.medio) and atomic writes (napari_aleatoric.data.atomic)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import tifffile
from helpers import write_ct_slice
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from napari_aleatoric.data import medio
from napari_aleatoric.data.atomic import (atomic_create, atomic_write_bytes, atomic_writer, full_suffix, temp_name_pattern,
                                          temp_path_for)
from napari_aleatoric.data.errors import CaseError
from napari_aleatoric.data.geometry import Geometry

RNG = np.random.default_rng(1234)
AFFINE = np.array([[0.0, -0.8, 0.0, 12.5], [1.2, 0.0, 0.0, -7.25], [0.0, 0.0, 2.5, 30.0], [0, 0, 0, 1]])


# ------------------------------------------------------------------------------------ helpers

def tree_hash(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and folder marker) under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


def save_nifti(path: Path, data: np.ndarray, affine=AFFINE, dtype=None, slope=None, inter=None) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=2)
    if dtype is not None:
        img.set_data_dtype(dtype)
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    nib.save(img, str(path))
    return path


def nifti_payload(path: Path) -> bytes:
    """The voxel bytes of a NIfTI file exactly as stored."""
    img = nib.load(str(path), mmap=False)
    raw = np.asanyarray(img.dataobj.get_unscaled())
    return raw.tobytes(order="F")


def dicom_slice(path: Path, pixels: np.ndarray, z: float, series_uid: str, number: int,
                slope: float = 1.0, inter: float = -1024.0, spacing=(0.5, 0.7)) -> Path:
    """Write one tiny CT slice (int16, axial) from scratch."""
    return write_ct_slice(path, pixels, spacing, StudyInstanceUID="1.2.3.4", SeriesInstanceUID=series_uid,
                          InstanceNumber=number, SliceThickness=2.0, ImagePositionPatient=[-10.0, 20.0, float(z)],
                          ImageOrientationPatient=[1, 0, 0, 0, 1, 0], RescaleSlope=slope, RescaleIntercept=inter)


def dicom_series(folder: Path, depth=4, z0=5.0, dz=2.5, shape=(6, 7), uid=None) -> np.ndarray:
    """Write a series in shuffled file order; returns the expected (D, H, W) values in HU."""
    folder.mkdir(parents=True, exist_ok=True)
    uid = uid or generate_uid()
    stack = RNG.integers(0, 2000, size=(depth, *shape)).astype(np.int16)
    for k in RNG.permutation(depth):
        dicom_slice(folder / f"IM{(7 * k + 3) % depth:04d}", stack[k], z0 + k * dz, uid, number=depth - k)
    return stack.astype(np.float32) * 1.0 - 1024.0


# --------------------------------------------------------------------------------- NIfTI

@pytest.mark.parametrize("ending", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_nifti_label_round_trip_keeps_affine_zooms_and_voxels(tmp_path, ending, dtype):
    data = RNG.integers(0, 5, size=(5, 6, 7)).astype(dtype)
    src = save_nifti(tmp_path / f"lab{ending}", data)
    labels, geom = medio.read_label(src)
    assert labels.shape == (7, 6, 5)
    assert labels.dtype.kind in "iu"
    assert geom.spacing == pytest.approx((2.5, 0.8, 1.2))
    assert np.array_equal(labels, data.T)

    out = tmp_path / f"out{ending}"
    medio.write_label(out, labels, geom)
    a, b = nib.load(str(src)), nib.load(str(out))
    assert np.array_equal(a.affine, b.affine)
    assert a.header.get_zooms() == b.header.get_zooms()
    assert a.get_data_dtype() == b.get_data_dtype()
    assert a.header.get_qform(coded=True)[1] == b.header.get_qform(coded=True)[1] == 1
    assert a.header.get_sform(coded=True)[1] == b.header.get_sform(coded=True)[1] == 2
    assert nifti_payload(src) == nifti_payload(out)
    if ending == ".nii.gz":
        assert out.read_bytes()[:2] == b"\x1f\x8b"  # really gzip-compressed
    else:
        assert out.read_bytes()[344:348] == b"n+1\x00"


def test_nifti_axis_order_is_reversed(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    image, geom = medio.read_image(save_nifti(tmp_path / "img.nii.gz", data))
    assert image.dtype == np.float32 and image.shape == (4, 3, 2)
    for i, j, k in [(0, 0, 0), (1, 2, 3), (1, 0, 2)]:
        assert image[k, j, i] == data[i, j, k]
    assert image.flags["C_CONTIGUOUS"]


def test_nifti_image_scaling_is_applied(tmp_path):
    raw = RNG.integers(0, 3000, size=(4, 4, 3)).astype(np.int16)
    path = save_nifti(tmp_path / "ct.nii", raw)
    block = bytearray(path.read_bytes())
    block[112:120] = np.array([2.0, -1024.0], "<f4").tobytes()  # scl_slope, scl_inter
    path.write_bytes(bytes(block))
    image, _ = medio.read_image(path)
    assert np.allclose(image, (raw.astype(np.float32) * 2 - 1024).T)


def test_nifti_singleton_slice_axis_stays_3d_and_round_trips(tmp_path):
    data = RNG.integers(0, 3, size=(5, 4, 1)).astype(np.uint8)
    src = save_nifti(tmp_path / "thin.nii.gz", data)
    labels, geom = medio.read_label(src)
    assert labels.shape == (1, 4, 5)
    medio.write_label(tmp_path / "thin_out.nii.gz", labels, geom)
    assert nib.load(str(tmp_path / "thin_out.nii.gz")).shape == (5, 4, 1)


def test_nifti_trailing_singleton_fourth_axis_is_dropped_and_restored(tmp_path):
    data = RNG.integers(0, 3, size=(5, 4, 3, 1)).astype(np.uint8)
    src = save_nifti(tmp_path / "v.nii.gz", data)
    labels, geom = medio.read_label(src)
    assert labels.shape == (3, 4, 5)
    medio.write_label(tmp_path / "v_out.nii.gz", labels, geom)
    back = nib.load(str(tmp_path / "v_out.nii.gz"))
    assert back.shape == (5, 4, 3, 1)
    assert np.array_equal(np.asanyarray(back.dataobj), data)


def test_nifti_2d(tmp_path):
    data = RNG.integers(0, 3, size=(5, 4)).astype(np.uint8)
    labels, geom = medio.read_label(save_nifti(tmp_path / "flat.nii", data))
    assert labels.shape == (4, 5) and len(geom.spacing) == 2


def test_multichannel_nifti_needs_a_channel(tmp_path):
    data = np.stack([np.full((4, 5, 3), c, np.float32) for c in (10, 20)], axis=-1)
    src = save_nifti(tmp_path / "mm.nii.gz", data)
    with pytest.raises(CaseError, match="mm.nii.gz.*dimensionality"):
        medio.read_image(src)
    image, _ = medio.read_image(src, channel=1)
    assert image.shape == (3, 5, 4) and np.all(image == 20)
    with pytest.raises(CaseError, match="channel 2"):
        medio.read_image(src, channel=2)
    assert medio.probe(src, channel=0).shape == (3, 5, 4)


def test_write_label_rejects_values_that_do_not_fit(tmp_path):
    src = save_nifti(tmp_path / "l.nii.gz", np.zeros((3, 3, 3), np.uint8))
    before = src.read_bytes()
    labels, geom = medio.read_label(src)
    with pytest.raises(CaseError, match="l.nii.gz.*300"):
        medio.write_label(src, labels.astype(np.int32) + 300, geom)
    with pytest.raises(CaseError, match="negative"):
        medio.write_label(src, labels.astype(np.int32) - 1, geom)
    with pytest.raises(CaseError, match="non-integer"):
        medio.write_label(src, labels + 0.5, geom)
    with pytest.raises(CaseError, match="shape"):
        medio.write_label(src, labels[:2], geom)
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.nii.gz"]


def test_new_label_file_from_image_geometry(tmp_path):
    image, geom = medio.read_image(save_nifti(tmp_path / "img.nii.gz", RNG.random((4, 5, 6)).astype(np.float32)))
    labels = (image > 0.5).astype(np.int64)
    medio.write_label(tmp_path / "new.nii.gz", labels, geom)
    back, bgeom = medio.read_label(tmp_path / "new.nii.gz")
    assert np.array_equal(back, labels) and back.dtype == np.uint8
    assert np.array_equal(nib.load(str(tmp_path / "new.nii.gz")).affine, nib.load(str(tmp_path / "img.nii.gz")).affine)


# ------------------------------------------------------------------------------ PNG and TIFF

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_label_round_trip(tmp_path, dtype):
    data = RNG.integers(0, 4, size=(9, 11)).astype(dtype) * (1000 if dtype == np.uint16 else 1)
    src = tmp_path / "lab.png"
    Image.fromarray(data).save(src)
    labels, geom = medio.read_label(src)
    assert labels.shape == (9, 11) and geom.spacing == (1.0, 1.0)
    assert np.array_equal(labels, data)
    medio.write_label(tmp_path / "out.png", labels, geom)
    back = np.asarray(Image.open(tmp_path / "out.png"))
    assert back.dtype == data.dtype and np.array_equal(back, data)


def test_png_palette_label_keeps_indices_and_palette(tmp_path):
    data = RNG.integers(0, 3, size=(6, 5)).astype(np.uint8)
    im = Image.fromarray(data)
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    im.save(tmp_path / "pal.png")
    labels, geom = medio.read_label(tmp_path / "pal.png")
    assert np.array_equal(labels, data)
    medio.write_label(tmp_path / "pal2.png", labels, geom)
    back = Image.open(tmp_path / "pal2.png")
    assert back.mode == "P" and back.getpalette()[:9] == [0, 0, 0, 255, 0, 0, 0, 255, 0]
    assert np.array_equal(np.asarray(back), data)


def test_png_rgb_image_becomes_luminance_and_rgb_label_is_refused(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 200, 50
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    image, _ = medio.read_image(tmp_path / "rgb.png")
    assert image.shape == (4, 5) and image.dtype == np.float32
    assert np.allclose(image, 0.2125 * 100 + 0.7154 * 200 + 0.0721 * 50, atol=1e-3)
    Image.fromarray(np.dstack([rgb, np.full((4, 5), 255, np.uint8)])).save(tmp_path / "rgba.png")
    assert np.allclose(medio.read_image(tmp_path / "rgba.png")[0], image)
    with pytest.raises(CaseError, match="rgb.png.*single-channel"):
        medio.read_label(tmp_path / "rgb.png")


@pytest.mark.parametrize("ending", [".tif", ".tiff"])
@pytest.mark.parametrize("shape", [(6, 7), (3, 6, 7)])
def test_tiff_round_trip(tmp_path, ending, shape):
    data = RNG.integers(0, 6, size=shape).astype(np.uint16)
    src = tmp_path / f"lab{ending}"
    tifffile.imwrite(src, data, photometric="minisblack")
    labels, geom = medio.read_label(src)
    assert np.array_equal(labels, data) and labels.dtype == np.uint16 and geom.ndim == len(shape)
    medio.write_label(tmp_path / f"out{ending}", labels, geom)
    back = tifffile.imread(tmp_path / f"out{ending}")
    assert back.dtype == np.uint16 and np.array_equal(back, data)
    image, _ = medio.read_image(src)
    assert image.dtype == np.float32 and np.array_equal(image, data.astype(np.float32))


def test_tiff_rgb_image_becomes_luminance(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 1] = 100
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    image, _ = medio.read_image(tmp_path / "rgb.tif")
    assert image.shape == (4, 5) and np.allclose(image, 71.54, atol=1e-3)
    with pytest.raises(CaseError, match="rgb.tif.*samples"):
        medio.read_label(tmp_path / "rgb.tif")


def test_write_image_png_tiff_nifti(tmp_path):
    image = RNG.integers(0, 255, size=(5, 6)).astype(np.float32)
    for name in ("i.png", "i.tif", "i.nii.gz"):
        medio.write_image(tmp_path / name, image, None)
        back, _ = medio.read_image(tmp_path / name)
        assert np.array_equal(back, image)
    with pytest.raises(CaseError, match="i.png.*non-integer"):
        medio.write_image(tmp_path / "i.png", image + 0.5, None)


# ------------------------------------------------------------------------------------ DICOM

def test_dicom_series_is_sorted_rescaled_and_spaced(tmp_path):
    expected = dicom_series(tmp_path / "series", depth=4, z0=5.0, dz=2.5)
    (tmp_path / "series" / "README.txt").write_text("not dicom")  # ignored
    (tmp_path / "series" / ".DS_Store").write_bytes(b"\0\1")  # ignored
    image, geom = medio.read_image(tmp_path / "series")
    assert image.shape == (4, 6, 7) and image.dtype == np.float32
    assert np.array_equal(image, expected)
    assert geom.spacing == pytest.approx((2.5, 0.5, 0.7))
    assert geom.source_format == ".dcm"
    # RAS affine in NIfTI voxel order (i=column, j=row, k=slice): LPS x,y flip sign
    assert np.allclose(geom.affine[:3, 3], [10.0, -20.0, 5.0])
    assert np.allclose(np.diag(geom.affine)[:3], [-0.7, -0.5, 2.5])
    info = medio.probe(tmp_path / "series")
    assert info.shape == (4, 6, 7) and info.spacing == pytest.approx((2.5, 0.5, 0.7))
    with pytest.raises(CaseError, match="series.*DICOM labels"):
        medio.read_label(tmp_path / "series")


def test_dicom_labels_drawn_on_a_series_can_be_saved_as_nifti(tmp_path):
    dicom_series(tmp_path / "s", depth=3)
    image, geom = medio.read_image(tmp_path / "s")
    labels = (image > 0).astype(np.uint8)
    medio.write_label(tmp_path / "lab.nii.gz", labels, geom)
    back, bgeom = medio.read_label(tmp_path / "lab.nii.gz")
    assert np.array_equal(back, labels)
    assert bgeom.spacing == pytest.approx(geom.spacing)
    with pytest.raises(CaseError, match="DICOM"):
        medio.write_label(tmp_path / "lab.dcm", labels, geom)


def test_single_dicom_file():
    image, geom = medio.read_image(get_testdata_file("CT_small.dcm"))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert image.shape == (128, 128)
    assert np.array_equal(image, ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert geom.spacing == pytest.approx((0.661468, 0.661468))


def test_dicom_series_problems(tmp_path):
    gap = tmp_path / "gap"
    dicom_series(gap, depth=4)
    # remove a middle slice: the one with the second smallest z
    zs = {f: float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in gap.iterdir()}
    middle = sorted(zs, key=zs.get)[1]
    middle.unlink()
    with pytest.raises(CaseError, match="gap.*uneven slice spacing"):
        medio.read_image(gap)

    dup = tmp_path / "dup"
    uid = generate_uid()
    dup.mkdir()
    for n in range(2):
        dicom_slice(dup / f"s{n}.dcm", np.zeros((3, 3), np.int16), 1.0, uid, n)
    with pytest.raises(CaseError, match="duplicate slice position"):
        medio.read_image(dup)

    mixed = tmp_path / "mixed"
    dicom_series(mixed, depth=2)
    dicom_slice(mixed / "other.dcm", np.zeros((6, 7), np.int16), 50.0, generate_uid(), 1)
    with pytest.raises(CaseError, match="mixed.*2 DICOM series"):
        medio.read_image(mixed)

    bad = tmp_path / "bad"
    dicom_series(bad, depth=2)
    (bad / "IM9999").write_bytes(b"garbage that is not dicom")
    with pytest.raises(CaseError, match="IM9999.*not a DICOM file"):
        medio.read_image(bad)


# ---------------------------------------------------------------------------------- atomic

def test_full_suffix_and_temp_names(tmp_path):
    assert full_suffix("a/b/case_001.nii.gz") == ".nii.gz"
    assert full_suffix("x.png") == ".png"
    assert full_suffix("a.b.c.tif") == ".tif"
    tmp = temp_path_for(tmp_path / "case_001.nii.gz")
    assert tmp.parent == tmp_path and tmp.name.startswith(".case_001.") and tmp.name.endswith(".partial.nii.gz")
    assert temp_name_pattern(tmp_path / "case_001.nii.gz").fullmatch(tmp.name)
    assert not temp_name_pattern(tmp_path / "case_002.nii.gz").fullmatch(tmp.name)


def test_atomic_create_never_replaces_a_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "kept.png"
    assert atomic_create(target, b"first") is True
    assert atomic_create(target, b"second") is False
    assert target.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == ["kept.png"]

    def no_hard_links(src, dst):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)  # FAT, some network shares: renamed instead
    assert atomic_create(tmp_path / "other.png", b"third") is True
    assert atomic_create(tmp_path / "other.png", b"fourth") is False
    assert (tmp_path / "other.png").read_bytes() == b"third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.png", "other.png"]


def test_atomic_write_bytes_replaces_and_keeps_mode(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"one")
    os.chmod(target, 0o640)
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_atomic_writer_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "lab.nii.gz"
    target.write_bytes(b"previous content")
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as tmp:
            assert tmp.exists() and tmp.parent == tmp_path and tmp.name.endswith(".nii.gz")
            tmp.write_bytes(b"half-writ")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["lab.nii.gz"]


def test_write_label_crash_mid_write_keeps_old_file(tmp_path, monkeypatch):
    src = save_nifti(tmp_path / "lab.nii.gz", RNG.integers(0, 3, size=(4, 4, 4)).astype(np.uint8))
    before = src.read_bytes()
    labels, geom = medio.read_label(src)

    def broken_save(img, filename):
        Path(filename).write_bytes(b"\x1f\x8b partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nib, "save", broken_save)
    with pytest.raises(OSError, match="No space"):
        medio.write_label(src, labels * 0, geom)
    assert src.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["lab.nii.gz"]


# ------------------------------------------------------------------------------ bad inputs

def _bad_inputs(d: Path) -> list[tuple[str, str, str]]:
    """(file name, reader, expected message fragment) for broken files written into ``d``."""
    good = np.zeros((4, 4, 4), np.int16)
    save_nifti(d / "ok.nii", good)
    full = (d / "ok.nii").read_bytes()
    (d / "trunc.nii").write_bytes(full[: len(full) - 40])
    save_nifti(d / "ok.nii.gz", RNG.integers(0, 100, size=(20, 20, 20)).astype(np.int16))
    gz = (d / "ok.nii.gz").read_bytes()
    (d / "trunc.nii.gz").write_bytes(gz[: len(gz) // 2])
    (d / "garbage.nii.gz").write_bytes(b"this is not gzip at all")
    (d / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nonsense")
    Image.fromarray(RNG.integers(0, 255, size=(64, 64)).astype(np.uint8)).save(d / "ok.png")
    png = (d / "ok.png").read_bytes()
    (d / "trunc.png").write_bytes(png[: len(png) // 2])
    (d / "garbage.tif").write_bytes(b"II*\x00 nonsense")
    (d / "scan.jpg").write_bytes(b"\xff\xd8\xff")
    nan = np.zeros((3, 3, 3), np.float32)
    nan[1, 1, 1] = np.nan
    save_nifti(d / "nan.nii.gz", nan)
    inf = np.zeros((3, 3, 3), np.float32)
    inf[0, 2, 1] = np.inf
    save_nifti(d / "inf.nii.gz", inf)
    save_nifti(d / "time.nii.gz", np.zeros((3, 3, 3, 2), np.float32))
    save_nifti(d / "line.nii.gz", np.zeros((5,), np.float32))
    save_nifti(d / "frac.nii.gz", np.full((3, 3, 3), 1.5, np.float32))
    save_nifti(d / "neg.nii.gz", np.full((3, 3, 3), -2, np.int16))
    tifffile.imwrite(d / "neg.tif", np.full((3, 3), -1, np.int8))
    tifffile.imwrite(d / "cube4d.tif", np.zeros((2, 2, 3, 3), np.uint8), photometric="minisblack")
    (d / "empty_dicom").mkdir()
    return [
        ("missing.nii.gz", "image", "does not exist"),
        ("missing_label.png", "label", "does not exist"),
        ("trunc.nii", "image", "truncated"),
        ("trunc.nii", "label", "truncated"),
        ("trunc.nii.gz", "image", "cannot read NIfTI"),
        ("garbage.nii.gz", "label", "cannot read NIfTI"),
        ("garbage.png", "image", "cannot read PNG"),
        ("trunc.png", "image", "cannot read PNG"),
        ("trunc.png", "label", "cannot read PNG"),
        ("garbage.tif", "image", "no readable image"),
        ("scan.jpg", "image", "unsupported file type"),
        ("nan.nii.gz", "image", "1 NaN/inf"),
        ("inf.nii.gz", "image", "1 NaN/inf"),
        ("nan.nii.gz", "label", "NaN/inf"),
        ("time.nii.gz", "image", "dimensionality"),
        ("line.nii.gz", "image", "dimensionality"),
        ("line.nii.gz", "label", "dimensionality"),
        ("cube4d.tif", "image", "dimensionality"),
        ("frac.nii.gz", "label", "non-integer label values: 1.5"),
        ("neg.nii.gz", "label", "negative label values: -2"),
        ("neg.tif", "label", "negative label values: -1"),
        ("empty_dicom", "image", "no DICOM files"),
    ]


def test_every_bad_input_gives_a_case_error_naming_the_file(tmp_path):
    cases = _bad_inputs(tmp_path)
    before = tree_hash(tmp_path)
    for name, reader, fragment in cases:
        read = medio.read_image if reader == "image" else medio.read_label
        with pytest.raises(CaseError) as info:
            read(tmp_path / name)
        message = str(info.value)
        assert name in message, message
        assert fragment in message, (name, message)
        assert info.value.path is not None and info.value.path.name == name
    for name in ("trunc.nii", "garbage.nii.gz", "scan.jpg", "line.nii.gz", "missing.nii.gz"):
        with pytest.raises(CaseError, match=name.replace(".", r"\.")):
            medio.probe(tmp_path / name)
    assert tree_hash(tmp_path) == before  # reading never changes anything on disk


def test_reading_good_files_changes_nothing(tmp_path):
    save_nifti(tmp_path / "a.nii", RNG.integers(0, 3, size=(3, 4, 5)).astype(np.uint8))
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "b.png")
    dicom_series(tmp_path / "s", depth=2)
    before = tree_hash(tmp_path)
    medio.read_label(tmp_path / "a.nii")
    medio.read_image(tmp_path / "a.nii")
    medio.read_label(tmp_path / "b.png")
    medio.read_image(tmp_path / "s")
    medio.probe(tmp_path / "s")
    assert tree_hash(tmp_path) == before


def test_geometry_is_the_shared_dataclass(tmp_path):
    _, geom = medio.read_label(save_nifti(tmp_path / "a.nii.gz", np.zeros((2, 3, 4), np.uint8)))
    assert isinstance(geom, Geometry) and geom.ndim == 3 and geom.file_dtype == "uint8"


def test_the_flag_reason_is_written_to_the_csv_and_read_back_as_text(tmp_path):
    """Issue 16: the CSV says why a case is flagged (text with commas and semicolons survives)."""
    import numpy as np

    from napari_aleatoric.data.scores_file import read_scores, table_to_csv
    from napari_aleatoric.pipelines.table import ScoreTable, ranked

    rng = np.random.default_rng(0)
    rows = [{"case_id": f"c{i}", "rank": 0, "label_issue": float(0.92 + 0.01 * rng.standard_normal()),
             "contradicted": 0.03, "auv": 0.5, "flagged": False} for i in range(20)]
    rows[4]["label_issue"], rows[9]["contradicted"] = 0.99, 0.40
    table = ranked(ScoreTable(["case_id", "rank", "label_issue", "contradicted", "auv", "flagged"], rows))
    assert table.columns.index("flag_reason") == table.columns.index("flagged") + 1
    path = tmp_path / "scores.csv"
    path.write_text(table_to_csv(table), encoding="utf-8")
    back = {r["case_id"]: r for r in read_scores(path).rows}
    assert "robust standard deviations" in back["c4"]["flag_reason"] and back["c4"]["flagged"]
    assert back["c9"]["flag_reason"] == "40 % of the drawing contradicted"
    assert back["c0"]["flag_reason"] == "" and not back["c0"]["flagged"]
    assert {r["case_id"]: r["flag_reason"] for r in table.rows} == {c: r["flag_reason"] for c, r in back.items()}
