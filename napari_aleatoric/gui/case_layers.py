"""The review panel's case layers in the viewer: show a case (layers reused by name), order, remove, the title.

The layer names stay the same from case to case (``image``, ``annotation``, ``label issue: <class>``,
``FM segmentation``; the panels and scripts look layers up by them); what case they show is in
each layer's ``metadata["case_id"]`` and in the viewer's title (:func:`viewer_title`).
"""

from __future__ import annotations

import numpy as np

from . import assist
from .case_view import ANNOTATION, FM_SEGMENTATION, IMAGE, CaseView, case_layer_data, is_heatmap_layer

#: layer attributes updated when a layer is reused for another case (others keep the user's choice)
REUSE_ATTRIBUTES = {
    "image": ("scale", "contrast_limits", "metadata"),
    "labels": ("scale", "colormap", "features", "metadata"),
}
#: the prompt layers of assisted correction (they belong to the case shown too)
PROMPT_LAYERS = (assist.BOX_LAYER, assist.POINTS_LAYER, assist.PREVIEW_LAYER)
TITLE_SUFFIX = "napari-aleatoric"


def same_setting(layer, attribute: str, value) -> bool:
    """Whether a reused layer already has this setting (napari updates and re-slices on every set)."""
    try:
        current = getattr(layer, attribute)
        if attribute in ("scale", "contrast_limits"):
            return np.array_equal(np.asarray(current, dtype=float), np.asarray(value, dtype=float))
        if attribute == "colormap":
            mine, theirs = getattr(current, "color_dict", None), getattr(value, "color_dict", None)
            return mine is not None and theirs is not None and mine.keys() == theirs.keys() and \
                all(np.array_equal(np.asarray(mine[k]), np.asarray(theirs[k])) for k in mine)
        if attribute == "features":
            return list(current.columns) == list(value) and \
                all(list(current[k]) == list(value[k]) for k in value)
    except (TypeError, ValueError, AttributeError, KeyError):
        return False
    return False  # metadata and anything else: always set (cheap)


def put_layer(viewer, data, kwargs: dict, layer_type: str):
    """Show ``data`` in the layer named ``kwargs["name"]``: reused (same type and dimensions: only
    the data and :data:`REUSE_ATTRIBUTES` change, the user's display choices stay), else added."""
    name = kwargs["name"]
    layer = viewer.layers[name] if name in viewer.layers else None
    if layer is not None and (type(layer).__name__.lower() != layer_type or layer.ndim != np.ndim(data)):
        viewer.layers.remove(layer)
        layer = None
    if layer is None:
        return getattr(viewer, f"add_{layer_type}")(data, **kwargs)
    layer.data = data
    for attribute in REUSE_ATTRIBUTES[layer_type]:
        if attribute in kwargs and not same_setting(layer, attribute, kwargs[attribute]):
            setattr(layer, attribute, kwargs[attribute])
    if is_heatmap_layer(name) and layer.visible != kwargs.get("visible", True):
        layer.visible = kwargs.get("visible", True)
    if layer_type == "labels" and hasattr(layer, "_reset_history"):
        layer._reset_history()  # undo must not reach back into the previous case
    return layer


def order_layers(viewer) -> None:
    """Keep image at the bottom, then maps, segmentation, annotation, prompts on top."""
    names = [layer.name for layer in viewer.layers]
    bottom = [IMAGE] + sorted(n for n in names if is_heatmap_layer(n)) + [FM_SEGMENTATION, ANNOTATION]
    order = [n for n in bottom if n in names]
    for target, name in enumerate(order):
        index = [layer.name for layer in viewer.layers].index(name)
        if index != target:
            viewer.layers.move(index, target)


def show_case_layers(viewer, view: CaseView, labels: dict[str, int], previous: CaseView | None = None,
                     keep_annotation: bool = False) -> bool:
    """Show a loaded case in the viewer's case layers (reused by name, see :func:`put_layer`); the
    maps and segmentation layers the case has none for are removed. ``keep_annotation``: the case
    shown (``previous``) is this one and its annotation layer stays as it is (its edits).
    Returns whether the image's shape changed (the view is to be reset)."""
    shape_changed = previous is None or previous.case.image.shape != view.case.image.shape or \
        IMAGE not in viewer.layers
    layer_data = case_layer_data(view, labels)
    if keep_annotation and previous is not None and previous.case_id == view.case_id:
        layer_data = [t for t in layer_data if t[1]["name"] != ANNOTATION]
    wanted = {t[1]["name"] for t in layer_data}
    for layer in list(viewer.layers):
        stale_map = is_heatmap_layer(layer.name) and layer.name not in wanted
        stale_segmentation = layer.name == FM_SEGMENTATION and FM_SEGMENTATION not in wanted
        if stale_map or stale_segmentation:
            viewer.layers.remove(layer)
    for data, kwargs, layer_type in layer_data:
        put_layer(viewer, data, kwargs, layer_type)
    order_layers(viewer)
    return shape_changed


def show_slice(viewer, view: CaseView, index: int) -> None:
    """Move the viewer to slice ``index`` (axis 0, clipped to the volume) of the case ``view`` shows:
    world position ``index × spacing[0]`` plus the image layer's translation."""
    index = int(np.clip(index, 0, view.case.image.shape[0] - 1))
    offset = float(viewer.layers[IMAGE].translate[0]) if IMAGE in viewer.layers else 0.0
    viewer.dims.set_point(0, index * view.spacing[0] + offset)


def is_case_layer(name: str) -> bool:
    """Whether a layer name is one of the layers the review panel shows a case in."""
    return name in (IMAGE, ANNOTATION, FM_SEGMENTATION, *PROMPT_LAYERS) or is_heatmap_layer(name)


def remove_case_layers(viewer) -> list:
    """Remove the layers of the case shown (no case is shown any more); returns them."""
    removed = [layer for layer in list(viewer.layers) if is_case_layer(layer.name)]
    for layer in removed:
        viewer.layers.remove(layer)
    return removed


def viewer_title(dataset_name: str | None, case_id: str | None = None, status: str | None = None,
                 dirty: bool = False, problem: str | None = None) -> str:
    """The viewer's title: the case shown (the layer names do not say it), its status and unsaved
    edits, the dataset; ``problem`` instead of the status for a case that could not be opened."""
    if dataset_name is None:
        return TITLE_SUFFIX
    if case_id is None:
        return f"{dataset_name} (no case shown) — {TITLE_SUFFIX}"
    state = problem or ", ".join(filter(None, [status, "unsaved edits" if dirty else None]))
    return f"{case_id}{' *' if dirty else ''} ({state}) · {dataset_name} — {TITLE_SUFFIX}"
