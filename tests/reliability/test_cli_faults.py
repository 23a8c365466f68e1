"""Issue 13 on the command line: bad input and operating-system faults end with exit 2 and one
``error: ...`` line naming the path and the cause, never a Python traceback, and nothing the user
did not name is written."""

from __future__ import annotations

import json

import pytest
from helpers import make_tiny_dataset

from conftest import tree_digest
from napari_aleatoric.cli import main


def run(capsys, *arguments) -> tuple[int, str]:
    """``napari-aleatoric *arguments`` in this process: (exit status, stderr)."""
    status = main([str(a) for a in arguments])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


@pytest.fixture
def tiny_ds(tmp_path):
    return make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=6)


# -- defect 2: score --out never replaces a dataset file ------------------------------------------


@pytest.mark.parametrize("target", ["dataset.csv", "labelsTr/c00.png", "labelsTr/c00.csv", "imagesTr/x.csv",
                                    ".aleatoric/originals/x.csv", ".aleatoric/review.sqlite"])
def test_score_out_inside_the_dataset_is_refused(capsys, tiny_ds, target):
    before = tree_digest(tiny_ds)
    status, err = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu", "--out", tiny_ds / target)
    assert status == 2 and err.startswith("error: ") and target.split("/")[-1] in err, err
    assert tree_digest(tiny_ds) == before
    assert not (tiny_ds / target).exists() or target.endswith(".png")
    assert not (tiny_ds / ".aleatoric" / "scores.csv").exists()  # refused before any scoring


def test_score_out_never_replaces_a_file_the_user_did_not_name(capsys, tiny_ds, tmp_path):
    notes = tmp_path / "results" / "notes.json"
    notes.parent.mkdir()
    notes.write_text('{"mine": 1}')
    status, err = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu", "--out", notes.with_suffix(".csv"))
    assert status == 2 and "notes.json" in err and "not a scoring summary" in err
    assert notes.read_text() == '{"mine": 1}' and not notes.with_suffix(".csv").exists()


def test_score_out_under_the_state_folder_is_allowed(capsys, tiny_ds):
    target = tiny_ds / ".aleatoric" / "custom.csv"
    status, _ = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu", "--out", target)
    assert status == 0 and target.is_file()
    assert json.loads(target.with_suffix(".json").read_text())["scored"] == 6
    # a second run replaces its own summary
    assert run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu", "--out", target)[0] == 0
