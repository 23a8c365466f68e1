"""The review panel: open a dataset, score it in the background, walk the ranked queue, correct, save.

Thin by design: the panel is a view of the viewer's :class:`~napari_aleatoric.session.ReviewSession`
(found through :mod:`.sessions`), which owns the dataset, the review store, the scores, the stored
scoring settings and the review rules (status, save, revert, reconcile, re-score); the panel shows
the session's events and adds what only a viewer has (layers, prompts, dialogs). Work that reads many files or runs a
model (scoring, loading a case, the model preview, saving, reverting) runs in a napari thread
worker so the viewer stays responsive; scoring has a progress bar and a Cancel button (the
scoring generator stops between cases, and finished cases stay cached on disk). Every problem
becomes a napari notification naming the file and the problem; the viewer stays usable.

Layers shown for a case (all with ``scale`` = voxel spacing in mm): ``image``, one
``label issue: <class>`` map per class (``uncertainty: <class>`` before label quality ran; only the worst class visible), ``FM segmentation``
(hidden at first), ``annotation`` (editable), and the prompt layers ``FM box prompt`` /
``FM point prompts`` / ``FM preview`` for assisted correction. Switching case updates these
layers in place.

The layer names stay the same from case to case (panels and scripts look layers up by them); the
viewer's title names the case shown, its status and unsaved edits (:mod:`.case_layers`). Accept and
Exclude go on to the next unreviewed case below in the queue as shown (the session's rule,
:meth:`~napari_aleatoric.session.ReviewSession.decide`); Next / Previous step through every case shown.

Keyboard shortcuts on the viewer (canvas focused): PageDown / PageUp next / previous case in the
queue (also in the queue's table), Shift-A accept, Shift-X exclude, Shift-U mark unreviewed, Shift-S save. (Ctrl-S stays napari's "Save selected
layers": napari's menu owns that shortcut, so binding it here would never fire.) Ctrl-Z undoes
paint strokes and applied previews on ``annotation`` (napari's labels history).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..data.arraycache import ArrayCache
from ..data.dataset import Dataset, undeclared_values
from ..data.errors import AleatoricError
from ..models import registry
from ..models.base import resolve_device
from ..pipelines.label_quality import LabelQualityProgress
from ..pipelines.export_maps import (CaseMapsExported, CaseMapsSkipped, MapsExportFinished, check_export_dir,
                                     export_maps)
from ..pipelines.priorities import PrioritiesRefreshed
from ..pipelines.scoring import CaseScored, CaseSkipped, ScoringFinished, ScoringStarted
from ..pipelines.table import ScoreTable, build_table, unjudged_classes
from ..review.store import ReviewStore
from ..session import DatasetOpened, RevisionRecorded, ScoresChanged, StatusChanged
from . import assist, notify, sessions
from ._compat import guard_triton
from .case_layers import order_layers, put_layer, remove_case_layers, same_setting, viewer_title
from .case_view import (
    ANNOTATION,
    ANNOTATION_CONTOUR,
    FM_SEGMENTATION,
    IMAGE,
    is_heatmap_layer,
    CaseView,
    ScoringSettings,
    case_layer_data,
    class_colour,
    label_colormap,
    load_case_view,
)
from .edits import EditWatch
from .queue import QueueTable
from .workers import BackgroundWork, Failure, forward_events, guarded, safe_slot

PANEL_NAME = "Review panel (napari-aleatoric)"
DEVICES = ("auto", "cpu", "cuda")
CHECKPOINT_KINDS = ("litemedsam", "sam-vit-b", "sam-vit-l", "sam-vit-h", "medsam")
#: shortcut → (panel method name, description)
SHORTCUTS = {
    "PageDown": ("next_case", "next case"),
    "PageUp": ("previous_case", "previous case"),
    "Shift-A": ("accept_case", "accept"),
    "Shift-X": ("exclude_case", "exclude"),
    "Shift-U": ("reset_status", "mark unreviewed"),
    "Shift-S": ("save_case", "save"),
}


def _worker_events(what: str, events):
    """A session's event generator run in a worker (a generator function, so napari runs it as a
    generator worker); an exception becomes one :class:`Failure` naming ``what``."""
    yield from forward_events(what, lambda: events)


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
    :meth:`is_busy`.
    """

    def __init__(self, napari_viewer, model: str = registry.DEFAULT_MODEL, device: str | None = None):
        super().__init__()
        guard_triton()
        self.viewer = napari_viewer
        self.session = sessions.session_for(napari_viewer)
        self.session.model, self.session.device = model, (None if device in (None, "", "auto") else device)
        self._partial_table: ScoreTable | None = None  # the cases scored so far, while scoring runs
        self.current: CaseView | None = None
        self.confirm_unsaved: Callable[[str], str] = lambda case_id: ask_unsaved_changes(self, case_id)
        self.ask_checkpoint_kind: Callable[[str], str | None] = self._ask_checkpoint_kind
        self._saved_label: np.ndarray | None = None
        self._results: dict = {}
        self._table_outdated = False  # scored cases not yet in self.table (built with the next queue refresh)
        self._score_worker = None
        self._score_incremental = True
        self._rescore_pending = False
        self._load_token = 0
        self._loading: str | None = None
        self._busy: set[str] = set()
        self._workers: set = set()
        self._models: dict = {}
        self._preview: dict | None = None
        self._skipped_shown = 0
        self._auto_selected = False
        self._styled: weakref.WeakSet = weakref.WeakSet()  # annotation layers styled and guarded
        self._edits = EditWatch(self.is_dirty, lambda _dirty: self._update_summary(), self)
        self._title = napari_viewer.title  # given back when the panel closes
        self._unopened: str | None = None  # the selected case that could not be opened (Revert still works)

        self._build_ui(model, device)
        self._bind_shortcuts()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(300)
        self._refresh_timer.timeout.connect(self._show_scoring_progress)
        self._pending_progress: tuple[int, str] | None = None  # (cases done, message) not shown yet
        self._unsubscribe = self.session.subscribe(safe_slot(self._on_session_event))
        self._update_buttons()

    # ================================================================== the session

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
        return self._partial_table if self._partial_table is not None else self.session.table

    def _on_session_event(self, event) -> None:
        """Show what changed in the session (whoever changed it: this panel, another, a script)."""
        if isinstance(event, DatasetOpened):
            self._dataset_shown(event)
        elif isinstance(event, StatusChanged):
            self.queue.set_status(event.case_id, event.status)
            if self.current is not None and self.current.case_id == event.case_id:
                self._update_summary()
                self._update_buttons()
        elif isinstance(event, RevisionRecorded):
            if self.current is not None and self.current.case_id == event.case_id:
                self._update_history()
        elif isinstance(event, ScoresChanged):
            self._partial_table, self._table_outdated = None, False
            self._show_rank_by()
            self._refresh_queue()
            if self.current is not None:
                self.current.row = event.table.row(self.current.case_id)

    # ================================================================== UI construction

    def _build_ui(self, model: str, device: str | None) -> None:
        self.setMinimumWidth(460)
        # dataset
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("dataset folder with dataset.json (nnU-Net v2 or Decathlon)")
        self.browse_button = QPushButton("Browse…")
        self.open_button = QPushButton("Open")
        self.sample_combo = QComboBox()
        self.sample_button = QPushButton("Open sample")
        try:
            from ..sample_data import DATASETS  # noqa: PLC0415

            self.sample_combo.addItems(list(DATASETS))
        except ImportError:  # pragma: no cover - the package ships its samples
            self.sample_combo.setEnabled(False)
        dataset_box = QGroupBox("Dataset")
        grid = QVBoxLayout(dataset_box)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_button)
        row.addWidget(self.open_button)
        grid.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("sample"))
        row.addWidget(self.sample_combo, 1)
        row.addWidget(self.sample_button)
        grid.addLayout(row)

        # model and scoring
        self.model_edit = QLineEdit(model)
        self.model_edit.textChanged.connect(lambda text: setattr(self.session, "model", text.strip()))
        self.model_edit.setToolTip("litemedsam (bundled, offline), litemedsam:PATH, sam-vit-b:PATH, "
                                   "sam-vit-l:PATH, sam-vit-h:PATH, medsam:PATH, or tiny (random, for tests)")
        self.checkpoint_button = QPushButton("Checkpoint…")
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICES))
        if device and device not in DEVICES:
            self.device_combo.addItem(device)
        self.device_combo.setCurrentText(device or "auto")
        self.device_combo.currentTextChanged.connect(lambda _text: setattr(self.session, "device", self._device()))
        self.score_button = QPushButton("Score")
        self.score_button.setToolTip("Score every case (cached cases are fast); the queue fills in as cases finish")
        self.cancel_button = QPushButton("Cancel")
        self.export_button = QPushButton("Export maps…")
        self.export_button.setToolTip("Write every scored case's label-issue maps and the model's segmentation as "
                                      "files on the image's own geometry (NIfTI, TIFF or PNG), to open over the "
                                      "image in 3D Slicer or ITK-SNAP")
        self.refresh_button = QPushButton("Refresh priorities")
        self.refresh_button.setToolTip("Re-learn label quality from the current (corrected) annotations and re-rank "
                                       "the queue; uses the cached embeddings, does not re-run the model's decoder")
        self.scheduler_edit = QLineEdit()
        self.scheduler_edit.setPlaceholderText("optional: tcp://host:8786 (score on that Dask cluster)")
        self.scheduler_edit.setToolTip("Address of a Dask scheduler whose workers share this dataset's folder: "
                                       "scoring runs there, one task per case, and the queue fills as cases "
                                       "arrive. Empty: score here.")
        self.scheduler_edit.textChanged.connect(
            lambda text: setattr(self.session, "scheduler", text.strip() or None))
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m cases")
        self.progress.setValue(0)
        self.progress.setMaximum(1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        scoring_box = QGroupBox("Model and scoring")
        grid = QVBoxLayout(scoring_box)
        row = QHBoxLayout()
        row.addWidget(QLabel("model"))
        row.addWidget(self.model_edit, 1)
        row.addWidget(self.checkpoint_button)
        row.addWidget(self.export_button)
        grid.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("device"))
        row.addWidget(self.device_combo)
        row.addWidget(self.score_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.refresh_button)
        row.addWidget(self.progress, 1)
        grid.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Dask scheduler"))
        row.addWidget(self.scheduler_edit, 1)
        grid.addLayout(row)
        grid.addWidget(self.message)

        # queue
        self.queue = QueueTable()

        # case tab
        self.summary = QLabel("Open a dataset to start.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.summary.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.prev_button = QPushButton("◀ Previous")
        self.prev_button.setToolTip("previous case in the queue (PageUp)")
        self.next_button = QPushButton("Next ▶")
        self.next_button.setToolTip("next case in the queue (PageDown)")
        self.accept_button = QPushButton("Accept")
        self.accept_button.setToolTip("the annotation is correct as it is (Shift-A)")
        self.exclude_button = QPushButton("Exclude")
        self.exclude_button.setToolTip("leave this case out of training (Shift-X)")
        self.save_button = QPushButton("Save")
        self.save_button.setToolTip("save the corrected annotation (Shift-S); the original is kept")
        self.rescore_check = QCheckBox("re-score after saving")
        self.rescore_check.setChecked(True)
        self.rescore_check.setToolTip("re-score in the background with the model that scored the dataset")
        self.reset_button = QPushButton("Mark unreviewed")
        self.reset_button.setToolTip("take the decision back: the case is unreviewed again (Shift-U); "
                                     "its annotation is not changed")
        self.history = QListWidget()
        self.history.setMaximumHeight(110)
        self.revert_original_button = QPushButton("Revert to original")
        self.revert_selected_button = QPushButton("Revert to selected")
        case_tab = QWidget()
        layout = QVBoxLayout(case_tab)
        layout.addWidget(self.summary)
        row = QHBoxLayout()
        for button in (self.prev_button, self.next_button, self.accept_button, self.exclude_button, self.save_button):
            row.addWidget(button)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.rescore_check)
        row.addStretch(1)
        row.addWidget(self.reset_button)
        layout.addLayout(row)
        layout.addWidget(QLabel("revisions of this case"))
        layout.addWidget(self.history)
        row = QHBoxLayout()
        row.addWidget(self.revert_original_button)
        row.addWidget(self.revert_selected_button)
        layout.addLayout(row)
        layout.addStretch(1)

        # correction tab
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
        correct_tab = QWidget()
        form = QFormLayout(correct_tab)
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
        form.addRow(self.overwrite_check)
        form.addRow(self.replace_check)

        self.tabs = QTabWidget()
        self.tabs.addTab(case_tab, "Case")
        self.tabs.addTab(correct_tab, "Correct")

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.queue)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)

        main = QVBoxLayout(self)
        main.setContentsMargins(4, 4, 4, 4)
        main.addWidget(dataset_box)
        main.addWidget(scoring_box)
        main.addWidget(splitter, 1)

        self.browse_button.clicked.connect(self._browse_dataset)
        self.open_button.clicked.connect(lambda: self.open_dataset(self.path_edit.text()))
        self.path_edit.returnPressed.connect(lambda: self.open_dataset(self.path_edit.text()))
        self.sample_button.clicked.connect(lambda: self.open_sample(self.sample_combo.currentText()))
        self.checkpoint_button.clicked.connect(self._browse_checkpoint)
        self.score_button.clicked.connect(lambda: self.start_scoring())
        self.cancel_button.clicked.connect(self.cancel_scoring)
        self.refresh_button.clicked.connect(self.refresh_priorities)
        self.export_button.clicked.connect(lambda: self.export_maps())
        self.queue.case_selected.connect(self.select_case)
        self.queue.rank_by_chosen.connect(self.rank_by)
        self.queue.step_requested.connect(self._step)
        self.prev_button.clicked.connect(self.previous_case)
        self.next_button.clicked.connect(self.next_case)
        self.accept_button.clicked.connect(self.accept_case)
        self.exclude_button.clicked.connect(self.exclude_case)
        self.reset_button.clicked.connect(self.reset_status)
        self.save_button.clicked.connect(lambda: self.save_case())
        self.revert_original_button.clicked.connect(lambda: self.revert_case("original"))
        self.revert_selected_button.clicked.connect(self._revert_selected)
        self.class_combo.currentIndexChanged.connect(self._class_changed)
        self.negative_check.toggled.connect(self._polarity_changed)
        self.preview_button.clicked.connect(self.preview)
        self.apply_button.clicked.connect(self.apply_preview)
        self.clear_prompts_button.clicked.connect(self.clear_prompts)

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

        return QSize(640, 900)

    def _update_buttons(self) -> None:
        has_dataset = self.dataset is not None
        has_case = self.current is not None and self.current.case.label is not None
        scoring = self._score_worker is not None
        self.score_button.setEnabled(has_dataset and not scoring)
        self.refresh_button.setEnabled(has_dataset and not scoring and self.table is not None)
        self.export_button.setEnabled(has_dataset and not scoring and self.table is not None)
        self.cancel_button.setEnabled(scoring)
        for button in (self.accept_button, self.exclude_button, self.prev_button, self.next_button,
                       self.preview_button, self.clear_prompts_button):
            button.setEnabled(has_case)
        self.reset_button.setEnabled(has_case and self.store is not None and self.current.status != "unreviewed")
        saving_now = "save" in self._busy
        self.save_button.setEnabled(has_case and self.store is not None and not saving_now)
        can_revert = (has_case or self._unopened is not None) and self.store is not None and not saving_now
        self.revert_original_button.setEnabled(can_revert)
        self.revert_selected_button.setEnabled(has_case and self.store is not None and not saving_now)
        self.preview_button.setEnabled(has_case and "preview" not in self._busy)
        self.apply_button.setEnabled(has_case and self._preview is not None)

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Foundation-model checkpoint", str(Path.home()),
                                              "PyTorch checkpoints (*.pth *.pt *.bin);;All files (*)")
        if not path:
            return
        kind = self.ask_checkpoint_kind(path)
        if kind:
            self.model_edit.setText(f"{kind}:{path}")

    def _ask_checkpoint_kind(self, path: str) -> str | None:
        name = Path(path).name.lower()
        guess = ("medsam" if "medsam" in name and "lite" not in name else "litemedsam" if "lite" in name
                 else "sam-vit-h" if "vit_h" in name else "sam-vit-l" if "vit_l" in name else "sam-vit-b")
        kind, ok = QInputDialog.getItem(self, "Checkpoint type", f"Which model is {Path(path).name}?",
                                        list(CHECKPOINT_KINDS), CHECKPOINT_KINDS.index(guess), False)
        return kind if ok else None

    # ================================================================== workers

    def is_busy(self) -> bool:
        """Whether any background work (scoring, loading, saving, preview) is running."""
        return bool(self._workers) or self._score_worker is not None

    # ================================================================== dataset

    def _browse_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a labelled dataset (folder with dataset.json)",
                                                  self.path_edit.text() or str(Path.home()))
        if folder:
            self.open_dataset(folder)

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
        if self._score_worker is not None:
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
        self.current, self._saved_label, self._preview = None, None, None
        remove_case_layers(self.viewer)  # the previous dataset's case is not one of this dataset's
        self.viewer.title = viewer_title(dataset.root.name)
        self._results, self._models = {}, {}
        self._partial_table, self._table_outdated = None, False
        self.path_edit.setText(str(dataset.root))
        if self.sample_combo.findText(dataset.root.name) >= 0:
            self.sample_combo.setCurrentText(dataset.root.name)
        for warning in dataset.warnings[:3]:
            notify.warning(f"{dataset.root}: {warning}")
        csv_path = dataset.state_dir / "scores.csv"
        if self.session.scores_error is not None:
            notify.error(f"Cannot read the saved scores {csv_path}; score the dataset again", self.session.scores_error)
        if event.table is not None:
            self.message.setText(f"Review-only: scores from {csv_path} "
                                 f"(model {event.settings.model if event.settings else 'unknown'}); "
                                 "no model is loaded until you score or preview.")
        else:
            self.message.setText(f"{len(dataset.cases)} cases, not scored yet: press Score "
                                 f"(model {self.model_edit.text()}).")
        self.progress.setMaximum(max(1, len(dataset.cases)))
        self.progress.setValue(len(event.table.rows) if event.table else 0)
        self._populate_classes()
        self.queue.select(None)
        self.queue.clear()
        self._show_rank_by()
        self._refresh_queue()
        self._clear_case_display()
        self._update_buttons()

    def top_case(self) -> str | None:
        """The first case of the queue as displayed (rank order by default)."""
        ids = self.queue.visible_case_ids()
        return ids[0] if ids else None

    def _populate_classes(self) -> None:
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        if self.dataset is not None:
            for name, value in self.dataset.foreground.items():
                self.class_combo.addItem(f"{name} ({value})", value)
        self.class_combo.blockSignals(False)

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

    def _sync_table(self) -> None:
        """Rank the cases scored so far (done once per queue refresh, not once per scored case)."""
        if self._table_outdated and self.dataset is not None and self._results:
            self._partial_table = build_table(list(self._results.values()), list(self.dataset.foreground))
        self._table_outdated = False

    def _refresh_queue(self) -> None:
        if self.dataset is None:
            return
        self._sync_table()
        rows = {row["case_id"]: row for row in self.table.rows} if self.table else {}
        self.queue.set_cases([ref.case_id for ref in self.dataset.cases], list(self.dataset.foreground), rows,
                             self._statuses())
        if self.current is not None:
            self.queue.select(self.current.case_id)

    def _clear_case_display(self) -> None:
        self.summary.setText("Select a case in the queue." if self.dataset else "Open a dataset to start.")
        self.history.clear()

    # ================================================================== scoring

    def _device(self) -> str | None:
        text = self.device_combo.currentText().strip()
        return None if text in ("", "auto") else text

    def start_scoring(self, case_ids: list[str] | None = None, incremental: bool = True) -> bool:
        """Score the dataset in a worker; the queue fills in as cases finish. Returns whether it started."""
        if self.dataset is None:
            notify.warning("Open a dataset first")
            return False
        if self._score_worker is not None:
            notify.warning("Scoring is already running")
            return False
        spec = self.model_edit.text().strip() or registry.DEFAULT_MODEL
        device = self._device()
        try:
            resolve_device(device)
        except ValueError as error:
            notify.error("Cannot score", error)
            return False
        try:
            events = self.session.scoring_events(spec, device, case_ids)  # the dataset's stored settings
        except AleatoricError as error:
            notify.error("Cannot score", error)
            return False
        self._results = {}
        self._skipped_shown = 0
        self._score_incremental = incremental
        self.progress.setValue(0)
        where = f"the Dask cluster at {self.session.scheduler}" if self.session.scheduler else (device or "auto")
        self.message.setText(f"Scoring with {spec} on {where}…")
        self._score_worker = self._start(_worker_events, "Scoring failed", events,
                                         yielded=self._on_scoring_event, finished=self._on_scoring_done,
                                         name="score")
        return True

    def refresh_priorities(self) -> bool:
        """Re-learn label quality from the current annotations in a worker and re-rank the queue.
        Returns whether it started."""
        if self.dataset is None or self.table is None:
            notify.warning("Score the dataset first")
            return False
        if self._score_worker is not None:
            notify.warning("Scoring is already running")
            return False
        spec = self.model_edit.text().strip() or registry.DEFAULT_MODEL
        try:
            events = self.session.refresh_events(spec, self._device())
        except AleatoricError as error:
            notify.error("Refreshing priorities failed", error)
            return False
        self.progress.setValue(0)
        self.message.setText("Refreshing priorities from the current annotations…")
        self._score_worker = self._start(_worker_events, "Refreshing priorities failed", events,
                                         yielded=self._on_refresh_event, finished=self._on_scoring_done,
                                         name="refresh")
        self._update_buttons()
        return True

    def export_maps(self, folder: str | Path | None = None) -> bool:
        """Export the scored cases' label-issue maps and FM segmentations into ``folder`` (asked for
        when ``None``) in a worker, with progress; the pipeline's rules decide what is written
        (:func:`~napari_aleatoric.pipelines.export_maps.export_maps`). Returns whether it started."""
        settings = self.settings
        if self.dataset is None or self.table is None or settings is None or not settings.model:
            notify.warning("Score the dataset first")
            return False
        if self._score_worker is not None:
            notify.warning("Scoring is running: export the maps when it has finished")
            return False
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export the label-issue maps into a folder",
                                                      str(self.dataset.root.parent))
            if not folder:
                return False
        try:
            folder = check_export_dir(self.dataset, folder)
        except (AleatoricError, OSError) as error:
            notify.error("Cannot export the maps there", error)
            return False
        events = export_maps(self.dataset, folder, settings.model, settings.input_mode)
        self.progress.setValue(0)
        self.message.setText(f"Exporting the maps to {folder}…")
        self._score_worker = self._start(_worker_events, "Exporting the maps failed", events,
                                         yielded=self._on_export_event, finished=self._on_scoring_done,
                                         name="export")
        self._update_buttons()
        return True

    def _on_export_event(self, event) -> None:
        if isinstance(event, Failure):
            notify.error(event.what, event.error)
            self.message.setText(f"{event.what}: {notify.describe(event.error)}")
        elif isinstance(event, (CaseMapsExported, CaseMapsSkipped)):
            self.progress.setMaximum(event.total)
            self.progress.setValue(event.index)
        elif isinstance(event, MapsExportFinished):
            skipped = "".join(f"<br>{case_id}: {reason}" for case_id, reason in list(event.skipped.items())[:5])
            self.message.setText(f"Maps: {len(event.files)} files for {len(event.exported)} cases written to "
                                 f"{event.out_dir}; {len(event.skipped)} cases skipped{skipped}")

    def _on_refresh_event(self, event) -> None:
        if isinstance(event, Failure):
            self._pending_progress = None
            notify.error(event.what, event.error)
            self.message.setText(f"{event.what}: {notify.describe(event.error)}")
        elif isinstance(event, LabelQualityProgress):
            self._show_label_quality_progress(event)
        elif isinstance(event, PrioritiesRefreshed):
            self._pending_progress = None
            self.session.apply(event)  # the session's table; the queue follows (ScoresChanged)
            self.message.setText(f"Priorities refreshed from the current annotations in {event.seconds:.1f} s "
                                 f"({sum(r['flagged'] for r in event.table.rows)} flagged as likely mislabelled).")
            self._refresh_queue()
            if self.current is not None:
                self.current.row = event.table.row(self.current.case_id)
                self._reload_current_maps()

    def cancel_scoring(self) -> None:
        """Stop scoring after the case being scored; finished cases stay cached."""
        if self._score_worker is not None:
            self._score_worker.quit()
            self.message.setText("Stopping after the current case… (finished cases are cached)")
            self.cancel_button.setEnabled(False)

    def _on_scoring_event(self, event) -> None:
        if isinstance(event, Failure):
            if self._pending_progress is not None:  # the failure's message must stay
                self.progress.setValue(self._pending_progress[0])
                self._pending_progress = None
            notify.error(event.what, event.error)
            self.message.setText(f"{event.what}: {notify.describe(event.error)}")
        elif isinstance(event, ScoringStarted):
            self.progress.setMaximum(max(1, event.total))
            self.progress.setValue(len(event.skipped))
            for error in event.skipped:
                self._show_skipped(error)
        elif isinstance(event, CaseScored):
            # Shown with the next refresh (at most every 300 ms), not per case: cached or fast cases
            # arrive several times a second, and updating the table, label, progress bar and queue
            # for each one took 15-50 ms of the GUI thread under load (docs/performance.md).
            self._results[event.result.case_id] = event.result
            self._pending_progress = (event.index, f"Scored {event.result.case_id}"
                                      f"{' (cached)' if event.result.cached else ''} "
                                      f"({event.index}/{event.total}, {event.seconds:.1f} s)")
            if not self._refresh_timer.isActive():
                self._refresh_timer.start()
            if self._score_incremental and self.dataset is not None:
                self._table_outdated = True
                if self.current is not None and event.result.case_id == self.current.case_id and \
                        (self.current.heatmaps is None or self.current.outdated):
                    self._reload_current_maps()
        elif isinstance(event, CaseSkipped):
            self._pending_progress = None
            self.progress.setValue(event.index)
            self._show_skipped(event.error)
        elif isinstance(event, LabelQualityProgress):
            self._show_label_quality_progress(event)
        elif isinstance(event, ScoringFinished):
            self._on_scoring_finished(event)

    def _show_label_quality_progress(self, event: LabelQualityProgress) -> None:
        """Label quality (after the cases, or on Refresh priorities): the bar counts its stages."""
        if event.index == 1 or event.stage == "fitting":
            self.progress.setMaximum(max(1, event.total))
        text = (f"Label quality: {event.stage} {event.index}/{event.total}" if event.case_id
                else "Label quality: fitting the classifiers")
        self._pending_progress = (event.index, text)
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _show_scoring_progress(self) -> None:
        """Show what scoring did since the last refresh: progress, message and (incremental) the queue."""
        if self._pending_progress is not None:
            done, text = self._pending_progress
            self._pending_progress = None
            self.progress.setValue(done)
            self.message.setText(text)
        if self._table_outdated:
            self._refresh_queue()

    def _show_skipped(self, error: BaseException) -> None:
        self._skipped_shown += 1
        if self._skipped_shown <= 3:
            notify.warning(f"Skipped: {error}")
        elif self._skipped_shown == 4:
            notify.warning("More cases were skipped; see scores.json for the list")

    def _on_scoring_finished(self, event: ScoringFinished) -> None:
        if self._pending_progress is not None:
            self.progress.setValue(self._pending_progress[0])
            self._pending_progress = None
        # the session takes the table and settings and records the scores after of the revisions
        # this pass covered (ScoresChanged refreshes the queue)
        changed = self.session.apply(event)
        rows = len(event.table.rows)
        self.message.setText(f"Scored {rows} cases ({len(event.skipped)} skipped, "
                             f"{sum(r['flagged'] for r in event.table.rows)} flagged as likely mislabelled). Scores: {event.csv_path}")
        rescored = {revision.case_id for revision in changed.completed}
        top = self.top_case()
        if self._auto_selected and self._score_incremental and top is not None and not self.is_dirty() and \
                (self.current is None or self.current.case_id != top):
            self.select_case(top)  # the reviewer had not chosen a case yet: show the most doubtful one
            return
        if self.current is not None:
            self.current.row = event.table.row(self.current.case_id)
            if self.current.heatmaps is None or self.current.outdated or self.current.case_id in rescored or \
                    self.current.heatmap_kind != "label issue":
                self._reload_current_maps()  # new maps: the corrected annotation's, or the label-issue maps
            else:
                self._update_summary()
                self._update_history()

    def _on_scoring_done(self) -> None:
        self._score_worker = None
        self._refresh_timer.stop()
        if self._pending_progress is not None:  # stopped (cancel, failure) before the next refresh
            self.progress.setValue(self._pending_progress[0])
            self.message.setText(self._pending_progress[1])
            self._pending_progress = None
        self._refresh_queue()
        if self._rescore_pending:
            self._rescore_pending = False
            QTimer.singleShot(0, self._rescore)
        self._update_buttons()

    def _rescore(self) -> None:
        """Re-score after a correction under the session's re-score policy (the model that scored
        the dataset, with the settings it was scored with); the saved revisions get their scores after."""
        decision = self.session.rescore_decision(self.model_edit.text().strip())
        if not decision.ok:
            if self.settings is not None and self.settings.model:  # scored with another model: say so
                self.message.setText(f"Not re-scored: {decision.reason}.")
            return
        if self._score_worker is not None:
            self._rescore_pending = True
            return
        self.start_scoring(incremental=False)

    # ================================================================== cases

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
        if self.current is None or self._saved_label is None or ANNOTATION not in self.viewer.layers:
            return False
        data = np.asarray(self.viewer.layers[ANNOTATION].data)
        return data.shape != self._saved_label.shape or not np.array_equal(data, self._saved_label)

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
        self._sync_table()
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
                self._unopened = case_id
                self.summary.setText(f"<b>{case_id}</b>: cannot be opened.<br>{notify.describe(result.error)}"
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
        previous = self.current
        shape_changed = previous is None or previous.case.image.shape != view.case.image.shape or \
            IMAGE not in self.viewer.layers
        tuples = case_layer_data(view, self.dataset.labels)
        if keep_annotation and previous is not None and previous.case_id == view.case_id:
            tuples = [t for t in tuples if t[1]["name"] != ANNOTATION]
        wanted = {t[1]["name"] for t in tuples}
        for layer in list(self.viewer.layers):
            stale_map = is_heatmap_layer(layer.name) and layer.name not in wanted
            stale_seg = layer.name == FM_SEGMENTATION and FM_SEGMENTATION not in wanted
            if stale_map or stale_seg:
                self.viewer.layers.remove(layer)
        for data, kwargs, layer_type in tuples:
            put_layer(self.viewer, data, kwargs, layer_type)
        order_layers(self.viewer)
        self.current = view
        if not keep_annotation or self._saved_label is None:
            self._saved_label = None if view.case.label is None else np.array(view.case.label, copy=True)
            self._ensure_prompt_layers(view)
            self.clear_prompts()
        if shape_changed:
            self.viewer.reset_view()
        if view.is_3d and not keep_annotation:
            self.viewer.dims.set_point(0, view.focus_slice() * view.spacing[0] + self._translate0())
        if ANNOTATION in self.viewer.layers:
            annotation = self.viewer.layers[ANNOTATION]
            if annotation not in self._styled:
                annotation.contour = ANNOTATION_CONTOUR
                annotation.events.selected_label.connect(self._guard_selected_label)
                self._styled.add(annotation)
            self._edits.follow(annotation)  # "unsaved edits" follows strokes and undo
            value = self.class_combo.currentData()
            if value is not None:
                annotation.selected_label = int(value)
            if not keep_annotation:
                self.viewer.layers.selection.active = annotation
        self._unopened = None
        self.queue.select(view.case_id)
        self._update_summary()
        self._update_history()
        self._update_buttons()
        if self.session.current is not view.case:
            self.session.set_current(view.case)  # other views (the retraining panel) follow

    def _translate0(self) -> float:
        return float(self.viewer.layers[IMAGE].translate[0]) if IMAGE in self.viewer.layers else 0.0

    def _show_no_case(self, case_id: str) -> None:
        """A case could not be opened: the viewer shows no case (not the previous one as if it were this)."""
        remove_case_layers(self.viewer)
        self.current, self._saved_label, self._preview = None, None, None
        self.viewer.title = viewer_title(self.dataset.root.name if self.dataset else None, case_id,
                                         problem="cannot be opened")
        if self.session.current is not None:
            self.session.set_current(None)  # other views (the retraining panel) follow

    def _update_summary(self) -> None:
        view = self.current
        if view is None:
            self._clear_case_display()
            return
        row = view.row or {}
        status = self._statuses().get(view.case_id, "unreviewed")
        view.status = status
        total = len(self.table.rows) if self.table else 0
        parts = [f"<b>{view.case_id}</b>"]
        if row:
            parts.append(f"rank {row['rank']} of {total}")
            issue = row.get("label_issue", math.nan)
            if isinstance(issue, float) and math.isfinite(issue):
                parts.append(f"label issue <b>{issue:.3f}</b>")
            contradicted = row.get("contradicted", math.nan)
            if isinstance(contradicted, float) and math.isfinite(contradicted):
                parts.append(f"{100 * contradicted:.1f} % of the drawing contradicted")
            region = row.get("worst_region_voxels", math.nan)
            if isinstance(region, float) and math.isfinite(region) and region > 0:
                where = f" at slice {row['worst_region_slice']:.0f}" if view.is_3d else ""
                parts.append(f"worst region {region:.0f} {'voxels' if view.is_3d else 'px'}{where}")
            parts.append(f"AUV {row['auv']:.3f}" if math.isfinite(row["auv"]) else "AUV –")
            if row.get("flagged"):
                parts.append("<span style='color:#ff9d00'><b>flagged</b></span>")
        else:
            parts.append("not scored")
        parts.append(f"status <b>{status}</b>")
        dirty = self.is_dirty()
        self._edits.shown(dirty)
        self.viewer.title = viewer_title(self.dataset.root.name, view.case_id, status, dirty)
        if dirty:
            parts.append("<i>unsaved edits</i>")
        lines = [" · ".join(parts)]
        worst = view.worst_class()
        cells = ["<tr><th align='left'>class</th><th>contradicted</th><th>AUV</th><th>SPS</th><th>FM Dice</th></tr>"]
        for name, value in zip(view.class_names, view.class_values):
            def number(key, style=".3f"):
                value_ = row.get(key, math.nan)
                return format(value_, style) if isinstance(value_, float) and math.isfinite(value_) else "–"
            swatch = f"<span style='color:{class_colour(value)}'>■</span>"
            label = f"<b>{name}</b> (worst)" if name == worst and row else name
            issue_ = row.get("contradicted_" + name, math.nan)
            issue_text = f"{100 * issue_:.1f} %" if isinstance(issue_, float) and math.isfinite(issue_) else "–"
            if name in unjudged_classes(row, view.class_names):
                issue_text = "too rare to judge"
            cells.append(f"<tr><td>{swatch} {label}</td><td align='right'>{issue_text}</td>"
                         f"<td align='right'>{number('auv_' + name)}</td>"
                         f"<td align='right'>{number('sps_' + name, '.3g')}</td>"
                         f"<td align='right'>{number('dice_fm_' + name)}</td></tr>")
        lines.append("<table cellspacing='0' cellpadding='2'>" + "".join(cells) + "</table>")
        if view.heatmaps is None:
            lines.append("<i>No maps yet: score the dataset.</i>")
        elif view.heatmap_kind == "uncertainty":
            lines.append("<i>Heatmaps: the model's uncertainty (label-quality maps appear after scoring "
                         "or Refresh priorities).</i>")
        elif view.maps_stale:
            lines.append("<i>Maps are out of date (the annotation changed since scoring).</i>")
        elif view.fm_stale:
            lines.append("<i>Label-issue maps are current; the FM segmentation and AUV are from before the "
                         "annotation changed (Score updates them).</i>")
        if view.is_3d:
            lines.append(f"Volume {view.case.image.shape[0]} slices; spacing "
                         f"{' × '.join(f'{s:g}' for s in view.spacing)} mm (slider: axis 0).")
        self.summary.setText("<br>".join(lines))

    def _update_history(self) -> None:
        self.history.clear()
        if self.current is None or self.store is None:
            return
        try:
            revisions = self.store.revisions(self.current.case_id)
        except AleatoricError as error:
            notify.error("Cannot read the revision history", error)
            return
        def percent(value):
            return "–" if value is None else f"{100 * value:.1f} %"

        for revision in reversed(revisions):
            issue = "" if revision.issue_before is None and revision.issue_after is None else \
                f", label issue {percent(revision.issue_before)} → {percent(revision.issue_after)}"
            auv = "" if revision.auv_after is None else f", AUV after {revision.auv_after:.3f}"
            text = f"#{revision.id} {revision.created_at[:19].replace('T', ' ')} {revision.user or ''}" \
                   f"{' — ' + revision.note if revision.note else ''}{issue}{auv}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, revision.id)
            self.history.addItem(item)

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

    # ================================================================== status, save, revert

    def _decide(self, status: str) -> None:
        """Record a status through the session and go where its rule says (the next unreviewed case
        below after accept / exclude, in the queue as shown; the same case after a reset)."""
        view = self.current
        if view is None or self.store is None:
            notify.warning("Open a case of a dataset with a usable review store first")
            return
        if status != "unreviewed" and self.is_dirty():
            notify.warning(f"Case {view.case_id} has unsaved edits: save them (or undo) first")
            return
        order = self.queue.visible_case_ids()
        try:  # the queue follows (StatusChanged)
            following = self.session.decide(view.case_id, status, order)
        except AleatoricError as error:
            notify.error(f"Cannot mark {view.case_id} as {status}", error)
            return
        if following is None:
            left = len(self.session.unreviewed(order))
            text = (f"{view.case_id} {status}: no unreviewed case below it in the queue as shown; "
                    + (f"{left} unreviewed above it." if left else "every case shown is reviewed."))
            self.message.setText(text)
            notify.info(text)
        elif following != view.case_id:
            self.select_case(following)

    def accept_case(self) -> None:
        """Mark the current case accepted (its annotation is right as it is) and go to the next unreviewed case."""
        self._decide("accepted")

    def exclude_case(self) -> None:
        """Mark the current case excluded (left out of training) and go to the next unreviewed case."""
        self._decide("excluded")

    def reset_status(self) -> None:
        """Mark the current case unreviewed again (the decision taken back; recorded in the store)."""
        self._decide("unreviewed")

    def save_case(self, wait: bool = False) -> bool:
        """Save the annotation layer over the case's label file (original kept, revision recorded).

        Runs in a worker; ``wait=True`` blocks until it is written (used before switching case).
        Returns whether a save was started (and, with ``wait``, succeeded).
        """
        view = self.current
        if view is None or view.case.label is None or ANNOTATION not in self.viewer.layers:
            notify.warning("No annotation to save")
            return False
        if self.store is None:
            notify.error("Cannot save: the review store of this dataset cannot be used")
            return False
        if "save" in self._busy:
            notify.warning("A save is already running")
            return False
        labels = np.array(self.viewer.layers[ANNOTATION].data, copy=True)
        if labels.shape != view.case.label.shape:
            notify.error(f"Cannot save {view.case.ref.label_path}: the annotation layer has shape {labels.shape}, "
                         f"the case {view.case.label.shape}")
            return False
        undeclared = undeclared_values(labels, self.dataset.labels)
        if undeclared:
            notify.error(f"Cannot save {view.case.ref.label_path}: the annotation has label value(s) "
                         f"{', '.join(map(str, undeclared[:10]))} that dataset.json does not declare "
                         f"(declared: {', '.join(f'{v}={n}' for n, v in self.dataset.labels.items())}); "
                         "paint them over with a declared class, then save")
            return False
        outcome: dict = {}

        def saved(result):
            outcome["result"] = result
            if isinstance(result, Failure):
                notify.error("Cannot save the correction", result.error)
                return
            if self.current is not None and self.current.case_id == view.case_id:
                self._saved_label = labels
                if self.current.heatmaps is not None:
                    self.current.maps_stale = self.current.fm_stale = True  # until re-scored
            self.session.correction_saved(result)  # status, history and queue follow its events
            notify.info(f"Saved {view.case.ref.label_path.name} (revision {result.id}); "
                        "the original is kept under .aleatoric/originals")
            if self.rescore_check.isChecked():
                self._rescore()

        worker = self._start(guarded, "Cannot save", self.session.write_correction, view.case_id, labels,
                             view.case.geometry, returned=saved, name="save")
        if wait:
            self._wait_for(lambda: "result" in outcome or worker not in self._workers)
            return not isinstance(outcome.get("result"), Failure)
        return True

    def _wait_for(self, condition: Callable[[], bool], timeout_ms: int = 120_000) -> None:
        from qtpy.QtCore import QElapsedTimer, QEventLoop  # noqa: PLC0415
        from qtpy.QtWidgets import QApplication  # noqa: PLC0415

        timer = QElapsedTimer()
        timer.start()
        while not condition() and timer.elapsed() < timeout_ms:
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)

    def _revert_selected(self) -> None:
        item = self.history.currentItem()
        if item is None:
            notify.warning("Select a revision in the list first")
            return
        self.revert_case(int(item.data(Qt.ItemDataRole.UserRole)))

    def revert_case(self, to) -> None:
        """Restore the label file to its original (``"original"``) or a revision id; edits are dropped.

        A case selected in the queue that could not be opened (e.g. its label file holds values
        ``dataset.json`` does not declare) can be reverted too: its label file is restored without
        opening it, then the case is opened.
        """
        if self._unopened is not None and self.dataset is not None and self.store is not None:
            self._revert_unopened(self._unopened, to)
            return
        view = self.current
        if view is None or self.store is None or view.case.ref.label_path is None:
            notify.warning("No case to revert")
            return
        if "save" in self._busy:
            notify.warning("A save is running; try again when it has finished")
            return
        dataset, session, settings = self.dataset, self.session, self.settings

        def job():
            revision = session.write_revert(view.case_id, to)
            return revision, load_case_view(dataset, view.case_id, settings, view.row)

        def reverted(result):
            if isinstance(result, Failure):
                notify.error("Cannot revert", result.error)
                return
            revision, fresh = result
            if self.current is not None and self.current.case_id == view.case_id:
                self._saved_label = None
                self._show_case(fresh)
            self.session.correction_saved(revision, "reverted")
            notify.info(f"Reverted {view.case.ref.label_path.name} ({revision.note})")
            if self.rescore_check.isChecked():
                self._rescore()

        self._start(guarded, "Cannot revert", job, returned=reverted, name="save")

    def _revert_unopened(self, case_id: str, to) -> None:
        """Revert a case that could not be opened, then open it (see :meth:`revert_case`)."""
        if "save" in self._busy:
            notify.warning("A save is running; try again when it has finished")
            return
        dataset, session = self.dataset, self.session
        try:
            ref = dataset.case(case_id)
        except AleatoricError as error:
            notify.error("Cannot revert", error)
            return
        if ref.label_path is None:
            notify.warning(f"Case {case_id} has no annotation to revert")
            return

        def job():
            return session.write_revert(case_id, to)

        def reverted(result):
            if isinstance(result, Failure):
                notify.error("Cannot revert", result.error)
                return
            if session.dataset is dataset:
                session.correction_saved(result, "reverted")
            notify.info(f"Reverted {ref.label_path.name} ({result.note})")
            if self._unopened == case_id and self.dataset is dataset:
                self._unopened = None
                self._saved_label = None
                self._load(case_id)

        self._start(guarded, "Cannot revert", job, returned=reverted, name="save")

    def _guard_selected_label(self, event=None) -> None:
        """Keep the annotation layer's brush on a value ``dataset.json`` declares: napari's "new label"
        key (M) would otherwise paint a value the saved file could never be opened with."""
        if self.dataset is None or ANNOTATION not in self.viewer.layers:
            return
        layer = self.viewer.layers[ANNOTATION]
        value = int(layer.selected_label)
        declared = set(self.dataset.labels.values())
        if value in declared:
            return
        fallback = self.class_combo.currentData()
        fallback = int(fallback) if fallback is not None and int(fallback) in declared else min(declared)
        notify.warning(f"Label value {value} is not declared in dataset.json "
                       f"({', '.join(f'{v}={n}' for n, v in self.dataset.labels.items())}); "
                       f"painting with {fallback} instead")
        layer.selected_label = fallback

    # ================================================================== assisted correction

    def _class_changed(self, *_args) -> None:
        value = self.class_combo.currentData()
        if value is None:
            return
        if ANNOTATION in self.viewer.layers:
            self.viewer.layers[ANNOTATION].selected_label = int(value)
        if assist.PREVIEW_LAYER in self.viewer.layers and self._preview is not None:
            layer = self.viewer.layers[assist.PREVIEW_LAYER]
            data = np.asarray(layer.data)
            data[data > 0] = int(value)
            layer.data = data

    def _polarity_changed(self, negative: bool) -> None:
        if assist.POINTS_LAYER in self.viewer.layers:
            points = self.viewer.layers[assist.POINTS_LAYER]
            points.feature_defaults = {"positive": not negative}
            points.current_face_color = "red" if negative else "lime"

    def _ensure_prompt_layers(self, view: CaseView) -> None:
        ndim, scale = view.case.image.ndim, view.spacing
        for name in (assist.BOX_LAYER, assist.POINTS_LAYER, assist.PREVIEW_LAYER):
            if name in self.viewer.layers and self.viewer.layers[name].ndim != ndim:
                self.viewer.layers.remove(self.viewer.layers[name])
        if assist.BOX_LAYER not in self.viewer.layers:
            self.viewer.add_shapes(ndim=ndim, name=assist.BOX_LAYER, scale=scale, edge_color="yellow",
                                   face_color="transparent", edge_width=max(1.0, max(view.case.image.shape[-2:]) / 150))
        if assist.POINTS_LAYER not in self.viewer.layers:
            size = max(3.0, max(view.case.image.shape[-2:]) / 40)
            points = self.viewer.add_points(np.zeros((0, ndim)), ndim=ndim, name=assist.POINTS_LAYER, scale=scale,
                                            size=size, features={"positive": np.zeros(0, dtype=bool)},
                                            face_color="lime", border_color="white")
            points.feature_defaults = {"positive": not self.negative_check.isChecked()}
            points.current_face_color = "red" if self.negative_check.isChecked() else "lime"
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
        if assist.PREVIEW_LAYER in self.viewer.layers:
            self.viewer.layers.remove(self.viewer.layers[assist.PREVIEW_LAYER])
        self._preview = None
        self._update_buttons()

    def current_slice(self) -> int:
        """Index (axis 0) of the slice shown, for volumes; 0 for 2D cases."""
        if self.current is None or not self.current.is_3d or IMAGE not in self.viewer.layers:
            return 0
        position = self.viewer.layers[IMAGE].world_to_data(self.viewer.dims.point)
        return int(np.clip(round(float(position[0])), 0, self.current.case.image.shape[0] - 1))

    def _prompts(self) -> assist.SlicePrompts:
        view = self.current
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

    def _model(self, spec: str, device: str | None):
        key = (spec, device)
        if key not in self._models:
            self._models[key] = registry.load_model(spec, device)
        return self._models[key]

    def preview(self) -> None:
        """Run the foundation model on the current slice with the prompts; show the mask as 'FM preview'."""
        view = self.current
        if view is None:
            notify.warning("Open a case first")
            return
        prompts = self._prompts()
        if prompts.empty:
            notify.warning(f"Draw a rectangle on '{assist.BOX_LAYER}' or add points on '{assist.POINTS_LAYER}' "
                           "on the current slice first")
            return
        index = self.current_slice()
        spec, device = self.model_edit.text().strip() or registry.DEFAULT_MODEL, self._device()
        cache = ArrayCache(self.dataset.cache_dir / "embeddings")

        def job():
            resolve_device(device)
            model = self._model(spec, device)
            image01 = view.image01()
            slice01 = image01[index] if view.is_3d else image01
            return assist.predict_slice(model, slice01, prompts, cache)

        def done(result):
            if isinstance(result, Failure):
                notify.error("Preview failed", result.error)
                return
            if self.current is None or self.current.case_id != view.case_id:
                return
            self._show_preview(result, index, prompts)

        self.message.setText(f"Preview with {spec} on slice {index}…" if view.is_3d else f"Preview with {spec}…")
        self._start(guarded, "Preview failed", job, returned=done, name="preview")

    def _show_preview(self, mask: np.ndarray, index: int, prompts: assist.SlicePrompts) -> None:
        view = self.current
        value = int(self.class_combo.currentData() or 1)
        data = np.zeros(view.case.image.shape, dtype=np.uint8 if value < 256 else np.int32)
        if view.is_3d:
            data[index][mask] = value
        else:
            data[mask] = value
        colormap = label_colormap({n: v for n, v in self.dataset.labels.items() if v != 0})
        if assist.PREVIEW_LAYER in self.viewer.layers:
            layer = self.viewer.layers[assist.PREVIEW_LAYER]
            layer.data = data
            layer.scale = view.spacing
        else:
            layer = self.viewer.add_labels(data, name=assist.PREVIEW_LAYER, scale=view.spacing, colormap=colormap,
                                           opacity=0.6, blending="translucent")
        self._preview = {"case_id": view.case_id, "slice": index, "mask": mask, "box": prompts.box}
        self.message.setText(f"Preview: {int(mask.sum())} pixels. 'Apply to class' writes them into the annotation.")
        if ANNOTATION in self.viewer.layers:
            self.viewer.layers.selection.active = self.viewer.layers[ANNOTATION]
        self._update_buttons()

    def apply_preview(self) -> int:
        """Write the preview into the annotation for the chosen class (undoable with Ctrl-Z).

        Returns the number of changed pixels (see :mod:`.assist` for the rules).
        """
        view, preview = self.current, self._preview
        if view is None or preview is None or preview["case_id"] != view.case_id or ANNOTATION not in self.viewer.layers:
            notify.warning("Run Preview first")
            return 0
        annotation = self.viewer.layers[ANNOTATION]
        value = int(self.class_combo.currentData())
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
        if assist.PREVIEW_LAYER in self.viewer.layers:
            self.viewer.layers.remove(self.viewer.layers[assist.PREVIEW_LAYER])
        self._preview = None
        name = self.class_combo.currentText()
        why = (f" {kept} pixels of the preview are drawn as other classes and were kept: tick 'overwrite other "
               f"classes' to replace them." if kept else "")
        self.message.setText(f"Applied: {len(rows)} pixels changed for {name} (Ctrl-Z on 'annotation' undoes).{why}")
        if kept and not len(rows):
            notify.warning(f"Nothing applied: the preview lies on other classes.{why}")
        self._update_summary()
        self._update_buttons()
        return int(len(rows))

    # ================================================================== teardown

    def closeEvent(self, event):  # noqa: N802 (Qt)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop background work and close the store (called when the panel closes)."""
        if self._score_worker is not None:
            self._score_worker.quit()
        for key in SHORTCUTS:
            try:
                self.viewer.bind_key(key, None)
            except (TypeError, ValueError, KeyError):
                pass
        self._unsubscribe()
        self._edits.close()
        self.viewer.title = self._title
        self.session.close()
