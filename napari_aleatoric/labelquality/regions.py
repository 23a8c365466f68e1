"""How much of a case looks wrongly labelled, and where: contradicted pixels and their worst region."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .scores import CONTRADICTED_BELOW, annotated_class_probability, judged


@dataclass
class WrongRegions:
    """The contradicted pixels of a case (annotated class given ``q < 0.5``, drawn or background).

    Attributes:
        voxels: how many pixels (voxels) are contradicted.
        size: their area in mm² (2D) or volume in mm³ (3D), from the spacing.
        per_class: ``(C,)`` contradicted pixels drawn or predicted (argmax of ``q``) as each class.
        worst_voxels: pixels of the largest connected contradicted region (0 when none).
        worst_center: ``(slice, row, column)`` of that region's centre, in the case's ``(D, H, W)``
            index space (rounded), or ``None``.
    """

    voxels: int = 0
    size: float = 0.0
    per_class: np.ndarray = field(default_factory=lambda: np.zeros(0))
    worst_voxels: int = 0
    worst_center: tuple[int, int, int] | None = None


def wrong_regions(probabilities: np.ndarray, index: np.ndarray, spacing: tuple[float, ...],
                  seen: np.ndarray | None = None) -> WrongRegions:
    """Count and locate the pixels whose annotation the out-of-fold model contradicts.

    Connected regions are 26-connected in 3D (8 in 2D). Pixels of a class the fold never saw are
    not counted (:func:`~.scores.judged`).

    Args:
        probabilities: ``(K, D, H, W)`` out-of-fold class probabilities, ``K = C + 1``.
        index: ``(D, H, W)`` class index of the annotation.
        spacing: pixel size in mm, ``(row, column)`` for a 2D case or ``(slice, row, column)``.
        seen: ``(K,)`` bool classes seen in training, or ``None`` (all).
    """
    contradicted = (annotated_class_probability(probabilities, index) < CONTRADICTED_BELOW) & judged(index, seen)
    predicted = probabilities.argmax(axis=0)
    per_class = np.array([int((contradicted & ((index == k) | (predicted == k))).sum())
                          for k in range(1, probabilities.shape[0])])
    voxels = int(contradicted.sum())
    result = WrongRegions(voxels, voxels * float(math.prod(spacing)), per_class)
    if voxels:
        structure = np.ones((3, 3, 3), bool)
        if index.shape[0] == 1:  # a 2D case: neighbours within the slice only
            structure[[0, 2]] = False
        regions, _count = ndimage.label(contradicted, structure=structure)
        sizes = np.bincount(regions.ravel())
        sizes[0] = 0
        worst = int(sizes.argmax())
        result.worst_voxels = int(sizes[worst])
        center = ndimage.center_of_mass(regions == worst)
        result.worst_center = tuple(int(round(c)) for c in center)
    return result
