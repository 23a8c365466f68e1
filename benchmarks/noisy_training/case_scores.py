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
class's drawn share over that class's median share in the dataset), ``rank_mean`` (mean of the
within-dataset ranks of ``softmin`` and ``drawn_share``, the queue's ``issue_rank`` since the second
round), ``rank_class`` (the same with ``class_max``, a third-round candidate). A folder without
``noisy/`` is read as a flat ``benchmarks/fresh_datasets.py`` dataset (``truth.json`` beside it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/labelnoise (the softmin)

CANDIDATES = ("softmin", "drawn_share", "union_share", "drawn_count", "union_count", "largest_region",
              "class_max", "class_ratio", "rank_mean", "rank_class")


def _auroc(positive: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, np.nan_to_num(score, nan=0.0)))


def case_candidates(maps: np.ndarray, index: np.ndarray) -> dict:
    """Candidate scores of one case (:func:`labelnoise.methods.case_candidates`).

    Args:
        maps: ``(C, D, H, W)`` cached issue maps ``|1[y = c] − q_c|``.
        index: ``(D, H, W)`` class index of the annotation.
    """
    from labelnoise.methods import case_candidates as from_probabilities

    from napari_aleatoric.training.label_issues import class_probabilities

    return from_probabilities(class_probabilities(maps, index), index)


def case_rows(root: Path) -> tuple[list[str], list[dict], np.ndarray]:
    """Per-case candidates (:func:`case_candidates`) of every case with cached out-of-fold maps.

    Args:
        root: a noisy_training ``DATA/<dataset>-c<S>`` folder (its ``noisy/``) or a flat
            ``fresh_datasets.py`` folder, with ``truth.json``.

    Returns:
        ``(case ids, candidate dicts, corrupted flags (N,) bool)``.
    """
    from quality_maps import cached_cases

    from napari_aleatoric.data.dataset import open_dataset

    truth = json.loads((root / "truth.json").read_text())
    ds = open_dataset(root / "noisy" if (root / "noisy").is_dir() else root)
    ids, rows = [], []
    for case_id, maps, index in cached_cases(ds):
        ids.append(case_id)
        rows.append(case_candidates(maps, index))
    return ids, rows, np.array([c in truth["corrupted"] for c in ids], bool)


def evaluate(root: Path) -> dict:
    """AUROC of every candidate and of the ``label_issue`` and ``auv`` columns on one dataset folder."""
    from napari_aleatoric.pipelines.table import read_scores

    state = (root / "noisy" if (root / "noisy").is_dir() else root) / ".aleatoric"
    table = {r["case_id"]: r for r in read_scores(state / "scores.csv").rows}
    ids, rows, positive = case_rows(root)
    kept = [i for i, c in enumerate(ids) if c in table]
    ids, rows, positive = [ids[i] for i in kept], [rows[i] for i in kept], positive[kept]
    per_class = np.stack([r.pop("per_class") for r in rows])
    scores = {name: np.array([r[name] for r in rows], float) for name in rows[0]}
    scores["class_max"] = np.nanmax(np.where(np.isfinite(per_class), per_class, -np.inf), axis=1)
    scores["class_ratio"] = np.nanmax(np.where(np.isfinite(per_class), per_class / np.nanmedian(per_class, axis=0),
                                               -np.inf), axis=1)
    from labelnoise.methods import ranks01

    scores["rank_mean"] = 0.5 * (ranks01(scores["softmin"]) + ranks01(scores["drawn_share"]))
    scores["rank_class"] = 0.5 * (ranks01(scores["softmin"]) + ranks01(scores["class_max"]))
    result = {"cases": len(ids), "corrupted": int(positive.sum()),
              "auroc": {name: round(_auroc(positive, scores[name]), 3) for name in CANDIDATES}}
    for column in [c for c in ("label_issue", "contradicted", "auv") if c in table[ids[0]]]:
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
