"""The queue and the flag of one scored dataset as they would be without the per-class pixel minimum
(``labelquality.scores.MIN_SHARE_PIXELS``, the sixth label-quality round).

Every class drawn with 1 to ``MIN_SHARE_PIXELS - 1`` pixels in a case, and judged there (its
``label_issue_<class>`` known), gets its contradicted share back from the cached out-of-fold maps;
then the issue ranks and the flag are recomputed on the table. Prints the shares put back, the
ranks and the flagged cases::

    python benchmarks/fragment_counterfactual.py /work/fresh8/ct_rare
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from napari_aleatoric.data.dataset import load_case, open_dataset  # noqa: E402
from napari_aleatoric.labelquality.flag import flag_cases  # noqa: E402
from napari_aleatoric.labelquality.scores import (CONTRADICTED_BELOW, MIN_SHARE_PIXELS,  # noqa: E402
                                                  annotated_class_probability, label_index)
from napari_aleatoric.pipelines.table import issue_ranks, read_scores  # noqa: E402
from napari_aleatoric.training.label_issues import class_probabilities  # noqa: E402


def without_minimum(root: Path) -> tuple[list[dict], list[tuple[str, str, int, float]]]:
    """The dataset's score-table rows with the fragments' shares put back, and what was put back
    as ``(case id, class, drawn pixels, share)``."""
    dataset = open_dataset(root)
    values, names = list(dataset.foreground.values()), list(dataset.foreground)
    rows = [dict(row) for row in read_scores(root / ".aleatoric" / "scores.csv").rows]
    by_case = {row["case_id"]: row for row in rows}
    restored = []
    for ref in dataset.cases:
        if ref.case_id not in by_case:
            continue
        with np.load(dataset.cache_dir / "quality" / f"{ref.case_id}.npz") as npz:
            maps = npz["issue_maps"].astype(np.float32)
        label = load_case(dataset, ref).label
        index = label_index(label if label.ndim == 3 else label[None], values)
        contradicted = annotated_class_probability(class_probabilities(maps, index), index) < CONTRADICTED_BELOW
        row = by_case[ref.case_id]
        for k, name in enumerate(names, start=1):
            drawn = index == k
            if 0 < drawn.sum() < MIN_SHARE_PIXELS and math.isfinite(row.get(f"label_issue_{name}", math.nan)):
                row[f"contradicted_{name}"] = float(contradicted[drawn].mean())
                restored.append((ref.case_id, name, int(drawn.sum()), round(row[f"contradicted_{name}"], 3)))
    return rows, restored


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a scored dataset folder (its .aleatoric/scores.csv and cache)")
    args = parser.parse_args(argv)
    rows, restored = without_minimum(args.root)
    for row, value in zip(rows, issue_ranks(rows)):
        row["issue_rank"] = value
    order = sorted(rows, key=lambda row: (-row["issue_rank"] if math.isfinite(row["issue_rank"]) else math.inf,
                                          row["case_id"]))
    flags, _rule = flag_cases(rows)
    print("shares put back:", restored)
    print("ranks:", {row["case_id"]: rank for rank, row in enumerate(order, start=1)})
    print("flagged:", [row["case_id"] for row, flagged in zip(rows, flags) if flagged])
    return 0


if __name__ == "__main__":
    sys.exit(main())
