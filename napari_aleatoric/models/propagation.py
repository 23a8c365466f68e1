"""Propagating a box or point prompt through the neighbouring slices of a volume.

From the mask the model predicts on the prompted (*seed*) slice, :func:`propagate` walks up the
volume, then down: each next slice is prompted with the box of the previous slice's mask, enlarged
a little (:func:`enlarge_box`), and the mask is kept inside that box. The walk in a direction stops
at the volume's edge or where the mask vanishes: fewer pixels than ``min_fraction`` of the seed
mask (at least one pixel).

A box-prompted SAM-like model seldom returns an empty mask: on the synthetic CT sample LiteMedSAM
finds 10–40 pixels in the box on every slice past the kidney's end, so there the walk runs to the
volume's edge (the preview shows it; the GUI's Stop and Apply's per-slice preview let the user
judge). A stronger stop rule (the decoder's predicted IoU, overlap with the previous slice) needs
real volumes to calibrate.

The walk is a generator: it yields one :class:`SlicePropagated` per slice predicted (the seed
first), so a GUI can show the masks as they come and stop the walk between slices, and it returns
the :class:`Propagation` (``(Z, H, W)`` masks, the boxes used and the slice range).

No Qt here. :func:`propagate_prompts` builds the per-slice predictor from a foundation model: every
slice's embedding is read from the embedding cache when the scoring run (or an earlier preview)
stored it, the same cache the assisted preview uses.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

#: default share of the seed mask's area below which a slice's mask counts as vanished
MIN_FRACTION = 0.05
#: default enlargement of each side of the box, as a share of the box's width / height
MARGIN = 0.1
#: at least this many pixels of enlargement per side
MIN_MARGIN_PIXELS = 2

#: ``predict(slice_index, box)`` → ``(H, W)`` bool mask; ``box`` is ``(x0, y0, x1, y1)`` in slice pixels
BoxPredictor = Callable[[int, np.ndarray], np.ndarray]


@dataclass
class SlicePropagated:
    """Progress: the mask of one slice was predicted (and kept: it did not vanish).

    Attributes:
        slice: the slice index (axis 0).
        mask: ``(H, W)`` bool mask of that slice.
        box: the prompt box ``(x0, y0, x1, y1)`` (the user's box on the seed slice, or ``None``).
        direction: ``0`` the seed slice, ``+1`` walking up (higher indices), ``-1`` down.
        slices_done: slices kept so far, this one included.
    """

    slice: int
    mask: np.ndarray
    box: np.ndarray | None
    direction: int
    slices_done: int


@dataclass
class Propagation:
    """The result of :func:`propagate`.

    Attributes:
        masks: ``(Z, H, W)`` bool, the kept masks (``False`` outside ``first..last``).
        boxes: per kept slice, the prompt box it was predicted with (``None``: points only, seed).
        seed: the prompted slice.
        first / last: the slice range covered (inclusive).
        stopped: per direction (``+1`` / ``-1``) why the walk stopped: ``"edge"``, ``"vanished"``
            or ``"limit"`` (``max_slices``); the seed mask itself empty: both ``"vanished"``.
    """

    masks: np.ndarray
    boxes: dict[int, np.ndarray | None]
    seed: int
    first: int
    last: int
    stopped: dict[int, str] = field(default_factory=dict)

    @property
    def slices(self) -> range:
        """The slice indices covered, in order."""
        return range(self.first, self.last + 1)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """``(x0, y0, x1, y1)`` bounding box of a ``(H, W)`` mask (``None`` when empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.float32)


def enlarge_box(box: np.ndarray, shape: tuple[int, int], margin: float = MARGIN,
                min_pixels: int = MIN_MARGIN_PIXELS) -> np.ndarray:
    """``box`` grown on each side by ``margin`` of its size (at least ``min_pixels``), clipped to ``shape``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    grow_x = max(float(min_pixels), margin * (x1 - x0 + 1))
    grow_y = max(float(min_pixels), margin * (y1 - y0 + 1))
    height, width = shape
    return np.array([max(0.0, x0 - grow_x), max(0.0, y0 - grow_y),
                     min(width - 1.0, x1 + grow_x), min(height - 1.0, y1 + grow_y)], dtype=np.float32)


def inside_box(shape: tuple[int, int], box: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: the pixels inside ``box`` (bounds included, rounded)."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    inside = np.zeros(shape, dtype=bool)
    inside[max(0, y0):y1 + 1, max(0, x0):x1 + 1] = True
    return inside


def propagate(predict: BoxPredictor, seed_mask: np.ndarray, seed_slice: int, depth: int, *,
              seed_box: np.ndarray | None = None, min_fraction: float = MIN_FRACTION, margin: float = MARGIN,
              max_slices: int | None = None) -> Generator[SlicePropagated, None, Propagation]:
    """Walk from the seed slice's mask up and down the volume (see the module docstring).

    Args:
        predict: ``predict(slice_index, box)`` → ``(H, W)`` bool mask of the model prompted with ``box``.
        seed_mask: ``(H, W)`` bool mask on the prompted slice.
        seed_slice: its index; ``depth``: the number of slices of the volume.
        seed_box: the user's box on the seed slice (kept with the result), or ``None``.
        min_fraction: a mask with fewer pixels than this share of the seed mask has vanished.
        margin: box enlargement per side, as a share of the box's size.
        max_slices: at most this many slices each way (``None``: to the edge).

    Yields:
        :class:`SlicePropagated` for the seed slice and each slice kept, in the order predicted.

    Returns:
        the :class:`Propagation`.
    """
    seed_mask = np.asarray(seed_mask, dtype=bool)
    if not 0 <= seed_slice < depth:
        raise ValueError(f"seed slice {seed_slice} is outside the volume's {depth} slices")
    shape = seed_mask.shape
    masks = np.zeros((depth, *shape), dtype=bool)
    result = Propagation(masks, {}, seed_slice, seed_slice, seed_slice)
    area = int(seed_mask.sum())
    if area == 0:
        result.stopped = {+1: "vanished", -1: "vanished"}
        return result
    masks[seed_slice] = seed_mask
    result.boxes[seed_slice] = None if seed_box is None else np.asarray(seed_box, dtype=np.float32)
    done = 1
    yield SlicePropagated(seed_slice, seed_mask, result.boxes[seed_slice], 0, done)
    least = max(1, int(np.ceil(min_fraction * area)))
    for direction in (+1, -1):
        previous, index, steps = seed_mask, seed_slice + direction, 0
        while True:
            if not 0 <= index < depth:
                result.stopped[direction] = "edge"
                break
            if max_slices is not None and steps >= max_slices:
                result.stopped[direction] = "limit"
                break
            box = enlarge_box(mask_box(previous), shape, margin)
            mask = np.asarray(predict(index, box), dtype=bool) & inside_box(shape, box)
            if int(mask.sum()) < least:
                result.stopped[direction] = "vanished"
                break
            masks[index], result.boxes[index] = mask, box
            result.first, result.last = min(result.first, index), max(result.last, index)
            done += 1
            yield SlicePropagated(index, mask, box, direction, done)
            previous, index, steps = mask, index + direction, steps + 1
    return result


def model_box_predictor(model, volume01: np.ndarray, embedding_cache=None) -> BoxPredictor:
    """``predict(slice_index, box)`` for :func:`propagate`: the foundation model on one slice of
    ``volume01`` (``(Z, H, W)`` in ``[0, 1]``), its embedding from ``embedding_cache`` when stored."""
    from .prompting import SlicePredictor  # noqa: PLC0415 (torch only when a model runs)

    def predict(index: int, box: np.ndarray) -> np.ndarray:
        predictor = SlicePredictor(model, volume01[index], embedding_cache)
        logits, _ = predictor.predict(boxes=np.asarray(box, dtype=np.float32)[None])
        return (logits[0] > 0).cpu().numpy()

    return predict


def propagate_prompts(model, volume01: np.ndarray, seed_slice: int, *, box: np.ndarray | None = None,
                      points: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                      seed_mask: np.ndarray | None = None, embedding_cache=None, **options
                      ) -> Generator[SlicePropagated, None, Propagation]:
    """:func:`propagate` with a foundation model, from the user's prompts on ``seed_slice``.

    Args:
        model: the foundation model.
        volume01: ``(Z, H, W)`` intensities in ``[0, 1]``.
        seed_slice: the prompted slice.
        box: ``(x0, y0, x1, y1)`` prompt box on that slice, or ``None``.
        points / point_labels: ``(N, 2)`` ``(x, y)`` points and ``(N,)`` 1 positive / 0 negative.
        seed_mask: the seed slice's mask when already predicted (the preview), else it is predicted
            here from the prompts.
        embedding_cache: the dataset's embedding cache (:class:`~..data.arraycache.ArrayCache`) or ``None``.
        options: :func:`propagate`'s keyword options.
    """
    if seed_mask is None:
        from .prompting import SlicePredictor  # noqa: PLC0415

        if box is None and (points is None or not len(points)):
            raise ValueError("propagation needs a box or points on the seed slice")
        predictor = SlicePredictor(model, volume01[seed_slice], embedding_cache)
        has_points = points is not None and len(points)
        logits, _ = predictor.predict(
            boxes=None if box is None else np.asarray(box, dtype=np.float32)[None],
            points=np.asarray(points, dtype=np.float32)[None] if has_points else None,
            point_labels=np.asarray(point_labels, dtype=np.int64)[None] if has_points else None)
        seed_mask = (logits[0] > 0).cpu().numpy()
        if box is not None:
            seed_mask &= inside_box(seed_mask.shape, box)
    elif box is not None:
        seed_mask = np.asarray(seed_mask, dtype=bool) & inside_box(seed_mask.shape, box)
    predict = model_box_predictor(model, volume01, embedding_cache)
    return (yield from propagate(predict, seed_mask, seed_slice, len(volume01), seed_box=box, **options))
