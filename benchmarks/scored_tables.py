"""A scored dataset's table as the flag reads it, also when ``scores.csv`` predates a column.

Tables written before the ``voxels`` column (each case's pixel count, which the flag's single-slice
thresholds need) get it from the case's annotation file, so a benchmark re-computing flags from an
old ``scores.csv`` flags as the pipeline does today.
"""

from __future__ import annotations

import math
from pathlib import Path

from napari_aleatoric.data.dataset import load_case, open_dataset
from napari_aleatoric.pipelines.table import ScoreTable, read_scores


def with_sizes(table: ScoreTable, root: Path) -> ScoreTable:
    """``table`` (rows changed in place) with every row's ``voxels`` known, read from the dataset at ``root``
    where missing or NaN."""
    missing = [row for row in table.rows if not isinstance(row.get("voxels"), float) or math.isnan(row["voxels"])]
    if missing:
        dataset = open_dataset(root)
        for row in missing:
            row["voxels"] = float(load_case(dataset, dataset.case(row["case_id"])).label.size)
    return table


def scored_table(root: Path) -> ScoreTable:
    """``<root>/.aleatoric/scores.csv`` with every row's ``voxels`` (:func:`with_sizes`)."""
    root = Path(root)
    return with_sizes(read_scores(root / ".aleatoric" / "scores.csv"), root)
