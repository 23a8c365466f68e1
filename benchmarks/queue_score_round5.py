"""Queue score, fifth round (docs/label_quality.md): flagged cases first.

Candidates (higher = more likely mislabelled): ``rank_class`` (the queue until now: the mean of the
within-set percentile ranks of ``label_issue`` and of the worst class's contradicted share) and
``flagged_first`` (the cases the product's flag marks, then the others, each group in
``rank_class`` order; flags by :func:`napari_aleatoric.labelquality.flag.flag_cases` on the set's
values). Rule: the largest worst AUROC over the tuning sets; ties within 0.005 keep ``rank_class``.

Inputs as in ``queue_score_round4.py``: the label-error replicates' per-case values (a
``label_error_per_class.py`` JSON and the corrupted flags of the run_all ``results.json``), the
noisy-training folders (per-case values from the cached out-of-fold maps) and issue-16 folders
(``fresh_datasets.py``; their ``scores.csv``)::

    python benchmarks/queue_score_round5.py --results benchmarks/results/results.json \\
        --per-class benchmarks/results/label_error_per_class_v8.json \\
        --noisy DATA/{mni,ct}-c{100,1,2,3,4,5} --issue16 FRESH*/{ct_sizes,mni_subtle,ct_rare,nuclei_tiles,mni_small} \\
        --out benchmarks/results/queue_score_choice_round5.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from queue_score_round4 import _float, _nan, auroc, ranks01, worst  # noqa: E402

from napari_aleatoric.labelquality.flag import flag_cases  # noqa: E402

CANDIDATES = ("rank_class", "flagged_first")
CURRENT = "rank_class"
TIE = 0.005


def candidate_scores(label_issue, contradicted, per_class) -> dict[str, np.ndarray]:
    """Both candidates for one set: ``label_issue`` and ``contradicted`` ``(N,)``, ``per_class`` ``(N, C)``
    (NaN where a class has no share)."""
    label_issue, contradicted, per_class = (np.asarray(a, np.float64) for a in (label_issue, contradicted, per_class))
    rank_class = 0.5 * (ranks01(label_issue) + ranks01(worst(per_class)))
    rows = [{"label_issue": li, "contradicted": c, **{f"contradicted_{k}": v for k, v in enumerate(shares)}}
            for li, c, shares in zip(label_issue, contradicted, per_class)]
    flagged = np.array(flag_cases(rows)[0], bool)
    return {"rank_class": rank_class, "flagged_first": rank_class + flagged}


def label_error_sets(results: Path, per_class: Path) -> dict[str, dict[str, float]]:
    """Label-error dataset → candidate → mean AUROC over its replicates."""
    flags = json.loads(results.read_text())["datasets"]
    out = {}
    for name, entry in json.loads(per_class.read_text()).items():
        per = {c: [] for c in CANDIDATES}
        for rep, data in entry["replicates"].items():
            cases = flags[name]["cases"][rep]
            assert cases["ids"] == data["ids"], (name, rep)
            bad = np.array(cases["corrupted"], bool)
            shares = np.array([[math.nan if v is None else v for v in row] for row in data["per_class"]], np.float64)
            scores = candidate_scores(_nan(data["label_issue"]), _nan(data["contradicted"]), shares)
            for c in CANDIDATES:
                per[c].append(auroc(bad, scores[c]))
        out[f"label-error {name}"] = {c: float(np.mean(v)) for c, v in per.items()}
    return out


def noisy_set(root: Path) -> dict[str, float]:
    """Candidate → AUROC on one noisy-training folder (every scored case)."""
    from noisy_training.case_scores import case_rows

    _ids, rows, bad = case_rows(root)
    scores = candidate_scores([r["softmin"] for r in rows], [r["drawn_share"] for r in rows],
                              np.stack([r["per_class"] for r in rows]))
    return {c: auroc(np.array(bad), scores[c]) for c in CANDIDATES}


def issue16_set(root: Path) -> dict[str, float] | None:
    """Candidate → AUROC on one fresh_datasets.py folder from its scores.csv (None: no error)."""
    truth = json.loads((root / "truth.json").read_text())
    rows = list(csv.DictReader((root / ".aleatoric" / "scores.csv").open()))
    bad = np.array([r["case_id"] in truth["corrupted"] for r in rows])
    if bad.all() or not bad.any():
        return None
    classes = [k for k in rows[0] if k.startswith("contradicted_")]
    shares = np.array([[_float(r[k]) for k in classes] for r in rows]).reshape(len(rows), len(classes))
    scores = candidate_scores([_float(r["label_issue"]) for r in rows], [_float(r["contradicted"]) for r in rows],
                              shares)
    return {c: auroc(bad, scores[c]) for c in CANDIDATES}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--per-class", type=Path, required=True)
    parser.add_argument("--noisy", type=Path, nargs="+", required=True)
    parser.add_argument("--issue16", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    sets = label_error_sets(args.results, args.per_class)
    for family in ("mni", "ct"):
        folders = [p for p in args.noisy if p.name.startswith(family)]
        values = [noisy_set(p) for p in folders]
        sets[f"noisy-training {family}"] = {c: float(np.mean([v[c] for v in values])) for c in CANDIDATES}
    for root in args.issue16:
        value = issue16_set(root)
        if value is not None:
            sets[f"{root.parent.name}/{root.name}"] = value
    summary = {c: {"worst": min(v[c] for v in sets.values()), "mean": float(np.mean([v[c] for v in sets.values()]))}
               for c in CANDIDATES}
    best = max(CANDIDATES, key=lambda c: summary[c]["worst"])
    chosen = best if summary[best]["worst"] > summary[CURRENT]["worst"] + TIE else CURRENT
    print(f"{'set':<28} " + " ".join(f"{c:>14}" for c in CANDIDATES))
    for name, values in sets.items():
        print(f"{name:<28} " + " ".join(f"{values[c]:>14.3f}" for c in CANDIDATES))
    for key in ("worst", "mean"):
        print(f"{key:<28} " + " ".join(f"{summary[c][key]:>14.4f}" for c in CANDIDATES))
    print(f"chosen: {chosen}")
    if args.out:
        args.out.write_text(json.dumps({"round": 5, "command": " ".join(sys.argv), "machine": platform.platform(),
                                        "sets": sets, "summary": summary, "chosen": chosen}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
