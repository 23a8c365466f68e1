"""npe2 contributions: manifest, reader, writer, sample data (the reader/writer run without a display)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_aleatoric import readers, writers
from napari_aleatoric.sample_data import dataset_path

MNI = "Dataset001_MNIBrainSlices"
CT = "Dataset002_SyntheticCT"


def test_manifest_is_valid_and_importable():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-aleatoric")
    manifest.validate_imports()
    contributions = manifest.contributions
    assert [w.display_name for w in contributions.widgets] == ["Review panel", "Retraining panel"]
    assert {s.key for s in contributions.sample_data} == {MNI, CT}
    assert contributions.writers[0].layer_types == ["labels"]
    assert readers.get_reader(str(dataset_path(MNI))) is not None


def test_core_modules_do_not_import_qt():
    import subprocess
    import sys

    code = ("import sys, napari_aleatoric.readers, napari_aleatoric.writers, napari_aleatoric._sample; "
            "bad = [m for m in sys.modules if m.startswith(('qtpy', 'PyQt', 'PySide'))]; print(bad); "
            "sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_reader_picks_image_or_labels_with_spacing(tmp_path):
    ct = dataset_path(CT)
    image_file = ct / "imagesTr" / "ct_002_0000.nii.gz"
    label_file = ct / "labelsTr" / "ct_002.nii.gz"
    assert readers.get_reader(str(image_file)) is not None
    assert readers.get_reader(str(tmp_path / "notes.txt")) is None
    assert readers.get_reader(str(tmp_path)) is None  # a folder without dataset.json

    [(image, image_kwargs, image_type)] = readers.get_reader(str(image_file))(str(image_file))
    assert image_type == "image" and image.shape == (40, 96, 96)
    assert image_kwargs["scale"] == pytest.approx((6.0, 3.0, 3.0))
    [(labels, label_kwargs, label_type)] = readers.read_paths(str(label_file))
    assert label_type == "labels" and np.issubdtype(labels.dtype, np.integer)
    assert label_kwargs["metadata"]["geometry"].affine is not None

    # an integer file with few values outside labelsTr is also opened as labels
    mni_label = dataset_path(MNI) / "labelsTr" / "mni_003.png"
    loose = tmp_path / "mask.png"
    shutil.copy(mni_label, loose)
    [(_, kwargs, layer_type)] = readers.read_paths(str(loose))
    assert layer_type == "labels" and kwargs["scale"] == pytest.approx((1.0, 1.0))
    [(_, _, layer_type)] = readers.read_paths(str(dataset_path(MNI) / "imagesTr" / "mni_003_0000.png"))
    assert layer_type == "image"


def test_reader_writer_round_trip_keeps_affine_and_values(tmp_path):
    source = dataset_path(CT) / "labelsTr" / "ct_002.nii.gz"
    [(labels, kwargs, _)] = readers.read_paths(str(source))
    edited = np.array(labels, copy=True)
    edited[20, 40:50, 40:50] = 3
    out = tmp_path / "edited.nii.gz"
    assert writers.write_labels(str(out), edited, kwargs) == [str(out)]
    original, written = nib.load(str(source)), nib.load(str(out))
    np.testing.assert_allclose(written.affine, original.affine)
    assert written.get_data_dtype() == original.get_data_dtype()
    assert written.header.get_zooms() == pytest.approx(original.header.get_zooms())
    [(reread, _, _)] = readers.read_paths(str(out))
    assert np.array_equal(reread, edited)

    # unchanged labels round-trip to identical voxels
    same = tmp_path / "same.nii.gz"
    writers.write_labels(str(same), labels, kwargs)
    assert np.array_equal(np.asanyarray(nib.load(str(same)).dataobj), np.asanyarray(original.dataobj))

    # without a source geometry the layer scale becomes the spacing; PNG and TIFF work too
    bare = tmp_path / "bare.nii.gz"
    writers.write_labels(str(bare), edited, {"scale": (6.0, 3.0, 3.0), "metadata": {}})
    assert nib.load(str(bare)).header.get_zooms() == pytest.approx((3.0, 3.0, 6.0))
    for ending in (".png", ".tif"):
        path = tmp_path / f"slice{ending}"
        assert writers.write_labels(str(path), edited[20], {"scale": (3.0, 3.0), "metadata": {}}) == [str(path)]
        [(back, _, _)] = readers.read_paths(str(path))
        assert np.array_equal(back, edited[20])


def test_writer_reports_problems_instead_of_raising(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    assert writers.write_labels(str(tmp_path / "missing" / "x.nii.gz"), np.zeros((4, 4), np.uint8), {}) == []
    assert shown and "missing" in shown[0]


@pytest.mark.gui
def test_open_dataset_folder_docks_the_review_panel(make_napari_viewer, qtbot, tmp_path):
    from napari_aleatoric.gui.sample import find_panel

    root = shutil.copytree(dataset_path(MNI), tmp_path / MNI, ignore=shutil.ignore_patterns(".aleatoric"))
    viewer = make_napari_viewer()
    viewer.open(str(root), plugin="napari-aleatoric")
    panel = find_panel(viewer)
    assert panel is not None and panel.dataset.root == Path(root).resolve()
    qtbot.waitUntil(lambda: panel.current is not None and not panel.is_busy(), timeout=60_000)
    assert "image" in viewer.layers and "annotation" in viewer.layers
    panel.shutdown()


@pytest.mark.gui
def test_sample_data_opens_a_working_copy_in_the_panel(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_aleatoric._sample import DATA_ENV
    from napari_aleatoric.gui.sample import find_panel

    monkeypatch.setenv(DATA_ENV, str(tmp_path / "samples"))
    bundled = dataset_path(MNI)
    assert not (bundled / ".aleatoric").exists()
    viewer = make_napari_viewer()
    viewer.open_sample("napari-aleatoric", MNI)
    panel = find_panel(viewer)
    assert panel is not None
    assert panel.dataset.root == (tmp_path / "samples" / MNI).resolve()
    assert "image" in viewer.layers and "annotation" in viewer.layers
    qtbot.waitUntil(lambda: panel.current is not None and not panel.is_busy(), timeout=60_000)
    assert viewer.layers["image"].data.shape == panel.current.case.image.shape
    assert sum(layer.name == "image" for layer in viewer.layers) == 1
    assert not (bundled / ".aleatoric").exists()  # the bundled data is never written
    panel.shutdown()


@pytest.mark.gui
def test_plugins_menu_widget_and_point_polarity(make_napari_viewer, qtbot, tmp_path):
    from napari_aleatoric.gui.review_panel import ReviewPanel
    from napari_aleatoric.gui.sample import find_panel

    root = shutil.copytree(dataset_path(MNI), tmp_path / MNI, ignore=shutil.ignore_patterns(".aleatoric"))
    viewer = make_napari_viewer()
    _, panel = viewer.window.add_plugin_dock_widget("napari-aleatoric", "Review panel")
    assert isinstance(panel, ReviewPanel) and find_panel(viewer) is panel
    assert panel.model_edit.text() == "litemedsam" and panel.device_combo.currentText() == "auto"
    assert panel.open_dataset(root)
    qtbot.waitUntil(lambda: panel.current is not None and not panel.is_busy(), timeout=60_000)
    points = viewer.layers["FM point prompts"]
    points.add(np.array([[10.0, 10.0]]))
    panel.negative_check.setChecked(True)
    points.add(np.array([[20.0, 20.0]]))
    assert list(points.features["positive"]) == [True, False]
    prompts = panel._prompts()
    assert list(prompts.point_labels) == [1, 0]
    assert np.allclose(prompts.points, [[10, 10], [20, 20]])
    panel.shutdown()
