"""How well case scores single out the corrupted cases of a noisy_training dataset (AUROC).

The review queue's case score was chosen with this script (docs/label_quality.md): candidate
poolings of the out-of-fold label-quality maps that the scoring pass cached
(``.aleatoric/cache/quality/<case>.npz``), next to the shipped ``label_issue`` and ``auv`` columns
of ``scores.csv``. Every case of the dataset (training and validation) counts; the corrupted ones
(``truth.json``) are the positives.

    python -m benchmarks.noisy_training.case_scores DATA/mni-c2 DATA/ct-c2 --out R.json

Candidates (higher = more likely mislabelled), from ``q`` (out-of-fold class probabilities) and
``q_y`` (the probability of the annotated class); "contradicted" means ``q_y < 0.5``:
``softmin`` (1 − cleanlab's softmin of ``q_y`` over all pixels, the queue until QUALITY_VERSION 3),
``drawn_share`` (contradicted share of the drawn pixels, the queue since), ``union_share``
(contradicted share of the pixels drawn or predicted as foreground), ``drawn_count`` and
``union_count`` (the same as pixel counts), ``largest_region`` (pixels of the largest connected
contradicted region), ``class_max`` (the worst class's drawn share), ``class_ratio`` (the worst
class's drawn share over that class's median share in the dataset).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/labelnoise (the softmin)

CANDIDATES = ("softmin", "drawn_share", "union_share", "drawn_count", "union_count", "largest_region",
              "class_max", "class_ratio")


def _auroc(positive: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, np.nan_to_num(score, nan=0.0)))


def case_candidates(maps: np.ndarray, index: np.ndarray) -> dict:
    """Candidate scores of one case.

    Args:
        maps: ``(C, D, H, W)`` cached issue maps ``|1[y = c] − q_c|``.
        index: ``(D, H, W)`` class index of the annotation.
    """
    from labelnoise.methods import softmin_quality

    from napari_aleatoric.labelquality.scores import annotated_class_probability
    from napari_aleatoric.training.label_issues import class_probabilities

    q = class_probabilities(maps, index)
    q_y = annotated_class_probability(q, index)
    drawn, union = index > 0, (index > 0) | (q.argmax(0) > 0)
    contradicted = q_y < 0.5
    regions, n = ndimage.label(contradicted & union)
    per_class = np.array([contradicted[index == k].mean() if (index == k).any() else np.nan
                          for k in range(1, maps.shape[0] + 1)])
    return {"softmin": 1.0 - softmin_quality(q_y),
            "drawn_share": float(contradicted[drawn].mean()) if drawn.any() else np.nan,
            "union_share": float(contradicted[union].mean()) if union.any() else np.nan,
            "drawn_count": float((contradicted & drawn).sum()), "union_count": float((contradicted & union).sum()),
            "largest_region": float(np.bincount(regions.ravel())[1:].max()) if n else 0.0,
            "per_class": per_class}


def evaluate(root: Path) -> dict:
    """AUROC of every candidate and of the ``label_issue`` and ``auv`` columns on one dataset folder."""
    from napari_aleatoric.data.dataset import load_case, open_dataset
    from napari_aleatoric.labelquality.scores import label_index
    from napari_aleatoric.pipelines.table import read_scores

    truth = json.loads((root / "truth.json").read_text())
    ds = open_dataset(root / "noisy")
    values = list(ds.foreground.values())
    table = {r["case_id"]: r for r in read_scores(ds.state_dir / "scores.csv").rows}
    ids, rows = [], []
    for ref in ds.cases:
        path = ds.cache_dir / "quality" / f"{ref.case_id}.npz"
        if ref.case_id not in table or not path.is_file():
            continue
        with np.load(path) as npz:
            maps = npz["issue_maps"].astype(np.float32)
        label = load_case(ds, ref).label
        ids.append(ref.case_id)
        rows.append(case_candidates(maps, label_index(label if label.ndim == 3 else label[None], values)))
    positive = np.array([c in truth["corrupted"] for c in ids])
    per_class = np.stack([r.pop("per_class") for r in rows])
    scores = {name: np.array([r[name] for r in rows], float) for name in rows[0]}
    scores["class_max"] = np.nanmax(np.where(np.isfinite(per_class), per_class, -np.inf), axis=1)
    scores["class_ratio"] = np.nanmax(np.where(np.isfinite(per_class), per_class / np.nanmedian(per_class, axis=0),
                                               -np.inf), axis=1)
    result = {"cases": len(ids), "corrupted": int(positive.sum()),
              "auroc": {name: round(_auroc(positive, scores[name]), 3) for name in CANDIDATES}}
    for column in ("label_issue", "auv"):
        result["auroc"][f"scores.csv:{column}"] = round(_auroc(positive, np.array([table[c][column] for c in ids])), 3)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", help="DATA/<dataset>-c<S> folders, scored")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    args = parser.parse_args(argv)
    report = {}
    for root in args.roots:
        report[root.name] = evaluate(root)
        print(root.name, json.dumps(report[root.name]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
