"""Shared helpers of the reliability suite: small valid files of every format, and proofs that
nothing on disk changed."""

from __future__ import annotations

import errno
import hashlib
import os
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile
from helpers import write_ct_slice
from PIL import Image
from pydicom.uid import generate_uid

AFFINE = np.diag([0.8, 0.9, 2.0, 1.0])


def tree_state(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file (``<dir>``/``-> target`` for folders and links)
    under ``root``, ``.aleatoric`` included: proves that reading changed nothing at all."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = f"-> {p.readlink()}"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "<dir>"
    return out


def write_nifti(path: Path, data: np.ndarray, affine=AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def valid_files(folder: Path) -> dict[str, Path]:
    """One small valid label-like file per format (ending -> path)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    labels3d = rng.integers(0, 3, size=(7, 6, 5)).astype(np.uint8)
    labels2d = rng.integers(0, 3, size=(12, 10)).astype(np.uint8)
    files = {
        ".nii": write_nifti(folder / "good.nii", labels3d),
        ".nii.gz": write_nifti(folder / "good.nii.gz", labels3d),
        ".png": folder / "good.png",
        ".tif": folder / "good.tif",
        ".dcm": write_ct_slice(folder / "good.dcm", rng.integers(-100, 100, size=(8, 9)),
                               SeriesInstanceUID=generate_uid(), InstanceNumber=1),
    }
    Image.fromarray(labels2d).save(files[".png"])
    tifffile.imwrite(files[".tif"], labels3d, photometric="minisblack")
    return files


def nifti_with_declared_shape(path: Path, shape: tuple[int, ...], data_bytes: bytes = b"\0" * 64) -> Path:
    """A NIfTI-1 file whose header declares ``shape`` (uint8) but holds only ``data_bytes``."""
    import gzip

    header = nib.Nifti1Header()
    header.set_data_dtype(np.uint8)
    header.set_data_shape((1, 1, 1))
    raw = bytearray(header.binaryblock) + b"\0" * 4  # 348-byte header + 4-byte extension flag
    dims = [len(shape), *shape] + [1] * (7 - len(shape))
    struct.pack_into("<8h", raw, 40, *dims)
    struct.pack_into("<f", raw, 108, 352.0)  # vox_offset
    content = bytes(raw) + data_bytes
    path.write_bytes(gzip.compress(content) if path.name.endswith(".gz") else content)
    return path


def tiff_with_declared_shape(path: Path, height: int, width: int) -> Path:
    """A one-strip uint8 TIFF whose ImageLength/ImageWidth say ``height`` x ``width`` (4x4 stored)."""
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8), photometric="minisblack")
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tags = {t.name: t for t in tif.pages[0].tags.values()}
        for name, value in (("ImageLength", height), ("ImageWidth", width)):
            tag = tags[name]
            struct.pack_into("<H" if tag.dtype == 3 else "<I", raw, tag.valueoffset, value)
    path.write_bytes(bytes(raw))
    return path


def png_with_declared_shape(path: Path, height: int, width: int) -> Path:
    """A PNG whose IHDR (with a correct CRC) says ``width`` x ``height`` but holds 4x4 pixels."""
    import zlib

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(path)
    raw = bytearray(path.read_bytes())
    struct.pack_into(">II", raw, 16, width, height)
    struct.pack_into(">I", raw, 29, zlib.crc32(bytes(raw[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(raw))
    return path


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def read_only(monkeypatch, root: Path, code: int = errno.EROFS) -> None:
    """Make every write under ``root`` fail with ``OSError(code)``, as a read-only bind mount does
    (tests run as root in CI, where chmod would not stop anything). Reads still work."""
    root = str(root.resolve())

    def inside(path) -> bool:
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(root)
        except TypeError:  # a file descriptor
            return False

    def guard(name, real, is_write):
        def call(*args, **kwargs):
            if args and inside(args[0]) and is_write(*args, **kwargs):
                raise OSError(code, os.strerror(code), os.fsdecode(args[0]))
            return real(*args, **kwargs)
        monkeypatch.setattr(os, name, call)

    guard("open", os.open, lambda path, flags, *a, **k: bool(flags & _WRITE_FLAGS))
    for name in ("mkdir", "unlink", "rmdir"):
        guard(name, getattr(os, name), lambda *a, **k: True)
    for name in ("replace", "rename", "link"):
        real = getattr(os, name)

        def call(src, dst, *a, _real=real, **k):
            if inside(dst) or inside(src):
                raise OSError(code, os.strerror(code), os.fsdecode(dst))
            return _real(src, dst, *a, **k)
        monkeypatch.setattr(os, name, call)
