"""Medical image and label I/O: one entry point per operation, whatever the format.

Formats (chosen by the path's ending, case-insensitive; a folder is a DICOM series):

========== ============== ============== ===============================================
format     read_image     read_label     write_label / write_image
========== ============== ============== ===============================================
.nii(.gz)  yes            yes            yes (affine, header and dtype of ``geometry``)
.png       yes (2D)       yes (2D)       yes (uint8/uint16; palette kept)
.tif/.tiff yes (2D/3D)    yes (2D/3D)    yes (uncompressed, dtype of ``geometry``)
DICOM      yes            no             no
========== ============== ============== ===============================================

Arrays are in napari order, ``(H, W)`` or ``(D, H, W)``; see the backend modules for axis and
spacing details (:mod:`.nifti_io`, :mod:`.raster_io`, :mod:`.dicom_io`). Every problem with a file
raises :class:`~napari_aleatoric.data.errors.CaseError` naming the file. Input files are never
modified; writes are atomic (:mod:`.atomic`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from . import dicom_io, nifti_io, raster_io
from .atomic import atomic_writer
from .errors import CaseError
from .formats import ImageInfo, check_dimensionality, detect_format, file_ending
from .geometry import Geometry

__all__ = ["ImageInfo", "probe", "read_image", "read_label", "write_label", "write_image", "detect_format"]

T = TypeVar("T")

_READERS = {
    "nifti": nifti_io.read,
    "png": raster_io.read_png,
    "tiff": raster_io.read_tiff,
    "dicom": dicom_io.read,
}
_PROBES = {
    "nifti": nifti_io.probe,
    "png": raster_io.probe_png,
    "tiff": raster_io.probe_tiff,
    "dicom": dicom_io.probe,
}
_NAMES = {"nifti": "NIfTI", "png": "PNG", "tiff": "TIFF", "dicom": "DICOM"}


def _guard(path: Path, fmt: str, action: Callable[[], T]) -> T:
    """Run ``action``; turn any unexpected failure into a CaseError naming ``path``."""
    try:
        return action()
    except CaseError:
        raise
    except MemoryError as exc:  # numpy refuses the allocation before making it: nothing is lost
        raise CaseError(path, f"not enough memory to read this {_NAMES[fmt]} file ({exc})") from exc
    except FileNotFoundError as exc:
        raise CaseError(path, f"file does not exist ({exc.filename or path})") from exc
    except OSError as exc:
        if exc.errno is None:  # a decoder's own error (e.g. gzip.BadGzipFile): the content is bad
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CaseError(path, f"cannot read {_NAMES[fmt]} file (truncated or corrupt?): {detail}") from exc
        from .oserrors import os_problem  # noqa: PLC0415

        raise CaseError(path, f"cannot read this {_NAMES[fmt]} file: {os_problem(exc, 'reading')}") from exc
    except Exception as exc:  # noqa: BLE001 - every reader raises its own zoo of exceptions
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaseError(path, f"cannot read {_NAMES[fmt]} file (truncated or corrupt?): {detail}") from exc


def _summary(values: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:limit].tolist())
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def probe(path: str | Path, *, channel: int | None = None) -> ImageInfo:
    """Shape (napari order), spacing (mm) and affine of an image or label file from its header.

    Cheap: no voxel data is decoded (PNG/TIFF/NIfTI headers, DICOM headers of every slice).
    ``channel`` selects the fourth axis of a multi-channel NIfTI (Decathlon style).
    Raises :class:`CaseError` for missing, unreadable or wrongly dimensioned files.
    """
    path = Path(path)
    fmt = detect_format(path)
    info = _guard(path, fmt, lambda: _PROBES[fmt](path, channel=channel))
    check_dimensionality(path, info.shape)
    return info


def read_image(path: str | Path, *, channel: int | None = None) -> tuple[np.ndarray, Geometry]:
    """Read an image as float32.

    Args:
        path: a ``.nii``/``.nii.gz``/``.png``/``.tif``/``.tiff``/``.dcm`` file or a DICOM series folder.
        channel: for a 4D multi-channel NIfTI (Decathlon), the index on the fourth axis to read;
            ignored by other formats.

    Returns:
        ``(image, geometry)``: ``image`` is float32 ``(H, W)`` or ``(D, H, W)`` in the file's own
        intensity units (CT in HU after the DICOM/NIfTI rescale; colour converted to luminance);
        ``geometry.spacing`` is mm per array axis.

    Raises:
        CaseError: missing/corrupt/unsupported file, not 2D/3D, or NaN/inf voxels.
    """
    path = Path(path)
    fmt = detect_format(path)
    arr, geometry = _guard(path, fmt, lambda: _READERS[fmt](path, as_label=False, channel=channel))
    check_dimensionality(path, arr.shape, "image")
    geometry.extra["role"] = "image"
    arr = np.asarray(arr, dtype=np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - np.count_nonzero(finite))
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise CaseError(path, f"image contains {bad} NaN/inf voxel(s) (first at index {first})")
    return arr, geometry


def _smallest_uint(hi: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if hi <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(hi)  # pragma: no cover - checked by the caller


def as_label_array(path: Path, arr: np.ndarray) -> np.ndarray:
    """Check that ``arr`` holds non-negative integer label values; return it with an integer dtype.

    Integer arrays keep their dtype; bool becomes uint8; float arrays (labels stored as float) are
    converted to the smallest unsigned dtype that holds them. Raises :class:`CaseError` for NaN/inf,
    non-integer or negative values and other dtypes.
    """
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            raise CaseError(path, f"label contains {int(arr.size - np.count_nonzero(finite))} NaN/inf voxel(s)")
        fractional = arr != np.round(arr)
        if fractional.any():
            values = np.unique(arr[fractional])
            raise CaseError(path, f"non-integer label values: {_summary(values)}")
    elif arr.dtype.kind not in "iu":
        raise CaseError(path, f"unsupported label data type {arr.dtype}; expected integers")
    if arr.size and arr.dtype.kind in "if" and arr.min() < 0:
        values = np.unique(arr[arr < 0])
        raise CaseError(path, f"negative label values: {_summary(values)}")
    if arr.dtype.kind == "f":
        hi = int(arr.max()) if arr.size else 0
        if hi > np.iinfo(np.uint64).max:
            raise CaseError(path, f"label value {hi} is too large")
        return arr.astype(_smallest_uint(hi))
    return arr


def read_label(path: str | Path) -> tuple[np.ndarray, Geometry]:
    """Read a label map.

    Returns:
        ``(labels, geometry)``: ``labels`` is an integer array ``(H, W)`` or ``(D, H, W)`` (the file's
        integer dtype, or the smallest unsigned dtype for labels stored as floats);
        ``geometry`` keeps what :func:`write_label` needs to write it back unchanged.

    Raises:
        CaseError: missing/corrupt/unsupported file (DICOM labels are not supported), colour or
            multi-channel labels, not 2D/3D, NaN/inf, non-integer or negative values.
    """
    path = Path(path)
    fmt = detect_format(path)
    arr, geometry = _guard(path, fmt, lambda: _READERS[fmt](path, as_label=True, channel=None))
    check_dimensionality(path, arr.shape, "label")
    geometry.extra["role"] = "label"
    return as_label_array(path, np.asarray(arr)), geometry


def _check_shape(path: Path, arr: np.ndarray, geometry: Geometry) -> None:
    check_dimensionality(path, arr.shape, "array to write")
    expected = geometry.extra.get("shape") if geometry is not None else None
    if expected is not None and tuple(expected) != tuple(arr.shape):
        raise CaseError(path, f"array shape {tuple(arr.shape)} does not match the geometry's shape "
                        f"{tuple(expected)}")
    if geometry is not None and len(geometry.spacing) != arr.ndim:
        raise CaseError(path, f"array is {arr.ndim}D but the geometry is {len(geometry.spacing)}D")


def _label_dtype(path: Path, labels: np.ndarray, geometry: Geometry) -> np.dtype:
    """The source label file's dtype when the values fit it, else the smallest unsigned dtype.

    A geometry that came from an image (not from :func:`read_label`) gives the smallest unsigned
    dtype, never the image's (often float) dtype.
    """
    hi = int(labels.max()) if labels.size else 0
    wanted = None
    if geometry is not None and geometry.file_dtype and geometry.extra.get("role") == "label":
        wanted = np.dtype(geometry.file_dtype)
    if wanted is not None and wanted.kind in "iu":
        if hi > np.iinfo(wanted).max:
            raise CaseError(path, f"label value {hi} does not fit the file's data type {wanted}")
        return wanted
    if wanted is not None and wanted.kind == "f":
        if hi > 2 ** (np.finfo(wanted).nmant + 1):
            raise CaseError(path, f"label value {hi} cannot be stored exactly as {wanted}")
        return wanted
    return _smallest_uint(hi)


def _write(path: Path, arr: np.ndarray, geometry: Geometry, dtype: np.dtype, *, label: bool) -> None:
    fmt = detect_format(path, must_exist=False)
    if fmt == "dicom":
        raise CaseError(path, "writing DICOM is not supported; write NIfTI (.nii.gz) instead")
    if not path.parent.is_dir():
        raise CaseError(path, "folder does not exist")
    with atomic_writer(path) as tmp:
        if fmt == "nifti":
            nifti_io.write(tmp, arr, geometry, dtype)
        elif fmt == "png":
            same_role = geometry is not None and geometry.extra.get("role", "image") == ("label" if label else "image")
            raster_io.write_png(tmp, path, arr, geometry if same_role else None)
        else:
            same_role = geometry is not None and geometry.extra.get("role", "image") == ("label" if label else "image")
            raster_io.write_tiff(tmp, arr, dtype, geometry if same_role else None)


def write_label(path: str | Path, labels: np.ndarray, geometry: Geometry | None) -> None:
    """Atomically write a label map in the format of ``path``'s ending.

    Args:
        path: destination ``.nii``/``.nii.gz``/``.png``/``.tif``/``.tiff`` file (replaced atomically).
        labels: non-negative integer array ``(H, W)`` or ``(D, H, W)`` in napari order.
        geometry: usually the one :func:`read_label` returned; its NIfTI affine and header, and its
            file dtype are reused, so a read/write round trip keeps affine, zooms and voxel values.
            The image's geometry works for a new label file (smallest unsigned dtype); ``None``
            means 1 mm spacing and an identity orientation.

    Raises:
        CaseError: wrong shape/dimensionality, negative or non-integer values, values that do not
            fit the file's dtype, or an unsupported destination format. The old file is then intact.
    """
    path = Path(path)
    labels = np.asarray(labels)
    _check_shape(path, labels, geometry)
    geometry = geometry if geometry is not None else Geometry((1.0,) * labels.ndim, file_ending(path))
    labels = as_label_array(path, labels)
    _write(path, labels, geometry, _label_dtype(path, labels, geometry), label=True)


def write_image(path: str | Path, image: np.ndarray, geometry: Geometry | None) -> None:
    """Atomically write an image (for example a demo dataset or an exported map).

    ``image`` is ``(H, W)`` or ``(D, H, W)``. NIfTI/TIFF keep the geometry's file dtype when the
    values are integers that fit it, else float32. PNG needs integer values in 0..65535.
    """
    path = Path(path)
    image = np.asarray(image)
    _check_shape(path, image, geometry)
    geometry = geometry if geometry is not None else Geometry((1.0,) * image.ndim, file_ending(path))
    if image.size and not np.all(np.isfinite(image)):
        raise CaseError(path, "image contains NaN/inf values")
    dtype = np.dtype(np.float32)
    wanted = np.dtype(geometry.file_dtype) if geometry is not None and geometry.file_dtype else None
    if geometry is not None and geometry.extra.get("role") == "label":
        wanted = None
    if wanted is not None and wanted.kind in "iu" and image.size:
        info = np.iinfo(wanted)
        if np.all(image == np.round(image)) and info.min <= image.min() and image.max() <= info.max:
            dtype = wanted
    _write(path, image, geometry, dtype, label=False)
