"""The most contradicted *structure* of a volume: a connected piece of one class's annotation.

A planted blob or a swapped patch is a separate connected piece of its class that the label-quality
model contradicts almost entirely, while the class's share over the whole case mixes it with the
class's real structure (a 49-voxel tumour blob next to a 500-voxel tumour reads 13 %). In a volume
a connected component of one class is an anatomical structure or a whole piece of one; in a single
2D section it is not (a section cuts the cortex into many small pieces, and the worst of many is
often a thin contradicted sliver), so single slices have none (docs/label_quality.md, "Flag, sixth
round").

A dilation grows a structure into its neighbour: the voxels it adds lie on the structure's
*outline* (its outer rim, in each slice), while the whole structure's share stays low because its
correct bulk dominates. :func:`worst_outline_share` reads the rim alone (docs/label_quality.md,
"Flag, seventh round").
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .scores import CONTRADICTED_BELOW, MIN_SHARE_PIXELS, annotated_class_probability, judged


def worst_structure_share(probabilities: np.ndarray, index: np.ndarray, seen: np.ndarray | None = None) -> float:
    """The largest contradicted share over the case's structures.

    A structure is a connected component (face neighbours, 3D) of the judged voxels drawn as one
    foreground class, with at least :data:`~.scores.MIN_SHARE_PIXELS` voxels; its share is that of
    its voxels whose annotated class has ``q <`` :data:`~.scores.CONTRADICTED_BELOW`.

    Args:
        probabilities: ``(K, D, H, W)`` out-of-sample class probabilities, ``K = C + 1``.
        index: ``(D, H, W)`` class index of the annotation (0 background).
        seen: ``(K,)`` bool classes the fold's classifier was trained on (``None``: all); the
            others have no structures (:func:`~.scores.judged`).

    Returns:
        A share in ``[0, 1]``; NaN for a single slice (``D == 1``) or when no structure has enough
        voxels.
    """
    if index.ndim != 3 or index.shape[0] < 2:
        return math.nan
    shares = piece_shares(probabilities, index, seen)
    return float(max(shares)) if shares else math.nan


#: The outline of a structure: its voxels within this many pixels of the structure's edge in their
#: slice (in-plane face steps, so a diamond of this radius).
OUTLINE_WIDTH = 2
#: Structures with fewer voxels than this have no outline share: in a small one the rim is
#: nearly all of it, and :func:`worst_structure_share` reads it already.
MIN_OUTLINE_STRUCTURE = 100


def worst_outline_share(probabilities: np.ndarray, index: np.ndarray, seen: np.ndarray | None = None) -> float:
    """The largest contradicted share over the outlines of the case's structures.

    A structure is as in :func:`worst_structure_share`, with at least
    :data:`MIN_OUTLINE_STRUCTURE` voxels; its outline is its voxels within :data:`OUTLINE_WIDTH`
    pixels of its edge in their slice (a voxel whose in-plane neighbourhood of that radius leaves the
    structure), counted when it has at least :data:`~.scores.MIN_SHARE_PIXELS` voxels.

    Args:
        probabilities: ``(K, D, H, W)`` out-of-sample class probabilities, ``K = C + 1``.
        index: ``(D, H, W)`` class index of the annotation (0 background).
        seen: ``(K,)`` bool classes the fold's classifier was trained on (``None``: all).

    Returns:
        A share in ``[0, 1]``; NaN for a single slice (``D == 1``) or when no structure qualifies.
    """
    if index.ndim != 3 or index.shape[0] < 2:
        return math.nan
    contradicted = annotated_class_probability(probabilities, index) < CONTRADICTED_BELOW
    known = judged(index, seen)
    in_plane = ndimage.generate_binary_structure(2, 1)[None]  # (1, 3, 3): erodes each slice alone
    worst = math.nan
    for k in range(1, probabilities.shape[0]):
        drawn = (index == k) & known
        if np.count_nonzero(drawn) < MIN_OUTLINE_STRUCTURE:
            continue
        pieces, count = ndimage.label(drawn)
        # Eroding the class at once equals eroding each piece: two pieces never touch in a slice.
        outline = drawn & ~ndimage.binary_erosion(drawn, in_plane, iterations=OUTLINE_WIDTH)
        sizes = np.bincount(pieces.ravel(), minlength=count + 1)[1:]
        rim = np.bincount(pieces[outline], minlength=count + 1)[1:]
        doubted = np.bincount(pieces[outline & contradicted], minlength=count + 1)[1:]
        usable = (sizes >= MIN_OUTLINE_STRUCTURE) & (rim >= MIN_SHARE_PIXELS)
        if usable.any():
            worst = np.nanmax([worst, float(np.max(doubted[usable] / rim[usable]))])
    return float(worst)


def piece_shares(probabilities: np.ndarray, index: np.ndarray, seen: np.ndarray | None = None) -> list[float]:
    """The contradicted share of every connected piece (face neighbours) of one judged class's
    drawing with at least :data:`~.scores.MIN_SHARE_PIXELS` pixels, in any dimensionality: in a
    single slice its pieces are 2D (which :func:`worst_structure_share` does not use; the
    diagnostics do, to show why). Arguments as :func:`worst_structure_share`."""
    contradicted = annotated_class_probability(probabilities, index) < CONTRADICTED_BELOW
    known = judged(index, seen)
    shares = []
    for k in range(1, probabilities.shape[0]):
        drawn = (index == k) & known
        if np.count_nonzero(drawn) < MIN_SHARE_PIXELS:
            continue
        pieces, count = ndimage.label(drawn)
        sizes = np.bincount(pieces.ravel(), minlength=count + 1)[1:]
        doubted = np.bincount(pieces.ravel(), weights=contradicted.ravel(), minlength=count + 1)[1:]
        large = sizes >= MIN_SHARE_PIXELS
        shares.extend((doubted[large] / sizes[large]).tolist())
    return shares
