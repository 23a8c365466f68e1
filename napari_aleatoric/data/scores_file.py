"""The scores file format: ``scores.csv`` (the ranked table) and its summary ``scores.json``.

Written by scoring and re-ranking (:mod:`napari_aleatoric.pipelines`), read by the review session
and by training (the AUV filter): both import it from here, below them. Where the files of a
dataset live is :mod:`.state_layout`'s business; this module only reads and writes them.

The summary is ``<csv stem>.json`` beside the CSV: a JSON object with at least the keys of
:data:`SUMMARY_KEYS` (``settings``: how the dataset was scored, ``scored``, ``ranking``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write_bytes
from .errors import AleatoricError


@dataclass
class ScoreTable:
    """Rows sorted by rank (most uncertain first) and the column order of the CSV.

    Each row maps a column name to a value: ``case_id`` (str), ``rank`` (int, 1 = review first),
    ``issue_rank`` (float in (0, 2], the queue's default order: 1 for a flagged case plus the mean of
    the case's percentile ranks, among the dataset's judged cases, of ``label_issue`` and of the
    worst class's ``contradicted_<name>``, so flagged cases come first; NaN where either is unknown; see
    :func:`napari_aleatoric.pipelines.table.issue_ranks`),
    ``label_issue`` (float in [0, 1], the learned label-issue score: 1 − softmin
    of the out-of-fold probability of each pixel's annotated class, higher = more likely
    mislabelled; NaN when label quality did not run), ``contradicted`` (the share of the case's
    drawn annotation whose annotated class that probability is below 0.5),
    ``auv`` (the paper's aleatoric uncertainty value in [0, 1], a difficulty score), ``flagged``
    (bool, likely mislabelled by the calibrated rule of :func:`napari_aleatoric.labelquality.flag.flag_cases`),
    ``flag_reason`` (str, why it is flagged: the parts of that rule that hold, with their values; empty
    where not flagged; :func:`napari_aleatoric.labelquality.flag.flag_reasons`), ``sps`` (float, sum over present classes), ``fm_disagreement``
    (1 − the worst class's Dice between the model's box-prompted mask and the annotation),
    ``label_issue_<name>`` (the label-issue score over the pixels drawn or predicted as that class),
    ``contradicted_<name>`` (the contradicted share of the pixels drawn as that class), ``wrong_voxels``
    (pixels whose annotation, drawn or background, the label-quality model contradicts),
    ``wrong_size`` (their area in mm² for 2D cases, volume in mm³ for volumes), ``worst_region_voxels``
    and ``worst_region_slice`` / ``_row`` / ``_col`` (the largest connected such region: its size and
    centre, 0-based indices of the ``(D, H, W)`` case; slice 0 for 2D), ``wrong_voxels_<name>`` (the
    contradicted pixels drawn or predicted as that class), ``auv_<name>``, ``sps_<name>``, ``dice_fm_<name>`` (float, NaN where the class is absent).
    """

    columns: list[str]
    rows: list[dict]
    ranking: str = "issue_rank"  #: the column the rank follows (``"auv"`` where the chosen one is empty)
    flag_rule: str = ""  #: what ``flagged`` means, in words (:func:`napari_aleatoric.labelquality.flag.flag_cases`)

    def row(self, case_id: str) -> dict | None:
        """The row of ``case_id``, or ``None``."""
        return next((r for r in self.rows if r["case_id"] == case_id), None)


def _format(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6f}"
    return str(value)


def table_to_csv(table: ScoreTable) -> str:
    """CSV text of the table; NaN is written as an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_format(row.get(c, math.nan)) for c in table.columns])
    return buffer.getvalue()


class ScoresFileError(AleatoricError, ValueError):
    """A ``scores.csv`` that cannot be read back (a ``ValueError`` too, for callers that catch those)."""


def read_scores(csv_path: str | Path) -> ScoreTable:
    """Read a ``scores.csv`` back (empty cells → NaN; ``rank`` int; ``flagged`` bool; ``case_id`` and
    ``flag_reason`` text).

    Raises:
        ScoresFileError: naming the file and the line, for a row with more or fewer fields than the
            header, a cell that is not a number, a missing ``case_id`` column, or text that is not CSV.
        OSError: the file cannot be read.
    """
    path = Path(csv_path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            if "case_id" not in columns:
                raise ScoresFileError(path, "no 'case_id' column in the header; not a scores.csv of this program")
            rows = [_parse_row(path, reader.line_num, raw) for raw in reader]
    except (csv.Error, UnicodeDecodeError) as error:
        raise ScoresFileError(path, f"not a readable CSV file: {error}") from error
    return ScoreTable(columns, rows)


def _parse_row(path: Path, line: int, raw: dict) -> dict:
    if None in raw:  # csv.DictReader puts the fields beyond the header under the key None
        raise ScoresFileError(path, f"line {line} has {len(raw[None])} more field(s) than the header; "
                              "the file was edited or damaged: score the dataset again")
    row: dict = {}
    for column, text in raw.items():
        if text is None:
            raise ScoresFileError(path, f"line {line} has fewer fields than the header (no {column!r}); "
                                  "score the dataset again")
        try:
            if column in ("case_id", "flag_reason"):
                row[column] = text
            elif column == "rank":
                row[column] = int(text)
            elif column == "flagged":
                row[column] = text == "1"
            else:
                row[column] = float(text) if text else math.nan
        except ValueError:
            raise ScoresFileError(path, f"line {line}, column {column!r}: {text[:40]!r} is not a number; "
                                  "score the dataset again") from None
    return row


#: keys every summary written by ``pipelines.table.write_outputs`` has (an existing file without them is not ours)
SUMMARY_KEYS = frozenset({"settings", "scored", "ranking"})


def summary_path(csv_path: str | Path) -> Path:
    """The summary beside a score table: ``<csv stem>.json``."""
    return Path(csv_path).with_suffix(".json")


def read_summary(path: str | Path) -> dict:
    """The summary (a ``scores.json``) as a dict.

    Raises:
        OSError: it cannot be read; ValueError: it is not JSON, or not a JSON object.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def is_summary(path: str | Path) -> bool:
    """Whether ``path`` holds a summary written by this program (a JSON object with :data:`SUMMARY_KEYS`)."""
    try:
        data = read_summary(path)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return SUMMARY_KEYS <= set(data)


def write_scores(csv_path: str | Path, table: ScoreTable, summary: dict) -> Path:
    """Write the table to ``csv_path`` and ``summary`` beside it, each atomically (CSV first).

    Returns:
        the summary's path.
    """
    csv_path = Path(csv_path)
    atomic_write_bytes(csv_path, table_to_csv(table).encode())
    path = summary_path(csv_path)
    atomic_write_bytes(path, json.dumps(summary, indent=2).encode())
    return path
