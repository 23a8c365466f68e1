"""Which medical file format a path holds, and what a backend reports without loading voxels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import full_suffix
from .errors import CaseError

#: file ending (lower case) -> format name
ENDINGS: dict[str, str] = {
    ".nii.gz": "nifti",
    ".nii": "nifti",
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".dcm": "dicom",
}

#: endings that can hold label maps (DICOM is images only)
LABEL_ENDINGS: tuple[str, ...] = (".nii.gz", ".nii", ".png", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageInfo:
    """What a file header says about the array it holds, in napari axis order.

    Attributes:
        shape: array shape ``(H, W)`` or ``(D, H, W)`` after channel selection.
        spacing: mm per array axis (1.0 where the format has no physical spacing).
        affine: 4x4 voxel-to-world matrix (file voxel order ``(i, j, k)``), or ``None``.
        format: ``"nifti"``, ``"png"``, ``"tiff"`` or ``"dicom"``.
    """

    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    affine: np.ndarray | None
    format: str


def file_ending(path: str | Path) -> str:
    """The ending used to pick a format, lower case (``".nii.gz"``, ``".png"``); ``""`` if none."""
    return full_suffix(path).lower()


def detect_format(path: str | Path, *, must_exist: bool = True) -> str:
    """Return ``"nifti"``, ``"png"``, ``"tiff"`` or ``"dicom"`` for ``path``.

    A folder is a DICOM series whatever its name. Raises :class:`CaseError` when the path is missing
    (if ``must_exist``) or its ending is not supported.
    """
    path = Path(path)
    if must_exist and not path.exists():
        kind = "folder" if not full_suffix(path) else "file"
        raise CaseError(path, f"{kind} does not exist")
    if path.is_dir():
        return "dicom"
    ending = file_ending(path)
    fmt = ENDINGS.get(ending)
    if fmt is None:
        ending = path.suffix.lower()
        fmt = ENDINGS.get(ending)
    if fmt is None:
        supported = ", ".join(ENDINGS)
        raise CaseError(path, f"unsupported file type {full_suffix(path)!r} (supported: {supported}, "
                        "or a folder of DICOM files)")
    return fmt


def check_dimensionality(path: Path, shape: tuple[int, ...], what: str = "array") -> None:
    """Raise :class:`CaseError` unless ``shape`` is 2D or 3D with no empty axis."""
    if len(shape) not in (2, 3):
        raise CaseError(path, f"unsupported dimensionality: {what} is {len(shape)}D with shape "
                        f"{tuple(shape)}; expected 2D (H, W) or 3D (D, H, W)")
    if min(shape) < 1:
        raise CaseError(path, f"{what} has an empty axis: shape {tuple(shape)}")


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Grayscale luminance of an ``(..., C)`` colour array (C = 3 or 4; alpha is dropped).

    Uses the ITU-R BT.709 weights (0.2125, 0.7154, 0.0721) as scikit-image's ``rgb2gray`` but keeps
    the original intensity range (an 8-bit image stays in 0..255). Returns float32 ``(...)``.
    A two-channel (gray + alpha) array returns its first channel.
    """
    if rgb.shape[-1] < 3:
        return rgb[..., 0].astype(np.float32)
    weights = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    return (rgb[..., :3].astype(np.float32) @ weights).astype(np.float32)
