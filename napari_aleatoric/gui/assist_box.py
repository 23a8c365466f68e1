"""The review panel's "Correct" tab: the class painted (a declared one), and assisted correction with the model.

The reviewer draws a rectangle on ``FM box prompt`` and/or points on ``FM point prompts`` (the
prompt layers, made for each case), presses Preview (the model runs on the current slice in a
worker; the mask is shown as ``FM preview``) and Apply (written into ``annotation`` for the chosen
class, undoable with Ctrl-Z). The prompt and apply rules are :mod:`.assist`'s.
"""

from __future__ import annotations

from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QWidget

import numpy as np

from ..data.arraycache import ArrayCache
from ..data.state_layout import embeddings_cache
from ..models import registry
from ..models.base import resolve_device
from . import assist, notify
from .case_layers import same_setting
from .case_view import ANNOTATION, IMAGE, CaseView, label_colormap
from .workers import Failure, guarded


class AssistBox(QWidget):
    """The "Correct" tab of a :class:`~napari_aleatoric.gui.review_panel.ReviewPanel`.

    Args:
        panel: the review panel; the box uses its ``viewer``, ``session``, ``current`` (the case
            shown), ``message``, ``scoring`` (the model and device chosen), ``_model`` (the model
            cache), ``_start`` (workers), ``_busy``, ``update_summary`` and ``_update_buttons``.
    """

    def __init__(self, panel, parent=None):
        super().__init__(parent)
        self.panel = panel
        self.viewer = panel.viewer
        self.preview_state: dict | None = None  # the preview shown: case_id, slice, mask, box
        self.models: dict = {}  # (spec, device) -> the model built for previews
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("class painted by napari's brush / fill and written by 'Apply'")
        self.negative_check = QCheckBox("new points are negative (exclude)")
        self.overwrite_check = QCheckBox("overwrite other classes")
        self.overwrite_check.setToolTip("off: applying only changes background pixels (and this class); "
                                        "other classes are never overwritten")
        self.replace_check = QCheckBox("replace class inside the box")
        self.replace_check.setToolTip("also clear this class inside the box where the preview is empty")
        self.preview_button = QPushButton("Preview")
        self.preview_button.setToolTip("run the foundation model on the current slice with the box / points")
        self.apply_button = QPushButton("Apply to class")
        self.clear_prompts_button = QPushButton("Clear prompts")
        form = QFormLayout(self)
        form.addRow("class", self.class_combo)
        form.addRow(QLabel("Paint with napari's brush / eraser / fill on the 'annotation' layer "
                           "(keys 2 / 1 / 4); Ctrl-Z undoes.\nAssisted: draw a rectangle on 'FM box prompt' "
                           "and/or add points on 'FM point prompts', then Preview and Apply."))
        form.addRow(self.negative_check)
        row = QHBoxLayout()
        row.addWidget(self.preview_button)
        row.addWidget(self.apply_button)
        row.addWidget(self.clear_prompts_button)
        form.addRow(row)
        self._form = form
        form.addRow(self.overwrite_check)
        form.addRow(self.replace_check)

        self.class_combo.currentIndexChanged.connect(self._class_changed)
        self.negative_check.toggled.connect(self._polarity_changed)
        self.preview_button.clicked.connect(self.preview)
        self.apply_button.clicked.connect(self.apply_preview)
        self.clear_prompts_button.clicked.connect(self.clear_prompts)

    # ------------------------------------------------------------------ classes and prompt layers

    def show_classes(self, foreground: dict[str, int]) -> None:
        """List the dataset's foreground classes (``{name: value}``) in the class box."""
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        for name, value in foreground.items():
            self.class_combo.addItem(f"{name} ({value})", value)
        self.class_combo.blockSignals(False)

    def chosen_value(self) -> int | None:
        """The label value of the class chosen, or ``None`` when no class is listed."""
        value = self.class_combo.currentData()
        return None if value is None else int(value)

    def update_buttons(self, has_case: bool) -> None:
        """Enable Preview / Clear with a case shown (Preview once at a time), Apply with a preview."""
        self.clear_prompts_button.setEnabled(has_case)
        self.preview_button.setEnabled(has_case and "preview" not in self.panel._busy)
        self.apply_button.setEnabled(has_case and self.preview_state is not None)

    def paint_with_chosen_class(self, annotation) -> None:
        """Make the annotation layer's brush paint the class chosen here."""
        value = self.chosen_value()
        if value is not None:
            annotation.selected_label = value

    def guard_brush(self, event=None) -> None:
        """Keep the annotation layer's brush on a value ``dataset.json`` declares: napari's "new label"
        key (M) would otherwise paint a value the saved file could never be opened with."""
        dataset = self.panel.session.dataset
        if dataset is None or ANNOTATION not in self.viewer.layers:
            return
        layer = self.viewer.layers[ANNOTATION]
        value = int(layer.selected_label)
        declared = set(dataset.labels.values())
        if value in declared:
            return
        fallback = self.chosen_value()
        fallback = fallback if fallback is not None and fallback in declared else min(declared)
        notify.warning(f"Label value {value} is not declared in dataset.json "
                       f"({', '.join(f'{v}={n}' for n, v in dataset.labels.items())}); "
                       f"painting with {fallback} instead")
        layer.selected_label = fallback

    def _class_changed(self, *_args) -> None:
        value = self.chosen_value()
        if value is None:
            return
        if ANNOTATION in self.viewer.layers:
            self.viewer.layers[ANNOTATION].selected_label = value
        if assist.PREVIEW_LAYER in self.viewer.layers and self.preview_state is not None:
            layer = self.viewer.layers[assist.PREVIEW_LAYER]
            data = np.asarray(layer.data)
            data[data > 0] = value
            layer.data = data

    def _polarity_changed(self, negative: bool) -> None:
        if assist.POINTS_LAYER in self.viewer.layers:
            points = self.viewer.layers[assist.POINTS_LAYER]
            points.feature_defaults = {"positive": not negative}
            points.current_face_color = "red" if negative else "lime"

    def ensure_prompt_layers(self, view: CaseView) -> None:
        """Make the prompt layers fit the case (dimensions, voxel spacing); drop the preview."""
        ndim, scale = view.case.image.ndim, view.spacing
        for name in (assist.BOX_LAYER, assist.POINTS_LAYER, assist.PREVIEW_LAYER):
            if name in self.viewer.layers and self.viewer.layers[name].ndim != ndim:
                self.viewer.layers.remove(self.viewer.layers[name])
        if assist.BOX_LAYER not in self.viewer.layers:
            self.viewer.add_shapes(ndim=ndim, name=assist.BOX_LAYER, scale=scale, edge_color="yellow",
                                   face_color="transparent", edge_width=max(1.0, max(view.case.image.shape[-2:]) / 150))
        if assist.POINTS_LAYER not in self.viewer.layers:
            size = max(3.0, max(view.case.image.shape[-2:]) / 40)
            negative = self.negative_check.isChecked()
            points = self.viewer.add_points(np.zeros((0, ndim)), ndim=ndim, name=assist.POINTS_LAYER, scale=scale,
                                            size=size, features={"positive": np.zeros(0, dtype=bool)},
                                            face_color="lime", border_color="white")
            points.feature_defaults = {"positive": not negative}
            points.current_face_color = "red" if negative else "lime"
        for name in (assist.BOX_LAYER, assist.POINTS_LAYER):
            if not same_setting(self.viewer.layers[name], "scale", scale):
                self.viewer.layers[name].scale = scale
        if assist.PREVIEW_LAYER in self.viewer.layers:
            self.viewer.layers.remove(self.viewer.layers[assist.PREVIEW_LAYER])

    def clear_prompts(self) -> None:
        """Remove the box, the points and the preview."""
        for name in (assist.BOX_LAYER, assist.POINTS_LAYER):
            if name in self.viewer.layers:
                layer = self.viewer.layers[name]
                if len(layer.data):
                    layer.data = [] if name == assist.BOX_LAYER else np.zeros((0, layer.ndim))
        self.forget_preview()
        self.panel._update_buttons()

    def forget_preview(self) -> None:
        """No preview any more (the case changed, or it was applied or cleared)."""
        if assist.PREVIEW_LAYER in self.viewer.layers:
            self.viewer.layers.remove(self.viewer.layers[assist.PREVIEW_LAYER])
        self.preview_state = None

    # ------------------------------------------------------------------ preview and apply

    def model(self, spec: str, device: str | None):
        """The model ``spec`` on ``device`` for previews, built once per (spec, device)."""
        key = (spec, device)
        if key not in self.models:
            self.models[key] = registry.load_model(spec, device)
        return self.models[key]

    def current_slice(self) -> int:
        """Index (axis 0) of the slice shown, for volumes; 0 for 2D cases."""
        view = self.panel.current
        if view is None or not view.is_3d or IMAGE not in self.viewer.layers:
            return 0
        position = self.viewer.layers[IMAGE].world_to_data(self.viewer.dims.point)
        return int(np.clip(round(float(position[0])), 0, view.case.image.shape[0] - 1))

    def prompts(self) -> assist.SlicePrompts:
        """The box and points on the current slice of the case shown."""
        view = self.panel.current
        ndim = view.case.image.ndim
        shapes = self.viewer.layers[assist.BOX_LAYER] if assist.BOX_LAYER in self.viewer.layers else None
        points = self.viewer.layers[assist.POINTS_LAYER] if assist.POINTS_LAYER in self.viewer.layers else None
        point_data = np.asarray(points.data) if points is not None else np.zeros((0, ndim))
        if points is not None and "positive" in points.features and len(points.features) == len(point_data):
            positive = np.asarray(points.features["positive"], dtype=bool)
        else:
            positive = np.ones(len(point_data), dtype=bool)
        return assist.slice_prompts(list(shapes.data) if shapes is not None else [],
                                    list(shapes.shape_type) if shapes is not None else [],
                                    point_data, positive, ndim, self.current_slice(), view.case.image.shape[-2:])

    def preview(self) -> None:
        """Run the foundation model on the current slice with the prompts; show the mask as 'FM preview'."""
        panel, view = self.panel, self.panel.current
        if view is None:
            notify.warning("Open a case first")
            return
        prompts = self.prompts()
        if prompts.empty:
            notify.warning(f"Draw a rectangle on '{assist.BOX_LAYER}' or add points on '{assist.POINTS_LAYER}' "
                           "on the current slice first")
            return
        index = self.current_slice()
        spec, device = panel.scoring.model_spec(), panel.scoring.device()
        cache = ArrayCache(embeddings_cache(panel.session.dataset.cache_dir))

        def job():
            resolve_device(device)
            model = panel._model(spec, device)
            image01 = view.image01()
            slice01 = image01[index] if view.is_3d else image01
            return assist.predict_slice(model, slice01, prompts, cache)

        def done(result):
            if isinstance(result, Failure):
                notify.error("Preview failed", result.error)
                return
            if panel.current is None or panel.current.case_id != view.case_id:
                return
            self._show_preview(result, index, prompts)

        panel.message.setText(f"Preview with {spec} on slice {index}…" if view.is_3d else f"Preview with {spec}…")
        panel._start(guarded, "Preview failed", job, returned=done, name="preview")

    def _show_preview(self, mask: np.ndarray, index: int, prompts: assist.SlicePrompts) -> None:
        view = self.panel.current
        value = int(self.class_combo.currentData() or 1)
        data = np.zeros(view.case.image.shape, dtype=np.uint8 if value < 256 else np.int32)
        if view.is_3d:
            data[index][mask] = value
        else:
            data[mask] = value
        labels = self.panel.session.dataset.labels
        if assist.PREVIEW_LAYER in self.viewer.layers:
            layer = self.viewer.layers[assist.PREVIEW_LAYER]
            layer.data = data
            layer.scale = view.spacing
        else:
            self.viewer.add_labels(data, name=assist.PREVIEW_LAYER, scale=view.spacing, opacity=0.6,
                                   colormap=label_colormap({n: v for n, v in labels.items() if v != 0}),
                                   blending="translucent")
        self.preview_state = {"case_id": view.case_id, "slice": index, "mask": mask, "box": prompts.box}
        self.panel.message.setText(f"Preview: {int(mask.sum())} pixels. 'Apply to class' writes them into the "
                                   "annotation.")
        if ANNOTATION in self.viewer.layers:
            self.viewer.layers.selection.active = self.viewer.layers[ANNOTATION]
        self.panel._update_buttons()

    def add_row(self, widget) -> None:
        """Put ``widget`` on its own row under Preview / Apply / Clear prompts (e.g. volume propagation)."""
        self._form.insertRow(4, widget)

    def apply_preview(self) -> int:
        """Write the preview into the annotation for the chosen class (undoable with Ctrl-Z).

        Returns the number of changed pixels (see :mod:`.assist` for the rules). A preview
        propagated through a volume is written on every slice it covers (:mod:`.propagation`).
        """
        view, preview = self.panel.current, self.preview_state
        if preview is not None and preview.get("kind") == "volume":
            return self.panel.propagation.apply()
        if view is None or preview is None or preview["case_id"] != view.case_id or ANNOTATION not in self.viewer.layers:
            notify.warning("Run Preview first")
            return 0
        annotation = self.viewer.layers[ANNOTATION]
        value = self.chosen_value()
        index = preview["slice"]
        data = np.asarray(annotation.data)
        slice_data = data[index] if view.is_3d else data
        overwrite = self.overwrite_check.isChecked()
        kept = 0 if overwrite else assist.kept_other_classes(slice_data, preview["mask"], value, preview["box"])
        (rows, cols), values = assist.apply_changes(slice_data, preview["mask"], value, overwrite=overwrite,
                                                    box=preview["box"], replace_in_box=self.replace_check.isChecked())
        if len(rows):
            indices = (np.full(len(rows), index), rows, cols) if view.is_3d else (rows, cols)
            annotation.data_setitem(indices, values)
        self.forget_preview()
        why = (f" {kept} pixels of the preview are drawn as other classes and were kept: tick 'overwrite other "
               f"classes' to replace them." if kept else "")
        self.panel.message.setText(f"Applied: {len(rows)} pixels changed for {self.class_combo.currentText()} "
                                   f"(Ctrl-Z on 'annotation' undoes).{why}")
        if kept and not len(rows):
            notify.warning(f"Nothing applied: the preview lies on other classes.{why}")
        self.panel.update_summary()
        self.panel._update_buttons()
        return int(len(rows))

