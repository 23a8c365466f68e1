"""How far ``label_issue`` stands out in scored issue-16 sets: its robust z per case, by kind of set.

For every kind of set (``ct_sizes``, ``mni_subtle``, …) over the given ``fresh_datasets.py`` draws,
each table's ``label_issue`` robust z (:func:`napari_aleatoric.labelquality.flag.robust_z`, per
table), then the clean cases' 95th and 99th percentiles and maximum, and the z of every corrupted
case the flag of the code on the path leaves unflagged (by kind of error)::

    python benchmarks/issue_z_tails.py /work/fresh14 /work/fresh15 /work/fresh16
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import numpy as np  # noqa: E402

from napari_aleatoric.labelquality.flag import flag_reasons, robust_z  # noqa: E402
from scored_tables import scored_table  # noqa: E402

KINDS = ("mni_clean", "mni_subtle", "mni_small", "nuclei_tiles", "ct_clean", "ct_sizes", "ct_rare")


def main(argv=None) -> int:
    draws = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    for kind in KINDS:
        clean, missed = [], {}
        for draw in draws:
            rows = scored_table(draw / kind).rows
            corrupted = json.loads((draw / kind / "truth.json").read_text())["corrupted"]
            z = robust_z([row.get("label_issue") for row in rows])
            for row, value, reason in zip(rows, z, flag_reasons(rows) or [""] * len(rows)):
                record = corrupted.get(row["case_id"])
                if record is None:
                    clean.append(value)
                elif not reason:
                    missed.setdefault(record["kind"], []).append(round(float(value), 1))
        clean = np.array(clean, float)
        clean = clean[np.isfinite(clean)]
        p95, p99 = np.percentile(clean, [95, 99])
        print(f"{kind}: clean cases {clean.size}, label_issue z p95 {p95:.1f}, p99 {p99:.1f}, max {clean.max():.1f}")
        for error, values in sorted(missed.items()):
            print(f"  unflagged {error} ({len(values)}): z {sorted(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
