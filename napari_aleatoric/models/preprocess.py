"""Turn CT / MR / other intensities into the square ``[0, 1]`` input a SAM-like model expects.

- Intensities: CT is windowed (soft-tissue window, level 40 HU, width 400 HU, as MedSAM does for
  abdominal CT); anything else is clipped to its 0.5–99.5 percentiles. With ``input_mode="masknorm"``
  (the paper's X) the percentiles are taken inside the annotation's foreground instead, so the
  contrast follows the labelled structures.
- Geometry: the longest side is resized to the model's input size ``S`` and the rest padded with
  zeros at the bottom/right (SAM's convention); :class:`Resize` maps boxes, points and logits
  between original pixels and model pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

InputMode = Literal["raw", "masknorm"]
CT_WINDOW_LEVEL_HU = 40.0
CT_WINDOW_WIDTH_HU = 400.0
PERCENTILES = (0.5, 99.5)


def is_ct(modality: str) -> bool:
    """Whether a ``dataset.json`` channel name denotes CT (``"CT"``, ``"ct"``, ``"CT_abdomen"``...)."""
    return modality.strip().upper().startswith("CT")


def normalise_intensity(
    image: np.ndarray, modality: str, input_mode: InputMode = "raw", foreground: np.ndarray | None = None
) -> np.ndarray:
    """Map a whole case's intensities to ``[0, 1]`` (one mapping for every slice of a volume).

    Args:
        image: ``(H, W)`` or ``(D, H, W)`` float image (HU for CT).
        modality: channel name from ``dataset.json``.
        input_mode: ``"raw"`` (modality default) or ``"masknorm"`` (statistics inside ``foreground``).
        foreground: boolean array of ``image``'s shape, required for ``"masknorm"``.

    Returns:
        float32 array of ``image``'s shape in ``[0, 1]``.
    """
    image = np.asarray(image, dtype=np.float32)
    if input_mode == "masknorm":
        if foreground is None:
            raise ValueError("input_mode='masknorm' needs the annotation's foreground")
        values = image[foreground] if foreground.any() else image.ravel()
        low, high = np.percentile(values, PERCENTILES)
    elif input_mode == "raw":
        if is_ct(modality):
            low = CT_WINDOW_LEVEL_HU - CT_WINDOW_WIDTH_HU / 2
            high = CT_WINDOW_LEVEL_HU + CT_WINDOW_WIDTH_HU / 2
        else:
            low, high = np.percentile(image, PERCENTILES)
    else:
        raise ValueError(f"input_mode must be 'raw' or 'masknorm', got {input_mode!r}")
    if high <= low:
        return np.zeros_like(image)
    return np.clip((image - low) / (high - low), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Resize:
    """Longest-side resize with bottom/right padding between an ``(H, W)`` slice and an ``S × S`` input.

    Attributes:
        height, width: original slice size in pixels.
        size: model input side ``S``.
    """

    height: int
    width: int
    size: int

    @property
    def scale(self) -> float:
        """Model pixels per original pixel."""
        return self.size / max(self.height, self.width)

    @property
    def resized_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the image content inside the padded square."""
        return (max(1, round(self.height * self.scale)), max(1, round(self.width * self.scale)))

    def image_to_model(self, slice01: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """``(H, W)`` intensities in ``[0, 1]`` → ``(1, 3, S, S)`` float32 model input."""
        tensor = torch.as_tensor(np.ascontiguousarray(slice01), dtype=torch.float32, device=device)[None, None]
        h, w = self.resized_shape
        resized = F.interpolate(tensor, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        padded = F.pad(resized, (0, self.size - w, 0, self.size - h))
        return padded.expand(1, 3, self.size, self.size).contiguous()

    def coords_to_model(self, coords: torch.Tensor) -> torch.Tensor:
        """Pixel coordinates (any shape ending in x, y pairs) from original to model pixels."""
        return coords.to(torch.float32) * self.scale

    def logits_to_image(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, h, w)`` decoder logits over the padded square → ``(B, H, W)`` at original resolution."""
        side = logits.shape[-1]
        h, w = self.resized_shape
        crop_h = max(1, round(h * side / self.size))
        crop_w = max(1, round(w * side / self.size))
        cropped = logits[:, None, :crop_h, :crop_w]
        return F.interpolate(cropped, size=(self.height, self.width), mode="bilinear", align_corners=False)[:, 0]
