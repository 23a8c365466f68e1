"""Which case score orders the review queue: the choice rule applied to both benchmarks.

Reads the label-error benchmark's ``results.json`` (``benchmarks/run_all.py``: per-replicate AUROC
of every method) and the noisy-label training benchmark's case-score AUROCs
(``python -m benchmarks.noisy_training.case_scores``: tuning seeds in one JSON, the fresh seed in
another) and prints one table: each candidate's AUROC on the five tuning sets, their minimum (the
rule: the largest minimum wins, fixed before the label-error candidates were computed), then the
same candidates on the data kept for reporting.

Tuning sets: the label-error benchmark's first half of the replicates of each dataset (MRI 0–1,
nuclei 0–1, CT 0–3) and the noisy-label training datasets of corruption seeds 100 and 1 (mean of
the two per dataset). Reported: the second half of the replicates and corruption seed 2::

    python benchmarks/queue_score_choice.py benchmarks/results/results.json \\
        benchmarks/results/noisy_training_case_scores_tuning.json \\
        benchmarks/results/noisy_training_case_scores_fresh.json --out benchmarks/results/queue_score_choice.json

Round 3 (docs/label_quality.md, third round): every label-error replicate, noisy-training seeds
100, 1, 2, 3 and 4 (re-scored with the current label-quality version), and the issue-16 sets with
errors, two more candidates::

    python -m benchmarks.noisy_training.case_scores DATA/{mni,ct}-c{100,1,2,3,4} \
        --out benchmarks/results/noisy_training_case_scores_round3.json
    python -m benchmarks.noisy_training.case_scores FRESH/{ct_sizes,mni_subtle,ct_rare,nuclei_tiles,mni_small} \
        --out benchmarks/results/issue16_case_scores_round3.json
    python benchmarks/queue_score_choice.py --round 3 benchmarks/results/results.json \
        benchmarks/results/noisy_training_case_scores_round3.json \
        --issue16 benchmarks/results/issue16_case_scores_round3.json --out benchmarks/results/queue_score_choice_round3.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

#: candidate → (label-error method, noisy-training case_scores key)
CANDIDATES = {
    "softmin over all pixels": ("learned_softmin", "softmin"),
    "contradicted share of the drawn pixels": ("learned_contradicted", "drawn_share"),
    "contradicted share of drawn or predicted foreground": ("learned_union_share", "union_share"),
    "largest contradicted region": ("learned_largest_region", "largest_region"),
    "rank mean of softmin and drawn share": ("learned_rank_mean", "rank_mean"),
    "worst class's contradicted share (round 3)": ("learned_class_share", "class_max"),
    "rank mean of softmin and worst-class share (round 3)": ("learned_rank_class", "rank_class"),
}
#: round 3: the issue-16 evaluation sets with errors, tuning data since their first measurement
ISSUE16_SETS = ("ct_sizes", "mni_subtle", "ct_rare", "nuclei_tiles", "mni_small")
ROUND3_ONLY = ("learned_class_share", "learned_rank_class")
LABEL_ERROR_SETS = ("mni", "nuclei", "ct")
NOISY_SETS = ("mni", "ct")


def label_error_aurocs(results: dict, method: str) -> dict[str, tuple[float, float]]:
    """Dataset → (mean AUROC over the first half of the replicates, over the second half)."""
    out = {}
    for name in LABEL_ERROR_SETS:
        per = results["datasets"][name]["methods"][method]["all_replicates"]["all"]["per_replicate_auroc"]
        half = len(per) // 2
        out[name] = (float(np.mean(per[:half])), float(np.mean(per[half:])))
    return out


def noisy_aurocs(report: dict, key: str) -> dict[str, float]:
    """Dataset kind (``mni``/``ct``) → mean AUROC over that kind's corruption seeds in ``report``."""
    return {kind: float(np.mean([v["auroc"][key] for name, v in report.items() if name.startswith(f"{kind}-c")]))
            for kind in NOISY_SETS}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("label_error", type=Path, help="results.json of benchmarks/run_all.py")
    parser.add_argument("noisy", type=Path, nargs="+",
                        help="case_scores JSONs: round 1, the tuning seeds then the fresh seed; round 2, every "
                             "tuning seed")
    parser.add_argument("--round", type=int, choices=(1, 2, 3), default=1)
    parser.add_argument("--issue16", type=Path, default=None,
                        help="round 3: case_scores JSON of the issue-16 sets (benchmarks/fresh_datasets.py folders)")
    parser.add_argument("--fresh", type=Path, default=None, help="round 2: case_scores JSON of the fresh seed")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    results = json.loads(args.label_error.read_text())
    if args.round == 1:
        tuning, fresh = (json.loads(p.read_text()) for p in args.noisy)
    else:
        tuning = {name: v for p in args.noisy for name, v in json.loads(p.read_text()).items()}
        fresh = json.loads(args.fresh.read_text()) if args.fresh else None
    issue16 = json.loads(args.issue16.read_text()) if args.round == 3 else {}
    table = {}
    for label, (method, key) in CANDIDATES.items():
        if args.round < 3 and method in ROUND3_ONLY:
            continue
        errors = label_error_aurocs(results, method)
        if args.round == 1:
            tune = [errors[n][0] for n in LABEL_ERROR_SETS] + [noisy_aurocs(tuning, key)[k] for k in NOISY_SETS]
            report = [errors[n][1] for n in LABEL_ERROR_SETS] + [noisy_aurocs(fresh, key)[k] for k in NOISY_SETS]
        else:
            tune = ([float(np.mean(errors[n])) for n in LABEL_ERROR_SETS]
                    + [noisy_aurocs(tuning, key)[k] for k in NOISY_SETS])
            report = [noisy_aurocs(fresh, key)[k] for k in NOISY_SETS] if fresh else []
            tune += [float(issue16[name]["auroc"][key]) for name in ISSUE16_SETS if name in issue16]
        table[label] = {"tuning": tune, "tuning_min": min(tune), "report": report}
    chosen = max(table, key=lambda c: table[c]["tuning_min"])
    columns = "label-error MRI / nuclei / CT, noisy-training MRI / CT" + (
        ", issue-16 " + " / ".join(n for n in ISSUE16_SETS if n in issue16) if issue16 else "")
    reported = columns if args.round == 1 else "noisy-training MRI / CT"
    print(f"| case score | tuning: {columns} | worst | reported: {reported} |\n|---|---|---|---|")
    for label, row in table.items():
        mark = "**" if label == chosen else ""
        print(f"| {mark}{label}{mark} | {' / '.join(f'{v:.3f}' for v in row['tuning'])} | {mark}{row['tuning_min']:.3f}{mark} "
              f"| {' / '.join(f'{v:.3f}' for v in row['report'])} |")
    print(f"chosen by the largest worst tuning AUROC: {chosen}")
    if args.out:
        args.out.write_text(json.dumps({"round": args.round, "chosen": chosen, "columns": columns, "reported": reported,
                                        "candidates": table}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
