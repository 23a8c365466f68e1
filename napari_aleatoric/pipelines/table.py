"""The ranked score table: AUV over the scored cases, ranks and flags, and where it may be written.

The file format itself (``scores.csv`` and its ``scores.json`` summary) is
:mod:`napari_aleatoric.data.scores_file`; its names are re-exported here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data.errors import AleatoricError
from ..data.scores_file import (ScoresFileError, ScoreTable, is_summary, read_scores, summary_path,  # noqa: F401
                                table_to_csv, write_scores)
from ..data.state_layout import RESERVED_STATE_FOLDERS, STATE_DIR_NAME, state_dir  # noqa: F401
from ..labelquality.flag import flag_cases, flag_reasons, flags_from_reasons, worst_class_shares
from ..uncertainty.auv import auv_from_sps

if TYPE_CHECKING:
    from ..labelquality.assess import LabelQuality
    from .scoring import CaseResult


#: ``rank_by`` choice → the column the queue's rank follows (highest first)
RANK_BY = {"issue-rank": "issue_rank", "label-issue": "label_issue", "contradicted": "contradicted",
           "worst-region": "worst_region_voxels",
           "auv": "auv"}
DEFAULT_RANK_BY = "issue-rank"


#: where the largest contradicted region of a case is: its pixels and its centre (index space)
REGION_COLUMNS = ("worst_region_voxels", "worst_region_slice", "worst_region_row", "worst_region_col")


def check_rank_by(rank_by: str) -> None:
    """Raise ``ValueError`` naming the choices when ``rank_by`` is not a key of :data:`RANK_BY`."""
    if rank_by not in RANK_BY:
        raise ValueError(f"rank by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")


def table_columns(class_names: list[str]) -> list[str]:
    """CSV column order for a dataset's foreground class names."""
    return (["case_id", "rank", "issue_rank", "label_issue", "contradicted", "worst_structure", "worst_outline", "wrong_voxels", "wrong_size", "voxels", "auv", "flagged", "flag_reason", "sps",
             "fm_disagreement"] + list(REGION_COLUMNS)
            + [f"label_issue_{n}" for n in class_names] + [f"contradicted_{n}" for n in class_names]
            + [f"wrong_voxels_{n}" for n in class_names]
            + [f"auv_{n}" for n in class_names] + [f"sps_{n}" for n in class_names]
            + [f"dice_fm_{n}" for n in class_names])


def build_table(results: list[CaseResult], class_names: list[str],
                label_quality: LabelQuality | None = None, rank_by: str = DEFAULT_RANK_BY) -> ScoreTable:
    """Normalise SPS to AUV over ``results`` and rank the cases, most likely mislabelled first.

    The rank follows ``label_issue`` (the learned label-quality score; see docs/benchmarks.md for
    why) where it is known, then the AUV; without label quality the AUV alone orders the cases.

    Args:
        results: per-case SPS (any order).
        class_names: foreground label names in dataset order.
        label_quality: the learned label quality of (some of) the cases, if it ran.
        rank_by: a key of :data:`RANK_BY`: the column the rank follows (the flag does not depend on it).
    """
    columns = table_columns(class_names)
    if not results:
        return ScoreTable(columns, [], RANK_BY[rank_by], flag_cases([])[1])
    per_class = np.array([[r.sps_per_class.get(n, math.nan) for n in class_names] for r in results], dtype=np.float64)
    present = np.isfinite(per_class)
    case_sps = np.where(present.any(axis=1), np.where(present, per_class, 0.0).sum(axis=1), np.nan)
    auv = auv_from_sps(case_sps)
    auv_per_class = auv_from_sps(per_class)
    rows = []
    for i, result in enumerate(results):
        dices = [result.dice_fm_per_class.get(n, math.nan) for n in class_names]
        finite_dices = [d for d in dices if math.isfinite(d)]
        row = {"case_id": result.case_id, "auv": float(auv[i]), "sps": float(case_sps[i]),
               "voxels": float(np.prod(result.shape)),
               "fm_disagreement": 1.0 - min(finite_dices) if finite_dices else math.nan}
        row.update(label_quality_columns(label_quality, result.case_id, class_names))
        for c, name in enumerate(class_names):
            row[f"auv_{name}"] = float(auv_per_class[i, c])
            row[f"sps_{name}"] = float(per_class[i, c])
            row[f"dice_fm_{name}"] = float(dices[c])
        rows.append(row)
    return ranked(ScoreTable(columns, rows), rank_by)


def ranked(table: ScoreTable, rank_by: str = DEFAULT_RANK_BY) -> ScoreTable:
    """A copy of ``table`` ranked by the column ``rank_by`` names (:data:`RANK_BY`), highest first,
    ties and NaN by AUV then case id (by AUV when that column has no value), and flagged by the
    calibrated rule (:func:`~..labelquality.flag.flag_cases`, whatever the order), with the reason in
    words (``flag_reason``, :func:`~..labelquality.flag.flag_reasons`; empty where not flagged).

    Raises:
        ValueError: an unknown ``rank_by``.
    """
    check_rank_by(rank_by)
    rows = [dict(row) for row in table.rows]
    reasons = flag_reasons(rows)
    flags, rule = flags_from_reasons(reasons, len(rows))
    reasons = reasons or [""] * len(rows)
    for row, flag, reason, value in zip(rows, flags, reasons, issue_ranks(rows, flags)):
        row["flagged"], row["flag_reason"], row["issue_rank"] = bool(flag), reason, value
    column = RANK_BY[rank_by]
    if not any(_finite(row.get(column)) for row in rows):
        column = "auv"
    rows.sort(key=lambda row: ranking_key(row, column))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    columns = list(table.columns)
    if "issue_rank" not in columns:  # a table written before the column existed: the CSV gets it too
        columns.insert(columns.index("rank") + 1 if "rank" in columns else 0, "issue_rank")
    if "flag_reason" not in columns:
        columns.insert(columns.index("flagged") + 1 if "flagged" in columns else len(columns), "flag_reason")
    return ScoreTable(columns, rows, column, rule)


def issue_ranks(rows: list[dict], flags: list[bool] | None = None) -> list[float]:
    """The queue's default score of each row: the flagged rows first, each group ordered by the mean
    of the row's percentile ranks of ``label_issue`` and of its worst class's contradicted share
    (:func:`worst_class_contradicted`) among the rows where both are known.

    A percentile rank is the rank (1 = lowest, ties averaged) divided by the number of judged
    rows, so the mean lies in (0, 1]; a row the calibrated flag marks
    (:func:`~napari_aleatoric.labelquality.flag.flag_cases`) gets 1 added, so the score lies in
    (0, 2] and every flagged row comes before every other. It is relative to the dataset: adding
    or re-scoring cases moves the others. The mean was chosen over each score alone and over the
    case-wide contradicted share (docs/label_quality.md, "third round" and "fourth round"): a small
    class's error is not buried under a large class's boundary noise, which grows with the volume.
    Flagged first was chosen in the queue's fifth round: a blob that is a case's whole class and
    entirely contradicted is flagged, while the case's ``label_issue`` can stay low in a large
    volume. NaN where either score is unknown. ``flags``: :func:`flag_cases` of ``rows`` when the
    caller has them already (computed here otherwise).
    """
    from scipy.stats import rankdata  # noqa: PLC0415 (scipy comes with scikit-image)

    values = np.array([[_number(row.get("label_issue")), worst] for row, worst in
                       zip(rows, worst_class_contradicted(rows))], dtype=np.float64).reshape(-1, 2)
    judged = np.isfinite(values).all(axis=1)
    out = np.full(len(rows), math.nan)
    if judged.any():
        known = values[judged]
        flagged = np.array(flag_cases(rows)[0] if flags is None else flags, dtype=bool)
        out[judged] = 0.5 * (rankdata(known[:, 0]) + rankdata(known[:, 1])) / len(known) + flagged[judged]
    return [float(v) for v in out]


def worst_class_contradicted(rows: list[dict]) -> list[float]:
    """Each row's largest per-class contradicted share (``contradicted_<class>``: the share of that
    class's drawn pixels the label-quality model contradicts).

    A class too rare to judge (drawn in fewer than
    :data:`~napari_aleatoric.labelquality.classifier.MIN_CLASS_CASES` cases) has no share: no
    classifier learned it, so a clean case with a rare cyst does not head the queue for it; nor has
    a class drawn with a few pixels only (:func:`unjudged_classes`). A row
    without per-class shares falls back to the case-wide ``contradicted``; NaN when that is
    unknown too.

    Args:
        rows: the table's rows.

    Returns:
        one value in ``[0, 1]`` or NaN per row, in order.
    """
    return [float(worst) if math.isfinite(worst) else _number(row.get("contradicted"))
            for row, worst in zip(rows, worst_class_shares(rows))]


def _number(value) -> float:
    return float(value) if _finite(value) else math.nan


def _finite(value) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def with_label_quality(table: ScoreTable, class_names: list[str], label_quality: LabelQuality,
                       rank_by: str = DEFAULT_RANK_BY) -> ScoreTable:
    """A copy of ``table`` with new label-issue columns, rank and flags (other columns unchanged).

    Args:
        table: a scored table (e.g. read back from ``scores.csv``).
        class_names: foreground label names in dataset order.
        label_quality: a fresh label-quality result (cases it lacks get NaN).
        rank_by: as in :func:`build_table`.
    """
    rows = [dict(row) for row in table.rows]
    for row in rows:
        row.update(label_quality_columns(label_quality, row["case_id"], class_names))
    return ranked(ScoreTable(table_columns(class_names), rows), rank_by)


def label_quality_columns(label_quality: LabelQuality | None, case_id: str, class_names: list[str]) -> dict:
    """A case's ``label_issue``, ``contradicted`` and per-class columns (NaN where not computed)."""
    def of(table_name: str, default):
        return getattr(label_quality, table_name).get(case_id, default) if label_quality else default

    columns = {"label_issue": float(of("score", math.nan)), "contradicted": float(of("contradicted", math.nan)),
               "worst_structure": float(of("structure", math.nan)), "worst_outline": float(of("outline", math.nan))}
    for prefix, table_name in (("label_issue", "per_class"), ("contradicted", "contradicted_per_class")):
        values = of(table_name, [math.nan] * len(class_names))
        columns.update({f"{prefix}_{name}": float(v) for name, v in zip(class_names, values)})
    wrong = of("wrong", None)
    center = wrong.worst_center if wrong is not None and wrong.worst_center is not None else (math.nan,) * 3
    per_class = wrong.per_class if wrong is not None else [math.nan] * len(class_names)
    columns.update({"wrong_voxels": float(wrong.voxels) if wrong else math.nan,
                    "wrong_size": float(wrong.size) if wrong else math.nan,
                    "worst_region_voxels": float(wrong.worst_voxels) if wrong else math.nan,
                    **{column: float(v) for column, v in zip(REGION_COLUMNS[1:], center)},
                    **{f"wrong_voxels_{name}": float(v) for name, v in zip(class_names, per_class)}})
    return columns


#: why a drawn class of a judged case has no contradicted share (:func:`unjudged_classes`)
TOO_RARE = "too rare"
TOO_LITTLE_DRAWN = "too little drawn"


def unjudged_explanation(reason: str) -> str:
    """What a person reads for a class :func:`unjudged_classes` gives ``reason`` for."""
    from ..labelquality.classifier import MIN_CLASS_CASES  # noqa: PLC0415
    from ..labelquality.scores import MIN_SHARE_PIXELS  # noqa: PLC0415

    if reason == TOO_RARE:
        return (f"too rare to judge: drawn in fewer than {MIN_CLASS_CASES} cases of the dataset (or in no other "
                "cross-validation fold); label more cases of it for label quality to judge it")
    return (f"too little drawn to judge: fewer than {MIN_SHARE_PIXELS} pixels of it in this case (a structure's "
            "tip at the edge of the image); its pixels still count in the case's label issue")


def unjudged_classes(row: dict, class_names: list[str]) -> dict[str, str]:
    """The classes drawn in a scored case that have no contradicted share, each with why.

    Drawn means ``dice_fm_<class>`` is known, judged that the case's ``label_issue`` is; a class
    then lacks ``contradicted_<class>`` because it is :data:`TOO_RARE` (drawn in fewer than
    :data:`~napari_aleatoric.labelquality.classifier.MIN_CLASS_CASES` cases or in no other fold:
    no classifier learned it, so ``label_issue_<class>`` is empty too) or :data:`TOO_LITTLE_DRAWN`
    (fewer than :data:`~napari_aleatoric.labelquality.scores.MIN_SHARE_PIXELS` pixels in this case;
    ``label_issue_<class>`` is known).

    Returns:
        ``{class name: TOO_RARE | TOO_LITTLE_DRAWN}`` in ``class_names`` order.
    """
    if not _finite(row.get("label_issue")):
        return {}
    return {name: TOO_LITTLE_DRAWN if _finite(row.get(f"label_issue_{name}")) else TOO_RARE
            for name in class_names
            if _finite(row.get(f"dice_fm_{name}")) and not _finite(row.get(f"contradicted_{name}"))}


def ranking_key(row: dict, column: str = "label_issue") -> tuple:
    """Sort key of a row: highest ``column`` first, then highest ``auv``, NaN last, then case id."""
    def descending(value) -> float:
        return -value if _finite(value) else math.inf

    return (descending(row.get(column, math.nan)), descending(row.get("auv", math.nan)), row["case_id"])


def output_paths(dataset_root: str | Path, out_csv: str | Path) -> tuple[Path, Path]:
    """Check where a score table asked for may be written; returns ``(csv path, summary path)``.

    The summary is ``<csv stem>.json`` beside the CSV. Checked before any case is scored, so that
    a mistyped ``--out`` never replaces a file of the dataset or one the user did not name:

    Raises:
        AleatoricError: naming the path, when the table is not a ``.csv`` file or is a folder, when
            the CSV or its summary would land inside the dataset folder outside ``.aleatoric/`` (or in
            its ``originals/``, ``revisions/``, ``cache/``, ``models/``), or when the summary path
            holds a file that is not a summary of a previous scoring run.
    """

    root = Path(dataset_root).resolve()
    csv_path = Path(out_csv).expanduser()
    if csv_path.suffix.lower() != ".csv":
        raise AleatoricError(csv_path, "the scores table must be a .csv file (e.g. --out results/scores.csv)")
    if csv_path.is_dir():
        raise AleatoricError(csv_path, "is a folder; name the .csv file to write")
    summary = summary_path(csv_path)
    for path in (csv_path, summary):
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            continue
        rel = resolved.relative_to(root).parts
        if not rel or rel[0] != STATE_DIR_NAME or len(rel) < 2 or (len(rel) > 2 and rel[1] in RESERVED_STATE_FOLDERS):
            raise AleatoricError(path, f"is inside the dataset folder {root}; scores may only be written under "
                                 f"{state_dir(root)} (not its originals/, revisions/, cache/ or models/) or "
                                 "outside the dataset; nothing was written")
    if summary.exists() and not is_summary(summary):
        raise AleatoricError(summary, f"already exists and is not a scoring summary; the summary of "
                             f"{csv_path.name} would replace it. Choose another --out name; nothing was written")
    return csv_path, summary


def check_cache_dir(dataset_root: str | Path, cache_dir: str | Path) -> Path:
    """The cache folder asked for, refused (:class:`AleatoricError`) inside the dataset folder
    outside ``.aleatoric/`` or when it is a file; returned as an absolute path."""

    folder = Path(cache_dir).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise AleatoricError(folder, "the cache must be a folder, not a file")
    root = Path(dataset_root).resolve()
    resolved = folder.resolve()
    if resolved.is_relative_to(root) and (resolved == root or resolved.relative_to(root).parts[0] != STATE_DIR_NAME):
        raise AleatoricError(folder, f"is inside the dataset folder {root}; put the cache outside it (or under "
                             ".aleatoric/)")
    return folder


def write_outputs(table: ScoreTable, csv_path: Path, settings: dict, skipped: list, results: list[CaseResult],
                  label_quality: LabelQuality | None = None) -> Path:
    """Write the CSV and ``<csv stem>.json`` summary beside it, atomically.

    Returns:
        the summary's path.
    """
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "settings": settings,
        "scored": len(table.rows),
        "flagged": [r["case_id"] for r in table.rows if r["flagged"]],
        "flag_rule": table.flag_rule or flag_cases(table.rows)[1],
        "skipped": [{"file": str(e.path) if e.path else None, "problem": e.problem} for e in skipped],
        "forward_seconds_total": float(sum(r.forward_seconds for r in results)),
        "cached_cases": int(sum(r.cached for r in results)),
        "maps": {r.case_id: str(r.maps_file) for r in results},
        "label_quality": None if label_quality is None else {
            "seconds": round(label_quality.seconds, 3),
            "maps": {case_id: str(path) for case_id, path in label_quality.maps_files.items()},
            "unjudged": {case_id: names for case_id, names in label_quality.unjudged.items() if names}},
        "ranking": table.ranking,
    }
    return write_scores(csv_path, table, summary)
