"""The review panel's "Case" tab: the case summary, the decision / save / revert bar and the history.

Previous / Next, Accept / Exclude / Mark unreviewed (the session's decision rule: a decision goes
on to the next unreviewed case below in the queue as shown), Save (the annotation layer over the
label file, original kept, in a worker; re-scored after saving when ticked), and Revert to the
original or to a revision selected in the history. What follows a correction is the session's rule
(:meth:`~napari_aleatoric.session.ReviewSession.rescore_after_correction`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from ..data.dataset import undeclared_values
from ..data.errors import AleatoricError
from ..session import DecisionRefused
from . import notify
from .case_summary import CaseSummary
from .case_view import ANNOTATION, load_case_view
from .workers import Failure, guarded


def _button(text: str, tooltip: str | None = None) -> QPushButton:
    button = QPushButton(text)
    if tooltip:
        button.setToolTip(tooltip)
    return button


def ask_unsaved_changes(parent: QWidget, case_id: str) -> str:
    """Ask what to do with unsaved edits: ``"save"``, ``"discard"`` or ``"cancel"``."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Unsaved correction")
    box.setText(f"The annotation of case {case_id} has unsaved changes.")
    box.setInformativeText("Save them before switching case?")
    box.setStandardButtons(QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                           | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    if answer == QMessageBox.StandardButton.Save:
        return "save"
    if answer == QMessageBox.StandardButton.Discard:
        return "discard"
    return "cancel"


class CaseActions(QWidget):
    """The "Case" tab of a :class:`~napari_aleatoric.gui.review_panel.ReviewPanel`.

    Args:
        panel: the review panel; the tab uses its ``viewer``, ``session``, ``current`` (the case
            shown), ``unopened``, ``queue``, ``message``, ``scoring`` (re-score), ``is_dirty``,
            ``select_case``, ``mark_saved``, ``_show_case``, ``_load`` and its workers (``_start``,
            ``_busy``, ``_workers``).
        summary: the summary widget placed in the tab, and the history widget placed in
            :attr:`history_tab` (the revisions and the revert buttons).
    """

    def __init__(self, panel, summary: CaseSummary, parent=None):
        super().__init__(parent)
        self.panel = panel
        self.summary = summary
        self.prev_button = _button("◀ Previous", "previous case in the queue (PageUp)")
        self.next_button = _button("Next ▶", "next case in the queue (PageDown)")
        self.accept_button = _button("Accept", "the annotation is correct as it is (Shift-A)")
        self.exclude_button = _button("Exclude", "leave this case out of training (Shift-X)")
        self.save_button = _button("Save", "save the corrected annotation (Shift-S); the original is kept")
        self.rescore_check = QCheckBox("re-score after saving")
        self.rescore_check.setChecked(True)
        self.rescore_check.setToolTip("re-score in the background with the model that scored the dataset")
        self.reset_button = _button("Mark unreviewed", "take the decision back: the case is unreviewed again "
                                                       "(Shift-U); its annotation is not changed")
        self.revert_original_button = _button("Revert to original")
        self.revert_selected_button = _button("Revert to selected")
        layout = QVBoxLayout(self)
        layout.addWidget(summary.label)
        # three buttons a row: the panel may be ~300 px wide beside the retraining panel
        for buttons in ((self.prev_button, self.next_button, self.save_button),
                        (self.accept_button, self.exclude_button, self.reset_button)):
            row = QHBoxLayout()
            for button in buttons:
                row.addWidget(button)
            layout.addLayout(row)
        layout.addWidget(self.rescore_check)
        layout.addStretch(1)
        # the revisions and the revert buttons: a tab of their own (the panel puts it beside this
        # one), so the queue keeps its rows on a 1000-px screen
        self.history_tab = QWidget()
        history = QVBoxLayout(self.history_tab)
        history.addWidget(QLabel("revisions of this case"))
        history.addWidget(summary.history, 1)
        row = QHBoxLayout()
        row.addWidget(self.revert_original_button)
        row.addWidget(self.revert_selected_button)
        history.addLayout(row)

        self.prev_button.clicked.connect(panel.previous_case)
        self.next_button.clicked.connect(panel.next_case)
        self.accept_button.clicked.connect(self.accept_case)
        self.exclude_button.clicked.connect(self.exclude_case)
        self.reset_button.clicked.connect(self.reset_status)
        self.save_button.clicked.connect(lambda: self.save_case())
        self.revert_original_button.clicked.connect(lambda: self.revert_case("original"))
        self.revert_selected_button.clicked.connect(self._revert_selected)

    def update_buttons(self, has_case: bool) -> None:
        """Enable what the case shown, the store and a running save allow."""
        panel = self.panel
        writable = panel.session.store is not None
        saving = "save" in panel._busy
        for button in (self.accept_button, self.exclude_button, self.prev_button, self.next_button):
            button.setEnabled(has_case)
        self.reset_button.setEnabled(has_case and writable and panel.current.status != "unreviewed")
        self.save_button.setEnabled(has_case and writable and not saving)
        self.revert_original_button.setEnabled((has_case or panel.unopened is not None) and writable and not saving)
        self.revert_selected_button.setEnabled(has_case and writable and not saving)

    # ------------------------------------------------------------------ decisions

    def decide(self, status: str) -> None:
        """Record a status through the session and go where its rule says (the next unreviewed case
        below after accept / exclude, in the queue as shown; the same case after a reset)."""
        panel, view = self.panel, self.panel.current
        if view is None or panel.session.store is None:
            notify.warning("Open a case of a dataset with a usable review store first")
            return
        order = panel.queue.visible_case_ids()
        try:  # the queue follows (StatusChanged)
            following = panel.session.decide(view.case_id, status, order, unsaved_edits=panel.is_dirty())
        except DecisionRefused as refused:
            notify.warning(str(refused))
            return
        except AleatoricError as error:
            notify.error(f"Cannot mark {view.case_id} as {status}", error)
            return
        if following is None:
            left = len(panel.session.unreviewed(order))
            text = (f"{view.case_id} {status}: no unreviewed case below it in the queue as shown; "
                    + (f"{left} unreviewed above it." if left else "every case shown is reviewed."))
            panel.message.setText(text)
            notify.info(text)
        elif following != view.case_id:
            panel.select_case(following)

    def accept_case(self) -> None:
        """Mark the current case accepted (its annotation is right as it is) and go to the next unreviewed case."""
        self.decide("accepted")

    def exclude_case(self) -> None:
        """Mark the current case excluded (left out of training) and go to the next unreviewed case."""
        self.decide("excluded")

    def reset_status(self) -> None:
        """Mark the current case unreviewed again (the decision taken back; recorded in the store)."""
        self.decide("unreviewed")

    # ------------------------------------------------------------------ save and revert

    def _labels_to_save(self, view) -> np.ndarray | None:
        """The annotation layer's labels if they can be saved over the case's label file, else ``None``
        (the reason is a notification)."""
        panel = self.panel
        if view is None or view.case.label is None or ANNOTATION not in panel.viewer.layers:
            notify.warning("No annotation to save")
            return None
        if panel.session.store is None:
            notify.error("Cannot save: the review store of this dataset cannot be used")
            return None
        if "save" in panel._busy:
            notify.warning("A save is already running")
            return None
        labels = np.array(panel.viewer.layers[ANNOTATION].data, copy=True)
        if labels.shape != view.case.label.shape:
            notify.error(f"Cannot save {view.case.ref.label_path}: the annotation layer has shape {labels.shape}, "
                         f"the case {view.case.label.shape}")
            return None
        declared = panel.session.dataset.labels
        undeclared = undeclared_values(labels, declared)
        if undeclared:
            notify.error(f"Cannot save {view.case.ref.label_path}: the annotation has label value(s) "
                         f"{', '.join(map(str, undeclared[:10]))} that dataset.json does not declare "
                         f"(declared: {', '.join(f'{v}={n}' for n, v in declared.items())}); "
                         "paint them over with a declared class, then save")
            return None
        return labels

    def save_case(self, wait: bool = False) -> bool:
        """Save the annotation layer over the case's label file (original kept, revision recorded).

        Runs in a worker; ``wait=True`` blocks until it is written (used before switching case).
        Returns whether a save was started (and, with ``wait``, succeeded).
        """
        panel, view = self.panel, self.panel.current
        labels = self._labels_to_save(view)
        if labels is None:
            return False
        outcome: dict = {}

        def saved(result):
            outcome["result"] = result
            if isinstance(result, Failure):
                notify.error("Cannot save the correction", result.error)
                return
            if panel.current is not None and panel.current.case_id == view.case_id:
                panel.mark_saved(labels)
            # the maps shown go out of date; status, history and queue follow the session's events
            panel.session.correction_saved(result)
            notify.info(f"Saved {view.case.ref.label_path.name} (revision {result.id}); "
                        "the original is kept under .aleatoric/originals")
            panel.scoring.rescore(self.rescore_check.isChecked())

        worker = panel._start(guarded, "Cannot save", panel.session.write_correction, view.case_id, labels,
                              view.case.geometry, returned=saved, name="save")
        if wait:
            _wait_for(lambda: "result" in outcome or worker not in panel._workers)
            return not isinstance(outcome.get("result"), Failure)
        return True

    def _revert_selected(self) -> None:
        revision_id = self.summary.selected_revision()
        if revision_id is None:
            notify.warning("Select a revision in the list first")
            return
        self.revert_case(revision_id)

    def revert_case(self, to) -> None:
        """Restore the label file to its original (``"original"``) or a revision id; edits are dropped.

        A case selected in the queue that could not be opened (e.g. its label file holds values
        ``dataset.json`` does not declare) can be reverted too: its label file is restored without
        opening it, then the case is opened.
        """
        panel = self.panel
        session, dataset, settings = panel.session, panel.session.dataset, panel.session.settings
        if panel.unopened is not None and dataset is not None and session.store is not None:
            self._revert_unopened(panel.unopened, to)
            return
        view = panel.current
        if view is None or session.store is None or view.case.ref.label_path is None:
            notify.warning("No case to revert")
            return
        if "save" in panel._busy:
            notify.warning("A save is running; try again when it has finished")
            return

        def job():
            revision = session.write_revert(view.case_id, to)
            return revision, load_case_view(dataset, view.case_id, settings, view.row)

        def reverted(result):
            if isinstance(result, Failure):
                notify.error("Cannot revert", result.error)
                return
            revision, fresh = result
            if panel.current is not None and panel.current.case_id == view.case_id:
                panel._show_case(fresh)
            session.correction_saved(revision, "reverted")
            notify.info(f"Reverted {view.case.ref.label_path.name} ({revision.note})")
            panel.scoring.rescore(self.rescore_check.isChecked())

        panel._start(guarded, "Cannot revert", job, returned=reverted, name="save")

    def _revert_unopened(self, case_id: str, to) -> None:
        """Revert a case that could not be opened, then open it (see :meth:`revert_case`)."""
        panel = self.panel
        if "save" in panel._busy:
            notify.warning("A save is running; try again when it has finished")
            return
        session, dataset = panel.session, panel.session.dataset
        try:
            ref = dataset.case(case_id)
        except AleatoricError as error:
            notify.error("Cannot revert", error)
            return
        if ref.label_path is None:
            notify.warning(f"Case {case_id} has no annotation to revert")
            return

        def reverted(result):
            if isinstance(result, Failure):
                notify.error("Cannot revert", result.error)
                return
            if session.dataset is dataset:
                session.correction_saved(result, "reverted")
            notify.info(f"Reverted {ref.label_path.name} ({result.note})")
            if panel.unopened == case_id and session.dataset is dataset:
                panel.unopened = None
                panel.mark_saved(None)  # not known until it is opened
                panel._load(case_id)

        panel._start(guarded, "Cannot revert", session.write_revert, case_id, to, returned=reverted, name="save")


def _wait_for(condition: Callable[[], bool], timeout_ms: int = 120_000) -> None:
    """Process Qt events until ``condition()`` holds (or ``timeout_ms`` passed)."""
    from qtpy.QtCore import QElapsedTimer, QEventLoop  # noqa: PLC0415
    from qtpy.QtWidgets import QApplication  # noqa: PLC0415

    timer = QElapsedTimer()
    timer.start()
    while not condition() and timer.elapsed() < timeout_ms:
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
