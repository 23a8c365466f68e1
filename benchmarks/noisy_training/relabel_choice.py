"""What the data-chosen relabel confidence picks on each noisy_training folder, and how right it is.

For the training cases of ``DATA/<dataset>-c<S>`` (the run's own out-of-fold pass,
``plan_label_issues``, cached in ``noisy/.aleatoric/cache/quality-training``): per candidate of
``RELABEL_CONFIDENCES``, the precision the run *estimates* from the noisy labels alone
(``choose_relabel_confidence``) and the *true* precision (the share of the confidently contradicted
drawn pixels whose preferred class is the clean label), then the confidence the run chooses. The
evidence behind ``RELABEL_PRECISION`` and ``REFERENCE_SHARE`` (docs/training.md, round 4)::

    python -m benchmarks.noisy_training.relabel_choice DATA/mni-c100 DATA/ct-c100 --out R.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np


def examine(root: Path) -> dict:
    """Estimated and true relabel precision per candidate confidence, and the choice."""
    from napari_aleatoric.data.dataset import load_case, open_dataset
    from napari_aleatoric.labelquality.scores import label_index
    from napari_aleatoric.training import LabelIssuePlan, with_strategy
    from napari_aleatoric.training import label_issues as li

    from .strategies import base_settings

    truth = json.loads((root / "truth.json").read_text())
    noisy, clean = open_dataset(root / "noisy"), open_dataset(root / "clean")
    plan = None
    for event in li.plan_label_issues(noisy, list(truth["train"]), with_strategy(base_settings(root, 0), "issue-relabel")):
        plan = event if isinstance(event, LabelIssuePlan) else plan
    values = list(noisy.foreground.values())
    counts, right = {}, np.zeros(len(li.RELABEL_CONFIDENCES))
    for case_id in truth["train"]:
        index = label_index(_volume(load_case(noisy, noisy.case(case_id)).label), values)
        clean_index = label_index(_volume(load_case(clean, clean.case(case_id)).label), values)
        q = li.class_probabilities(plan._issue_maps(case_id), index)
        counts[case_id] = li.confident_contradictions(q, index)
        contradicted = (index > 0) & (np.take_along_axis(q, index[None].astype(np.int64), axis=0)[0] < 0.5)
        sure, preferred = q.max(axis=0), q.argmax(axis=0) == clean_index
        right += [(contradicted & (sure >= c) & preferred).sum() for c in li.RELABEL_CONFIDENCES]
    totals = np.sum(list(counts.values()), axis=0)
    estimates = li.relabel_precisions(counts)
    rows = [{"confidence": c, "relabelled_pixels": int(totals[2 + j]), "estimated_precision": _round(estimates[j]),
             "true_precision": _round(right[j] / max(totals[2 + j], 1))} for j, c in enumerate(li.RELABEL_CONFIDENCES)]
    return {"chosen": plan.relabel_confidence, "estimated_precision_at_chosen": _round(plan.relabel_precision),
            "candidates": rows, "train_cases": len(truth["train"]), "corrupted": len(truth["corrupted"])}


def _volume(label: np.ndarray) -> np.ndarray:
    return label if label.ndim == 3 else label[None]


def _round(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    report = {}
    for root in args.roots:
        report[root.name] = examine(root)
        print(root.name, json.dumps(report[root.name]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
