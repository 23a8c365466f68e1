"""Flag, tenth round (docs/label_quality.md): lower ``label_issue`` thresholds where the cases are single slices.

The ninth round raised the ``label_issue`` parts' thresholds (its own part to z > 3, the agreement
part to z > 2.5) for clean CT volumes, whose ``label_issue`` has a heavy upper tail (a softmin over
all voxels depends on the volume's size, and these sets mix 6- to 40-slice volumes). Candidates
keep the ninth round's rule for volumes and lower those two thresholds only in a table of single
slices (no case has a ``worst_structure``: it is defined for volumes only). Corpus as in
``flag_rule_round9.py`` with every seen draw in ``--fresh``, and the ``mni_clean`` sets of all of them
pooled (each draw flagged on its own) in place of the first draw's alone::

    python benchmarks/flag_rule_round10.py --bq benchmarks/results --clean benchmarks/results/clean_dataset_scores_v10.json \\
        --per-class benchmarks/results/label_error_per_class_v10.json --fresh /work/fresh14 /work/fresh15 /work/fresh16 \\
        /work/fresh17 /work/fresh18 /work/fresh19 /work/fresh20 --out benchmarks/results/flag_rule_choice_round10.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import flag_rule_round7 as round7  # noqa: E402
import flag_rule_round8 as round8  # noqa: E402
import flag_rule_round9 as round9  # noqa: E402


def single_slices(structure: np.ndarray) -> bool:
    """Whether a table is of single slices: no case has a finite worst-structure share."""
    return not np.isfinite(np.asarray(structure, dtype=np.float64)).any()


def rule(*, own_z: float = 3.0, agree_z: float = 2.5):
    """The ninth round's rule for volumes; in a table of single slices its ``label_issue`` part at
    z > ``own_z`` and its agreement part at z > ``agree_z``."""
    volumes = round9.rule(own_z=3.0, agree_z=2.5, structure=0.6)
    slices = round9.rule(own_z=own_z, agree_z=agree_z, structure=0.6)

    def flags(li, c, w, r, s, o):
        return (slices if single_slices(s) else volumes)(li, c, w, r, s, o)
    return flags


CANDIDATES = {
    "1. round 9 (the rule until now)": rule(),
    "2. slices: label_issue z>2.5": rule(own_z=2.5),
    "3. slices: label_issue z>2": rule(own_z=2.0),
    "4. slices: agreement z>2": rule(agree_z=2.0),
    "5. slices: agreement z>1.5": rule(agree_z=1.5),
    "6. slices: 2 and 4": rule(own_z=2.5, agree_z=2.0),
    "7. slices: 3 and 5": rule(own_z=2.0, agree_z=1.5),
}


def main(argv=None) -> int:
    args = round8.corpus_arguments(__doc__.splitlines()[0], argv)
    clean_sets, corrupted_sets, pooled = round8.corpus(args.bq, args.clean, args.per_class, args.fresh)
    del clean_sets["issue-16 mni_clean"]
    pooled["issue-16 mni_clean"] = [round7.fresh_set(folder / "mni_clean") for folder in args.fresh]
    pooled["issue-16 ct_clean"] = [round7.fresh_set(folder / "ct_clean") for folder in args.fresh]
    for name in ("issue-16 mni_clean", "issue-16 ct_clean"):
        assert not any(bad.any() for *_values, bad in pooled[name])
    kinds = {name: ("slices" if single_slices(values[4]) else "volumes") for name, values in clean_sets.items()}
    kinds.update({f"{family} {i}": ("slices" if single_slices(values[4]) else "volumes")
                  for family, tables in corrupted_sets.items() for i, values in enumerate(tables)})
    round9.decide(args, clean_sets, corrupted_sets, pooled, CANDIDATES, 10,
                  {"mni_clean": [f"{f}/mni_clean" for f in args.fresh], "ct_clean": [f"{f}/ct_clean" for f in args.fresh]},
                  table_kinds=kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
