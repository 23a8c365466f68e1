"""benchmarks/noisy_training/strategies.py: the oracle control and the simulated reviewer's folders
(tiny preset, the tiny model; no training)."""

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.noisy_training import data, strategies  # noqa: E402
from napari_aleatoric.data.dataset import load_case, open_dataset  # noqa: E402
from napari_aleatoric.pipelines.scoring import score_dataset  # noqa: E402
from napari_aleatoric.review.store import ReviewStore  # noqa: E402
from napari_aleatoric.training import TrainSettings  # noqa: E402
from napari_aleatoric.training.data import select_cases  # noqa: E402


def built(tmp_path) -> Path:
    root = data.build(tmp_path / "d", "mni", 5, preset="tiny", frac=0.6, log=lambda *_: None)
    list(score_dataset(root / "noisy", "tiny", device="cpu"))
    return root


def test_the_oracle_drops_exactly_the_corrupted_training_cases(tmp_path):
    root = built(tmp_path)
    truth = strategies.truth(root)
    csv, keep = strategies.oracle_scores(root, tmp_path / "work")
    selection = select_cases(open_dataset(root / "noisy"), TrainSettings(keep=keep), csv)
    assert sorted(selection.left_out) == sorted(truth["corrupted"])
    assert set(selection.train) == set(truth["train"]) - set(truth["corrupted"])


def test_the_reviewed_folder_has_the_clean_labels_and_statuses_of_the_reviewed_cases(tmp_path):
    root = built(tmp_path)
    truth = strategies.truth(root)
    corrupted = sorted(truth["corrupted"])
    clean_train = sorted(set(truth["train"]) - set(corrupted))
    reviewed = [corrupted[0], clean_train[0]]
    folder = strategies.reviewed_folder(root, tmp_path / "work", reviewed, "r")
    ds, noisy, clean = (open_dataset(p) for p in (folder, root / "noisy", root / "clean"))
    for case in truth["train"]:
        label = load_case(ds, ds.case(case)).label
        expected = clean if case in reviewed else noisy
        np.testing.assert_array_equal(label, load_case(expected, expected.case(case)).label)
    store = ReviewStore.for_dataset(folder)
    try:
        assert store.statuses() == {corrupted[0]: "corrected", clean_train[0]: "accepted"}
    finally:
        store.close()
    assert json.loads((folder / ".aleatoric" / "scores.json").read_text())  # scored: label issues usable
    # the order a reviewer follows: every training case once; AUV order by decreasing AUV
    from napari_aleatoric.pipelines.table import ranked, read_scores

    rows = {r["case_id"]: r for r in ranked(read_scores(root / "noisy" / ".aleatoric" / "scores.csv")).rows}
    for order_name, column in (("auv", "auv"), ("queue", "issue_rank"), ("label-issue", "label_issue"),
                               ("contradicted", "contradicted")):
        order = strategies.review_order(root, order_name, 0)
        assert sorted(order) == sorted(truth["train"])
        values = [rows[c][column] for c in order]
        assert values == sorted(values, reverse=True), order_name
    assert strategies.review_order(root, "random", 0) != strategies.review_order(root, "random", 1)
