"""The fourth to seventh flag rounds' rules side by side on fresh_datasets.py folders (errors
found, clean cases flagged, per set, then pooled over every folder given), from the sets' ``scores.csv``::

    python benchmarks/flag_rounds_on_fresh.py /work/fresh13
    python benchmarks/flag_rounds_on_fresh.py /work/fresh /work/fresh{2,3,4,5,6,7,8,9,10}   # the seen sets, pooled
"""
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
import flag_rule_choice as F  # noqa: E402
import flag_rule_round6 as R6  # noqa: E402
import flag_rule_round7 as R7  # noqa: E402

_r4 = F.CANDIDATES_ROUND5["label_issue z>2.5 or contradicted>=max(15%, 2x median) or class_ratio>=5"]
RULES = {"round 4": lambda li, c, w, r, s, o: _r4(li, c, w, r),
         "round 5": lambda li, c, w, r, s, o: R6.CANDIDATES["round 5 (the rule until now)"](li, c, w, r, s),
         "round 6": R7.CANDIDATES["round 6 (the rule until now)"],
         "round 7": R7.CANDIDATES["round 6 or outline>=70%"]}
totals = {key: {"found": 0, "errors": 0, "clean flagged": 0} for key in RULES}
for folder, name in [(folder, name) for folder in sys.argv[1:] for name in ("mni_clean",) + F.FRESH_CORRUPTED]:
    *values, bad = R7.fresh_set(Path(folder) / name)
    parts = []
    for key, rule in RULES.items():
        flags = rule(*values)
        found, clean = int(flags[bad].sum()), int(flags[~bad].sum())
        totals[key]["found"] += found
        totals[key]["errors"] += int(bad.sum())
        totals[key]["clean flagged"] += clean
        parts.append(f"{key} found {found} of {int(bad.sum())}, clean {clean}")
    print(f"{Path(folder).name}/{name:<13}", " | ".join(parts))
print(totals)
