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
    assert {"random", "auv_sigma2_raw", "auv_sigma_masknorm", "fm_disagreement", "cleanlab_softmin"} <= names
    for name, ev in results["datasets"].items():
        assert ev["info"]["corrupted_per_replicate"][0] >= 1
        for method, entry in ev["methods"].items():
            summary = entry["same_cases"]["all"]
            assert summary["positives"] >= 1
            assert math.isnan(summary["auroc"]) or 0.0 <= summary["auroc"] <= 1.0, (name, method)
        for heat in ev["heatmaps"].values():
            assert heat["n"] >= 1 and 0.0 <= heat["mean"] <= 1.0
        assert (out / "data" / name / "benchmark.json").is_file()
        for rec in ev["info"]["corruptions"]:
            assert (out / "data" / name / "errors" / f"{rec['variant']}.npz").is_file()
    for plot in results["plots"]:
        assert Path(plot).is_file() and Path(plot).stat().st_size > 1000
    assert (out / "summary.md").read_text().count("|") > 20
