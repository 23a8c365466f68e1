"""Prompting a foundation model on one 2D slice in the slice's own pixel coordinates."""

from __future__ import annotations

import numpy as np
import torch

from ..data.arraycache import ArrayCache, content_key
from .base import FoundationModel
from .preprocess import Resize


def slice_embedding(model: FoundationModel, slice01: np.ndarray, cache: ArrayCache | None = None,
                    resize: Resize | None = None) -> tuple[torch.Tensor, bool]:
    """The model's embedding of one slice, from the on-disk cache when it holds it.

    Args:
        model: the foundation model.
        slice01: ``(H, W)`` intensities in ``[0, 1]``.
        cache: optional embedding cache (keyed by the exact model input and the model's identity).
        resize: the slice's :class:`Resize` (made from the slice's shape if not given).

    Returns:
        ``((1, E, h, w)`` float32 embedding on the model's device, whether it came from the cache).
    """
    resize = resize or Resize(int(slice01.shape[0]), int(slice01.shape[1]), model.input_size)
    model_input = resize.image_to_model(slice01)
    if cache is None:
        return model.embed(model_input), False
    key = content_key(model.name, model_input.to(torch.float16).numpy().tobytes())
    entry = cache.load(key[:40], key)
    if entry is not None:
        return torch.from_numpy(entry[0]["embedding"].astype(np.float32)).to(model.device), True
    embedding = model.embed(model_input)
    cache.save(key[:40], key, {"embedding": embedding.cpu().numpy()})
    # Use exactly what the cache holds (float16), so that a case whose embedding was cached by an
    # earlier, interrupted run gets the same maps as an uninterrupted run.
    return embedding.to(torch.float16).to(torch.float32), False


class SlicePredictor:
    """One ``(H, W)`` slice, embedded once, decoded for any number of prompts.

    Args:
        model: the foundation model.
        slice01: ``(H, W)`` intensities already normalised to ``[0, 1]``.
        embedding_cache: optional on-disk cache of image embeddings (keyed by the exact model
            input and the model's identity).
    """

    def __init__(self, model: FoundationModel, slice01: np.ndarray, embedding_cache: ArrayCache | None = None):
        if slice01.ndim != 2:
            raise ValueError(f"SlicePredictor needs an (H, W) slice, got shape {slice01.shape}")
        self.model = model
        self.resize = Resize(int(slice01.shape[0]), int(slice01.shape[1]), model.input_size)
        self.embedding, self.embedding_was_cached = slice_embedding(model, slice01, embedding_cache, self.resize)

    def predict(
        self,
        boxes: np.ndarray | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        with_features: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mask logits for a batch of prompts, at the slice's resolution.

        Args:
            boxes: ``(B, 4)`` boxes ``(x0, y0, x1, y1)`` in slice pixels (x = column, y = row).
            points: ``(B, N, 2)`` points ``(x, y)`` in slice pixels.
            point_labels: ``(B, N)`` 1 positive / 0 negative.
            with_features: also return the decoder's per-pixel features (at decoder resolution).

        Returns:
            ``(B, H, W)`` float32 logits on the model's device, and ``(B, F, h, w)`` features or ``None``.
        """
        to_model = self.resize.coords_to_model
        box_t = to_model(torch.as_tensor(boxes, dtype=torch.float32)) if boxes is not None else None
        point_t = to_model(torch.as_tensor(points, dtype=torch.float32)) if points is not None else None
        label_t = torch.as_tensor(point_labels) if point_labels is not None else None
        decoded = self.model.decode(self.embedding, boxes=box_t, points=point_t, point_labels=label_t,
                                    with_features=with_features)
        return self.resize.logits_to_image(decoded.logits), decoded.features
