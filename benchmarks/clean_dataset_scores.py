"""What "flagged" means on a dataset with no wrong annotation: the learned label-issue scores of the
benchmark's clean cases alone (no corrupted case in the cross-validation), next to the scores of
the corrupted cases in the corrupted replicates; per clean case its ``label_issue`` (``clean_scores``) and
``contradicted`` share (``clean_contradicted``), the share of each class's drawn pixels contradicted
(``clean_contradicted_per_class``, one list per case in ``class_names`` order, NaN = class not drawn)
and its largest, the worst class's share (``clean_class_max``), which ``flag_rule_choice.py`` reads,
the largest contradicted share over its structures (``clean_structure``; ``flag_rule_round6.py``)
and over their outlines (``clean_outline``; ``flag_rule_round7.py``).

Needs a finished ``benchmarks/run_all.py`` output folder (its data, caches and results.json)::

    python benchmarks/clean_dataset_scores.py --out /tmp/bq3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labelnoise import datasets as D  # noqa: E402
from labelnoise.methods import Context, learned_candidates  # noqa: E402

from napari_aleatoric.data.dataset import open_dataset  # noqa: E402
from napari_aleatoric.models.registry import load_model  # noqa: E402


def top_tenth(values: np.ndarray) -> np.ndarray:
    """The app's flag until issue 16: above the dataset's 0.9 quantile of ``label_issue`` (the
    calibrated rule that replaced it is chosen by ``flag_rule_choice.py``)."""
    finite = np.isfinite(values)
    return finite & (values > np.quantile(values[finite], 0.9)) if finite.sum() >= 2 else np.zeros(values.shape, bool)


def worst_class(per_class: np.ndarray) -> np.ndarray:
    """``(N,)`` largest of each row of ``(N, C)`` per-class shares over the finite ones, NaN where none is."""
    finite = np.isfinite(per_class)
    return np.where(finite.any(axis=1), np.where(finite, per_class, -np.inf).max(axis=1), np.nan)


def flagged_in_replicates(evaluation: dict) -> dict:
    """Scores of clean and corrupted cases in the corrupted replicates, and the share of clean cases
    (false alarms) among each replicate's flagged cases (flagged by the old top-10 % rule)."""
    clean, corrupted, false_alarms, flagged = [], [], 0, 0
    for rep, values in evaluation["scores"]["learned_softmin"].items():
        bad = np.array(evaluation["cases"][rep]["corrupted"], dtype=bool)
        values = np.asarray(values, dtype=np.float64)
        clean += values[~bad].tolist()
        corrupted += values[bad].tolist()
        flags = top_tenth(values)
        false_alarms += int((~bad & flags).sum())
        flagged += int(flags.sum())
    return {"clean_percentiles_10_50_90": np.percentile(clean, [10, 50, 90]).round(3).tolist(),
            "corrupted_percentiles_10_50_90": np.percentile(corrupted, [10, 50, 90]).round(3).tolist(),
            "flagged": flagged, "false_alarm_share_among_flagged": round(false_alarms / flagged, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the run_all.py output folder")
    parser.add_argument("--model", default="litemedsam")
    args = parser.parse_args(argv)
    results = json.loads((args.out / "results.json").read_text())
    model = load_model(args.model, "cpu")
    report = {}
    for name, evaluation in results["datasets"].items():
        ds = D.build_dataset(name, D.PRESETS["full"][name], args.out, log=lambda *a: None)
        scoring = {"raw": open_dataset(D.scoring_root(ds, "raw", args.out))}
        names = list(ds.foreground)
        ctx = Context(name, list(ds.cases), names, [ds.foreground[n] for n in names], {}, scoring, seed=0, model=model)
        candidates = learned_candidates(ctx)
        clean = candidates["softmin"]
        corrupted = [v for rep, values in evaluation["scores"]["learned_softmin"].items()
                     for v, bad in zip(values, evaluation["cases"][rep]["corrupted"]) if bad]
        top = np.sort(clean)[::-1][:max(1, round(0.1 * len(clean)))]
        report[name] = {"clean_cases": len(clean), "clean_percentiles_10_50_90": np.percentile(clean, [10, 50, 90]).round(3).tolist(),
                        "corrupted_percentiles_10_50_90": np.percentile(corrupted, [10, 50, 90]).round(3).tolist(),
                        "flag_threshold_top10": float(top.min().round(3)),
                        "clean_above_corrupted_median": float(np.mean(clean > np.median(corrupted)).round(3)),
                        "clean_ids": list(ds.cases), "clean_scores": clean.round(6).tolist(),
                        "clean_contradicted": candidates["drawn_share"].round(6).tolist(),
                        "class_names": names,
                        "clean_contradicted_per_class": [[None if not np.isfinite(v) else round(float(v), 6) for v in row]
                                                         for row in candidates["per_class"]],
                        "clean_class_max": [None if not np.isfinite(v) else round(float(v), 6)
                                            for v in worst_class(candidates["per_class"])],
                        "clean_structure": [None if not np.isfinite(v) else round(float(v), 6)
                                            for v in candidates["structure"]],
                        "clean_outline": [None if not np.isfinite(v) else round(float(v), 6)
                                          for v in candidates["outline"]]}
        report[name]["in_corrupted_replicates"] = flagged_in_replicates(evaluation)
        print(name, {k: v for k, v in report[name].items() if not k.startswith("clean_") or "percentiles" in k},
              flush=True)
    (args.out / "clean_dataset_scores.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
