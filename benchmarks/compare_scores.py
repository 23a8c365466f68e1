"""Compare two scoring runs of the same data: every ``scores.csv`` column and every cached map.

Each run is a folder holding ``scores.csv`` and ``maps/<case_id>.npz`` (what
``bench_scoring.py --save-scores`` keeps of a run; a dataset's ``.aleatoric`` folder with
``cache/maps`` works too). Reports, per numeric column, the largest absolute difference over the
cases both runs scored; for the maps (``probabilities``, ``heatmaps``, float16), the largest absolute
difference; whether the queue order (``rank``) and the flagged cases are the same; and whether the
files are identical byte for byte.

Usage:  python benchmarks/compare_scores.py RUN_A RUN_B [--tolerance 1e-3] [--out compare.json]
Exit status 0 when the queue order is the same and every difference is within ``--tolerance``,
1 otherwise (the JSON says where).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from napari_aleatoric.pipelines.table import read_scores  # noqa: E402


def _maps_dir(run: Path) -> Path:
    return run / "maps" if (run / "maps").is_dir() else run / "cache" / "maps"


def compare_runs(a: Path, b: Path) -> dict:
    """Differences between runs ``a`` and ``b`` (see the module docstring).

    Returns:
        ``{"cases", "csv_identical", "same_order", "same_flagged", "columns": {name: max abs diff},
        "maps": {array: max abs diff}, "maps_identical", "max_abs_diff"}``; NaN in one run and a
        number in the other counts as an infinite difference.
    """
    table_a, table_b = read_scores(a / "scores.csv"), read_scores(b / "scores.csv")
    rows_a = {r["case_id"]: r for r in table_a.rows}
    rows_b = {r["case_id"]: r for r in table_b.rows}
    common = [c for c in rows_a if c in rows_b]
    columns = {}
    for name in table_a.columns:
        if name in ("case_id",) or name not in table_b.columns:
            continue
        worst = 0.0
        for case in common:
            x, y = float(rows_a[case][name]), float(rows_b[case][name])
            if math.isnan(x) and math.isnan(y):
                continue
            worst = max(worst, math.inf if math.isnan(x) or math.isnan(y) else abs(x - y))
        columns[name] = worst
    maps: dict[str, float] = {}
    identical = True
    for case in common:
        path_a, path_b = _maps_dir(a) / f"{case}.npz", _maps_dir(b) / f"{case}.npz"
        if not (path_a.is_file() and path_b.is_file()):
            continue
        with np.load(path_a, allow_pickle=False) as npz_a, np.load(path_b, allow_pickle=False) as npz_b:
            for name in npz_a.files:
                if name.startswith("__") or name not in npz_b.files:
                    continue
                x, y = npz_a[name], npz_b[name]
                identical &= bool(np.array_equal(x, y))
                if np.issubdtype(x.dtype, np.floating):
                    diff = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) if x.size else 0.0
                    maps[name] = max(maps.get(name, 0.0), diff)
    order_a = [r["case_id"] for r in table_a.rows if r["case_id"] in rows_b]
    order_b = [r["case_id"] for r in table_b.rows if r["case_id"] in rows_a]
    return {"run_a": str(a), "run_b": str(b), "cases": len(common),
            "csv_identical": (a / "scores.csv").read_bytes() == (b / "scores.csv").read_bytes(),
            "same_order": order_a == order_b,
            "same_flagged": [c for c in order_a if rows_a[c]["flagged"]] == [c for c in order_b if rows_b[c]["flagged"]],
            "columns": columns, "maps": maps, "maps_identical": identical,
            "max_abs_diff": max([*columns.values(), *maps.values(), 0.0])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest absolute difference accepted")
    parser.add_argument("--out", type=Path, default=None, help="write the comparison as JSON here")
    args = parser.parse_args(argv)
    result = compare_runs(args.run_a, args.run_b)
    result["tolerance"] = args.tolerance
    result["within_tolerance"] = result["same_order"] and result["max_abs_diff"] <= args.tolerance
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if result["within_tolerance"] else 1


if __name__ == "__main__":
    sys.exit(main())
