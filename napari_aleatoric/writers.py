"""npe2 writer: a labels layer to ``.nii.gz`` / ``.nii`` / ``.png`` / ``.tif`` / ``.tiff``.

The file is written atomically by :func:`napari_aleatoric.data.medio.write_label`. When the
layer's ``metadata["geometry"]`` holds the source :class:`~napari_aleatoric.data.geometry.Geometry`
(layers made by this plugin's reader or review panel), its affine, header and label dtype are
kept; otherwise the layer's ``scale`` is used as the spacing. No Qt imports here.

Inside a dataset (a folder above the path holds ``dataset.json``) the writer never bypasses the
safety net: a case's label file is saved with
:func:`napari_aleatoric.review.saving.save_correction` (original kept in ``.aleatoric/originals/``,
revision recorded, undeclared label values refused), and any other path inside the dataset is
refused with a message saying where to save instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data.errors import AleatoricError
from .data.geometry import Geometry
from .data.state_layout import STATE_DIR_NAME


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


def dataset_root_of(path: str | Path) -> Path | None:
    """The nearest folder above ``path`` that holds a ``dataset.json`` (a dataset), or ``None``."""
    resolved = Path(path).expanduser().resolve()
    for folder in resolved.parents:
        try:
            if (folder / "dataset.json").is_file():
                return folder
        except OSError:
            return None
    return None


def _save_in_dataset(root: Path, destination: Path, labels: np.ndarray) -> None:
    """Save ``labels`` over a case's label file of the dataset at ``root`` through the safe save.

    Raises:
        AleatoricError: the path is not an existing case label file of the dataset, or the save
            itself fails (undeclared values, shape mismatch, disk full ...).
    """
    from .data.dataset import open_dataset  # noqa: PLC0415
    from .data.medio import read_label  # noqa: PLC0415
    from .review.saving import default_user, save_correction  # noqa: PLC0415
    from .review.store import ReviewStore  # noqa: PLC0415

    target = destination.resolve()
    rel = target.relative_to(root)
    if rel.parts and rel.parts[0] == STATE_DIR_NAME:
        raise AleatoricError(destination, "is inside the dataset's .aleatoric state folder; save outside it")
    dataset = open_dataset(root)
    ref = next((r for r in dataset.cases if r.label_path is not None and r.label_path.resolve() == target), None)
    if ref is None or not target.is_file():
        raise AleatoricError(destination, f"is inside the dataset folder {root} but is not the label file of one of "
                             "its cases; save outside the dataset (or correct a case in the review panel)")
    current, geometry = read_label(target)
    if tuple(current.shape) != tuple(labels.shape):
        raise AleatoricError(destination, f"the layer has shape {tuple(labels.shape)}, the label file "
                             f"{tuple(current.shape)}; nothing was saved")
    with ReviewStore.for_dataset(root) as store:
        save_correction(root, ref.case_id, target, labels, geometry, user=default_user(), model=None,
                        auv_before=None, store=store, note="saved with napari's File > Save")


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """Write a labels layer; returns ``[path]``, or ``[]`` after a notification on failure.

    Inside a dataset folder only a case's label file may be written, and only through the safe
    save (see the module docs).
    """
    from napari.utils.notifications import show_error  # noqa: PLC0415 (no Qt)

    from .data.medio import write_label  # noqa: PLC0415

    destination = Path(path)
    labels = np.asarray(data)
    try:
        root = dataset_root_of(destination)
        if root is not None:
            _save_in_dataset(root, destination, labels)
        else:
            write_label(destination, labels, _geometry(destination, labels, attributes))
    except AleatoricError as error:
        show_error(f"Cannot save labels: {error}")
        return []
    except OSError as error:
        from .data.oserrors import describe_os_error  # noqa: PLC0415

        show_error(f"Cannot save labels: {describe_os_error(error, destination)}")
        return []
    return [str(destination)]
