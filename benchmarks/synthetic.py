"""Synthetic nnU-Net datasets for benchmarks: 2D 256×256 cases with three classes, and volumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_aleatoric.data.medio import write_image, write_label

CLASSES = {"background": 0, "organ": 1, "lesion": 2, "vessel": 3}


def _ellipse(shape, centre, radii):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0


def synthetic_slice(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One ``(size, size)`` MR-like image (uint16) and its 3-class label (uint8)."""
    label = np.zeros((size, size), np.uint8)
    organ = _ellipse(label.shape, rng.uniform(0.4, 0.6, 2) * size, rng.uniform(0.2, 0.3, 2) * size)
    label[organ] = 1
    lesion = _ellipse(label.shape, np.argwhere(organ)[rng.integers(organ.sum())], rng.uniform(0.03, 0.07, 2) * size)
    label[lesion & organ] = 2
    vessel = np.zeros_like(organ)
    row = int(rng.uniform(0.2, 0.8) * size)
    vessel[max(0, row - 3):row + 3, int(0.1 * size):int(0.9 * size)] = True
    label[vessel & ~organ] = 3
    intensities = np.array([100.0, 600.0, 350.0, 900.0])
    image = ndimage.gaussian_filter(intensities[label], 1.5) + rng.normal(0, 30, label.shape)
    return np.clip(image, 0, 65535).astype(np.uint16), label


def make_2d_dataset(root: Path, cases: int, seed: int = 0, size: int = 256) -> Path:
    """nnU-Net raw dataset of ``cases`` 2D PNG cases with 3 foreground classes."""
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    for i in range(cases):
        image, label = synthetic_slice(rng, size)
        write_image(root / "imagesTr" / f"case_{i:04d}_0000.png", image, None)
        write_label(root / "labelsTr" / f"case_{i:04d}.png", label, None)
    meta = {"channel_names": {"0": "MRI"}, "labels": CLASSES, "numTraining": cases, "file_ending": ".png"}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def make_3d_dataset(root: Path, depth: int, size: int = 256, seed: int = 0, cases: int = 1) -> Path:
    """nnU-Net raw dataset of ``cases`` ``(depth, size, size)`` NIfTI volumes of the same 3 classes."""
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    for case in range(cases):
        image = np.zeros((depth, size, size), np.float32)
        label = np.zeros((depth, size, size), np.uint8)
        for d in range(depth):
            image[d], label[d] = synthetic_slice(np.random.default_rng(rng.integers(1 << 30)), size)
        write_image(root / "imagesTr" / f"vol_{case:04d}_0000.nii.gz", image, None)
        write_label(root / "labelsTr" / f"vol_{case:04d}.nii.gz", label, None)
    meta = {"channel_names": {"0": "MRI"}, "labels": CLASSES, "numTraining": cases, "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root
