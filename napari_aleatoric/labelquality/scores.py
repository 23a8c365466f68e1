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


def judged(index: np.ndarray, seen: np.ndarray | None) -> np.ndarray:
    """``(D, H, W)`` bool: pixels whose annotated class the fold's classifier was trained on.

    A class the other folds never contain (a rare class present in this case only) gets
    probability 0 everywhere; its pixels cannot be judged, and counting them would flag the case
    only because its class is rare (and blame the neighbouring class too).

    Args:
        index: ``(D, H, W)`` class index of the annotation.
        seen: ``(K,)`` bool classes seen in training, or ``None`` (all).
    """
    return np.ones(index.shape, bool) if seen is None else np.asarray(seen, bool)[index]


def issue_maps(probabilities: np.ndarray, index: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
    """Per-class label-issue map: how strongly the learned model disagrees with the annotation.

    For class ``c`` the map is ``1 − q_c`` where the annotation says ``c`` (it may not be ``c``) and
    ``q_c`` elsewhere (it may be ``c``), i.e. ``|1[label = c] − q_c|`` in ``[0, 1]``; 0 where the
    pixel cannot be judged (:func:`judged`) and for a class the fold never saw.

    Args:
        probabilities: ``(K, D, H, W)`` out-of-sample class probabilities, ``K = C + 1``.
        index: ``(D, H, W)`` class index of the annotation.
        seen: ``(K,)`` bool classes the fold's classifier was trained on (``None``: all).

    Returns:
        ``(C, D, H, W)`` float32, one map per foreground class.
    """
    n_classes = probabilities.shape[0]
    maps = np.zeros((n_classes - 1,) + index.shape, np.float32)
    known = judged(index, seen)
    for k in range(1, n_classes):
        if seen is None or seen[k]:
            maps[k - 1] = np.where(known, np.abs((index == k).astype(np.float32) - probabilities[k]), 0.0)
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


#: A class drawn with fewer judged pixels (voxels) than this in a case gets no contradicted share
#: there: a structure's tip at the edge of a crop (3 voxels of kidney, all contradicted) would
#: otherwise read "100 % wrong" and flag a clean case. Below the smallest error the benchmarks plant
#: (30 voxels); the class's label-issue score still pools those pixels (docs/label_quality.md).
MIN_SHARE_PIXELS = 20


def class_contradicted_shares(contradicted: np.ndarray, index: np.ndarray, n_classes: int,
                              known: np.ndarray | None = None) -> np.ndarray:
    """Per-class contradicted shares: for each foreground class, the share of its drawn (and
    judged) pixels that are contradicted; NaN where fewer than :data:`MIN_SHARE_PIXELS` are drawn.

    Args:
        contradicted: ``(D, H, W)`` bool, pixels whose annotated class the model doubts.
        index: ``(D, H, W)`` class index of the annotation.
        n_classes: ``K = C + 1``, background included.
        known: ``(D, H, W)`` bool pixels that can be judged (``None``: all).

    Returns:
        ``(C,)`` float64 in ``[0, 1]`` or NaN.
    """
    per_class = np.full(n_classes - 1, math.nan)
    for k in range(1, n_classes):
        drawn = index == k if known is None else (index == k) & known
        if np.count_nonzero(drawn) >= MIN_SHARE_PIXELS:
            per_class[k - 1] = float(contradicted[drawn].mean())
    return per_class


def contradicted_shares(probabilities: np.ndarray, index: np.ndarray,
                        seen: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Case and per-class *contradicted shares*: the share of the *drawn* annotation that the learned
    label-quality model contradicts (``q_y <`` :data:`CONTRADICTED_BELOW`).

    A number a person can read ("12 % of what was drawn looks wrong") that does not depend on how
    much background the image has, and the training filter's criterion. It does not see missing
    annotation (an eroded outline, a left-out structure: what was drawn is right), so it does not
    order the queue (:func:`label_issue_scores` does; docs/label_quality.md).

    Args:
        probabilities: ``(K, D, H, W)`` out-of-sample class probabilities, ``K = C + 1``.
        index: ``(D, H, W)`` class index of the annotation.
        seen: ``(K,)`` bool classes the fold's classifier was trained on (``None``: all); the
            pixels of the others are not counted (:func:`judged`).

    Returns:
        ``(case share, (C,) per-class shares)`` in ``[0, 1]``, higher = more likely mislabelled.
        A class that is not drawn, cannot be judged, or is drawn with fewer than
        :data:`MIN_SHARE_PIXELS` pixels scores NaN (:func:`class_contradicted_shares`); the case
        share is NaN only when nothing drawn can be judged.
    """
    contradicted = annotated_class_probability(probabilities, index) < CONTRADICTED_BELOW
    known = judged(index, seen)
    per_class = class_contradicted_shares(contradicted, index, probabilities.shape[0], known)
    drawn = (index > 0) & known
    return (float(contradicted[drawn].mean()) if drawn.any() else math.nan), per_class


#: Temperature of the softmin pooling (cleanlab's default): lower = closer to the worst pixel.
SOFTMIN_TEMPERATURE = 0.1


def softmin_quality(pixel_quality: np.ndarray, temperature: float = SOFTMIN_TEMPERATURE) -> float:
    """Softmin pooling of per-pixel label quality into one number (cleanlab's ``softmin``).

    ``Σ s_i · w_i`` with ``w = softmax((1 − s) / T)``: a weighted mean dominated by the worst pixels,
    so a small confidently wrong region lowers it while the many uncertain boundary pixels of a
    correct annotation do not.

    Args:
        pixel_quality: per-pixel probability of the annotated class, any shape, values in ``[0, 1]``.
        temperature: ``T``.

    Returns:
        quality in ``[0, 1]`` (NaN for an empty input); 1 − quality is the label-issue score.
    """
    s = np.asarray(pixel_quality, np.float64).ravel()
    if s.size == 0:
        return math.nan
    logits = (1.0 - s) / temperature
    weights = np.exp(logits - logits.max())
    return float(np.dot(s, weights) / weights.sum())


def label_issue_scores(probabilities: np.ndarray, index: np.ndarray,
                       seen: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Case and per-class label-issue scores, the queue's order: ``1 − softmin`` of ``q_y``.

    The case score pools every pixel, so a confidently missed structure (annotated background the
    model calls foreground) counts as much as a wrongly drawn one; the score of class ``c`` pools
    the pixels annotated ``c`` or predicted ``c`` (argmax). Chosen over the contradicted share and
    three other poolings by the worst AUROC over five tuning sets (docs/label_quality.md).

    Args:
        probabilities: ``(K, D, H, W)`` out-of-sample class probabilities, ``K = C + 1``.
        index: ``(D, H, W)`` class index of the annotation.
        seen: ``(K,)`` bool classes the fold's classifier was trained on (``None``: all); the
            pixels of the others are not pooled (:func:`judged`).

    Returns:
        ``(case score, (C,) per-class scores)`` in ``[0, 1]``, higher = more likely mislabelled;
        NaN for a class that is neither annotated nor predicted, or that cannot be judged.
    """
    given = annotated_class_probability(probabilities, index)
    predicted = probabilities.argmax(axis=0)
    known = judged(index, seen)
    per_class = np.full(probabilities.shape[0] - 1, math.nan)
    for k in range(1, probabilities.shape[0]):
        involved = ((index == k) | (predicted == k)) & known
        if (seen is None or seen[k]) and involved.any():
            per_class[k - 1] = 1.0 - softmin_quality(given[involved])
    return 1.0 - softmin_quality(given[known]), per_class
