"""Plain helpers shared by test modules (``from helpers import ...``; ``tests/`` is on ``sys.path`` because
``tests/conftest.py`` sits there without an ``__init__.py``). Shared fixtures live in ``conftest.py``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from napari_aleatoric.data.medio import write_image, write_label


def cache_arrays(dataset: Path) -> dict[str, np.ndarray]:
    """Every array of every cached map, label-issue map and embedding of a dataset, by file and array name
    (not the temporary ``.<name>.<random>.partial.npz`` a process killed mid-write leaves, which no
    reader opens)."""
    arrays = {}
    for path in sorted((dataset / ".aleatoric" / "cache").rglob("*.npz")):
        if path.name.startswith("."):
            continue
        with np.load(path, allow_pickle=False) as npz:
            for name in npz.files:
                if name != "__meta__":  # holds the measured forward time
                    arrays[f"{path.relative_to(dataset)}:{name}"] = npz[name]
    return arrays


def make_tiny_dataset(root: Path, cases: int = 8, size: int = 32, seed: int = 0) -> Path:
    """nnU-Net dataset of ``size``² PNG slices: a bright disc (class 1) and a dark square (class 2)."""
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir(parents=True)
    yy, xx = np.mgrid[:size, :size]
    for i in range(cases):
        label = np.zeros((size, size), np.uint8)
        cy, cx, r = rng.integers(8, size - 8, 2).tolist() + [int(rng.integers(4, 7))]
        label[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        sy, sx = rng.integers(0, size - 6, 2)
        label[sy:sy + 5, sx:sx + 5][label[sy:sy + 5, sx:sx + 5] == 0] = 2
        image = np.array([100.0, 220.0, 30.0])[label] + rng.normal(0, 10, label.shape)
        write_image(root / "imagesTr" / f"c{i:02d}_0000.png", np.clip(image, 0, 255).astype(np.uint8), None)
        write_label(root / "labelsTr" / f"c{i:02d}.png", label, None)
    meta = {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "disc": 1, "square": 2},
            "numTraining": cases, "file_ending": ".png"}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def write_ct_slice(path: Path, pixels: np.ndarray, spacing=(0.5, 0.5), **attributes) -> Path:
    """Write one int16 CT slice from scratch; ``attributes`` are further DICOM keywords to set."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = DicomDataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = list(spacing)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels.astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


class Ticks:
    """A 20 ms QTimer on the GUI thread: counts ticks and the longest gap (how long the viewer froze)."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.count, self.worst_ms, self._last = 0, 0.0, time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self):
        now = time.perf_counter()
        self.worst_ms = max(self.worst_ms, (now - self._last) * 1000.0)
        self._last, self.count = now, self.count + 1


def errors(shown) -> list[str]:
    """The texts of the error notifications among ``shown`` (level, text) pairs."""
    return [text for level, text in shown if level == "error"]
