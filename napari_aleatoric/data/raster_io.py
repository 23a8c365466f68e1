"""PNG (Pillow) and TIFF (tifffile) reading and writing.

These formats carry no reliable physical spacing: spacing is 1.0 per axis (pixels).
Images: colour (RGB/RGBA, palette, gray+alpha) is converted to grayscale luminance in the original
intensity range (see :func:`formats.luminance`). Labels must be single-channel integer images
(a palette PNG's indices are the labels; the palette is kept for writing back).
TIFF: a 2D page gives ``(H, W)``, a multi-page / ZYX stack gives ``(D, H, W)``; singleton axes other
than Y and X are dropped.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from .errors import CaseError
from .formats import ImageInfo, check_dimensionality, file_ending, luminance
from .geometry import Geometry

_PNG_SINGLE = {"1", "L", "P", "I", "I;16", "I;16B", "I;16L", "F"}


# ----------------------------------------------------------------------------------------- PNG

def probe_png(path: Path, *, channel: int | None = None) -> ImageInfo:
    """Header-only look at a PNG (size and mode)."""
    with Image.open(path) as im:
        if im.format != "PNG":
            raise CaseError(path, f"not a PNG file (Pillow sees {im.format})")
        width, height = im.size
    return ImageInfo((height, width), (1.0, 1.0), None, "png")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def verify_png(path: Path) -> None:
    """Check every chunk's CRC-32 and the zlib checksum of the pixel data of a PNG file.

    Pillow checks neither for the pixel data (IDAT), so a file with flipped bits would load as
    valid pixels with different values. Every single-bit flip is caught by one of the checks.

    Raises:
        CaseError: a chunk's CRC does not match, a chunk runs past the end of the file, the file
            ends before ``IEND`` or the compressed pixel data fail zlib's check.
    """
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise CaseError(path, "cannot read PNG file: not a PNG file (bad signature)")
    position, idat = len(_PNG_SIGNATURE), []
    while True:
        if position + 12 > len(data):
            raise CaseError(path, "cannot read PNG file: it is corrupt or truncated: it ends before the PNG end "
                            "chunk (IEND)")
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 12 + length
        if end > len(data):
            raise CaseError(path, f"cannot read PNG file: it is corrupt or truncated: chunk {kind!r} at byte "
                            f"{position} runs past the end")
        body = data[position + 4:end - 4]
        if zlib.crc32(body) != struct.unpack(">I", data[end - 4:end])[0]:
            raise CaseError(path, f"cannot read PNG file: it is corrupt: chunk {kind!r} at byte {position} fails "
                            "its CRC check (damaged bits); restore it from a backup (or .aleatoric/originals/ if "
                            "it was corrected here)")
        if kind == b"IDAT":
            idat.append(body[4:])
        if kind == b"IEND":
            break
        position = end
    stream, pending = zlib.decompressobj(), b"".join(idat)
    try:
        while pending and not stream.eof:  # bounded output per call: a decompression bomb allocates nothing big
            stream.decompress(pending, 1 << 22)
            pending = stream.unconsumed_tail
    except zlib.error as exc:
        raise CaseError(path, "cannot read PNG file: it is corrupt: the compressed pixel data fail zlib's "
                        f"check ({exc})") from exc
    if not stream.eof:
        raise CaseError(path, "cannot read PNG file: it is corrupt or truncated: the compressed pixel data end early")


def read_png(path: Path, *, as_label: bool, channel: int | None = None) -> tuple[np.ndarray, Geometry]:
    """Read a PNG; returns ``((H, W) array, geometry)`` (float32 luminance for colour images).

    Chunk CRCs and the pixel data's checksum are verified first (see :func:`verify_png`).
    """
    verify_png(path)
    with Image.open(path) as im:
        if im.format != "PNG":
            raise CaseError(path, f"not a PNG file (Pillow sees {im.format})")
        im.load()  # decodes everything: a truncated file fails here
        mode = im.mode
        png_info = _png_metadata(im)
        palette = im.getpalette() if mode == "P" else None
        if mode in ("P", "PA") and not as_label:
            arr = np.asarray(im.convert("RGBA"))  # palette colours, not indices, for an image
        elif mode in _PNG_SINGLE:
            arr = np.asarray(im)
        elif as_label:
            raise CaseError(path, f"label PNG has {len(im.getbands())} channels (mode {mode}); labels "
                            "must be single-channel integer images")
        else:
            arr = np.asarray(im)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if mode.startswith("I;16") or (mode == "I" and arr.size and 0 <= arr.min() and arr.max() <= 65535):
        file_dtype = "uint16"
    else:
        file_dtype = str(arr.dtype) if arr.ndim == 2 else "uint8"
    if arr.ndim == 3:  # colour image
        arr = luminance(arr)
    geometry = Geometry(spacing=(1.0, 1.0), source_format=".png", file_dtype=file_dtype,
                        extra={"shape": arr.shape, "png_mode": mode, "palette": palette, "png_info": png_info})
    return arr, geometry


def _png_metadata(im) -> dict:
    """The ancillary chunks a label file's rewrite keeps: ``tRNS`` (transparency), ``pHYs`` (dpi or
    aspect), text chunks (``tEXt``/``zTXt``/``iTXt``), ``iCCP`` (colour profile) and ``gAMA``."""
    info = im.info
    kept = {key: info[key] for key in ("transparency", "dpi", "aspect", "icc_profile", "gamma") if key in info}
    text = getattr(im, "text", None) or {}
    if text:
        kept["text"] = {str(k): str(v) for k, v in text.items()}
    return kept


def _png_save_options(png_info: dict, mode: str, dtype: np.dtype, source_mode: str | None) -> dict:
    """Pillow ``save`` options restoring the kept chunks (``transparency`` only for an unchanged mode)."""
    from PIL.PngImagePlugin import PngInfo  # noqa: PLC0415

    options: dict = {}
    chunks = PngInfo()
    for key, value in png_info.get("text", {}).items():
        chunks.add_itxt(key, value) if any(ord(c) > 255 for c in key + value) else chunks.add_text(key, value)
    if "aspect" in png_info and "dpi" not in png_info:  # pHYs with unit "unknown": written as is
        x, y = png_info["aspect"]
        chunks.add(b"pHYs", struct.pack(">IIB", int(x), int(y), 0))
    if "gamma" in png_info:
        chunks.add(b"gAMA", struct.pack(">I", int(round(float(png_info["gamma"]) * 100000))))
    options["pnginfo"] = chunks
    if "dpi" in png_info:
        options["dpi"] = tuple(float(v) for v in png_info["dpi"])
    if "icc_profile" in png_info:
        options["icc_profile"] = png_info["icc_profile"]
    if "transparency" in png_info and source_mode == mode:
        options["transparency"] = png_info["transparency"]
    return options


def _png_dtype(path: Path, arr: np.ndarray, geometry: Geometry | None) -> np.dtype:
    """uint8 or uint16: the source's when the values fit, else the smallest that fits."""
    if arr.ndim != 2:
        raise CaseError(path, f"PNG holds 2D arrays only; got shape {arr.shape}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise CaseError(path, "cannot write NaN/inf to PNG")
    if arr.dtype.kind == "f" and arr.size and not np.all(arr == np.round(arr)):
        raise CaseError(path, "PNG stores integers only; the array has non-integer values")
    lo = float(arr.min()) if arr.size else 0.0
    hi = float(arr.max()) if arr.size else 0.0
    if lo < 0 or hi > 65535:
        raise CaseError(path, f"values {lo:g}..{hi:g} do not fit a 16-bit PNG (0..65535)")
    wanted = (geometry.file_dtype if geometry is not None else None) or ""
    if wanted == "uint16" or hi > 255:
        return np.dtype(np.uint16)
    return np.dtype(np.uint8)


def write_png(tmp: Path, path: Path, arr: np.ndarray, geometry: Geometry | None) -> None:
    """Write a 2D integer-valued array as a grayscale (or palette, if the source was) PNG."""
    dtype = _png_dtype(path, arr, geometry)
    data = np.ascontiguousarray(arr.astype(dtype))
    extra = geometry.extra if geometry is not None else {}
    im = Image.fromarray(data)
    if dtype == np.uint8 and extra.get("png_mode") == "P" and extra.get("palette"):
        im.putpalette(extra["palette"])
    elif dtype == np.uint8 and extra.get("png_mode") == "1" and data.max(initial=0) <= 1:
        im = Image.fromarray(data.astype(bool))
    options = _png_save_options(extra.get("png_info") or {}, im.mode, dtype, extra.get("png_mode"))
    im.save(tmp, format="PNG", **options)


# ---------------------------------------------------------------------------------------- TIFF

def _tiff_layout(path: Path, axes: str, shape: tuple[int, ...], as_label: bool) -> tuple[tuple[int, ...], bool]:
    """(kept axis indices in order, has colour samples) for a tifffile series."""
    axes = axes.upper()
    has_samples = "S" in axes and shape[axes.index("S")] > 1
    if has_samples and as_label:
        raise CaseError(path, f"label TIFF has {shape[axes.index('S')]} samples per pixel (colour); "
                        "labels must be single-channel integer images")
    keep = [i for i, a in enumerate(axes) if a != "S" and (a in "YX" or shape[i] != 1)]
    spatial = tuple(shape[i] for i in keep)
    check_dimensionality(path, spatial, f"TIFF series (axes {axes})")
    return tuple(keep), has_samples


#: a compressed TIFF may decode to at most this many times its file size (deflate expands at most
#: 1032x, LZW about 2730x, PackBits 64x); more is a corrupt header or a decompression bomb
MAX_TIFF_EXPANSION = 4096


def _check_declared_size(path: Path, series) -> None:
    """Refuse a series whose header declares more pixel data than the file can hold (before
    allocating it): an uncompressed TIFF must contain every byte, a compressed one can expand at
    most :data:`MAX_TIFF_EXPANSION` times."""
    bits = int(getattr(series.pages[0], "bitspersample", 8) or 8) if series.pages else 8
    if bits < 8:  # 1-, 2- or 4-bit pixels are packed, each row padded to whole bytes
        shape = tuple(int(n) for n in series.shape)
        width = shape[-1] if shape else 1
        rows = int(np.prod(shape[:-1], dtype=object)) if len(shape) > 1 else 1
        declared = rows * -(-width * bits // 8)
    else:
        declared = int(np.prod(series.shape, dtype=object)) * np.dtype(series.dtype).itemsize
    size = path.stat().st_size
    compression = int(getattr(series.pages[0], "compression", 1) or 1) if series.pages else 1
    limit = size if compression == 1 else MAX_TIFF_EXPANSION * size
    if declared > limit:
        raise CaseError(path, f"header declares shape {tuple(series.shape)} ({declared} bytes of pixels) but the "
                        f"{size}-byte file can hold at most {limit}: truncated or corrupt header; refused "
                        "without allocating it")


def probe_tiff(path: Path, *, channel: int | None = None) -> ImageInfo:
    """Header-only look at a TIFF (first series' shape and axes)."""
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise CaseError(path, "TIFF file holds no readable image (empty or corrupt?)")
        series = tif.series[0]
        _check_declared_size(path, series)
        keep, _ = _tiff_layout(path, series.axes, tuple(series.shape), as_label=False)
        shape = tuple(series.shape[i] for i in keep)
    return ImageInfo(shape, (1.0,) * len(shape), None, "tiff")


def read_tiff(path: Path, *, as_label: bool, channel: int | None = None) -> tuple[np.ndarray, Geometry]:
    """Read the first series of a TIFF; returns ``((H, W) or (D, H, W) array, geometry)``."""
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise CaseError(path, "TIFF file holds no readable image (empty or corrupt?)")
        series = tif.series[0]
        _check_declared_size(path, series)
        axes = series.axes.upper()
        arr = series.asarray()
        tiff_info = _tiff_metadata(tif)
    keep, has_samples = _tiff_layout(path, axes, tuple(arr.shape), as_label)
    if arr.dtype.kind not in "biuf":
        raise CaseError(path, f"unsupported TIFF data type {arr.dtype}")
    file_dtype = str(arr.dtype)
    order = list(keep) + ([axes.index("S")] if "S" in axes else [])
    dropped = [i for i in range(arr.ndim) if i not in order]
    arr = np.transpose(arr, [*dropped, *order])
    arr = arr.reshape(arr.shape[len(dropped):])
    if "S" in axes:
        arr = luminance(arr) if has_samples else arr[..., 0]
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    geometry = Geometry(spacing=(1.0,) * arr.ndim, source_format=file_ending(path), file_dtype=file_dtype,
                        extra={"shape": arr.shape, "tiff_axes": axes, "tiff_info": tiff_info})
    return np.ascontiguousarray(arr), geometry


def _tiff_metadata(tif) -> dict:
    """What a label file's rewrite keeps: the compression, the resolution (XResolution, YResolution,
    ResolutionUnit) and ImageJ's metadata (``spacing``, ``unit``) of the first page."""
    page = tif.pages[0]
    kept: dict = {"compression": int(getattr(page, "compression", 1) or 1)}
    tags = page.tags
    if "XResolution" in tags and "YResolution" in tags:
        kept["resolution"] = (tuple(tags["XResolution"].value), tuple(tags["YResolution"].value))
        unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 2
        kept["resolutionunit"] = int(unit)
    if tif.is_imagej and tif.imagej_metadata:
        kept["imagej"] = {k: v for k, v in tif.imagej_metadata.items()
                          if k in ("spacing", "unit", "finterval", "xorigin", "yorigin", "zorigin")}
    return kept


#: TIFF compression codes tifffile writes without extra codec packages (others are written deflated,
#: which is lossless too; LZW and PackBits need the optional ``imagecodecs`` package)
_TIFF_COMPRESSION = {1: None, 8: "zlib", 32946: "zlib"}


def write_tiff(tmp: Path, arr: np.ndarray, dtype: np.dtype, geometry: Geometry | None = None) -> None:
    """Write a 2D or 3D single-channel array (``minisblack``).

    With the ``geometry`` of a TIFF read by :func:`read_tiff`, its compression (deflate as it was;
    others, whose encoders need optional codecs, as deflate: still lossless), its
    resolution tags and its ImageJ metadata (``spacing``, ``unit``) are kept; otherwise the file is
    uncompressed.
    """
    data = np.ascontiguousarray(np.asarray(arr).astype(dtype, copy=False))
    info = (geometry.extra.get("tiff_info") if geometry is not None else None) or {}
    options: dict = {"photometric": "minisblack"}
    code = int(info.get("compression", 1))
    compression = _TIFF_COMPRESSION.get(code, "zlib")
    if compression is not None:
        options["compression"] = compression
    if "resolution" in info:
        (xn, xd), (yn, yd) = info["resolution"]
        options["resolution"] = (xn / xd if xd else 1.0, yn / yd if yd else 1.0)
        options["resolutionunit"] = info.get("resolutionunit", 2)
    if "imagej" in info and data.dtype in (np.uint8, np.uint16, np.float32):
        options["imagej"] = True
        options["metadata"] = dict(info["imagej"])
        options.pop("resolutionunit", None)  # ImageJ keeps its unit in the metadata
    tifffile.imwrite(tmp, data, **options)
