"""DICOM reading with pydicom (images only).

A folder is one series: every regular, non-dot file in it (except ``DICOMDIR`` and obvious
non-DICOM files such as ``.txt``/``.json``) must be a DICOM file of the same series. Slices are
sorted by their position along the slice normal (``ImagePositionPatient`` projected on the cross
product of the ``ImageOrientationPatient`` cosines; ``InstanceNumber`` as a fallback), rescaled with
``RescaleSlope``/``RescaleIntercept`` and stacked to ``(D, H, W)``; a folder always gives a 3D array
(``D == 1`` for a single slice). A single DICOM file gives ``(H, W)`` (or ``(frames, H, W)`` for a
multi-frame file).

Spacing (mm): ``(slice distance, PixelSpacing[0] (between rows), PixelSpacing[1] (between
columns))``. The slice distance is the median gap between sorted positions; duplicate positions or
uneven gaps (a missing slice) raise :class:`CaseError`. ``Geometry.affine`` is the RAS voxel-to-world
matrix in NIfTI voxel order ``(i, j, k) = (column, row, slice)``, so labels drawn on a DICOM series
can be written as NIfTI in the right place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from .errors import CaseError
from .formats import ImageInfo, luminance
from .geometry import Geometry

_NOT_DICOM = {".txt", ".json", ".xml", ".md", ".csv", ".db", ".ini", ".png", ".jpg", ".jpeg", ".nii",
              ".gz", ".zip", ".pdf", ".html", ".log", ".yaml", ".yml", ".tif", ".tiff", ".npz", ".npy"}


def series_files(folder: Path) -> list[Path]:
    """The files of a DICOM series folder that are expected to be DICOM, sorted by name."""
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.name.upper() != "DICOMDIR"
                   and p.suffix.lower() not in _NOT_DICOM)
    if not files:
        raise CaseError(folder, "DICOM folder holds no DICOM files")
    return files


def _dcmread(path: Path, *, pixels: bool) -> pydicom.Dataset:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=not pixels)
    except InvalidDicomError as exc:
        raise CaseError(path, f"not a DICOM file ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for damaged files
        raise CaseError(path, f"cannot read DICOM file (truncated or corrupt?): {exc}") from exc
    if "Rows" not in ds or "Columns" not in ds:
        raise CaseError(path, "DICOM file holds no image (no Rows/Columns)")
    return ds


def _floats(value, n: int) -> np.ndarray | None:
    try:
        arr = np.asarray([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def _pixel_spacing(ds: pydicom.Dataset) -> tuple[float, float]:
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = _floats(ds.get(key), 2) if ds.get(key) is not None else None
        if value is not None and np.all(value > 0):
            return float(value[0]), float(value[1])
    return 1.0, 1.0


def _slice_thickness(ds: pydicom.Dataset) -> float:
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        try:
            value = abs(float(ds.get(key)))
        except (TypeError, ValueError):
            continue
        if value > 0 and np.isfinite(value):
            return value
    return 1.0


def _layout(path: Path, items: list[tuple[Path, pydicom.Dataset]]) -> tuple[list[int], float, dict]:
    """Slice order, slice distance (mm) and orientation details of a series."""
    first = items[0][1]
    uids = {str(ds.get("SeriesInstanceUID", "")) for _, ds in items}
    if len(uids) > 1:
        raise CaseError(path, f"folder holds {len(uids)} DICOM series; put each series in its own folder")
    sizes = {(int(ds.Rows), int(ds.Columns)) for _, ds in items}
    if len(sizes) > 1:
        raise CaseError(path, f"slices have different sizes {sorted(sizes)}")
    if len(items) > 1 and any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for _, ds in items):
        raise CaseError(path, "folder mixes multi-frame DICOM files; expected one file per slice")
    iop = _floats(first.get("ImageOrientationPatient"), 6) if first.get("ImageOrientationPatient") else None
    ipps = [_floats(ds.get("ImagePositionPatient"), 3) if ds.get("ImagePositionPatient") else None
            for _, ds in items]
    info: dict = {"orientation": None if iop is None else iop.tolist(), "origin": None, "normal": None}
    if iop is not None and all(p is not None for p in ipps):
        for f, ds in items:
            other = _floats(ds.get("ImageOrientationPatient"), 6) if ds.get("ImageOrientationPatient") else None
            if other is None or not np.allclose(other, iop, atol=1e-4):
                raise CaseError(f, "slice orientation differs from the rest of the series")
        normal = np.cross(iop[:3], iop[3:])
        positions = np.array([float(np.dot(p, normal)) for p in ipps])
        order = [int(i) for i in np.argsort(positions, kind="stable")]
        info["normal"] = normal.tolist()
        info["origin"] = ipps[order[0]].tolist()
        if len(items) == 1:
            return order, _slice_thickness(first), info
        gaps = np.diff(positions[order])
        if np.any(gaps < 1e-4):
            i = int(np.argmin(gaps))
            names = f"{items[order[i]][0].name} and {items[order[i + 1]][0].name}"
            raise CaseError(path, f"duplicate slice position ({names} are at the same place)")
        dz = float(np.median(gaps))
        if np.max(np.abs(gaps - dz)) > max(0.01 * dz, 1e-3):
            raise CaseError(path, f"uneven slice spacing (gaps {gaps.min():.4g}..{gaps.max():.4g} mm): "
                            "a missing slice?")
        return order, dz, info
    numbers = [ds.get("InstanceNumber") for _, ds in items]
    if len(items) > 1 and any(n is None for n in numbers):
        raise CaseError(path, "cannot order slices: no ImagePositionPatient/ImageOrientationPatient "
                        "or InstanceNumber")
    order = sorted(range(len(items)), key=lambda i: (int(numbers[i] or 0), items[i][0].name))
    return order, _slice_thickness(first), info


def _headers(path: Path) -> tuple[list[tuple[Path, pydicom.Dataset]], bool]:
    if path.is_dir():
        return [(f, _dcmread(f, pixels=False)) for f in series_files(path)], True
    return [(path, _dcmread(path, pixels=False))], False


def probe(path: Path, *, channel: int | None = None) -> ImageInfo:
    """Headers-only look at a DICOM file or series folder."""
    items, is_series = _headers(path)
    order, dz, _ = _layout(path, items)
    ds = items[0][1]
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if is_series:
        shape: tuple[int, ...] = (len(items), rows, cols)
    elif frames > 1:
        shape = (frames, rows, cols)
    else:
        shape = (rows, cols)
    spacing = _pixel_spacing(ds)
    return ImageInfo(shape, ((dz,) if len(shape) == 3 else ()) + spacing, None, "dicom")


def _pixels(path: Path, ds: pydicom.Dataset) -> tuple[np.ndarray, str]:
    try:
        raw = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - missing decoders, truncated pixel data...
        raise CaseError(path, f"cannot decode DICOM pixel data: {exc}") from exc
    arr = raw
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        arr = luminance(arr)
    arr = arr.astype(np.float32)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    inter = float(ds.get("RescaleIntercept", 0) or 0)
    if slope != 1.0:
        arr *= np.float32(slope)
    if inter != 0.0:
        arr += np.float32(inter)
    return arr, str(raw.dtype)


def _affine(info: dict, spacing: tuple[float, ...], dz: float) -> np.ndarray | None:
    if info["orientation"] is None or info["origin"] is None:
        return None
    iop = np.asarray(info["orientation"])
    row_spacing, col_spacing = spacing[-2], spacing[-1]
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * col_spacing  # i: along a row (increasing column index)
    lps[:3, 1] = iop[3:] * row_spacing  # j: down a column (increasing row index)
    lps[:3, 2] = np.asarray(info["normal"]) * dz
    lps[:3, 3] = info["origin"]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # LPS (DICOM) -> RAS (NIfTI)


def read(path: Path, *, as_label: bool, channel: int | None = None) -> tuple[np.ndarray, Geometry]:
    """Read a DICOM file or series folder as a float32 image (values after the modality rescale)."""
    if as_label:
        raise CaseError(path, "DICOM labels are not supported; store labels as NIfTI, PNG or TIFF")
    items, is_series = _headers(path)
    order, dz, info = _layout(path, items)
    slices, file_dtype = [], None
    for i in order:
        f, _ = items[i]
        arr, file_dtype = _pixels(f, _dcmread(f, pixels=True))
        slices.append(arr)
    first = items[order[0]][1]
    rows, cols = int(first.Rows), int(first.Columns)
    if is_series:
        if any(s.shape != (rows, cols) for s in slices):
            raise CaseError(path, "a slice's pixel data does not match its Rows/Columns")
        arr = np.stack(slices)
    else:
        arr = slices[0]
    spacing = _pixel_spacing(first)
    if arr.ndim == 3:
        spacing = (dz,) + spacing
    geometry = Geometry(
        spacing=spacing,
        source_format=".dcm",
        affine=_affine(info, spacing, dz),
        file_dtype=file_dtype,
        extra={"shape": arr.shape, "series_uid": str(first.get("SeriesInstanceUID", "")),
               "modality": str(first.get("Modality", "")), "files": len(items), **info},
    )
    return np.ascontiguousarray(arr), geometry
