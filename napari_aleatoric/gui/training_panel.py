"""The retraining panel: train a task network on the reviewed dataset in the background, watch it, use it.

Thin, like the review panel: every computation is a call into the core
(:func:`napari_aleatoric.training.train`, :func:`~napari_aleatoric.training.load_trained_model`,
:func:`napari_aleatoric.pipelines.unlabelled.score_unlabelled`).

Made of small views: :class:`~.training_form.SettingsForm` (the settings form),
:class:`~.training_plot.TrainingPlot` (the live plot) and :class:`~.training_models.TrainedModels`
(the runs, Predict, the unlabelled cases); this module holds the dataset, the weights preview and
the training run. Opened next to the review panel, it docks beside it (:mod:`.docking`), and its
content scrolls, so both fit a 1600 × 1000 screen with every button on it.

- **Dataset**: the one open in the viewer's review session (the review panel's; found through
  :mod:`.sessions` and followed through the session's events, no polling), or a folder chosen here.
- **Settings**: a magicgui form made from :class:`~napari_aleatoric.training.TrainSettings`'s
  fields (as the CLI's ``train`` options are); choosing a strategy sets its fields. The core
  validates them; a bad setting is a napari notification naming it, never an exception.
- **Show weights** previews what the strategy does before Start
  (:func:`~napari_aleatoric.training.preview_label_issues` in a worker): a summary line (cases
  left out, share of pixels down-weighted, reviewed cases at full weight) and the layer
  ``training: distrust`` (``1 − w``) over the case shown in the review panel.
- **Start** runs the training generator in a napari thread worker: a progress bar (steps), a live
  plot of the training loss (per step) and the per-class validation Dice (per epoch). **Stop**
  asks the core to stop before the next step: ``last.pt`` keeps the position, ``best.pt`` the best
  epoch so far. The viewer stays responsive and the reviewer can keep correcting: the run trains on
  a snapshot of the labels taken at its start (the core copies them into the run folder).
- **Predict** segments the current case (the one shown in the review panel, else the selected
  image layer) with the chosen run and adds it as a labels layer ``prediction: <run>`` with the
  image's scale and translation.
- **Score imagesTs** segments the test cases with the run and scores them with those
  segmentations as the foundation model's box prompts; the ranked list below shows them, and
  clicking one shows its image, the run's segmentation and the uncertainty map.
"""

from __future__ import annotations

import threading
from pathlib import Path

from qtpy.QtCore import QEvent, QSize, Qt, QTimer
from qtpy.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import ensure_main_thread

from ..data.dataset import Dataset, open_dataset
from ..data.errors import AleatoricError
from ..data.state_layout import scores_csv
from ..models import registry
from ..models.base import resolve_device
from ..session import CaseChanged, DatasetOpened, ScoresChanged
from ..training import (
    EpochDone,
    LabelIssuePlan,
    PreparingLabelIssues,
    StepDone,
    TrainingFinished,
    TrainingStarted,
    TrainingStopped,
    TrainSettings,
    describe,
    preview_label_issues,
    train,
)
from . import docking, notify, sessions
from ._compat import guard_triton
from .case_view import IMAGE
from .training_form import SettingsForm
from .training_models import PREDICTION_PREFIX, UNLABELLED_PREFIX, TrainedModels, put_layer
from .training_plot import TrainingPlot
from .workers import BackgroundWork, Failure, forward_events, safe_slot

__all__ = ["PANEL_NAME", "PREDICTION_PREFIX", "UNLABELLED_PREFIX", "WEIGHTS_LAYER", "TrainingPanel", "TrainingPlot"]

PANEL_NAME = "Retraining (napari-aleatoric)"
WEIGHTS_LAYER = "training: distrust"
#: the narrowest the panel gets (two panels side by side leave the canvas ~40 % of a 1600-px window)
MIN_WIDTH = 300


class TrainingPanel(BackgroundWork, QWidget):
    """Dock widget that retrains a task network on the reviewed dataset (npe2 widget contribution).

    Args:
        napari_viewer: the viewer.

    Attributes useful for scripts and tests: :attr:`form` (the magicgui container; its widgets
    are named like the :class:`TrainSettings` fields plus ``strategy``), :attr:`plot`,
    :attr:`progress`, :attr:`status`, :attr:`run_dir` (the run last started), :attr:`last_event`,
    :meth:`start_training`, :meth:`stop_training`, :meth:`predict_current`,
    :meth:`score_unlabelled`, :meth:`is_training`, :meth:`is_busy`.
    """

    def __init__(self, napari_viewer):
        super().__init__()
        guard_triton()
        self.viewer = napari_viewer
        self.chosen_root: Path | None = None
        self.run_dir: Path | None = None
        self.last_event = None
        self._stop = threading.Event()
        self._train_worker = None
        self._workers: set = set()
        self._busy: set[str] = set()
        self.weight_plan: LabelIssuePlan | None = None
        self._weights_case: str | None = None
        self._dataset_changed = False  # the review session opened another dataset during a run
        self._watched_window = None  # the main window whose new docks are placed beside (eventFilter)
        self._placed_beside: set[int] = set()
        self._build_ui()
        # the review session of this viewer (the one the review panel shows): its events keep this
        # panel current, on the GUI thread whoever emits them
        self.session = sessions.session_for(napari_viewer)
        self._unsubscribe = self.session.subscribe(ensure_main_thread(safe_slot(self._on_session_event)))
        self.refresh()

    # ================================================================== UI

    def _build_ui(self) -> None:
        self.setMinimumWidth(MIN_WIDTH)
        self.dataset_label = QLabel("")
        self.dataset_label.setWordWrap(True)
        self.browse_button = QPushButton("Choose folder…")
        self.browse_button.setToolTip("train on another dataset folder than the review panel's")
        self.use_review_button = QPushButton("Use review panel's")
        dataset_box = QGroupBox("Dataset")
        layout = QVBoxLayout(dataset_box)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.dataset_label)
        row = QHBoxLayout()
        row.addWidget(self.browse_button)
        row.addWidget(self.use_review_button)
        row.addStretch(1)
        layout.addLayout(row)

        self.settings_form = SettingsForm()
        self.form = self.settings_form.form

        self.weights_button = QPushButton("Show weights")
        self.weights_button.setToolTip("what the strategy leaves out and down-weights, before Start; the layer "
                                       f"'{WEIGHTS_LAYER}' shows it on the review panel's case")
        self.weights_label = QLabel("")
        self.weights_label.setWordWrap(True)
        self.start_button = QPushButton("Start training")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("stop before the next step; the best checkpoint so far is kept")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.progress.setMaximum(1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.plot = TrainingPlot()
        run_box = QGroupBox("Run")
        layout = QVBoxLayout(run_box)
        layout.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(self.weights_button)
        row.addWidget(self.start_button)
        row.addWidget(self.stop_button)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.weights_label)
        layout.addWidget(self.status)
        layout.addWidget(self.plot)

        self.models = TrainedModels(self)
        for name in ("runs_combo", "refresh_button", "predict_button", "fm_edit", "unlabelled_button",
                     "unlabelled_table"):
            setattr(self, name, getattr(self.models, name))

        content = QWidget()
        main = QVBoxLayout(content)
        main.setContentsMargins(2, 2, 2, 2)
        main.setSpacing(4)
        for box in (dataset_box, self.settings_form, run_box, self.models):
            main.addWidget(box)
        main.addStretch(1)
        # the content scrolls when it is taller than the dock (More settings unfolded, a small screen)
        # instead of making the window taller than the screen
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        self.browse_button.clicked.connect(self._browse_dataset)
        self.use_review_button.clicked.connect(self._use_review_panel)
        self.start_button.clicked.connect(lambda: self.start_training())
        self.weights_button.clicked.connect(lambda: self.preview_weights())
        self.stop_button.clicked.connect(self.stop_training)

    def sizeHint(self):  # noqa: N802 (Qt)
        return QSize(docking.SIDE_BY_SIDE_WIDTH, 900)

    def showEvent(self, event):  # noqa: N802 (Qt)
        super().showEvent(event)
        self.refresh()
        QTimer.singleShot(0, safe_slot(self._dock_beside_review))

    # ================================================================== docking

    def _dock_beside_review(self) -> None:
        """Dock beside the viewer's review panel (once per review panel; the user may move them
        afterwards), and watch the main window for a review panel docked later."""
        from .sample import find_panel  # noqa: PLC0415 (sample imports the review panel)

        dock = docking.dock_of(self)
        main = dock.parentWidget() if dock is not None else None
        if main is not None and main is not self._watched_window:
            main.installEventFilter(self)
            self._watched_window = main
        review = find_panel(self.viewer)
        if review is None or id(review) in self._placed_beside:
            return
        if docking.side_by_side(review, self):
            self._placed_beside.add(id(review))

    def eventFilter(self, watched, event):  # noqa: N802 (Qt)
        if (watched is self._watched_window and event.type() == QEvent.Type.ChildAdded
                and isinstance(event.child(), QDockWidget)):
            QTimer.singleShot(0, safe_slot(self._dock_beside_review))  # once napari has placed it
        return False

    # ================================================================== dataset and runs

    def dataset(self) -> Dataset | None:
        """The dataset to train on: the folder chosen here, else the review panel's open dataset."""
        if self.chosen_root is not None:
            try:
                return open_dataset(self.chosen_root)
            except (AleatoricError, OSError) as error:
                notify.error("Cannot open the dataset", error)
                self.chosen_root = None
                return None
        return self.session.dataset

    def set_dataset_folder(self, folder: str | Path | None) -> bool:
        """Train on ``folder`` (``None``: follow the review panel again). Returns whether it opened."""
        if folder is None:
            self.chosen_root = None
            self.refresh()
            return True
        try:
            dataset = open_dataset(Path(folder).expanduser())
        except (AleatoricError, OSError) as error:
            notify.error("Cannot open the dataset", error)
            return False
        self.chosen_root = dataset.root
        self.refresh()
        return True

    def _browse_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset to train on (folder with dataset.json)",
                                                  str(self.chosen_root or Path.home()))
        if folder:
            self.set_dataset_folder(folder)

    def _use_review_panel(self) -> None:
        self.set_dataset_folder(None)

    def _on_session_event(self, event) -> None:
        """Follow the review session: another dataset or new scores (unless a folder was chosen
        here, or a run is training: then after it), the case under review (the weights layer)."""
        if isinstance(event, (DatasetOpened, ScoresChanged)):
            if self.chosen_root is not None:
                return
            if self._train_worker is not None:
                self._dataset_changed = True
                return
            self.refresh()
        elif isinstance(event, CaseChanged):
            self._follow_weights()

    def refresh(self) -> None:
        """Update the dataset line, the run list, the scoring model and the buttons."""
        dataset = self.dataset()
        model = (self.session.model or "").strip()
        if model and self.fm_edit.currentText() == registry.DEFAULT_MODEL:  # score as the review panel does
            self.fm_edit.setCurrentText(model)
        if dataset is None:
            self.dataset_label.setText("No dataset: open one in the review panel, or choose a folder.")
        else:
            source = "chosen folder" if self.chosen_root is not None else "from the review panel"
            scored = scores_csv(dataset.state_dir).is_file()
            self.dataset_label.setText(
                f"<b>{dataset.name}</b> ({source}): {len(dataset.cases)} labelled, {len(dataset.test_cases)} "
                f"unlabelled cases; " + ("scored: training can use the label issues" if scored else
                                         "not scored: training is plain until the dataset is scored"))
        self.models.refresh_runs(dataset)
        self._update_buttons()

    def selected_run(self) -> Path | None:
        """The run chosen in the run list (with a ``best.pt``), or ``None``."""
        return self.models.selected_run()

    def _update_buttons(self) -> None:
        training = self._train_worker is not None
        self.start_button.setEnabled(not training)
        self.weights_button.setEnabled(not training and "weights" not in self._busy)
        self.stop_button.setEnabled(training and not self._stop.is_set())
        self.browse_button.setEnabled(not training)
        self.use_review_button.setEnabled(not training)
        self.models.update_buttons(self._busy)

    # ================================================================== workers

    def is_training(self) -> bool:
        """Whether a training run is in progress."""
        return self._train_worker is not None

    def is_busy(self) -> bool:
        """Whether any background work (training, prediction, unlabelled scoring) is running."""
        return bool(self._workers)

    # ================================================================== settings

    def settings(self) -> TrainSettings:
        """The form's values as (unvalidated) :class:`TrainSettings` (:class:`ValueError` for a text
        field that does not parse)."""
        return self.settings_form.settings()

    def device(self) -> str | None:
        """The device chosen in the form (``None``: automatic)."""
        return self.settings_form.device()

    # ================================================================== weights preview

    def preview_weights(self) -> bool:
        """Compute in a worker what the strategy does to the training cases; show the summary and the
        weights of the review panel's case. Returns whether it started."""
        dataset = self.dataset()
        if dataset is None:
            notify.warning("Open a dataset in the review panel, or choose a dataset folder")
            return False
        try:
            settings = self.settings().validated()
        except ValueError as error:
            notify.error("Cannot preview the weights", error)
            return False
        self.weight_plan = None
        self.weights_label.setText("Learning label quality on the training cases…")
        root, device = dataset.root, self.device()
        self._start(forward_events, "Cannot preview the weights",
                    lambda: preview_label_issues(root, settings, device=device),
                    yielded=self._on_weights_event, name="weights")
        return True

    def _on_weights_event(self, event) -> None:
        if isinstance(event, Failure):
            notify.error(event.what, event.error)
            self.weights_label.setText(f"{event.what}: {notify.describe(event.error)}")
        elif isinstance(event, PreparingLabelIssues):
            self.weights_label.setText(f"Label issues: {event.stage} {event.index}/{event.total}")
        elif isinstance(event, LabelIssuePlan):
            self.weight_plan = event
            self.weights_label.setText(describe(event))
            self._weights_case = None
            self._follow_weights()

    def _follow_weights(self) -> None:
        """Show the preview's weights of the review panel's current case (once per case)."""
        case = self.session.current
        if self.weight_plan is None or case is None or case.case_id == self._weights_case:
            return
        self._weights_case = case.case_id
        self.show_case_weights(case.case_id)

    def show_case_weights(self, case_id: str) -> bool:
        """Add or update the layer ``training: distrust`` (``1 − w``) for ``case_id``; the
        status line says when the case has full weight (reviewed, validation, not weighted)."""
        plan = self.weight_plan
        if plan is None:
            return False
        info = plan.cases.get(case_id)
        weights = plan.case_weights(case_id) if info is not None and not info.left_out else None
        if weights is None:
            if WEIGHTS_LAYER in self.viewer.layers:
                self.viewer.layers.remove(WEIGHTS_LAYER)
            reason = ("not a training case (validation, excluded or filtered by AUV): never weighted" if info is None
                      else "left out by the label-issue filter" if info.left_out
                      else "reviewed: full weight" if info.reviewed else "not weighted by this strategy")
            self.status.setText(f"{case_id}: {reason}")
            return False
        image = self.viewer.layers[IMAGE] if IMAGE in self.viewer.layers else None
        kwargs = {"colormap": "red", "blending": "additive", "contrast_limits": (0.0, 1.0), "opacity": 0.8,
                  "metadata": {"case": case_id}}
        if image is not None and image.ndim == weights.ndim:
            kwargs.update(scale=tuple(image.scale), translate=tuple(image.translate))
        put_layer(self.viewer, "image", WEIGHTS_LAYER, 1.0 - weights, kwargs)
        verb = "relabelled" if plan.mode == "relabel" else "down-weighted"
        self.status.setText(f"{case_id}: {100 * info.contradicted:.1f} % of its annotation contradicted; "
                            f"{100 * info.down_weighted:.1f} % of its pixels {verb} (red: 1 − trust)")
        return True

    def start_training(self) -> bool:
        """Validate the settings and start training in a worker. Returns whether it started."""
        if self._train_worker is not None:
            notify.warning("Training is already running")
            return False
        dataset = self.dataset()
        if dataset is None:
            notify.warning("Open a dataset in the review panel, or choose a dataset folder, before training")
            return False
        try:
            settings = self.settings().validated()
            resolve_device(settings.device)
        except ValueError as error:
            notify.error("Cannot start training", error)
            return False
        self._stop = threading.Event()
        self.last_event = None
        self.run_dir = None
        self.progress.setValue(0)
        self.progress.setMaximum(1)
        self.status.setText(f"Starting {settings.network} on {dataset.name} (labels snapshotted now)…")
        root = dataset.root
        stop = self._stop
        self._train_worker = self._start(
            forward_events, "Training failed",
            lambda: train(root, settings, should_stop=stop.is_set),
            yielded=self._on_training_event, finished=self._on_training_done, name="train")
        self._update_buttons()
        return True

    def stop_training(self) -> None:
        """Ask the run to stop before its next step (``last.pt`` and ``best.pt`` stay)."""
        if self._train_worker is None:
            return
        self._stop.set()
        self.status.setText("Stopping before the next step…")
        self._update_buttons()

    def _on_training_event(self, event) -> None:
        self.last_event = event
        if isinstance(event, Failure):
            notify.error(event.what, event.error)
            self.status.setText(f"{event.what}: {notify.describe(event.error)}")
        elif isinstance(event, PreparingLabelIssues):
            self.status.setText(f"Learning label quality on the training cases: {event.stage} "
                                f"{event.index}/{event.total}")
        elif isinstance(event, TrainingStarted):
            self.run_dir = event.run_dir
            total = event.epochs * event.steps_per_epoch
            self.progress.setMaximum(max(1, total))
            self.progress.setValue((event.start_epoch - 1) * event.steps_per_epoch + event.start_step)
            self.plot.reset(event.classes)
            left = f", {len(event.left_out)} left out" if event.left_out else ""
            self.status.setText(f"Training {event.run_dir.name} on {event.device}: {len(event.train_cases)} training "
                                f"/ {len(event.val_cases)} validation cases{left}, patch "
                                f"{'×'.join(map(str, event.patch))}, {event.epochs} epochs")
            if event.label_issues:
                self.weights_label.setText(event.label_issues)
        elif isinstance(event, StepDone):
            self.progress.setValue((event.epoch - 1) * event.steps_per_epoch + event.step)
            self.plot.add_step(event.global_step, event.loss)
        elif isinstance(event, EpochDone):
            self.plot.add_epoch(event.epoch, event.val_dice)
            dice = ", ".join(f"{name} {value:.3f}" for name, value in event.val_dice.items())
            self.status.setText(f"Epoch {event.epoch}/{event.epochs}: loss {event.train_loss:.4f}; validation Dice "
                                f"{dice}; best epoch {event.best_epoch} ({event.best_dice:.3f}); "
                                f"{event.epoch_seconds:.1f} s")
        elif isinstance(event, TrainingStopped):
            kept = (f"The best model so far is kept in {event.run_dir.name}/{event.model_path.name}"
                    if event.model_path is not None else
                    "No epoch had finished, so there is no model yet (the best model is kept once an epoch ends)")
            self.status.setText(f"Stopped at epoch {event.epoch}, step {event.step} after {event.elapsed:.0f} s. "
                                f"{kept}; resume with `napari-aleatoric train … --resume`.")
        elif isinstance(event, TrainingFinished):
            self.progress.setValue(self.progress.maximum())
            self.status.setText(f"Finished {event.run_dir.name}: best epoch {event.best_epoch}, mean validation "
                                f"Dice {event.best_dice:.3f} ({event.elapsed:.0f} s). Model: {event.model_path}")
            notify.info(f"Training finished: {event.run_dir.name}, validation Dice {event.best_dice:.3f}")

    def _on_training_done(self) -> None:
        self._train_worker = None
        if self._dataset_changed:
            self._dataset_changed = False
            self.refresh()
        if isinstance(self.last_event, PreparingLabelIssues):
            self.status.setText("Stopped before training started: no run was written")
        dataset = self.dataset()
        self.models.refresh_runs(dataset, select=self.run_dir if self.run_dir and (self.run_dir / "best.pt").is_file()
                           else None)
        self._update_buttons()

    # ================================================================== trained models (.training_models)

    @property
    def unlabelled_rows(self) -> list[dict]:
        """The scored unlabelled cases listed in the Trained model box."""
        return self.models.unlabelled_rows

    def current_image(self):
        """See :meth:`.TrainedModels.current_image`."""
        return self.models.current_image()

    def predict_current(self) -> bool:
        """Segment the current case with the chosen run in a worker; adds ``prediction: <run>``."""
        return self.models.predict_current()

    def score_unlabelled(self) -> bool:
        """Segment and score the dataset's ``imagesTs`` cases with the chosen run, in a worker."""
        return self.models.score_unlabelled()

    def show_unlabelled_case(self, row: int) -> bool:
        """Show a scored unlabelled case: image, the run's segmentation and the uncertainty maps."""
        return self.models.show_unlabelled_case(row)

    # ================================================================== closing

    def closeEvent(self, event):  # noqa: N802 (Qt)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop training (saving its position) and other work; called when the panel closes."""
        self._unsubscribe()
        if self._watched_window is not None:
            self._watched_window.removeEventFilter(self)
            self._watched_window = None
        self._stop.set()
        for worker in list(self._workers):
            worker.quit()
