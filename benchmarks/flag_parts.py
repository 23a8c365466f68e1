"""Why each flagged case of scored datasets is flagged (a diagnostic over their ``scores.csv``).

For every dataset folder given (scored: ``.aleatoric/scores.csv``), each class's usual (median)
contradicted share, which the class part divides by, and every flagged case with the parts of the
flag's rule that hold for it and their values
(:func:`napari_aleatoric.labelquality.flag.flag_reasons`, recomputed from the table with the code on
the path)::

    python benchmarks/flag_parts.py /work/fresh16/ct_clean /work/fresh17/ct_clean
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import numpy as np  # noqa: E402

from napari_aleatoric.labelquality.flag import class_shares, flag_reasons  # noqa: E402
from scored_tables import scored_table  # noqa: E402


def main(argv=None) -> int:
    for root in (argv if argv is not None else sys.argv[1:]):
        rows = scored_table(Path(root)).rows
        reasons = flag_reasons(rows) or [""] * len(rows)
        print(f"{root}: {sum(map(bool, reasons))} of {len(rows)} flagged")
        names, shares = class_shares(rows)
        print("  usual share: " + ", ".join(f"{name} {100 * np.nanmedian(shares[:, k]):.1f} %"
                                             for k, name in enumerate(names) if np.isfinite(shares[:, k]).any()))
        for row, reason in zip(rows, reasons):
            if reason:
                print(f"  {row['case_id']}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
