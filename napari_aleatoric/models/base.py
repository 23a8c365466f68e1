"""The foundation-model interface: embed an image once, decode prompts into mask logits.

Every model here is a SAM-like pair of an image encoder and a promptable mask decoder
(LiteMedSAM, SAM, MedSAM and the tiny test model). The decoder also exposes its upscaled
per-pixel embedding (LiteMedSAM: 32 × 256 × 256), the "decoded features" of the design.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


@dataclass
class Decoded:
    """What the mask decoder returns for a batch of ``B`` prompts on one image.

    Attributes:
        logits: ``(B, h, w)`` mask logits at the decoder's low resolution (256 × 256 for
            LiteMedSAM / SAM / MedSAM), covering the padded model input square.
        features: ``(B, F, h, w)`` upscaled decoder embedding (``F = 32`` for LiteMedSAM), or
            ``None`` when not requested.
    """

    logits: torch.Tensor
    features: torch.Tensor | None = None


class FoundationModel:
    """A frozen promptable segmentation model (SAM family) on one device.

    Args:
        name: identity used in cache keys, e.g. ``"litemedsam@79d8c9dc"``.
        image_encoder: maps ``(B, 3, S, S)`` normalised input to ``(B, E, S/16, S/16)``.
        prompt_encoder, mask_decoder: ``segment_anything`` modules (or compatible ones).
        input_size: ``S``, the side of the square model input in pixels.
        pixel_normaliser: maps ``(B, 3, S, S)`` images in ``[0, 1]`` to what the encoder expects.
        device: where the modules live and tensors are computed.
    """

    def __init__(
        self,
        name: str,
        image_encoder: nn.Module,
        prompt_encoder: nn.Module,
        mask_decoder: nn.Module,
        input_size: int,
        pixel_normaliser: Callable[[torch.Tensor], torch.Tensor],
        device: torch.device,
    ):
        self.name = name
        self.input_size = input_size
        self.device = device
        self.image_encoder = image_encoder.to(device).eval()
        self.prompt_encoder = prompt_encoder.to(device).eval()
        self.mask_decoder = mask_decoder.to(device).eval()
        self.pixel_normaliser = pixel_normaliser
        for module in (self.image_encoder, self.prompt_encoder, self.mask_decoder):
            module.requires_grad_(False)
        #: Wall-clock seconds spent inside :meth:`embed` and :meth:`decode` so far (device synchronised).
        self.seconds_in_model = 0.0

    def _synchronise(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def embed(self, images01: torch.Tensor) -> torch.Tensor:
        """Image embedding of model-sized inputs.

        Args:
            images01: ``(B, 3, S, S)`` float tensor with intensities in ``[0, 1]``.

        Returns:
            ``(B, E, S/16, S/16)`` float32 embedding on ``self.device``.
        """
        started = time.perf_counter()
        images01 = images01.to(self.device, torch.float32)
        embedding = self.image_encoder(self.pixel_normaliser(images01)).float()
        self._synchronise()
        self.seconds_in_model += time.perf_counter() - started
        return embedding

    @torch.inference_mode()
    def decode(
        self,
        embedding: torch.Tensor,
        boxes: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_logits: torch.Tensor | None = None,
        with_features: bool = False,
    ) -> Decoded:
        """Decode a batch of prompts on one image embedding.

        Args:
            embedding: ``(1, E, s, s)`` image embedding from :meth:`embed`.
            boxes: ``(B, 4)`` boxes ``(x0, y0, x1, y1)`` in model-input pixels, or ``None``.
            points: ``(B, N, 2)`` point coordinates ``(x, y)`` in model-input pixels, or ``None``.
            point_labels: ``(B, N)`` 1 for a positive, 0 for a negative point.
            mask_logits: ``(B, 1, 4s, 4s)`` prior mask logits (SAM's mask prompt), or ``None``.
            with_features: also return the upscaled decoder embedding.

        Returns:
            :class:`Decoded` with ``(B, h, w)`` logits (and ``(B, F, h, w)`` features).
        """
        started = time.perf_counter()
        device = self.device
        embedding = embedding.to(device, torch.float32)
        point_prompt = None
        if points is not None:
            if point_labels is None:
                raise ValueError("point_labels are required with points")
            point_prompt = (points.to(device, torch.float32), point_labels.to(device, torch.int64))
        if boxes is not None:
            boxes = boxes.to(device, torch.float32).reshape(-1, 4)
        if mask_logits is not None:
            mask_logits = mask_logits.to(device, torch.float32)
        sparse, dense = self.prompt_encoder(points=point_prompt, boxes=boxes, masks=mask_logits)
        captured: dict[str, torch.Tensor] = {}
        hook = None
        if with_features:
            hook = self.mask_decoder.output_upscaling.register_forward_hook(
                lambda _module, _inputs, output: captured.__setitem__("features", output)
            )
        try:
            logits, _iou = self.mask_decoder(
                image_embeddings=embedding,
                image_pe=self.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
        finally:
            if hook is not None:
                hook.remove()
        self._synchronise()
        self.seconds_in_model += time.perf_counter() - started
        return Decoded(logits=logits[:, 0].float(), features=captured.get("features"))


def resolve_device(spec: str | torch.device | None = None) -> torch.device:
    """The torch device to use: CUDA when available, else CPU; ``spec`` overrides.

    Args:
        spec: ``None`` or ``"auto"`` (choose), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.

    Raises:
        ValueError: when the requested device is not available here, naming it.
    """
    if spec is None or str(spec) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as error:
        raise ValueError(f"unknown device {spec!r}: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} was requested but CUDA is not available on this machine; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {spec!r} was requested but MPS is not available on this machine")
    return device
