"""Choose the review queue's flag rule on tuning data, by a rule fixed beforehand (docs/label_quality.md).

Tuning data (all of it looked at before):
- clean-only sets (false alarms): the label-error benchmark's clean cases cross-validated among
  themselves, ``clean_scores`` / ``clean_contradicted`` / ``clean_class_max`` of
  ``clean_dataset_scores.json`` (``benchmarks/clean_dataset_scores.py --out <bq>``; ``--clean`` when
  it lies elsewhere); round 2 adds issue 16's all-clean set (``<fresh>/mni_clean``, its ``scores.csv``);
- corrupted sets (recall): every replicate of the label-error benchmark (``<bq>/results.json``,
  methods ``learned_softmin`` = ``label_issue``, ``learned_contradicted`` = ``contradicted`` and
  ``learned_class_share`` = the worst class's contradicted share) and the noisy-label training
  datasets ``<data>/{mni,ct}-c{100,1,2}`` (round 2: seeds 100, 1, 2, 3, 4; per-case values recomputed
  from the cached out-of-fold maps, as ``benchmarks/noisy_training/case_scores.py`` does); round 2
  adds the family "issue 16": the five fresh sets with errors (``<fresh>/{ct_sizes,mni_subtle,
  ct_rare,nuclei_tiles,mni_small}``, their ``scores.csv``; corrupted = ``truth.json``'s keys).

Every candidate sees four per-case values of one dataset: ``label_issue``, ``contradicted``,
``class_max`` (the largest per-class contradicted share, NaN where no class was judged) and
``class_ratio`` (round 3: the largest, over the classes, of the case's share of that class over the
class's median share in the dataset, floored at 0.01; :func:`class_ratio`). Round 2's list is round
1's 14 candidates followed by 13 that use ``class_max``; round 3's is round 2's followed by 9 that use
``class_ratio``, on round 2's data, with the label-error replicates' per-class shares from
``benchmarks/label_error_per_class.py`` (``--per-class``). Round 4's is round 3's followed by 7
dataset-relative replacements of the fixed ``contradicted ≥ 15 %`` part; it adds noisy-training seed
5, the issue-16 sets with errors of ``--fresh-more`` folders (the later fresh evaluations) to the
issue-16 family, and a fifth clean-only set, the clean cases of all issue-16 sets with errors pooled
(each table flagged on its own). ``--round 1`` / ``--round 2`` / ``--round 3`` rerun the earlier
rounds to check that their tables reproduce. Round 5's is round 4's followed by 8 rules that add,
to the shipped fourth-round rule, two moderate outlier signals that must agree (``label_issue``'s
robust z AND ``class_max``'s robust z, ``class_ratio`` or the case-wide share's robust z); its data
are round 4's plus the issue-16 sets of the fourth and fifth fresh evaluations (``--fresh-more``
/work/fresh2 /work/fresh3 /work/fresh4 /work/fresh5), every ``ct_rare`` re-scored with the fifth
queue round's code (a class drawn in fewer than 5 cases judged in none).

Selection: among the candidates flagging ≤ 5 % of the cases of every clean-only set, the largest
mean recall over the corrupted families (round 1: label-error MRI, nuclei, CT; noisy-training MRI,
CT; round 2 also issue 16; each averaged over its replicates / seeds / sets); ties within 0.005 →
the lower mean false-alarm rate among the clean cases of the corrupted sets, then the earlier
candidate. None qualifying → the lowest worst clean-only false-alarm rate.

    python benchmarks/flag_rule_choice.py --bq /work/bq4 --data /work/bench12data \
        --out benchmarks/results/flag_rule_choice.json
    python benchmarks/flag_rule_choice.py --round 2 --bq /work/bq4 --clean BQ2/clean_dataset_scores.json \
        --data /work/bench12data --fresh /work/fresh --out benchmarks/results/flag_rule_choice_round2.json
    python benchmarks/flag_rule_choice.py --round 3 --bq /work/bq4 \
        --clean benchmarks/results/clean_dataset_scores_round2.json \
        --per-class benchmarks/results/label_error_per_class.json --data /work/bench12data --fresh /work/fresh \
        --out benchmarks/results/flag_rule_choice_round3.json
    python benchmarks/flag_rule_choice.py --round 4 --bq /work/bq4 \
        --clean benchmarks/results/clean_dataset_scores_round2.json \
        --per-class benchmarks/results/label_error_per_class.json --data /work/bench12data --fresh /work/fresh \
        --fresh-more /work/fresh2 /work/fresh3 --out benchmarks/results/flag_rule_choice_round4.json
    python benchmarks/flag_rule_choice.py --round 5 --bq /work/bq4 \
        --clean benchmarks/results/clean_dataset_scores_round2.json \
        --per-class benchmarks/results/label_error_per_class.json --data /work/bench12data --fresh /work/fresh \
        --fresh-more /work/fresh2 /work/fresh3 /work/fresh4 /work/fresh5 \
        --out benchmarks/results/flag_rule_choice_round5.json
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
#: noisy-training corruption seeds per round
SEEDS = {1: ("c100", "c1", "c2"), 2: ("c100", "c1", "c2", "c3", "c4"), 3: ("c100", "c1", "c2", "c3", "c4"),
         4: ("c100", "c1", "c2", "c3", "c4", "c5"), 5: ("c100", "c1", "c2", "c3", "c4", "c5")}
#: issue 16's fresh sets (rounds 2-3): all clean, and with errors (one family)
FRESH_CLEAN = ("mni_clean",)
FRESH_CORRUPTED = ("ct_sizes", "mni_subtle", "ct_rare", "nuclei_tiles", "mni_small")


def _top10(li, _c, _w, _r):
    finite = np.isfinite(li)
    if finite.sum() < 2:
        return np.zeros(li.shape, bool)
    return finite & (li > np.quantile(li[finite], 0.9))


def _gt(values, threshold):
    return np.nan_to_num(values, nan=-np.inf) > threshold


def _ge(values, threshold):
    return np.nan_to_num(values, nan=-np.inf) >= threshold


#: name → rule(label_issue, contradicted, class_max) → flags; in the order of the protocol (ties: earlier wins)
CANDIDATES_ROUND1 = {
    "label_issue z>2": lambda li, c, w, r: _gt(robust_z(li), 2.0),
    "label_issue z>2.5": lambda li, c, w, r: _gt(robust_z(li), 2.5),
    "label_issue z>3": lambda li, c, w, r: _gt(robust_z(li), 3.0),
    "contradicted>=5%": lambda li, c, w, r: _ge(c, 0.05),
    "contradicted>=10%": lambda li, c, w, r: _ge(c, 0.10),
    "contradicted>=15%": lambda li, c, w, r: _ge(c, 0.15),
    "contradicted>=20%": lambda li, c, w, r: _ge(c, 0.20),
    "contradicted z>2.5": lambda li, c, w, r: _gt(robust_z(c), 2.5),
    "contradicted z>3": lambda li, c, w, r: _gt(robust_z(c), 3.0),
    "label_issue z>2.5 or contradicted>=15%": lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(c, 0.15),
    "label_issue z>3 or contradicted>=10%": lambda li, c, w, r: _gt(robust_z(li), 3.0) | _ge(c, 0.10),
    "label_issue z>3 or contradicted z>3": lambda li, c, w, r: _gt(robust_z(li), 3.0) | _gt(robust_z(c), 3.0),
    "label_issue z>2 and contradicted>=5%": lambda li, c, w, r: _gt(robust_z(li), 2.0) & _ge(c, 0.05),
    "top 10% of label_issue (old rule)": _top10,
}

#: round 2 (docs/label_quality.md, "Flag, second round"): round 1's, then rules on the worst class's share
CANDIDATES_ROUND2 = {
    **CANDIDATES_ROUND1,
    "class_max>=15%": lambda li, c, w, r: _ge(w, 0.15),
    "class_max>=20%": lambda li, c, w, r: _ge(w, 0.20),
    "class_max>=25%": lambda li, c, w, r: _ge(w, 0.25),
    "class_max>=30%": lambda li, c, w, r: _ge(w, 0.30),
    "class_max z>2.5": lambda li, c, w, r: _gt(robust_z(w), 2.5),
    "class_max z>3": lambda li, c, w, r: _gt(robust_z(w), 3.0),
    "label_issue z>2.5 or class_max>=20%": lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(w, 0.20),
    "label_issue z>2.5 or class_max>=25%": lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(w, 0.25),
    "label_issue z>2.5 or class_max>=30%": lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(w, 0.30),
    "label_issue z>2.5 or class_max z>3": lambda li, c, w, r: _gt(robust_z(li), 2.5) | _gt(robust_z(w), 3.0),
    "label_issue z>2.5 or contradicted>=15% or class_max z>3":
        lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(c, 0.15) | _gt(robust_z(w), 3.0),
    "label_issue z>2.5 or contradicted>=15% or class_max>=25%":
        lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(c, 0.15) | _ge(w, 0.25),
    "label_issue z>2.5 or contradicted>=15% or class_max>=30%":
        lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(c, 0.15) | _ge(w, 0.30),
}
#: round 3 (docs/label_quality.md, "Flag, third round"): round 2's, then rules on ``class_ratio``
CANDIDATES_ROUND3 = {
    **CANDIDATES_ROUND2,
    "class_ratio>=2": lambda li, c, w, r: _ge(r, 2.0),
    "class_ratio>=3": lambda li, c, w, r: _ge(r, 3.0),
    "class_ratio>=4": lambda li, c, w, r: _ge(r, 4.0),
    "class_ratio>=5": lambda li, c, w, r: _ge(r, 5.0),
    "label_issue z>2.5 or contradicted>=15% or class_ratio>=3":
        lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(c, 0.15) | _ge(r, 3.0),
    "label_issue z>2.5 or contradicted>=15% or class_ratio>=4":
        lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(c, 0.15) | _ge(r, 4.0),
    "label_issue z>2.5 or contradicted>=15% or class_ratio>=5":
        lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(c, 0.15) | _ge(r, 5.0),
    "label_issue z>2.5 or class_ratio>=4": lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(r, 4.0),
    "label_issue z>2.5 or class_ratio>=5": lambda li, c, w, r: _gt(robust_z(li), 2.5) | _ge(r, 5.0),
}


def _median_times(values, factor, floor):
    """``values ≥ max(floor, factor × the median of the finite values)`` (nothing where none is finite)."""
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, bool)
    return _ge(values, max(floor, factor * float(np.median(values[finite]))))


def _li(li):
    return _gt(robust_z(li), 2.5)


def _r5(r):
    return _ge(r, 5.0)


#: round 4 (docs/label_quality.md, "Flag, fourth round"): round 3's, then dataset-relative
#: replacements of the fixed ``contradicted ≥ 15 %`` part
CANDIDATES_ROUND4 = {
    **CANDIDATES_ROUND3,
    "label_issue z>2.5 or contradicted z>2.5 or class_ratio>=5":
        lambda li, c, w, r: _li(li) | _gt(robust_z(c), 2.5) | _r5(r),
    "label_issue z>2.5 or contradicted z>3 or class_ratio>=5":
        lambda li, c, w, r: _li(li) | _gt(robust_z(c), 3.0) | _r5(r),
    "label_issue z>2.5 or contradicted>=max(15%, 2x median) or class_ratio>=5":
        lambda li, c, w, r: _li(li) | _median_times(c, 2.0, 0.15) | _r5(r),
    "label_issue z>2.5 or contradicted>=max(15%, 3x median) or class_ratio>=5":
        lambda li, c, w, r: _li(li) | _median_times(c, 3.0, 0.15) | _r5(r),
    "label_issue z>2.5 or contradicted>=20% or class_ratio>=5":
        lambda li, c, w, r: _li(li) | _ge(c, 0.20) | _r5(r),
    "label_issue z>2.5 or (contradicted>=15% and contradicted z>2.5) or class_ratio>=5":
        lambda li, c, w, r: _li(li) | (_ge(c, 0.15) & _gt(robust_z(c), 2.5)) | _r5(r),
    "label_issue z>2.5 or contradicted>=max(10%, 2x median) or class_ratio>=5":
        lambda li, c, w, r: _li(li) | _median_times(c, 2.0, 0.10) | _r5(r),
}


def _current(li, c, r):
    """The fourth round's rule (the shipped flag before round 5)."""
    return _li(li) | _median_times(c, 2.0, 0.15) | _r5(r)


#: round 5 (docs/label_quality.md, "Flag, fifth round"): round 4's, then the shipped rule OR two
#: moderate outlier signals together (label_issue's robust z AND the worst class's or the case's
#: share): two partly independent signals agreeing are rarer on clean cases than either alone
CANDIDATES_ROUND5 = {
    **CANDIDATES_ROUND4,
    "round 4 or (label_issue z>1.5 and class_max z>1.5)":
        lambda li, c, w, r: _current(li, c, r) | (_gt(robust_z(li), 1.5) & _gt(robust_z(w), 1.5)),
    "round 4 or (label_issue z>2 and class_max z>2)":
        lambda li, c, w, r: _current(li, c, r) | (_gt(robust_z(li), 2.0) & _gt(robust_z(w), 2.0)),
    "round 4 or (label_issue z>1.5 and class_ratio>=3)":
        lambda li, c, w, r: _current(li, c, r) | (_gt(robust_z(li), 1.5) & _ge(r, 3.0)),
    "round 4 or (label_issue z>2 and class_ratio>=3)":
        lambda li, c, w, r: _current(li, c, r) | (_gt(robust_z(li), 2.0) & _ge(r, 3.0)),
    "round 4 or (label_issue z>1.5 and class_ratio>=2)":
        lambda li, c, w, r: _current(li, c, r) | (_gt(robust_z(li), 1.5) & _ge(r, 2.0)),
    "round 4 or (label_issue z>2 and class_ratio>=2)":
        lambda li, c, w, r: _current(li, c, r) | (_gt(robust_z(li), 2.0) & _ge(r, 2.0)),
    "round 4 or (label_issue z>1.5 and contradicted z>1.5)":
        lambda li, c, w, r: _current(li, c, r) | (_gt(robust_z(li), 1.5) & _gt(robust_z(c), 1.5)),
    "round 4 or (label_issue z>2 and contradicted z>2)":
        lambda li, c, w, r: _current(li, c, r) | (_gt(robust_z(li), 2.0) & _gt(robust_z(c), 2.0)),
}
CANDIDATES = {1: CANDIDATES_ROUND1, 2: CANDIDATES_ROUND2, 3: CANDIDATES_ROUND3, 4: CANDIDATES_ROUND4,
              5: CANDIDATES_ROUND5}
#: class_ratio: a class's median share below this is taken as this (a class almost never contradicted)
RATIO_FLOOR = 0.01


def _floats(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def _matrix(rows) -> np.ndarray:
    """``(N, C)`` float array of per-class shares (``None`` → NaN)."""
    return np.array([[np.nan if v is None else v for v in row] for row in rows], float).reshape(len(rows), -1)


def class_ratio(per_class: np.ndarray) -> np.ndarray:
    """``(N,)`` the round-3 score: the largest, over the classes, of a case's contradicted share of
    that class over ``max(RATIO_FLOOR, the class's median share over the dataset's cases where it is
    finite)``; NaN classes ignored, NaN where no class is finite.

    Args:
        per_class: ``(N, C)`` per-class contradicted shares of one dataset's cases (NaN = not judged).
    """
    per_class = np.asarray(per_class, float).reshape(len(per_class), -1)
    ratio = np.full(per_class.shape, np.nan)
    for k in range(per_class.shape[1]):
        finite = np.isfinite(per_class[:, k])
        if finite.any():
            ratio[finite, k] = per_class[finite, k] / max(RATIO_FLOOR, float(np.median(per_class[finite, k])))
    return worst_class(ratio)


def clean_only_sets(path: Path) -> dict:
    """``{dataset: (label_issue, contradicted, class_max, class_ratio)}`` of the clean-only runs
    (``clean_dataset_scores.json``; ``class_max`` / ``class_ratio`` NaN where the file predates them)."""
    report = json.loads(path.read_text())
    out = {}
    for name, v in report.items():
        n = len(v["clean_scores"])
        ratio = (class_ratio(_matrix(v["clean_contradicted_per_class"])) if "clean_contradicted_per_class" in v
                 else np.full(n, np.nan))
        out[f"label-error {name}"] = (_floats(v["clean_scores"]), _floats(v["clean_contradicted"]),
                                      _floats(v.get("clean_class_max", [None] * n)), ratio)
    return out


def label_error_sets(bq: Path, per_class: Path | None = None) -> dict:
    """``{family: [(label_issue, contradicted, class_max, class_ratio, corrupted) per replicate]}``.

    With ``per_class`` (``benchmarks/label_error_per_class.py``'s JSON, round 3) the recomputed
    ``label_issue``, ``contradicted`` and per-class shares are used (``class_max`` their largest);
    without it ``results.json``'s values, and ``class_ratio`` is NaN."""
    results = json.loads((bq / "results.json").read_text())
    recomputed = json.loads(per_class.read_text()) if per_class else None
    out = {}
    for name, evaluation in results["datasets"].items():
        scores = evaluation["scores"]
        replicates = []
        for rep, cases in evaluation["cases"].items():
            bad = np.array(cases["corrupted"], bool)
            if recomputed is not None:
                entry = recomputed[name]["replicates"][rep]
                assert entry["ids"] == cases["ids"], (name, rep)
                shares = _matrix(entry["per_class"])
                replicates.append((_floats(entry["label_issue"]), _floats(entry["contradicted"]),
                                   worst_class(shares), class_ratio(shares), bad))
            else:
                replicates.append((_floats(scores["learned_softmin"][rep]), _floats(scores["learned_contradicted"][rep]),
                                   _floats(scores["learned_class_share"][rep]) if "learned_class_share" in scores
                                   else np.full(len(bad), np.nan), np.full(len(bad), np.nan), bad))
        out[f"label-error {name}"] = replicates
    return out


def worst_class(per_class: np.ndarray) -> np.ndarray:
    """``(N,)`` largest finite value of each row of ``(N, C)``, NaN where none is finite."""
    per_class = np.asarray(per_class, float).reshape(len(per_class), -1)
    finite = np.isfinite(per_class)
    return np.where(finite.any(axis=1), np.where(finite, per_class, -np.inf).max(axis=1), np.nan)


def noisy_training_set(root: Path) -> tuple:
    """``(label_issue, contradicted, class_max, class_ratio, corrupted)`` of every scored case of one
    noisy-training dataset."""
    from noisy_training.case_scores import case_rows

    _ids, rows, bad = case_rows(root)
    li = [r["softmin"] for r in rows]
    c = [r["drawn_share"] for r in rows]
    per_class = [r["per_class"] for r in rows]
    per_class = np.stack(per_class)
    return (np.array(li, float), np.array(c, float), worst_class(per_class), class_ratio(per_class),
            np.array(bad, bool))


def fresh_set(root: Path) -> tuple:
    """``(label_issue, contradicted, class_max, class_ratio, corrupted)`` of a scored ``fresh_datasets.py``
    folder, read from its ``.aleatoric/scores.csv`` (``class_max``: the worst class over every judged class, as the queue's worst class of the third round;
    ``class_ratio`` from the ``contradicted_<class>`` columns)."""
    from napari_aleatoric.pipelines.table import read_scores

    rows = read_scores(root / ".aleatoric" / "scores.csv").rows
    corrupted = json.loads((root / "truth.json").read_text())["corrupted"]

    def number(value) -> float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan

    columns = [k for k in rows[0] if k.startswith("contradicted_")]
    shares = np.array([[number(r.get(k)) for k in columns] for r in rows], float).reshape(len(rows), -1)
    return (np.array([number(r.get("label_issue")) for r in rows], float),
            np.array([number(r.get("contradicted")) for r in rows], float),
            worst_class(shares),
            class_ratio(shares),
            np.array([r["case_id"] in corrupted for r in rows], bool))


def evaluate(clean_sets: dict, corrupted_sets: dict, candidates: dict = CANDIDATES_ROUND1,
             pooled_clean_sets: dict | None = None) -> dict:
    """Every candidate's false-alarm rates and recalls, and the choice.

    A set is a tuple of per-case values (rounds 1–5: ``label_issue, contradicted, class_max,
    class_ratio``; round 6 adds the worst structure's share), followed by the corrupted flags where
    it has errors; a candidate is called with the values.

    ``pooled_clean_sets`` (round 4): ``{name: [(label_issue, contradicted, class_max, class_ratio,
    corrupted) per table]}``, a clean-only set made of the clean cases of several tables, each
    table flagged on its own."""
    table = {}
    for name, rule in candidates.items():
        row = {"clean_only_false_alarms": {}, "recall": {}, "recall_per_replicate": {},
               "false_alarms_in_corrupted_sets": {}}
        for ds, values in clean_sets.items():
            row["clean_only_false_alarms"][ds] = round(float(rule(*values).mean()), 4)
        for ds, tables in (pooled_clean_sets or {}).items():
            # each table flagged on its own (medians / z per table), its clean cases pooled
            flagged = np.concatenate([rule(*values)[~bad] for *values, bad in tables])
            row["clean_only_false_alarms"][ds] = round(float(flagged.mean()), 4)
        for family, replicates in corrupted_sets.items():
            recalls, alarms = [], []
            for *values, bad in replicates:
                flags = rule(*values)
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
    names = list(candidates)
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
    parser.add_argument("--round", type=int, choices=(1, 2, 3, 4, 5), default=1, help="the protocol's round (candidates, data)")
    parser.add_argument("--bq", type=Path, required=True, help="the run_all.py output folder (label-error benchmark)")
    parser.add_argument("--clean", type=Path, default=None,
                        help="clean_dataset_scores.json (default: <bq>/clean_dataset_scores.json)")
    parser.add_argument("--data", type=Path, required=True, help="folder of the noisy-training datasets")
    parser.add_argument("--fresh", type=Path, default=None, help="folder of issue 16's fresh datasets (rounds 2-3)")
    parser.add_argument("--fresh-more", type=Path, nargs="*", default=[],
                        help="round 4: more folders of issue-16 sets with errors (their mni_clean is not read)")
    parser.add_argument("--per-class", type=Path, default=None,
                        help="label_error_per_class.py's JSON: the label-error replicates' per-class shares (round 3)")
    parser.add_argument("--out", type=Path, required=True, help="JSON result")
    args = parser.parse_args(argv)
    if args.round >= 2 and args.fresh is None:
        parser.error("--round 2 and 3 need --fresh")
    if args.round >= 3 and args.per_class is None:
        parser.error("--round 3 and 4 need --per-class")
    if args.round >= 4 and not args.fresh_more:
        parser.error("--round 4 and 5 need --fresh-more")
    candidates = CANDIDATES[args.round]
    clean_sets = clean_only_sets(args.clean or args.bq / "clean_dataset_scores.json")
    corrupted_sets = label_error_sets(args.bq, args.per_class if args.round >= 3 else None)
    for kind in ("mni", "ct"):
        corrupted_sets[f"noisy-training {kind}"] = [noisy_training_set(args.data / f"{kind}-{seed}")
                                                    for seed in SEEDS[args.round]]
    if args.round >= 2:
        for name in FRESH_CLEAN:
            li, c, w, r, bad = fresh_set(args.fresh / name)
            assert not bad.any(), name
            clean_sets[f"issue-16 {name}"] = (li, c, w, r)
        corrupted_sets["issue 16"] = [fresh_set(args.fresh / name) for name in FRESH_CORRUPTED]
    pooled = {}
    if args.round >= 4:
        corrupted_sets["issue 16"] += [fresh_set(folder / name) for folder in args.fresh_more
                                       for name in FRESH_CORRUPTED]
        pooled["issue-16 clean cases"] = corrupted_sets["issue 16"]
    report = evaluate(clean_sets, corrupted_sets, candidates, pooled)
    report["round"] = args.round
    report["sets"] = {
        "clean_only": {**{ds: len(li) for ds, (li, _c, _w, _r) in clean_sets.items()},
                       **{ds: int(sum((~bad).sum() for *_v, bad in tables)) for ds, tables in pooled.items()}},
        "corrupted": {family: [[int(len(bad)), int(bad.sum())] for _li, _c, _w, _r, bad in reps]
                      for family, reps in corrupted_sets.items()}}
    if args.round >= 2:
        report["sets"]["issue 16 order"] = [f"{folder}/{name}" for folder in [args.fresh, *args.fresh_more]
                                            for name in FRESH_CORRUPTED] if args.round >= 4 else list(FRESH_CORRUPTED)
    report["command"] = " ".join(["python benchmarks/flag_rule_choice.py"] + (argv if argv is not None else sys.argv[1:]))
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print_report(report)
    return 0


def print_report(report: dict) -> None:
    """One line per candidate of :func:`evaluate`'s report (false alarms, recalls, mean, false alarms in
    the corrupted sets), then the choice."""
    rows = report["candidates"]
    width = max(len(n) for n in rows)
    first = next(iter(rows.values()))
    print(f"{'candidate':<{width}}  clean-only FA ({', '.join(first['clean_only_false_alarms'])})  "
          f"| recall ({', '.join(first['recall'])}) | mean | FA in corrupted")
    for name, row in rows.items():
        fa = " / ".join(f"{v:.3f}" for v in row["clean_only_false_alarms"].values())
        rec = " / ".join(f"{v:.3f}" for v in row["recall"].values())
        print(f"{name:<{width}}  {fa}  | {rec} | {row['mean_recall']:.3f} | "
              f"{row['mean_false_alarms_in_corrupted_sets']:.3f}{'' if row['eligible'] else '  (not eligible)'}")
    print(f"chosen: {report['chosen']} ({report['how']})")


if __name__ == "__main__":
    sys.exit(main())
