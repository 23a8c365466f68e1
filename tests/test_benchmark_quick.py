"""Keeps benchmarks/run_all.py working: the quick label-error benchmark on the tiny model.

The numbers of the tiny (random) model mean nothing; this only checks that the datasets are built,
scored, evaluated and plotted, and that the results file has the documented structure.
"""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run_all_module():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCHMARKS / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metrics_match_hand_computed_values():
    sys.path.insert(0, str(BENCHMARKS))
    from labelnoise import metrics

    y = np.array([1, 0, 1, 0, 0], bool)
    s = np.array([0.9, 0.8, 0.7, 0.1, np.nan])
    assert metrics.auroc(s, y) == pytest.approx(5 / 6)
    assert metrics.average_precision(s, y) == pytest.approx((1 + 2 / 3) / 2)
    assert metrics.precision_at(s, y, 0.1) == 1.0
    assert metrics.pooled_auroc([(s, y), (-s, y)]) == pytest.approx((5 + 3) / 12)  # NaN ranks last in both


def test_corruptions_are_reproducible_and_masked():
    sys.path.insert(0, str(BENCHMARKS))
    from labelnoise import corruptions as cor

    yy, xx = np.mgrid[:64, :64]
    radius = np.hypot(yy - 32, xx - 32)
    label = np.where(radius <= 16, 1, 0).astype(np.uint8)
    label[radius <= 6] = 2
    records = [
        {"kind": "erosion", "class_value": 1, "params": {"radius": 2, "fill": 0}},
        {"kind": "dilation", "class_value": 2, "params": {"radius": 3, "into": [1]}},
        {"kind": "boundary_shift", "class_value": 1, "params": {"offset": [3, -2], "fill": 0}},
        {"kind": "missing_structure", "class_value": 2, "params": {"seeds": [[32, 32]], "radius": None, "fill": 1}},
        {"kind": "spurious_blob", "class_value": 2, "params": {"centres": [[5, 5]], "radii": [[3, 3]], "into": [0]}},
        {"kind": "class_swap", "class_value": 1, "params": {"other": 2, "center": [32, 23], "radius": 6}},
        {"kind": "coarse_polygon", "class_value": 1, "params": {"tolerance": 4, "fill": 0}},
    ]
    assert {r["kind"] for r in records} == set(cor.KINDS)
    for record in records:
        corrupted = cor.apply_corruption(label, record)
        again = cor.apply_corruption(label, record)
        errors = cor.class_error_masks(label, corrupted, [1, 2])
        assert np.array_equal(corrupted, again)
        assert errors.any(axis=0).sum() == (corrupted != label).sum() > 0, record["kind"]


def test_quick_benchmark_runs_on_tiny_model(tmp_path):
    run_all = _run_all_module()
    out = tmp_path / "bench"
    assert run_all.main(["--quick", "--model", "tiny", "--out", str(out), "--replicates", "1",
                         "--bootstrap", "20"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["command"]["model"] == "tiny"
    assert results["datasets"], results.get("skipped_datasets")
    names = {m["name"] for m in results["methods"]}
    assert {"random", "auv_sigma2_raw", "auv_sigma_masknorm", "fm_disagreement", "cleanlab_softmin",
            "learned_contradicted", "learned_softmin"} <= names
    for name, ev in results["datasets"].items():
        assert ev["info"]["corrupted_per_replicate"][0] >= 1
        for method, entry in ev["methods"].items():
            summary = entry["same_cases"]["all"]
            assert summary["positives"] >= 1
            assert math.isnan(summary["auroc"]) or 0.0 <= summary["auroc"] <= 1.0, (name, method)
        for heat in ev["heatmaps"].values():
            assert heat["n"] >= 1 and 0.0 <= heat["mean"] <= 1.0
        assert (out / "data" / name / "benchmark.json").is_file()
        kinds = {rec["kind"] for rec in ev["info"]["corruptions"]}  # the app's maps for the examples figure
        assert len(list((out / "work" / "examples" / name).glob("*.npy"))) == len(kinds)
        for rec in ev["info"]["corruptions"]:
            assert (out / "data" / name / "errors" / f"{rec['variant']}.npz").is_file()
    for name in ("mni", "nuclei"):  # the difficulty stage: every clean case gets an out-of-fold Dice
        if name not in results["datasets"]:
            continue
        difficulty = results["datasets"][name]["difficulty"]
        clean = json.loads((out / "data" / name / "benchmark.json").read_text())["cases"]
        assert sorted(difficulty["cases"]) == sorted(clean)
        assert all(0.0 <= c["dice"] <= 1.0 for c in difficulty["cases"].values() if not math.isnan(c["dice"]))
        assert set(difficulty["correlations"]) == {"auv_sigma2", "auv_sigma", "fm_disagreement", "boundary_share"}
        assert all(c["n"] >= 3 for c in difficulty["correlations"].values())
    assert "Difficulty" in (out / "summary.md").read_text()
    for plot in results["plots"]:
        assert Path(plot).is_file() and Path(plot).stat().st_size > 1000
    assert (out / "summary.md").read_text().count("|") > 20


def test_difficulty_helpers_match_hand_computed_values():
    sys.path.insert(0, str(BENCHMARKS))
    from labelnoise import difficulty

    folds = difficulty.fold_of_cases([f"c{i}" for i in range(10)], 4, seed=3)
    assert sorted(np.bincount(list(folds.values()))) == [2, 2, 3, 3]
    assert folds == difficulty.fold_of_cases([f"c{i}" for i in reversed(range(10))], 4, seed=3)
    with pytest.raises(ValueError):
        difficulty.fold_of_cases(["a", "b"], 3, seed=0)

    truth = np.array([[1, 1, 0, 0], [2, 2, 0, 0]])
    prediction = np.array([[1, 0, 0, 0], [2, 2, 2, 2]])
    dice = difficulty.dice_per_class(prediction, truth, [1, 2, 3])
    assert dice[:2] == pytest.approx([2 * 1 / 3, 2 * 2 / 6]) and math.isnan(dice[2])

    square = np.zeros((10, 10), np.uint8)
    square[2:6, 2:6] = 1  # 16 pixels, 12 of them on the outline
    assert difficulty.boundary_share(square) == pytest.approx(12 / 16)
    assert math.isnan(difficulty.boundary_share(np.zeros((4, 4), np.uint8)))

    x = np.arange(20, dtype=float)
    perfect = difficulty.correlation(x, x ** 3, n_boot=50)
    assert perfect["spearman"] == pytest.approx(1.0) and 0.8 < perfect["pearson"] < 1.0
    assert perfect["spearman_ci"] == pytest.approx([1.0, 1.0])
    reverse = difficulty.correlation(x, -x, n_boot=0)
    assert reverse["pearson"] == pytest.approx(-1.0) and reverse["spearman"] == pytest.approx(-1.0)
    with_nan = difficulty.correlation(np.r_[x, np.nan], np.r_[x, 1.0], n_boot=0)
    assert with_nan["n"] == 20
