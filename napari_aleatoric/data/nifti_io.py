"""NIfTI-1/2 (``.nii``, ``.nii.gz``) reading and writing with nibabel.

Axis order: the file's voxel array ``(i, j, k)`` is returned reversed, ``(k, j, i)`` (napari order,
slice axis first); spacing is the header zooms reversed the same way. Writing reverses back.

Dimensionality: 2D files give ``(H, W)``; 3D files give ``(D, H, W)``, also when the third axis has
length 1 (kept as ``D == 1`` so that writing back restores the same file shape). Axes beyond the
third are accepted only when they all have length 1 (dropped on read, restored on write) or, for a
4D multi-channel image read with ``channel=c``, by selecting channel ``c`` of the fourth axis.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import CaseError
from .formats import ImageInfo, check_dimensionality, file_ending
from .geometry import Geometry


def _load(path: Path):
    img = nib.load(str(path), mmap=False)
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise CaseError(path, f"not a NIfTI image (nibabel read it as {type(img).__name__})")
    return img


def _select(path: Path, file_shape: tuple[int, ...], channel: int | None) -> tuple[tuple[int, ...], int | None]:
    """Spatial shape in file order and the channel index to take from a 4th axis (or None)."""
    if len(file_shape) <= 3:
        check_dimensionality(path, file_shape, "NIfTI array")
        return file_shape, None
    spatial, rest = file_shape[:3], file_shape[3:]
    if all(n == 1 for n in rest):
        return spatial, None
    if channel is not None and len(file_shape) == 4:
        if not 0 <= channel < file_shape[3]:
            raise CaseError(path, f"channel {channel} requested but the file has {file_shape[3]} channels")
        return spatial, channel
    raise CaseError(path, f"unsupported dimensionality: NIfTI array is {len(file_shape)}D with shape "
                    f"{tuple(file_shape)}; expected 2D or 3D (a time series or multi-channel volume?)")


def _spacing(header, ndim: int) -> tuple[float, ...]:
    zooms = [abs(float(z)) for z in header.get_zooms()[:ndim]]
    zooms = [z if z > 0 and np.isfinite(z) else 1.0 for z in zooms]
    return tuple(reversed(zooms))


#: deflate (gzip) cannot expand data by more than this factor (RFC 1951: 258 bytes per 2 bits)
MAX_DEFLATE_RATIO = 1032


def _check_size(path: Path, img) -> None:
    """Refuse a header that declares more voxel data than the file can hold, before allocating it.

    ``.nii``: the file must be at least as long as the header says. ``.nii.gz``: gzip (deflate)
    expands at most :data:`MAX_DEFLATE_RATIO` times, so a small file that declares a giant shape
    is refused without decompressing (a full truncation check would need the whole stream).
    """
    proxy = img.dataobj
    expected = int(proxy.offset) + int(np.prod(proxy.shape, dtype=object)) * np.dtype(proxy.dtype).itemsize
    actual = path.stat().st_size
    ending = file_ending(path)
    if ending == ".nii" and actual < expected:
        raise CaseError(path, f"file is truncated: {actual} bytes, the header needs {expected}")
    if ending == ".nii.gz" and expected > MAX_DEFLATE_RATIO * actual + 1024:
        raise CaseError(path, f"header declares shape {tuple(proxy.shape)} ({expected} bytes) but a gzip file of "
                        f"{actual} bytes can hold at most {MAX_DEFLATE_RATIO * actual + 1024}: truncated or corrupt "
                        "header; refused without allocating it")


def verify_gzip(path: Path) -> None:
    """Read a ``.nii.gz`` file's whole gzip stream so that its CRC-32 and length are checked.

    nibabel reads only the bytes the header needs and never reaches the gzip trailer, so a file
    with flipped bits would load as valid data with different voxels. (``gzip -t`` does the same.)

    Raises:
        CaseError: the stream is corrupt or incomplete (names the file and says what to do).
        OSError: the file cannot be read at all (permission, I/O error): not a corrupt file.
    """
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 22):
                pass
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise CaseError(path, f"cannot read NIfTI file: it is corrupt or truncated, its gzip data fail the "
                        f"integrity check ({exc}); it was damaged (bit flips, incomplete copy). Restore it from a "
                        "backup (or .aleatoric/originals/ if it was corrected here)") from exc


def probe(path: Path, *, channel: int | None = None) -> ImageInfo:
    """Header-only look at a NIfTI file (no voxel data is read)."""
    img = _load(path)
    _check_size(path, img)
    spatial, _ = _select(path, tuple(img.shape), channel)
    shape = tuple(reversed(spatial))
    return ImageInfo(shape, _spacing(img.header, len(shape)), np.asarray(img.affine, float), "nifti")


def read(path: Path, *, as_label: bool, channel: int | None = None) -> tuple[np.ndarray, Geometry]:
    """Read a NIfTI file.

    Returns ``(array, geometry)`` with the array in napari order ``(H, W)`` or ``(D, H, W)``:
    images as float32 with the header's scl_slope/scl_inter applied; labels in the file's own dtype
    (or float64 when the header scales them; the caller checks they are integral).
    """
    if file_ending(path) == ".nii.gz":
        verify_gzip(path)  # streamed with bounded memory: safe before the header's size check
    img = _load(path)
    _check_size(path, img)
    file_shape = tuple(img.shape)
    spatial, chan = _select(path, file_shape, channel)
    proxy = img.dataobj
    raw = np.asanyarray(proxy.get_unscaled())
    if chan is not None:
        raw = raw[..., chan]
    elif raw.shape != spatial:
        raw = raw.reshape(spatial)
    slope = float(getattr(proxy, "slope", 1.0))
    inter = float(getattr(proxy, "inter", 0.0))
    scaled = (slope, inter) != (1.0, 0.0)
    if as_label:
        arr = raw * slope + inter if scaled else raw
    else:
        arr = raw.astype(np.float32)
        if scaled:
            arr *= np.float32(slope)
            arr += np.float32(inter)
    arr = np.ascontiguousarray(arr.T)
    geometry = Geometry(
        spacing=_spacing(img.header, arr.ndim),
        source_format=file_ending(path),
        affine=np.asarray(img.affine, dtype=float).copy(),
        header=img.header.copy(),
        file_dtype=str(img.get_data_dtype()),
        extra={"shape": arr.shape, "file_shape": file_shape, "channel": chan},
    )
    return arr, geometry


def _default_affine(spacing: tuple[float, ...]) -> np.ndarray:
    zooms = list(reversed(spacing)) + [1.0] * (3 - len(spacing))
    return np.diag(zooms + [1.0])


def write(tmp: Path, arr: np.ndarray, geometry: Geometry, dtype: np.dtype) -> None:
    """Write ``arr`` (napari order) to ``tmp`` as NIfTI with ``geometry``'s affine and header.

    The header (qform/sform codes, descriptions, zooms...) is reused when ``geometry`` came from a
    NIfTI file; the stored dtype is ``dtype`` and no intensity scaling is applied, so integer values
    round-trip exactly. Trailing singleton axes of the source file are restored.
    """
    data = np.asarray(arr).astype(dtype, copy=False).T
    file_shape = geometry.extra.get("file_shape")
    if (file_shape and geometry.extra.get("channel") is None and len(file_shape) > data.ndim
            and tuple(file_shape[: data.ndim]) == data.shape and all(n == 1 for n in file_shape[data.ndim:])):
        data = data.reshape(tuple(file_shape))
    header = geometry.header if isinstance(geometry.header, nib.Nifti1Header) else None
    if header is not None:
        header = header.copy()
        header.set_data_dtype(dtype)
        header.set_slope_inter(np.nan, np.nan)
    affine = geometry.affine if geometry.affine is not None else _default_affine(geometry.spacing)
    cls = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    img = cls(data, np.asarray(affine, dtype=float), header=header)
    img.set_data_dtype(dtype)
    if header is None:
        img.set_sform(affine, code="scanner" if geometry.source_format == ".dcm" else "aligned")
        img.set_qform(affine, code="scanner" if geometry.source_format == ".dcm" else "aligned")
    nib.save(img, str(tmp))
