"""benchmarks/noisy_training/data.py: clean and noisy folders of the noisy-label training benchmark.

Tiny preset (a few cases): validation labels stay clean, only training cases are corrupted, noisy
differs from clean exactly on the corrupted cases, the assembly is deterministic per corruption
seed and differs between seeds, and both folders share the images (hard links).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.noisy_training import data  # noqa: E402


def _read(path: Path) -> np.ndarray:
    if path.name.endswith(".png"):
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    import nibabel as nib

    return np.asarray(nib.load(str(path)).dataobj)


def _labels(root: Path, sub: str) -> dict[str, np.ndarray]:
    out = {}
    for file in sorted((root / sub / "labelsTr").iterdir()):
        case = file.name.split(".")[0]
        out[case] = _read(file)
    return out


def _check(root: Path) -> dict:
    from napari_aleatoric.training.data import split_cases

    truth = json.loads((root / "truth.json").read_text())
    clean, noisy = _labels(root, "clean"), _labels(root, "noisy")
    cases = sorted(clean)
    assert sorted(noisy) == cases
    assert (truth["train"], truth["val"]) == tuple(split_cases(cases, 0.2))
    assert truth["val"] and truth["corrupted"]
    assert set(truth["corrupted"]) <= set(truth["train"])
    differs = {c for c in cases if not np.array_equal(clean[c], noisy[c])}
    assert differs == set(truth["corrupted"])  # noisy != clean exactly on the corrupted cases
    for case, rec in truth["corrupted"].items():
        assert rec["drawn_as"] in data.NOISE[truth["dataset"]]["kinds"]
        assert rec["drawn_as"].split(":")[0] == rec["kind"]
        assert rec["changed_fraction"] == pytest.approx(data.changed_fraction(clean[case], noisy[case])[1], abs=1e-4)
    for case in cases:  # the clean label paths point at the clean labels
        assert np.array_equal(_read(root / truth["clean_labels"][case]), clean[case])
    for image in (root / "clean" / "imagesTr").iterdir():  # same images, hard-linked
        assert image.stat().st_ino == (root / "noisy" / "imagesTr" / image.name).stat().st_ino
    return truth


@pytest.mark.parametrize("dataset", ["mni", "ct"])
def test_noisy_and_clean_folders(tmp_path, dataset):
    if dataset == "mni" and data.cor.sample_data_module().nilearn_data_dir() is None:
        pytest.skip("nilearn's MNI template is not installed")
    a = _check(data.build(tmp_path / "a", dataset, 5, preset="tiny", frac=0.6, log=lambda *_: None))
    again = _check(data.build(tmp_path / "b", dataset, 5, preset="tiny", frac=0.6, log=lambda *_: None))
    other = _check(data.build(tmp_path / "c", dataset, 6, preset="tiny", frac=0.6, log=lambda *_: None))
    assert a["corrupted"] == again["corrupted"]  # deterministic per seed
    root_a, root_b = tmp_path / "a" / f"{dataset}-c5", tmp_path / "b" / f"{dataset}-c5"
    for sub in ("clean", "noisy"):
        for file in (root_a / sub / "labelsTr").iterdir():
            assert np.array_equal(_read(file), _read(root_b / sub / "labelsTr" / file.name))
    assert a["corrupted"] != other["corrupted"]  # another seed, other errors
    assert a["train"] == other["train"] and a["val"] == other["val"]
