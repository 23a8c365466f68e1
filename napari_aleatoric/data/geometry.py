"""Where an array sits in space, and what is needed to write it back unchanged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Geometry:
    """Geometry of an image or label array held in napari axis order.

    Attributes:
        spacing: voxel size in mm per array axis, same order as the array axes
            (``(H, W)`` for 2D, ``(D, H, W)`` for 3D).
        source_format: the file ending the array came from (``".nii.gz"``, ``".png"``, ...).
        affine: 4x4 voxel-to-world matrix (mm) of a NIfTI source, in the file's own voxel
            order ``(i, j, k)``; ``None`` for formats without one.
        header: the source header object (for example a ``nibabel.Nifti1Header``) used to write
            a label file back with the same geometry; ``None`` where not applicable.
        file_dtype: dtype of the array as stored in the source file (labels are written back with it).
        extra: format-specific details (for example the DICOM series' orientation).
    """

    spacing: tuple[float, ...]
    source_format: str
    affine: np.ndarray | None = None
    header: Any = None
    file_dtype: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 or 3)."""
        return len(self.spacing)
