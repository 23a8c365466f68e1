"""The review panel in a real (virtual) display: scoring, the queue, case layers, correction, saving.

Runs under pytest-xvfb (do not set QT_QPA_PLATFORM). Datasets are small copies of the bundled
samples in tmp_path (never written in place); the model is ``tiny`` (random, fast).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import Ticks, errors

from napari_aleatoric.sample_data import dataset_path

pytestmark = pytest.mark.gui

MNI = "Dataset001_MNIBrainSlices"
CT = "Dataset002_SyntheticCT"
#: a small subset of the MNI slices, with three deliberately corrupted labels (003, 009, 010)
MNI_CASES = ("mni_000", "mni_003", "mni_006", "mni_009", "mni_010", "mni_014")
CT_CASES = ("ct_002",)
WAIT_MS = 60_000


def copy_subset(name: str, cases: tuple[str, ...], destination: Path) -> Path:
    """Copy a bundled dataset keeping only ``cases`` (never write into sample_data/)."""
    source = dataset_path(name)
    target = destination / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".aleatoric", "__pycache__", "labelsTr_clean"))
    for folder in ("imagesTr", "labelsTr"):
        for path in (target / folder).iterdir():
            if not any(path.name.startswith(f"{case}_") or path.name.startswith(f"{case}.") for case in cases):
                path.unlink()
    return target


def score_with_core(root: Path) -> None:
    from napari_aleatoric.pipelines.scoring import ScoringFinished, score_dataset

    events = list(score_dataset(root, "tiny", device="cpu"))
    assert isinstance(events[-1], ScoringFinished)


@pytest.fixture(scope="session")
def scored_templates(tmp_path_factory):
    """MNI and CT subsets scored once with the tiny model (copied per test)."""
    base = tmp_path_factory.mktemp("templates")
    mni = copy_subset(MNI, MNI_CASES, base)
    ct = copy_subset(CT, CT_CASES, base)
    score_with_core(mni)
    score_with_core(ct)
    return {"mni": mni, "ct": ct}


@pytest.fixture
def scored_mni(scored_templates, tmp_path) -> Path:
    return Path(shutil.copytree(scored_templates["mni"], tmp_path / MNI))


@pytest.fixture
def scored_ct(scored_templates, tmp_path) -> Path:
    return Path(shutil.copytree(scored_templates["ct"], tmp_path / CT))


@pytest.fixture
def fresh_mni(tmp_path) -> Path:
    return copy_subset(MNI, MNI_CASES, tmp_path)


def wait_idle(qtbot, panel) -> None:
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=WAIT_MS)


def wait_case(qtbot, panel, case_id: str | None = None) -> None:
    qtbot.waitUntil(lambda: panel.current is not None and (case_id is None or panel.current.case_id == case_id)
                    and not panel.is_busy(), timeout=WAIT_MS)


def open_case(qtbot, panel, root: Path, case_id: str) -> None:
    assert panel.open_dataset(root)
    panel.select_case(case_id)
    wait_case(qtbot, panel, case_id)


# ---------------------------------------------------------------------------------- scoring


def test_score_fills_queue_and_shows_case_layers(panel_factory, fresh_mni, qtbot, notifications):
    viewer, panel = panel_factory()
    assert panel.open_dataset(fresh_mni)
    wait_case(qtbot, panel)  # the first case is shown at once, without maps
    assert "image" in viewer.layers and "annotation" in viewer.layers
    assert not any(layer.name.startswith(("label issue: ", "uncertainty: ")) for layer in viewer.layers)
    assert panel.queue.table.rowCount() == len(MNI_CASES)

    assert panel.start_scoring()
    wait_idle(qtbot, panel)
    assert not errors(notifications)
    assert panel.progress.value() == panel.progress.maximum() == len(MNI_CASES)
    assert (fresh_mni / ".aleatoric" / "scores.csv").is_file()
    assert len(panel.table.rows) == len(MNI_CASES)
    # the queue is in rank order and the top case is shown (the reviewer had not chosen one)
    top = panel.table.rows[0]["case_id"]
    assert panel.queue.visible_case_ids()[0] == top
    wait_case(qtbot, panel, top)

    view = panel.current
    shape = view.case.image.shape
    assert len(shape) == 2
    names = [layer.name for layer in viewer.layers]
    for name in ("image", "label issue: grey_matter", "label issue: white_matter", "FM segmentation", "annotation",
                 "FM box prompt", "FM point prompts"):
        assert name in names
    assert names.index("image") < names.index("label issue: grey_matter") < names.index("annotation")
    for name in ("image", "label issue: grey_matter", "label issue: white_matter", "FM segmentation", "annotation"):
        layer = viewer.layers[name]
        assert layer.data.shape == shape, name
        assert tuple(layer.scale) == pytest.approx((1.0, 1.0)), name
    assert viewer.layers["annotation"]._type_string == "labels"
    assert viewer.layers["FM segmentation"]._type_string == "labels"
    worst = view.worst_class()
    assert viewer.layers[f"label issue: {worst}"].visible
    assert sum(viewer.layers[f"label issue: {n}"].visible for n in ("grey_matter", "white_matter")) == 1
    assert viewer.layers[f"label issue: {worst}"].colormap.name.startswith("inferno")
    assert tuple(viewer.layers[f"label issue: {worst}"].contrast_limits) == (0.0, 1.0)
    assert np.array_equal(viewer.layers["annotation"].data, view.case.label)
    features = viewer.layers["annotation"].features
    assert list(features["class"]) == ["background", "grey_matter", "white_matter"]
    assert top in panel.summary.text() and "AUV" in panel.summary.text()
    assert f"worst region {panel.table.rows[0]['worst_region_voxels']:.0f} px" in panel.summary.text()

    # switching case reuses the layers (same objects, new data)
    image_layer = viewer.layers["image"]
    other = panel.table.rows[1]["case_id"]
    panel.select_case(other)
    wait_case(qtbot, panel, other)
    assert viewer.layers["image"] is image_layer
    assert np.array_equal(viewer.layers["annotation"].data, panel.current.case.label)


def test_scoring_on_the_dask_scheduler_named_in_the_panel(panel_factory, fresh_mni, qtbot, notifications):
    import dask.config

    from napari_aleatoric.pipelines import distributed

    viewer, panel = panel_factory()
    assert panel.open_dataset(fresh_mni)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):  # nobody listens on port 9
        panel.scheduler_edit.setText("tcp://127.0.0.1:9")
        assert panel.start_scoring()
        wait_idle(qtbot, panel)
    assert any("tcp://127.0.0.1:9" in text for level, text in notifications if level == "error")
    assert not (fresh_mni / ".aleatoric" / "scores.csv").exists()
    notifications.clear()
    with distributed.local_client(2, torch_threads=1) as client:
        panel.scheduler_edit.setText(client.scheduler.address)
        assert panel.start_scoring()
        assert "Dask cluster" in panel.message.text()
        wait_idle(qtbot, panel)
    assert not errors(notifications)
    summary = json.loads((fresh_mni / ".aleatoric" / "scores.json").read_text())
    assert summary["settings"]["device"].startswith("Dask workers") and summary["scored"] == len(MNI_CASES)
    assert len(panel.table.rows) == len(MNI_CASES)
    panel.scheduler_edit.setText("")
    assert panel.session.scheduler is None  # an empty field scores here again


def test_viewer_stays_responsive_while_scoring(panel_factory, fresh_mni, qtbot, notifications):
    viewer, panel = panel_factory()
    assert panel.open_dataset(fresh_mni, select=False)
    latency = Ticks()
    assert panel.start_scoring()
    wait_idle(qtbot, panel)
    latency.timer.stop()
    assert len(panel.table.rows) == len(MNI_CASES)
    # the model runs in the worker thread: the GUI thread never waits for it
    assert latency.worst_ms < 1500, f"event loop blocked for {latency.worst_ms:.0f} ms during scoring"
    assert not errors(notifications)


def test_the_case_on_screen_gets_its_label_issue_maps_when_scoring_ends(panel_factory, fresh_mni, qtbot,
                                                                        notifications):
    """The reviewer's chosen case keeps showing while scoring runs: first without maps, then the
    model's uncertainty as soon as it is scored, and the label-issue maps once label quality ran."""
    viewer, panel = panel_factory()
    assert panel.open_dataset(fresh_mni)
    wait_case(qtbot, panel)
    chosen = MNI_CASES[-1]
    panel.select_case(chosen)
    wait_case(qtbot, panel, chosen)
    assert panel.start_scoring()
    wait_idle(qtbot, panel)
    wait_case(qtbot, panel, chosen)
    assert panel.current.heatmap_kind == "label issue"
    heatmaps = [layer.name for layer in viewer.layers if layer.name.startswith(("label issue: ", "uncertainty: "))]
    assert sorted(heatmaps) == ["label issue: grey_matter", "label issue: white_matter"]
    assert not errors(notifications)


def test_volume_case_opens_as_volume(panel_factory, scored_ct, qtbot, notifications):
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_ct)
    wait_case(qtbot, panel, "ct_002")
    assert not errors(notifications)
    shape = panel.current.case.image.shape
    assert shape == (40, 96, 96)
    # one case: too few for label quality, so the maps are the model's uncertainty
    for name in ("image", "annotation", "FM segmentation", "uncertainty: liver", "uncertainty: kidney",
                 "uncertainty: tumour"):
        assert viewer.layers[name].data.shape == shape, name
        assert tuple(viewer.layers[name].scale) == pytest.approx((6.0, 3.0, 3.0)), name
    assert viewer.dims.ndim == 3
    assert tuple(viewer.layers["image"].contrast_limits) == (-160.0, 240.0)
    assert viewer.layers["FM box prompt"].ndim == 3 and viewer.layers["FM point prompts"].ndim == 3
    # the slider sits on the slice with the most uncertainty of the worst class
    assert panel.current_slice() == panel.current.focus_slice()


def test_switching_case_updates_the_same_layers_with_the_new_cases_data(panel_factory, scored_mni, qtbot,
                                                                        notifications):
    import json

    from test_gui_case_view import reference_segmentation

    from napari_aleatoric.data.dataset import load_case, open_dataset
    from napari_aleatoric.gui.case_view import display_contrast

    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    first, second = panel.table.rows[0]["case_id"], panel.table.rows[-1]["case_id"]
    wait_case(qtbot, panel, first)
    names = list(panel.dataset.foreground)
    shown = ["image", "annotation", "FM segmentation"] + [f"label issue: {n}" for n in names]
    layers = {name: viewer.layers[name] for name in shown}

    panel.select_case(second)
    wait_case(qtbot, panel, second)
    assert not errors(notifications)
    for name in shown:
        assert viewer.layers[name] is layers[name], f"{name} was re-created"
        assert viewer.layers[name].metadata["case_id"] == second, name
    dataset = open_dataset(scored_mni)
    case = load_case(dataset, dataset.case(second))
    with np.load(scored_mni / ".aleatoric" / "cache" / "maps" / f"{second}.npz") as npz:
        cached = {key: npz[key] for key in ("heatmaps", "probabilities")}
        assert json.loads(str(npz["__meta__"]))["names"] == names
    with np.load(scored_mni / ".aleatoric" / "cache" / "quality" / f"{second}.npz") as npz:
        cached["issue_maps"] = npz["issue_maps"]  # the learned label-issue maps are the heatmaps
    assert np.array_equal(viewer.layers["image"].data, case.image)
    contrast = display_contrast(case.image, dataset.modality)
    assert tuple(viewer.layers["image"].contrast_limits) == pytest.approx(contrast)
    assert np.array_equal(viewer.layers["annotation"].data, case.label)
    values = [panel.dataset.foreground[n] for n in names]
    assert np.array_equal(viewer.layers["FM segmentation"].data, reference_segmentation(cached["probabilities"][:, 0],
                                                                                         values))
    worst = panel.current.worst_class()
    for c, name in enumerate(names):
        layer = viewer.layers[f"label issue: {name}"]
        assert np.array_equal(np.asarray(layer.data, dtype=np.float32), cached["issue_maps"][c, 0].astype(np.float32))
        assert layer.visible == (name == worst), name
    assert second in panel.summary.text()


def test_cancel_stops_within_one_case_and_cache_is_reused(panel_factory, fresh_mni, qtbot, notifications):
    viewer, panel = panel_factory()
    assert panel.open_dataset(fresh_mni, select=False)
    assert panel.start_scoring()
    scored: list[str] = []

    def on_event(event):
        from napari_aleatoric.pipelines.scoring import CaseScored

        if isinstance(event, CaseScored):
            scored.append(event.result.case_id)
            if len(scored) == 1:
                panel.cancel_scoring()

    panel._score_worker.yielded.connect(on_event)
    wait_idle(qtbot, panel)
    assert 1 <= len(scored) <= 2, scored
    maps = sorted(p.stem for p in (fresh_mni / ".aleatoric" / "cache" / "maps").glob("*.npz"))
    assert maps == sorted(scored)
    assert not (fresh_mni / ".aleatoric" / "scores.csv").exists()
    assert panel.score_button.isEnabled() and not panel.cancel_button.isEnabled()
    # the partial queue is shown
    assert len(panel.table.rows) == len(scored)

    assert panel.start_scoring()
    wait_idle(qtbot, panel)
    assert len(panel._results) == len(MNI_CASES)
    for case_id, result in panel._results.items():
        assert result.cached == (case_id in scored), case_id
    assert not errors(notifications)


# ---------------------------------------------------------------------------------- review-only


def test_review_only_mode_builds_no_model(panel_factory, scored_mni, qtbot, monkeypatch, notifications):
    from napari_aleatoric.models import lazy, registry

    def forbidden(*args, **kwargs):
        raise AssertionError("no model may be built in review-only mode")

    monkeypatch.setattr(registry, "load_model", forbidden)
    monkeypatch.setattr(lazy, "load_model", forbidden)
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    top = panel.table.rows[0]["case_id"]
    wait_case(qtbot, panel, top)
    assert "Review-only" in panel.message.text()
    assert panel.current.heatmaps is not None and not panel.current.maps_stale
    assert any(layer.name.startswith("label issue: ") for layer in viewer.layers)
    panel.next_case()
    wait_case(qtbot, panel, panel.table.rows[1]["case_id"])
    assert not errors(notifications)


def test_refresh_priorities_relearns_from_a_fixed_annotation_and_reranks_the_queue(
        panel_factory, scored_mni, qtbot, notifications):
    """The reviewer fixes the worst corrupted case on disk (as a save would) and presses Refresh
    priorities: the queue is re-ranked in a worker, the fixed case drops, the viewer stays usable."""
    import json

    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    wait_case(qtbot, panel)
    corrupted = {c["case"] for c in json.loads((scored_mni / "corruptions.json").read_text())["corruptions"]}
    fixed = min(corrupted & set(MNI_CASES), key=lambda c: panel.table.row(c)["rank"])
    before = panel.table.row(fixed)
    clean_label = dataset_path(MNI) / "labelsTr_clean" / f"{fixed}.png"
    shutil.copyfile(clean_label, scored_mni / "labelsTr" / f"{fixed}.png")
    assert panel.refresh_button.isEnabled()
    assert panel.refresh_priorities()
    assert not panel.score_button.isEnabled()  # one background job at a time
    qtbot.waitUntil(lambda: panel._score_worker is None and "refreshed" in panel.message.text(), timeout=WAIT_MS)
    after = panel.table.row(fixed)
    assert after["label_issue"] < before["label_issue"] and after["rank"] >= before["rank"]
    assert after["auv"] == pytest.approx(before["auv"], abs=1e-6)  # the paper's column is not re-learned
    assert panel.queue.visible_case_ids() == [r["case_id"] for r in panel.table.rows]
    assert panel.refresh_button.isEnabled() and not errors(notifications)


# ---------------------------------------------------------------------------------- correction


def test_assisted_correction_changes_only_the_chosen_class(panel_factory, scored_mni, qtbot, notifications):
    viewer, panel = panel_factory()
    open_case(qtbot, panel, scored_mni, "mni_003")
    annotation = viewer.layers["annotation"]
    before = np.array(annotation.data, copy=True)
    panel.class_combo.setCurrentIndex(panel.class_combo.findData(2))  # white_matter
    assert annotation.selected_label == 2
    box = np.array([[60, 40], [160, 150]])  # (row, col) corners
    viewer.layers["FM box prompt"].add_rectangles(box)
    viewer.layers["FM point prompts"].add(np.array([[110, 95]]))
    panel.preview()
    wait_idle(qtbot, panel)
    assert not errors(notifications)
    preview = viewer.layers["FM preview"]
    assert preview.data.shape == before.shape and set(np.unique(preview.data)) <= {0, 2}

    changed = panel.apply_preview()
    after = np.asarray(annotation.data)
    diff = after != before
    assert changed == int(diff.sum())
    assert np.all(before[diff] == 0) and np.all(after[diff] == 2)  # only background became white matter
    rows, cols = np.nonzero(diff)
    if changed:
        assert rows.min() >= 60 and rows.max() <= 160 and cols.min() >= 40 and cols.max() <= 150
    assert np.array_equal(after == 1, before == 1)  # grey matter untouched
    assert "FM preview" not in viewer.layers
    assert panel.is_dirty() == bool(changed)

    annotation.undo()  # Ctrl-Z
    assert np.array_equal(annotation.data, before)


def test_overwrite_option_replaces_other_classes(panel_factory, scored_mni, qtbot, monkeypatch, notifications):
    from napari_aleatoric.gui import assist

    viewer, panel = panel_factory()
    open_case(qtbot, panel, scored_mni, "mni_003")
    annotation = viewer.layers["annotation"]
    before = np.array(annotation.data, copy=True)
    # a deterministic "model": everything inside the box
    monkeypatch.setattr(assist, "predict_slice", lambda model, slice01, prompts, cache=None:
                        assist.box_mask(slice01.shape, prompts.box))
    monkeypatch.setattr(panel, "_model", lambda spec, device: None)
    panel.class_combo.setCurrentIndex(panel.class_combo.findData(2))
    viewer.layers["FM box prompt"].add_rectangles(np.array([[100, 80], [130, 120]]))
    panel.preview()
    wait_idle(qtbot, panel)
    # without overwrite, the pixels of other classes are kept and the message says why
    panel.overwrite_check.setChecked(False)
    others = int(((before[100:131, 80:121] != 0) & (before[100:131, 80:121] != 2)).sum())
    assert others > 0
    panel.apply_preview()
    assert f"{others} pixels of the preview are drawn as other classes and were kept" in panel.message.text()
    annotation.undo()
    assert np.array_equal(np.asarray(annotation.data), before)
    panel.preview()
    wait_idle(qtbot, panel)
    panel.overwrite_check.setChecked(True)
    panel.apply_preview()
    after = np.asarray(annotation.data)
    assert np.all(after[100:131, 80:121] == 2)
    outside = np.ones_like(after, dtype=bool)
    outside[100:131, 80:121] = False
    assert np.array_equal(after[outside], before[outside])
    assert not errors(notifications)


def test_save_revert_and_status(panel_factory, scored_mni, qtbot, notifications):
    from napari_aleatoric.review.store import ReviewStore

    viewer, panel = panel_factory()
    case_id = "mni_009"
    open_case(qtbot, panel, scored_mni, case_id)
    label_path = scored_mni / "labelsTr" / f"{case_id}.png"
    original_bytes = label_path.read_bytes()
    annotation = viewer.layers["annotation"]
    annotation.data_setitem((np.arange(40, 60), np.arange(40, 60)), 1)
    assert panel.is_dirty()

    assert panel.save_case()
    wait_idle(qtbot, panel)  # save, then the background re-score
    assert not errors(notifications)
    assert label_path.read_bytes() != original_bytes
    kept = scored_mni / ".aleatoric" / "originals" / "labelsTr" / f"{case_id}.png"
    assert kept.read_bytes() == original_bytes
    assert not panel.is_dirty()
    with ReviewStore.for_dataset(scored_mni) as store:
        revisions = store.revisions(case_id)
        assert len(revisions) == 1 and revisions[0].model == "tiny@seed0"
        assert revisions[0].auv_after is not None  # re-scored after saving
        assert store.status(case_id) == "corrected"
    assert panel.history.count() == 1
    assert not panel.current.maps_stale  # the maps were recomputed for the corrected annotation
    assert np.array_equal(viewer.layers["annotation"].data, panel.current.case.label)
    row = panel.queue.row_of(case_id)
    assert panel.queue.table.item(row, panel.queue.columns().index("status")).text() == "corrected"

    panel.rescore_check.setChecked(False)
    panel.revert_case("original")
    wait_idle(qtbot, panel)
    assert label_path.read_bytes() == original_bytes
    assert np.array_equal(viewer.layers["annotation"].data, panel.current.case.label)
    assert not panel.is_dirty()
    assert panel.history.count() == 2

    panel.accept_case()
    with ReviewStore.for_dataset(scored_mni) as store:
        assert store.status(case_id) == "accepted"
    panel.queue.status_filter.setCurrentText("accepted")
    assert panel.queue.visible_case_ids() == [case_id]
    panel.queue.status_filter.setCurrentText("all")
    assert not errors(notifications)


def test_unsaved_edits_ask_before_switching(panel_factory, scored_mni, qtbot):
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    first = panel.table.rows[0]["case_id"]
    wait_case(qtbot, panel, first)
    viewer.layers["annotation"].data_setitem((np.array([5]), np.array([5])), 2)
    answers = ["cancel", "discard"]
    asked = []
    panel.confirm_unsaved = lambda case_id: asked.append(case_id) or answers.pop(0)
    panel.next_case()
    assert asked == [first] and panel.current.case_id == first  # cancelled: still here
    from napari_aleatoric.gui.queue import CASE_ROLE

    assert panel.queue.table.selectedItems()[0].data(CASE_ROLE) == first  # the selection went back
    panel.next_case()
    second = panel.table.rows[1]["case_id"]
    wait_case(qtbot, panel, second)
    assert not panel.is_dirty()


def test_shortcuts_are_bound(panel_factory, scored_mni, qtbot):
    from napari.utils.key_bindings import KeyBinding

    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    first = panel.table.rows[0]["case_id"]
    wait_case(qtbot, panel, first)
    keymap = viewer.keymap
    for key in ("PageDown", "PageUp", "Shift-A", "Shift-X", "Shift-S"):
        assert KeyBinding.from_str(key) in keymap, key
    ids = [row["case_id"] for row in panel.table.rows]
    keymap[KeyBinding.from_str("Shift-X")](viewer)
    assert panel.store.status(first) == "excluded"
    wait_case(qtbot, panel, ids[1])  # a decision goes on to the next unreviewed case
    keymap[KeyBinding.from_str("PageDown")](viewer)
    wait_case(qtbot, panel, ids[2])
    keymap[KeyBinding.from_str("PageUp")](viewer)
    wait_case(qtbot, panel, ids[1])
    keymap[KeyBinding.from_str("PageUp")](viewer)
    wait_case(qtbot, panel, first)  # Previous / Next visit reviewed cases too
    keymap[KeyBinding.from_str("Shift-U")](viewer)
    assert panel.store.status(first) == "unreviewed" and panel.current.case_id == first
    keymap[KeyBinding.from_str("Shift-A")](viewer)
    assert panel.store.status(first) == "accepted"
    wait_case(qtbot, panel, ids[1])


# ---------------------------------------------------------------------------------- queue and review (issue 15)


def test_accept_and_exclude_go_on_to_the_next_unreviewed_case(panel_factory, scored_mni, qtbot, notifications):
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    ids = [row["case_id"] for row in panel.table.rows]
    wait_case(qtbot, panel, ids[0])
    panel.session.accept(ids[2])  # reviewed earlier (another panel, a script): skipped
    panel.accept_button.click()
    wait_case(qtbot, panel, ids[1])
    assert panel.store.status(ids[0]) == "accepted"
    panel.exclude_button.click()
    wait_case(qtbot, panel, ids[3])
    assert panel.store.status(ids[1]) == "excluded"
    # unsaved edits: the decision is refused, nothing moves
    annotation = viewer.layers["annotation"]
    before = np.array(annotation.data, copy=True)
    annotation.data_setitem((np.array([3]), np.array([3])), 1 if before[3, 3] != 1 else 2)
    panel.accept_button.click()
    assert panel.store.status(ids[3]) == "unreviewed" and panel.current.case_id == ids[3] and not panel.is_busy()
    assert any("unsaved edits" in text for level, text in notifications if level == "warning")
    annotation.undo()
    # the queue as shown: sorted by another column and filtered to the unreviewed cases
    from qtpy.QtCore import Qt

    queue = panel.queue
    queue.status_filter.setCurrentText("unreviewed")
    queue.table.sortItems(queue.columns().index("case"), Qt.SortOrder.AscendingOrder)
    shown = queue.visible_case_ids()
    assert shown == sorted(set(ids) - set(ids[:3]))
    panel.select_case(shown[0])
    wait_case(qtbot, panel, shown[0])
    panel.accept_case()  # the accepted case leaves the filtered queue; the next one below it is shown
    wait_case(qtbot, panel, shown[1])
    assert queue.visible_case_ids() == shown[1:]
    # the last unreviewed case: stay, and say so
    panel.select_case(shown[-1])
    wait_case(qtbot, panel, shown[-1])
    notifications.clear()
    panel.exclude_case()
    assert panel.store.status(shown[-1]) == "excluded" and panel.current.case_id == shown[-1]
    assert not panel.is_busy()
    assert "no unreviewed case below it" in panel.message.text() and "1 unreviewed above it" in panel.message.text()
    assert any("no unreviewed case below it" in text for level, text in notifications if level == "info")
    assert not errors(notifications)


def test_mark_unreviewed_takes_a_decision_back_and_is_recorded(panel_factory, scored_mni, qtbot, notifications):
    import sqlite3

    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    first = panel.table.rows[0]["case_id"]
    wait_case(qtbot, panel, first)
    assert not panel.reset_button.isEnabled()  # nothing to take back
    panel.exclude_case()
    wait_case(qtbot, panel, panel.table.rows[1]["case_id"])
    panel.previous_case()
    wait_case(qtbot, panel, first)
    assert panel.reset_button.isEnabled() and "status <b>excluded</b>" in panel.summary.text()
    panel.reset_button.click()
    assert panel.current.case_id == first and not panel.is_busy()  # stays on the case
    assert panel.store.status(first) == "unreviewed" and "status <b>unreviewed</b>" in panel.summary.text()
    assert not panel.reset_button.isEnabled()
    row = panel.queue.row_of(first)
    assert panel.queue.table.item(row, panel.queue.columns().index("status")).text() == "unreviewed"
    with sqlite3.connect(scored_mni / ".aleatoric" / "review.sqlite") as db:
        status, who = db.execute("SELECT status, updated_by FROM cases WHERE case_id = ?", (first,)).fetchone()
    assert (status, who) == ("unreviewed", panel.session.user)
    assert not errors(notifications)


def test_page_keys_in_the_queue_move_one_case(panel_factory, scored_mni, qtbot, notifications):
    """Qt's table jumps a page on PageDown; the documented next / previous case keys move one case."""
    from qtpy.QtCore import Qt

    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    ids = panel.queue.visible_case_ids()
    wait_case(qtbot, panel, ids[0])
    panel.queue.table.setFocus()
    qtbot.keyClick(panel.queue.table, Qt.Key.Key_PageDown)
    wait_case(qtbot, panel, ids[1])
    qtbot.keyClick(panel.queue.table, Qt.Key.Key_PageDown)
    wait_case(qtbot, panel, ids[2])
    qtbot.keyClick(panel.queue.table, Qt.Key.Key_PageUp)
    wait_case(qtbot, panel, ids[1])
    assert panel.queue.selected_case == ids[1]
    qtbot.keyClick(panel.queue.table, Qt.Key.Key_Down)  # the arrow keys still move one row
    wait_case(qtbot, panel, ids[2])
    assert not errors(notifications)


def test_refresh_priorities_gives_the_case_on_screen_current_maps(panel_factory, scored_mni, qtbot, notifications):
    viewer, panel = panel_factory()
    panel.rescore_check.setChecked(False)
    case_id = "mni_009"
    open_case(qtbot, panel, scored_mni, case_id)
    annotation = viewer.layers["annotation"]
    annotation.data_setitem((np.arange(40, 60), np.arange(40, 60)), 1)
    assert panel.save_case()
    wait_idle(qtbot, panel)
    assert panel.current.maps_stale and "Maps are out of date" in panel.summary.text()
    quality = scored_mni / ".aleatoric" / "cache" / "quality" / f"{case_id}.npz"
    with np.load(quality) as npz:
        before = npz["issue_maps"]  # learned from the annotation before the correction
    assert panel.refresh_priorities()
    qtbot.waitUntil(lambda: "refreshed" in panel.message.text(), timeout=WAIT_MS)
    wait_case(qtbot, panel, case_id)
    assert panel.current.heatmap_kind == "label issue" and not panel.current.maps_stale
    assert "Maps are out of date" not in panel.summary.text()
    assert panel.current.fm_stale and "FM segmentation and AUV are from before" in panel.summary.text()
    for name in panel.dataset.foreground:
        assert viewer.layers[f"label issue: {name}"].metadata["stale"] is False, name
    with np.load(quality) as npz:
        fresh = npz["issue_maps"]  # re-learned from the saved correction
    assert not np.array_equal(fresh, before)
    for c, name in enumerate(panel.dataset.foreground):
        shown = np.asarray(viewer.layers[f"label issue: {name}"].data, dtype=np.float32)
        assert np.array_equal(shown, fresh[c, 0].astype(np.float32)), name
    assert not errors(notifications)


def test_unsaved_edits_follow_brush_strokes_and_undo(panel_factory, scored_mni, qtbot, notifications):
    viewer, panel = panel_factory()
    open_case(qtbot, panel, scored_mni, "mni_003")
    annotation = viewer.layers["annotation"]
    assert "unsaved edits" not in panel.summary.text() and "*" not in viewer.title
    value = 2 if np.asarray(annotation.data)[100, 100] != 2 else 1
    annotation.brush_size = 5
    annotation.paint((100, 100), value)  # a brush stroke through the layer's API
    qtbot.waitUntil(lambda: "unsaved edits" in panel.summary.text(), timeout=5_000)
    assert "mni_003 *" in viewer.title
    annotation.undo()  # back to the saved annotation
    qtbot.waitUntil(lambda: "unsaved edits" not in panel.summary.text(), timeout=5_000)
    assert not panel.is_dirty() and "*" not in viewer.title
    annotation.redo()
    qtbot.waitUntil(lambda: "unsaved edits" in panel.summary.text(), timeout=5_000)
    annotation.fill((10, 10), value)  # the background around the brain: another edit
    assert panel.save_case()
    wait_idle(qtbot, panel)
    qtbot.waitUntil(lambda: "unsaved edits" not in panel.summary.text(), timeout=5_000)  # saved
    annotation.undo()  # undoing the fill: differs from what was saved
    qtbot.waitUntil(lambda: "unsaved edits" in panel.summary.text(), timeout=5_000)
    assert not errors(notifications)


def test_a_case_that_cannot_be_opened_leaves_no_other_cases_layers(panel_factory, scored_mni, tmp_path, qtbot,
                                                                   notifications):
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    wait_case(qtbot, panel, panel.table.rows[0]["case_id"])
    previous = next(row["case_id"] for row in panel.table.rows if row["case_id"] != "mni_000")  # another name
    panel.select_case(previous)
    wait_case(qtbot, panel, previous)
    assert previous in viewer.title and "image" in viewer.layers
    other = copy_subset(MNI, ("mni_000", "mni_003", "mni_006"), tmp_path / "other")  # not scored: mni_000 first
    (other / "labelsTr" / "mni_000.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert panel.open_dataset(other)
    wait_idle(qtbot, panel)
    assert any("mni_000.png" in text for text in errors(notifications)), notifications
    names = [layer.name for layer in viewer.layers]
    assert not [n for n in names if n in ("image", "annotation", "FM segmentation", "FM box prompt",
                                         "FM point prompts") or n.startswith(("label issue: ", "uncertainty: "))]
    assert panel.current is None and panel.session.current is None
    assert "mni_000" in viewer.title and "cannot be opened" in viewer.title and previous not in viewer.title
    assert not panel.accept_button.isEnabled() and not panel.save_button.isEnabled()
    assert panel.revert_original_button.isEnabled()  # what can still be done for it
    # the next case opens as usual; a case of the same dataset that cannot be opened clears it too
    panel.select_case("mni_003")
    wait_case(qtbot, panel, "mni_003")
    assert viewer.layers["image"].metadata["case_id"] == "mni_003" and "mni_003" in viewer.title
    (other / "labelsTr" / "mni_006.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    panel.select_case("mni_006")
    wait_idle(qtbot, panel)
    assert "image" not in viewer.layers and "annotation" not in viewer.layers and panel.current is None


def test_the_viewer_title_names_the_case_shown(panel_factory, scored_mni, qtbot, notifications):
    """Layer names stay the same from case to case (they are looked up by name); the title and the
    layers' metadata say which case they show."""
    viewer, panel = panel_factory()
    original = viewer.title
    assert panel.open_dataset(scored_mni)
    ids = [row["case_id"] for row in panel.table.rows]
    wait_case(qtbot, panel, ids[0])
    assert viewer.title.startswith(f"{ids[0]} (unreviewed)") and scored_mni.name in viewer.title
    panel.next_case()
    wait_case(qtbot, panel, ids[1])
    assert viewer.title.startswith(f"{ids[1]} (unreviewed)") and ids[0] not in viewer.title
    for name in ("image", "annotation", "FM segmentation", f"label issue: {panel.current.worst_class()}"):
        assert viewer.layers[name].metadata["case_id"] == ids[1], name
    panel.exclude_case()
    wait_case(qtbot, panel, ids[2])
    panel.previous_case()
    wait_case(qtbot, panel, ids[1])
    assert viewer.title.startswith(f"{ids[1]} (excluded)")
    panel.shutdown()
    assert viewer.title == original  # the panel gives the title back


def test_filters(panel_factory, scored_mni, qtbot):
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    wait_case(qtbot, panel)
    queue = panel.queue
    flagged = [r["case_id"] for r in panel.table.rows if r["flagged"]]
    queue.flagged_only.setChecked(True)
    assert queue.visible_case_ids() == flagged
    queue.flagged_only.setChecked(False)
    queue.class_filter.setCurrentText("grey_matter")
    assert len(queue.visible_case_ids()) == len(MNI_CASES)  # every slice has grey matter
    queue.class_filter.setCurrentText("all")
    # flagged rows are highlighted
    if flagged:
        row = queue.row_of(flagged[0])
        assert queue.table.item(row, 0).background().color().alpha() > 0
    # sorting by label issue descending puts the highest label issue on top (rank 1 may be a flagged
    # case with a lower one); by AUV, the hardest case
    from qtpy.QtCore import Qt

    queue.table.sortItems(queue.columns().index("label\nissue"), Qt.SortOrder.DescendingOrder)
    assert queue.visible_case_ids()[0] == max(panel.table.rows, key=lambda r: r["label_issue"])["case_id"]
    queue.table.sortItems(queue.columns().index("AUV"), Qt.SortOrder.DescendingOrder)
    assert queue.visible_case_ids()[0] == max(panel.table.rows, key=lambda r: r["auv"])["case_id"]


def test_rank_by_reorders_the_queue_and_is_stored(panel_factory, scored_mni, tmp_path, qtbot, notifications):
    viewer, panel = panel_factory()
    assert panel.open_dataset(copy_subset(MNI, MNI_CASES, tmp_path / "fresh"))
    assert not panel.queue.rank_by.isEnabled()  # nothing to rank before scoring
    assert panel.open_dataset(scored_mni)
    wait_case(qtbot, panel)
    queue = panel.queue
    assert queue.rank_by.isEnabled() and queue.rank_by.currentText() == "issue rank"
    queue.rank_by.textActivated.emit("AUV")  # as a user's choice in the combo box
    by_auv = sorted(panel.table.rows, key=lambda r: -r["auv"])
    assert [r["case_id"] for r in panel.table.rows] == [r["case_id"] for r in by_auv]
    assert queue.visible_case_ids() == [r["case_id"] for r in by_auv]  # the table shows the new ranks
    assert json.loads((scored_mni / ".aleatoric" / "scores.json").read_text())["settings"]["rank_by"] == "auv"
    assert panel.open_dataset(scored_mni) and queue.rank_by.currentText() == "AUV"  # kept on reopening
    assert not [text for level, text in notifications if level == "error"]


def test_export_maps_writes_every_scored_case_in_a_worker(panel_factory, scored_mni, tmp_path, qtbot, notifications):
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    assert not panel.export_maps(scored_mni / "imagesTr" / "maps")  # never inside the dataset's images
    assert any("Cannot export" in text for level, text in notifications if level == "error")
    assert not (scored_mni / "imagesTr" / "maps").exists()
    assert panel.export_maps(tmp_path / "maps")
    wait_idle(qtbot, panel)
    for case_id in MNI_CASES:
        assert (tmp_path / "maps" / f"{case_id}_fm_seg.png").is_file(), case_id
        assert (tmp_path / "maps" / f"{case_id}_grey_matter_issue.png").is_file(), case_id
    assert f"for {len(MNI_CASES)} cases written" in panel.message.text()
    assert panel.export_button.isEnabled()


# ---------------------------------------------------------------------------------- bad input


def test_bad_dataset_and_corrupt_case_notify(panel_factory, scored_mni, tmp_path, qtbot, notifications):
    viewer, panel = panel_factory()
    empty = tmp_path / "not_a_dataset"
    empty.mkdir()
    assert not panel.open_dataset(empty)
    assert any("dataset.json" in text for text in errors(notifications)), notifications
    assert panel.dataset is None

    (scored_mni / "labelsTr" / "mni_006.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert panel.open_dataset(scored_mni)
    wait_idle(qtbot, panel)
    notifications.clear()
    panel.select_case("mni_006")
    wait_idle(qtbot, panel)
    assert any("mni_006.png" in text for text in errors(notifications)), notifications
    # the viewer and the panel stay usable
    panel.select_case("mni_000")
    wait_case(qtbot, panel, "mni_000")
    viewer.add_points(np.zeros((1, 2)))
    assert panel.current.case_id == "mni_000"


def test_bad_device_and_model_notify(panel_factory, scored_mni, qtbot, notifications):
    import torch

    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    wait_case(qtbot, panel)
    if not torch.cuda.is_available():
        panel.device_combo.setCurrentText("cuda")
        assert not panel.start_scoring()
        assert any("cuda" in text.lower() for text in errors(notifications))
        panel.device_combo.setCurrentText("cpu")
    notifications.clear()
    panel.model_edit.setText("sam-vit-b:/nonexistent/sam_vit_b.pth")
    viewer.layers["FM box prompt"].add_rectangles(np.array([[10, 10], [50, 50]]))
    panel.preview()
    wait_idle(qtbot, panel)
    assert any("sam_vit_b.pth" in text or "checkpoint" in text for text in errors(notifications)), notifications
    panel.model_edit.setText("tiny")
    panel.preview()
    wait_idle(qtbot, panel)
    assert "FM preview" in viewer.layers


def test_rescore_after_saving_keeps_the_settings_the_dataset_was_scored_with(panel_factory, fresh_mni, qtbot,
                                                                              notifications):
    """Before the review session, the panel re-scored with default options: a dataset scored with
    ``--input masknorm`` became ``raw`` and its scores.json was overwritten."""
    import json

    from napari_aleatoric.pipelines.scoring import ScoringFinished, score_dataset
    from napari_aleatoric.review.store import ReviewStore

    events = list(score_dataset(fresh_mni, "tiny", device="cpu", input_mode="masknorm", energy="sigma"))
    assert isinstance(events[-1], ScoringFinished)
    summary = fresh_mni / ".aleatoric" / "scores.json"
    viewer, panel = panel_factory()
    case_id = "mni_009"
    open_case(qtbot, panel, fresh_mni, case_id)
    issue_before = panel.current.row["label_issue"]
    viewer.layers["annotation"].data_setitem((np.arange(40, 60), np.arange(40, 60)), 1)
    assert panel.save_case()
    wait_idle(qtbot, panel)  # save, then the background re-score
    assert not errors(notifications), notifications
    settings = json.loads(summary.read_text())["settings"]
    assert (settings["input_mode"], settings["energy"]) == ("masknorm", "sigma")
    with ReviewStore.for_dataset(fresh_mni) as store:
        [revision] = store.revisions(case_id)
    assert revision.issue_before == pytest.approx(issue_before)
    assert revision.issue_after == pytest.approx(panel.table.row(case_id)["label_issue"])
    assert "label issue" in panel.history.item(0).text()


def test_the_review_app_window_fills_the_screen(make_napari_viewer):
    from qtpy.QtWidgets import QApplication

    from napari_aleatoric.gui.launch import fill_screen

    viewer = make_napari_viewer(show=True)
    fill_screen(viewer)
    area = QApplication.primaryScreen().availableGeometry()
    _left, _top, width, height = viewer.window.geometry()
    assert (width, height) == (area.width(), area.height())


def test_an_unscored_dataset_opened_after_a_scored_one_lists_its_cases_in_its_own_order(
        panel_factory, scored_mni, tmp_path, qtbot, notifications):
    viewer, panel = panel_factory()
    assert panel.open_dataset(scored_mni)
    wait_case(qtbot, panel)
    ranked = panel.queue.visible_case_ids()
    fresh = copy_subset(MNI, MNI_CASES, tmp_path / "fresh")  # the same case ids, not scored
    assert panel.open_dataset(fresh)
    wait_idle(qtbot, panel)
    in_order = [ref.case_id for ref in panel.dataset.cases]
    assert ranked != in_order  # the scored order differs, so the test can tell
    assert panel.queue.visible_case_ids() == in_order


def test_the_review_panel_leaves_the_image_most_of_a_1600_px_window(make_napari_viewer, qtbot):
    """Issue 15 item 6: opened alone (as `napari-aleatoric demo` does), the review panel takes a
    modest width and the image canvas keeps at least half of a 1600×1000 window (it had ~35 %)."""
    from napari_aleatoric.gui.sample import dock_panel

    viewer = make_napari_viewer(show=True)
    panel = dock_panel(viewer, model="tiny", device="cpu")
    window = panel.window()  # the QMainWindow (Qt's public API)
    window.resize(1600, 1000)
    qtbot.waitExposed(window)
    qtbot.wait(100)
    try:
        assert window.width() == 1600
        assert window.centralWidget().width() >= 0.5 * window.width(), window.centralWidget().width()
    finally:
        panel.shutdown()
