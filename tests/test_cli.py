"""The command line as a user runs it: exit codes, messages, files."""

import subprocess
import sys

import pytest

from napari_aleatoric.cli import main


def test_score_prints_queue_and_writes_csv(mni_dataset, capsys):
    assert main(["score", str(mni_dataset), "--model", "tiny", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "20 cases scored" in out and "rank" in out
    assert "flag (*): label issue more than 3 robust standard deviations" in out
    assert (mni_dataset / ".aleatoric" / "scores.csv").is_file()


def test_score_rank_by_auv_orders_the_queue_by_auv_and_says_so(mni_dataset, capsys):
    from napari_aleatoric.pipelines.table import read_scores

    assert main(["score", str(mni_dataset), "--model", "tiny", "--device", "cpu", "--rank-by", "auv"]) == 0
    assert "ranked by auv" in capsys.readouterr().out
    rows = read_scores(mni_dataset / ".aleatoric" / "scores.csv").rows
    assert [r["auv"] for r in rows] == sorted((r["auv"] for r in rows), reverse=True)
    with pytest.raises(SystemExit):
        main(["score", str(mni_dataset), "--rank-by", "alphabetical"])


def test_score_writes_csv_where_asked(mni_dataset, tmp_path):
    target = tmp_path / "out" / "ranked.csv"
    assert main(["score", str(mni_dataset), "--model", "tiny", "--out", str(target)]) == 0
    assert target.is_file() and target.with_suffix(".json").is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["score", "{missing}", "--model", "tiny"], "does_not_exist"),
        (["score", "{dataset}", "--model", "unknown-model"], "unknown model"),
        (["score", "{dataset}", "--model", "sam-vit-b:/nowhere/sam.pth"], "/nowhere/sam.pth"),
        (["score", "{dataset}", "--model", "tiny", "--device", "cuda:7"], "cuda:7"),
    ],
)
def test_bad_input_exits_2_with_reason(mni_dataset, tmp_path, capsys, monkeypatch, arguments, message):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    arguments = [a.format(missing=tmp_path / "does_not_exist", dataset=mni_dataset) for a in arguments]
    assert main(arguments) == 2
    assert message in capsys.readouterr().err


def test_flag_quantile_is_gone(mni_dataset, capsys):
    """The flag follows the calibrated rule (labelquality.flag), not a quantile of the queue."""
    with pytest.raises(SystemExit) as exit_info:
        main(["score", str(mni_dataset), "--flag-quantile", "0.8"])
    assert exit_info.value.code == 2
    assert "--flag-quantile" in capsys.readouterr().err


def test_dataset_with_only_bad_cases_exits_2(mni_dataset, capsys):
    for path in (mni_dataset / "labelsTr").glob("*.png"):
        path.write_bytes(b"not a png")
    assert main(["score", str(mni_dataset), "--model", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "no case could be scored" in err and "mni_000.png" in err


def test_headless_demo_scores_a_working_copy_not_the_bundle(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_ALEATORIC_DATA", str(tmp_path / "home"))
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    completed = subprocess.run([sys.executable, "-m", "napari_aleatoric", "demo", "--model", "tiny"],
                               capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "No display found" in completed.stderr
    assert "20 cases scored" in completed.stdout
    assert (tmp_path / "home" / "Dataset001_MNIBrainSlices" / ".aleatoric" / "scores.csv").is_file()


def test_history_prints_the_status_changes_in_order(tmp_path, capsys):
    from napari_aleatoric.review.store import ReviewStore

    assert main(["history", str(tmp_path)]) == 0
    assert "no review yet" in capsys.readouterr().out
    assert not (tmp_path / ".aleatoric").exists()  # reading the history creates no store
    with ReviewStore.for_dataset(tmp_path) as store:
        store.set_status("case_1", "accepted", "ann")
        revision = store.add_revision("case_2", label_sha256="a" * 64, stored_path="p", user="bob")
        store.set_status("case_1", "unreviewed", "ann")
    assert main(["history", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == [
        "case_1  unreviewed -> accepted  by ann", f"case_2  unreviewed -> corrected  by bob  (revision {revision.id})",
        "case_1  accepted -> unreviewed  by ann"]
    assert main(["history", str(tmp_path), "--case", "case_2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["history", str(tmp_path / "missing")]) == 2
    assert "no such dataset folder" in capsys.readouterr().err


def test_the_printed_queue_lists_classes_too_rare_and_too_little_drawn_separately():
    """Issue 16: a class no fold learned and a class drawn with a few pixels both lack a share; the
    printed queue says which is which and why, naming the cases."""
    import io
    import math
    from types import SimpleNamespace

    from napari_aleatoric.cli import print_queue

    def row(case_id, rank, contradicted, label_issue_cyst):
        return {"case_id": case_id, "rank": rank, "label_issue": 0.5, "contradicted": 0.1, "auv": 0.5,
                "flagged": False, "fm_disagreement": 0.2, "dice_fm_cyst": 0.7, "contradicted_cyst": contradicted,
                "label_issue_cyst": label_issue_cyst}

    rows = [row("rare_case", 1, math.nan, math.nan), row("tip_case", 2, math.nan, 0.4), row("fine_case", 3, 0.2, 0.1)]
    table = SimpleNamespace(rows=rows, ranking="label issue", flag_rule="a rule", columns=list(rows[0]))
    out = io.StringIO()
    print_queue(SimpleNamespace(table=table, skipped=[], csv_path="s.csv", summary_path="s.json"), stream=out)
    lines = out.getvalue().splitlines()
    rare = next(line for line in lines if line.startswith("too rare to judge"))
    little = next(line for line in lines if line.startswith("too little drawn to judge"))
    assert "rare_case: cyst" in rare and "tip_case" not in rare and "fewer than 5 cases" in rare
    assert "tip_case: cyst" in little and "rare_case" not in little and "fewer than 20 pixels" in little
    assert "fine_case" not in rare + little


def test_the_printed_queue_shows_the_worst_structure_and_outline_of_a_volume_and_leaves_them_blank_for_a_slice():
    import io
    import math
    from types import SimpleNamespace

    from napari_aleatoric.cli import print_queue

    rows = [{"case_id": case_id, "rank": rank, "label_issue": 0.5, "contradicted": 0.1, "worst_structure": structure,
             "worst_outline": outline, "auv": 0.5, "flagged": False, "fm_disagreement": 0.2}
            for case_id, rank, structure, outline in (("blob_volume", 1, 0.97, 0.83), ("a_slice", 2, math.nan, math.nan))]
    table = SimpleNamespace(rows=rows, ranking="issue rank", flag_rule="a rule", columns=list(rows[0]))
    out = io.StringIO()
    print_queue(SimpleNamespace(table=table, skipped=[], csv_path="s.csv", summary_path="s.json"), stream=out)
    lines = out.getvalue().splitlines()
    assert "worst structure" in lines[1] and "worst outline" in lines[1]
    volume, section = (next(line for line in lines if case_id in line) for case_id in ("blob_volume", "a_slice"))
    assert "97 %" in volume and "83 %" in volume and "%" not in section.split("10.0 %")[1]


def test_the_printed_queue_says_why_each_flagged_case_is_flagged():
    import io
    from types import SimpleNamespace

    from napari_aleatoric.cli import print_queue

    rows = [{"case_id": case_id, "rank": rank, "label_issue": 0.5, "contradicted": 0.1, "auv": 0.5,
             "flagged": bool(reason), "flag_reason": reason, "fm_disagreement": 0.2}
            for case_id, rank, reason in (("blob_case", 1, "a structure 55 % contradicted"), ("quiet_case", 2, ""))]
    table = SimpleNamespace(rows=rows, ranking="issue rank", flag_rule="a rule", columns=list(rows[0]))
    out = io.StringIO()
    print_queue(SimpleNamespace(table=table, skipped=[], csv_path="s.csv", summary_path="s.json"), stream=out)
    assert "  * blob_case: a structure 55 % contradicted" in out.getvalue().splitlines()
    assert not any(line.startswith("  * quiet_case") for line in out.getvalue().splitlines())
