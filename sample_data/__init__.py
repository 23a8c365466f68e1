"""Small labelled sample datasets bundled with napari-aleatoric (nnU-Net v2 raw layout).

Installed as ``napari_aleatoric.sample_data``; in a checkout it is the ``sample_data/`` folder.
Regenerate with ``python scripts/make_sample_data.py``. See README.md in this folder.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["DATASETS", "dataset_path"]

DATASETS: tuple[str, ...] = ("Dataset001_MNIBrainSlices", "Dataset002_SyntheticCT")

_HERE = Path(__file__).resolve().parent


def dataset_path(name: str) -> Path:
    """Folder of a bundled dataset.

    ``name`` is a full folder name from ``DATASETS`` (``"Dataset002_SyntheticCT"``), its
    ``DatasetNNN`` id (``"Dataset002"``) or its short name (``"SyntheticCT"``, case-insensitive).
    Raises ``KeyError`` for an unknown name and ``FileNotFoundError`` when the folder is missing.
    """
    key = str(name).strip().lower()
    matches = [
        d for d in DATASETS
        if key in (d.lower(), d.split("_", 1)[0].lower(), d.split("_", 1)[1].lower())
    ]
    if len(matches) != 1:
        raise KeyError(f"unknown sample dataset {name!r}; available: {', '.join(DATASETS)}")
    path = _HERE / matches[0]
    if not (path / "dataset.json").is_file():
        raise FileNotFoundError(
            f"{path}: sample dataset is missing; run python scripts/make_sample_data.py"
        )
    return path
