"""Compare label-quality candidates measured with ``label_quality_rerun.py`` on the same sets and
seeds, by the decision rule of docs/label_quality.md, "Classifier, eighth round".

Each ``NAME=FILE`` is one candidate's ``label_quality_rerun.py --out`` JSON; the first is the
reference. Per candidate: the mean ``issue_rank`` AUROC over the sets with errors (seeds already
averaged per set), the mean per kind of set (the folder name: ``ct_sizes``, ``mni_subtle`` …),
flag recall under the shipped flag, clean cases flagged on the clean-only sets, and whether it
passes against the reference::

    python benchmarks/classifier_candidates.py A=/work/exp_A.json B=/work/exp_B.json C=/work/exp_C.json \\
        --out benchmarks/results/classifier_round8.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

#: the primary figure must rise by more than this
MIN_GAIN = 0.005
#: no kind of set may fall by more than this
MAX_KIND_LOSS = 0.01
#: the kind whose mean may not fall at all
GUARDED_KIND = "ct_sizes"


def summary(report: dict) -> dict:
    """One candidate's figures: mean AUROC over sets with errors, per kind, recall, clean flagged."""
    per_kind, aurocs, recalls = defaultdict(list), [], []
    clean_flagged, clean_total = defaultdict(int), defaultdict(int)
    for name, entry in report["sets"].items():
        kind = name.split("/")[-1]
        if "mean_issue_rank" in entry:
            aurocs.append(entry["mean_issue_rank"])
            per_kind[kind].append(entry["mean_issue_rank"])
            recalls.append(entry["mean_recall"])
        else:
            clean_flagged[kind] += sum(entry["clean_flagged"])
            clean_total[kind] += entry["clean"] * len(entry["seeds"])
    return {"sets_with_errors": len(aurocs), "mean_issue_rank_auroc": round(float(np.mean(aurocs)), 4),
            "per_kind": {k: round(float(np.mean(v)), 4) for k, v in sorted(per_kind.items())},
            "worst_set": round(float(np.min(aurocs)), 4),
            "mean_recall_shipped_flag": round(float(np.mean(recalls)), 4),
            "clean_flagged_shipped_flag": {k: f"{clean_flagged[k]} of {clean_total[k]}" for k in sorted(clean_total)}}


def passes(candidate: dict, reference: dict) -> tuple[bool, list[str]]:
    """The decision rule: ``(passes, reasons it fails)``."""
    reasons = []
    gain = candidate["mean_issue_rank_auroc"] - reference["mean_issue_rank_auroc"]
    if gain <= MIN_GAIN:
        reasons.append(f"mean AUROC {gain:+.4f} (needs > +{MIN_GAIN})")
    for kind, value in reference["per_kind"].items():
        change = candidate["per_kind"][kind] - value
        if kind == GUARDED_KIND and change < 0:
            reasons.append(f"{kind} {change:+.4f} (may not fall)")
        elif change < -MAX_KIND_LOSS:
            reasons.append(f"{kind} {change:+.4f} (falls by more than {MAX_KIND_LOSS})")
    return not reasons, reasons


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", nargs="+", help="NAME=FILE, the reference first")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    reports = {name: json.loads(Path(path).read_text()) for name, path in (c.split("=", 1) for c in args.candidates)}
    set_lists = {name: sorted(r["sets"]) for name, r in reports.items()}
    if len({tuple(v) for v in set_lists.values()}) != 1:
        raise SystemExit("the candidates were not measured on the same sets")
    summaries = {name: summary(r) for name, r in reports.items()}
    reference = next(iter(summaries))
    out = {"command": " ".join(["python", *sys.argv]), "reference": reference,
           "rule": f"mean AUROC gain > {MIN_GAIN}, {GUARDED_KIND} mean not lower, no kind lower by > {MAX_KIND_LOSS}",
           "candidates": {}}
    for name, figures in summaries.items():
        entry = dict(figures, command=reports[name]["command"], commit=reports[name]["commit"])
        if name != reference:
            entry["passes"], entry["fails_because"] = passes(figures, summaries[reference])
        out["candidates"][name] = entry
        print(name, json.dumps(entry, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
