"""The ranked score table: AUV over the scored cases, CSV and JSON summary on disk."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data.atomic import atomic_write_bytes
from ..uncertainty.auv import auv_from_sps, flagged

if TYPE_CHECKING:
    from .scoring import CaseResult


@dataclass
class ScoreTable:
    """Rows sorted by rank (most uncertain first) and the column order of the CSV.

    Each row maps a column name to a value: ``case_id`` (str), ``rank`` (int, 1 = review first),
    ``auv`` (float in [0, 1]), ``flagged`` (bool), ``sps`` (float, sum over present classes),
    ``fm_disagreement`` (1 − the worst class's Dice between model mask and annotation),
    ``auv_<name>``, ``sps_<name>``, ``dice_fm_<name>`` (float, NaN where the class is absent).
    """

    columns: list[str]
    rows: list[dict]

    def row(self, case_id: str) -> dict | None:
        """The row of ``case_id``, or ``None``."""
        return next((r for r in self.rows if r["case_id"] == case_id), None)


def table_columns(class_names: list[str]) -> list[str]:
    """CSV column order for a dataset's foreground class names."""
    return (["case_id", "rank", "auv", "flagged", "sps", "fm_disagreement"]
            + [f"auv_{n}" for n in class_names] + [f"sps_{n}" for n in class_names]
            + [f"dice_fm_{n}" for n in class_names])


def build_table(results: list[CaseResult], class_names: list[str], flag_quantile: float = 0.9) -> ScoreTable:
    """Normalise SPS to AUV over ``results`` and rank the cases by AUV, highest first.

    Args:
        results: per-case SPS (any order).
        class_names: foreground label names in dataset order.
        flag_quantile: cases with AUV above this quantile are flagged.
    """
    columns = table_columns(class_names)
    if not results:
        return ScoreTable(columns, [])
    per_class = np.array([[r.sps_per_class.get(n, math.nan) for n in class_names] for r in results], dtype=np.float64)
    present = np.isfinite(per_class)
    case_sps = np.where(present.any(axis=1), np.where(present, per_class, 0.0).sum(axis=1), np.nan)
    auv = auv_from_sps(case_sps)
    auv_per_class = auv_from_sps(per_class)
    flags = flagged(auv, flag_quantile)
    rows = []
    for i, result in enumerate(results):
        dices = [result.dice_fm_per_class.get(n, math.nan) for n in class_names]
        finite_dices = [d for d in dices if math.isfinite(d)]
        row = {"case_id": result.case_id, "auv": float(auv[i]), "flagged": bool(flags[i]), "sps": float(case_sps[i]),
               "fm_disagreement": 1.0 - min(finite_dices) if finite_dices else math.nan}
        for c, name in enumerate(class_names):
            row[f"auv_{name}"] = float(auv_per_class[i, c])
            row[f"sps_{name}"] = float(per_class[i, c])
            row[f"dice_fm_{name}"] = float(dices[c])
        rows.append(row)
    rows.sort(key=lambda r: (-(r["auv"] if math.isfinite(r["auv"]) else -1.0), r["case_id"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return ScoreTable(columns, rows)


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


def read_scores(csv_path: str | Path) -> ScoreTable:
    """Read a ``scores.csv`` back (empty cells → NaN; ``rank`` int; ``flagged`` bool)."""
    with Path(csv_path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        rows = []
        for raw in reader:
            row: dict = {}
            for column, text in raw.items():
                if column == "case_id":
                    row[column] = text
                elif column == "rank":
                    row[column] = int(text)
                elif column == "flagged":
                    row[column] = text == "1"
                else:
                    row[column] = float(text) if text else math.nan
            rows.append(row)
    return ScoreTable(columns, rows)


def write_outputs(table: ScoreTable, csv_path: Path, settings: dict, skipped: list, results: list[CaseResult]) -> Path:
    """Write the CSV and ``<csv stem>.json`` summary beside it, atomically.

    Returns:
        the summary's path.
    """
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(csv_path, table_to_csv(table).encode())
    summary = {
        "settings": settings,
        "scored": len(table.rows),
        "flagged": [r["case_id"] for r in table.rows if r["flagged"]],
        "skipped": [{"file": str(e.path) if e.path else None, "problem": e.problem} for e in skipped],
        "forward_seconds_total": float(sum(r.forward_seconds for r in results)),
        "cached_cases": int(sum(r.cached for r in results)),
        "maps": {r.case_id: str(r.maps_file) for r in results},
    }
    summary_path = csv_path.with_suffix(".json")
    atomic_write_bytes(summary_path, json.dumps(summary, indent=2).encode())
    return summary_path
