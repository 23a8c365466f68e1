"""Work-arounds for the process napari runs in.

Triton (imported by ``torch._dynamo`` when torchvision is first imported) bundles its own LLVM.
If an OpenGL driver has already loaded the system's ``libLLVM`` (Mesa: llvmpipe, radeonsi...,
which is what napari's canvas does on most Linux machines without an NVIDIA driver), importing
Triton crashes the process with a segmentation fault. napari-aleatoric never uses Triton (no
``torch.compile``), so when that situation is detected the Triton import is blocked: torch then
behaves as if Triton were not installed.
"""

from __future__ import annotations

import logging
import sys

_log = logging.getLogger("napari_aleatoric.gui")


def _system_llvm_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return any("libLLVM" in line for line in maps)
    except OSError:  # not Linux
        return False


def guard_triton() -> bool:
    """Block the Triton import when it would crash the process; returns whether it was blocked."""
    if "triton" in sys.modules or "torchvision" in sys.modules:
        return sys.modules.get("triton", 0) is None
    if _system_llvm_loaded():
        sys.modules["triton"] = None  # type: ignore[assignment]  # import triton -> ImportError
        _log.info("napari-aleatoric: OpenGL driver loaded libLLVM; Triton import disabled to avoid a crash")
        return True
    return False


def preload_torch() -> None:
    """Import torch and torchvision before napari creates its OpenGL context (standalone app)."""
    try:
        import torch  # noqa: F401, PLC0415
        import torchvision  # noqa: F401, PLC0415
    except ImportError:  # pragma: no cover - dependencies
        pass
