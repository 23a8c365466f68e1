"""The fourth to tenth flag rounds' rules side by side on fresh_datasets.py folders (errors found,
clean cases flagged, and the queue's AUROC with each rule's flagged cases first, per set; then the
errors found and clean cases flagged pooled over every folder given, and the tables where the
product's flag, :func:`napari_aleatoric.labelquality.flag.flag_cases` on the code on the path, differs
from the tenth round's rule), from the sets' ``scores.csv``::

    python benchmarks/flag_rounds_on_fresh.py /work/fresh13
    python benchmarks/flag_rounds_on_fresh.py /work/fresh14 /work/fresh15 /work/fresh16 /work/fresh17   # seen, pooled
"""
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
import flag_rule_choice as F  # noqa: E402
import flag_rule_round6 as R6  # noqa: E402
import flag_rule_round7 as R7  # noqa: E402
import flag_rule_round9 as R9  # noqa: E402
import flag_rule_round10 as R10  # noqa: E402

from scored_tables import scored_table  # noqa: E402

from napari_aleatoric.labelquality.flag import flag_cases  # noqa: E402
from napari_aleatoric.pipelines.table import issue_ranks  # noqa: E402

_r4 = F.CANDIDATES_ROUND5["label_issue z>2.5 or contradicted>=max(15%, 2x median) or class_ratio>=5"]
RULES = {"round 4": lambda li, c, w, r, s, o: _r4(li, c, w, r),
         "round 5": lambda li, c, w, r, s, o: R6.CANDIDATES["round 5 (the rule until now)"](li, c, w, r, s),
         "round 6": R7.CANDIDATES["round 6 (the rule until now)"],
         "round 7": R7.CANDIDATES["round 6 or outline>=70%"],
         "round 9": R9.CANDIDATES["10. 3, 5 and 6"],
         "round 10": R10.CANDIDATES["7. slices: 3 and 5"]}
totals = {key: {"found": 0, "errors": 0, "clean flagged": 0, "clean": 0} for key in RULES}
differing = []
for folder, name in [(folder, name) for folder in sys.argv[1:] for name in ("mni_clean", "ct_clean") + F.FRESH_CORRUPTED]:
    root = Path(folder) / name
    if not root.is_dir():
        continue
    *values, bad = R7.fresh_set(root)
    rows = scored_table(root).rows
    if list(flag_cases(rows)[0]) != [bool(f) for f in RULES["round 10"](*values)]:
        differing.append(f"{Path(folder).name}/{name}")
    parts = []
    for key, rule in RULES.items():
        flags = rule(*values)
        found, clean = int(flags[bad].sum()), int(flags[~bad].sum())
        totals[key]["found"] += found
        totals[key]["errors"] += int(bad.sum())
        totals[key]["clean flagged"] += clean
        totals[key]["clean"] += int((~bad).sum())
        order = np.nan_to_num(np.array(issue_ranks(rows, [bool(f) for f in flags]), float), nan=-1.0)
        auroc = float(roc_auc_score(bad, order)) if bad.any() else None
        parts.append(f"{key} found {found} of {int(bad.sum())}, clean {clean}"
                     + (f", AUROC {auroc:.2f}" if auroc is not None else ""))
    print(f"{Path(folder).name}/{name:<13}", " | ".join(parts))
print(totals)
print(f"tables where the product's flag differs from round 10: {len(differing)} {differing}")
