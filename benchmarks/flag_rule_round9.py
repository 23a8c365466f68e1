"""Flag, ninth round (docs/label_quality.md): the all-clean CT set among the clean-only sets.

Candidates: the shipped rule (the seventh round's) and stricter settings of its parts: the
agreement part at z > 2 or > 2.5 or left out, ``label_issue``'s own part at z > 3, structure
≥ 60 %, and combinations. Corpus as in ``flag_rule_round8.py`` (``--fresh``: every seen draw), plus
a clean-only set of the ``ct_clean`` cases of every ``--fresh`` folder, each draw flagged on its
own and the flags pooled::

    python benchmarks/flag_rule_round9.py --bq benchmarks/results --clean benchmarks/results/clean_dataset_scores_v10.json \\
        --per-class benchmarks/results/label_error_per_class_v10.json --fresh /work/fresh14 /work/fresh15 /work/fresh16 \\
        /work/fresh17 --out benchmarks/results/flag_rule_choice_round9.json
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import flag_rule_choice as base  # noqa: E402
import flag_rule_round7 as round7  # noqa: E402
import flag_rule_round8 as round8  # noqa: E402
from flag_rule_choice import _ge, _gt, _median_times  # noqa: E402

from napari_aleatoric.labelquality.flag import robust_z  # noqa: E402


def rule(*, own_z: float = 2.5, agree_z: float | None = 1.5, structure: float = 0.5):
    """The seventh round's rule with the given thresholds (``agree_z=None``: no agreement part)."""
    def flags(li, c, w, r, s, o):
        zi = robust_z(li)
        out = _gt(zi, own_z) | _median_times(c, 2.0, 0.15) | _ge(r, 5.0) | _ge(s, structure) | _ge(o, 0.7)
        if agree_z is not None:
            out |= _gt(zi, agree_z) & _gt(robust_z(w), agree_z)
        return out
    return flags


CANDIDATES = {
    "1. round 7 (the rule until now)": rule(),
    "2. agreement z>2": rule(agree_z=2.0),
    "3. agreement z>2.5": rule(agree_z=2.5),
    "4. no agreement part": rule(agree_z=None),
    "5. label_issue z>3": rule(own_z=3.0),
    "6. structure>=60%": rule(structure=0.6),
    "7. 2 and 5": rule(agree_z=2.0, own_z=3.0),
    "8. 2 and 6": rule(agree_z=2.0, structure=0.6),
    "9. 2, 5 and 6": rule(agree_z=2.0, own_z=3.0, structure=0.6),
    "10. 3, 5 and 6": rule(agree_z=2.5, own_z=3.0, structure=0.6),
}


def main(argv=None) -> int:
    args = round8.corpus_arguments(__doc__.splitlines()[0], argv)
    clean_sets, corrupted_sets, pooled = round8.corpus(args.bq, args.clean, args.per_class, args.fresh)
    pooled["issue-16 ct_clean"] = [round7.fresh_set(folder / "ct_clean") for folder in args.fresh]
    assert not any(bad.any() for *_values, bad in pooled["issue-16 ct_clean"])
    decide(args, clean_sets, corrupted_sets, pooled, CANDIDATES, 9, {"ct_clean": [f"{f}/ct_clean" for f in args.fresh]})
    return 0


def decide(args, clean_sets: dict, corrupted_sets: dict, pooled: dict, candidates: dict, round_number: int,
           sets: dict, **extra) -> dict:
    """Evaluate ``candidates`` (:func:`flag_rule_choice.evaluate`), keep the first (the rule until then)
    when none is eligible, write the report with the command, machine, ``sets`` and ``extra`` to
    ``args.out``, print it, and return it."""
    report = base.evaluate(clean_sets, corrupted_sets, candidates, pooled)
    if not report["candidates"][report["chosen"]]["eligible"]:
        report["chosen"], report["how"] = next(iter(candidates)), "no candidate eligible: nothing changes"
    report.update({"round": round_number, "command": " ".join(["python", *sys.argv]), "machine": platform.platform(),
                   **extra,
                   "sets": {"issue 16 order": [f"{f}/{n}" for f in args.fresh for n in base.FRESH_CORRUPTED], **sets}})
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    base.print_report(report)
    return report


if __name__ == "__main__":
    sys.exit(main())
