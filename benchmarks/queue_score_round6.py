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


def candidate_scores(columns: dict) -> dict[str, np.ndarray]:
    """Both candidates for one set from its :func:`set_columns` (``label_issue``, ``contradicted``,
    ``structure`` ``(N,)``, ``per_class`` ``(N, C)``; NaN where unknown)."""
    label_issue, per_class, structure = (columns[k] for k in ("label_issue", "per_class", "structure"))
    flagged = product_flags(columns)
    worst_class = worst(per_class)
    worst_piece = np.where(np.isfinite(structure), structure, worst_class)
    return {"flagged_first": 0.5 * (ranks01(label_issue) + ranks01(worst_class)) + flagged,
            "structure_first": 0.5 * (ranks01(label_issue) + ranks01(worst_piece)) + flagged}


def product_flags(columns: dict, outline: bool = True) -> np.ndarray:
    """``(N,)`` bool the product's flag (:func:`flag_cases`) on a set's columns; without ``outline``
    (or where the set has none) the table has no ``worst_outline``: the sixth round's flag."""
    names = ["label_issue", "contradicted", "worst_structure"] + (["worst_outline"] if outline and "outline" in columns
                                                                  else [])
    keys = ["label_issue", "contradicted", "structure", "outline"]
    rows = [{**{name: float(columns[key][i]) for name, key in zip(names, keys)},
             **{f"contradicted_{k}": v for k, v in enumerate(columns["per_class"][i])}}
            for i in range(len(columns["label_issue"]))]
    return np.array(flag_cases(rows)[0], bool)


def set_columns(args) -> dict[str, tuple[dict, np.ndarray]]:
    """Tuning set → (columns, corrupted ``(N,)`` bool) per replicate or seed: ``label_issue``,
    ``contradicted``, ``structure`` and, where computed, ``outline`` ``(N,)``, ``per_class`` ``(N, C)``."""
    from noisy_training.case_scores import case_rows

    from napari_aleatoric.pipelines.table import read_scores

    def arrays(**values) -> dict:
        return {k: np.asarray(v, np.float64) for k, v in values.items() if v is not None}

    sets = {}
    flags = json.loads(args.results.read_text())["datasets"]
    for name, entry in json.loads(args.per_class.read_text()).items():
        sets[f"label-error {name}"] = [
            (arrays(label_issue=round4._nan(data["label_issue"]), contradicted=round4._nan(data["contradicted"]),
                    per_class=[[math.nan if v is None else v for v in row] for row in data["per_class"]],
                    structure=round4._nan(data["structure"]),
                    outline=round4._nan(data["outline"]) if "outline" in data else None),
             np.array(flags[name]["cases"][rep]["corrupted"], bool))
            for rep, data in entry["replicates"].items()]
    for kind in ("mni", "ct"):
        sets[f"noisy-training {kind}"] = []
        for root in [r for r in args.noisy if r.name.startswith(kind + "-")]:
            _ids, rows, bad = case_rows(root)
            sets[f"noisy-training {kind}"].append((arrays(
                label_issue=[r["softmin"] for r in rows], contradicted=[r["drawn_share"] for r in rows],
                per_class=np.stack([r["per_class"] for r in rows]), structure=[r["structure"] for r in rows],
                outline=[r["outline"] for r in rows] if "outline" in rows[0] else None), np.array(bad, bool)))
    for root in args.issue16:
        truth = json.loads((root / "truth.json").read_text())
        rows = read_scores(root / ".aleatoric" / "scores.csv").rows
        bad = np.array([r["case_id"] in truth["corrupted"] for r in rows])
        if bad.all() or not bad.any():
            continue
        classes = [k for k in rows[0] if k.startswith("contradicted_")]
        number = round4._float
        sets[f"{root.parent.name}/{root.name}"] = [(arrays(
            label_issue=[number(r["label_issue"]) for r in rows], contradicted=[number(r["contradicted"]) for r in rows],
            per_class=[[number(r[k]) for k in classes] for r in rows],
            structure=[number(r["worst_structure"]) for r in rows],
            outline=[number(r["worst_outline"]) for r in rows] if "worst_outline" in rows[0] else None), bad)]
    return sets


def tuning_sets(args, score=candidate_scores, candidates=CANDIDATES) -> dict[str, dict[str, float]]:
    """Tuning set → candidate → AUROC (mean over a set's replicates or seeds)."""
    return {name: {c: float(np.mean([auroc(bad, score(columns)[c]) for columns, bad in entries])) for c in candidates}
            for name, entries in set_columns(args).items()}


def main(argv=None) -> int:
    args = round4.parsed_arguments(__doc__.splitlines()[0], argv)
    round5.choose_and_report(tuning_sets(args), CANDIDATES, CURRENT, 6, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
