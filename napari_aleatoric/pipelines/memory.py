"""How much memory scoring one case needs, checked from the image header before any voxel is read.

Scoring holds, per case, the image, the label, the model's per-class probability and uncertainty
maps at full resolution and the label-quality features: its peak memory grows linearly with the
number of voxels of the largest case (and, more steeply, with the pixels of one slice): the
constants below are those slopes, measured (see ``docs/reliability.md``, "Memory");
:func:`check_scoring_memory` refuses a case whose estimate exceeds the memory available now, with a message saying what to do (tile or downsample), instead
of letting the operating system or a ``MemoryError`` end the whole run minutes later.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..data.errors import CaseError

__all__ = ["SCORING_BYTES_PER_VOXEL", "SCORING_BYTES_PER_SLICE_PIXEL", "SCORING_BASE_BYTES", "MEMORY_HEADROOM",
           "available_memory_bytes", "scoring_memory_bytes", "check_scoring_memory"]

#: resident bytes scoring needs per voxel of a case (measured 68 B on volumes of 512x512 slices, rounded up)
SCORING_BYTES_PER_VOXEL = 80
#: resident bytes per pixel of one slice, on top (whole-slice maps and label-quality features;
#: measured: 2D images need 523 B per pixel in all, i.e. 455 B besides the per-voxel share; rounded up)
SCORING_BYTES_PER_SLICE_PIXEL = 600
#: resident bytes of a case's scoring independent of its size (measured 145 to 318 MiB, rounded up)
SCORING_BASE_BYTES = 384 * 2**20
#: share of the available memory a case may use (the rest stays for the system and other programs)
MEMORY_HEADROOM = 0.8


def available_memory_bytes() -> int | None:
    """Memory the system can give this process now (Linux ``MemAvailable``), or ``None`` if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def scoring_memory_bytes(shape: tuple[int, ...]) -> int:
    """Estimated peak resident memory (bytes) of scoring one case of ``shape`` (``(H, W)`` or ``(D, H, W)``):
    ``SCORING_BASE_BYTES + SCORING_BYTES_PER_VOXEL * D*H*W + SCORING_BYTES_PER_SLICE_PIXEL * H*W``."""
    voxels = math.prod(int(n) for n in shape)
    slice_pixels = math.prod(int(n) for n in shape[-2:])
    return SCORING_BASE_BYTES + SCORING_BYTES_PER_VOXEL * voxels + SCORING_BYTES_PER_SLICE_PIXEL * slice_pixels


def check_scoring_memory(path: str | Path, shape: tuple[int, ...], available: int | None = None) -> None:
    """Refuse (:class:`CaseError` naming ``path``) a case too large to score in the memory available.

    Args:
        path: the case's image file (named in the message).
        shape: its shape from the header, ``(H, W)`` or ``(D, H, W)``.
        available: bytes available (default :func:`available_memory_bytes`; unknown: no check).
    """
    available = available_memory_bytes() if available is None else available
    if available is None:
        return
    need = scoring_memory_bytes(shape)
    budget = MEMORY_HEADROOM * available
    if need <= budget:
        return
    voxels = math.prod(int(n) for n in shape)
    per_voxel = SCORING_BYTES_PER_VOXEL + SCORING_BYTES_PER_SLICE_PIXEL * math.prod(int(n) for n in shape[-2:]) / voxels
    fitting = max(1, int((budget - SCORING_BASE_BYTES) // per_voxel))
    factor = math.ceil(math.sqrt(voxels / fitting)) if fitting < voxels else 1
    shown = "x".join(str(int(n)) for n in shape)
    raise CaseError(path, f"image of {shown} voxels ({voxels / 1e6:.0f} million) needs about {need / 2**30:.1f} GiB "
                    f"of memory to score, but only {available / 2**30:.1f} GiB is available; tile it into pieces of "
                    f"at most {fitting / 1e6:.0f} million voxels or downsample it (e.g. by {factor} along each "
                    "image axis), or free memory; case skipped")
