"""The ranked queue table on its own: in-place updates while scoring, sorting, highlighting."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.gui


def score_rows(auvs: dict[str, float], flagged: set[str] = frozenset()) -> dict[str, dict]:
    """Score-table rows as ``build_table`` makes them (rank 1 = highest AUV) for the scored cases."""
    ranked = sorted(auvs, key=lambda case_id: -auvs[case_id])
    return {case_id: {"case_id": case_id, "rank": ranked.index(case_id) + 1, "auv": auv,
                      "flagged": case_id in flagged, "fm_disagreement": 0.25, "auv_organ": auv, "sps_organ": 0.5}
            for case_id, auv in auvs.items()}


@pytest.fixture
def queue(qtbot):
    from napari_aleatoric.gui.queue import QueueTable

    table = QueueTable()
    qtbot.addWidget(table)
    table.resize(600, 400)
    table.show()
    qtbot.waitExposed(table)
    return table


def cell(queue, case_id: str, column: str):
    return queue.table.item(queue.row_of(case_id), queue.columns().index(column))


def test_queue_updates_rows_in_place_as_cases_are_scored(queue):
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QHeaderView

    from napari_aleatoric.gui.queue import CASE_ROLE

    ids = ["c0", "c1", "c2", "c3"]
    queue.set_cases(ids, ["organ"], {}, {})
    cells = {case_id: [queue.table.item(queue.row_of(case_id), c) for c in range(len(queue.columns()))]
             for case_id in ids}
    queue.select("c2")

    # two cases scored: they come first in rank order, the unscored ones after them
    queue.set_cases(ids, ["organ"], score_rows({"c1": 0.2, "c3": 0.9}, flagged={"c3"}), {})
    assert queue.visible_case_ids()[:2] == ["c3", "c1"]
    assert cell(queue, "c3", "flagged").text() == "yes"
    assert cell(queue, "c3", "case").background().color().alpha() > 0

    # every case scored: ranks and values change, the highlight follows the flag
    queue.set_cases(ids, ["organ"], score_rows({"c0": 0.5, "c1": 0.95, "c2": 0.1, "c3": 0.3}, flagged={"c1"}), {})
    assert queue.visible_case_ids() == ["c1", "c0", "c3", "c2"]
    assert [cell(queue, c, "rank").text() for c in ("c1", "c0", "c3", "c2")] == ["1", "2", "3", "4"]
    assert cell(queue, "c1", "AUV").text() == "0.950" and cell(queue, "c1", "worst\nclass").text() == "organ"
    assert cell(queue, "c3", "flagged").text() == "" and cell(queue, "c1", "flagged").text() == "yes"
    assert cell(queue, "c3", "case").background().style() == Qt.BrushStyle.NoBrush
    assert cell(queue, "c1", "status").background().color().alpha() > 0
    # the same cells were updated (they moved with their rows), not recreated
    for case_id in ids:
        row = queue.row_of(case_id)
        assert [queue.table.item(row, c) for c in range(len(queue.columns()))] == cells[case_id]
    # the selected case stays selected, and columns still fit their contents
    assert [item.data(CASE_ROLE) for item in queue.table.selectedItems()] == ["c2"] * len(queue.columns())
    assert queue.table.horizontalHeader().sectionResizeMode(0) == QHeaderView.ResizeMode.ResizeToContents

    # a status change shows and filters
    queue.set_status("c0", "accepted")
    assert cell(queue, "c0", "status").text() == "accepted"
    queue.status_filter.setCurrentText("accepted")
    assert queue.visible_case_ids() == ["c0"]
    queue.status_filter.setCurrentText("all")

    # the reviewer's sort order (a header click) is kept by later updates
    queue.table.horizontalHeader().setSortIndicator(queue.columns().index("AUV"), Qt.SortOrder.AscendingOrder)
    assert queue.visible_case_ids() == ["c2", "c3", "c0", "c1"]
    queue.set_cases(ids, ["organ"], score_rows({"c0": 0.5, "c1": 0.95, "c2": 0.6, "c3": 0.3}), {})
    assert queue.visible_case_ids() == ["c3", "c0", "c2", "c1"]

    # another case list rebuilds the table
    queue.set_cases(["c0", "c9"], ["organ"], {}, {})
    assert sorted(queue.visible_case_ids()) == ["c0", "c9"] and queue.table.rowCount() == 2


def test_label_issue_columns_and_worst_class_follow_the_learned_score(queue):
    rows = score_rows({"c0": 0.9, "c1": 0.1})
    rows["c0"].update({"label_issue": 0.05, "label_issue_organ": 0.05, "contradicted": 0.0, "contradicted_organ": 0.0,
                       "rank": 2})
    rows["c1"].update({"label_issue": 0.80, "label_issue_organ": 0.80, "contradicted": 0.125,
                       "contradicted_organ": 0.125, "rank": 1, "flagged": True})
    queue.set_cases(["c0", "c1"], ["organ"], rows, {})
    assert queue.visible_case_ids() == ["c1", "c0"]  # rank follows label issue, not AUV
    assert cell(queue, "c1", "label\nissue").text() == "0.800"
    assert cell(queue, "c1", "contra-\ndicted").text() == "12.5 %"
    assert cell(queue, "c1", "contra-\ndicted\norgan").text() == "12.5 %"
    assert cell(queue, "c0", "AUV").text() == "0.900" and cell(queue, "c0", "AUV\norgan").text() == "0.900"

    from napari_aleatoric.gui.queue import worst_class

    two = {"label_issue_liver": 0.1, "label_issue_tumour": 0.7, "auv_liver": 0.9, "auv_tumour": 0.2}
    assert worst_class(two, ["liver", "tumour"]) == "tumour"  # learned score first
    assert worst_class({"auv_liver": 0.9, "auv_tumour": 0.2}, ["liver", "tumour"]) == "liver"  # AUV without it


def test_a_class_too_rare_or_too_little_drawn_to_judge_says_which_instead_of_a_share(queue):
    """Too rare: no fold learned the class (its label issue is empty too); too little drawn: a few
    pixels in this case (issue 16's fragment fix; its label issue is known). Each cell says which
    and its tooltip why."""
    rows = score_rows({"c0": 0.9, "c1": 0.1, "c2": 0.5})
    rows["c0"].update({"label_issue": 0.5, "contradicted_organ": math.nan, "dice_fm_organ": 0.8, "rank": 1})
    rows["c1"].update({"label_issue": 0.4, "contradicted_organ": 0.25, "label_issue_organ": 0.3,
                       "dice_fm_organ": 0.9, "rank": 2})
    rows["c2"].update({"label_issue": 0.3, "contradicted_organ": math.nan, "label_issue_organ": 0.6,
                       "dice_fm_organ": 0.1, "rank": 3})
    queue.set_cases(["c0", "c1", "c2"], ["organ"], rows, {})
    assert cell(queue, "c0", "contra-\ndicted\norgan").text() == "too rare"
    assert "fewer than 5 cases" in cell(queue, "c0", "contra-\ndicted\norgan").toolTip()
    assert cell(queue, "c1", "contra-\ndicted\norgan").text() == "25.0 %"
    assert not cell(queue, "c1", "contra-\ndicted\norgan").toolTip()
    assert cell(queue, "c2", "contra-\ndicted\norgan").text() == "too little drawn"
    assert "fewer than 20 pixels" in cell(queue, "c2", "contra-\ndicted\norgan").toolTip()


def test_the_flagged_cell_says_why_the_case_is_flagged_and_follows_a_new_score(queue):
    ids = ["c0", "c1"]
    rows = score_rows({"c0": 0.2, "c1": 0.9}, flagged={"c1"})
    rows["c1"]["flag_reason"] = "tumour contradicted 6.2 times its usual share"
    queue.set_cases(ids, ["organ"], rows, {})
    assert cell(queue, "c1", "flagged").toolTip().startswith(
        "flagged because: tumour contradicted 6.2 times its usual share")
    assert "flagged because" not in cell(queue, "c0", "flagged").toolTip()
    rows = score_rows({"c0": 0.2, "c1": 0.9}, flagged={"c1"})
    rows["c1"]["flag_reason"] = "a structure 55 % contradicted"  # re-scored: a new reason, same flag
    queue.set_cases(ids, ["organ"], rows, {})
    assert cell(queue, "c1", "flagged").toolTip().startswith("flagged because: a structure 55 % contradicted")
