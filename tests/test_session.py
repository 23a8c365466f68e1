"""The review session without a viewer: open, score, walk the queue, correct, accept, refresh, re-score.

Datasets are small copies of the bundled MNI slices (tmp_path); the model is ``tiny`` (random, fast).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_aleatoric.data.errors import AleatoricError
from napari_aleatoric.pipelines.priorities import PrioritiesRefreshed
from napari_aleatoric.pipelines.scoring import CaseScored, ScoringFinished, score_dataset
from napari_aleatoric.pipelines.table import read_scores
from napari_aleatoric.sample_data import dataset_path
from napari_aleatoric.session import (
    CaseChanged,
    DatasetOpened,
    DecisionRefused,
    ReviewSession,
    RevisionRecorded,
    ScoresChanged,
    StatusChanged,
)

pytestmark = pytest.mark.usefixtures("one_thread")

MNI = "Dataset001_MNIBrainSlices"
CASES = ("mni_000", "mni_003", "mni_006", "mni_009", "mni_010", "mni_014")
#: scoring options that differ from every default of score_dataset
STORED = {"input_mode": "masknorm", "energy": "sigma", "svd_mode": "H_DW",
          "rank_by": "contradicted"}


def copy_subset(destination: Path) -> Path:
    target = destination / MNI
    shutil.copytree(dataset_path(MNI), target, ignore=shutil.ignore_patterns(".aleatoric", "__pycache__",
                                                                              "labelsTr_clean"))
    for folder in ("imagesTr", "labelsTr"):
        for path in (target / folder).iterdir():
            if not path.name.startswith(CASES):
                path.unlink()
    return target


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """An unscored subset, and the same subset scored with the tiny model and non-default options."""
    base = tmp_path_factory.mktemp("session")
    fresh = copy_subset(base / "fresh")
    scored = copy_subset(base / "scored")
    events = list(score_dataset(scored, "tiny", device="cpu", **STORED))
    assert isinstance(events[-1], ScoringFinished)
    return {"fresh": fresh, "scored": scored}


@pytest.fixture
def fresh(templates, tmp_path) -> Path:
    return Path(shutil.copytree(templates["fresh"], tmp_path / MNI))


@pytest.fixture
def scored(templates, tmp_path) -> Path:
    return Path(shutil.copytree(templates["scored"], tmp_path / MNI))


@pytest.fixture
def session():
    made = ReviewSession(model="tiny", device="cpu", user="tester")
    yield made
    made.close()


def recorded(session) -> list:
    events: list = []
    session.subscribe(events.append)
    return events


def corrected(session, case_id: str) -> np.ndarray:
    """The case's annotation with a square block repainted as another declared class."""
    label = np.array(session.load_case(case_id).label, copy=True)
    values = sorted(session.dataset.foreground.values())
    rows, cols = label.shape[0] // 2, label.shape[1] // 2
    block = label[rows - 6:rows + 6, cols - 6:cols + 6]
    label[rows - 6:rows + 6, cols - 6:cols + 6] = np.where(block == values[0], values[1], values[0])
    return label


def settings_on_disk(root: Path) -> dict:
    return json.loads((root / ".aleatoric" / "scores.json").read_text())["settings"]


def test_rescoring_after_a_correction_keeps_the_stored_scoring_settings(session, scored):
    """The bug the panel had: re-scoring with default options turned a masknorm dataset into raw."""
    session.open(scored)
    assert session.settings.input_mode == "masknorm" and session.settings.energy == "sigma"
    case_id = session.next_case()
    before = dict(session.row(case_id))
    revision = session.save(case_id, corrected(session, case_id))
    assert revision.issue_before == pytest.approx(before["label_issue"])
    assert revision.auv_before == pytest.approx(before["auv"])
    assert session.pending_revisions() == [revision.id]
    events = list(session.rescore())
    assert isinstance(events[-1], ScoringFinished)
    on_disk = settings_on_disk(scored)
    for key, value in STORED.items():
        assert on_disk[key] == value, (key, on_disk)
    assert session.settings.input_mode == "masknorm"
    # the revision now carries the queue's score (label_issue) and the AUV after re-scoring
    after = session.store.revision(revision.id)
    row = session.row(case_id)
    assert after.issue_after == pytest.approx(row["label_issue"]) and after.auv_after == pytest.approx(row["auv"])
    assert session.pending_revisions() == []


def ranks_follow(table, column: str) -> bool:
    """Whether the table's ranks put the higher ``column`` first (NaN last)."""
    values = [row[column] for row in sorted(table.rows, key=lambda row: row["rank"])]
    finite = [v for v in values if v == v]
    return finite == sorted(finite, reverse=True) and values[:len(finite)] == finite


def test_ranking_by_another_column_is_stored_and_kept_by_refresh_and_rescore(session, scored):
    events = recorded(session)
    session.open(scored)
    assert session.settings.rank_by == "contradicted" and ranks_follow(session.table, "contradicted")
    table = session.rerank("auv")
    assert isinstance(events[-1], ScoresChanged) and events[-1].reason == "reranked"
    assert ranks_follow(table, "auv") and table.ranking == "auv"
    summary = json.loads((scored / ".aleatoric" / "scores.json").read_text())
    assert summary["settings"]["rank_by"] == "auv" and summary["ranking"] == "auv"
    assert summary["flagged"] == [row["case_id"] for row in table.rows if row["flagged"]]
    on_disk = read_scores(scored / ".aleatoric" / "scores.csv")
    assert [(r["case_id"], r["rank"]) for r in on_disk.rows] == [(r["case_id"], r["rank"]) for r in table.rows]
    list(session.refresh())  # re-learns label quality; the ranking stays by AUV
    assert ranks_follow(session.table, "auv")
    session.rerank("label-issue")
    list(session.score())
    assert settings_on_disk(scored)["rank_by"] == "label-issue" and ranks_follow(session.table, "label_issue")
    with pytest.raises(ValueError, match="rank by"):
        session.rerank("alphabetical")
    assert settings_on_disk(scored)["rank_by"] == "label-issue"  # nothing written


def test_the_whole_workflow_runs_without_a_viewer(session, fresh):
    events = recorded(session)
    session.open(fresh)
    assert isinstance(events[-1], DatasetOpened) and events[-1].table is None and session.table is None
    assert session.queue() == sorted(CASES)  # unscored: dataset order
    # score: the pipeline's events, applied to the session as they come
    scored = [e for e in session.score() if isinstance(e, CaseScored)]
    assert len(scored) == len(CASES)
    assert isinstance(events[-1], ScoresChanged) and events[-1].reason == "scored"
    assert session.settings is not None and session.settings.model == "tiny@seed0"
    ranks = {row["case_id"]: row["rank"] for row in session.table.rows}
    queue = session.queue()
    assert [ranks[c] for c in queue] == sorted(ranks.values())  # most doubtful first
    # next case: the top, then the next one
    top = session.next_case()
    assert top == queue[0]
    session.set_current(session.load_case(top))
    assert isinstance(events[-1], CaseChanged) and events[-1].case.case_id == top
    second = session.next_case()
    assert second == queue[1] and session.next_case(queue[-1]) is None
    assert session.next_case(second, step=-1) == top
    # correct: the label file is rewritten, the original kept, the revision recorded
    label_path = session.dataset.case(top).label_path
    edited = corrected(session, top)
    revision = session.save(top, edited)
    assert np.array_equal(session.load_case(top).label, edited)
    assert any(isinstance(e, RevisionRecorded) and e.revision.id == revision.id for e in events)
    assert events[-1] == StatusChanged(top, "corrected") and session.status(top) == "corrected"
    assert (session.dataset.state_dir / "originals").is_dir() and label_path.is_file()
    # accept, exclude, and reset a status
    session.accept(second)
    assert events[-1] == StatusChanged(second, "accepted")
    session.exclude(queue[2])
    session.set_status(second, "unreviewed")
    assert session.statuses() == {top: "corrected", queue[2]: "excluded", second: "unreviewed"}
    assert session.next_case(top, unreviewed_only=True) == second
    with pytest.raises(ValueError):
        session.set_status(second, "perfect")
    # refresh priorities: label quality re-learnt from the corrected annotation, the queue re-ranked
    old_issue = session.row(top)["label_issue"]
    refreshed = list(session.refresh())
    assert isinstance(refreshed[-1], PrioritiesRefreshed)
    assert isinstance(events[-1], ScoresChanged) and events[-1].reason == "refreshed"
    assert session.table is refreshed[-1].table and session.row(top)["label_issue"] != old_issue
    # a refresh does not run the decoder: the revision still waits for its scores after
    assert session.pending_revisions() == [revision.id]
    list(session.rescore())
    assert events[-1].completed and events[-1].completed[0].id == revision.id
    assert session.store.revision(revision.id).issue_after is not None


def test_a_decision_moves_to_the_next_unreviewed_case_and_a_reset_stays(session, scored):
    """Working down the queue: accept / exclude answer the next unreviewed case below (reviewed ones
    skipped, in the order the view shows), the end answers ``None``; a reset is recorded and stays."""
    import sqlite3

    session.open(scored)
    queue = session.queue()
    session.accept(queue[2])  # reviewed earlier: skipped when working down
    assert session.decide(queue[0], "accepted") == queue[1]
    assert session.decide(queue[1], "excluded") == queue[3]
    assert session.statuses() == {queue[0]: "accepted", queue[1]: "excluded", queue[2]: "accepted"}
    # the view's order (sorted by another column, filtered): the next unreviewed case in that order
    shown = [queue[5], queue[4], queue[2], queue[3]]
    assert session.decide(queue[4], "accepted", order=shown) == queue[3]
    assert session.next_case(queue[4], order=shown) == queue[2]  # plain next: every shown case
    # the case the decision hides (a status filter) still marks the position: taken before the change
    assert session.decide(queue[3], "accepted", order=[queue[3], queue[5]]) == queue[5]
    # the last unreviewed case: no next one (the reviewer stays), even with unreviewed cases above
    session.reset_status(queue[1])
    assert session.decide(queue[5], "excluded") is None
    assert session.unreviewed() == [queue[1]] and session.unreviewed(order=[queue[5], queue[3]]) == []
    assert session.next_to_review(queue[0]) == queue[1]
    # a reset takes the decision back, stays on the case, and is recorded in the store (who, when)
    events = recorded(session)
    assert session.decide(queue[0], "unreviewed") == queue[0]
    assert events[-1] == StatusChanged(queue[0], "unreviewed") and session.status(queue[0]) == "unreviewed"
    with sqlite3.connect(session.store.path) as db:
        status, when, who = db.execute("SELECT status, updated_at, updated_by FROM cases WHERE case_id = ?",
                                       (queue[0],)).fetchone()
    assert (status, who) == ("unreviewed", "tester") and when


def test_a_decision_on_a_case_with_unsaved_edits_is_refused_but_a_reset_is_not(session, scored):
    session.open(scored)
    queue = session.queue()
    events = recorded(session)
    for status in ("accepted", "excluded"):
        with pytest.raises(DecisionRefused, match=f"Case {queue[0]} has unsaved edits"):
            session.decide(queue[0], status, unsaved_edits=True)
    assert events == [] and session.status(queue[0]) == "unreviewed"  # nothing recorded
    session.exclude(queue[0])
    assert session.decide(queue[0], "unreviewed", unsaved_edits=True) == queue[0]  # taking it back is allowed
    assert session.status(queue[0]) == "unreviewed"
    assert session.decide(queue[0], "accepted", unsaved_edits=False) == queue[1]


def test_what_follows_a_correction_is_a_rescore_now_after_the_running_pass_or_none(session, fresh, tmp_path):
    session.open(fresh)
    assert session.rescore_after_correction(True).when == "no"
    assert session.rescore_after_correction(True).reason == ""  # not scored: nothing to re-score, nothing to say
    list(session.score())
    assert session.rescore_after_correction(True, "tiny").when == "now"
    assert session.rescore_after_correction(True, "tiny", scoring_running=True).when == "after the running pass"
    assert session.rescore_after_correction(False, "tiny").when == "no"  # the reviewer did not ask for it
    other = tmp_path / "other.pth"
    other.write_bytes(b"not the tiny model")
    plan = session.rescore_after_correction(True, f"sam-vit-b:{other}", scoring_running=True)
    assert plan.when == "no" and "tiny@seed0" in plan.reason  # scored with another model: say so


def test_which_events_leave_the_maps_shown_out_of_date(session, scored):
    session.open(scored)
    case_id, other = session.queue()[:2]
    events = recorded(session)
    revision = session.save(case_id, corrected(session, case_id))
    saved = next(e for e in events if isinstance(e, RevisionRecorded))

    def outdated(event, case=case_id, has_maps=True, stale=False, label_issue=True):
        return session.maps_outdated(event, case, has_maps=has_maps, outdated=stale, label_issue_maps=label_issue)

    assert outdated(saved) and not outdated(saved, has_maps=False) and not outdated(saved, case=other)
    reverted = RevisionRecorded(case_id, session.revert(case_id), "reverted")
    assert not outdated(reverted)  # a revert is shown by reading the case again
    scored_events = list(session.score())
    finished = next(e for e in events if isinstance(e, ScoresChanged) and e.reason == "scored")
    assert {r.case_id for r in finished.completed} == {case_id} and revision.id in {r.id for r in finished.completed}
    case_scored = next(e for e in scored_events if isinstance(e, CaseScored) and e.result.case_id == other)
    assert not outdated(case_scored, case=other)  # current maps stay
    assert outdated(case_scored, case=other, has_maps=False) and outdated(case_scored, case=other, stale=True)
    assert not outdated(case_scored, case=case_id, has_maps=False)  # another case was scored
    assert outdated(finished)  # re-scored after its correction
    assert not outdated(finished, case=other)
    assert outdated(finished, case=other, label_issue=False) and outdated(finished, case=other, stale=True)
    assert outdated(finished, case=other, has_maps=False)
    list(session.refresh())
    refreshed = next(e for e in events if isinstance(e, ScoresChanged) and e.reason == "refreshed")
    assert outdated(refreshed, case=other)  # label-issue maps re-learnt for every case
    session.rerank("auv")
    assert events[-1].reason == "reranked" and not outdated(events[-1], case=other)  # the order changed, no map
    assert not outdated(StatusChanged(case_id, "accepted"))


def test_a_scoring_pass_ends_on_the_top_case_unless_the_reviewer_chose_one(session, scored):
    session.open(scored)
    order = session.queue()
    assert session.case_after_scoring(order, order[3], chosen=False, unsaved_edits=False) == order[0]
    assert session.case_after_scoring(order, None, chosen=False, unsaved_edits=False) == order[0]
    assert session.case_after_scoring(order, order[3], chosen=True, unsaved_edits=False) is None
    assert session.case_after_scoring(order, order[3], chosen=False, unsaved_edits=True) is None
    assert session.case_after_scoring(order, order[3], chosen=False, unsaved_edits=False,
                                      after_correction=True) is None
    assert session.case_after_scoring(order, order[0], chosen=False, unsaved_edits=False) is None  # shown already
    assert session.case_after_scoring([], None, chosen=False, unsaved_edits=False) is None


def test_the_rescore_policy_needs_the_model_that_scored_the_dataset(session, fresh, tmp_path):
    session.open(fresh)
    decision = session.rescore_decision()
    assert not decision.ok and "not been scored" in decision.reason
    list(session.score())
    assert session.rescore_decision().ok
    other = tmp_path / "other.pth"
    other.write_bytes(b"not the tiny model")
    decision = session.rescore_decision(f"sam-vit-b:{other}")
    assert not decision.ok and "tiny@seed0" in decision.reason
    with pytest.raises(AleatoricError, match="not re-scored"):
        list(session.rescore(f"sam-vit-b:{other}"))


def test_a_correction_saved_during_a_scoring_pass_waits_for_the_next_one(session, scored):
    session.open(scored)
    case_id = session.next_case()
    events = session.scoring_events()  # the pass starts: it covers only what was saved before
    revision = session.save(case_id, corrected(session, case_id))
    for event in events:
        session.apply(event)
    assert session.pending_revisions() == [revision.id]
    assert session.store.revision(revision.id).issue_after is None
    list(session.rescore())
    assert session.pending_revisions() == [] and session.store.revision(revision.id).issue_after is not None


def test_revert_and_reconcile_go_through_the_session(session, scored):
    events = recorded(session)
    session.open(scored)
    case_id = session.next_case()
    label_path = session.dataset.case(case_id).label_path
    original = label_path.read_bytes()
    session.save(case_id, corrected(session, case_id))
    assert label_path.read_bytes() != original
    reverted = session.revert(case_id, "original")
    assert label_path.read_bytes() == original and reverted.note == "revert to original"
    assert events[-1] == StatusChanged(case_id, "unreviewed")
    assert [e.kind for e in events if isinstance(e, RevisionRecorded)] == ["saved", "reverted"]
    # a label file changed outside the session is recorded when the case is next loaded, never rewritten
    from napari_aleatoric.data.medio import read_label, write_label

    edited = corrected(session, case_id)
    write_label(label_path, edited, read_label(label_path)[1])
    changed = label_path.read_bytes()
    count = len(session.store.revisions(case_id))
    assert np.array_equal(session.load_case(case_id).label, edited)
    assert label_path.read_bytes() == changed
    revisions = session.store.revisions(case_id)
    assert len(revisions) == count + 1 and revisions[-1].note.startswith("recovered")


def test_a_session_without_a_dataset_or_store_says_so(session, tmp_path):
    with pytest.raises(AleatoricError):
        session.queue()
    with pytest.raises(AleatoricError):
        session.open(tmp_path / "missing")
    assert session.dataset is None


def test_a_failing_subscriber_does_not_stop_the_others(session, fresh):
    seen: list = []

    def broken(event):
        raise RuntimeError("a deleted widget")

    session.subscribe(broken)
    unsubscribe = session.subscribe(seen.append)
    session.open(fresh)
    assert isinstance(seen[-1], DatasetOpened)
    unsubscribe()
    session.set_current(None)
    assert len(seen) == 1
