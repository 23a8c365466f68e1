"""Flag, sixth round (docs/label_quality.md): the fifth round's rule, or a mostly contradicted structure.

Candidates: the shipped rule (the fifth round's candidate 44) and that rule or
``worst_structure ≥ t`` for t = 0.5 … 0.9 (the largest contradicted share over a volume's
connected pieces of one class; :mod:`napari_aleatoric.labelquality.structures`). Data and
selection as in ``flag_rule_choice.py``'s fifth round, every per-case value computed with the code on
the path (``QUALITY_VERSION`` 9): the label-error replicates (``label_error_per_class.py``'s JSON with
``structure``), the clean-only sets (``clean_dataset_scores.py``'s JSON with ``clean_structure``),
the noisy-training sets (their cached maps) and the issue-16 sets of every ``--fresh`` folder
(their ``scores.csv``, re-scored; the first folder's ``mni_clean`` is a clean-only set)::

    python benchmarks/flag_rule_round6.py --bq /work/bq4 --clean /tmp/bq9/clean_dataset_scores.json \\
        --per-class benchmarks/results/label_error_per_class_v9.json --data /work/bench12data \\
        --fresh /work/fresh{,2,3,4,5,6,7,8,9,10} --out benchmarks/results/flag_rule_choice_round6.json
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
from flag_rule_choice import _current, _floats, _ge, _gt  # noqa: E402

from napari_aleatoric.labelquality.flag import robust_z  # noqa: E402

SEEDS = base.SEEDS[5]
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def _round5(li, c, w, r):
    """The shipped rule before this round (the fifth round's candidate 44)."""
    return _current(li, c, r) | (_gt(robust_z(li), 1.5) & _gt(robust_z(w), 1.5))


CANDIDATES = {"round 5 (the rule until now)": lambda li, c, w, r, s: _round5(li, c, w, r),
              **{f"round 5 or structure>={t:.0%}": (lambda t: lambda li, c, w, r, s: _round5(li, c, w, r) | _ge(s, t))(t)
                 for t in THRESHOLDS}}


def clean_only_sets(path: Path) -> dict:
    """``{set: (label_issue, contradicted, class_max, class_ratio, structure)}`` of the clean-only runs."""
    report = json.loads(path.read_text())
    return {name: (*values, _floats(report[name.removeprefix("label-error ")]["clean_structure"]))
            for name, values in base.clean_only_sets(path).items()}


def label_error_sets(bq: Path, per_class: Path) -> dict:
    """``{family: [(…, structure, corrupted) per replicate]}`` of the label-error benchmark."""
    recomputed = json.loads(per_class.read_text())
    out = {}
    for family, replicates in base.label_error_sets(bq, per_class).items():
        entries = recomputed[family.removeprefix("label-error ")]["replicates"].values()
        out[family] = [(*values[:-1], _floats(entry["structure"]), values[-1])
                       for values, entry in zip(replicates, entries)]
    return out


def noisy_training_set(root: Path) -> tuple:
    """``(label_issue, contradicted, class_max, class_ratio, structure, corrupted)`` of one
    noisy-training dataset, from its cached out-of-fold maps."""
    from noisy_training.case_scores import case_rows

    _ids, rows, bad = case_rows(root)
    per_class = np.stack([r["per_class"] for r in rows])
    return (np.array([r["softmin"] for r in rows], float), np.array([r["drawn_share"] for r in rows], float),
            base.worst_class(per_class), base.class_ratio(per_class),
            np.array([r["structure"] for r in rows], float), np.array(bad, bool))


def fresh_set(root: Path) -> tuple:
    """``(…, structure, corrupted)`` of a scored ``fresh_datasets.py`` folder (its ``scores.csv``)."""
    from napari_aleatoric.pipelines.table import read_scores

    rows = read_scores(root / ".aleatoric" / "scores.csv").rows
    *values, bad = base.fresh_set(root)
    structure = np.array([float(r["worst_structure"]) for r in rows], float)
    return (*values, structure, bad)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bq", type=Path, required=True, help="the run_all.py output folder (label-error benchmark)")
    parser.add_argument("--clean", type=Path, required=True, help="clean_dataset_scores.json with clean_structure")
    parser.add_argument("--per-class", type=Path, required=True, help="label_error_per_class.py's JSON with structure")
    parser.add_argument("--data", type=Path, required=True, help="folder of the noisy-training datasets")
    parser.add_argument("--fresh", type=Path, nargs="+", required=True, help="issue-16 folders (fresh_datasets.py)")
    parser.add_argument("--out", type=Path, required=True, help="JSON result")
    args = parser.parse_args(argv)
    clean_sets = clean_only_sets(args.clean)
    corrupted_sets = label_error_sets(args.bq, args.per_class)
    for kind in ("mni", "ct"):
        corrupted_sets[f"noisy-training {kind}"] = [noisy_training_set(args.data / f"{kind}-{seed}") for seed in SEEDS]
    *values, bad = fresh_set(args.fresh[0] / "mni_clean")
    assert not bad.any()
    clean_sets["issue-16 mni_clean"] = tuple(values)
    corrupted_sets["issue 16"] = [fresh_set(folder / name) for folder in args.fresh for name in base.FRESH_CORRUPTED]
    pooled = {"issue-16 clean cases": corrupted_sets["issue 16"]}
    report = base.evaluate(clean_sets, corrupted_sets, CANDIDATES, pooled)
    report.update({"round": 6, "command": " ".join(["python", *sys.argv]), "machine": platform.platform(),
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
