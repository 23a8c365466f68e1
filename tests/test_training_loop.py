"""Training loop, checkpoints, case selection and prediction on tiny data (CPU, a few seconds each)."""

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_tiny_dataset

from napari_aleatoric.data.dataset import load_case, open_dataset
from napari_aleatoric.data.errors import AleatoricError, DatasetError
from napari_aleatoric.data.medio import write_label
from napari_aleatoric.models.checkpoints import load_state_dict
from napari_aleatoric.training import (
    EpochDone,
    StepDone,
    TrainingFinished,
    TrainingStarted,
    TrainingStopped,
    TrainSettings,
    list_runs,
    load_trained_model,
    predict,
    train,
)
from napari_aleatoric.training import runs as runs_module
from napari_aleatoric.training.data import split_cases

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = TrainSettings(epochs=2, width=4, depth=3, keep=1.0, batch_size=2, lr=3e-3, device="cpu", val_fraction=0.25)


def run_all(dataset, settings, **kwargs) -> list:
    return list(train(dataset, settings, **kwargs))


def final_state(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


def test_a_few_steps_reduce_the_loss_and_write_the_run(tiny):
    events = run_all(tiny, replace(TINY, epochs=6, name="r"))
    started, finished = events[0], events[-1]
    assert isinstance(started, TrainingStarted) and isinstance(finished, TrainingFinished)
    assert started.patch == (32, 32) and started.spatial_dims == 2 and started.classes == ["disc", "square"]
    steps = [e for e in events if isinstance(e, StepDone)]
    epochs = [e for e in events if isinstance(e, EpochDone)]
    assert len(steps) == 6 * 3 and [e.epoch for e in epochs] == list(range(1, 7))
    assert epochs[-1].train_loss < 0.9 * epochs[0].train_loss
    assert set(epochs[0].val_dice) == {"disc", "square"} and all(s.elapsed >= 0 for s in steps)

    run = tiny / ".aleatoric" / "models" / "r"
    assert finished.run_dir == run and finished.model_path == run / "best.pt"
    settings = json.loads((run / "settings.json").read_text())
    assert settings["classes"] == [{"name": "disc", "value": 1, "channel": 1}, {"name": "square", "value": 2, "channel": 2}]
    assert settings["settings"]["alpha"] == 0.5 and settings["patch"] == [32, 32]
    cases = json.loads((run / "cases.json").read_text())
    assert sorted(cases["train"] + cases["val"]) == [f"c{i:02d}" for i in range(8)] and len(cases["val"]) == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 6 and metrics["best_epoch"] == finished.best_epoch
    assert metrics["best_val_mean_dice"] == pytest.approx(max(e["val_mean_dice"] for e in metrics["epochs"]))
    assert load_state_dict(run / "best.pt")  # plain tensors, torch.load(weights_only=True)
    assert [r.name for r in list_runs(tiny)] == ["r"] and list_runs(tiny)[0].has_model


def test_seeded_runs_are_reproducible_on_cpu(tiny):
    run_all(tiny, replace(TINY, name="a"))
    run_all(tiny, replace(TINY, name="b"))
    run_all(tiny, replace(TINY, name="c", seed=1))
    models = tiny / ".aleatoric" / "models"
    a, b, c = (final_state(models / n) for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    metrics = [json.loads((models / n / "metrics.json").read_text())["epochs"] for n in "ab"]
    assert [e["train_loss"] for e in metrics[0]] == [e["train_loss"] for e in metrics[1]]


def test_stop_and_resume_continue_from_the_checkpoint(tiny):
    settings = replace(TINY, epochs=3)
    run_all(tiny, replace(settings, name="full"))

    events = train(tiny, replace(settings, name="cut"))
    seen = []
    for event in events:
        seen.append(event)
        if isinstance(event, StepDone) and event.epoch == 2 and event.step == 2:
            break
    events.close()  # stopping between steps writes last.pt at this position
    run = tiny / ".aleatoric" / "models" / "cut"
    position = torch.load(run / "last.pt", weights_only=True)
    assert (position["epoch"], position["step"], position["global_step"]) == (1, 2, 5)

    resumed = run_all(tiny, None, run_dir=run, resume=True)
    assert resumed[0].resumed and (resumed[0].start_epoch, resumed[0].start_step) == (2, 2)
    assert [(e.epoch, e.step) for e in resumed if isinstance(e, StepDone)][0] == (2, 3)
    full = final_state(tiny / ".aleatoric" / "models" / "full")
    cut = final_state(run)
    assert all(torch.equal(full[k], cut[k]) for k in full)
    history = json.loads((run / "metrics.json").read_text())["epochs"]
    reference = json.loads((tiny / ".aleatoric" / "models" / "full" / "metrics.json").read_text())["epochs"]
    assert [e["train_loss"] for e in history] == pytest.approx([e["train_loss"] for e in reference], rel=1e-6)

    with pytest.raises(ValueError, match="alpha"):  # only epochs and device may change on resume
        run_all(tiny, replace(settings, alpha=0.1), run_dir=run, resume=True)
    more = run_all(tiny, replace(settings, epochs=4), run_dir=run, resume=True)
    assert [e.epoch for e in more if isinstance(e, EpochDone)] == [4]


def test_should_stop_saves_and_ends_with_a_stopped_event(tiny):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    events = run_all(tiny, replace(TINY, name="s"), should_stop=stop)
    assert isinstance(events[-1], TrainingStopped)
    assert (events[-1].epoch, events[-1].step) == (2, 1)
    assert torch.load(events[-1].checkpoint, weights_only=True)["global_step"] == 4
    assert events[-1].model_path == tiny / ".aleatoric" / "models" / "s" / "best.pt"  # epoch 1's model
    assert events[-1].model_path.is_file()


def test_a_run_stopped_before_its_first_epoch_ended_names_no_model(tiny):
    """It used to name a best.pt that was never written (written when an epoch ends)."""
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 1  # after one step of epoch 1

    events = run_all(tiny, replace(TINY, name="early"), should_stop=stop)
    stopped, run = events[-1], tiny / ".aleatoric" / "models" / "early"
    assert isinstance(stopped, TrainingStopped) and (stopped.epoch, stopped.step) == (1, 1)
    assert stopped.model_path is None and not (run / "best.pt").exists()
    assert stopped.checkpoint.is_file()  # the position to resume from
    assert not list_runs(tiny)[0].has_model
    resumed = run_all(tiny, None, run_dir=run, resume=True)  # resuming finishes it: then there is a model
    assert isinstance(resumed[-1], TrainingFinished) and resumed[-1].model_path.is_file()


def test_an_interrupted_checkpoint_write_keeps_the_previous_one(tiny, monkeypatch):
    run = tiny / ".aleatoric" / "models" / "w"
    events = train(tiny, replace(TINY, name="w"))
    next(events)  # TrainingStarted: last.pt at epoch 0 is on disk
    before = (run / "last.pt").read_bytes()
    real_save = torch.save

    def dying_save(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        if hasattr(path, "truncate"):  # serialised in memory first (runs.save_checkpoint)
            path.truncate(100)
        else:
            with open(path, "r+b") as handle:  # half-written file, then the process "dies"
                handle.truncate(100)
        raise OSError("disk full")

    monkeypatch.setattr(runs_module.torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        for _ in events:
            pass
    assert (run / "last.pt").read_bytes() == before
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 0
    assert not [p for p in run.iterdir() if ".partial" in p.name]


def test_training_reads_a_snapshot_of_the_labels_taken_at_start(tiny):
    """Corrections saved while a run trains (the user keeps reviewing) do not reach that run."""
    labels = sorted((tiny / "labelsTr").glob("*.png"))
    before = {p.name: p.read_bytes() for p in labels}
    events = train(tiny, replace(TINY, epochs=2, name="snap"))
    started = next(events)
    assert isinstance(started, TrainingStarted)
    broken = np.full((32, 32), 7, np.uint8)  # a value dataset.json does not declare: unreadable as a label
    for path in labels:
        write_label(path, broken, None)
    rest = list(events)  # would raise CaseError("label values 7 are not declared") on the live files
    assert isinstance(rest[-1], TrainingFinished)
    snapshot = started.run_dir / "labels"
    assert {p.name: p.read_bytes() for p in sorted(snapshot.iterdir())} == before
    assert json.loads((started.run_dir / "cases.json").read_text())["labels_snapshot"] == ".aleatoric/models/snap/labels"
    # resuming reads the same snapshot, not the (now broken) live labels
    assert isinstance(list(train(tiny, replace(TINY, epochs=3, name="snap"), resume=True))[-1], TrainingFinished)


def test_a_run_folder_outside_the_dataset_keeps_its_snapshot_inside_it(tiny, tmp_path):
    events = run_all(tiny, replace(TINY, epochs=1, name="out"), run_dir=tmp_path / "elsewhere")
    assert isinstance(events[-1], TrainingFinished)
    snapshot = tiny / ".aleatoric" / "label_snapshots" / "out"
    assert len(list(snapshot.iterdir())) == 8 and not (tmp_path / "elsewhere" / "labels").exists()


def test_existing_run_is_not_overwritten(tiny):
    run_all(tiny, replace(TINY, epochs=1, name="x"))
    with pytest.raises(AleatoricError, match="already exists"):
        run_all(tiny, replace(TINY, epochs=1, name="x"))


def test_excluded_cases_are_left_out(tiny):
    from napari_aleatoric.review.store import ReviewStore

    train_ids, val_ids = split_cases([f"c{i:02d}" for i in range(8)], 0.25)
    with ReviewStore.for_dataset(tiny) as store:
        store.set_status(train_ids[0], "excluded", "tester")
        store.set_status(val_ids[0], "excluded", "tester")
        store.set_status(train_ids[1], "corrected", "tester")
    started = next(train(tiny, replace(TINY, name="e")))
    assert started.left_out == {train_ids[0]: "excluded in review", val_ids[0]: "excluded in review"}
    assert train_ids[0] not in started.train_cases and val_ids[0] not in started.val_cases
    assert train_ids[1] in started.train_cases


def write_scores(dataset: Path, auv: dict[str, float], per_class: dict[str, tuple[float, float]] | None = None):
    path = dataset / ".aleatoric" / "scores.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case_id", "rank", "auv", "flagged", "sps", "fm_disagreement", "auv_disc", "auv_square"])
        for rank, (case_id, value) in enumerate(sorted(auv.items(), key=lambda kv: -kv[1]), start=1):
            disc, square = (per_class or {}).get(case_id, ("", ""))
            writer.writerow([case_id, rank, value, 0, 1.0, "", disc, square])
    return path


def test_filtering_keeps_training_cases_up_to_the_auv_quantile(tiny):
    train_ids, val_ids = split_cases([f"c{i:02d}" for i in range(8)], 0.25)
    auv = {c: v for c, v in zip(train_ids + val_ids, np.linspace(0.0, 1.0, 8)[[0, 1, 2, 3, 4, 7, 5, 6]])}
    write_scores(tiny, auv)
    started = next(train(tiny, replace(TINY, name="f", keep=0.5)))
    assert started.val_cases == val_ids  # validation is never filtered
    kept = sorted(train_ids, key=auv.get)[:3]
    assert started.train_cases == sorted(kept)
    assert set(started.left_out) == set(train_ids) - set(kept)
    cases = json.loads((started.run_dir / "cases.json").read_text())
    assert cases["filter"]["applied"] and cases["filter"]["threshold"] == pytest.approx(
        np.quantile([auv[c] for c in train_ids], 0.5))

    per_class = {c: (0.1, 0.1) for c in train_ids}
    per_class[train_ids[0]] = (0.1, 0.9)  # only its square is uncertain
    write_scores(tiny, {c: 0.5 for c in auv}, per_class)
    started = next(train(tiny, replace(TINY, name="g", keep=0.8, classwise=True)))
    assert started.train_cases == sorted(train_ids[1:])


def test_filtering_without_scores_is_a_clear_error(tiny):
    with pytest.raises(DatasetError, match="napari-aleatoric score"):
        next(train(tiny, replace(TINY, keep=0.9)))


def test_predict_returns_a_label_map_of_dataset_values(tiny):
    finished = run_all(tiny, replace(TINY, epochs=1, name="p"))[-1]
    ds = open_dataset(tiny)
    case = load_case(ds, ds.cases[0])
    labels = predict(finished.run_dir, case.image)
    assert labels.shape == case.image.shape and set(np.unique(labels)) <= {0, 1, 2}
    model = load_trained_model(finished.run_dir, checkpoint="last")
    volume = np.stack([case.image, case.image])  # a 2D model segments a volume slice by slice
    assert model.predict(volume).shape == (2, 32, 32)
    assert model.probabilities(case.image).shape == (3, 32, 32)
    with pytest.raises(AleatoricError, match="settings.json"):
        predict(tiny, case.image)


def test_3d_volumes_train_in_patches_and_predict_with_a_sliding_window(ct_dataset):
    settings = replace(TINY, epochs=1, patch=(16, 32, 32), name="v", val_fraction=0.25)
    events = run_all(ct_dataset, settings)
    assert events[0].spatial_dims == 3 and len(events[0].train_cases) == 3 and events[0].classes == [
        "liver", "kidney", "tumour"]
    ds = open_dataset(ct_dataset)
    case = load_case(ds, ds.cases[0])
    labels = predict(events[-1].run_dir, case.image)
    assert labels.shape == case.image.shape == (40, 96, 96) and set(np.unique(labels)) <= {0, 1, 2, 3}


def test_segresnet_and_plain_loss_train(tiny):
    events = run_all(tiny, replace(TINY, epochs=1, network="segresnet", duo=False, name="sr"))
    assert isinstance(events[-1], TrainingFinished)
    assert all(e.noise_loss == 0 for e in events if isinstance(e, StepDone))


def test_swinunetr_needs_einops_or_trains(tiny):
    try:
        import einops  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="einops"):
            run_all(tiny, replace(TINY, epochs=1, network="swinunetr", name="sw"))
    else:  # pragma: no cover - einops is optional
        events = run_all(tiny, replace(TINY, epochs=1, network="swinunetr", name="sw"))
        assert isinstance(events[-1], TrainingFinished)


@pytest.mark.parametrize(("change", "message"), [
    ({"network": "resnet"}, "unknown network"),
    ({"epochs": 0}, "epochs"),
    ({"keep": 1.5}, "keep"),
    ({"keep": 0.0}, "keep"),
    ({"alpha": -1.0}, "alpha"),
    ({"beta": 1.5}, "beta"),
    ({"lr": 0.0}, "learning rate"),
    ({"patch": (30, 32)}, "multiple of 4"),
    ({"patch": (16, 16, 16)}, "3 axes"),
    ({"name": "../x"}, "run name"),
    ({"noise_training": "magic"}, "noise training"),
])
def test_bad_settings_are_refused_with_a_message(tiny, change, message):
    with pytest.raises(ValueError, match=message):
        next(train(tiny, replace(TINY, **change)))
    assert not (tiny / ".aleatoric" / "models").exists() or not any((tiny / ".aleatoric" / "models").iterdir())


def test_missing_dataset_and_too_few_cases(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        next(train(tmp_path / "nowhere", TINY))
    one = make_tiny_dataset(tmp_path / "One", cases=1)
    with pytest.raises(DatasetError, match="validate"):
        next(train(one, TINY))


def test_training_core_imports_no_qt_or_napari():
    """Static: every module reachable from napari_aleatoric.training by imports, none of Qt/napari."""
    import ast

    import napari_aleatoric

    root = Path(napari_aleatoric.__file__).parent
    forbidden = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt")

    def module_file(name: str) -> Path | None:
        parts = name.split(".")[1:]
        for candidate in (root.joinpath(*parts, "__init__.py"), root.joinpath(*parts).with_suffix(".py")):
            if parts and candidate.is_file() or not parts and candidate.name == "__init__.py":
                return candidate
        return None

    seen, todo, external = set(), ["napari_aleatoric.training", "napari_aleatoric.pipelines.unlabelled"], set()
    while todo:
        name = todo.pop()
        path = module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                if target.split(".")[0] == "napari_aleatoric":
                    todo.append(target)
                else:
                    external.add(target.split(".")[0])
    assert "napari_aleatoric.training.loop" in seen and "napari_aleatoric.review.store" in seen
    assert "napari_aleatoric.pipelines.scoring" in seen
    assert not external & set(forbidden), sorted(external & set(forbidden))
