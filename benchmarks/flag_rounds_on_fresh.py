"""The fourth and fifth flag rounds' rules side by side on one fresh_datasets.py folder (errors found,
clean cases flagged, per set), from the sets' ``scores.csv``::

    python benchmarks/flag_rounds_on_fresh.py /work/fresh6
"""
import sys
from pathlib import Path
import numpy as np
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
import flag_rule_choice as F
r4 = F.CANDIDATES_ROUND5["label_issue z>2.5 or contradicted>=max(15%, 2x median) or class_ratio>=5"]
r5 = F.CANDIDATES_ROUND5["round 4 or (label_issue z>1.5 and class_max z>1.5)"]
tot = {"r4": [0, 0, 0], "r5": [0, 0, 0]}
for name in ("mni_clean",) + F.FRESH_CORRUPTED:
    li, c, w, r, bad = F.fresh_set(Path(sys.argv[1]) / name)
    for key, rule in (("r4", r4), ("r5", r5)):
        f = rule(li, c, w, r)
        tot[key][0] += int(f[bad].sum()); tot[key][1] += int(bad.sum()); tot[key][2] += int(f[~bad].sum())
    print(name, "r4 found", int(r4(li, c, w, r)[bad].sum()), "clean", int(r4(li, c, w, r)[~bad].sum()),
          "| r5 found", int(r5(li, c, w, r)[bad].sum()), "clean", int(r5(li, c, w, r)[~bad].sum()))
print(tot)
