"""Features of a dataset's cases from the foundation model's (cached) slice embeddings."""

from __future__ import annotations

import numpy as np

from ..data.arraycache import ArrayCache
from ..models.base import FoundationModel
from ..models.prompting import slice_embedding
from .features import slice_features


class EmbeddedCase:
    """One case's features, slice by slice, from the model's embedding of each slice.

    Embeddings come from ``embedding_cache`` when the scoring pass stored them (every annotated
    slice); any other slice is embedded now and cached.

    Args:
        model: the foundation model (only its encoder is used, and only on cache misses).
        image01: ``(D, H, W)`` intensities in ``[0, 1]`` as the model saw them.
        label_index: ``(D, H, W)`` class index of the annotation.
        embedding_cache: the dataset's embedding cache.
        key: optional validity key of whatever is derived from this case (set by the caller).
    """

    def __init__(self, model: FoundationModel, image01: np.ndarray, label_index: np.ndarray,
                 embedding_cache: ArrayCache | None, key: str = ""):
        if image01.shape != label_index.shape or image01.ndim != 3:
            raise ValueError(f"image {image01.shape} and label {label_index.shape} must be the same (D, H, W)")
        self.model = model
        self.image01 = image01
        self.label_index = label_index
        self.embedding_cache = embedding_cache
        self.embedded_now = 0
        self.key = key

    def slice(self, d: int) -> np.ndarray:
        """``(F, H, W)`` float32 features of slice ``d``."""
        embedding, cached = slice_embedding(self.model, self.image01[d], self.embedding_cache)
        self.embedded_now += int(not cached)
        return slice_features(self.image01[d], embedding[0].cpu(), self.model.input_size)
