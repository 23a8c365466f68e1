"""Scoring unlabelled cases (imagesTs) with a trained run's segmentation as the box prompts."""

import shutil
from dataclasses import replace

import numpy as np
import pytest
from helpers import make_tiny_dataset

from napari_aleatoric.data.dataset import load_case, open_dataset
from napari_aleatoric.data.errors import DatasetError, ModelError
from napari_aleatoric.pipelines.scoring import CaseScored, ScoringFinished
from napari_aleatoric.pipelines.unlabelled import (
    CasePredicted,
    PredictionSkipped,
    UnlabelledStarted,
    predicted_label_path,
    pseudo_labelled_dataset,
    score_unlabelled,
)
from napari_aleatoric.training import TrainingFinished, load_trained_model, train

from test_training_loop import TINY

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny dataset with three unlabelled cases (copies of training images) and a trained run."""
    root = make_tiny_dataset(tmp_path_factory.mktemp("unlabelled") / "Dataset901_Tiny")
    (root / "imagesTs").mkdir()
    for i in range(3):
        shutil.copyfile(root / "imagesTr" / f"c{i:02d}_0000.png", root / "imagesTs" / f"t{i:02d}_0000.png")
    events = list(train(root, replace(TINY, epochs=8, name="run")))
    assert isinstance(events[-1], TrainingFinished)
    return root, events[-1].run_dir


def test_test_cases_are_segmented_by_the_run_and_scored(trained):
    root, run_dir = trained
    events = list(score_unlabelled(root, run_dir, "tiny", device="cpu"))
    assert isinstance(events[0], UnlabelledStarted) and events[0].total == 3
    predicted = [e for e in events if isinstance(e, CasePredicted)]
    assert [e.case_id for e in predicted] == ["t00", "t01", "t02"]
    ds = open_dataset(root)
    model = load_trained_model(run_dir, device="cpu")
    for event in predicted:
        assert event.label_path == predicted_label_path(ds, "run", event.case_id)
        assert event.label_path.parent == root / ".aleatoric" / "unlabelled" / "run" / "labelsTs"
        image = load_case(ds, ds.case(event.case_id)).image
        pseudo = pseudo_labelled_dataset(ds, "run")
        stored = load_case(pseudo, pseudo.case(event.case_id)).label
        assert np.array_equal(stored, model.predict(image))  # the file is the run's segmentation
        assert event.foreground_voxels == int((stored != 0).sum()) > 0
    scored = [e for e in events if isinstance(e, CaseScored)]
    assert sorted(e.result.case_id for e in scored) == ["t00", "t01", "t02"]
    finished = events[-1]
    assert isinstance(finished, ScoringFinished)
    assert finished.csv_path == root / ".aleatoric" / "unlabelled" / "run" / "scores.csv" and finished.csv_path.is_file()
    assert sorted(r["case_id"] for r in finished.table.rows) == ["t00", "t01", "t02"]
    assert any(np.isfinite(r["auv"]) for r in finished.table.rows)
    # the annotated cases' own scores are untouched
    assert not (root / ".aleatoric" / "scores.csv").exists()


def test_an_unreadable_test_image_is_skipped_and_the_rest_scored(trained, tmp_path):
    root, run_dir = trained
    copy = shutil.copytree(root, tmp_path / root.name)
    (copy / "imagesTs" / "t01_0000.png").write_bytes(b"not a png")
    events = list(score_unlabelled(copy, copy / ".aleatoric" / "models" / "run", "tiny", device="cpu"))
    skipped = [e for e in events if isinstance(e, PredictionSkipped)]
    assert [e.case_id for e in skipped] == ["t01"] and "t01_0000.png" in str(skipped[0].error)
    assert sorted(r["case_id"] for r in events[-1].table.rows) == ["t00", "t02"]


def test_no_test_cases_or_another_dataset_s_model_are_clear_errors(trained, tmp_path):
    root, run_dir = trained
    bare = make_tiny_dataset(tmp_path / "Dataset902_NoTest")
    with pytest.raises(DatasetError, match="no unlabelled cases"):
        next(score_unlabelled(bare, run_dir, "tiny"))
    other = shutil.copytree(root, tmp_path / "other")
    js = (other / "dataset.json").read_text().replace('"square": 2', '"square": 3')
    (other / "dataset.json").write_text(js)
    with pytest.raises(ModelError, match="trained on classes"):
        next(score_unlabelled(other, run_dir, "tiny"))
    with pytest.raises(ModelError):
        next(score_unlabelled(root, tmp_path / "not_a_run", "tiny"))
