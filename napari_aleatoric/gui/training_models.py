"""The retraining panel's "Trained model" box: the dataset's runs, Predict, and the unlabelled cases.

- the **run** list: the dataset's trained runs with a ``best.pt`` (newest first);
- **Predict** segments the current case (the one shown in the review panel, else the selected image
  layer) with the chosen run and adds it as a labels layer ``prediction: <run>`` with the image's
  scale and translation;
- **Score imagesTs** segments the test cases with the run and scores them with those segmentations
  as the foundation model's box prompts
  (:func:`~napari_aleatoric.pipelines.unlabelled.score_unlabelled`); the ranked list below shows
  them, and clicking one shows its image, the run's segmentation and the uncertainty map.

The box runs its work through the panel that holds it (the *host*: ``viewer``, ``session``,
``dataset()``, ``device()``, ``status``, ``progress``, ``_start`` and ``_update_buttons``), so the
panel's :meth:`is_busy` and :meth:`shutdown` cover it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..models import registry
from ..pipelines.scoring import CaseScored, CaseSkipped, ScoringFinished, ScoringStarted
from ..pipelines.unlabelled import (
    CasePredicted,
    PredictionSkipped,
    UnlabelledStarted,
    pseudo_labelled_dataset,
    score_unlabelled,
)
from ..training import list_runs, load_trained_model
from . import notify
from .case_view import IMAGE, ScoringSettings, case_layer_data, label_colormap, label_features, load_case_view
from .workers import Failure, forward_events

PREDICTION_PREFIX = "prediction: "
UNLABELLED_PREFIX = "imagesTs: "


def put_layer(viewer, kind: str, name: str, data: np.ndarray, kwargs: dict) -> None:
    """Update layer ``name`` in place when its shape fits, else replace it (``kind``: image or labels)."""
    if name in viewer.layers and viewer.layers[name].data.shape == data.shape:
        layer = viewer.layers[name]
        layer.data = data
        for key, value in kwargs.items():
            setattr(layer, key, value)
        return
    if name in viewer.layers:
        viewer.layers.remove(name)
    getattr(viewer, f"add_{kind}")(data, name=name, **kwargs)


class TrainedModels(QGroupBox):
    """The "Trained model" group box of the retraining panel ``host``."""

    def __init__(self, host):
        super().__init__("Trained model")
        self.host = host
        self.unlabelled_rows: list[dict] = []
        self._unlabelled_run: Path | None = None
        self._unlabelled_settings = None
        self._models: dict = {}
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
        for combo in (self.runs_combo, self.fm_edit):  # narrow enough for two panels side by side
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(5)
        self.unlabelled_button = QPushButton("Score imagesTs")
        self.unlabelled_button.setToolTip("the run segments the unlabelled cases (imagesTs); its segmentations "
                                          "prompt the foundation model; the cases are ranked by AUV below")
        self.unlabelled_table = QTableWidget(0, 3)
        self.unlabelled_table.setHorizontalHeaderLabels(["case (imagesTs)", "AUV", "flagged"])
        self.unlabelled_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.unlabelled_table.verticalHeader().setVisible(False)
        self.unlabelled_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.unlabelled_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.unlabelled_table.setMinimumHeight(60)
        self.unlabelled_table.setMaximumHeight(110)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.setSpacing(4)
        row.addWidget(QLabel("run"))
        row.addWidget(self.runs_combo, 1)
        row.addWidget(self.refresh_button)
        row.addWidget(self.predict_button)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.setSpacing(4)
        row.addWidget(QLabel("model"))
        row.addWidget(self.fm_edit, 1)
        row.addWidget(self.unlabelled_button)
        layout.addLayout(row)
        layout.addWidget(self.unlabelled_table)
        self.predict_button.clicked.connect(lambda: self.predict_current())
        self.unlabelled_button.clicked.connect(lambda: self.score_unlabelled())
        self.refresh_button.clicked.connect(lambda: host.refresh())
        self.runs_combo.currentIndexChanged.connect(lambda _index: host._update_buttons())
        self.unlabelled_table.cellClicked.connect(lambda row, _col: self.show_unlabelled_case(row))

    # ================================================================== runs

    def refresh_runs(self, dataset, select: Path | None = None) -> None:
        """List ``dataset``'s runs that have a model; keep (or make) ``select`` the chosen one."""
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

    def update_buttons(self, busy: set[str]) -> None:
        has_run = self.selected_run() is not None
        self.predict_button.setEnabled(has_run and "predict" not in busy)
        self.unlabelled_button.setEnabled(has_run and "unlabelled" not in busy)

    # ================================================================== prediction

    def current_image(self) -> tuple[str, np.ndarray, tuple, tuple] | None:
        """``(name, image, scale, translate)`` of the case to segment: the review panel's current
        case (in file intensity units), else the selected (or top-most) image layer."""
        viewer = self.host.viewer
        case = self.host.session.current
        if case is not None:
            layer = viewer.layers[IMAGE] if IMAGE in viewer.layers else None
            translate = tuple(layer.translate) if layer is not None else (0.0,) * case.image.ndim
            return case.case_id, case.image, tuple(float(s) for s in case.geometry.spacing), translate
        from napari.layers import Image  # noqa: PLC0415

        active = viewer.layers.selection.active
        candidates = [active] if isinstance(active, Image) else []
        candidates += [layer for layer in reversed(viewer.layers) if isinstance(layer, Image) and layer.visible]
        for layer in candidates:
            if not layer.rgb and layer.ndim in (2, 3) and not layer.multiscale:
                name = layer.name.removeprefix(UNLABELLED_PREFIX)
                return name, np.asarray(layer.data), tuple(layer.scale), tuple(layer.translate)
        return None

    def _model(self, run_dir: Path, device: str | None):
        best = run_dir / "best.pt"
        key = (str(run_dir), best.stat().st_mtime_ns if best.exists() else 0, device)
        if key not in self._models:
            self._models = {key: load_trained_model(run_dir, device=device)}
        return self._models[key]

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
        device = self.host.device()

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

        self.host.status.setText(f"Segmenting {name} with {run_dir.name}…")
        self.host._start(job, returned=done, name="predict")
        return True

    def _show_prediction(self, labels: np.ndarray, run_dir: Path, case_name: str, scale, translate) -> None:
        layer_name = f"{PREDICTION_PREFIX}{run_dir.name}"
        dataset = self.host.dataset()
        kwargs = {"scale": scale[-labels.ndim:], "translate": translate[-labels.ndim:], "opacity": 0.6,
                  "metadata": {"case": case_name, "run": str(run_dir)}}
        if dataset is not None:
            kwargs["colormap"] = label_colormap(dataset.foreground)
            kwargs["features"] = label_features(dataset.labels)
        put_layer(self.host.viewer, "labels", layer_name, labels, kwargs)
        self.host.status.setText(f"{layer_name}: segmentation of {case_name} "
                                 f"({int((labels != 0).sum())} foreground pixels)")

    # ================================================================== unlabelled cases

    def score_unlabelled(self) -> bool:
        """Segment and score the dataset's ``imagesTs`` cases with the chosen run, in a worker."""
        run_dir = self.selected_run()
        dataset = self.host.dataset()
        if run_dir is None or dataset is None:
            notify.warning("Train a model first (or choose a run)")
            return False
        if not dataset.test_cases:
            notify.warning(f"{dataset.root}: no unlabelled cases (imagesTs/ is missing or empty)")
            return False
        spec = self.fm_edit.currentText().strip() or registry.DEFAULT_MODEL
        device = self.host.device()
        self.unlabelled_rows = []
        self.unlabelled_table.setRowCount(0)
        self.host.progress.setValue(0)
        self.host.progress.setMaximum(2 * len(dataset.test_cases))
        self.host.status.setText(f"Segmenting {len(dataset.test_cases)} unlabelled cases with {run_dir.name}, "
                                 f"then scoring them with {spec}…")
        root = dataset.root
        self._unlabelled_run = run_dir
        self.host._start(forward_events, "Scoring the unlabelled cases failed",
                         lambda: score_unlabelled(root, run_dir, spec, device=device),
                         yielded=self._on_unlabelled_event, name="unlabelled")
        return True

    def _on_unlabelled_event(self, event) -> None:
        progress, status = self.host.progress, self.host.status
        if isinstance(event, Failure):
            notify.error(event.what, event.error)
            status.setText(f"{event.what}: {notify.describe(event.error)}")
        elif isinstance(event, UnlabelledStarted):
            progress.setMaximum(max(1, 2 * event.total))
        elif isinstance(event, CasePredicted):
            progress.setValue(event.index)
            status.setText(f"Segmented {event.case_id} ({event.index}/{event.total})")
        elif isinstance(event, PredictionSkipped):
            progress.setValue(event.index)
            notify.warning(f"Skipped: {event.error}")
        elif isinstance(event, ScoringStarted):
            for error in event.skipped:
                notify.warning(f"Skipped: {error}")
        elif isinstance(event, (CaseScored, CaseSkipped)):
            progress.setValue(progress.maximum() // 2 + event.index)
            if isinstance(event, CaseSkipped):
                notify.warning(f"Skipped: {event.error}")
        elif isinstance(event, ScoringFinished):
            progress.setValue(progress.maximum())
            self.unlabelled_rows = list(event.table.rows)
            self._unlabelled_settings = ScoringSettings.read(event.summary_path)
            self._fill_table()
            status.setText(f"Scored {len(self.unlabelled_rows)} unlabelled cases with the segmentations of "
                           f"{self._unlabelled_run.name} as prompts; click one to review it. Scores: "
                           f"{event.csv_path}")

    def _fill_table(self) -> None:
        self.unlabelled_table.setRowCount(len(self.unlabelled_rows))
        for r, row in enumerate(self.unlabelled_rows):
            auv = row["auv"]
            for c, text in enumerate((row["case_id"], f"{auv:.3f}" if math.isfinite(auv) else "–",
                                      "yes" if row["flagged"] else "")):
                item = QTableWidgetItem(text)
                item.setTextAlignment(int(Qt.AlignmentFlag.AlignVCenter | (
                    Qt.AlignmentFlag.AlignLeft if c == 0 else Qt.AlignmentFlag.AlignRight)))
                self.unlabelled_table.setItem(r, c, item)

    def show_unlabelled_case(self, row: int) -> bool:
        """Show a scored unlabelled case: image, the run's segmentation and the uncertainty maps."""
        if not 0 <= row < len(self.unlabelled_rows):
            return False
        dataset = self.host.dataset()
        if dataset is None:
            return False
        table_row = self.unlabelled_rows[row]
        case_id = table_row["case_id"]
        pseudo = pseudo_labelled_dataset(dataset, self._unlabelled_run.name)
        settings = self._unlabelled_settings
        viewer = self.host.viewer

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
                if kwargs["name"] in viewer.layers:
                    viewer.layers.remove(kwargs["name"])
                getattr(viewer, f"add_{layer_type}")(data, **kwargs)
            self.host.status.setText(f"{case_id} (imagesTs): the run's segmentation and the foundation model's "
                                     f"uncertainty (AUV {table_row['auv']:.3f})")

        self.host._start(job, returned=done, name="show")
        return True
