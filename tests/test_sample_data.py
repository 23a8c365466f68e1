"""The bundled sample datasets (sample_data/) and their generator (scripts/make_sample_data.py)."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest

from napari_aleatoric.sample_data import DATASETS, dataset_path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "make_sample_data.py"
MNI = "Dataset001_MNIBrainSlices"
CT = "Dataset002_SyntheticCT"


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("make_sample_data", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _read_label(path: Path) -> np.ndarray:
    """Label array in napari order: PNG (H, W); NIfTI (i, j, k) reversed to (D, H, W)."""
    if path.name.endswith(".nii.gz"):
        return np.asanyarray(nib.load(str(path)).dataobj).transpose(2, 1, 0)
    return iio.imread(path)


def _cases(root: Path, ending: str) -> list[str]:
    return sorted(p.name[: -len(ending)] for p in (root / "labelsTr").glob(f"*{ending}"))


def _meta(name: str) -> dict:
    return json.loads((dataset_path(name) / "dataset.json").read_text())


def _corruptions(name: str) -> list[dict]:
    return json.loads((dataset_path(name) / "corruptions.json").read_text())["corruptions"]


# ----------------------------------------------------------------------------- layout


def test_dataset_path_and_names():
    assert DATASETS == (MNI, CT)
    for name in DATASETS:
        assert dataset_path(name) == REPO / "sample_data" / name
    assert dataset_path("Dataset002") == dataset_path("syntheticct") == dataset_path(CT)
    with pytest.raises(KeyError):
        dataset_path("Dataset999_Nope")


@pytest.mark.parametrize("name", [MNI, CT])
def test_nnunet_layout(name):
    root = dataset_path(name)
    meta = _meta(name)
    ending = meta["file_ending"]
    assert ending == {MNI: ".png", CT: ".nii.gz"}[name]
    assert meta["channel_names"] == {"0": {MNI: "MRI", CT: "CT"}[name]}
    assert meta["labels"]["background"] == 0
    assert sorted(meta["labels"].values()) == list(range(len(meta["labels"])))
    cases = _cases(root, ending)
    assert len(cases) == meta["numTraining"] == {MNI: 20, CT: 4}[name]
    images = sorted(p.name for p in (root / "imagesTr").iterdir())
    assert images == [f"{c}_0000{ending}" for c in cases]
    clean = sorted(p.name for p in (root / "labelsTr_clean").iterdir())
    assert clean == [f"{c}{ending}" for c in cases]


def test_total_size_is_small():
    total = sum(p.stat().st_size for p in (REPO / "sample_data").rglob("*") if p.is_file())
    assert total < 3_000_000


def test_mni_licence_notice_present():
    text = (dataset_path(MNI) / "LICENSE_MNI152.txt").read_text()
    assert "Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre" in text
    assert "Permission to use, copy, modify, and distribute" in text


# ----------------------------------------------------------------------------- content


def test_mni_images_and_labels():
    root = dataset_path(MNI)
    allowed = set(_meta(MNI)["labels"].values())
    for case in _cases(root, ".png"):
        img = iio.imread(root / "imagesTr" / f"{case}_0000.png")
        lab = iio.imread(root / "labelsTr" / f"{case}.png")
        clean = iio.imread(root / "labelsTr_clean" / f"{case}.png")
        assert img.dtype == np.uint16 and img.shape == (233, 197)
        assert img.max() > 30000  # spread over the 16-bit range
        assert np.all(img % 257 == 0)  # 8-bit template x 257, contrast preserved
        assert lab.dtype == clean.dtype == np.uint8 and lab.shape == clean.shape == img.shape
        assert set(np.unique(lab)) <= allowed and set(np.unique(clean)) <= allowed
        # labels aligned with the image: on T1, white matter > grey matter > background
        bg, gm, wm = (img[clean == v].mean() for v in (0, 1, 2))
        assert wm > gm > bg, case
        # anterior up: the brain's bounding box is not wider than it is tall
        rows, cols = np.nonzero(clean)
        assert np.ptp(rows) >= np.ptp(cols) * 0.9, case


def test_ct_images_and_labels():
    root = dataset_path(CT)
    allowed = set(_meta(CT)["labels"].values())
    with_tumour = 0
    for case in _cases(root, ".nii.gz"):
        img_nii = nib.load(str(root / "imagesTr" / f"{case}_0000.nii.gz"))
        lab_nii = nib.load(str(root / "labelsTr" / f"{case}.nii.gz"))
        assert img_nii.shape == lab_nii.shape == (96, 96, 40)
        assert img_nii.get_data_dtype() == np.int16 and lab_nii.get_data_dtype() == np.uint8
        assert np.allclose(img_nii.affine, lab_nii.affine)
        assert np.allclose(img_nii.header.get_zooms(), (3.0, 3.0, 6.0))
        assert nib.aff2axcodes(img_nii.affine) == ("L", "P", "S")
        hu = np.asanyarray(img_nii.dataobj).transpose(2, 1, 0)
        assert hu.dtype == np.int16 and hu.shape == (40, 96, 96)
        clean = _read_label(root / "labelsTr_clean" / f"{case}.nii.gz")
        lab = _read_label(root / "labelsTr" / f"{case}.nii.gz")
        assert set(np.unique(lab)) <= allowed and set(np.unique(clean)) <= allowed
        assert hu.min() >= -1024 and 500 < hu.max() < 1500  # air .. bone
        assert abs(np.median(hu[:, :4, :]) + 1000) < 30  # air outside the body
        assert 45 < hu[clean == 1].mean() < 75  # liver ~60 HU
        assert 20 < hu[clean == 2].mean() < 50  # kidney ~30 HU
        if np.any(clean == 3):
            with_tumour += 1
            t = hu[clean == 3].mean()
            assert 10 < t < 40 and t < hu[clean == 1].mean() - 15  # hypodense
            # the tumour lies inside the liver: its neighbourhood is liver or tumour
            from scipy import ndimage as ndi

            ring = ndi.binary_dilation(clean == 3, iterations=1) & (clean != 3)
            assert np.mean(clean[ring] == 1) > 0.9
        # liver on the patient's right = image left (low column index)
        cols = np.nonzero(clean == 1)[2]
        assert cols.mean() < 48
    assert with_tumour == 3


# ----------------------------------------------------------------------------- corruptions


@pytest.mark.parametrize("name", [MNI, CT])
def test_corruptions_match_label_differences(name):
    root = dataset_path(name)
    ending = _meta(name)["file_ending"]
    recs = {r["case"]: r for r in _corruptions(name)}
    assert len(recs) == len(_corruptions(name))  # one record per corrupted case
    labels = _meta(name)["labels"]
    for case in _cases(root, ending):
        lab = _read_label(root / "labelsTr" / f"{case}{ending}")
        clean = _read_label(root / "labelsTr_clean" / f"{case}{ending}")
        changed = int(np.count_nonzero(lab != clean))
        if case in recs:
            r = recs[case]
            assert changed == r["changed_pixels"] > 0, case
            assert labels[r["class"]] == r["class_value"]
        else:
            assert changed == 0, case


def test_corruption_kinds_recorded():
    kinds = {r["kind"] for r in _corruptions(MNI)}
    assert {"boundary_shift", "missing_structure", "class_swap", "dilation", "erosion"} <= kinds
    assert [r["kind"] for r in _corruptions(CT)] == ["missing_slices"]


def test_readme_lists_the_corruptions():
    readme = (REPO / "sample_data" / "README.md").read_text()
    for name in DATASETS:
        for r in _corruptions(name):
            row = next(line for line in readme.splitlines() if line.startswith(f"| {r['case']} "))
            assert r["kind"] in row and re.search(rf"\|\s*{r['changed_pixels']}\s*\|$", row)


@pytest.mark.parametrize("name", [MNI, CT])
def test_apply_corruption_reproduces_labels(gen, name):
    root = dataset_path(name)
    ending = _meta(name)["file_ending"]
    for r in _corruptions(name):
        clean = _read_label(root / "labelsTr_clean" / f"{r['case']}{ending}")
        lab = _read_label(root / "labelsTr" / f"{r['case']}{ending}")
        once = gen.apply_corruption(clean, r)
        twice = gen.apply_corruption(clean, r)
        assert once.dtype == clean.dtype
        np.testing.assert_array_equal(once, twice)
        np.testing.assert_array_equal(once, lab)


def test_corruption_plan_is_deterministic(gen):
    root = dataset_path(MNI)
    clean = {c: iio.imread(root / "labelsTr_clean" / f"{c}.png") for c in _cases(root, ".png")}
    plans = [gen.plan_mni_corruptions(clean, np.random.default_rng(gen.MNI_SEED)) for _ in "ab"]
    assert plans[0] == plans[1]
    shipped = [{k: v for k, v in r.items() if k != "changed_pixels"} for r in _corruptions(MNI)]
    assert plans[0] == shipped


def test_apply_corruption_kinds_on_toy_label(gen):
    lab = np.zeros((20, 20), np.uint8)
    lab[4:16, 4:16] = 1
    lab[8:12, 8:12] = 2

    def rec(kind, c, **params):
        return {"kind": kind, "class_value": c, "params": params}

    shifted = gen.apply_corruption(lab, rec("boundary_shift", 2, offset=[0, 2], fill=1))
    assert np.array_equal(np.argwhere(shifted == 2), np.argwhere(lab == 2) + [0, 2])
    assert not np.any(gen.apply_corruption(lab, rec("missing_structure", 2, seed=[9, 9],
                                                    radius=None, fill=0)) == 2)
    swapped = gen.apply_corruption(lab, rec("class_swap", 1, other=2, center=[10, 10], radius=30))
    assert np.array_equal(swapped == 1, lab == 2) and np.array_equal(swapped == 2, lab == 1)
    dil = gen.apply_corruption(lab, rec("dilation", 2, radius=1, into=[1]))
    assert (dil == 2).sum() == 16 + 16  # 4x4 square grows by one pixel on each side (no corners)
    ero = gen.apply_corruption(lab, rec("erosion", 2, radius=1, fill=1))
    assert (ero == 2).sum() == 4
    vol = np.stack([lab] * 5)
    gone = gen.apply_corruption(vol, rec("missing_slices", 2, start=1, stop=3, fill=1))
    assert (gone != vol).sum() == 2 * 16


# ----------------------------------------------------------------------------- regeneration


def test_ct_generator_reproduces_shipped_data(gen, tmp_path):
    gen.make_ct(tmp_path)
    ours, shipped = tmp_path / CT, dataset_path(CT)
    assert json.loads((ours / "corruptions.json").read_text()) == json.loads(
        (shipped / "corruptions.json").read_text())
    for sub in ("labelsTr", "labelsTr_clean"):
        for p in sorted((shipped / sub).iterdir()):
            np.testing.assert_array_equal(_read_label(ours / sub / p.name), _read_label(p))
    for p in sorted((shipped / "imagesTr").iterdir()):
        a = np.asanyarray(nib.load(str(ours / "imagesTr" / p.name)).dataobj).astype(int)
        b = np.asanyarray(nib.load(str(p)).dataobj).astype(int)
        assert np.abs(a - b).max() <= 1  # tolerate float rounding across library versions


def test_mni_generator_reproduces_shipped_data(gen, tmp_path):
    data_dir = gen.nilearn_data_dir()
    assert data_dir is not None, "nilearn (testing extra) must be installed: it ships the MNI152 template"
    gen.make_mni(tmp_path, data_dir)
    ours, shipped = tmp_path / MNI, dataset_path(MNI)
    for f in ("corruptions.json", "dataset.json", "slices.json"):
        assert json.loads((ours / f).read_text()) == json.loads((shipped / f).read_text())
    for sub in ("imagesTr", "labelsTr", "labelsTr_clean"):
        for p in sorted((shipped / sub).iterdir()):
            np.testing.assert_array_equal(iio.imread(ours / sub / p.name), iio.imread(p))


# ----------------------------------------------------------------------------- project reader


@pytest.mark.parametrize("name", [MNI, CT])
def test_open_dataset_reads_sample(name):
    from napari_aleatoric.data.dataset import load_case, open_dataset
    ds = open_dataset(dataset_path(name))
    assert len(ds.cases) == _meta(name)["numTraining"]
    assert ds.labels == _meta(name)["labels"]
    case = load_case(ds, ds.cases[0])
    assert case.image.shape == case.label.shape == {MNI: (233, 197), CT: (40, 96, 96)}[name]


@pytest.mark.parametrize("name", [MNI, CT])
def test_medio_reads_sample(name):
    from napari_aleatoric.data.medio import read_image, read_label
    root = dataset_path(name)
    ending = _meta(name)["file_ending"]
    case = _cases(root, ending)[0]
    img, geo = read_image(root / "imagesTr" / f"{case}_0000{ending}")
    lab, lgeo = read_label(root / "labelsTr" / f"{case}{ending}")
    shape, spacing = {MNI: ((233, 197), (1.0, 1.0)), CT: ((40, 96, 96), (6.0, 3.0, 3.0))}[name]
    assert img.shape == lab.shape == shape
    assert tuple(geo.spacing) == tuple(lgeo.spacing) == spacing
    np.testing.assert_array_equal(lab, _read_label(root / "labelsTr" / f"{case}{ending}"))
