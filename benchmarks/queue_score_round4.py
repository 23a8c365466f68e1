"""Queue score, fourth round (docs/label_quality.md): rare classes out of the worst-class share.

Candidates (higher = more likely mislabelled), each a mean of within-set percentile ranks:
``rank_mean`` (softmin + case-wide contradicted share, the round-2 order), ``rank_class``
(softmin + worst class's contradicted share, the round-3 order), ``rank_class_common`` (the same
over the classes drawn in at least ``MIN_CLASS_CASES`` cases of the set; the case-wide share where
no class qualifies), ``rank3_common`` (softmin + case-wide share + the common worst class). Rule:
the largest worst AUROC over the tuning sets; ties within 0.005 keep ``rank_class``.

Inputs: the label-error replicates' per-case values (``benchmarks/results/label_error_per_class.json``
and the corrupted flags of the run_all ``results.json``), the noisy-training folders (per-case
values from the cached out-of-fold maps, as ``noisy_training/case_scores.py``), and issue-16
folders (``fresh_datasets.py``; their ``scores.csv``)::

    python benchmarks/queue_score_round4.py --results benchmarks/results/results.json \\
        --per-class benchmarks/results/label_error_per_class.json \\
        --noisy DATA/{mni,ct}-c{100,1,2,3,4,5} --issue16 FRESH/* FRESH2/* \\
        --out benchmarks/results/queue_score_choice_round4.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

sys.path.insert(0, str(Path(__file__).resolve().parent))

MIN_CLASS_CASES = 5
CANDIDATES = ("rank_mean", "rank_class", "rank_class_common", "rank3_common")
CURRENT = "rank_class"
TIE = 0.005


def ranks01(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, np.float64)
    return rankdata(np.where(np.isfinite(v), v, -np.inf)) / len(v)


def worst(per_class: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """max over the chosen classes of ``(N, C)`` shares; NaN where none is finite."""
    chosen = per_class if columns is None else per_class[:, columns]
    finite = np.isfinite(chosen)
    out = np.full(len(per_class), np.nan)
    rows = finite.any(axis=1)
    out[rows] = np.where(finite, chosen, -np.inf)[rows].max(axis=1)
    return out


def candidate_scores(softmin, share, per_class) -> dict[str, np.ndarray]:
    """Every candidate for one set: ``softmin`` and ``share`` ``(N,)``, ``per_class`` ``(N, C)``."""
    softmin, share, per_class = (np.asarray(a, np.float64) for a in (softmin, share, per_class))
    counts = np.isfinite(per_class).sum(axis=0)
    common = (counts >= MIN_CLASS_CASES) | (2 * counts >= np.isfinite(softmin).sum())  # as pipelines.table.rare_classes
    class_common = worst(per_class, common) if common.any() else np.full(len(share), np.nan)
    class_common = np.where(np.isfinite(class_common), class_common, share)
    return {"rank_mean": 0.5 * (ranks01(softmin) + ranks01(share)),
            "rank_class": 0.5 * (ranks01(softmin) + ranks01(worst(per_class))),
            "rank_class_common": 0.5 * (ranks01(softmin) + ranks01(class_common)),
            "rank3_common": (ranks01(softmin) + ranks01(share) + ranks01(class_common)) / 3}


def auroc(bad: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(bad, np.nan_to_num(score, nan=-np.inf)))


def label_error_sets(results: Path, per_class: Path, scores_of=None, candidates=None) -> dict[str, dict[str, float]]:
    """Label-error dataset → candidate → mean AUROC over its replicates (``scores_of``/``candidates``:
    another round's :func:`candidate_scores` and names)."""
    scores_of, candidates = scores_of or candidate_scores, candidates or CANDIDATES
    flags = json.loads(results.read_text())["datasets"]
    values = json.loads(per_class.read_text())
    out = {}
    for name, entry in values.items():
        per = {c: [] for c in candidates}
        for rep, data in entry["replicates"].items():
            cases = flags[name]["cases"][rep]
            assert cases["ids"] == data["ids"], (name, rep)
            bad = np.array(cases["corrupted"], bool)
            pc = np.array([[math.nan if v is None else v for v in row] for row in data["per_class"]], np.float64)
            scores = scores_of(_nan(data["label_issue"]), _nan(data["contradicted"]), pc)
            for c in candidates:
                per[c].append(auroc(bad, scores[c]))
        out[f"label-error {name}"] = {c: float(np.mean(v)) for c, v in per.items()}
    return out


def noisy_set(root: Path, scores_of=None, candidates=None) -> dict[str, float]:
    """Candidate → AUROC on one noisy-training folder (every scored case)."""
    from noisy_training.case_scores import case_rows

    scores_of, candidates = scores_of or candidate_scores, candidates or CANDIDATES
    _ids, rows, bad = case_rows(root)
    scores = scores_of([r["softmin"] for r in rows], [r["drawn_share"] for r in rows],
                       np.stack([r["per_class"] for r in rows]))
    return {c: auroc(np.array(bad), scores[c]) for c in candidates}


def issue16_set(root: Path, scores_of=None, candidates=None) -> dict[str, float] | None:
    """Candidate → AUROC on one fresh_datasets.py folder from its scores.csv (None: no error)."""
    scores_of, candidates = scores_of or candidate_scores, candidates or CANDIDATES
    truth = json.loads((root / "truth.json").read_text())
    rows = list(csv.DictReader((root / ".aleatoric" / "scores.csv").open()))
    bad = np.array([r["case_id"] in truth["corrupted"] for r in rows])
    if bad.all() or not bad.any():
        return None
    classes = [k for k in rows[0] if k.startswith("contradicted_")]
    per_class = np.array([[_float(r[k]) for k in classes] for r in rows])
    scores = scores_of([_float(r["label_issue"]) for r in rows], [_float(r["contradicted"]) for r in rows],
                       per_class)
    return {c: auroc(bad, scores[c]) for c in candidates}


def _float(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _nan(values) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], np.float64)


def parsed_arguments(description: str, argv=None) -> argparse.Namespace:
    """The tuning data's command line (this round's and the later rounds')."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--per-class", type=Path, required=True)
    parser.add_argument("--noisy", type=Path, nargs="+", required=True)
    parser.add_argument("--issue16", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def tuning_sets(args: argparse.Namespace, scores_of=None, candidates=None) -> dict[str, dict[str, float]]:
    """Tuning set → candidate → AUROC: the label-error datasets (mean over replicates), the
    noisy-training families (mean over seeds) and every issue-16 set with errors."""
    scores_of, candidates = scores_of or candidate_scores, candidates or CANDIDATES
    sets = label_error_sets(args.results, args.per_class, scores_of, candidates)
    for kind in ("mni", "ct"):
        per = [noisy_set(r, scores_of, candidates) for r in args.noisy if r.name.startswith(kind + "-")]
        sets[f"noisy-training {kind}"] = {c: float(np.mean([p[c] for p in per])) for c in candidates}
    for root in args.issue16:
        result = issue16_set(root, scores_of, candidates)
        if result is not None:
            sets[f"{root.parent.name}/{root.name}"] = result
    return sets


def main(argv=None) -> int:
    args = parsed_arguments(__doc__.splitlines()[0], argv)
    sets = tuning_sets(args)
    table = {c: {"tuning": {s: round(v[c], 4) for s, v in sets.items()}} for c in CANDIDATES}
    for c in CANDIDATES:
        table[c]["worst"] = min(table[c]["tuning"].values())
    best = max(table[c]["worst"] for c in CANDIDATES)
    chosen = CURRENT if table[CURRENT]["worst"] >= best - TIE else max(CANDIDATES, key=lambda c: table[c]["worst"])
    print("| candidate | " + " / ".join(sets) + " | worst |\n|---|---|---|")
    for c in CANDIDATES:
        mark = "**" if c == chosen else ""
        print(f"| {mark}{c}{mark} | " + " / ".join(f"{v:.3f}" for v in table[c]["tuning"].values())
              + f" | {mark}{table[c]['worst']:.3f}{mark} |")
    print(f"chosen: {chosen}")
    if args.out:
        args.out.write_text(json.dumps({"round": 4, "min_class_cases": MIN_CLASS_CASES, "chosen": chosen,
                                        "sets": list(sets), "candidates": table}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
