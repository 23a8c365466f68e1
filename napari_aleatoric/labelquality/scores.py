"""From out-of-sample class probabilities and the annotation to label-issue maps and scores."""

from __future__ import annotations

import math

import numpy as np


def label_index(label: np.ndarray, values: list[int]) -> np.ndarray:
    """Class index per pixel: 0 background, ``i + 1`` for ``values[i]``.

    Args:
        label: ``(D, H, W)`` annotation with the dataset's label values.
        values: foreground label values in dataset order.
    """
    index = np.zeros(label.shape, np.int64)
    for i, value in enumerate(values, start=1):
        index[label == value] = i
    return index


def issue_maps(probabilities: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per-class label-issue map: how strongly the learned model disagrees with the annotation.

    For class ``c`` the map is ``1 − q_c`` where the annotation says ``c`` (it may not be ``c``) and
    ``q_c`` elsewhere (it may be ``c``), i.e. ``|1[label = c] − q_c|`` in ``[0, 1]``.

    Args:
        probabilities: ``(K, D, H, W)`` out-of-sample class probabilities, ``K = C + 1``.
        index: ``(D, H, W)`` class index of the annotation.

    Returns:
        ``(C, D, H, W)`` float32, one map per foreground class.
    """
    n_classes = probabilities.shape[0]
    maps = np.empty((n_classes - 1,) + index.shape, np.float32)
    for k in range(1, n_classes):
        maps[k - 1] = np.abs((index == k).astype(np.float32) - probabilities[k])
    return maps


#: A drawn pixel is *contradicted* when the out-of-fold probability of its annotated class is
#: below this (the class the rest of the dataset implies is another one).
CONTRADICTED_BELOW = 0.5


def annotated_class_probability(probabilities: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``q_y``: the out-of-fold probability of each pixel's annotated class.

    Args:
        probabilities: ``(K, D, H, W)`` class probabilities, ``K = C + 1``.
        index: ``(D, H, W)`` class index of the annotation.

    Returns:
        ``(D, H, W)`` in ``[0, 1]``.
    """
    return np.take_along_axis(probabilities, index[None].astype(np.int64), axis=0)[0]


def contradicted_shares(probabilities: np.ndarray, index: np.ndarray) -> tuple[float, np.ndarray]:
    """Case and per-class label-issue scores: the share of the *drawn* annotation that the learned
    label-quality model contradicts (``q_y <`` :data:`CONTRADICTED_BELOW`).

    A number a person can read ("12 % of what was drawn looks wrong") that does not depend on how
    much background the image has. Annotated background is not counted: where most cases share an
    error (organs outlined too generously), the model contradicts the background around every
    organ, clean cases included. On the noisy-label benchmark's tuning data it separated corrupted
    from clean cases with an AUROC of 0.986 (2D MRI) and 0.828 (3D CT), against 0.753 and 0.818 for
    the softmin pooling it replaced (docs/label_quality.md).

    Args:
        probabilities: ``(K, D, H, W)`` out-of-sample class probabilities, ``K = C + 1``.
        index: ``(D, H, W)`` class index of the annotation.

    Returns:
        ``(case score, (C,) per-class scores)`` in ``[0, 1]``, higher = more likely mislabelled.
        A class that is not drawn scores NaN. A case with nothing drawn scores 1 where the model
        finds foreground (something was missed) and 0 where it finds none.
    """
    contradicted = annotated_class_probability(probabilities, index) < CONTRADICTED_BELOW
    per_class = np.full(probabilities.shape[0] - 1, math.nan)
    for k in range(1, probabilities.shape[0]):
        drawn = index == k
        if drawn.any():
            per_class[k - 1] = float(contradicted[drawn].mean())
    drawn = index > 0
    if not drawn.any():
        return float(contradicted.any()), per_class
    return float(contradicted[drawn].mean()), per_class
