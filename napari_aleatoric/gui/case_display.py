"""The case shown in the viewer: its layers, the slider, the annotation layer's setup, and unsaved edits.

:class:`CaseDisplay` puts a loaded :class:`~napari_aleatoric.gui.case_view.CaseView` into the
viewer's case layers (:func:`~napari_aleatoric.gui.case_layers.show_case_layers`), makes the prompt
layers fit it (the Correct tab), puts a volume's slider on its focus slice, sets up the annotation
layer (contour, a brush on a declared class, edits followed) and keeps the annotation saved on
disk, against which the annotation layer has unsaved edits or not.
"""

from __future__ import annotations

import weakref

import numpy as np

from .case_layers import remove_case_layers, show_case_layers, show_slice
from .case_view import ANNOTATION, ANNOTATION_CONTOUR, CaseView
from .edits import EditWatch


class CaseDisplay:
    """Shows cases in ``viewer`` (see the module docs).

    Args:
        viewer: the napari viewer.
        assist: the Correct tab (:class:`~napari_aleatoric.gui.assist_box.AssistBox`): prompt
            layers, the class painted and the brush guard.
        edits: follows the annotation layer's edits (:class:`~napari_aleatoric.gui.edits.EditWatch`).

    Attributes:
        saved_label: the annotation on disk of the case shown (``None``: none, or not known yet).
    """

    def __init__(self, viewer, assist, edits: EditWatch):
        self.viewer, self.assist, self.edits = viewer, assist, edits
        self.saved_label: np.ndarray | None = None
        self._styled: weakref.WeakSet = weakref.WeakSet()  # annotation layers set up already

    def show(self, view: CaseView, labels: dict[str, int], previous: CaseView | None = None,
             keep_annotation: bool = False) -> None:
        """Show ``view`` (``labels``: the dataset's ``{name: value}``). ``keep_annotation``: the same
        case shown again with new maps; its annotation layer, edits and slider position stay."""
        shape_changed = show_case_layers(self.viewer, view, labels, previous, keep_annotation)
        if not keep_annotation or self.saved_label is None:
            self.saved_label = None if view.case.label is None else np.array(view.case.label, copy=True)
            self.assist.ensure_prompt_layers(view)
            self.assist.clear_prompts()
        if shape_changed:
            self.viewer.reset_view()
        if view.is_3d and not keep_annotation:
            show_slice(self.viewer, view, view.focus_slice())
        if ANNOTATION in self.viewer.layers:
            annotation = self.viewer.layers[ANNOTATION]
            if annotation not in self._styled:
                annotation.contour = ANNOTATION_CONTOUR
                annotation.events.selected_label.connect(self.assist.guard_brush)
                self._styled.add(annotation)
            self.edits.follow(annotation)  # "unsaved edits" follows strokes and undo
            self.assist.paint_with_chosen_class(annotation)
            if not keep_annotation:
                self.viewer.layers.selection.active = annotation

    def show_none(self) -> None:
        """Show no case: its layers and the preview are removed, no annotation is saved."""
        remove_case_layers(self.viewer)
        self.saved_label = None
        self.assist.forget_preview()

    def is_dirty(self, view: CaseView | None) -> bool:
        """Whether the annotation layer differs from the saved annotation of ``view`` (the case shown)."""
        if view is None or self.saved_label is None or ANNOTATION not in self.viewer.layers:
            return False
        data = np.asarray(self.viewer.layers[ANNOTATION].data)
        return data.shape != self.saved_label.shape or not np.array_equal(data, self.saved_label)
