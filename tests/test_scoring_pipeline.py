"""score_dataset end to end with the tiny model: events, CSV, cache, resume, bad cases."""

import csv
import json
import math

import numpy as np
import pytest

from conftest import device_option, tree_digest
from napari_aleatoric.data.arraycache import ArrayCache
from napari_aleatoric.data.errors import DatasetError
from napari_aleatoric.labelquality.flag import FLAG_RULE, flag_cases
from napari_aleatoric.pipelines.scoring import (
    CaseScored,
    CaseSkipped,
    ScoringFinished,
    ScoringStarted,
    score_dataset,
)
from napari_aleatoric.pipelines.table import read_scores

CLASS_NAMES = ["grey_matter", "white_matter"]


def run(dataset, **kwargs):
    return list(score_dataset(dataset, "tiny", device=device_option(), **kwargs))


def test_scoring_writes_ranked_csv_with_per_class_columns(mni_dataset):
    events = run(mni_dataset)
    assert isinstance(events[0], ScoringStarted) and events[0].total == 20
    scored = [e for e in events if isinstance(e, CaseScored)]
    assert [e.index for e in scored] == list(range(1, 21))
    finished = events[-1]
    assert isinstance(finished, ScoringFinished)
    with finished.csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert finished.csv_path == mni_dataset / ".aleatoric" / "scores.csv"
    expected = {"case_id", "rank", "label_issue", "auv", "flagged", "sps", "fm_disagreement"}
    expected |= {f"{p}_{n}" for p in ("label_issue", "auv", "sps", "dice_fm") for n in CLASS_NAMES}
    assert expected <= set(rows[0])
    # each case's pixel count (the flag's single-slice thresholds need the slices to be of one size)
    from napari_aleatoric.data.dataset import load_case, open_dataset

    dataset = open_dataset(mni_dataset)
    assert {r["case_id"]: float(r["voxels"]) for r in rows} == {
        r["case_id"]: float(load_case(dataset, dataset.case(r["case_id"])).label.size) for r in rows}
    # the queue follows the issue rank: the flagged cases first, each group by the mean percentile
    # rank of the learned label-issue score and the worst class's contradicted share; the AUV
    # column stays the paper's score
    issue_rank = [float(r["issue_rank"]) for r in rows]
    assert issue_rank == sorted(issue_rank, reverse=True)
    issue = np.array([float(r["label_issue"]) for r in rows])
    contradicted = np.array([max(float(r[f"contradicted_{n}"]) for n in CLASS_NAMES) for r in rows])
    percentile = [np.array([(v < x).sum() + 0.5 * ((v == x).sum() + 1) for x in v]) / len(v) for v in (issue, contradicted)]
    flagged = np.array([r["flagged"] in ("True", "true", "1") for r in rows], dtype=float)
    assert issue_rank == pytest.approx(list(0.5 * (percentile[0] + percentile[1]) + flagged), abs=1e-6)
    assert [int(r["rank"]) for r in rows] == list(range(1, 21))
    auv = [float(r["auv"]) for r in rows]
    assert max(auv) == 1.0 and min(auv) == 0.0 and auv != sorted(auv, reverse=True)
    # the flag follows the calibrated rule over label_issue and contradicted, whatever the order
    expected_flags, rule = flag_cases(finished.table.rows)
    assert [r["flagged"] == "1" for r in rows] == expected_flags and rule == FLAG_RULE
    summary = json.loads(finished.summary_path.read_text())
    assert summary["flag_rule"] == FLAG_RULE
    assert summary["flagged"] == [r["case_id"] for r in rows if r["flagged"] == "1"]
    assert summary["scored"] == 20 and summary["skipped"] == [] and summary["settings"]["model"] == "tiny@seed0"
    assert summary["ranking"] == "issue_rank" and summary["settings"]["label_quality"] == "ran"
    assert len(summary["label_quality"]["maps"]) == 20


def test_case_sps_is_sum_of_present_class_scales(mni_dataset):
    table = run(mni_dataset)[-1].table
    for row in table.rows:
        parts = [row[f"sps_{n}"] for n in CLASS_NAMES if not math.isnan(row[f"sps_{n}"])]
        assert row["sps"] == pytest.approx(sum(parts))
        assert all(0.0 <= p <= 1.0 for p in parts)


def test_cached_maps_have_documented_shapes(mni_dataset):
    events = run(mni_dataset)
    result = next(e for e in events if isinstance(e, CaseScored)).result
    with np.load(result.maps_file) as npz:
        assert npz["probabilities"].shape == (2, 1, 233, 197)
        assert npz["heatmaps"].dtype == np.float16 and npz["heatmaps"].shape == (2, 1, 233, 197)
        assert npz["prompted"].shape == (2, 1)
        assert 0.0 <= npz["heatmaps"].min() and npz["heatmaps"].max() <= 1.0


def test_second_run_uses_cache_and_builds_no_model(mni_dataset, monkeypatch):
    first = run(mni_dataset)[-1].table
    import napari_aleatoric.models.lazy as lazy

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built although every case is cached")

    monkeypatch.setattr(lazy, "load_model", refuse)
    events = run(mni_dataset)
    assert all(e.result.cached for e in events if isinstance(e, CaseScored))
    second = events[-1].table
    assert [r["case_id"] for r in second.rows] == [r["case_id"] for r in first.rows]
    assert [r["auv"] for r in second.rows] == [r["auv"] for r in first.rows]
    assert [r["label_issue"] for r in second.rows] == [r["label_issue"] for r in first.rows]


def test_interrupted_run_resumes_from_cache(mni_dataset):
    events = score_dataset(mni_dataset, "tiny", device=device_option())
    done = []
    for event in events:
        if isinstance(event, CaseScored):
            done.append(event.result.case_id)
            if len(done) == 3:
                events.close()
                break
    assert not (mni_dataset / ".aleatoric" / "scores.csv").exists()
    again = [e for e in run(mni_dataset) if isinstance(e, CaseScored)]
    cached = {e.result.case_id for e in again if e.result.cached}
    assert cached == set(done)


def test_partially_written_cache_entry_is_recomputed(mni_dataset):
    events = run(mni_dataset)
    result = next(e for e in events if isinstance(e, CaseScored)).result
    data = result.maps_file.read_bytes()
    result.maps_file.write_bytes(data[: len(data) // 2])
    assert ArrayCache(result.maps_file.parent).load(result.case_id, "anything") is None
    rerun = {e.result.case_id: e.result for e in run(mni_dataset) if isinstance(e, CaseScored)}
    assert not rerun[result.case_id].cached
    assert sum(r.cached for r in rerun.values()) == 19


def test_changed_annotation_invalidates_only_that_case(mni_dataset):
    run(mni_dataset)
    import imageio.v3 as iio

    label_path = mni_dataset / "labelsTr" / "mni_005.png"
    label = iio.imread(label_path)
    label[100:110, 90:100] = 2
    iio.imwrite(label_path, label)
    rerun = {e.result.case_id: e.result.cached for e in run(mni_dataset) if isinstance(e, CaseScored)}
    assert rerun["mni_005"] is False and sum(rerun.values()) == 19


def test_bad_cases_are_reported_and_skipped_without_touching_files(mni_dataset):
    (mni_dataset / "labelsTr" / "mni_001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (mni_dataset / "labelsTr" / "mni_002.png").unlink()
    before = tree_digest(mni_dataset)
    events = run(mni_dataset)
    assert tree_digest(mni_dataset) == before
    started, finished = events[0], events[-1]
    skipped_files = {e.path.name for e in started.skipped}
    assert skipped_files == {"mni_001.png", "mni_002.png"}
    assert len(finished.table.rows) == 18
    summary = json.loads(finished.summary_path.read_text())
    assert {s["file"].rsplit("/", 1)[-1] for s in summary["skipped"]} == {"mni_001.png", "mni_002.png"}
    assert all(s["problem"] for s in summary["skipped"])


def test_undeclared_label_value_is_skipped_with_its_value_named(mni_dataset):
    import imageio.v3 as iio

    path = mni_dataset / "labelsTr" / "mni_004.png"
    label = iio.imread(path)
    label[0:5, 0:5] = 7
    iio.imwrite(path, label)
    events = run(mni_dataset)
    skipped = [e for e in events if isinstance(e, CaseSkipped)]
    assert len(skipped) == 1 and skipped[0].case_id == "mni_004"
    assert "7" in str(skipped[0].error) and "mni_004.png" in str(skipped[0].error)


def test_volumes_score_per_class_with_absent_class_empty(ct_dataset):
    events = run(ct_dataset)
    table = events[-1].table
    assert len(table.rows) == 4
    no_tumour = table.row("ct_003")
    assert math.isnan(no_tumour["sps_tumour"]) and math.isnan(no_tumour["auv_tumour"])
    assert not math.isnan(no_tumour["sps_liver"])
    result = next(e.result for e in events if isinstance(e, CaseScored) and e.result.case_id == "ct_000")
    with np.load(result.maps_file) as npz:
        assert npz["probabilities"].shape == (3, 40, 96, 96)
        assert npz["prompted"][0].sum() > 1


def test_settings_change_scores_but_csv_reads_back(mni_dataset, tmp_path):
    base = run(mni_dataset)[-1].table
    sigma = run(mni_dataset, energy="sigma", out_csv=tmp_path / "sigma.csv")[-1]
    masknorm = run(mni_dataset, input_mode="masknorm", out_csv=tmp_path / "masknorm.csv")[-1]
    assert sigma.table.row("mni_000")["sps"] != pytest.approx(base.row("mni_000")["sps"])
    assert masknorm.table.row("mni_000")["sps"] != pytest.approx(base.row("mni_000")["sps"])
    back = read_scores(sigma.csv_path)
    assert [r["case_id"] for r in back.rows] == [r["case_id"] for r in sigma.table.rows]
    assert back.rows[0]["auv"] == pytest.approx(sigma.table.rows[0]["auv"], abs=1e-6)


def test_missing_dataset_folder_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        run(tmp_path / "nowhere")


def test_array_cache_metadata_needs_the_right_key_and_an_intact_entry(tmp_path):
    cache = ArrayCache(tmp_path)
    path = cache.save("case", "key-1", {"maps": np.ones((2, 3), np.float32)}, {"score": 0.5})
    assert cache.metadata("case", "key-1") == {"score": 0.5}
    assert cache.load("case", "key-1")[0]["maps"].dtype == np.float16
    assert cache.metadata("case", "key-2") is None and cache.metadata("other", "key-1") is None
    path.write_bytes(path.read_bytes()[:40])  # truncated by a crash
    assert cache.metadata("case", "key-1") is None and cache.load("case", "key-1") is None


def test_a_table_from_before_the_issue_rank_gets_the_column_when_ranked():
    """A ``scores.csv`` written before ``issue_rank`` existed (no such column) is re-ranked by it,
    and the CSV written back carries it, so the order on disk can be read from the file."""
    from napari_aleatoric.pipelines.table import ScoreTable, ranked, table_to_csv

    old_columns = ["case_id", "rank", "label_issue", "contradicted", "auv", "flagged"]
    values = {"a": (0.90, 0.02), "b": (0.95, 0.30), "c": (0.80, 0.40), "d": (0.70, 0.01)}
    rows = [{"case_id": c, "rank": i + 1, "label_issue": li, "contradicted": cs, "auv": 0.5, "flagged": False}
            for i, (c, (li, cs)) in enumerate(values.items())]
    table = ranked(ScoreTable(old_columns, rows, "label_issue"))
    assert table.columns[:3] == ["case_id", "rank", "issue_rank"]
    # mean percentile: b 0.875, c 0.75, a 0.625, d 0.25; c is flagged (40 % contradicted: ≥ 15 % and
    # ≥ 2× the median, 32 %), which adds 1 and puts it first
    assert [r["case_id"] for r in table.rows] == ["c", "b", "a", "d"]
    assert [r["flagged"] for r in table.rows] == [True, False, False, False]
    assert table_to_csv(table).splitlines()[1].startswith("c,1,1.750000,")


def test_flagged_cases_head_the_issue_rank_and_only_the_issue_rank():
    """Queue round 5 (issue 16, ninth fresh evaluation): a tumour blob that is a case's whole tumour
    class, entirely contradicted, is flagged (class ratio), but the case's low label issue leaves
    the mean of ranks mid-table. The issue rank puts flagged cases first; ranking by label issue
    is not reordered by the flag."""
    from napari_aleatoric.pipelines.table import ScoreTable, issue_ranks, ranked

    def row(case, label_issue, tumour, liver=0.05, drawn_liver=20000, drawn_tumour=100):
        share = (liver * drawn_liver + tumour * drawn_tumour) / (drawn_liver + drawn_tumour)
        return {"case_id": case, "rank": 0, "label_issue": label_issue, "contradicted": share,
                "contradicted_liver": liver, "contradicted_tumour": tumour, "auv": 0.5, "flagged": False}

    rows = [row("blob", 0.89, 1.0)] + [row(f"clean{i}", 0.90 + 0.01 * i, 0.05 + 0.015 * i) for i in range(7)]
    table = ranked(ScoreTable(list(rows[0]), rows, "issue_rank"))
    assert [r["case_id"] for r in table.rows if r["flagged"]] == ["blob"]
    assert table.rows[0]["case_id"] == "blob" and 1.0 < table.rows[0]["issue_rank"] <= 2.0
    assert all(r["issue_rank"] <= 1.0 for r in table.rows[1:])
    mean_only = [v - r["flagged"] for r, v in zip(table.rows, issue_ranks(table.rows))]
    assert max(range(len(mean_only)), key=mean_only.__getitem__) != 0  # by the mean alone it would not lead
    by_label_issue = ranked(ScoreTable(list(rows[0]), rows, "label_issue"), "label-issue")
    assert by_label_issue.rows[-1]["case_id"] == "blob" and by_label_issue.rows[-1]["flagged"]


def test_a_small_class_error_heads_the_issue_rank_however_large_the_other_classes_are():
    """The same error (60 % of a small class's drawing contradicted) in a case whose large class
    carries the usual boundary noise: the case-wide contradicted share hardly moves, the worst
    class's share does, and the issue rank puts the case first."""
    from napari_aleatoric.pipelines.table import ScoreTable, issue_ranks, ranked

    def row(case, label_issue, liver, tumour, drawn_liver=20000, drawn_tumour=300):
        share = (liver * drawn_liver + tumour * drawn_tumour) / (drawn_liver + drawn_tumour)
        return {"case_id": case, "rank": 0, "label_issue": label_issue, "contradicted": share,
                "contradicted_liver": liver, "contradicted_tumour": tumour, "auv": 0.5, "flagged": False}

    rows = [row("wrong", 0.93, 0.06, 0.60)] + [row(f"clean{i}", 0.90 + 0.01 * (i % 3), 0.05 + 0.01 * i, 0.05)
                                              for i in range(6)]
    columns = list(rows[0])
    order = [r["case_id"] for r in ranked(ScoreTable(columns, rows, "issue_rank")).rows]
    assert order[0] == "wrong"
    # the case-wide share alone (the issue rank's second score until the third round) buries it
    from scipy.stats import rankdata
    old = 0.5 * (rankdata([r["label_issue"] for r in rows]) + rankdata([r["contradicted"] for r in rows]))
    assert int(np.argmax(old)) != 0
    # a class nobody could judge (NaN) does not count; a row with no judged class falls back to
    # its case-wide share, and is unranked only when that is unknown too
    rows[1]["contradicted_tumour"] = math.nan
    rows[2]["contradicted_liver"] = rows[2]["contradicted_tumour"] = math.nan
    rows[3]["contradicted_liver"] = rows[3]["contradicted_tumour"] = rows[3]["contradicted"] = math.nan
    ranks = issue_ranks(rows)
    assert math.isfinite(ranks[1]) and math.isfinite(ranks[2]) and math.isnan(ranks[3])


