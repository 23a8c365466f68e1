"""Foundation-model assisted correction: prompts from napari layers, a slice preview, and applying it.

The pure functions here (no Qt, no viewer) are what the review panel calls:

- :func:`slice_prompts` reads the box (last rectangle) and the positive/negative points of the
  current slice from the prompt layers' data, in slice pixel coordinates.
- :func:`predict_slice` runs :class:`~napari_aleatoric.models.prompting.SlicePredictor` on one
  slice (embedding cached on disk, as during scoring) and returns a boolean mask.
- :func:`apply_changes` decides which annotation pixels applying a preview changes.

Applying a preview for class ``k`` (value ``v``):

- pixels inside the preview mask (and inside the box, when there is one) become ``v`` if they are
  background or already ``v``; pixels of *other* classes are kept unless ``overwrite`` is on;
- with ``replace_in_box`` on, pixels of ``v`` inside the box but outside the mask become background
  (so the class is *replaced* inside the box, not only grown); other classes are never touched.

Nothing outside the current slice (3D) or the box changes. A preview propagated through a volume
(:mod:`..models.propagation`) is applied slice by slice with the same rules, each slice limited to
the box it was predicted with, as one edit (:func:`apply_volume_changes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOX_LAYER = "FM box prompt"
POINTS_LAYER = "FM point prompts"
PREVIEW_LAYER = "FM preview"


@dataclass
class SlicePrompts:
    """Prompts on one slice in that slice's pixel coordinates.

    Attributes:
        box: ``(x0, y0, x1, y1)`` (x = column, y = row) or ``None``.
        points: ``(N, 2)`` ``(x, y)`` points (may be empty).
        point_labels: ``(N,)`` 1 positive, 0 negative.
    """

    box: np.ndarray | None
    points: np.ndarray
    point_labels: np.ndarray

    @property
    def empty(self) -> bool:
        return self.box is None and len(self.points) == 0


def _on_slice(coords: np.ndarray, ndim: int, slice_index: int) -> bool:
    return ndim == 2 or int(round(float(np.mean(coords[:, 0])))) == slice_index


def slice_prompts(shapes: list[np.ndarray], shape_types: list[str], points: np.ndarray,
                  positive: np.ndarray, ndim: int, slice_index: int, image_shape: tuple[int, int]) -> SlicePrompts:
    """Prompts of one slice from the prompt layers' data (data coordinates = image pixels).

    Args:
        shapes: the box layer's shapes (each ``(V, ndim)`` vertices); the last rectangle on the
            slice is the box (for 3D, a rectangle drawn on the slice).
        shape_types: the box layer's shape types.
        points: the points layer's data ``(N, ndim)``.
        positive: ``(N,)`` bool, whether each point is a positive prompt.
        ndim: 2 or 3; ``slice_index``: the slice shown (3D).
        image_shape: ``(H, W)`` of the slice; coordinates are clipped to it.
    """
    height, width = image_shape
    box = None
    for vertices, kind in zip(shapes, shape_types):
        vertices = np.asarray(vertices, dtype=float)
        if kind in ("rectangle", "polygon") and _on_slice(vertices, ndim, slice_index):
            rows, cols = vertices[:, -2], vertices[:, -1]
            box = np.array([np.clip(cols.min(), 0, width - 1), np.clip(rows.min(), 0, height - 1),
                            np.clip(cols.max(), 0, width - 1), np.clip(rows.max(), 0, height - 1)], dtype=np.float32)
    keep = [i for i, p in enumerate(np.asarray(points, dtype=float).reshape(-1, ndim))
            if _on_slice(p[None], ndim, slice_index)]
    pts = np.asarray(points, dtype=float).reshape(-1, ndim)[keep]
    xy = np.stack([np.clip(pts[:, -1], 0, width - 1), np.clip(pts[:, -2], 0, height - 1)], axis=1) if len(pts) else \
        np.zeros((0, 2), dtype=np.float32)
    labels = np.asarray(positive, dtype=bool).reshape(-1)[keep].astype(np.int64) if len(pts) else np.zeros(0, np.int64)
    return SlicePrompts(box=box, points=xy.astype(np.float32), point_labels=labels)


def predict_slice(model, slice01: np.ndarray, prompts: SlicePrompts, embedding_cache=None) -> np.ndarray:
    """The model's mask (logit > 0) for ``prompts`` on an ``(H, W)`` slice in ``[0, 1]``."""
    from ..models.prompting import SlicePredictor  # noqa: PLC0415

    if prompts.empty:
        raise ValueError("draw a box (FM box prompt layer) or add points (FM point prompts layer) first")
    predictor = SlicePredictor(model, slice01, embedding_cache)
    boxes = prompts.box[None] if prompts.box is not None else None
    points = prompts.points[None] if len(prompts.points) else None
    labels = prompts.point_labels[None] if len(prompts.points) else None
    logits, _ = predictor.predict(boxes=boxes, points=points, point_labels=labels)
    return (logits[0] > 0).cpu().numpy()


def box_mask(shape: tuple[int, int], box: np.ndarray | None) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixels inside ``box`` (all pixels when there is no box)."""
    if box is None:
        return np.ones(shape, dtype=bool)
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    inside = np.zeros(shape, dtype=bool)
    inside[max(0, y0):y1 + 1, max(0, x0):x1 + 1] = True
    return inside


def kept_other_classes(annotation: np.ndarray, mask: np.ndarray, value: int, box: np.ndarray | None = None) -> int:
    """Pixels of the preview ``mask`` (inside ``box``) drawn as another class: what applying without
    ``overwrite`` keeps, so the user can be told why fewer pixels changed than the preview shows."""
    return int((mask & box_mask(annotation.shape, box) & (annotation != 0) & (annotation != value)).sum())


def apply_changes(annotation: np.ndarray, mask: np.ndarray, value: int, *, overwrite: bool = False,
                  box: np.ndarray | None = None, replace_in_box: bool = False
                  ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Pixels of an ``(H, W)`` annotation slice that applying ``mask`` as class ``value`` changes.

    Returns:
        ``((rows, cols), new_values)`` of the changed pixels only (see the module docstring).
    """
    inside = box_mask(annotation.shape, box)
    region = mask & inside
    allowed = np.ones_like(region) if overwrite else ((annotation == 0) | (annotation == value))
    set_mask = region & allowed & (annotation != value)
    clear_mask = (inside & ~mask & (annotation == value)) if replace_in_box else np.zeros_like(region)
    rows_set, cols_set = np.nonzero(set_mask)
    rows_clear, cols_clear = np.nonzero(clear_mask)
    rows = np.concatenate([rows_set, rows_clear])
    cols = np.concatenate([cols_set, cols_clear])
    values = np.concatenate([np.full(len(rows_set), value), np.zeros(len(rows_clear))]).astype(annotation.dtype)
    return (rows, cols), values


def apply_volume_changes(annotation: np.ndarray, masks: np.ndarray, boxes: dict[int, np.ndarray | None],
                         value: int, *, overwrite: bool = False, replace_in_box: bool = False
                         ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray, int]:
    """:func:`apply_changes` on every slice of a propagated preview, as one edit.

    Args:
        annotation: ``(Z, H, W)`` annotation.
        masks: ``(Z, H, W)`` bool preview (a :class:`~napari_aleatoric.models.propagation.Propagation`'s masks).
        boxes: the slices to write, each with its prompt box (``None``: no box limit on that slice).
        value / overwrite / replace_in_box: as for :func:`apply_changes`, on each slice.

    Returns:
        ``((slices, rows, cols), new_values, kept)``: the changed voxels and how many preview voxels
        were kept because they are drawn as another class (:func:`kept_other_classes`).
    """
    parts_z, parts_r, parts_c, parts_v, kept = [], [], [], [], 0
    for index in sorted(boxes):
        box = boxes[index]
        slice_data = annotation[index]
        if not overwrite:
            kept += kept_other_classes(slice_data, masks[index], value, box)
        (rows, cols), values = apply_changes(slice_data, masks[index], value, overwrite=overwrite, box=box,
                                             replace_in_box=replace_in_box)
        parts_z.append(np.full(len(rows), index, dtype=np.intp))
        parts_r.append(rows)
        parts_c.append(cols)
        parts_v.append(values)
    if not parts_z:
        empty = np.zeros(0, dtype=np.intp)
        return (empty, empty, empty), np.zeros(0, dtype=annotation.dtype), 0
    return ((np.concatenate(parts_z), np.concatenate(parts_r), np.concatenate(parts_c)),
            np.concatenate(parts_v).astype(annotation.dtype), kept)
