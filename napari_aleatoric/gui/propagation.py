""""Propagate through volume": the assisted preview of one slice carried through the neighbouring slices.

The review panel owns one :class:`VolumePropagation`; its :attr:`~VolumePropagation.button` sits next
to Preview / Apply. Clicking it runs :func:`~napari_aleatoric.models.propagation.propagate_prompts`
in a worker from the box / points on the current slice (or from the preview of that slice, when one
is shown): the ``FM preview`` layer fills slice by slice as the model goes up and down the volume,
and the button becomes "Stop propagation" (what was found so far stays as the preview). Then the
panel's "Apply to class" writes every previewed slice with the same class / overwrite / replace
rules as a one-slice preview (:func:`~.assist.apply_volume_changes`), as one edit that Ctrl-Z undoes.

What it uses of the panel (the hooks to keep if the panel is reorganised): ``current``,
``current_slice()``, ``_prompts()``, ``_model(spec, device)``, ``scoring.device()``, ``model_edit``,
``dataset``, ``assist.preview_state`` (the shown preview; a propagated one has ``"kind": "volume"``),
``_start`` (its workers), ``class_combo`` / ``overwrite_check`` / ``replace_check``, ``message``,
``preview_button``, ``update_summary()`` / ``_update_buttons()``; and the panel calls
:meth:`~VolumePropagation.update_button` from its ``_update_buttons``, :meth:`~VolumePropagation.apply`
from ``apply_preview`` for a propagated preview, and :meth:`~VolumePropagation.cancel` on shutdown.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QObject
from qtpy.QtWidgets import QPushButton

from ..data.arraycache import ArrayCache
from ..data.state_layout import embeddings_cache
from ..models import registry
from ..models.base import resolve_device
from ..models.propagation import Propagation, SlicePropagated, propagate_prompts
from . import assist, notify
from .case_view import ANNOTATION, label_colormap
from .workers import Failure

START_TEXT = "Propagate through volume"
STOP_TEXT = "Stop propagation"
JOB = "propagate"


def propagation_job(load_model, volume01, seed_slice: int, prompts: assist.SlicePrompts,
                    seed_mask: np.ndarray | None, cache: ArrayCache | None):
    """Worker generator: the core walk's events, its :class:`Propagation` as return value, or one
    :class:`Failure` (the worker never raises)."""
    try:
        model = load_model()
        result = yield from propagate_prompts(
            model, volume01(), seed_slice, box=prompts.box, points=prompts.points,
            point_labels=prompts.point_labels, seed_mask=seed_mask, embedding_cache=cache)
    except Exception as error:  # noqa: BLE001 - shown to the user
        yield Failure("Propagation failed", error)
        return None
    return result


class VolumePropagation(QObject):
    """The "Propagate through volume" button of a review panel and the propagation it runs."""

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.button = QPushButton(START_TEXT)
        self.button.setToolTip("carry the box / points of this slice to the slices above and below: each slice "
                               "is prompted with the box of the previous slice's mask, until the mask vanishes; "
                               "then 'Apply to class' writes all slices (one Ctrl-Z undoes)")
        self.button.clicked.connect(self._clicked)
        self._worker = None
        self._run: dict | None = None  # the running propagation: case, masks and boxes found so far

    @property
    def running(self) -> bool:
        """Whether a propagation runs (its worker is among the panel's busy jobs)."""
        return self._worker is not None or JOB in self.panel._busy

    def update_button(self, has_case: bool) -> None:
        """Enable the button for a volume case (the panel's ``_update_buttons`` calls it)."""
        view = self.panel.current
        self.button.setText(STOP_TEXT if self.running else START_TEXT)
        self.button.setEnabled(self.running or (has_case and view is not None and view.is_3d))
        if self.running:
            self.panel.preview_button.setEnabled(False)

    def _clicked(self) -> None:
        if self.running:
            self.cancel()
        else:
            self.start()

    def start(self) -> bool:
        """Propagate the prompts of the current slice through the volume (in a worker)."""
        panel, view = self.panel, self.panel.current
        if view is None or self.running:
            return False
        if not view.is_3d:
            notify.warning("Propagation needs a volume: this case has one slice (use Preview)")
            return False
        prompts = panel._prompts()
        index = panel.current_slice()
        preview = panel.assist.preview_state
        seed_mask = None
        if (preview is not None and preview.get("kind") != "volume" and preview.get("case_id") == view.case_id
                and preview.get("slice") == index):
            seed_mask = preview["mask"]  # the preview shown on this slice is the seed
        if prompts.empty and seed_mask is None:
            notify.warning(f"Draw a rectangle on '{assist.BOX_LAYER}' or add points on '{assist.POINTS_LAYER}' "
                           "on the current slice first")
            return False
        spec, device = panel.model_edit.text().strip() or registry.DEFAULT_MODEL, panel.scoring.device()
        cache = ArrayCache(embeddings_cache(panel.dataset.cache_dir)) if panel.dataset is not None else None

        def load_model():
            resolve_device(device)
            return panel._model(spec, device)

        self._run = {"case_id": view.case_id, "seed": index, "box": prompts.box,
                     "masks": np.zeros(view.case.image.shape, dtype=bool), "boxes": {}, "result": None}
        run = self._run
        panel.message.setText(f"Propagating from slice {index} with {spec}…")
        self._worker = panel._start(propagation_job, load_model, view.image01, index, prompts, seed_mask, cache,
                                    yielded=lambda event: self._progress(run, event),
                                    returned=lambda result: run.__setitem__("result", result),
                                    finished=lambda: self._finished(run), name=JOB)
        return True

    def cancel(self) -> None:
        """Stop a running propagation between two slices (the slices found so far stay previewed)."""
        if self._worker is not None:
            self._worker.quit()

    def _current(self, run: dict) -> bool:
        view = self.panel.current
        return run is self._run and view is not None and view.case_id == run["case_id"]

    def _progress(self, run: dict, event) -> None:
        if isinstance(event, Failure):
            run["failure"] = event
            return
        if not self._current(run):
            self.cancel()  # the case changed under it
            return
        if isinstance(event, SlicePropagated):
            run["masks"][event.slice] = event.mask
            run["boxes"][event.slice] = event.box
            self._show(run, event.slice)
            self.panel.message.setText(f"Propagating from slice {run['seed']}: slice {event.slice} "
                                       f"({event.slices_done} slices so far)…")

    def _finished(self, run: dict) -> None:
        self._worker = None
        if "failure" in run:
            notify.error("Propagation failed", run["failure"].error)
        if not self._current(run):
            return
        boxes = run["boxes"]
        if not boxes:
            if "failure" not in run:
                self.panel.message.setText("Propagation: the model's mask on this slice is empty; nothing to propagate.")
            return
        first, last = min(boxes), max(boxes)
        result: Propagation | None = run["result"]
        seed = run["seed"]
        self.panel.assist.preview_state = {"case_id": run["case_id"], "kind": "volume", "masks": run["masks"], "boxes": boxes,
                               "first": first, "last": last, "slice": seed, "mask": run["masks"][seed],
                               "box": run["box"]}
        voxels = int(run["masks"].sum())
        how = "stopped" if result is None else "done"
        if result is not None:
            why = {"edge": "the volume's edge", "vanished": "the mask vanished", "limit": "the slice limit"}
            how = f"up to {why[result.stopped.get(+1, 'edge')]} above, {why[result.stopped.get(-1, 'edge')]} below"
        self.panel.message.setText(f"Propagated preview: slices {first}–{last} ({len(boxes)} slices, {voxels} voxels; "
                                   f"{how}). 'Apply to class' writes them all into the annotation.")
        viewer = self.panel.viewer
        if ANNOTATION in viewer.layers:
            viewer.layers.selection.active = viewer.layers[ANNOTATION]

    def _show(self, run: dict, index: int) -> None:
        """The masks found so far in the ``FM preview`` layer, in the chosen class's colour."""
        panel, view = self.panel, self.panel.current
        value = int(panel.class_combo.currentData() or 1)
        if "data" not in run:  # one preview array per run, updated slice by slice
            run["data"] = np.zeros(run["masks"].shape, dtype=np.uint8 if value < 256 else np.int32)
        data = run["data"]
        data[index] = np.where(run["masks"][index], value, 0)
        viewer = panel.viewer
        if assist.PREVIEW_LAYER in viewer.layers:
            layer = viewer.layers[assist.PREVIEW_LAYER]
            layer.data = data
            layer.scale = view.spacing
        else:
            colormap = label_colormap({n: v for n, v in panel.dataset.labels.items() if v != 0})
            viewer.add_labels(data, name=assist.PREVIEW_LAYER, scale=view.spacing, colormap=colormap,
                              opacity=0.6, blending="translucent")
            if ANNOTATION in viewer.layers:
                viewer.layers.selection.active = viewer.layers[ANNOTATION]

    def apply(self) -> int:
        """Write a propagated preview into the annotation for the chosen class, every slice, as one
        edit (Ctrl-Z undoes it); returns the number of changed voxels."""
        panel, view, preview = self.panel, self.panel.current, self.panel.assist.preview_state
        viewer = panel.viewer
        if view is None or preview is None or preview.get("kind") != "volume" or preview["case_id"] != view.case_id \
                or ANNOTATION not in viewer.layers:
            notify.warning("Propagate first")
            return 0
        annotation = viewer.layers[ANNOTATION]
        value = int(panel.class_combo.currentData())
        overwrite = panel.overwrite_check.isChecked()
        indices, values, kept = assist.apply_volume_changes(
            np.asarray(annotation.data), preview["masks"], preview["boxes"], value, overwrite=overwrite,
            replace_in_box=panel.replace_check.isChecked())
        changed = int(len(values))
        if changed:
            annotation.data_setitem(indices, values)
        if assist.PREVIEW_LAYER in viewer.layers:
            viewer.layers.remove(viewer.layers[assist.PREVIEW_LAYER])
        panel.assist.preview_state = None
        name = panel.class_combo.currentText()
        why = (f" {kept} voxels of the preview are drawn as other classes and were kept: tick 'overwrite other "
               f"classes' to replace them." if kept else "")
        panel.message.setText(f"Applied on slices {preview['first']}–{preview['last']}: {changed} voxels changed "
                              f"for {name} (Ctrl-Z on 'annotation' undoes).{why}")
        if kept and not changed:
            notify.warning(f"Nothing applied: the preview lies on other classes.{why}")
        panel.update_summary()
        panel._update_buttons()
        return changed
