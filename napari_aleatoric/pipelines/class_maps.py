"""Decoded class maps of one case: the foundation model prompted with the annotation's boxes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.arraycache import ArrayCache
from ..models.base import FoundationModel
from ..models.prompting import SlicePredictor, slice_embeddings
from ..uncertainty.prompts import component_boxes


@dataclass
class ClassMaps:
    """The model's per-class probabilities for one case.

    Attributes:
        probabilities: ``(C, D, H, W)`` float32 in ``[0, 1]``, one map per foreground class in
            dataset order; 2D cases have ``D = 1``. Slices where a class has no annotation are 0.
        prompted: ``(C, D)`` bool, whether class ``c`` was prompted (annotated) in slice ``d``.
        forward_seconds: time spent inside the model (embedding + decoding), in seconds.
    """

    probabilities: np.ndarray
    prompted: np.ndarray
    forward_seconds: float


def compute_class_maps(
    model: FoundationModel,
    image01: np.ndarray,
    label: np.ndarray,
    values: list[int],
    embedding_cache: ArrayCache | None = None,
    batch_size: int = 1,
) -> ClassMaps:
    """Prompt the model once per (slice, class, connected component) with the annotation's boxes.

    The component masks of a class in a slice are merged by taking the maximum logit.

    Args:
        model: the foundation model.
        image01: ``(D, H, W)`` intensities in ``[0, 1]`` (``D = 1`` for 2D cases).
        label: ``(D, H, W)`` integer annotation.
        values: foreground class values, in the order of the output's class axis.
        embedding_cache: optional on-disk cache of slice embeddings.
        batch_size: annotated slices embedded per encoder forward (the maps do not depend on it).

    Returns:
        :class:`ClassMaps`.
    """
    depth, height, width = label.shape
    probabilities = np.zeros((len(values), depth, height, width), dtype=np.float32)
    prompted = np.zeros((len(values), depth), dtype=bool)
    index_of = {value: i for i, value in enumerate(values)}
    seconds_before = model.seconds_in_model
    slice_prompts = [(d, component_boxes(label[d], values)) for d in range(depth)]
    slice_prompts = [(d, prompts) for d, prompts in slice_prompts if prompts]
    for start in range(0, len(slice_prompts), batch_size):
        chunk = slice_prompts[start:start + batch_size]
        embeddings = slice_embeddings(model, [image01[d] for d, _ in chunk], embedding_cache, batch_size)
        for (d, prompts), embedding in zip(chunk, embeddings):
            predictor = SlicePredictor(model, image01[d], embedding=embedding)
            logits, _ = predictor.predict(boxes=np.array([p.box for p in prompts], dtype=np.float32))
            classes = np.array([index_of[p.value] for p in prompts])
            for c in np.unique(classes):
                merged = logits[torch.from_numpy(classes == c).to(logits.device)].amax(dim=0)
                probabilities[c, d] = torch.sigmoid(merged).cpu().numpy()
                prompted[c, d] = True
    return ClassMaps(probabilities, prompted, model.seconds_in_model - seconds_before)
