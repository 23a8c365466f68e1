"""The retraining panel: train a task network on the reviewed dataset in the background, watch it, use it.

Thin, like the review panel: every computation is a call into the core
(:func:`napari_aleatoric.training.train`, :func:`~napari_aleatoric.training.load_trained_model`,
:func:`napari_aleatoric.pipelines.unlabelled.score_unlabelled`).

- **Dataset**: the one open in the viewer's review session (the review panel's; found through
  :mod:`.sessions` and followed through the session's events, no polling), or a folder chosen here.
- **Settings**: a magicgui form over :class:`~napari_aleatoric.training.TrainSettings` (strategy,
  network, epochs, learning rate, label-issue weights and keep quantile, AUV keep quantile, DUO,
  α, β, denoising, device, seed, width, depth); choosing a strategy sets its fields. The core
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
- **Score unlabelled (imagesTs)** segments the test cases with the run and scores them with those
  segmentations as the foundation model's box prompts; the ranked list below shows them, and
  clicking one shows its image, the run's segmentation and the uncertainty map.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
from magicgui import widgets as mg
from superqt.utils import ensure_main_thread
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..data.dataset import Dataset, open_dataset
from ..data.errors import AleatoricError
from ..models import registry
from ..models.base import resolve_device
from ..pipelines.scoring import CaseScored, CaseSkipped, ScoringFinished, ScoringStarted
from ..pipelines.unlabelled import (
    CasePredicted,
    PredictionSkipped,
    UnlabelledStarted,
    pseudo_labelled_dataset,
    score_unlabelled,
)
from ..training import (
    NETWORKS,
    EpochDone,
    StepDone,
    TrainingFinished,
    TrainingStarted,
    TrainingStopped,
    STRATEGIES,
    LabelIssuePlan,
    PreparingLabelIssues,
    TrainSettings,
    describe,
    list_runs,
    load_trained_model,
    preview_label_issues,
    strategy_of,
    train,
)
from ..session import CaseChanged, DatasetOpened, ScoresChanged
from ..training.settings import LABEL_ISSUE_MODES
from . import notify, sessions
from ._compat import guard_triton
from .case_view import (
    IMAGE,
    ScoringSettings,
    case_layer_data,
    label_colormap,
    label_features,
    load_case_view,
)
from .workers import BackgroundWork, Failure, forward_events, safe_slot

PANEL_NAME = "Retraining (napari-aleatoric)"
DEVICES = ("auto", "cpu", "cuda")
PREDICTION_PREFIX = "prediction: "
UNLABELLED_PREFIX = "imagesTs: "
WEIGHTS_LAYER = "training: distrust"
#: plot colours (napari's dark theme) and one colour per class
_PLOT_BG, _PLOT_FG = "#262930", "#d1d2d4"
_CLASS_LINE_COLOURS = ("#00bfff", "#32cd32", "#ff00ff", "#ffd700", "#1e90ff", "#adff2f", "#ff69b4")


class TrainingPlot(QWidget):
    """Live plot: training loss per step (left) and per-class validation Dice per epoch (right).

    The data are kept in :attr:`loss_steps` / :attr:`losses` and :attr:`dice_epochs` /
    :attr:`dice` (class → values); the figure is redrawn lazily (``draw_idle``).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.loss_steps: list[int] = []
        self.losses: list[float] = []
        self.dice_epochs: list[int] = []
        self.dice: dict[str, list[float]] = {}
        self.redraws = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        try:
            from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg  # noqa: PLC0415
            from matplotlib.figure import Figure  # noqa: PLC0415
        except ImportError:  # pragma: no cover - matplotlib is a dependency
            self.canvas = None
            layout.addWidget(QLabel("Install matplotlib for the live plot (pip install matplotlib)."))
            return
        self.figure = Figure(figsize=(4.6, 2.2), facecolor=_PLOT_BG, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(190)
        self.loss_axes, self.dice_axes = self.figure.subplots(1, 2)
        for axes, title in ((self.loss_axes, "training loss"), (self.dice_axes, "validation Dice")):
            axes.set_facecolor(_PLOT_BG)
            axes.set_title(title, color=_PLOT_FG, fontsize=9)
            axes.tick_params(colors=_PLOT_FG, labelsize=7)
            for spine in axes.spines.values():
                spine.set_color("#5a5d66")
        self.loss_axes.set_xlabel("step", color=_PLOT_FG, fontsize=8)
        self.dice_axes.set_xlabel("epoch", color=_PLOT_FG, fontsize=8)
        from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

        self.dice_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        self.loss_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        (self.loss_line,) = self.loss_axes.plot([], [], color="#ff9f40", linewidth=1.0)
        self.dice_lines: dict = {}
        layout.addWidget(self.canvas)

    def reset(self, classes: list[str]) -> None:
        """Clear the curves for a new run with these classes."""
        self.loss_steps, self.losses, self.dice_epochs = [], [], []
        self.dice = {name: [] for name in classes}
        if self.canvas is None:
            return
        for line in self.dice_lines.values():
            line.remove()
        self.dice_lines = {}
        for k, name in enumerate(classes):
            (self.dice_lines[name],) = self.dice_axes.plot([], [], marker="o", markersize=3, linewidth=1.2,
                                                           color=_CLASS_LINE_COLOURS[k % len(_CLASS_LINE_COLOURS)],
                                                           label=name)
        legend = self.dice_axes.legend(fontsize=7, loc="lower right", facecolor=_PLOT_BG, edgecolor="#5a5d66")
        for text in legend.get_texts():
            text.set_color(_PLOT_FG)
        self._redraw()

    def add_step(self, global_step: int, loss: float) -> None:
        """One training step's loss."""
        self.loss_steps.append(int(global_step))
        self.losses.append(float(loss))
        self._redraw()

    def add_epoch(self, epoch: int, dice: dict[str, float]) -> None:
        """One epoch's validation Dice per class (NaN: the class was absent everywhere)."""
        self.dice_epochs.append(int(epoch))
        for name, value in dice.items():
            self.dice.setdefault(name, []).append(float(value))
        self._redraw()

    def _redraw(self) -> None:
        if self.canvas is None:
            return
        self.loss_line.set_data(self.loss_steps, self.losses)
        for name, line in self.dice_lines.items():
            line.set_data(self.dice_epochs[:len(self.dice.get(name, []))], self.dice.get(name, []))
        self.loss_axes.relim()
        self.loss_axes.autoscale_view()
        self.dice_axes.set_xlim(0.5, max(2, len(self.dice_epochs)) + 0.5)
        self.dice_axes.set_ylim(0.0, 1.0)
        self.canvas.draw_idle()
        self.redraws += 1


class TrainingPanel(BackgroundWork, QWidget):
    """Dock widget that retrains a task network on the reviewed dataset (npe2 widget contribution).

    Args:
        napari_viewer: the viewer.

    Attributes useful for scripts and tests: :attr:`form` (the magicgui container; its widgets
    are named like the :class:`TrainSettings` fields plus ``device``), :attr:`plot`,
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
        self.unlabelled_rows: list[dict] = []
        self._stop = threading.Event()
        self._train_worker = None
        self._workers: set = set()
        self._busy: set[str] = set()
        self._models: dict = {}
        self._shown_root: Path | None = None
        self.weight_plan: LabelIssuePlan | None = None
        self._syncing_strategy = False
        self._weights_case: str | None = None
        self._dataset_changed = False  # the review session opened another dataset during a run
        self._build_ui()
        # the review session of this viewer (the one the review panel shows): its events keep this
        # panel current, on the GUI thread whoever emits them
        self.session = sessions.session_for(napari_viewer)
        self._unsubscribe = self.session.subscribe(ensure_main_thread(safe_slot(self._on_session_event)))
        self.refresh()

    # ================================================================== UI

    def _build_ui(self) -> None:
        self.setMinimumWidth(420)
        self.dataset_label = QLabel("")
        self.dataset_label.setWordWrap(True)
        self.browse_button = QPushButton("Choose folder…")
        self.browse_button.setToolTip("train on another dataset folder than the review panel's")
        self.use_review_button = QPushButton("Use review panel's")
        dataset_box = QGroupBox("Dataset")
        layout = QVBoxLayout(dataset_box)
        layout.addWidget(self.dataset_label)
        row = QHBoxLayout()
        row.addWidget(self.browse_button)
        row.addWidget(self.use_review_button)
        row.addStretch(1)
        layout.addLayout(row)

        defaults = TrainSettings()  # the one definition of the defaults (the CLI's help names them too)
        self.form = mg.Container(widgets=[
            mg.ComboBox(name="strategy", label="strategy", choices=[*STRATEGIES, "custom"],
                        value=strategy_of(defaults) or "custom",
                        tooltip="default: contradicted drawn pixels learn the label-quality model's class where it is "
                                "sure and weigh less where it is not, when the dataset is scored, "
                                "else plain; "
                                "issue-*: guided by the label issues; auv-filter / duo: the paper's "
                                "(docs/training.md has the measured effect of each)"),
            mg.ComboBox(name="network", label="network", choices=list(NETWORKS), value=defaults.network,
                        tooltip="MONAI task network (swinunetr needs einops)"),
            mg.SpinBox(name="epochs", label="epochs", value=defaults.epochs, min=0, max=100_000,
                       tooltip="passes over the training cases"),
            mg.FloatSpinBox(name="lr", label="learning rate", value=defaults.lr, min=0.0, max=1.0, step=1e-4,
                            tooltip="Adam learning rate (poly decay)"),
            mg.ComboBox(name="label_issues", label="label issues", choices=list(LABEL_ISSUE_MODES),
                        value=defaults.label_issues,
                        tooltip="pixels whose annotation the out-of-fold label-quality model contradicts: "
                                "relabel = learn its classes there, weight = weigh less; auto = the measured "
                                "best when the dataset is scored (weight)"),
            mg.FloatSpinBox(name="issue_keep", label="label-issue keep", value=defaults.issue_keep, min=0.0,
                            max=1.0, step=0.05, tooltip="keep training cases with label issue ≤ this quantile "
                                                        "(1 = keep all; reviewed cases are always kept)"),
            mg.FloatSpinBox(name="keep", label="AUV keep quantile", value=defaults.keep, min=0.0, max=1.0, step=0.05,
                            tooltip="the paper's AUV filtering: keep training cases with AUV ≤ this quantile "
                                    "(1 = no filtering; needs the dataset's scores otherwise)"),
            mg.CheckBox(name="duo", label="DUO loss", value=defaults.duo,
                        tooltip="uncertainty-weighted loss; off = plain β·Dice + (1−β)·BCE"),
            mg.FloatSpinBox(name="alpha", label="α (DUO weight)", value=defaults.alpha, min=0.0, max=100.0,
                            step=0.1, tooltip="weights 1 / (1 + α·S); 0 switches the weights off"),
            mg.FloatSpinBox(name="beta", label="β (Dice share)", value=defaults.beta, min=0.0, max=1.0, step=0.05,
                            tooltip="L_seg = β·Dice + (1 − β)·BCE"),
            mg.CheckBox(name="denoise", label="label denoising", value=defaults.denoise,
                        tooltip="DUO label denoising with the noise head"),
            mg.ComboBox(name="device", label="device", choices=list(DEVICES), value="auto"),
            mg.SpinBox(name="seed", label="seed", value=defaults.seed, min=0, max=2**31 - 1),
            mg.SpinBox(name="width", label="width", value=defaults.width, min=1, max=512,
                       tooltip="channels of the first level"),
            mg.SpinBox(name="depth", label="depth", value=defaults.depth, min=1, max=8,
                       tooltip="resolution levels (UNet / SegResNet)"),
        ], labels=True)
        if hasattr(self.form["lr"].native, "setDecimals"):
            self.form["lr"].native.setDecimals(5)
        settings_box = QGroupBox("Training settings")
        layout = QVBoxLayout(settings_box)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.form.native)

        self.form["strategy"].changed.connect(safe_slot(self._apply_strategy))
        for name in ("keep", "duo", "issue_keep", "label_issues"):
            self.form[name].changed.connect(safe_slot(lambda *_: self._show_strategy()))
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
        row = QHBoxLayout()
        row.addWidget(self.weights_button)
        row.addWidget(self.start_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.progress, 1)
        layout.addLayout(row)
        layout.addWidget(self.weights_label)
        layout.addWidget(self.status)
        layout.addWidget(self.plot)

        self.runs_combo = QComboBox()
        self.runs_combo.setToolTip("trained runs of the dataset (newest first)")
        self.refresh_button = QPushButton("↻")
        self.refresh_button.setToolTip("re-read the dataset and its runs")
        self.refresh_button.setMaximumWidth(32)
        self.predict_button = QPushButton("Predict")
        self.predict_button.setToolTip("segment the current case (review panel, else the selected image layer)")
        self.fm_edit = QComboBox()
        self.fm_edit.setEditable(True)
        self.fm_edit.addItems([registry.DEFAULT_MODEL])
        self.fm_edit.setToolTip("foundation model that scores the unlabelled cases (as in the review panel)")
        self.unlabelled_button = QPushButton("Score unlabelled (imagesTs)")
        self.unlabelled_button.setToolTip("the run segments imagesTs; its segmentations prompt the foundation "
                                          "model; the cases are ranked by AUV below")
        self.unlabelled_table = QTableWidget(0, 3)
        self.unlabelled_table.setHorizontalHeaderLabels(["case (imagesTs)", "AUV", "flagged"])
        self.unlabelled_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.unlabelled_table.verticalHeader().setVisible(False)
        self.unlabelled_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.unlabelled_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.unlabelled_table.setMaximumHeight(140)
        model_box = QGroupBox("Trained model")
        layout = QVBoxLayout(model_box)
        row = QHBoxLayout()
        row.addWidget(QLabel("run"))
        row.addWidget(self.runs_combo, 1)
        row.addWidget(self.refresh_button)
        row.addWidget(self.predict_button)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("scoring model"))
        row.addWidget(self.fm_edit, 1)
        row.addWidget(self.unlabelled_button)
        layout.addLayout(row)
        layout.addWidget(self.unlabelled_table)

        main = QVBoxLayout(self)
        main.setContentsMargins(4, 4, 4, 4)
        main.addWidget(dataset_box)
        main.addWidget(settings_box)
        main.addWidget(run_box)
        main.addWidget(model_box)
        main.addStretch(1)

        self.browse_button.clicked.connect(self._browse_dataset)
        self.use_review_button.clicked.connect(self._use_review_panel)
        self.start_button.clicked.connect(lambda: self.start_training())
        self.weights_button.clicked.connect(lambda: self.preview_weights())
        self.stop_button.clicked.connect(self.stop_training)
        self.predict_button.clicked.connect(lambda: self.predict_current())
        self.unlabelled_button.clicked.connect(lambda: self.score_unlabelled())
        self.refresh_button.clicked.connect(self.refresh)
        self.runs_combo.currentIndexChanged.connect(lambda _index: self._update_buttons())
        self.unlabelled_table.cellClicked.connect(lambda row, _col: self.show_unlabelled_case(row))

    def sizeHint(self):  # noqa: N802 (Qt)
        from qtpy.QtCore import QSize  # noqa: PLC0415

        return QSize(480, 900)

    def showEvent(self, event):  # noqa: N802 (Qt)
        super().showEvent(event)
        self.refresh()

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
        self._shown_root = dataset.root if dataset is not None else None
        model = (self.session.model or "").strip()
        if model and self.fm_edit.currentText() == registry.DEFAULT_MODEL:  # score as the review panel does
            self.fm_edit.setCurrentText(model)
        if dataset is None:
            self.dataset_label.setText("No dataset: open one in the review panel, or choose a folder.")
        else:
            source = "chosen folder" if self.chosen_root is not None else "from the review panel"
            scored = (dataset.state_dir / "scores.csv").is_file()
            self.dataset_label.setText(
                f"<b>{dataset.name}</b> ({source}): {len(dataset.cases)} labelled, {len(dataset.test_cases)} "
                f"unlabelled cases; " + ("scored: training can use the label issues" if scored else
                                         "not scored: training is plain until the dataset is scored"))
        self._refresh_runs(dataset)
        self._update_buttons()

    def _refresh_runs(self, dataset: Dataset | None, select: Path | None = None) -> None:
        current = select or (Path(self.runs_combo.currentData()) if self.runs_combo.currentData() else None)
        self.runs_combo.blockSignals(True)
        self.runs_combo.clear()
        if dataset is not None:
            for info in list_runs(dataset.root):
                if not info.has_model:
                    continue
                dice = f", Dice {info.best_dice:.3f}" if isinstance(info.best_dice, float) and \
                    math.isfinite(info.best_dice) else ""
                self.runs_combo.addItem(f"{info.name} ({info.network}, {info.epochs_done} ep{dice})", str(info.path))
        if current is not None:
            index = self.runs_combo.findData(str(current))
            if index >= 0:
                self.runs_combo.setCurrentIndex(index)
        self.runs_combo.blockSignals(False)

    def selected_run(self) -> Path | None:
        """The run chosen in the run list (with a ``best.pt``), or ``None``."""
        data = self.runs_combo.currentData()
        return Path(data) if data else None

    def _update_buttons(self) -> None:
        training = self._train_worker is not None
        self.start_button.setEnabled(not training)
        self.weights_button.setEnabled(not training and "weights" not in self._busy)
        self.stop_button.setEnabled(training and not self._stop.is_set())
        self.browse_button.setEnabled(not training)
        self.use_review_button.setEnabled(not training)
        has_run = self.selected_run() is not None
        self.predict_button.setEnabled(has_run and "predict" not in self._busy)
        self.unlabelled_button.setEnabled(has_run and "unlabelled" not in self._busy)

    # ================================================================== workers

    def is_training(self) -> bool:
        """Whether a training run is in progress."""
        return self._train_worker is not None

    def is_busy(self) -> bool:
        """Whether any background work (training, prediction, unlabelled scoring) is running."""
        return bool(self._workers)

    # ================================================================== training

    def settings(self) -> TrainSettings:
        """The form's values as (unvalidated) :class:`TrainSettings`."""
        values = {w.name: w.value for w in self.form}
        device = values.pop("device")
        values.pop("strategy")
        return TrainSettings(device=None if device in ("", "auto") else device, **values)

    def _apply_strategy(self, *_args) -> None:
        """The strategy combo sets its fields (``custom`` leaves them)."""
        name = self.form["strategy"].value
        if name not in STRATEGIES or self._syncing_strategy:
            return
        self._syncing_strategy = True
        try:
            for key, value in STRATEGIES[name].items():
                self.form[key].value = value
        finally:
            self._syncing_strategy = False

    def _show_strategy(self) -> None:
        """The strategy combo follows the fields (``custom`` for a combination of one's own)."""
        if self._syncing_strategy:
            return
        name = strategy_of(self.settings()) or "custom"
        if self.form["strategy"].value != name:
            self._syncing_strategy = True
            try:
                self.form["strategy"].value = name
            finally:
                self._syncing_strategy = False

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
        root, device = dataset.root, self._device()
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
        self._put_layer("image", WEIGHTS_LAYER, 1.0 - weights, kwargs)
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
            self._steps_per_epoch = event.steps_per_epoch
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
        self._refresh_runs(dataset, select=self.run_dir if self.run_dir and (self.run_dir / "best.pt").is_file()
                           else None)
        self._update_buttons()

    # ================================================================== prediction

    def current_image(self) -> tuple[str, np.ndarray, tuple, tuple] | None:
        """``(name, image, scale, translate)`` of the case to segment: the review panel's current
        case (in file intensity units), else the selected (or top-most) image layer."""
        case = self.session.current
        if case is not None:
            layer = self.viewer.layers[IMAGE] if IMAGE in self.viewer.layers else None
            translate = tuple(layer.translate) if layer is not None else (0.0,) * case.image.ndim
            return case.case_id, case.image, tuple(float(s) for s in case.geometry.spacing), translate
        from napari.layers import Image  # noqa: PLC0415

        active = self.viewer.layers.selection.active
        candidates = [active] if isinstance(active, Image) else []
        candidates += [layer for layer in reversed(self.viewer.layers) if isinstance(layer, Image) and layer.visible]
        for layer in candidates:
            if not layer.rgb and layer.ndim in (2, 3) and not layer.multiscale:
                name = layer.name.removeprefix(UNLABELLED_PREFIX)
                return name, np.asarray(layer.data), tuple(layer.scale), tuple(layer.translate)
        return None

    def _model(self, run_dir: Path, device: str | None):
        key = (str(run_dir), (run_dir / "best.pt").stat().st_mtime_ns if (run_dir / "best.pt").exists() else 0,
               device)
        if key not in self._models:
            self._models = {key: load_trained_model(run_dir, device=device)}
        return self._models[key]

    def _device(self) -> str | None:
        device = self.form["device"].value
        return None if device in ("", "auto") else device

    def predict_current(self) -> bool:
        """Segment the current case with the chosen run in a worker; adds ``prediction: <run>``."""
        run_dir = self.selected_run()
        if run_dir is None:
            notify.warning("No trained model yet: train one (or choose a run)")
            return False
        target = self.current_image()
        if target is None:
            notify.warning("Nothing to segment: select a case in the review panel or an image layer")
            return False
        name, image, scale, translate = target
        device = self._device()

        def job():
            try:
                return self._model(run_dir, device).predict(image)
            except Exception as error:  # noqa: BLE001 - shown to the user
                return Failure(f"Cannot segment {name} with {run_dir.name}", error)

        def done(result):
            if isinstance(result, Failure):
                notify.error(result.what, result.error)
                return
            self._show_prediction(result, run_dir, name, scale, translate)

        self.status.setText(f"Segmenting {name} with {run_dir.name}…")
        self._start(job, returned=done, name="predict")
        return True

    def _put_layer(self, kind: str, name: str, data: np.ndarray, kwargs: dict) -> None:
        """Update layer ``name`` in place when its shape fits, else replace it (``kind``: image or labels)."""
        if name in self.viewer.layers and self.viewer.layers[name].data.shape == data.shape:
            layer = self.viewer.layers[name]
            layer.data = data
            for key, value in kwargs.items():
                setattr(layer, key, value)
            return
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        getattr(self.viewer, f"add_{kind}")(data, name=name, **kwargs)

    def _show_prediction(self, labels: np.ndarray, run_dir: Path, case_name: str, scale, translate) -> None:
        layer_name = f"{PREDICTION_PREFIX}{run_dir.name}"
        dataset = self.dataset()
        kwargs = {"scale": scale[-labels.ndim:], "translate": translate[-labels.ndim:], "opacity": 0.6,
                  "metadata": {"case": case_name, "run": str(run_dir)}}
        if dataset is not None:
            kwargs["colormap"] = label_colormap(dataset.foreground)
            kwargs["features"] = label_features(dataset.labels)
        self._put_layer("labels", layer_name, labels, kwargs)
        self.status.setText(f"{layer_name}: segmentation of {case_name} "
                            f"({int((labels != 0).sum())} foreground pixels)")

    # ================================================================== unlabelled cases

    def score_unlabelled(self) -> bool:
        """Segment and score the dataset's ``imagesTs`` cases with the chosen run, in a worker."""
        run_dir = self.selected_run()
        dataset = self.dataset()
        if run_dir is None or dataset is None:
            notify.warning("Train a model first (or choose a run)")
            return False
        if not dataset.test_cases:
            notify.warning(f"{dataset.root}: no unlabelled cases (imagesTs/ is missing or empty)")
            return False
        spec = self.fm_edit.currentText().strip() or registry.DEFAULT_MODEL
        device = self._device()
        self.unlabelled_rows = []
        self.unlabelled_table.setRowCount(0)
        self.progress.setValue(0)
        self.progress.setMaximum(2 * len(dataset.test_cases))
        self.status.setText(f"Segmenting {len(dataset.test_cases)} unlabelled cases with {run_dir.name}, then "
                            f"scoring them with {spec}…")
        root = dataset.root
        self._unlabelled_run = run_dir
        self._start(forward_events, "Scoring the unlabelled cases failed",
                    lambda: score_unlabelled(root, run_dir, spec, device=device),
                    yielded=self._on_unlabelled_event, name="unlabelled")
        return True

    def _on_unlabelled_event(self, event) -> None:
        if isinstance(event, Failure):
            notify.error(event.what, event.error)
            self.status.setText(f"{event.what}: {notify.describe(event.error)}")
        elif isinstance(event, UnlabelledStarted):
            self.progress.setMaximum(max(1, 2 * event.total))
        elif isinstance(event, CasePredicted):
            self.progress.setValue(event.index)
            self.status.setText(f"Segmented {event.case_id} ({event.index}/{event.total})")
        elif isinstance(event, PredictionSkipped):
            self.progress.setValue(event.index)
            notify.warning(f"Skipped: {event.error}")
        elif isinstance(event, ScoringStarted):
            for error in event.skipped:
                notify.warning(f"Skipped: {error}")
        elif isinstance(event, (CaseScored, CaseSkipped)):
            self.progress.setValue(self.progress.maximum() // 2 + event.index)
            if isinstance(event, CaseSkipped):
                notify.warning(f"Skipped: {event.error}")
        elif isinstance(event, ScoringFinished):
            self.progress.setValue(self.progress.maximum())
            self.unlabelled_rows = list(event.table.rows)
            self._unlabelled_settings = ScoringSettings.read(event.summary_path)
            self.unlabelled_table.setRowCount(len(self.unlabelled_rows))
            for r, row in enumerate(self.unlabelled_rows):
                auv = row["auv"]
                for c, text in enumerate((row["case_id"], f"{auv:.3f}" if math.isfinite(auv) else "–",
                                          "yes" if row["flagged"] else "")):
                    item = QTableWidgetItem(text)
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignVCenter | (
                        Qt.AlignmentFlag.AlignLeft if c == 0 else Qt.AlignmentFlag.AlignRight)))
                    self.unlabelled_table.setItem(r, c, item)
            self.status.setText(f"Scored {len(self.unlabelled_rows)} unlabelled cases with the segmentations of "
                                f"{self._unlabelled_run.name} as prompts; click one to review it. Scores: "
                                f"{event.csv_path}")

    def show_unlabelled_case(self, row: int) -> bool:
        """Show a scored unlabelled case: image, the run's segmentation and the uncertainty maps."""
        if not 0 <= row < len(self.unlabelled_rows):
            return False
        dataset = self.dataset()
        if dataset is None:
            return False
        case_id = self.unlabelled_rows[row]["case_id"]
        pseudo = pseudo_labelled_dataset(dataset, self._unlabelled_run.name)
        settings = getattr(self, "_unlabelled_settings", None)
        table_row = self.unlabelled_rows[row]

        def job():
            try:
                return load_case_view(pseudo, case_id, settings, row=table_row)
            except Exception as error:  # noqa: BLE001
                return Failure(f"Cannot show {case_id}", error)

        def done(view):
            if isinstance(view, Failure):
                notify.error(view.what, view.error)
                return
            for data, kwargs, layer_type in case_layer_data(view, dataset.labels):
                name = kwargs["name"]
                kwargs = dict(kwargs, name=f"{UNLABELLED_PREFIX}{'segmentation' if name == 'annotation' else name}")
                if kwargs["name"] in self.viewer.layers:
                    self.viewer.layers.remove(kwargs["name"])
                getattr(self.viewer, f"add_{layer_type}")(data, **kwargs)
            self.status.setText(f"{case_id} (imagesTs): the run's segmentation and the foundation model's "
                                f"uncertainty (AUV {table_row['auv']:.3f})")

        self._start(job, returned=done, name="show")
        return True

    # ================================================================== closing

    def closeEvent(self, event):  # noqa: N802 (Qt)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop training (saving its position) and other work; called when the panel closes."""
        self._unsubscribe()
        self._stop.set()
        for worker in list(self._workers):
            worker.quit()
