"""The review panel's dataset and scoring controls: open a dataset, score, refresh, export, with progress.

:class:`ScoringBox` holds the "Dataset" group (folder, Browse, Open, bundled samples) and the
"Model and scoring" group (model and checkpoint, device, Score / Cancel / Refresh priorities /
Export maps, the Dask scheduler field, the progress bar and the panel's message line). It runs the
session's scoring, refresh and export generators in workers (the panel's ``start`` function) and
tells the panel what changed through Qt signals; the session applies the results.

While scoring runs, the cases scored so far are ranked into a partial table (:attr:`table`), and
the progress bar, the message and the queue are updated at most every 300 ms, not once per case.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..data.errors import AleatoricError
from ..data.state_layout import scores_csv
from ..models import registry
from ..models.base import resolve_device
from ..pipelines.export_maps import (CaseMapsExported, CaseMapsSkipped, MapsExportFinished, check_export_dir,
                                     export_maps)
from ..pipelines.label_quality import LabelQualityProgress
from ..pipelines.priorities import PrioritiesRefreshed
from ..pipelines.scoring import CaseScored, CaseSkipped, ScoringFinished, ScoringStarted
from ..pipelines.table import ScoreTable, build_table
from ..session import DatasetOpened, ReviewSession
from . import notify
from .workers import Failure, forward_events

DEVICES = ("auto", "cpu", "cuda")
CHECKPOINT_KINDS = ("litemedsam", "sam-vit-b", "sam-vit-l", "sam-vit-h", "medsam")
#: how often the progress, the message and the queue follow a running scoring (ms)
PROGRESS_INTERVAL_MS = 300


def _worker_events(what: str, events):
    """A session's event generator run in a worker (a generator function, so napari runs it as a
    generator worker); an exception becomes one :class:`Failure` naming ``what``."""
    yield from forward_events(what, lambda: events)


def guess_checkpoint_kind(path: str) -> str:
    """The model kind a checkpoint's file name suggests (one of :data:`CHECKPOINT_KINDS`)."""
    name = Path(path).name.lower()
    return ("medsam" if "medsam" in name and "lite" not in name else "litemedsam" if "lite" in name
            else "sam-vit-h" if "vit_h" in name else "sam-vit-l" if "vit_l" in name else "sam-vit-b")


class ScoringBox(QWidget):
    """The "Dataset" and "Model and scoring" groups of the review panel (see the module docs).

    Args:
        session: the viewer's review session (its model, device and scheduler follow the fields).
        start: the panel's worker starter (:meth:`~napari_aleatoric.gui.workers.BackgroundWork._start`).
        model, device: the initial model specification and device.

    Signals:
        open_requested(str): a dataset folder to open; sample_requested(str): a bundled sample.
        queue_outdated(): cases were scored since the queue was last drawn.
        case_scored(CaseScored): a case finished during a scoring pass that fills the queue.
        scores_changed(ScoresChanged, bool): a scoring pass or a refresh ended and the session took
            its table; the flag: the pass filled the queue as cases finished (not a re-score).
        work_finished(): scoring, refresh or export ended (done, cancelled or failed).
    """

    open_requested = Signal(str)
    sample_requested = Signal(str)
    queue_outdated = Signal()
    case_scored = Signal(object)
    scores_changed = Signal(object, bool)
    work_finished = Signal()

    def __init__(self, session: ReviewSession, start: Callable, model: str, device: str | None, parent=None):
        super().__init__(parent)
        self.session = session
        self._start = start
        self.ask_checkpoint_kind: Callable[[str], str | None] = self._ask_checkpoint_kind
        self.worker = None  # the scoring, refresh or export worker running
        self.results: dict = {}  # the cases scored by the running (or last) pass
        self._partial_table: ScoreTable | None = None  # the cases scored so far, while scoring runs
        self._table_outdated = False  # scored cases not yet in the partial table
        self._incremental = True
        self._rescore_pending = False
        self._skipped_shown = 0
        self._pending_progress: tuple[int, str] | None = None  # (cases done, message) not shown yet
        self._build(model, device)
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(PROGRESS_INTERVAL_MS)
        self._progress_timer.timeout.connect(self._show_progress)

    def _build(self, model: str, device: str | None) -> None:
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
        grid.addLayout(_row(self.path_edit, 1, self.browse_button, self.open_button))
        grid.addLayout(_row(QLabel("sample"), self.sample_combo, 1, self.sample_button))

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
        self.device_combo.currentTextChanged.connect(lambda _text: setattr(self.session, "device", self.device()))
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
        # short rows: the panel may be ~300 px wide beside the retraining panel, and no button may be clipped
        grid.addLayout(_row(QLabel("model"), self.model_edit, 1, self.checkpoint_button))
        grid.addLayout(_row(QLabel("device"), self.device_combo, 1, self.score_button, self.cancel_button))
        grid.addLayout(_row(self.refresh_button, 1, self.export_button, 1))
        grid.addWidget(self.progress)
        grid.addLayout(_row(QLabel("Dask scheduler"), self.scheduler_edit, 1))
        grid.addWidget(self.message)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(dataset_box)
        layout.addWidget(scoring_box)

        self.browse_button.clicked.connect(self._browse_dataset)
        self.open_button.clicked.connect(lambda: self.open_requested.emit(self.path_edit.text()))
        self.path_edit.returnPressed.connect(lambda: self.open_requested.emit(self.path_edit.text()))
        self.sample_button.clicked.connect(lambda: self.sample_requested.emit(self.sample_combo.currentText()))
        self.checkpoint_button.clicked.connect(self._browse_checkpoint)
        self.score_button.clicked.connect(lambda: self.start_scoring())
        self.cancel_button.clicked.connect(self.cancel_scoring)
        self.refresh_button.clicked.connect(self.refresh_priorities)
        self.export_button.clicked.connect(lambda: self.export_maps())

    # ------------------------------------------------------------------ state

    @property
    def running(self) -> bool:
        """Whether scoring, a refresh or an export is running."""
        return self.worker is not None

    @property
    def table(self) -> ScoreTable | None:
        """The score table shown: the cases scored so far while scoring runs, else the session's."""
        return self._partial_table if self._partial_table is not None else self.session.table

    def sync_table(self) -> None:
        """Rank the cases scored so far (done once per queue refresh, not once per scored case)."""
        if self._table_outdated and self.session.dataset is not None and self.results:
            self._partial_table = build_table(list(self.results.values()), list(self.session.dataset.foreground))
        self._table_outdated = False

    def drop_partial_table(self) -> None:
        """The session's table is the one to show (a pass ended, or the table was re-ranked)."""
        self._partial_table, self._table_outdated = None, False

    def device(self) -> str | None:
        """The device chosen (``None``: automatic)."""
        text = self.device_combo.currentText().strip()
        return None if text in ("", "auto") else text

    def model_spec(self) -> str:
        """The model specification in the field (the default model when it is empty)."""
        return self.model_edit.text().strip() or registry.DEFAULT_MODEL

    def update_buttons(self) -> None:
        """Enable what the open dataset, its scores and the work running allow."""
        has_dataset = self.session.dataset is not None
        idle_with_scores = has_dataset and not self.running and self.table is not None
        self.score_button.setEnabled(has_dataset and not self.running)
        self.refresh_button.setEnabled(idle_with_scores)
        self.export_button.setEnabled(idle_with_scores)
        self.cancel_button.setEnabled(self.running)

    def show_dataset(self, event: DatasetOpened) -> None:
        """Show a dataset the session opened: its folder, whether it was scored, the progress."""
        dataset = event.dataset
        self.results = {}
        self.drop_partial_table()
        self.path_edit.setText(str(dataset.root))
        if self.sample_combo.findText(dataset.root.name) >= 0:
            self.sample_combo.setCurrentText(dataset.root.name)
        csv_path = scores_csv(dataset.state_dir)
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

    # ------------------------------------------------------------------ dialogs

    def _browse_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a labelled dataset (folder with dataset.json)",
                                                  self.path_edit.text() or str(Path.home()))
        if folder:
            self.open_requested.emit(folder)

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Foundation-model checkpoint", str(Path.home()),
                                              "PyTorch checkpoints (*.pth *.pt *.bin);;All files (*)")
        if not path:
            return
        kind = self.ask_checkpoint_kind(path)
        if kind:
            self.model_edit.setText(f"{kind}:{path}")

    def _ask_checkpoint_kind(self, path: str) -> str | None:
        kind, ok = QInputDialog.getItem(self, "Checkpoint type", f"Which model is {Path(path).name}?",
                                        list(CHECKPOINT_KINDS), CHECKPOINT_KINDS.index(guess_checkpoint_kind(path)),
                                        False)
        return kind if ok else None

    # ------------------------------------------------------------------ starting work

    def start_scoring(self, case_ids: list[str] | None = None, incremental: bool = True) -> bool:
        """Score the dataset in a worker; the queue fills in as cases finish. Returns whether it started."""
        if self.session.dataset is None:
            notify.warning("Open a dataset first")
            return False
        if self.running:
            notify.warning("Scoring is already running")
            return False
        spec, device = self.model_spec(), self.device()
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
        self.results = {}
        self._skipped_shown = 0
        self._incremental = incremental
        self.progress.setValue(0)
        where = f"the Dask cluster at {self.session.scheduler}" if self.session.scheduler else (device or "auto")
        self.message.setText(f"Scoring with {spec} on {where}…")
        self._run("Scoring failed", events, self._on_scoring_event, "score")
        return True

    def refresh_priorities(self) -> bool:
        """Re-learn label quality from the current annotations in a worker and re-rank the queue.
        Returns whether it started."""
        if self.session.dataset is None or self.table is None:
            notify.warning("Score the dataset first")
            return False
        if self.running:
            notify.warning("Scoring is already running")
            return False
        try:
            events = self.session.refresh_events(self.model_spec(), self.device())
        except AleatoricError as error:
            notify.error("Refreshing priorities failed", error)
            return False
        self.progress.setValue(0)
        self.message.setText("Refreshing priorities from the current annotations…")
        self._run("Refreshing priorities failed", events, self._on_refresh_event, "refresh")
        return True

    def export_maps(self, folder: str | Path | None = None) -> bool:
        """Export the scored cases' label-issue maps and FM segmentations into ``folder`` (asked for
        when ``None``) in a worker, with progress; the pipeline's rules decide what is written
        (:func:`~napari_aleatoric.pipelines.export_maps.export_maps`). Returns whether it started."""
        dataset, settings = self.session.dataset, self.session.settings
        if dataset is None or self.table is None or settings is None or not settings.model:
            notify.warning("Score the dataset first")
            return False
        if self.running:
            notify.warning("Scoring is running: export the maps when it has finished")
            return False
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export the label-issue maps into a folder",
                                                      str(dataset.root.parent))
            if not folder:
                return False
        try:
            folder = check_export_dir(dataset, folder)
        except (AleatoricError, OSError) as error:
            notify.error("Cannot export the maps there", error)
            return False
        events = export_maps(dataset, folder, settings.model, settings.input_mode)
        self.progress.setValue(0)
        self.message.setText(f"Exporting the maps to {folder}…")
        self._run("Exporting the maps failed", events, self._on_export_event, "export")
        return True

    def _run(self, what: str, events, on_event: Callable, name: str) -> None:
        self.worker = self._start(_worker_events, what, events, yielded=on_event, finished=self._on_done, name=name)
        self.update_buttons()

    def cancel_scoring(self) -> None:
        """Stop scoring after the case being scored; finished cases stay cached."""
        if self.worker is not None:
            self.worker.quit()
            self.message.setText("Stopping after the current case… (finished cases are cached)")
            self.cancel_button.setEnabled(False)

    def rescore(self, wanted: bool = True) -> None:
        """After a saved correction or revert: re-score as the session's rule says
        (:meth:`~napari_aleatoric.session.ReviewSession.rescore_after_correction`): now, when the
        running pass ends, or not (and why, when the reviewer would expect it)."""
        plan = self.session.rescore_after_correction(wanted, self.model_edit.text().strip(), self.running)
        if plan.when == "now":
            self.start_scoring(incremental=False)
        elif plan.when == "after the running pass":
            self._rescore_pending = True
        elif plan.reason:
            self.message.setText(f"Not re-scored: {plan.reason}.")

    # ------------------------------------------------------------------ events of the work

    def _failed(self, event: Failure) -> None:
        notify.error(event.what, event.error)
        self.message.setText(f"{event.what}: {notify.describe(event.error)}")

    def _on_export_event(self, event) -> None:
        if isinstance(event, Failure):
            self._failed(event)
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
            self._failed(event)
        elif isinstance(event, LabelQualityProgress):
            self._show_label_quality_progress(event)
        elif isinstance(event, PrioritiesRefreshed):
            self._pending_progress = None
            changed = self.session.apply(event)  # the session's table; the queue follows (ScoresChanged)
            self.message.setText(f"Priorities refreshed from the current annotations in {event.seconds:.1f} s "
                                 f"({sum(r['flagged'] for r in event.table.rows)} flagged as likely mislabelled).")
            self.scores_changed.emit(changed, True)

    def _on_scoring_event(self, event) -> None:
        if isinstance(event, Failure):
            self._flush_progress_value()  # the failure's message must stay
            self._failed(event)
        elif isinstance(event, ScoringStarted):
            self.progress.setMaximum(max(1, event.total))
            self.progress.setValue(len(event.skipped))
            for error in event.skipped:
                self._show_skipped(error)
        elif isinstance(event, CaseScored):
            # Shown with the next refresh (at most every 300 ms), not per case: cached or fast cases
            # arrive several times a second, and updating the table, label, progress bar and queue
            # for each one took 15-50 ms of the GUI thread under load (docs/performance.md).
            self.results[event.result.case_id] = event.result
            self._pending_progress = (event.index, f"Scored {event.result.case_id}"
                                      f"{' (cached)' if event.result.cached else ''} "
                                      f"({event.index}/{event.total}, {event.seconds:.1f} s)")
            self._schedule_progress()
            if self._incremental and self.session.dataset is not None:
                self._table_outdated = True
                self.case_scored.emit(event)
        elif isinstance(event, CaseSkipped):
            self._pending_progress = None
            self.progress.setValue(event.index)
            self._show_skipped(event.error)
        elif isinstance(event, LabelQualityProgress):
            self._show_label_quality_progress(event)
        elif isinstance(event, ScoringFinished):
            self._flush_progress_value()
            # the session takes the table and settings and records the scores after of the revisions
            # this pass covered (ScoresChanged refreshes the queue)
            changed = self.session.apply(event)
            self.message.setText(f"Scored {len(event.table.rows)} cases ({len(event.skipped)} skipped, "
                                 f"{sum(r['flagged'] for r in event.table.rows)} flagged as likely mislabelled). "
                                 f"Scores: {event.csv_path}")
            self.scores_changed.emit(changed, self._incremental)

    def _show_label_quality_progress(self, event: LabelQualityProgress) -> None:
        """Label quality (after the cases, or on Refresh priorities): the bar counts its stages."""
        if event.index == 1 or event.stage == "fitting":
            self.progress.setMaximum(max(1, event.total))
        text = (f"Label quality: {event.stage} {event.index}/{event.total}" if event.case_id
                else "Label quality: fitting the classifiers")
        self._pending_progress = (event.index, text)
        self._schedule_progress()

    def _schedule_progress(self) -> None:
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _flush_progress_value(self) -> None:
        """Show the progress not shown yet (its message is replaced by the caller's)."""
        if self._pending_progress is not None:
            self.progress.setValue(self._pending_progress[0])
            self._pending_progress = None

    def _show_progress(self) -> None:
        """Show what scoring did since the last refresh: progress, message and (incremental) the queue."""
        if self._pending_progress is not None:
            done, text = self._pending_progress
            self._pending_progress = None
            self.progress.setValue(done)
            self.message.setText(text)
        if self._table_outdated:
            self.queue_outdated.emit()

    def _show_skipped(self, error: BaseException) -> None:
        self._skipped_shown += 1
        if self._skipped_shown <= 3:
            notify.warning(f"Skipped: {error}")
        elif self._skipped_shown == 4:
            notify.warning("More cases were skipped; see scores.json for the list")

    def _on_done(self) -> None:
        self.worker = None
        self._progress_timer.stop()
        if self._pending_progress is not None:  # stopped (cancel, failure) before the next refresh
            self.progress.setValue(self._pending_progress[0])
            self.message.setText(self._pending_progress[1])
            self._pending_progress = None
        self.work_finished.emit()
        if self._rescore_pending:
            self._rescore_pending = False
            QTimer.singleShot(0, self.rescore)
        self.update_buttons()

    def shutdown(self) -> None:
        """Stop the work running (the panel closes)."""
        if self.worker is not None:
            self.worker.quit()


def _row(*items) -> QHBoxLayout:
    """A row of widgets; an int after a widget is its stretch factor."""
    row = QHBoxLayout()
    for index, item in enumerate(items):
        if isinstance(item, int):
            continue
        stretch = items[index + 1] if index + 1 < len(items) and isinstance(items[index + 1], int) else 0
        row.addWidget(item, stretch)
    return row
