"""Flag, seventh round (docs/label_quality.md): the sixth round's rule, or a mostly contradicted outline.

Candidates: the shipped rule (the sixth round's "round 5 or structure ≥ 50 %") and that rule or
``worst_outline ≥ t`` for t = 0.6 … 0.9 (the largest contradicted share over the 2-px outlines of
a volume's structures of at least 100 voxels; ``labelquality.structures.worst_outline_share``).
Data and selection as in ``flag_rule_round6.py``, every per-case value computed with the code on
the path (``QUALITY_VERSION`` 10): the label-error replicates (``label_error_per_class.py``'s JSON
with ``outline``), the clean-only sets (``clean_dataset_scores.py``'s JSON with ``clean_outline``),
the noisy-training sets (their cached maps) and the issue-16 sets of every ``--fresh`` folder
(their ``scores.csv``, re-scored; the first folder's ``mni_clean`` is a clean-only set)::

    python benchmarks/flag_rule_round7.py --bq /work/bq4 --clean benchmarks/results/clean_dataset_scores_v10.json \\
        --per-class benchmarks/results/label_error_per_class_v10.json --data /work/bench12data \\
        --fresh /work/fresh{,2,3,4,5,6,7,8,9,10,11,12} --out benchmarks/results/flag_rule_choice_round7.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import flag_rule_choice as base  # noqa: E402
import flag_rule_round6 as round6  # noqa: E402
from flag_rule_choice import _floats, _ge  # noqa: E402

THRESHOLDS = (0.6, 0.7, 0.8, 0.9)
_round6 = round6.CANDIDATES["round 5 or structure>=50%"]

CANDIDATES = {"round 6 (the rule until now)": lambda li, c, w, r, s, o: _round6(li, c, w, r, s),
              **{f"round 6 or outline>={t:.0%}": (lambda t: lambda li, c, w, r, s, o: _round6(li, c, w, r, s) | _ge(o, t))(t)
                 for t in THRESHOLDS}}


def clean_only_sets(path: Path) -> dict:
    """``{set: (label_issue, contradicted, class_max, class_ratio, structure, outline)}`` of the clean-only runs."""
    report = json.loads(path.read_text())
    return {name: (*values, _floats(report[name.removeprefix("label-error ")]["clean_outline"]))
            for name, values in round6.clean_only_sets(path).items()}


def label_error_sets(bq: Path, per_class: Path) -> dict:
    """``{family: [(…, structure, outline, corrupted) per replicate]}`` of the label-error benchmark."""
    recomputed = json.loads(per_class.read_text())
    out = {}
    for family, replicates in round6.label_error_sets(bq, per_class).items():
        entries = recomputed[family.removeprefix("label-error ")]["replicates"].values()
        out[family] = [(*values[:-1], _floats(entry["outline"]), values[-1])
                       for values, entry in zip(replicates, entries)]
    return out


def noisy_training_set(root: Path) -> tuple:
    """``(…, structure, outline, corrupted)`` of one noisy-training dataset, from its cached maps."""
    from noisy_training.case_scores import case_rows

    _ids, rows, bad = case_rows(root)
    per_class = np.stack([r["per_class"] for r in rows])
    return (*(np.array([r[key] for r in rows], float) for key in ("softmin", "drawn_share")),
            base.worst_class(per_class), base.class_ratio(per_class),
            *(np.array([r[key] for r in rows], float) for key in ("structure", "outline")), np.array(bad, bool))


def fresh_set(root: Path) -> tuple:
    """``(…, structure, outline, corrupted)`` of a scored ``fresh_datasets.py`` folder (its ``scores.csv``)."""
    from napari_aleatoric.pipelines.table import read_scores

    rows = read_scores(root / ".aleatoric" / "scores.csv").rows
    *values, bad = round6.fresh_set(root)
    return (*values, np.array([float(r["worst_outline"]) for r in rows], float), bad)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bq", type=Path, required=True, help="the run_all.py output folder (label-error benchmark)")
    parser.add_argument("--clean", type=Path, required=True, help="clean_dataset_scores.json with clean_outline")
    parser.add_argument("--per-class", type=Path, required=True, help="label_error_per_class.py's JSON with outline")
    parser.add_argument("--data", type=Path, required=True, help="folder of the noisy-training datasets")
    parser.add_argument("--fresh", type=Path, nargs="+", required=True, help="issue-16 folders (fresh_datasets.py)")
    parser.add_argument("--out", type=Path, required=True, help="JSON result")
    args = parser.parse_args(argv)
    clean_sets = clean_only_sets(args.clean)
    corrupted_sets = label_error_sets(args.bq, args.per_class)
    for kind in ("mni", "ct"):
        corrupted_sets[f"noisy-training {kind}"] = [noisy_training_set(args.data / f"{kind}-{seed}")
                                                    for seed in round6.SEEDS]
    *values, bad = fresh_set(args.fresh[0] / "mni_clean")
    assert not bad.any()
    clean_sets["issue-16 mni_clean"] = tuple(values)
    corrupted_sets["issue 16"] = [fresh_set(folder / name) for folder in args.fresh for name in base.FRESH_CORRUPTED]
    pooled = {"issue-16 clean cases": corrupted_sets["issue 16"]}
    report = base.evaluate(clean_sets, corrupted_sets, CANDIDATES, pooled)
    report.update({"round": 7, "command": " ".join(["python", *sys.argv]), "machine": platform.platform(),
                   "sets": {"issue 16 order": [f"{f}/{n}" for f in args.fresh for n in base.FRESH_CORRUPTED]}})
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for name, row in report["candidates"].items():
        fa = " / ".join(f"{100 * v:.1f}" for v in row["clean_only_false_alarms"].values())
        rec = " / ".join(f"{100 * v:.0f}" for v in row["recall"].values())
        print(f"{name:<32} {fa} | {rec} | {100 * row['mean_recall']:.1f}{'' if row['eligible'] else ' (not eligible)'}")
    print(f"chosen: {report['chosen']} ({report['how']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
