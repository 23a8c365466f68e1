"""Flag, eighth round (docs/label_quality.md): ``label_issue``'s robust z with the spread of the lower half.

Candidates: the shipped rule (the seventh round's) and that rule with ``label_issue``'s z taken
against the spread of the values at or below the median (:func:`lower_half_z`), its own part at
> 2.5, > 3 or > 2, and once with the worst class's z of the agreement part on the lower half too.
Selection as in ``flag_rule_round7.py`` on a smaller corpus, every value read from files: the
label-error families and clean-only sets from the committed version-10 values (``--bq`` is a folder
holding the benchmark's ``results.json``, e.g. ``benchmarks/results``), the issue-16 family, its
pooled clean cases and the all-clean set from the ``--fresh`` folders' ``scores.csv``::

    python benchmarks/flag_rule_round8.py --bq benchmarks/results --clean benchmarks/results/clean_dataset_scores_v10.json \\
        --per-class benchmarks/results/label_error_per_class_v10.json --fresh /work/fresh14 /work/fresh15 \\
        --out benchmarks/results/flag_rule_choice_round8.json

The seventh round's candidates are evaluated on the same corpus and written beside (not chosen from).
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
import flag_rule_round7 as round7  # noqa: E402
from flag_rule_choice import _ge, _gt, _median_times  # noqa: E402

from napari_aleatoric.labelquality.flag import MAD_SCALE, MEAN_ABS_SCALE, MIN_CASES, robust_z  # noqa: E402


def lower_half_z(values) -> np.ndarray:
    """``(x − median) / scale`` with the scale from the finite values at or below the median only.

    ``scale = 1.4826 · median |x_i − median|`` over those values; where 0, ``1.2533 · mean |x_i −
    median|``; where that is 0 too or fewer than 4 values are finite, every z is NaN.

    Args:
        values: ``(N,)`` numbers, NaN where unknown.

    Returns:
        ``(N,)`` float64.
    """
    x = np.asarray(values, dtype=np.float64)
    known = x[np.isfinite(x)]
    if known.size < MIN_CASES:
        return np.full(x.shape, np.nan)
    centre = float(np.median(known))
    below = np.abs(known[known <= centre] - centre)
    scale = MAD_SCALE * float(np.median(below)) or MEAN_ABS_SCALE * float(below.mean())
    return (x - centre) / scale if scale > 0 else np.full(x.shape, np.nan)


def _rule(li, c, w, r, s, o, *, issue_z, own_threshold, worst_z):
    """The seventh round's rule with the z functions and the ``label_issue`` part's threshold given."""
    zi = issue_z(li)
    return (_gt(zi, own_threshold) | _median_times(c, 2.0, 0.15) | _ge(r, 5.0)
            | (_gt(zi, 1.5) & _gt(worst_z(w), 1.5)) | _ge(s, 0.5) | _ge(o, 0.7))


def _candidate(issue_z, own_threshold, worst_z=robust_z):
    return lambda li, c, w, r, s, o: _rule(li, c, w, r, s, o, issue_z=issue_z, own_threshold=own_threshold,
                                           worst_z=worst_z)


CANDIDATES = {
    "round 7 (the rule until now)": _candidate(robust_z, 2.5),
    "round 7, label_issue z on the lower half, >2.5": _candidate(lower_half_z, 2.5),
    "round 7, label_issue z on the lower half, >3": _candidate(lower_half_z, 3.0),
    "round 7, label_issue z on the lower half, >2": _candidate(lower_half_z, 2.0),
    "round 7, label_issue and worst-class z on the lower half, >2.5": _candidate(lower_half_z, 2.5, lower_half_z),
}


def corpus(bq: Path, clean: Path, per_class: Path, fresh: list[Path]) -> tuple[dict, dict, dict]:
    """This round's sets: ``(clean-only sets, corrupted families, pooled clean-only sets)`` as
    :func:`flag_rule_choice.evaluate` takes them (the label-error values from the committed files,
    the issue-16 sets of the ``fresh`` folders, the first folder's ``mni_clean``)."""
    clean_sets = round7.clean_only_sets(clean)
    corrupted_sets = round7.label_error_sets(bq, per_class)
    *values, bad = round7.fresh_set(fresh[0] / "mni_clean")
    assert not bad.any()
    clean_sets["issue-16 mni_clean"] = tuple(values)
    corrupted_sets["issue 16"] = [round7.fresh_set(folder / name) for folder in fresh for name in base.FRESH_CORRUPTED]
    return clean_sets, corrupted_sets, {"issue-16 clean cases": corrupted_sets["issue 16"]}


def corpus_arguments(description: str, argv=None) -> argparse.Namespace:
    """The command line of a round on this corpus: ``--bq``, ``--clean``, ``--per-class``, ``--fresh``, ``--out``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bq", type=Path, required=True, help="folder holding the label-error benchmark's results.json")
    parser.add_argument("--clean", type=Path, required=True, help="clean_dataset_scores.json with clean_outline")
    parser.add_argument("--per-class", type=Path, required=True, help="label_error_per_class.py's JSON with outline")
    parser.add_argument("--fresh", type=Path, nargs="+", required=True, help="issue-16 folders (fresh_datasets.py)")
    parser.add_argument("--out", type=Path, required=True, help="JSON result")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = corpus_arguments(__doc__.splitlines()[0], argv)
    clean_sets, corrupted_sets, pooled = corpus(args.bq, args.clean, args.per_class, args.fresh)
    report = base.evaluate(clean_sets, corrupted_sets, CANDIDATES, pooled)
    beside = base.evaluate(clean_sets, corrupted_sets, round7.CANDIDATES, pooled)
    report.update({"round": 8, "command": " ".join(["python", *sys.argv]), "machine": platform.platform(),
                   "sets": {"issue 16 order": [f"{f}/{n}" for f in args.fresh for n in base.FRESH_CORRUPTED]},
                   "round 7 candidates on this corpus": beside})
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    base.print_report(report)
    print("\nthe seventh round's candidates on this corpus (not chosen from):")
    base.print_report(beside)
    return 0


if __name__ == "__main__":
    sys.exit(main())
