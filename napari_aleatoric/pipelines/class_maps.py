"""Decoded class maps of one case: the foundation model prompted with the annotation's boxes, and
the segmentation they imply (:func:`fm_segmentation`, what the viewer shows and the export writes)."""

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


def fm_segmentation(probabilities: np.ndarray, class_values: list[int]) -> np.ndarray:
    """The foundation model's segmentation: the class value of the most probable class where its p > 0.5.

    Ties go to the first class (as ``argmax``); where no class is above 0.5 the value is 0. Computed
    one class and a few slices at a time: an ``argmax`` over the class axis of a float volume took
    about a second for 3 × 100 × 256² voxels.

    Args:
        probabilities: ``(C, H, W)`` or ``(C, D, H, W)`` per-class probabilities in ``[0, 1]`` (for example the cached
            ``(C, D, H, W)`` float16 maps), one map per foreground class.
        class_values: the label value of each class (the dataset's values, in the maps' class order).

    Returns:
        ``probabilities.shape[1:]`` label map (``(H, W)`` or ``(D, H, W)``), uint8 when every value
        is below 256, else int32.
    """
    dtype = np.uint8 if max(class_values, default=0) < 256 else np.int32
    spatial = probabilities.shape[1:]
    maps = probabilities.reshape(len(probabilities), -1, *spatial[-2:])
    segmentation = np.zeros(maps.shape[1:], dtype=dtype)
    if not len(class_values):
        return segmentation.reshape(spatial)
    # a few slices at a time, so that the temporaries stay in the CPU cache
    step = max(1, 2**19 // max(1, maps.shape[-2] * maps.shape[-1]))
    for start in range(0, maps.shape[1], step):
        slab = slice(start, start + step)
        best = maps[0, slab].astype(np.float32)
        out = segmentation[slab]
        out[best > 0.5] = class_values[0]
        for value, probability in zip(class_values[1:], maps[1:, slab]):
            probability = probability.astype(np.float32)
            better = probability > best
            np.maximum(best, probability, out=best)
            out[better & (probability > 0.5)] = value
    return segmentation.reshape(spatial)
