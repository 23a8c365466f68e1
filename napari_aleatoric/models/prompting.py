"""Prompting a foundation model on one 2D slice in the slice's own pixel coordinates."""

from __future__ import annotations

from typing import Sequence

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
    return slice_embeddings(model, [slice01], cache, batch_size=1, resizes=[resize])[0]


def _embed_in_batches(model: FoundationModel, inputs: list[torch.Tensor], batch_size: int) -> list[torch.Tensor]:
    """``(1, E, h, w)`` embeddings of ``(1, 3, S, S)`` inputs, ``batch_size`` inputs per encoder forward.

    A batch that does not fit the GPU's memory is split in halves (down to one input), so a large
    batch size never makes scoring fail where the unbatched path would succeed.
    """
    out: list[torch.Tensor] = []
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start:start + batch_size]
        try:
            embedding = model.embed(torch.cat(chunk) if len(chunk) > 1 else chunk[0])
        except torch.cuda.OutOfMemoryError:
            if len(chunk) == 1:
                raise
            torch.cuda.empty_cache()
            half = (len(chunk) + 1) // 2
            out.extend(_embed_in_batches(model, chunk, half))
            continue
        out.extend(embedding[i:i + 1] for i in range(len(chunk)))
    return out


def slice_embeddings(model: FoundationModel, slices01: Sequence[np.ndarray], cache: ArrayCache | None = None,
                     batch_size: int = 1, resizes: Sequence[Resize | None] | None = None,
                     ) -> list[tuple[torch.Tensor, bool]]:
    """Embeddings of several slices: cached ones read, the others embedded ``batch_size`` per forward.

    Batching changes only how many slices share one encoder forward; each slice's embedding is
    the one :func:`slice_embedding` gives (with a cache, rounded to the float16 the cache holds).

    Args:
        model: the foundation model.
        slices01: ``(H, W)`` slices with intensities in ``[0, 1]`` (their sizes may differ).
        cache: optional embedding cache (keyed by the exact model input and the model's identity).
        batch_size: slices per encoder forward (≥ 1).
        resizes: optional :class:`Resize` per slice (made from each slice's shape if not given).

    Returns:
        per slice, in order: ``((1, E, h, w)`` float32 embedding on the model's device, whether it
        came from the cache).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    resizes = list(resizes) if resizes is not None else [None] * len(slices01)
    results: list[tuple[torch.Tensor, bool] | None] = [None] * len(slices01)
    missing: list[tuple[int, torch.Tensor, str]] = []
    for i, (slice01, resize) in enumerate(zip(slices01, resizes)):
        resize = resize or Resize(int(slice01.shape[0]), int(slice01.shape[1]), model.input_size)
        model_input = resize.image_to_model(slice01)
        key = ""
        if cache is not None:
            key = content_key(model.name, model_input.to(torch.float16).numpy().tobytes())
            entry = cache.load(key[:40], key)
            if entry is not None:
                results[i] = (torch.from_numpy(entry[0]["embedding"].astype(np.float32)).to(model.device), True)
                continue
        missing.append((i, model_input, key))
    embedded = _embed_in_batches(model, [m[1] for m in missing], batch_size) if missing else []
    for (i, _input, key), embedding in zip(missing, embedded):
        if cache is not None:
            cache.save(key[:40], key, {"embedding": embedding.cpu().numpy()})
            # Use exactly what the cache holds (float16), so that a case whose embedding was cached by
            # an earlier, interrupted run gets the same maps as an uninterrupted run.
            embedding = embedding.to(torch.float16).to(torch.float32)
        results[i] = (embedding, False)
    return results  # type: ignore[return-value]


class SlicePredictor:
    """One ``(H, W)`` slice, embedded once, decoded for any number of prompts.

    Args:
        model: the foundation model.
        slice01: ``(H, W)`` intensities already normalised to ``[0, 1]``.
        embedding_cache: optional on-disk cache of image embeddings (keyed by the exact model
            input and the model's identity).
        embedding: the slice's ``((1, E, h, w)`` embedding, whether it was cached)`` from
            :func:`slice_embeddings`, when already computed (e.g. in a batch with other slices).
    """

    def __init__(self, model: FoundationModel, slice01: np.ndarray, embedding_cache: ArrayCache | None = None,
                 embedding: tuple[torch.Tensor, bool] | None = None):
        if slice01.ndim != 2:
            raise ValueError(f"SlicePredictor needs an (H, W) slice, got shape {slice01.shape}")
        self.model = model
        self.resize = Resize(int(slice01.shape[0]), int(slice01.shape[1]), model.input_size)
        if embedding is None:
            embedding = slice_embedding(model, slice01, embedding_cache, self.resize)
        self.embedding, self.embedding_was_cached = embedding

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
