"""Queue score, sixth round (docs/label_quality.md): the worst structure's share in the mean of ranks.

Candidates (higher = more likely mislabelled), both with the product's flag
(:func:`napari_aleatoric.labelquality.flag.flag_cases`, as chosen by the flag's sixth round) putting
the flagged cases first: ``flagged_first`` (the queue until now: the mean of the within-set
percentile ranks of ``label_issue`` and of the worst class's contradicted share) and
``structure_first`` (the same with the worst structure's share, ``worst_structure``, in place
of the worst class's share where a case has one). Rule: the largest worst AUROC over the tuning sets;
ties within 0.005 keep ``flagged_first``.

Data: the label-error replicates (``label_error_per_class.py``'s JSON with ``structure``; mean AUROC
over a dataset's replicates), the noisy-training sets (their cached maps; mean over seeds) and every
issue-16 set with errors of the ``--issue16`` folders (their ``scores.csv``, re-scored)::

    python benchmarks/queue_score_round6.py --results benchmarks/results/results.json \\
        --per-class benchmarks/results/label_error_per_class_v9.json \\
        --noisy /work/bench12data/{mni,ct}-c{100,1,2,3,4,5} \\
        --issue16 /work/fresh{,2,3,4,5,6,7,8,9,10}/{ct_sizes,mni_subtle,ct_rare,nuclei_tiles,mni_small} \\
        --out benchmarks/results/queue_score_choice_round6.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import queue_score_round4 as round4  # noqa: E402
import queue_score_round5 as round5  # noqa: E402
from queue_score_round4 import auroc, ranks01, worst  # noqa: E402

from napari_aleatoric.labelquality.flag import flag_cases  # noqa: E402

CANDIDATES = ("flagged_first", "structure_first")
CURRENT = "flagged_first"


def candidate_scores(label_issue, contradicted, per_class, structure) -> dict[str, np.ndarray]:
    """Both candidates for one set: ``label_issue``, ``contradicted`` and ``structure`` ``(N,)``,
    ``per_class`` ``(N, C)`` (NaN where unknown)."""
    label_issue, contradicted, per_class, structure = (np.asarray(a, np.float64) for a in
                                                       (label_issue, contradicted, per_class, structure))
    rows = [{"label_issue": li, "contradicted": c, "worst_structure": s,
             **{f"contradicted_{k}": v for k, v in enumerate(shares)}}
            for li, c, s, shares in zip(label_issue, contradicted, structure, per_class)]
    flagged = np.array(flag_cases(rows)[0], bool)
    worst_class = worst(per_class)
    worst_piece = np.where(np.isfinite(structure), structure, worst_class)
    return {"flagged_first": 0.5 * (ranks01(label_issue) + ranks01(worst_class)) + flagged,
            "structure_first": 0.5 * (ranks01(label_issue) + ranks01(worst_piece)) + flagged}


def tuning_sets(args) -> dict[str, dict[str, float]]:
    """Tuning set → candidate → AUROC."""
    from noisy_training.case_scores import case_rows

    from napari_aleatoric.pipelines.table import read_scores

    sets = {}
    flags = json.loads(args.results.read_text())["datasets"]
    for name, entry in json.loads(args.per_class.read_text()).items():
        per = {c: [] for c in CANDIDATES}
        for rep, data in entry["replicates"].items():
            bad = np.array(flags[name]["cases"][rep]["corrupted"], bool)
            per_class = np.array([[math.nan if v is None else v for v in row] for row in data["per_class"]])
            scores = candidate_scores(round4._nan(data["label_issue"]), round4._nan(data["contradicted"]), per_class,
                                      round4._nan(data["structure"]))
            for c in CANDIDATES:
                per[c].append(auroc(bad, scores[c]))
        sets[f"label-error {name}"] = {c: float(np.mean(v)) for c, v in per.items()}
    for kind in ("mni", "ct"):
        per = {c: [] for c in CANDIDATES}
        for root in [r for r in args.noisy if r.name.startswith(kind + "-")]:
            _ids, rows, bad = case_rows(root)
            scores = candidate_scores([r["softmin"] for r in rows], [r["drawn_share"] for r in rows],
                                      np.stack([r["per_class"] for r in rows]), [r["structure"] for r in rows])
            for c in CANDIDATES:
                per[c].append(auroc(np.array(bad), scores[c]))
        sets[f"noisy-training {kind}"] = {c: float(np.mean(v)) for c, v in per.items()}
    for root in args.issue16:
        truth = json.loads((root / "truth.json").read_text())
        rows = read_scores(root / ".aleatoric" / "scores.csv").rows
        bad = np.array([r["case_id"] in truth["corrupted"] for r in rows])
        if bad.all() or not bad.any():
            continue
        classes = [k for k in rows[0] if k.startswith("contradicted_")]
        number = round4._float
        scores = candidate_scores([number(r["label_issue"]) for r in rows], [number(r["contradicted"]) for r in rows],
                                  np.array([[number(r[k]) for k in classes] for r in rows]),
                                  [number(r["worst_structure"]) for r in rows])
        sets[f"{root.parent.name}/{root.name}"] = {c: auroc(bad, scores[c]) for c in CANDIDATES}
    return sets


def main(argv=None) -> int:
    args = round4.parsed_arguments(__doc__.splitlines()[0], argv)
    round5.choose_and_report(tuning_sets(args), CANDIDATES, CURRENT, 6, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
