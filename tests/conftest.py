"""Shared fixtures: writable copies of the bundled sample datasets."""

import shutil
from pathlib import Path

import pytest

from napari_aleatoric.sample_data import dataset_path

MNI = "Dataset001_MNIBrainSlices"
CT = "Dataset002_SyntheticCT"


def copy_sample(name: str, destination: Path) -> Path:
    """Copy a bundled dataset (never write into sample_data/)."""
    target = destination / name
    shutil.copytree(dataset_path(name), target, ignore=shutil.ignore_patterns(".aleatoric", "__pycache__"))
    return target


@pytest.fixture
def mni_dataset(tmp_path) -> Path:
    """A writable copy of the 2D MRI sample dataset."""
    return copy_sample(MNI, tmp_path)


@pytest.fixture
def ct_dataset(tmp_path) -> Path:
    """A writable copy of the 3D CT sample dataset."""
    return copy_sample(CT, tmp_path)


def tree_digest(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (outside ``.aleatoric``) with its bytes, to prove nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".aleatoric" not in p.parts}
