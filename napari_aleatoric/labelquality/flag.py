"""The review queue's flag: which cases are most likely mislabelled, by a rule calibrated on clean data.

The flag used to mark the top 10 % of the queue, so it marked about 10 % of a dataset with nothing
wrong. It now marks a case whose ``label_issue`` is an outlier of its dataset (its *robust z*,
``(x − median) / (1.4826·MAD)`` over the cases label quality judged, above :data:`FLAG_Z`), whose
drawn annotation is contradicted for at least :data:`FLAG_CONTRADICTED` of it **and** at least
:data:`FLAG_CONTRADICTED_MEDIAN` times the dataset's median share (:func:`contradicted_threshold`: a
dataset of thin CT slabs, mostly organ boundary, is contradicted for 15–21 % of every clean case),
one of whose classes is contradicted at least :data:`FLAG_CLASS_RATIO` times as much as that
class usually is in the dataset (:func:`class_ratios`: a small class's error that the case-wide
share hides under a large class's boundary noise), or whose ``label_issue`` and worst class's
contradicted share are both moderate outliers (robust z above :data:`FLAG_AGREE_Z`: two partly
independent signals agreeing). The rule was chosen on tuning data by a
selection rule written down beforehand (≤ 5 % flagged on every clean-only tuning set, then the
largest mean recall; ``benchmarks/flag_rule_choice.py``, docs/label_quality.md): the first two
parts among 14 candidates, kept in a second round against 13 rules on the worst class's
contradicted share, the third part added in a third round (9 rules on the ratio to the class's
median), the median guard on the second part in a fourth (7 dataset-relative replacements of the
fixed 15 %, with the clean cases of 15 issue-16 sets as a fifth clean-only set), the agreement
part in a fifth (8 rules adding two agreeing signals, with 25 issue-16 sets), and in a sixth the
volume whose worst *structure* (a connected piece of one class, :mod:`.structures`) is contradicted
for at least :data:`FLAG_STRUCTURE` of its voxels (5 thresholds, with 50 issue-16 sets), and in a
seventh the volume one of whose structures' *outline* (its 2-px rim in each slice: where a dilation
puts its wrong voxels) is contradicted for at least :data:`FLAG_OUTLINE` (4 thresholds, 60 sets). The
ninth round added an all-clean CT set (96 clean volumes over four draws, 9.4 % flagged) to the
clean-only sets and chose, among 10 stricter settings, the label issue's own part at z > 3, the
agreement part at z > 2.5 and the structure part at 60 % (4.2 % of the clean CT volumes flagged,
mean recall 57.0 → 47.3 % on the tuning corpus). The tenth round lowered the label issue's own
part and the agreement part to z > 2 and z > 1.5 in a table of single slices
(:func:`of_comparable_slices`): slices of one size have a light-tailed ``label_issue`` (a softmin over
all pixels depends on the case's size, and volumes vary); chosen among 7 candidates on the ninth
round's corpus with seven seen draws (mean recall 47.5 → 60.9 %, 7 of 210 clean MRI slices
flagged); only where the slices are of comparable size (:data:`MAX_SIZE_RATIO_SLICES`, set after a
measurement: on clean MRI slices resampled to sizes up to 4× apart they flagged 7 of 90, the ninth
round's thresholds 2; ``benchmarks/mixed_size_slices.py``).
"""

from __future__ import annotations

import math

import numpy as np

#: fewer judged cases than this: no flag (a median and a spread of 3 numbers mean little)
MIN_CASES = 4
#: 1.4826·MAD estimates the standard deviation of normally distributed values
MAD_SCALE = 1.4826
#: where the MAD is 0 (over half the values equal): 1.2533·mean absolute deviation instead
MEAN_ABS_SCALE = 1.2533


def robust_z(values) -> np.ndarray:
    """``(x − median) / (1.4826·MAD)`` of every finite value over the finite values.

    Where the MAD is 0, the scale is ``1.2533·mean |x − median|``; where that is 0 too (every value
    equal), or fewer than :data:`MIN_CASES` values are finite, every z is NaN (nothing stands out).

    Args:
        values: ``(N,)`` numbers, NaN where unknown.

    Returns:
        ``(N,)`` float64, NaN where the input is NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    finite = np.isfinite(x)
    if finite.sum() < MIN_CASES:
        return out
    centre = float(np.median(x[finite]))
    deviation = np.abs(x[finite] - centre)
    scale = MAD_SCALE * float(np.median(deviation))
    if scale <= 0:
        scale = MEAN_ABS_SCALE * float(deviation.mean())
    if scale <= 0:
        return out
    out[finite] = (x[finite] - centre) / scale
    return out


#: a case is flagged when its ``label_issue`` has a robust z above this (2.5 until the ninth round) ...
FLAG_Z = 3.0
#: ... or when at least this share of its drawn annotation is contradicted ...
FLAG_CONTRADICTED = 0.15
#: ... and at least this many times the dataset's median contradicted share ...
FLAG_CONTRADICTED_MEDIAN = 2.0
#: ... or when one class's contradicted share is at least this many times that class's median share
FLAG_CLASS_RATIO = 5.0
#: a class's median share below this counts as this (a class the model almost never contradicts)
RATIO_FLOOR = 0.01
#: ... or when both its ``label_issue`` and its worst class's contradicted share have a robust z
#: above this (two moderate signals agreeing; fifth round, raised from 1.5 in the ninth)
FLAG_AGREE_Z = 2.5
#: in a table of single slices of comparable size (:func:`of_comparable_slices`), the label issue's own
#: part and the agreement part at these z instead (tenth round): their ``label_issue`` has a light
#: upper tail
FLAG_Z_SLICES = 2.0
FLAG_AGREE_Z_SLICES = 1.5
#: ... where the largest slice has at most this many times the pixels of the smallest (the tuning
#: sets' slices: one size, or two 1.23× apart; set after slices up to 4× apart flagged 7 of 90 clean)
MAX_SIZE_RATIO_SLICES = 1.5
#: ... or when, in a volume, at least this share of one structure's voxels is contradicted (sixth round;
#: 50 % until the ninth)
FLAG_STRUCTURE = 0.6
#: ... or when, in a volume, at least this share of one structure's outline is contradicted (seventh round)
FLAG_OUTLINE = 0.7
#: the rule in words (the CLI, ``scores.json``'s ``flag_rule``, the review panel)
FLAG_RULE = (f"label issue more than {FLAG_Z:g} robust standard deviations above the dataset's median "
             f"(robust z > {FLAG_Z:g}; {FLAG_Z_SLICES:g} in a dataset of single slices of comparable size), at least {100 * FLAG_CONTRADICTED:.0f} % of the drawing contradicted "
             f"and at least {FLAG_CONTRADICTED_MEDIAN:g}× the dataset's median share, "
             f"a class contradicted at least {FLAG_CLASS_RATIO:g}× its median share in the dataset, "
             f"both the label issue and the worst class's contradicted share more than {FLAG_AGREE_Z:g} robust "
             f"standard deviations above the dataset's median ({FLAG_AGREE_Z_SLICES:g} in a dataset of single slices of comparable size), or (volumes) a structure, a connected piece of one "
             f"class, at least {100 * FLAG_STRUCTURE:.0f} % contradicted or its outline (2-px rim) at least "
             f"{100 * FLAG_OUTLINE:.0f} %")
#: what is said where label quality did not run (fewer than MIN_CASES judged cases, or switched off)
NO_FLAG = "no flag: label quality did not judge enough cases"


def of_comparable_slices(rows: list[dict]) -> bool:
    """Whether a score table is of single slices (2D cases) of comparable size: no row has a
    ``worst_structure``, which is computed for volumes only (a volume none of whose structures has
    20 voxels has none either), and every row's ``voxels`` (the case's pixel count) is known, the
    largest at most :data:`MAX_SIZE_RATIO_SLICES` times the smallest. Slices of very different
    sizes have a heavier-tailed ``label_issue`` (docs/label_quality.md).

    Args:
        rows: the table's rows.
    """
    structure = np.array([_number(row.get("worst_structure")) for row in rows], dtype=np.float64)
    voxels = np.array([_number(row.get("voxels")) for row in rows], dtype=np.float64)
    return (not np.isfinite(structure).any() and bool(rows) and np.isfinite(voxels).all()
            and bool(voxels.min() > 0) and bool(voxels.max() <= MAX_SIZE_RATIO_SLICES * voxels.min()))


def class_shares(rows: list[dict]) -> tuple[list[str], np.ndarray]:
    """The per-class contradicted shares of a table: ``(class names, (N, C) float64)``, from the
    ``contradicted_<class>`` columns in their first-seen order; NaN where missing or not judged."""
    columns = list(dict.fromkeys(k for row in rows for k in row if k.startswith("contradicted_")))
    shares = np.array([[_number(row.get(k)) for k in columns] for row in rows],
                      dtype=np.float64).reshape(len(rows), len(columns))
    return [k[len("contradicted_"):] for k in columns], shares


def class_ratios(rows: list[dict]) -> np.ndarray:
    """How many times worse each case's worst class is than that class usually is in the table.

    For each class (a ``contradicted_<class>`` column: the share of that class's drawn pixels the
    label-quality model contradicts), a case's share over ``max(RATIO_FLOOR, the class's median
    share over the rows where it is known)``; per case the largest over its classes. Relative to
    the table: adding or re-scoring cases moves the medians.

    Args:
        rows: the table's rows (missing or NaN per-class shares are ignored).

    Returns:
        ``(N,)`` float64, NaN where no class of the case was judged.
    """
    return _row_max(_ratios_per_class(class_shares(rows)[1]))


def _ratios_per_class(shares: np.ndarray) -> np.ndarray:
    """``(N, C)``: each per-class share of ``(N, C)`` over its class's median (:func:`class_ratios`)."""
    ratio = np.full(shares.shape, np.nan)
    for k in range(shares.shape[1]):
        known = np.isfinite(shares[:, k])
        if known.any():
            ratio[known, k] = shares[known, k] / max(RATIO_FLOOR, float(np.median(shares[known, k])))
    return ratio


def worst_class_shares(rows: list[dict]) -> np.ndarray:
    """``(N,)`` each row's largest per-class contradicted share (:func:`class_shares`), NaN where no
    class of the row was judged."""
    return _row_max(class_shares(rows)[1])


def _row_max(values: np.ndarray) -> np.ndarray:
    """``(N,)`` the largest finite value of each row of ``(N, C)``, NaN where none is finite."""
    judged = np.isfinite(values).any(axis=1)
    return np.where(judged, np.where(np.isfinite(values), values, -np.inf).max(axis=1, initial=-np.inf), np.nan)


def contradicted_threshold(contradicted) -> float:
    """The ``contradicted`` share a case must reach to be flagged by it: :data:`FLAG_CONTRADICTED`, or
    :data:`FLAG_CONTRADICTED_MEDIAN` × the median over the cases where it is known if that is higher.

    Relative to the table, like :func:`class_ratios`: where every case is contradicted for 15–21 %
    (thin slabs, mostly boundary), only a case well above the others is flagged.

    Args:
        contradicted: ``(N,)`` shares, NaN where not judged.

    Returns:
        The threshold (:data:`FLAG_CONTRADICTED` where no share is known).
    """
    x = np.asarray(contradicted, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return FLAG_CONTRADICTED
    return max(FLAG_CONTRADICTED, FLAG_CONTRADICTED_MEDIAN * float(np.median(x[finite])))


def flag_cases(rows: list[dict]) -> tuple[list[bool], str]:
    """Which cases of a score table are flagged as likely mislabelled, and the rule in words.

    A case is flagged when its ``label_issue`` is an outlier of the dataset (robust z >
    :data:`FLAG_Z`, :func:`robust_z` over the cases label quality judged), when at least
    :data:`FLAG_CONTRADICTED` of its drawn annotation is contradicted (``contradicted``) and at least
    :data:`FLAG_CONTRADICTED_MEDIAN` times the table's median share (:func:`contradicted_threshold`), or when
    one of its classes is contradicted at least :data:`FLAG_CLASS_RATIO` times as much as that
    class's median over the table (:func:`class_ratios`, from the ``contradicted_<class>``
    columns), or when its ``label_issue`` and its worst class's contradicted share
    (:func:`worst_class_shares`) both have a robust z above :data:`FLAG_AGREE_Z`, or when at least
    :data:`FLAG_STRUCTURE` of its worst structure is contradicted (``worst_structure``, volumes only:
    a blob drawn beside its class's real structure), or at least :data:`FLAG_OUTLINE` of the
    outline of one of its structures (``worst_outline``, volumes only: a structure drawn too wide).
    In a table of single slices of comparable size (:func:`of_comparable_slices`) the two
    ``label_issue`` parts use :data:`FLAG_Z_SLICES` and :data:`FLAG_AGREE_Z_SLICES`. Chosen on tuning
    data for ≤ 5 % flagged cases on clean-only datasets (docs/label_quality.md). Neither the
    queue's order (``rank_by``) nor the AUV changes it; without label quality nothing is flagged.

    Args:
        rows: the table's rows (``label_issue``, ``contradicted``, ``worst_structure``, ``worst_outline``,
            ``voxels`` and ``contradicted_<class>`` read; missing or NaN = not judged).

    Returns:
        ``(one flag per row, in order; the rule's description)``; why each is flagged:
        :func:`flag_reasons`.
    """
    return flags_from_reasons(flag_reasons(rows), len(rows))


def flags_from_reasons(reasons: list[str] | None, count: int) -> tuple[list[bool], str]:
    """:func:`flag_cases`'s answer from :func:`flag_reasons`'s (for a caller that wants both without
    computing the rule twice): a case is flagged where its reason is not empty; ``count`` rows."""
    if reasons is None:
        return [False] * count, NO_FLAG
    return [bool(reason) for reason in reasons], FLAG_RULE


def flag_reasons(rows: list[dict]) -> list[str] | None:
    """Why each case of a score table is flagged, in words: every part of :func:`flag_cases`'s rule
    that holds for the case, with the value behind it, joined by ``"; "`` (``""``: not flagged).

    For example ``"tumour contradicted 6.2 times its usual share; a structure 65 % contradicted"``.
    A case is flagged exactly when its reason is not empty.

    Args:
        rows: the table's rows, as for :func:`flag_cases`.

    Returns:
        One text per row, in order; ``None`` where label quality judged fewer than
        :data:`MIN_CASES` cases (no flag at all).
    """
    issue = np.array([_number(row.get("label_issue")) for row in rows], dtype=np.float64)
    if np.isfinite(issue).sum() < MIN_CASES:
        return None
    contradicted = np.array([_number(row.get("contradicted")) for row in rows], dtype=np.float64)
    threshold = contradicted_threshold(contradicted)
    names, shares = class_shares(rows)
    z, worst_z = robust_z(issue), robust_z(_row_max(shares))
    ratios = _ratios_per_class(shares)
    structure, outline = _column(rows, "worst_structure"), _column(rows, "worst_outline")
    own_z, agree_z = (FLAG_Z_SLICES, FLAG_AGREE_Z_SLICES) if of_comparable_slices(rows) else (FLAG_Z, FLAG_AGREE_Z)
    reasons = []
    for i in range(len(rows)):
        parts = []
        if z[i] > own_z:
            parts.append(f"label issue {z[i]:.1f} robust standard deviations above the dataset's median")
        if contradicted[i] >= threshold:
            parts.append(f"{100 * contradicted[i]:.0f} % of the drawing contradicted")
        if np.isfinite(ratios[i]).any() and np.nanmax(ratios[i]) >= FLAG_CLASS_RATIO:
            k = int(np.nanargmax(ratios[i]))
            parts.append(f"{names[k]} contradicted {ratios[i, k]:.1f} times its usual share")
        if z[i] > agree_z and worst_z[i] > agree_z:
            k = int(np.nanargmax(shares[i]))
            parts.append(f"label issue and {names[k]}'s contradicted share both unusually high "
                         f"(robust z {z[i]:.1f} and {worst_z[i]:.1f})")
        if structure[i] >= FLAG_STRUCTURE:
            parts.append(f"a structure {100 * structure[i]:.0f} % contradicted")
        if outline[i] >= FLAG_OUTLINE:
            parts.append(f"a structure's outline {100 * outline[i]:.0f} % contradicted")
        reasons.append("; ".join(parts))
    return reasons


def _column(rows: list[dict], name: str) -> np.ndarray:
    """``(N,)`` a column's numbers, −inf where missing or NaN (never above a threshold)."""
    return np.nan_to_num(np.array([_number(row.get(name)) for row in rows], dtype=np.float64), nan=-np.inf)


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
