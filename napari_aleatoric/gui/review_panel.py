"""The review panel: open a dataset, score it in the background, walk the ranked queue, correct, save.

Thin by design: the panel is a view of the viewer's :class:`~napari_aleatoric.session.ReviewSession`
(found through :mod:`.sessions`), which owns the dataset, the review store, the scores and the
review rules (decisions, save, revert, reconcile, re-score, which case comes next, when the maps
shown are out of date). The panel composes views of one thing each and keeps them in step:
:class:`.scoring_box.ScoringBox` (dataset and scoring controls, progress, message line),
:class:`.queue.QueueTable` (the ranked queue), :class:`.case_actions.CaseActions` (the Case tab:
:class:`.case_summary.CaseSummary` and the decision / save / revert bar) and
:class:`.assist_box.AssistBox` (the Correct tab); it shows the chosen case in the viewer itself.
Work that reads many files or runs a model runs in napari thread workers (:mod:`.workers`), so the
viewer stays responsive; every problem becomes a notification naming the file and the problem.

Layers shown for a case (``scale`` = voxel spacing in mm): ``image``, one ``label issue: <class>``
map per class (``uncertainty: <class>`` before label quality ran; only the worst class visible),
``FM segmentation`` (hidden at first), ``annotation`` (editable), and the prompt layers
``FM box prompt`` / ``FM point prompts`` / ``FM preview``. Switching case updates these layers in
place; their names stay the same (panels and scripts look layers up by them) and the viewer's title
names the case shown, its status and unsaved edits (:mod:`.case_layers`).

Keyboard shortcuts on the viewer (:data:`SHORTCUTS`, canvas focused): PageDown / PageUp next /
previous case (also in the queue's table), Shift-PageDown / Shift-PageUp next / previous hot slice
of a volume (:mod:`.hot_slices`), Shift-A accept, Shift-X exclude, Shift-U mark
unreviewed, Shift-S save. (Ctrl-S stays napari's "Save selected layers": napari's menu owns that
shortcut.) Ctrl-Z undoes paint strokes and applied previews on ``annotation`` (napari's history).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QSplitter, QTabWidget, QVBoxLayout, QWidget

from ..data.dataset import Dataset
from ..data.errors import AleatoricError
from ..models import registry
from ..pipelines.table import ScoreTable
from ..review.store import ReviewStore
from ..session import DatasetOpened, RevisionRecorded, ScoresChanged, StatusChanged
from . import assist, notify, sessions
from ._compat import guard_triton
from .assist_box import AssistBox
from .case_actions import CaseActions, ask_unsaved_changes
from .case_display import CaseDisplay
from .case_layers import viewer_title
from .case_summary import CaseSummary
from .case_view import CaseView, ScoringSettings, load_case_view
from .edits import EditWatch
from .hot_slices import HotSlices
from .propagation import VolumePropagation
from .queue import QueueTable
from .scoring_box import ScoringBox
from .workers import BackgroundWork, Failure, guarded, safe_slot

PANEL_NAME = "Review panel (napari-aleatoric)"
#: shortcut → (panel method name, description)
SHORTCUTS = {
    "PageDown": ("next_case", "next case"),
    "PageUp": ("previous_case", "previous case"),
    "Shift-A": ("accept_case", "accept"),
    "Shift-X": ("exclude_case", "exclude"),
    "Shift-U": ("reset_status", "mark unreviewed"),
    "Shift-S": ("save_case", "save"),
}
#: the parts' widgets the panel exposes under the same names (scripts and tests use them)
SCORING_WIDGETS = ("path_edit", "browse_button", "open_button", "sample_combo", "sample_button", "model_edit",
                   "checkpoint_button", "device_combo", "score_button", "cancel_button", "export_button",
                   "refresh_button", "scheduler_edit", "progress", "message")
CASE_WIDGETS = ("prev_button", "next_button", "accept_button", "exclude_button", "save_button", "rescore_check",
                "reset_button", "revert_original_button", "revert_selected_button")
CORRECTION_WIDGETS = ("class_combo", "negative_check", "overwrite_check", "replace_check", "preview_button",
                      "apply_button", "clear_prompts_button")


class ReviewPanel(BackgroundWork, QWidget):
    """Dock widget reviewing one dataset (npe2 widget contribution).

    Args:
        napari_viewer: the viewer.
        model: foundation-model specification (see ``models.registry``); built only when scoring
            or assisted correction needs it.
        device: ``None``/``"auto"``, ``"cpu"`` or ``"cuda"``.

    Attributes useful for scripts and tests: :attr:`session` (the viewer's
    :class:`~napari_aleatoric.session.ReviewSession`), :attr:`dataset`, :attr:`table`, :attr:`current`
    (the shown :class:`CaseView`), :attr:`queue`, :attr:`confirm_unsaved` (a callable
    ``(case_id) -> "save" | "discard" | "cancel"``; replace it to avoid the dialog),
    :meth:`is_busy`; the parts :attr:`scoring`, :attr:`actions`, :attr:`assist` and their widgets
    under the same names (:data:`SCORING_WIDGETS`, :data:`CASE_WIDGETS`, :data:`CORRECTION_WIDGETS`,
    ``summary`` and ``history``).
    """

    def __init__(self, napari_viewer, model: str = registry.DEFAULT_MODEL, device: str | None = None):
        super().__init__()
        guard_triton()
        self.viewer = napari_viewer
        self.session = sessions.session_for(napari_viewer)
        self.session.model, self.session.device = model, (None if device in (None, "", "auto") else device)
        self.current: CaseView | None = None
        self.unopened: str | None = None  # the selected case that could not be opened (Revert still works)
        self.confirm_unsaved: Callable[[str], str] = lambda case_id: ask_unsaved_changes(self, case_id)
        self._load_token = 0
        self._loading: str | None = None
        self._busy: set[str] = set()
        self._workers: set = set()
        self._auto_selected = False  # the case shown was shown on opening, not chosen by the reviewer
        self._edits = EditWatch(self.is_dirty, lambda _dirty: self.update_summary(), self)
        self._title = napari_viewer.title  # given back when the panel closes
        self._build_ui(model, device)
        self._bind_shortcuts()
        self._unsubscribe = self.session.subscribe(safe_slot(self._on_session_event))
        self._update_buttons()

    def _build_ui(self, model: str, device: str | None) -> None:
        self.setMinimumWidth(300)  # two panels side by side leave the canvas ~40 % of a 1600-px window
        self.scoring = ScoringBox(self.session, self._start, model, device)
        self.queue = QueueTable()
        self.case_summary = CaseSummary()
        self.summary, self.history = self.case_summary.label, self.case_summary.history
        self.actions = CaseActions(self, self.case_summary)
        self.assist = AssistBox(self)
        self.display = CaseDisplay(self.viewer, self.assist, self._edits)
        self.hot_slices = HotSlices(self)  # per-slice issue strip, next / previous hot slice (volumes)
        self.actions.layout().insertWidget(1, self.hot_slices)  # below the case summary
        self.propagation = VolumePropagation(self)  # "Propagate through volume" (volumes)
        self.assist.add_row(self.propagation.button)
        for part, names in ((self.scoring, SCORING_WIDGETS), (self.actions, CASE_WIDGETS),
                            (self.assist, CORRECTION_WIDGETS)):
            for name in names:
                setattr(self, name, getattr(part, name))
        self.tabs = QTabWidget()
        self.tabs.addTab(self.actions, "Case")
        self.tabs.addTab(self.assist, "Correct")
        self.tabs.addTab(self.actions.history_tab, "History")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.queue)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        main = QVBoxLayout(self)
        main.setContentsMargins(4, 4, 4, 4)
        main.addWidget(self.scoring)
        main.addWidget(splitter, 1)

        self.scoring.open_requested.connect(self.open_dataset)
        self.scoring.sample_requested.connect(self.open_sample)
        self.scoring.queue_outdated.connect(self._refresh_queue)
        self.scoring.case_scored.connect(safe_slot(self._case_scored))
        self.scoring.scores_changed.connect(safe_slot(self._scores_arrived))
        self.scoring.work_finished.connect(self._refresh_queue)
        self.queue.case_selected.connect(self.select_case)
        self.queue.rank_by_chosen.connect(self.rank_by)
        self.queue.step_requested.connect(self._step)

    def _bind_shortcuts(self) -> None:
        for key, (method, _) in SHORTCUTS.items():
            def handler(viewer, _method=method):
                getattr(self, _method)()
            try:
                self.viewer.bind_key(key, handler, overwrite=True)
            except (TypeError, ValueError) as error:  # pragma: no cover - napari API drift
                notify.warning(f"napari-aleatoric: cannot bind {key}: {error}")

    def sizeHint(self):  # noqa: N802 (Qt)
        from qtpy.QtCore import QSize  # noqa: PLC0415

        return QSize(440, 900)  # the image canvas keeps about half of a 1600-px window

    def _update_buttons(self) -> None:
        has_case = self.current is not None and self.current.case.label is not None
        self.scoring.update_buttons()
        self.actions.update_buttons(has_case)
        self.assist.update_buttons(has_case)
        self.propagation.update_button(has_case)
        self.hot_slices.follow(self.current)

    # ================================================================== the session and the parts

    @property
    def dataset(self) -> Dataset | None:
        """The session's open dataset."""
        return self.session.dataset

    @property
    def store(self) -> ReviewStore | None:
        """The session's review store (``None``: read-only)."""
        return self.session.store

    @property
    def settings(self) -> ScoringSettings | None:
        """The session's stored scoring settings (``None`` until scored)."""
        return self.session.settings

    @property
    def table(self) -> ScoreTable | None:
        """The score table shown: the cases scored so far while scoring runs, else the session's."""
        return self.scoring.table

    @property
    def _score_worker(self):
        """The scoring, refresh or export worker running, or ``None``."""
        return self.scoring.worker

    @property
    def _results(self) -> dict:
        """The case results of the running (or last) scoring pass."""
        return self.scoring.results

    def is_busy(self) -> bool:
        """Whether any background work (scoring, loading, saving, preview) is running."""
        return bool(self._workers) or self.scoring.running

    def _on_session_event(self, event) -> None:
        """Show what changed in the session (whoever changed it: this panel, another, a script)."""
        shown = self.current.case_id if self.current is not None else None
        if isinstance(event, DatasetOpened):
            self._dataset_shown(event)
        elif isinstance(event, StatusChanged):
            self.queue.set_status(event.case_id, event.status)
            if shown == event.case_id:
                self.update_summary()
                self._update_buttons()
        elif isinstance(event, RevisionRecorded):
            if shown == event.case_id:
                if self._maps_outdated(event):
                    self.current.maps_stale = self.current.fm_stale = True  # until re-scored
                self._update_history()
        elif isinstance(event, ScoresChanged):
            self.scoring.drop_partial_table()
            self._show_rank_by()
            self._refresh_queue()
            if self.current is not None:
                self.current.row = event.table.row(self.current.case_id)

    def _maps_outdated(self, event) -> bool:
        """The session's rule: whether ``event`` leaves the maps of the case shown out of date."""
        view = self.current
        return view is not None and self.session.maps_outdated(
            event, view.case_id, has_maps=view.heatmaps is not None, outdated=view.outdated,
            label_issue_maps=view.heatmap_kind == "label issue")

    # ================================================================== dataset and queue

    def open_sample(self, name: str) -> bool:
        """Open a writable working copy of a bundled sample dataset (see ``_sample``)."""
        from .._sample import working_copy  # noqa: PLC0415

        try:
            root = working_copy(name)
        except (KeyError, FileNotFoundError, OSError) as error:
            notify.error(f"Cannot open the sample dataset {name}", error)
            return False
        return self.open_dataset(root)

    def open_dataset(self, path: str | Path, select: bool = True) -> bool:
        """Open a dataset folder: fill the queue (from ``scores.csv`` if present) and show the top case.

        With saved scores no model is built ("review-only"): maps come from the on-disk cache.
        Returns whether the dataset was opened; problems are notifications.
        """
        if not str(path).strip():
            notify.warning("Choose a dataset folder (it must contain dataset.json)")
            return False
        if self.scoring.running:
            notify.warning("Scoring is running: cancel it before opening another dataset")
            return False
        if not self._resolve_unsaved():
            return False
        from .._sample import writable_dataset  # noqa: PLC0415

        path = writable_dataset(Path(path).expanduser())
        try:
            self.session.open(path)  # the panel follows through _dataset_shown
        except AleatoricError as error:
            notify.error("Cannot open the dataset", error)
            return False
        except OSError as error:
            notify.error(f"Cannot open the dataset {path}", error)
            return False
        if select:
            first = self.top_case()
            if first is not None:
                self.select_case(first)
                self._auto_selected = True
        self._update_buttons()
        return True

    def _dataset_shown(self, event: DatasetOpened) -> None:
        """Show a dataset the session opened: queue, classes, message; no case yet."""
        dataset = event.dataset
        if self.session.store_error is not None:
            notify.error("The review store cannot be used; reviewing is read-only", self.session.store_error)
        self._load_token += 1  # a case of the previous dataset still loading is dropped
        self._loading = None
        self.current = None
        self.display.show_none()  # the previous dataset's case is not one of this dataset's
        self.assist.models = {}
        self.viewer.title = viewer_title(dataset.root.name)
        for warning in dataset.warnings[:3]:
            notify.warning(f"{dataset.root}: {warning}")
        self.scoring.show_dataset(event)
        self.assist.show_classes(dataset.foreground)
        self.queue.select(None)
        self.queue.clear()
        self._show_rank_by()
        self._refresh_queue()
        self.case_summary.clear(has_dataset=True)
        self._update_buttons()

    def top_case(self) -> str | None:
        """The first case of the queue as displayed (rank order by default)."""
        ids = self.queue.visible_case_ids()
        return ids[0] if ids else None

    def _statuses(self) -> dict[str, str]:
        try:
            return self.session.statuses()
        except AleatoricError as error:
            notify.error("Cannot read the review statuses", error)
            return {}

    def rank_by(self, rank_by: str) -> bool:
        """Rank the queue by another column (``"label-issue"``, ``"contradicted"``, ``"auv"``) through
        the session; the choice is stored with the scores. Returns whether it was applied."""
        if self.is_busy():  # a scoring or refresh pass would overwrite the new ranking when it ends
            notify.warning("Background work is running: rank the queue when it has finished")
        else:
            try:
                self.session.rerank(rank_by)
                return True
            except (AleatoricError, ValueError, OSError) as error:
                notify.error("Cannot rank the queue by another column", error)
        self._show_rank_by()
        return False

    def _show_rank_by(self) -> None:
        settings = self.session.settings
        scored = self.session.table is not None and settings is not None
        self.queue.set_rank_by(settings.rank_by if scored else None)

    def _refresh_queue(self) -> None:
        if self.dataset is None:
            return
        self.scoring.sync_table()
        rows = {row["case_id"]: row for row in self.table.rows} if self.table else {}
        self.queue.set_cases([ref.case_id for ref in self.dataset.cases], list(self.dataset.foreground), rows,
                             self._statuses())
        if self.current is not None:
            self.queue.select(self.current.case_id)

    # ================================================================== scoring (the scoring box's work)

    def start_scoring(self, case_ids: list[str] | None = None, incremental: bool = True) -> bool:
        """Score the dataset in a worker; the queue fills in as cases finish. Returns whether it started."""
        return self.scoring.start_scoring(case_ids, incremental)

    def refresh_priorities(self) -> bool:
        """Re-learn label quality from the current annotations in a worker and re-rank the queue.
        Returns whether it started."""
        return self.scoring.refresh_priorities()

    def export_maps(self, folder: str | Path | None = None) -> bool:
        """Export the scored cases' label-issue maps and FM segmentations (see :meth:`ScoringBox.export_maps`)."""
        return self.scoring.export_maps(folder)

    def cancel_scoring(self) -> None:
        """Stop scoring after the case being scored; finished cases stay cached."""
        self.scoring.cancel_scoring()

    def _case_scored(self, event) -> None:
        if self._maps_outdated(event):
            self._reload_current_maps()

    def _scores_arrived(self, changed: ScoresChanged, incremental: bool) -> None:
        """A scoring pass or a refresh ended: show the case the session's rule says, or the new maps."""
        if changed.reason == "scored":
            following = self.session.case_after_scoring(
                self.queue.visible_case_ids(), self.current.case_id if self.current is not None else None,
                chosen=not self._auto_selected, unsaved_edits=self.is_dirty(), after_correction=not incremental)
            if following is not None:
                self.select_case(following)  # the reviewer had not chosen a case yet: the most doubtful one
                return
        if self.current is not None:
            if self._maps_outdated(changed):
                self._reload_current_maps()  # new maps: the corrected annotation's, or the label-issue maps
            else:
                self.update_summary()
                self._update_history()

    # ================================================================== the case shown

    def _resolve_unsaved(self) -> bool:
        """Ask about unsaved edits; returns whether the caller may go on."""
        if not self.is_dirty():
            return True
        answer = self.confirm_unsaved(self.current.case_id)
        if answer == "save":
            return self.save_case(wait=True)
        return answer == "discard"

    def is_dirty(self) -> bool:
        """Whether the annotation layer differs from the saved annotation of the current case."""
        return self.display.is_dirty(self.current)

    def mark_saved(self, labels: np.ndarray | None) -> None:
        """The annotation on disk of the case shown is now ``labels`` (``None``: not known)."""
        self.display.saved_label = labels

    def select_case(self, case_id: str) -> None:
        """Show a case (loaded in a worker); asks first when the current annotation has unsaved edits."""
        if self.dataset is None or not case_id:
            return
        self._auto_selected = False
        if self.current is not None and case_id == self.current.case_id and self._loading is None:
            self.queue.select(case_id)
            return
        if not self._resolve_unsaved():
            self.queue.select(self.current.case_id if self.current else None)
            return
        self.queue.select(case_id)
        self._load(case_id)

    def _load(self, case_id: str, keep_annotation: bool = False) -> None:
        self._load_token += 1
        token = self._load_token
        self._loading = case_id
        self.scoring.sync_table()
        row = self.table.row(case_id) if self.table else None
        status = self._statuses().get(case_id, "unreviewed")
        dataset, settings, session = self.dataset, self.settings, self.session

        def job():
            if not keep_annotation and session.dataset is dataset:
                try:
                    session.reconcile(case_id)  # the recovery rule: an unrecorded label file is recorded
                except (AleatoricError, OSError, ValueError, KeyError):
                    pass  # the store is only history; showing the case matters more
            return load_case_view(dataset, case_id, settings, row, status)

        def loaded(result):
            if token != self._load_token:
                return  # the user moved on
            self._loading = None
            if isinstance(result, Failure):
                notify.error(f"Cannot open case {case_id}", result.error)
                if not keep_annotation:  # the case shown is not the one selected: show none (edits were resolved)
                    self._show_no_case(case_id)
                self.unopened = case_id
                self.case_summary.show_text(f"<b>{case_id}</b>: cannot be opened.<br>{notify.describe(result.error)}"
                                            "<br>Revert to original restores its first annotation if one is kept.")
                self._update_buttons()
                return
            self._show_case(result, keep_annotation=keep_annotation)

        self._start(guarded, f"Cannot open case {case_id}", job, returned=loaded, name="load")

    def _reload_current_maps(self) -> None:
        if self.current is not None:
            self._load(self.current.case_id, keep_annotation=True)

    def _show_case(self, view: CaseView, keep_annotation: bool = False) -> None:
        """Put a loaded case in the viewer, reusing layers of the same name and type."""
        previous, self.current = self.current, view
        self.display.show(view, self.dataset.labels, previous, keep_annotation)
        self.unopened = None
        self.queue.select(view.case_id)
        self.update_summary()
        self._update_history()
        self._update_buttons()
        if self.session.current is not view.case:
            self.session.set_current(view.case)  # other views (the retraining panel) follow

    def _show_no_case(self, case_id: str) -> None:
        """A case could not be opened: the viewer shows no case (not the previous one as if it were this)."""
        self.current = None
        self.display.show_none()
        self.viewer.title = viewer_title(self.dataset.root.name if self.dataset else None, case_id,
                                         problem="cannot be opened")
        if self.session.current is not None:
            self.session.set_current(None)  # other views (the retraining panel) follow

    def update_summary(self) -> None:
        """Show the case's summary, status and unsaved edits (summary text and the viewer's title)."""
        view = self.current
        if view is None:
            self.case_summary.clear(self.dataset is not None)
            return
        view.status = self._statuses().get(view.case_id, "unreviewed")
        dirty = self.is_dirty()
        self._edits.shown(dirty)
        self.viewer.title = viewer_title(self.dataset.root.name, view.case_id, view.status, dirty)
        self.case_summary.show(view, view.status, len(self.table.rows) if self.table else 0, dirty)

    def _update_history(self) -> None:
        self.case_summary.show_history(self.store, self.current.case_id if self.current is not None else None)

    def next_case(self) -> None:
        """Go to the next case in the queue (as sorted and filtered)."""
        self._step(+1)

    def previous_case(self) -> None:
        """Go to the previous case in the queue."""
        self._step(-1)

    def _step(self, step: int) -> None:
        case_id = self.session.next_case(self.queue.selected_case, step=step, order=self.queue.visible_case_ids())
        if case_id is not None:
            self.select_case(case_id)
        elif step > 0:
            notify.info("End of the queue")

    # ================================================================== decisions, save, revert (the Case tab)

    def accept_case(self) -> None:
        """Mark the current case accepted (its annotation is right as it is) and go to the next unreviewed case."""
        self.actions.accept_case()

    def exclude_case(self) -> None:
        """Mark the current case excluded (left out of training) and go to the next unreviewed case."""
        self.actions.exclude_case()

    def reset_status(self) -> None:
        """Mark the current case unreviewed again (the decision taken back; recorded in the store)."""
        self.actions.reset_status()

    def save_case(self, wait: bool = False) -> bool:
        """Save the annotation layer over the case's label file (see :meth:`CaseActions.save_case`)."""
        return self.actions.save_case(wait)

    def revert_case(self, to) -> None:
        """Restore the label file to its original (``"original"``) or a revision id (see :meth:`CaseActions.revert_case`)."""
        self.actions.revert_case(to)

    # ================================================================== assisted correction (the Correct tab)

    def preview(self) -> None:
        """Run the foundation model on the current slice with the prompts; show the mask as 'FM preview'."""
        self.assist.preview()

    def apply_preview(self) -> int:
        """Write the preview into the annotation for the chosen class; returns the pixels changed."""
        return self.assist.apply_preview()

    def clear_prompts(self) -> None:
        """Remove the box, the points and the preview."""
        self.assist.clear_prompts()

    def current_slice(self) -> int:
        """Index (axis 0) of the slice shown, for volumes; 0 for 2D cases."""
        return self.assist.current_slice()

    def _prompts(self) -> assist.SlicePrompts:
        return self.assist.prompts()

    def _model(self, spec: str, device: str | None):
        """The model of the previews (built once per spec and device); replaceable in tests."""
        return self.assist.model(spec, device)

    # ================================================================== teardown

    def closeEvent(self, event):  # noqa: N802 (Qt)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop background work and close the store (called when the panel closes)."""
        self.scoring.shutdown()
        self.propagation.cancel()
        self.hot_slices.shutdown()
        for key in SHORTCUTS:
            try:
                self.viewer.bind_key(key, None)
            except (TypeError, ValueError, KeyError):
                pass
        self._unsubscribe()
        self._edits.close()
        self.viewer.title = self._title
        self.session.close()
