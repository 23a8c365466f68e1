"""Label quality inside the scoring pipeline and the refresh after corrections (tiny model)."""

import json
import shutil

import numpy as np
import pytest

from napari_aleatoric.data.dataset import load_case, open_dataset
from napari_aleatoric.models.base import FoundationModel
from napari_aleatoric.labelquality.assess import LabelQualityProgress, load_issue_maps
from napari_aleatoric.pipelines.priorities import PrioritiesRefreshed, refresh_priorities
from napari_aleatoric.pipelines.scoring import ScoringFinished, score_dataset
from napari_aleatoric.pipelines.table import read_scores


def score(root):
    return list(score_dataset(root, "tiny", device="cpu"))


def corrupted_cases(root):
    return {c["case"] for c in json.loads((root / "corruptions.json").read_text())["corruptions"]}


def mean_rank(table, cases):
    return float(np.mean([row["rank"] for row in table.rows if row["case_id"] in cases]))


def test_scoring_learns_label_quality_and_caches_current_issue_maps(mni_dataset):
    events = score(mni_dataset)
    stages = [e.stage for e in events if isinstance(e, LabelQualityProgress)]
    assert stages.count("sampling") == 20 and stages.count("predicting") == 20 and "fitting" in stages
    table = events[-1].table
    ds = open_dataset(mni_dataset)
    case = load_case(ds, ds.case("mni_003"))
    maps = load_issue_maps(ds, "mni_003", "tiny@seed0", case.image, case.label)
    assert maps.shape == (2, 1) + case.label.shape and maps.dtype == np.float16
    assert 0.0 <= maps.min() and maps.max() <= 1.0
    # an edited annotation makes its maps stale: they are not returned
    edited = case.label.copy()
    edited[:10, :10] = 1
    assert load_issue_maps(ds, "mni_003", "tiny@seed0", case.image, edited) is None
    row = table.row("mni_003")
    assert 0.0 <= row["label_issue_white_matter"] <= 1.0
    # how much looks wrong, and where (1 mm pixels: the area in mm² equals the pixel count)
    assert row["wrong_voxels"] == row["wrong_size"] >= row["worst_region_voxels"] > 0
    assert row["worst_region_slice"] == 0 and 0 <= row["worst_region_row"] < case.label.shape[0]
    assert row["wrong_voxels_grey_matter"] + row["wrong_voxels_white_matter"] >= row["wrong_voxels"] * 0.5


def test_corrupted_sample_cases_come_first_in_the_queue(mni_dataset):
    """The bundled MRI sample has 6 of 20 annotations corrupted (dilation, missing structure, shift,
    erosion, class swap, coarse outline); the learned queue puts them ahead of the clean ones even
    with the tiny random model (the intensity features carry it)."""
    table = score(mni_dataset)[-1].table
    corrupted = corrupted_cases(mni_dataset)
    clean = {row["case_id"] for row in table.rows} - corrupted
    assert mean_rank(table, corrupted) + 4 < mean_rank(table, clean)


def test_refresh_after_correction_relearns_without_the_decoder(mni_dataset, monkeypatch):
    before = score(mni_dataset)[-1].table
    corrupted = sorted(corrupted_cases(mni_dataset), key=lambda c: before.row(c)["rank"])
    fixed = corrupted[0]  # the top corrupted case: the user corrects it
    shutil.copyfile(mni_dataset / "labelsTr_clean" / f"{fixed}.png", mni_dataset / "labelsTr" / f"{fixed}.png")

    def no_decoding(*args, **kwargs):
        raise AssertionError("refreshing priorities must not run the decoder")

    monkeypatch.setattr(FoundationModel, "decode", no_decoding)
    events = list(refresh_priorities(mni_dataset))
    assert any(isinstance(e, LabelQualityProgress) for e in events)
    refreshed = events[-1]
    assert isinstance(refreshed, PrioritiesRefreshed)
    assert refreshed.table.row(fixed)["rank"] > before.row(fixed)["rank"] + 3
    on_disk = read_scores(refreshed.csv_path)
    assert [r["case_id"] for r in on_disk.rows] == [r["case_id"] for r in refreshed.table.rows]
    # the paper's columns are kept as they were
    assert on_disk.row(fixed)["auv"] == pytest.approx(before.row(fixed)["auv"], abs=1e-6)
    # nothing changed since: the second refresh is read from the cache, building no model
    import napari_aleatoric.models.lazy as lazy

    monkeypatch.setattr(lazy, "load_model", no_decoding)
    again = list(refresh_priorities(mni_dataset))
    assert not any(isinstance(e, LabelQualityProgress) for e in again)
    assert [r["case_id"] for r in again[-1].table.rows] == [r["case_id"] for r in refreshed.table.rows]


def test_refresh_needs_a_scored_dataset_and_the_same_model(mni_dataset):
    from napari_aleatoric.data.errors import DatasetError

    with pytest.raises(DatasetError, match="not been scored"):
        list(refresh_priorities(mni_dataset))
    score(mni_dataset)
    with pytest.raises(DatasetError, match="scored with tiny@seed0"):
        list(refresh_priorities(mni_dataset, "litemedsam"))


def test_too_few_cases_rank_by_auv_and_say_why(mni_dataset):
    events = list(score_dataset(mni_dataset, "tiny", device="cpu", case_ids=["mni_000", "mni_001", "mni_002"]))
    finished = events[-1]
    assert isinstance(finished, ScoringFinished)
    assert all(np.isnan(r["label_issue"]) for r in finished.table.rows)
    auv = [r["auv"] for r in finished.table.rows]
    assert auv == sorted(auv, reverse=True)
    summary = json.loads(finished.summary_path.read_text())
    assert summary["ranking"] == "auv" and "fewer than 4" in summary["settings"]["label_quality"]


def test_label_quality_features_never_see_the_annotation_even_after_masknorm_scoring(mni_dataset, monkeypatch):
    """With --input masknorm the model sees intensities normalised inside the annotation; the
    label-quality features must not, or a spurious blob would shift every pixel's features and the
    annotation would be judged by features that depend on it."""
    from napari_aleatoric.models.preprocess import normalise_intensity
    from napari_aleatoric.labelquality import assess as label_quality

    seen: dict[str, list[np.ndarray]] = {}
    original = label_quality.EmbeddedCase

    class Recording(original):
        def __init__(self, model, image01, label_index, cache, key=""):
            seen.setdefault(key, []).append(np.array(image01))
            super().__init__(model, image01, label_index, cache, key)

    monkeypatch.setattr(label_quality, "EmbeddedCase", Recording)
    events = list(score_dataset(mni_dataset, "tiny", device="cpu", input_mode="masknorm"))
    assert isinstance(events[-1], ScoringFinished) and events[-1].table.row("mni_003")["label_issue"] >= 0
    ds = open_dataset(mni_dataset)
    case = load_case(ds, ds.case("mni_003"))
    raw = normalise_intensity(case.image[None], ds.modality, "raw")
    fed = [images for images in seen.values() if images[0].shape == raw.shape and np.array_equal(images[0], raw)]
    assert len(fed) == 1  # this case's features came from the raw mapping
    assert not np.array_equal(raw, normalise_intensity(case.image[None], ds.modality, "masknorm",
                                                       case.label[None] > 0))  # (which masknorm would change)
    # a spurious blob drawn into the case: the refreshed pass feeds the same image
    from napari_aleatoric.data import medio

    path = ds.case("mni_003").label_path
    label, geometry = medio.read_label(path)
    blob = label.copy()
    blob[5:25, 5:25] = 2
    medio.write_label(path, blob, geometry)
    seen.clear()
    list(refresh_priorities(mni_dataset, "tiny"))
    assert sum(np.array_equal(images[0], raw) for images in seen.values() if images[0].shape == raw.shape) == 1


def test_a_class_drawn_in_two_cases_only_is_reported_too_rare_not_contradicted(mni_dataset, capsys):
    """Issue 16: a class drawn in fewer than MIN_CLASS_CASES cases is judged in none of them, even
    where another fold contains it, and the CLI says so."""
    from napari_aleatoric.cli import main
    from napari_aleatoric.data import medio
    from napari_aleatoric.labelquality.classifier import MIN_CLASS_CASES

    meta = json.loads((mni_dataset / "dataset.json").read_text())
    meta["labels"]["cyst"] = 3
    (mni_dataset / "dataset.json").write_text(json.dumps(meta))
    with_cyst = ["mni_005", "mni_006"]  # in different folds: each fold but theirs sees the cyst once
    assert len(with_cyst) < MIN_CLASS_CASES
    for case_id in with_cyst:
        path = open_dataset(mni_dataset).case(case_id).label_path
        label, geometry = medio.read_label(path)
        label = np.array(label, copy=True)
        label[90:110, 80:100] = 3
        medio.write_label(path, label, geometry)
    assert main(["score", str(mni_dataset), "--model", "tiny", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "too rare to judge" in out and "mni_005: cyst" in out and "mni_006: cyst" in out
    summary = json.loads((mni_dataset / ".aleatoric" / "scores.json").read_text())
    assert summary["label_quality"]["unjudged"] == {case_id: ["cyst"] for case_id in with_cyst}
    for case_id in with_cyst:
        row = read_scores(mni_dataset / ".aleatoric" / "scores.csv").row(case_id)
        assert np.isnan(row["contradicted_cyst"]) and np.isnan(row["label_issue_cyst"])
        assert np.isfinite(row["dice_fm_cyst"]) and np.isfinite(row["label_issue"])
