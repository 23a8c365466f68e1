"""Choose the review queue's flag rule on tuning data, by a rule fixed beforehand (docs/label_quality.md).

Tuning data (all of it looked at before):
- clean-only sets (false alarms): the label-error benchmark's clean cases cross-validated among
  themselves, ``clean_scores`` / ``clean_contradicted`` of ``<bq>/clean_dataset_scores.json``
  (``benchmarks/clean_dataset_scores.py --out <bq>``);
- corrupted sets (recall): every replicate of the label-error benchmark (``<bq>/results.json``,
  methods ``learned_softmin`` = ``label_issue`` and ``learned_contradicted`` = ``contradicted``) and
  the noisy-label training datasets ``<data>/{mni,ct}-c{100,1,2}`` (per-case values recomputed from
  the cached out-of-fold maps, as ``benchmarks/noisy_training/case_scores.py`` does).

Selection: among the candidates flagging ≤ 5 % of the cases of every clean-only set, the largest
mean recall over the five corrupted families (label-error MRI, nuclei, CT; noisy-training MRI, CT;
each averaged over its replicates / seeds); ties within 0.005 → the lower mean false-alarm rate
among the clean cases of the corrupted sets, then the earlier candidate. None qualifying → the
lowest worst clean-only false-alarm rate.

    python benchmarks/flag_rule_choice.py --bq /work/bq4 --data /work/bench12data \
        --out benchmarks/results/flag_rule_choice.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from napari_aleatoric.labelquality.flag import robust_z  # noqa: E402

MAX_CLEAN_FALSE_ALARMS = 0.05
TIE = 0.005
NOISY = ("mni-c100", "mni-c1", "mni-c2", "ct-c100", "ct-c1", "ct-c2")


def _top10(li, _c):
    finite = np.isfinite(li)
    if finite.sum() < 2:
        return np.zeros(li.shape, bool)
    return finite & (li > np.quantile(li[finite], 0.9))


def _gt(values, threshold):
    return np.nan_to_num(values, nan=-np.inf) > threshold


def _ge(values, threshold):
    return np.nan_to_num(values, nan=-np.inf) >= threshold


#: name → rule(label_issue, contradicted) → flags; in the order of the protocol (ties: earlier wins)
CANDIDATES = {
    "label_issue z>2": lambda li, c: _gt(robust_z(li), 2.0),
    "label_issue z>2.5": lambda li, c: _gt(robust_z(li), 2.5),
    "label_issue z>3": lambda li, c: _gt(robust_z(li), 3.0),
    "contradicted>=5%": lambda li, c: _ge(c, 0.05),
    "contradicted>=10%": lambda li, c: _ge(c, 0.10),
    "contradicted>=15%": lambda li, c: _ge(c, 0.15),
    "contradicted>=20%": lambda li, c: _ge(c, 0.20),
    "contradicted z>2.5": lambda li, c: _gt(robust_z(c), 2.5),
    "contradicted z>3": lambda li, c: _gt(robust_z(c), 3.0),
    "label_issue z>2.5 or contradicted>=15%": lambda li, c: _gt(robust_z(li), 2.5) | _ge(c, 0.15),
    "label_issue z>3 or contradicted>=10%": lambda li, c: _gt(robust_z(li), 3.0) | _ge(c, 0.10),
    "label_issue z>3 or contradicted z>3": lambda li, c: _gt(robust_z(li), 3.0) | _gt(robust_z(c), 3.0),
    "label_issue z>2 and contradicted>=5%": lambda li, c: _gt(robust_z(li), 2.0) & _ge(c, 0.05),
    "top 10% of label_issue (old rule)": _top10,
}


def clean_only_sets(bq: Path) -> dict:
    """``{dataset: (label_issue, contradicted)}`` of the clean-only runs."""
    report = json.loads((bq / "clean_dataset_scores.json").read_text())
    return {f"label-error {name}": (np.array(v["clean_scores"], float), np.array(v["clean_contradicted"], float))
            for name, v in report.items()}


def label_error_sets(bq: Path) -> dict:
    """``{family: [(label_issue, contradicted, corrupted) per replicate]}``."""
    results = json.loads((bq / "results.json").read_text())
    out = {}
    for name, evaluation in results["datasets"].items():
        out[f"label-error {name}"] = [
            (np.array(evaluation["scores"]["learned_softmin"][rep], float),
             np.array(evaluation["scores"]["learned_contradicted"][rep], float),
             np.array(cases["corrupted"], bool))
            for rep, cases in evaluation["cases"].items()]
    return out


def noisy_training_set(root: Path) -> tuple:
    """``(label_issue, contradicted, corrupted)`` of every scored case of one noisy-training dataset."""
    from labelnoise.methods import case_candidates

    from napari_aleatoric.data.dataset import load_case, open_dataset
    from napari_aleatoric.labelquality.scores import label_index
    from napari_aleatoric.training.label_issues import class_probabilities

    truth = json.loads((root / "truth.json").read_text())
    ds = open_dataset(root / "noisy")
    values = list(ds.foreground.values())
    li, c, bad = [], [], []
    for ref in ds.cases:
        path = ds.cache_dir / "quality" / f"{ref.case_id}.npz"
        if not path.is_file():
            continue
        with np.load(path) as npz:
            maps = npz["issue_maps"].astype(np.float32)
        label = load_case(ds, ref).label
        index = label_index(label if label.ndim == 3 else label[None], values)
        scores = case_candidates(class_probabilities(maps, index), index)
        li.append(scores["softmin"])
        c.append(scores["drawn_share"])
        bad.append(ref.case_id in truth["corrupted"])
    return np.array(li, float), np.array(c, float), np.array(bad, bool)


def evaluate(clean_sets: dict, corrupted_sets: dict) -> dict:
    """Every candidate's false-alarm rates and recalls, and the choice."""
    table = {}
    for name, rule in CANDIDATES.items():
        row = {"clean_only_false_alarms": {}, "recall": {}, "recall_per_replicate": {},
               "false_alarms_in_corrupted_sets": {}}
        for ds, (li, c) in clean_sets.items():
            row["clean_only_false_alarms"][ds] = round(float(rule(li, c).mean()), 4)
        for family, replicates in corrupted_sets.items():
            recalls, alarms = [], []
            for li, c, bad in replicates:
                flags = rule(li, c)
                recalls.append(float(flags[bad].mean()))
                alarms.append(float(flags[~bad].mean()))
            row["recall_per_replicate"][family] = [round(r, 3) for r in recalls]
            row["recall"][family] = round(float(np.mean(recalls)), 4)
            row["false_alarms_in_corrupted_sets"][family] = round(float(np.mean(alarms)), 4)
        row["worst_clean_only_false_alarms"] = max(row["clean_only_false_alarms"].values())
        row["eligible"] = row["worst_clean_only_false_alarms"] <= MAX_CLEAN_FALSE_ALARMS
        row["mean_recall"] = round(float(np.mean(list(row["recall"].values()))), 4)
        row["mean_false_alarms_in_corrupted_sets"] = round(
            float(np.mean(list(row["false_alarms_in_corrupted_sets"].values()))), 4)
        table[name] = row
    names = list(CANDIDATES)
    eligible = [n for n in names if table[n]["eligible"]]
    if eligible:
        best = max(table[n]["mean_recall"] for n in eligible)
        close = [n for n in eligible if table[n]["mean_recall"] >= best - TIE]
        chosen = min(close, key=lambda n: (table[n]["mean_false_alarms_in_corrupted_sets"], names.index(n)))
        how = "largest mean recall among the candidates with ≤ 5 % false alarms on every clean-only set"
    else:
        chosen = min(names, key=lambda n: (table[n]["worst_clean_only_false_alarms"], names.index(n)))
        how = "no candidate met ≤ 5 % on every clean-only set: the lowest worst clean-only false-alarm rate"
    return {"candidates": table, "chosen": chosen, "how": how}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bq", type=Path, required=True, help="the run_all.py output folder (label-error benchmark)")
    parser.add_argument("--data", type=Path, required=True, help="folder of the noisy-training datasets")
    parser.add_argument("--out", type=Path, required=True, help="JSON result")
    args = parser.parse_args(argv)
    clean_sets = clean_only_sets(args.bq)
    corrupted_sets = label_error_sets(args.bq)
    for kind in ("mni", "ct"):
        corrupted_sets[f"noisy-training {kind}"] = [noisy_training_set(args.data / name)
                                                    for name in NOISY if name.startswith(kind + "-")]
    report = evaluate(clean_sets, corrupted_sets)
    report["sets"] = {
        "clean_only": {ds: len(li) for ds, (li, _c) in clean_sets.items()},
        "corrupted": {family: [[int(len(bad)), int(bad.sum())] for _li, _c, bad in reps]
                      for family, reps in corrupted_sets.items()}}
    report["command"] = " ".join(["python benchmarks/flag_rule_choice.py"] + (argv if argv is not None else sys.argv[1:]))
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    width = max(len(n) for n in CANDIDATES)
    families = list(corrupted_sets)
    print(f"{'candidate':<{width}}  clean-only FA ({', '.join(clean_sets)})  | recall ({', '.join(families)}) | mean | FA in corrupted")
    for name, row in report["candidates"].items():
        fa = " / ".join(f"{v:.3f}" for v in row["clean_only_false_alarms"].values())
        rec = " / ".join(f"{v:.3f}" for v in row["recall"].values())
        print(f"{name:<{width}}  {fa}  | {rec} | {row['mean_recall']:.3f} | "
              f"{row['mean_false_alarms_in_corrupted_sets']:.3f}{'' if row['eligible'] else '  (not eligible)'}")
    print(f"chosen: {report['chosen']} ({report['how']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
