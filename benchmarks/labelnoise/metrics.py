"""Ranking metrics for 'this case's annotation was corrupted' and pixel-level heatmap AUROC.

Scores are "higher = more likely corrupted"; NaN scores rank last. Results of several replicates
(each a realistic dataset with its own corrupted cases) are combined as follows:

* AUROC is pooled within replicates: the fraction of (corrupted, clean) pairs *of the same
  replicate* ordered correctly, ties counting one half (the Mann-Whitney U over all replicates).
  Its 95 % interval is a stratified bootstrap of cases within each replicate.
* AUPRC (average precision) and precision at the top 10 % are averaged over the replicates.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata


def _clean(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).copy()
    bad = ~np.isfinite(s)
    if bad.any():
        s[bad] = (np.nanmin(s[~bad]) - 1.0) if (~bad).any() else 0.0
    return s


def mann_whitney(scores: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """(U, number of pairs) of positives over negatives; ties count 1/2."""
    s, y = _clean(scores), np.asarray(y, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.0, 0
    ranks = rankdata(s)
    return float(ranks[y].sum() - n_pos * (n_pos + 1) / 2.0), n_pos * n_neg


def auroc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (NaN without both classes)."""
    u, pairs = mann_whitney(scores, y)
    return u / pairs if pairs else math.nan


def pooled_auroc(groups: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """AUROC over (positive, negative) pairs taken within each group."""
    u_total, pairs_total = 0.0, 0
    for scores, y in groups:
        u, pairs = mann_whitney(scores, y)
        u_total += u
        pairs_total += pairs
    return u_total / pairs_total if pairs_total else math.nan


def average_precision(scores: np.ndarray, y: np.ndarray) -> float:
    """Average precision (area under the precision-recall step curve; ties form one step)."""
    s, y = _clean(scores), np.asarray(y, bool)
    n_pos = int(y.sum())
    if n_pos == 0:
        return math.nan
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each tie group
    precision = tp[last] / (last + 1)
    recall = tp[last] / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision_at(scores: np.ndarray, y: np.ndarray, fraction: float = 0.1) -> float:
    """Precision among the top ``ceil(fraction·N)`` cases (expected value when ties straddle the cut)."""
    s, y = _clean(scores), np.asarray(y, bool)
    if len(s) == 0:
        return math.nan
    k = max(1, int(math.ceil(fraction * len(s))))
    threshold = np.sort(s)[::-1][k - 1]
    above = s > threshold
    tied = s == threshold
    slots = k - int(above.sum())
    hits = y[above].sum() + (y[tied].sum() * slots / tied.sum() if tied.any() else 0.0)
    return float(hits / k)


def _pairwise_u(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """U statistics of (..., n_pos) positives against (..., n_neg) negatives (ties 1/2), batched."""
    diff = pos[..., :, None] - neg[..., None, :]
    return (diff > 0).sum(axis=(-2, -1)) + 0.5 * (diff == 0).sum(axis=(-2, -1))


def bootstrap_auroc(groups: list[tuple[np.ndarray, np.ndarray]], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Pooled AUROC of ``n_boot`` stratified resamples (cases resampled within each group)."""
    u = np.zeros(n_boot)
    pairs = 0
    for s, y in groups:
        pos, neg = s[y], s[~y]
        pos_b = pos[rng.integers(0, len(pos), (n_boot, len(pos)))]
        neg_b = neg[rng.integers(0, len(neg), (n_boot, len(neg)))]
        u += _pairwise_u(pos_b, neg_b)
        pairs += len(pos) * len(neg)
    return u / pairs


def summarise(groups: list[tuple[np.ndarray, np.ndarray]], n_boot: int = 1000, seed: int = 0) -> dict:
    """Pooled AUROC with a stratified bootstrap 95 % CI, mean AUPRC and P@10 % over groups."""
    groups = [(_clean(s), np.asarray(y, bool)) for s, y in groups if len(y)]
    groups_pn = [(s, y) for s, y in groups if y.any() and (~y).any()]
    if not groups_pn:
        return {"auroc": math.nan, "auroc_ci": [math.nan, math.nan], "auprc": math.nan, "p_at_10": math.nan,
                "prevalence": math.nan, "positives": 0, "per_replicate_auroc": []}
    ci = [math.nan, math.nan]
    if n_boot:
        boots = bootstrap_auroc(groups_pn, n_boot, np.random.default_rng(seed))
        ci = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
    return {
        "auroc": pooled_auroc(groups_pn),
        "auroc_ci": ci,
        "auprc": float(np.mean([average_precision(s, y) for s, y in groups_pn])),
        "p_at_10": float(np.mean([precision_at(s, y, 0.1) for s, y in groups_pn])),
        "prevalence": float(np.mean([y.mean() for _, y in groups_pn])),
        "positives": int(sum(y.sum() for _, y in groups_pn)),
        "per_replicate_auroc": [auroc(s, y) for s, y in groups_pn],
    }


def random_baseline(groups: list[tuple[np.ndarray, np.ndarray]], draws: int = 300, seed: int = 0) -> dict:
    """What a random order scores: metric means over random draws, and the AUROC's 95 % null range."""
    rng = np.random.default_rng(seed)
    groups = [np.asarray(y, bool) for _, y in groups if len(y)]
    groups = [y for y in groups if y.any() and (~y).any()]
    if not groups:
        return summarise([], 0)
    u = np.zeros(draws)
    pairs = 0
    aps, precs = np.zeros(draws), np.zeros(draws)
    for y in groups:
        s = rng.random((draws, len(y)))
        u += _pairwise_u(s[:, y], s[:, ~y])
        pairs += int(y.sum()) * int((~y).sum())
        aps += np.array([average_precision(row, y) for row in s]) / len(groups)
        precs += np.array([precision_at(row, y) for row in s]) / len(groups)
    aurocs = u / pairs
    return {"auroc": float(np.mean(aurocs)),
            "auroc_ci": [float(np.percentile(aurocs, 2.5)), float(np.percentile(aurocs, 97.5))],
            "auprc": float(np.mean(aps)), "p_at_10": float(np.mean(precs)),
            "prevalence": float(np.mean([y.mean() for y in groups])),
            "positives": int(sum(y.sum() for y in groups)), "per_replicate_auroc": []}


def pixel_auroc(heat: np.ndarray, error: np.ndarray) -> float:
    """AUROC of a per-pixel map for the error mask over all pixels (NaN if either class is empty)."""
    return auroc(np.asarray(heat, np.float64).ravel(), np.asarray(error, bool).ravel())


def roc_curve(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every threshold (for plots)."""
    s, y = _clean(scores), np.asarray(y, bool)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return np.r_[0.0, fp / max(1, (~y).sum())], np.r_[0.0, tp / max(1, y.sum())]
