"""Box prompts from an annotation: one box per connected component of each class in a slice.

One box around many objects wrecks a SAM mask, so every connected component of a class gets its
own box (``docs/method.md`` §5). Components smaller than ``min_area`` pixels are ignored, and at
most ``max_components`` (the largest) are prompted per class and slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

MIN_COMPONENT_AREA_PX = 9
MAX_COMPONENTS = 24
BOX_PADDING_FRACTION = 0.05
BOX_PADDING_MIN_PX = 2


@dataclass(frozen=True)
class BoxPrompt:
    """A box ``(x0, y0, x1, y1)`` in slice pixels (x = column, y = row) for class ``value``."""

    value: int
    box: tuple[float, float, float, float]


def component_boxes(
    label_slice: np.ndarray,
    values: list[int],
    min_area: int = MIN_COMPONENT_AREA_PX,
    max_components: int = MAX_COMPONENTS,
) -> list[BoxPrompt]:
    """Padded bounding boxes of each class's connected components in one ``(H, W)`` label slice.

    Args:
        label_slice: ``(H, W)`` integer labels.
        values: class values to prompt (foreground only).
        min_area: smallest component, in pixels, that gets a box.
        max_components: most boxes per class (largest components first).

    Returns:
        Box prompts, grouped by class in the order of ``values``.
    """
    height, width = label_slice.shape
    prompts: list[BoxPrompt] = []
    for value in values:
        components, count = ndimage.label(label_slice == value)
        if count == 0:
            continue
        areas = np.bincount(components.ravel(), minlength=count + 1)[1:]
        order = [i for i in np.argsort(-areas) if areas[i] >= min_area][:max_components]
        slices = ndimage.find_objects(components)
        for index in order:
            rows, cols = slices[index]
            pad_y = max(BOX_PADDING_MIN_PX, BOX_PADDING_FRACTION * (rows.stop - rows.start))
            pad_x = max(BOX_PADDING_MIN_PX, BOX_PADDING_FRACTION * (cols.stop - cols.start))
            box = (
                float(max(0.0, cols.start - pad_x)),
                float(max(0.0, rows.start - pad_y)),
                float(min(width - 1.0, cols.stop - 1 + pad_x)),
                float(min(height - 1.0, rows.stop - 1 + pad_y)),
            )
            prompts.append(BoxPrompt(int(value), box))
    return prompts
