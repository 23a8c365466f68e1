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

import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import queue_score_round4 as round4  # noqa: E402
from queue_score_round4 import ranks01, worst  # noqa: E402

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


def choose_and_report(sets: dict[str, dict[str, float]], candidates: tuple[str, ...], current: str, round_number: int,
                      out) -> str:
    """The queue rounds' rule (the largest worst AUROC over the sets; ties within :data:`TIE` keep
    ``current``): print the table, write ``out`` (JSON) if given, return the chosen candidate."""
    summary = {c: {"worst": min(v[c] for v in sets.values()), "mean": float(np.mean([v[c] for v in sets.values()]))}
               for c in candidates}
    best = max(candidates, key=lambda c: summary[c]["worst"])
    chosen = best if summary[best]["worst"] > summary[current]["worst"] + TIE else current
    width = max(14, *(len(c) for c in candidates))
    print(f"{'set':<28} " + " ".join(f"{c:>{width}}" for c in candidates))
    for name, values in sets.items():
        print(f"{name:<28} " + " ".join(f"{values[c]:>{width}.3f}" for c in candidates))
    for key in ("worst", "mean"):
        print(f"{key:<28} " + " ".join(f"{summary[c][key]:>{width}.4f}" for c in candidates))
    print(f"chosen: {chosen}")
    if out:
        out.write_text(json.dumps({"round": round_number, "command": " ".join(sys.argv), "machine": platform.platform(),
                                   "sets": sets, "summary": summary, "chosen": chosen}, indent=1) + "\n")
    return chosen


def main(argv=None) -> int:
    args = round4.parsed_arguments(__doc__.splitlines()[0], argv)
    choose_and_report(round4.tuning_sets(args, candidate_scores, CANDIDATES), CANDIDATES, CURRENT, 5, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
