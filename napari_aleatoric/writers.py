"""npe2 writer: a labels layer to ``.nii.gz`` / ``.nii`` / ``.png`` / ``.tif`` / ``.tiff``.

The file is written atomically by :func:`napari_aleatoric.data.medio.write_label`. When the
layer's ``metadata["geometry"]`` holds the source :class:`~napari_aleatoric.data.geometry.Geometry`
(layers made by this plugin's reader or review panel), its affine, header and label dtype are
kept; otherwise the layer's ``scale`` is used as the spacing. No Qt imports here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data.errors import AleatoricError
from .data.geometry import Geometry


def _geometry(path: Path, data: np.ndarray, attributes: dict) -> Geometry:
    metadata = attributes.get("metadata") or {}
    geometry = metadata.get("geometry")
    if isinstance(geometry, Geometry) and len(geometry.spacing) == data.ndim:
        shape = geometry.extra.get("shape")
        if shape is None or tuple(shape) == tuple(data.shape):
            return geometry
    from .data.formats import file_ending  # noqa: PLC0415

    scale = attributes.get("scale")
    spacing = tuple(float(s) for s in scale[-data.ndim:]) if scale is not None else (1.0,) * data.ndim
    return Geometry(spacing=spacing, source_format=file_ending(path))


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """Write a labels layer; returns ``[path]``, or ``[]`` after a notification on failure."""
    from napari.utils.notifications import show_error  # noqa: PLC0415 (no Qt)

    from .data.medio import write_label  # noqa: PLC0415

    destination = Path(path)
    labels = np.asarray(data)
    try:
        write_label(destination, labels, _geometry(destination, labels, attributes))
    except AleatoricError as error:
        show_error(f"Cannot save labels: {error}")
        return []
    return [str(destination)]
