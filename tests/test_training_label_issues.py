"""Label-issue-guided training: the weights, the filter, reviewed cases, no validation labels (tiny data, CPU)."""

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import make_tiny_dataset
from monai.losses import DiceLoss

from napari_aleatoric.cli import main
from napari_aleatoric.data.dataset import load_case, open_dataset
from napari_aleatoric.data.errors import DatasetError
from napari_aleatoric.data.medio import write_label
from napari_aleatoric.labelquality.scores import issue_maps
from napari_aleatoric.pipelines.scoring import score_dataset
from napari_aleatoric.review.store import ReviewStore
from napari_aleatoric.training import (LabelIssuePlan, PreparingLabelIssues, TrainingFinished, TrainingStarted,
                                       TrainSettings, plan_label_issues, train, with_strategy)
from napari_aleatoric.training import label_issues as label_issues_module
from napari_aleatoric.training import loop as loop_module
from napari_aleatoric.training.data import split_cases
from napari_aleatoric.training.duo import segmentation_loss, weighted_dice_loss
from napari_aleatoric.training.label_issues import annotation_trust, drawn_only, loss_weights

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = TrainSettings(epochs=1, width=4, depth=3, batch_size=2, lr=3e-3, device="cpu", val_fraction=0.25)
CORRUPTED = "c02"  # a training case (checked below) whose disc is annotated as the square's class


@pytest.fixture
def scored(tmp_path):
    """The tiny dataset with one training case's disc drawn as a square (class 2), scored with the tiny model."""
    root = make_tiny_dataset(tmp_path / "tiny", cases=8)
    train_ids, _ = split_cases([f"c{i:02d}" for i in range(8)], 0.25)
    assert CORRUPTED in train_ids
    ds = open_dataset(root)
    case = load_case(ds, ds.case(CORRUPTED))
    label = case.label.copy()
    label[label == 1] = 2
    write_label(ds.case(CORRUPTED).label_path, label, None)
    list(score_dataset(root, "tiny", device="cpu"))
    return root


def plan_of(root, settings, **kwargs) -> LabelIssuePlan:
    ds = open_dataset(root)
    train_ids, _ = split_cases([r.case_id for r in ds.cases], settings.val_fraction)
    events = list(plan_label_issues(ds, train_ids, settings, **kwargs))
    assert isinstance(events[-1], LabelIssuePlan)
    assert all(isinstance(e, PreparingLabelIssues) for e in events[:-1])
    return events[-1]


def channel_index(ds, case_id):
    label = load_case(ds, ds.case(case_id)).label
    index = np.zeros(label.shape, np.uint8)
    for channel, value in enumerate(ds.foreground.values(), 1):
        index[label == value] = channel
    return index


# ------------------------------------------------------------------------------- the formulas

def test_trust_is_the_probability_of_the_annotated_class():
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(3), size=(1, 6, 7)).transpose(3, 0, 1, 2)  # (K, D, H, W)
    index = rng.integers(0, 3, size=(1, 6, 7))
    trust = annotation_trust(issue_maps(q, index).astype(np.float16), index)
    expected = np.take_along_axis(q, index[None], axis=0)[0]
    np.testing.assert_allclose(trust, expected, atol=2e-3)  # float16 storage


def test_annotated_background_is_never_doubted():
    weights = np.array([[[0.0, 0.3, 1.0]]], np.float32)
    index = np.array([[[0, 1, 2]]])
    np.testing.assert_allclose(drawn_only(weights, index), [[[1.0, 0.3, 1.0]]])


def test_a_contradicted_pixel_weighs_less_and_a_trusted_one_fully():
    weights = loss_weights(np.array([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]), threshold=0.5, floor=0.0)
    np.testing.assert_allclose(weights, [0.0, 0.2, 0.5, 1.0, 1.0, 1.0])
    frozen = loss_weights(np.array([0.2, 0.45, 0.475, 0.5, 0.7]))  # the shipped floor 0.45 and threshold 0.5
    np.testing.assert_allclose(frozen, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)


def test_weighted_dice_with_unit_weights_is_monais_soft_dice():
    torch.manual_seed(0)
    p = torch.rand(2, 3, 8, 8)
    t = (torch.rand(2, 3, 8, 8) > 0.5).float()
    monai = DiceLoss(include_background=True, reduction="none", soft_label=True, smooth_nr=1e-5, smooth_dr=1e-5)
    torch.testing.assert_close(weighted_dice_loss(p, t, torch.ones(2, 1, 8, 8)), monai(p, t).reshape(2, 3))


def test_a_weight_zero_pixel_teaches_nothing():
    torch.manual_seed(1)
    logits = torch.randn(1, 3, 8, 8, requires_grad=True)
    targets = torch.zeros(1, 2, 8, 8)
    targets[:, 0, :4] = 1
    weights = torch.ones(1, 1, 8, 8)
    weights[..., 0, 0] = 0.0
    log_p = torch.log_softmax(logits, 1)[:, 1:]
    log_1mp = torch.log1p(-log_p.exp().clamp(max=1 - 1e-6))
    segmentation_loss(log_p, log_1mp, targets, 0.5, pixel_weights=weights).sum().backward()
    assert logits.grad[..., 0, 0].abs().max() == 0
    assert logits.grad[..., 1, 1].abs().max() > 0


# ------------------------------------------------------------------------------- the plan

def test_the_mislabelled_disc_is_down_weighted_and_clean_pixels_keep_weight_one(scored):
    plan = plan_of(scored, with_strategy(TINY, "issue-weight"))
    ds = open_dataset(scored)
    weights = plan.guidance(CORRUPTED, channel_index(ds, CORRUPTED))
    wrong = np.zeros_like(weights, bool)
    original = load_case(ds, ds.case(CORRUPTED)).image > 180  # the bright disc the annotation calls a square
    wrong[original] = True
    assert weights[wrong].mean() < 0.5 < weights[~wrong].mean()
    others = [c for c in plan.cases if c != CORRUPTED]
    assert plan.cases[CORRUPTED].weight_lost > max(plan.cases[c].weight_lost for c in others)
    # the filter's criterion: the share of the annotated foreground the model contradicts
    assert plan.cases[CORRUPTED].contradicted > max(plan.cases[c].contradicted for c in others)


def test_reviewed_cases_keep_full_weight_and_are_never_filtered(scored):
    plan = plan_of(scored, with_strategy(TINY, "issue-filter+relabel"), statuses={CORRUPTED: "corrected"})
    ds = open_dataset(scored)
    assert plan.guidance(CORRUPTED, channel_index(ds, CORRUPTED)) is None  # plain one-hot target, weight 1
    assert plan.cases[CORRUPTED].reviewed and not plan.cases[CORRUPTED].left_out
    assert plan.cases[CORRUPTED].weight_lost == 0.0
    unreviewed = plan_of(scored, with_strategy(TINY, "issue-filter+relabel"))
    assert CORRUPTED in unreviewed.left_out  # the same case, unreviewed, is the one the filter drops


def test_the_weights_never_read_validation_labels(scored, monkeypatch):
    ds = open_dataset(scored)
    _, val_ids = split_cases([r.case_id for r in ds.cases], 0.25)
    read = []
    original = label_issues_module.load_case
    monkeypatch.setattr(label_issues_module, "load_case", lambda d, ref: read.append(ref.case_id) or original(d, ref))
    before = plan_of(scored, with_strategy(TINY, "issue-weight"))
    assert read and not set(read) & set(val_ids)
    # rewriting the validation labels does not change any training weight (fresh pass, no cache)
    for case_id in val_ids:
        write_label(ds.case(case_id).label_path, np.zeros_like(load_case(ds, ds.case(case_id)).label), None)
    shutil.rmtree(scored / ".aleatoric" / "cache" / "quality-training")
    after = plan_of(scored, with_strategy(TINY, "issue-weight"))
    for case_id in before.cases:
        np.testing.assert_array_equal(before.guidance(case_id, channel_index(ds, case_id)),
                                      after.guidance(case_id, channel_index(ds, case_id)))


# ------------------------------------------------------------------------------- training

def test_the_mislabelled_disc_is_relabelled_towards_the_learned_class(scored):
    plan = plan_of(scored, with_strategy(TINY, "issue-relabel"))
    ds = open_dataset(scored)
    weights, soft = plan.guidance(CORRUPTED, channel_index(ds, CORRUPTED))
    assert soft.shape == (2,) + channel_index(ds, CORRUPTED).shape and (weights is None or weights.shape == soft.shape[1:])
    disc = load_case(ds, ds.case(CORRUPTED)).image > 180  # annotated square, really the disc
    index = channel_index(ds, CORRUPTED)
    assert soft[0][disc].mean() > 0.5  # the target moved towards "disc" where the annotation lost it
    trusted = plan.case_weights(CORRUPTED) == 1.0
    np.testing.assert_array_equal(soft[:, trusted], (index[None] == np.array([1, 2]).reshape(2, 1, 1))[:, trusted])


def test_relabelling_only_where_the_model_is_sure_and_down_weighting_elsewhere(scored, monkeypatch):
    ds = open_dataset(scored)
    index = channel_index(ds, CORRUPTED)
    onehot = (index[None] == np.array([1, 2]).reshape(2, 1, 1)).astype(np.float32)
    weight_plan = plan_of(scored, with_strategy(TINY, "issue-weight"))
    down_weights = weight_plan.guidance(CORRUPTED, index)
    plan = plan_of(scored, with_strategy(TINY, "issue-relabel"))
    plan.relabel_confidence = 1.01  # never sure: relabel = weight
    weights, soft = plan.guidance(CORRUPTED, index)
    np.testing.assert_array_equal(weights, down_weights)
    np.testing.assert_array_equal(soft, onehot)
    plan.relabel_confidence = 1e-6  # always sure: every contradicted pixel moves
    weights, soft = plan.guidance(CORRUPTED, index)
    assert (weights == 1.0).all() and not np.array_equal(soft, onehot)
    plan.relabel_confidence = 0.8
    weights, soft = plan.guidance(CORRUPTED, index)
    maps = plan._issue_maps(CORRUPTED)
    sure = label_issues_module.class_probabilities(maps, index[None]).max(axis=0)[0] >= 0.8
    moved = (soft != onehot).any(axis=0)
    assert moved.any() and not moved[~sure].any()  # targets move only where the model is sure
    np.testing.assert_array_equal(weights[~sure], down_weights[~sure])
    assert (weights[sure] == 1.0).all()


def test_the_default_on_a_scored_dataset_relabels_where_sure_and_down_weights_the_rest(scored, monkeypatch):
    seen = []
    original = loop_module.duo_loss
    monkeypatch.setattr(loop_module, "duo_loss",
                        lambda *a, **k: seen.append((a[2], k["pixel_weights"])) or original(*a, **k))
    events = list(train(scored, TINY))
    started = next(e for e in events if isinstance(e, TrainingStarted))
    assert "relabels" in started.label_issues and not started.left_out
    assert any(((y > 0) & (y < 1)).any() for y, _ in seen)  # soft targets where the model is sure
    assert any(w is not None and float(w.min()) < 1.0 for _, w in seen)  # lower weights where it is not
    cases = json.loads((started.run_dir / "cases.json").read_text())
    assert cases["label_issues"]["mode"] == "relabel" and cases["label_issues"]["filtering"] is False
    assert cases["label_issues"]["relabel_confidence"] in label_issues_module.RELABEL_CONFIDENCES


def test_relabelling_puts_soft_targets_into_the_loss(scored, monkeypatch):
    seen = []
    original = loop_module.duo_loss
    monkeypatch.setattr(loop_module, "duo_loss", lambda *a, **k: seen.append(a[2]) or original(*a, **k))
    events = list(train(scored, with_strategy(TINY, "issue-relabel")))
    assert any(((y > 0) & (y < 1)).any() for y in seen)  # soft targets reached the loss
    started = next(e for e in events if isinstance(e, TrainingStarted))
    assert "relabels" in started.label_issues


def test_training_uses_the_weights_and_records_them(scored, monkeypatch):
    seen = []
    original = loop_module.duo_loss
    monkeypatch.setattr(loop_module, "duo_loss", lambda *a, **k: seen.append(k["pixel_weights"]) or original(*a, **k))
    events = list(train(scored, with_strategy(TINY, "issue-weight")))
    assert any(isinstance(e, PreparingLabelIssues) for e in events)
    started = next(e for e in events if isinstance(e, TrainingStarted))
    assert "down-weights" in started.label_issues
    assert isinstance(events[-1], TrainingFinished)
    assert any(w is not None and float(w.min()) < 1.0 for w in seen)
    cases = json.loads((started.run_dir / "cases.json").read_text())
    assert cases["label_issues"]["weighting"] is True
    assert cases["label_issues"]["cases"][CORRUPTED]["down_weighted"] > 0
    assert set(cases["label_issues"]["cases"]) == set(started.train_cases)  # never a validation case


def test_issue_filtering_leaves_out_the_worst_case(scored):
    events = list(train(scored, with_strategy(TINY, "issue-filter")))
    started = next(e for e in events if isinstance(e, TrainingStarted))
    assert CORRUPTED not in started.train_cases and "contradicted share" in started.left_out[CORRUPTED]


def test_plain_strategy_passes_no_weights(scored, monkeypatch):
    seen = []
    original = loop_module.duo_loss
    monkeypatch.setattr(loop_module, "duo_loss", lambda *a, **k: seen.append(k["pixel_weights"]) or original(*a, **k))
    events = list(train(scored, with_strategy(TINY, "plain")))
    assert seen and all(w is None for w in seen)
    assert not any(isinstance(e, PreparingLabelIssues) for e in events)


def test_unscored_dataset_trains_plainly_by_default_and_says_so(tiny):
    events = list(train(tiny, TINY))
    started = next(e for e in events if isinstance(e, TrainingStarted))
    assert "napari-aleatoric score" in started.label_issues and isinstance(events[-1], TrainingFinished)


def test_an_explicit_issue_strategy_on_an_unscored_dataset_names_the_command(tiny, capsys):
    with pytest.raises(DatasetError, match="napari-aleatoric score"):
        next(train(tiny, with_strategy(TINY, "issue-weight")))
    assert main(["train", str(tiny), "--strategy", "issue-filter", "--epochs", "1"]) == 2
    assert "napari-aleatoric score" in capsys.readouterr().err
    assert not (tiny / ".aleatoric" / "models").exists() or not any((tiny / ".aleatoric" / "models").iterdir())


def test_cli_default_on_an_unscored_dataset_trains_and_says_scoring_helps(tiny, capsys):
    assert main(["train", str(tiny), "--epochs", "1", "--width", "4", "--depth", "3", "--batch-size", "2",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "trained without label-issue weights" in out and "napari-aleatoric score" in out


def test_cli_strategy_runs_and_reports_the_gain_over_the_previous_run(scored, capsys):
    common = ["--epochs", "1", "--width", "4", "--depth", "3", "--batch-size", "2", "--device", "cpu",
              "--val-fraction", "0.25"]
    assert main(["train", str(scored), "--strategy", "plain", "--name", "first", *common]) == 0
    assert main(["train", str(scored), "--strategy", "issue-weight", "--name", "second", *common]) == 0
    out = capsys.readouterr().out
    assert "strategy issue-weight" in out and "label issues: down-weights" in out
    assert "the previous run on the same validation cases, first" in out


def test_resume_with_weights_ends_with_the_weights_of_an_uninterrupted_run(scored, tmp_path):
    settings = with_strategy(TrainSettings(epochs=2, width=4, depth=3, batch_size=2, lr=3e-3, device="cpu",
                                           val_fraction=0.25), "issue-weight")
    list(train(scored, settings, run_dir=tmp_path / "whole"))
    events = train(scored, settings, run_dir=tmp_path / "parts")
    for event in events:
        if getattr(event, "epoch", 0) == 1 and type(event).__name__ == "StepDone" and event.step == 1:
            break
    events.close()
    list(train(scored, settings, run_dir=tmp_path / "parts", resume=True))
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    parts = torch.load(tmp_path / "parts" / "last.pt", weights_only=True)["model"]
    for key in whole:
        torch.testing.assert_close(whole[key], parts[key], rtol=0, atol=0)


def test_review_store_statuses_reach_the_run(scored):
    store = ReviewStore.for_dataset(scored)
    try:
        store.set_status(CORRUPTED, "accepted", "tester")
    finally:
        store.close()
    events = list(train(scored, with_strategy(TINY, "issue-weight")))
    started = next(e for e in events if isinstance(e, TrainingStarted))
    cases = json.loads((started.run_dir / "cases.json").read_text())["label_issues"]
    assert cases["reviewed"] == [CORRUPTED] and cases["cases"][CORRUPTED]["weight_lost"] == 0.0


def test_stop_during_the_label_issue_pass_leaves_no_run_behind(scored, tmp_path):
    calls = []
    events = list(train(scored, with_strategy(TINY, "issue-relabel"), run_dir=scored / ".aleatoric" / "models" / "x",
                        should_stop=lambda: calls.append(1) or len(calls) > 2))
    assert events and all(isinstance(e, PreparingLabelIssues) for e in events)
    assert not (scored / ".aleatoric" / "models" / "x").exists()


# ------------------------------------------------------------------ the relabel confidence

def _counts(drawn: int, contradicted: int, sure: tuple[int, int, int]) -> np.ndarray:
    return np.array([drawn, contradicted, *sure], np.int64)


def test_confident_contradictions_count_drawn_pixels_the_model_contradicts_by_how_sure_it_is():
    index = np.array([[[0, 1, 1, 2, 2]]])  # (1, 1, 5): background, two class-1 and two class-2 pixels
    probabilities = np.array([[[[0.1, 0.35, 0.9, 0.05, 0.3]]],     # background
                              [[[0.1, 0.65, 0.05, 0.25, 0.05]]],   # class 1
                              [[[0.8, 0.0, 0.05, 0.7, 0.65]]]])    # class 2
    counts = label_issues_module.confident_contradictions(probabilities, index)
    # drawn 4; contradicted: pixel 2 (q_1 = 0.05, sure 0.9 of background); pixel 4 is class 2 at 0.65: not contradicted
    assert counts.tolist() == [4, 1, 1, 1, 1]
    probabilities[0, 0, 0, 2], probabilities[1, 0, 0, 2] = 0.65, 0.3  # now only 0.65 sure (class 1 still 0.3 < 0.5)
    assert label_issues_module.confident_contradictions(probabilities, index).tolist() == [4, 1, 1, 0, 0]


def test_contradictions_concentrated_in_a_few_cases_lower_the_relabel_confidence():
    # Twelve cases of 1000 drawn pixels: nine the model hardly contradicts, three with big errors.
    clean = {f"c{i}": _counts(1000, 5, (4, 2, 1)) for i in range(9)}
    wrong = {f"w{i}": _counts(1000, 300, (200, 150, 100)) for i in range(3)}
    confidence, precision = label_issues_module.choose_relabel_confidence({**clean, **wrong})
    assert confidence == label_issues_module.RELABEL_CONFIDENCES[0] and precision > 0.9


def test_contradictions_spread_over_every_case_keep_the_highest_relabel_confidence():
    # The same number of confident contradictions, spread evenly: they look like the model's own noise.
    spread = {f"c{i}": _counts(1000, 80, (60, 40, 25)) for i in range(12)}
    confidence, precision = label_issues_module.choose_relabel_confidence(spread)
    assert confidence == label_issues_module.RELABEL_CONFIDENCES[-1] and precision < 0.1
    few = {f"c{i}": _counts(1000, 300, (200, 150, 100)) for i in range(3)}
    assert label_issues_module.choose_relabel_confidence(few)[0] == label_issues_module.RELABEL_CONFIDENCES[-1]
    assert np.isnan(label_issues_module.choose_relabel_confidence(few)[1])


def test_the_run_records_the_relabel_confidence_it_chose_and_uses_it(scored, monkeypatch):
    plan = plan_of(scored, with_strategy(TINY, "issue-relabel"))
    assert plan.relabel_confidence in label_issues_module.RELABEL_CONFIDENCES
    assert plan.summary()["relabel_confidence"] == plan.relabel_confidence
    monkeypatch.setattr(label_issues_module, "RELABEL_CONFIDENCE", 0.95)  # a fixed confidence overrides the choice
    assert plan_of(scored, with_strategy(TINY, "issue-relabel")).relabel_confidence == 0.95
