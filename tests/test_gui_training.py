"""The retraining panel in a real (virtual) display: start/stop training in a worker, the live plot and
progress, prediction layers, unlabelled scoring, and bad settings as notifications.

Runs under pytest-xvfb. Datasets are copies of the bundled MNI slices (tmp_path); the networks are
tiny (UNet width 4, depth 3) and train on one torch thread.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import Ticks, errors

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_thread")]

WAIT_MS = 180_000
TINY_FORM = {"epochs": 2, "width": 4, "depth": 3, "keep": 1.0, "device": "cpu", "lr": 0.003}


@pytest.fixture
def panels(make_napari_viewer, qtbot):
    """``make(with_review=True)`` → (viewer, review panel or None, training panel), all docked."""
    from napari_aleatoric.gui.sample import dock_panel
    from napari_aleatoric.gui.training_panel import TrainingPanel

    made = []

    def make(with_review: bool = True):
        viewer = make_napari_viewer()
        review = dock_panel(viewer, model="tiny", device="cpu") if with_review else None
        training = TrainingPanel(viewer)
        viewer.window.add_dock_widget(training, name="Retraining", area="right")
        made.append((review, training))
        return viewer, review, training

    yield make
    for review, training in made:
        training.shutdown()
        qtbot.waitUntil(lambda t=training: not t.is_busy(), timeout=WAIT_MS)
        if review is not None:
            qtbot.waitUntil(lambda r=review: not r.is_busy(), timeout=WAIT_MS)
            review.shutdown()


def fill(training, **values) -> None:
    for key, value in {**TINY_FORM, **values}.items():
        training.form[key].value = value


def test_training_runs_in_a_worker_with_progress_plot_and_then_predicts(panels, qtbot, mni_dataset, notifications):
    from napari_aleatoric.gui.training_panel import PREDICTION_PREFIX
    from napari_aleatoric.training import TrainingFinished, load_trained_model

    viewer, review, training = panels()
    assert review.open_dataset(mni_dataset)
    qtbot.waitUntil(lambda: review.current is not None and not review.is_busy(), timeout=WAIT_MS)
    training.refresh()
    assert training.dataset().root == review.dataset.root  # found through the docked review panel
    fill(training)
    ticks = Ticks()
    assert training.start_training()
    assert training.is_training() and not training.start_button.isEnabled() and training.stop_button.isEnabled()
    qtbot.waitUntil(lambda: len(training.plot.losses) >= 1, timeout=WAIT_MS)
    ticks_at_first_step = ticks.count
    # the reviewer keeps working meanwhile: switching case loads in the review panel's own worker
    first = review.current.case_id
    review.next_case()
    qtbot.waitUntil(lambda: review.current.case_id != first and not review.is_busy(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not training.is_training(), timeout=WAIT_MS)
    ticks.timer.stop()
    assert not errors(notifications), notifications
    finished = training.last_event
    assert isinstance(finished, TrainingFinished)
    # the viewer stayed responsive: the timer kept firing while the worker trained
    assert ticks.count - ticks_at_first_step >= 5
    # progress and plot followed the events: every step's loss, every epoch's Dice per class
    assert training.progress.value() == training.progress.maximum() == len(training.plot.losses) >= 2
    assert training.plot.dice_epochs == [1, 2]
    assert set(training.plot.dice) == {"grey_matter", "white_matter"}
    assert all(len(v) == 2 for v in training.plot.dice.values()) and training.plot.redraws >= 4
    assert list(training.plot.loss_line.get_xdata()) == training.plot.loss_steps
    assert training.plot.loss_axes.get_xlim()[1] >= max(training.plot.loss_steps)  # the curve is in view
    assert "Finished" in training.status.text()
    assert training.selected_run() == finished.run_dir and training.predict_button.isEnabled()
    # Predict: the trained model's segmentation of the case shown in the review panel
    case = review.current
    assert training.predict_current()
    qtbot.waitUntil(lambda: not training.is_busy(), timeout=WAIT_MS)
    name = f"{PREDICTION_PREFIX}{finished.run_dir.name}"
    assert name in viewer.layers
    layer = viewer.layers[name]
    assert layer._type_string == "labels" and layer.data.shape == case.case.image.shape
    assert tuple(layer.scale) == tuple(viewer.layers["image"].scale) == tuple(case.spacing)
    expected = load_trained_model(finished.run_dir, device="cpu").predict(case.case.image)
    assert np.array_equal(layer.data, expected) and set(np.unique(layer.data)) <= {0, 1, 2}
    assert not errors(notifications), notifications


def test_the_panel_follows_the_dataset_opened_in_the_review_panel(panels, qtbot, mni_dataset):
    _, review, training = panels()
    assert training.dataset() is None and "No dataset" in training.dataset_label.text()
    assert not training.predict_button.isEnabled() and not training.unlabelled_button.isEnabled()
    assert review.open_dataset(mni_dataset, select=False)
    # at once: the panel follows the viewer's review session's events (it used to poll every 1.5 s)
    assert "MNIBrainSlices" in training.dataset_label.text()
    assert "from the review panel" in training.dataset_label.text() and "20 labelled" in training.dataset_label.text()
    assert training.fm_edit.currentText() == "tiny"  # unlabelled cases are scored with the review panel's model
    assert training.session is review.session


def test_a_retraining_panel_opened_first_follows_the_review_panel_opened_later(make_napari_viewer, qtbot,
                                                                               mni_dataset):
    from napari_aleatoric.gui.sample import dock_panel
    from napari_aleatoric.gui.training_panel import TrainingPanel

    viewer = make_napari_viewer()
    training = TrainingPanel(viewer)
    viewer.window.add_dock_widget(training, name="Retraining", area="right")
    review = dock_panel(viewer, model="tiny", device="cpu")
    try:
        assert training.session is review.session
        assert review.open_dataset(mni_dataset)
        assert "MNIBrainSlices" in training.dataset_label.text() and "not scored" in training.dataset_label.text()
        qtbot.waitUntil(lambda: review.current is not None and not review.is_busy(), timeout=WAIT_MS)
        # the case under review reaches the retraining panel through the session (Predict's target)
        name, image, scale, _ = training.current_image()
        assert name == review.current.case_id and image is review.current.case.image
        assert scale == tuple(review.current.spacing)
        # scores arriving in the session (here from a script) reach the panel too
        list(review.session.score())
        assert "scored: training can use the label issues" in training.dataset_label.text()
    finally:
        training.shutdown()
        review.shutdown()


def test_stop_ends_between_steps_and_keeps_a_loadable_best_checkpoint(panels, qtbot, mni_dataset, notifications):
    from napari_aleatoric.training import TrainingStopped, load_trained_model

    viewer, review, training = panels(with_review=False)
    assert training.set_dataset_folder(mni_dataset)  # no review panel: a folder chosen in the panel
    fill(training, epochs=200)
    assert training.start_training()
    qtbot.waitUntil(lambda: len(training.plot.dice_epochs) >= 1, timeout=WAIT_MS)  # best.pt written
    training.stop_button.click()
    assert not training.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not training.is_training(), timeout=WAIT_MS)
    stopped = training.last_event
    assert isinstance(stopped, TrainingStopped), stopped
    assert training.progress.value() < training.progress.maximum()
    assert "Stopped" in training.status.text() and "best.pt" in training.status.text()
    model = load_trained_model(stopped.run_dir, device="cpu")  # the best epoch so far, loadable
    assert model.epoch >= 1
    last = torch.load(stopped.run_dir / "last.pt", weights_only=True)
    assert (last["epoch"], last["step"]) == (stopped.epoch - 1, stopped.step)
    assert training.selected_run() == stopped.run_dir and training.start_button.isEnabled()
    assert not errors(notifications)


def test_a_run_stopped_before_its_first_epoch_ended_names_no_model(panels, qtbot, mni_dataset, monkeypatch,
                                                                    notifications):
    """The status used to name a best.pt that a run stopped in its first epoch never wrote."""
    from napari_aleatoric.gui import training_panel
    from napari_aleatoric.training import TrainingStopped

    real = training_panel.train

    def stopped_after_one_step(root, settings, should_stop=None, **kwargs):  # as if Stop was pressed then
        calls = {"n": 0}

        def stop() -> bool:
            calls["n"] += 1
            return calls["n"] > 1 or (should_stop is not None and should_stop())

        return real(root, settings, should_stop=stop, **kwargs)

    monkeypatch.setattr(training_panel, "train", stopped_after_one_step)
    viewer, review, training = panels(with_review=False)
    assert training.set_dataset_folder(mni_dataset)
    fill(training, epochs=3)
    assert training.start_training()
    qtbot.waitUntil(lambda: not training.is_training(), timeout=WAIT_MS)
    stopped = training.last_event
    assert isinstance(stopped, TrainingStopped) and (stopped.epoch, stopped.step) == (1, 1), stopped
    assert not (stopped.run_dir / "best.pt").exists() and stopped.model_path is None
    assert "Stopped" in training.status.text() and "no model yet" in training.status.text()
    assert "best.pt" not in training.status.text()
    assert training.selected_run() is None or training.selected_run() != stopped.run_dir  # nothing to predict with
    assert not errors(notifications)


def test_prediction_of_an_image_layer_keeps_its_scale(panels, qtbot, mni_dataset, notifications):
    from napari_aleatoric.data.dataset import load_case, open_dataset
    from napari_aleatoric.gui.training_panel import PREDICTION_PREFIX

    viewer, _, training = panels(with_review=False)
    assert training.set_dataset_folder(mni_dataset)
    fill(training, epochs=1)
    assert training.start_training()
    qtbot.waitUntil(lambda: not training.is_training(), timeout=WAIT_MS)
    ds = open_dataset(mni_dataset)
    image = load_case(ds, ds.cases[0]).image
    viewer.add_image(image, name="my scan", scale=(0.5, 0.8), translate=(3.0, -2.0))
    assert training.predict_current()
    qtbot.waitUntil(lambda: not training.is_busy(), timeout=WAIT_MS)
    layer = viewer.layers[f"{PREDICTION_PREFIX}{training.run_dir.name}"]
    assert layer.data.shape == image.shape
    assert tuple(layer.scale) == (0.5, 0.8) and tuple(layer.translate) == (3.0, -2.0)
    assert layer.metadata["case"] == "my scan"
    assert not errors(notifications)


@pytest.mark.parametrize("values, message", [
    ({"lr": 0.0}, "learning rate must be > 0"),
    ({"epochs": 0}, "epochs must be an integer ≥ 1"),
    ({"depth": 1}, "depth must be an integer from 2 to 6"),
])
def test_bad_settings_are_a_notification_not_an_exception(panels, qtbot, mni_dataset, notifications, values, message):
    _, _, training = panels(with_review=False)
    assert training.set_dataset_folder(mni_dataset)
    fill(training, **values)
    assert not training.start_training()
    assert not training.is_training() and training.start_button.isEnabled()
    assert any(message in text for text in errors(notifications)), notifications
    assert not (mni_dataset / ".aleatoric" / "models").exists()


def test_problems_found_by_the_core_during_start_are_notifications(panels, qtbot, mni_dataset, notifications):
    """Filtering needs scores.csv: the core refuses at its first step; the panel shows why and recovers."""
    _, _, training = panels(with_review=False)
    assert not training.start_training()  # no dataset yet
    assert any("Open a dataset" in text for level, text in notifications if level == "warning")
    assert training.set_dataset_folder(mni_dataset)
    fill(training, keep=0.9, label_issues="off")  # AUV filtering, but the dataset was never scored
    assert training.start_training()
    qtbot.waitUntil(lambda: not training.is_training(), timeout=WAIT_MS)
    assert any("Training failed" in t and "scores.csv" in t for t in errors(notifications)), notifications
    assert "scores.csv" in training.status.text() and training.start_button.isEnabled()
    assert not training.set_dataset_folder(mni_dataset / "missing")
    assert any("Cannot open the dataset" in t for t in errors(notifications))


def test_unlabelled_cases_are_segmented_scored_and_shown(panels, qtbot, mni_dataset, notifications):
    from napari_aleatoric.gui.training_panel import UNLABELLED_PREFIX

    (mni_dataset / "imagesTs").mkdir()
    for case in ("mni_000", "mni_001"):
        shutil.copyfile(mni_dataset / "imagesTr" / f"{case}_0000.png", mni_dataset / "imagesTs" / f"ts_{case}_0000.png")
    viewer, _, training = panels(with_review=False)
    assert training.set_dataset_folder(mni_dataset)
    fill(training, epochs=1)
    assert training.start_training()
    qtbot.waitUntil(lambda: not training.is_training(), timeout=WAIT_MS)
    training.fm_edit.setCurrentText("tiny")
    assert training.score_unlabelled()
    qtbot.waitUntil(lambda: not training.is_busy(), timeout=WAIT_MS)
    assert not errors(notifications), notifications
    assert training.unlabelled_table.rowCount() == 2
    assert sorted(training.unlabelled_table.item(r, 0).text() for r in range(2)) == ["ts_mni_000", "ts_mni_001"]
    assert (mni_dataset / ".aleatoric" / "unlabelled" / training.run_dir.name / "scores.csv").is_file()
    assert training.show_unlabelled_case(0)
    qtbot.waitUntil(lambda: not training.is_busy(), timeout=WAIT_MS)
    assert f"{UNLABELLED_PREFIX}image" in viewer.layers and f"{UNLABELLED_PREFIX}segmentation" in viewer.layers
    shown = viewer.layers[f"{UNLABELLED_PREFIX}segmentation"].data
    case_id = training.unlabelled_rows[0]["case_id"]
    from napari_aleatoric.data.medio import read_label

    stored, _ = read_label(mni_dataset / ".aleatoric" / "unlabelled" / training.run_dir.name / "labelsTs"
                           / f"{case_id}.png")
    assert np.array_equal(shown, stored)


def test_strategy_choice_sets_the_fields_and_the_fields_name_the_strategy(panels):
    _, _, training = panels(with_review=False)
    assert training.form["strategy"].value == "default"
    training.form["strategy"].value = "auv-filter+duo"
    assert (training.form["keep"].value, training.form["duo"].value, training.form["label_issues"].value) == \
        (0.9, True, "off")
    assert training.settings().validated().filtering and training.settings().duo
    training.form["duo"].value = False  # a field changed by hand: the combo names what the fields now are
    assert training.form["strategy"].value == "auv-filter"
    training.form["issue_keep"].value = 0.55
    assert training.form["strategy"].value == "custom"


def test_show_weights_previews_the_strategy_on_the_case_shown(panels, qtbot, mni_dataset, notifications):
    """Before Start: the summary line and the distrust layer of the review panel's case;
    an accepted case shows as full weight; a run then reuses the cached pass and records the same plan."""
    from napari_aleatoric.gui.training_panel import WEIGHTS_LAYER
    from napari_aleatoric.training import TrainingFinished

    from napari_aleatoric.pipelines.scoring import score_dataset

    list(score_dataset(mni_dataset, "tiny", device="cpu"))
    viewer, review, training = panels()
    assert review.open_dataset(mni_dataset)
    qtbot.waitUntil(lambda: review.current is not None and not review.is_busy(), timeout=WAIT_MS)
    training.refresh()
    fill(training, keep=1.0)
    training.form["strategy"].value = "issue-weight"
    assert training.preview_weights()
    qtbot.waitUntil(lambda: not training.is_busy(), timeout=WAIT_MS)
    assert not errors(notifications), notifications
    assert training.weight_plan is not None
    plan = training.weight_plan
    assert "down-weights" in training.weights_label.text()
    # the layer follows the case the review panel shows
    for case_id in sorted(plan.cases)[:2]:
        review.select_case(case_id)
        qtbot.waitUntil(lambda c=case_id: WEIGHTS_LAYER in viewer.layers and
                        viewer.layers[WEIGHTS_LAYER].metadata["case"] == c, timeout=WAIT_MS)
        layer = viewer.layers[WEIGHTS_LAYER]
        np.testing.assert_allclose(layer.data, 1.0 - plan.case_weights(case_id))
        assert layer.data.shape == review.current.case.image.shape
    viewer.screenshot(str(Path(mni_dataset).parent / "weights_preview.png"), canvas_only=False)
    # a case the reviewer accepted keeps full weight: no layer, the status says why
    trained = sorted(plan.cases)[0]
    review.store.set_status(trained, "accepted", "tester")
    assert training.preview_weights()
    qtbot.waitUntil(lambda: not training.is_busy(), timeout=WAIT_MS)
    assert training.weight_plan.cases[trained].reviewed
    assert not training.show_case_weights(trained) and "reviewed: full weight" in training.status.text()
    assert WEIGHTS_LAYER not in viewer.layers
    assert training.start_training()
    qtbot.waitUntil(lambda: not training.is_training(), timeout=WAIT_MS)
    assert isinstance(training.last_event, TrainingFinished), notifications
    assert "down-weights" in training.weights_label.text()
    assert len(training.plot.losses) == training.progress.maximum() and len(training.plot.dice_epochs) == 2


def test_the_manifest_offers_the_retraining_panel():
    import npe2

    import napari_aleatoric

    manifest = npe2.PluginManifest.from_file(Path(napari_aleatoric.__file__).parent / "napari.yaml")
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert commands["napari-aleatoric.training_panel"] == "napari_aleatoric.gui.training_panel:TrainingPanel"
    assert "Retraining panel" in [w.display_name for w in manifest.contributions.widgets]


def test_every_train_setting_is_a_form_row_with_its_default_choices_and_help(panels, tmp_path):
    """One definition of the settings: the form has a row per TrainSettings field, with the field's
    default, choices and help, like the CLI's options (the form once opened with 50 epochs, the CLI
    with 100); a value set in any row reaches TrainSettings."""
    import dataclasses

    from magicgui import widgets as mg
    from test_training_cli import _other_value

    from napari_aleatoric.cli import _train_settings, build_parser
    from napari_aleatoric.training.settings import STRATEGIES, TrainSettings, setting_specs

    _, _, training = panels(with_review=False)
    specs = setting_specs()
    assert [spec.name for spec in specs] == [f.name for f in dataclasses.fields(TrainSettings)]
    defaults = TrainSettings()
    for spec in specs:
        widget = training.form[spec.name]  # KeyError: a field without a row
        assert widget.tooltip == spec.help and widget.label == spec.label, spec.name
        if spec.choices:
            assert isinstance(widget, mg.ComboBox) and tuple(widget.choices) == spec.choices, spec.name
            assert widget.value == getattr(defaults, spec.name), spec.name
        elif spec.suggestions:
            assert tuple(widget.choices) == ("auto", *spec.suggestions) and widget.value == "auto", spec.name
        elif isinstance(widget, mg.LineEdit):
            assert widget.value == ("" if spec.default is None else str(spec.default)), spec.name
        else:
            assert widget.value == pytest.approx(getattr(defaults, spec.name)), spec.name
    cli, _ = _train_settings(build_parser().parse_args(["train", str(tmp_path)]))
    assert training.settings() == cli == defaults
    assert training.form["strategy"].value in STRATEGIES  # the defaults are a named strategy
    expected = {}
    for spec in specs:
        value = expected[spec.name] = _other_value(spec)
        if isinstance(training.form[spec.name], mg.LineEdit):
            value = ",".join(map(str, value)) if spec.kind == "sizes" else str(value)
        elif spec.suggestions and value not in spec.suggestions:
            value = expected[spec.name] = spec.suggestions[-1]
        training.form[spec.name].value = value
    assert training.settings() == TrainSettings(**expected)
    training.form["patch"].value = "64,wide"
    with pytest.raises(ValueError, match="patch: expected sizes like"):
        training.settings()


@pytest.mark.parametrize("first", ["review", "retraining"])
def test_both_panels_fit_a_1600x1000_window_side_by_side_with_every_button_visible(make_napari_viewer, qtbot,
                                                                                   first):
    """Opened one after the other (in either order), the retraining panel docks beside the review
    panel, not under it: the window stays 1000 px tall (it grew to 1837 px and pushed Start, the
    plot and Predict off the screen), every push button of both panels is on screen, and the image
    canvas keeps at least 40 % of the width."""
    from qtpy.QtCore import QPoint, QRect
    from qtpy.QtWidgets import QPushButton

    from napari_aleatoric.gui.sample import dock_panel
    from napari_aleatoric.gui.training_panel import TrainingPanel

    viewer = make_napari_viewer(show=True)
    panels = {}

    def open_panel(name):
        if name == "review":
            panels[name] = dock_panel(viewer, model="tiny", device="cpu")
        else:
            panels[name] = TrainingPanel(viewer)
            viewer.window.add_dock_widget(panels[name], name="Retraining", area="right")
        return panels[name]

    window = open_panel(first).window()  # the QMainWindow (Qt's public API)
    window.resize(1600, 1000)
    qtbot.waitExposed(window)
    open_panel("retraining" if first == "review" else "review")
    review, training = panels["review"], panels["retraining"]
    try:
        def box(panel) -> QRect:
            return QRect(panel.mapTo(window, QPoint(0, 0)), panel.size())

        def side_by_side() -> bool:  # the retraining panel on the right of the review panel
            return review.isVisible() and training.isVisible() and box(training).left() > box(review).right()

        qtbot.waitUntil(side_by_side, timeout=10_000)  # the docks are placed once the event loop runs
        qtbot.wait(100)
        assert (window.width(), window.height()) == (1600, 1000)
        assert box(review).height() > 800 and box(training).height() > 800 and side_by_side()
        for name, panel in panels.items():
            buttons = [b for b in panel.findChildren(QPushButton) if b.isVisibleTo(panel)]
            assert len(buttons) >= 5, name
            for button in buttons:
                where = QRect(button.mapTo(window, QPoint(0, 0)), button.size())
                assert button.isVisible() and window.rect().contains(where), (name, button.text(), where)
                assert button.visibleRegion().boundingRect().size() == button.size(), (name, button.text())
                assert button.width() >= button.minimumSizeHint().width(), (name, button.text())  # text not cut
        canvas = window.centralWidget()
        assert canvas.width() >= 0.4 * window.width(), canvas.width()
        # More settings unfolded: the panel scrolls, the window does not grow past the screen
        training.settings_form.show_more(True)
        qtbot.wait(100)
        assert window.height() == 1000 and training.form["beta"].visible
    finally:
        training.shutdown()
        review.shutdown()
