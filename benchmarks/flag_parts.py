"""Which part of the flag's rule flags each flagged case of scored datasets (a diagnostic).

For every dataset folder given (scored: ``.aleatoric/scores.csv``), every flagged case with the parts
of :func:`napari_aleatoric.labelquality.flag.flag_cases` that hold for it and the values behind
them::

    python benchmarks/flag_parts.py /work/fresh16/ct_clean /work/fresh17/ct_clean
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from napari_aleatoric.labelquality import flag as F  # noqa: E402
from napari_aleatoric.pipelines.table import read_scores  # noqa: E402


def _values(rows: list[dict], name: str) -> np.ndarray:
    return np.array([float(r[name]) if isinstance(r.get(name), (int, float)) else math.nan for r in rows])


def main(argv=None) -> int:
    for root in (argv if argv is not None else sys.argv[1:]):
        rows = read_scores(Path(root) / ".aleatoric" / "scores.csv").rows
        issue_z, worst_z = F.robust_z(_values(rows, "label_issue")), F.robust_z(F.worst_class_shares(rows))
        contradicted, ratio = _values(rows, "contradicted"), F.class_ratios(rows)
        structure, outline = _values(rows, "worst_structure"), _values(rows, "worst_outline")
        parts = {"label issue z": issue_z > F.FLAG_Z,
                 "contradicted": contradicted >= F.contradicted_threshold(contradicted),
                 "class ratio": ratio >= F.FLAG_CLASS_RATIO,
                 "agreement": (issue_z > F.FLAG_AGREE_Z) & (worst_z > F.FLAG_AGREE_Z),
                 "structure": structure >= F.FLAG_STRUCTURE, "outline": outline >= F.FLAG_OUTLINE}
        flags, _rule = F.flag_cases(rows)
        print(f"{root}: {sum(flags)} of {len(rows)} flagged")
        for i, flagged in enumerate(flags):
            if flagged:
                shares = {k[len('contradicted_'):]: round(float(v), 3) for k, v in rows[i].items()
                          if k.startswith("contradicted_") and isinstance(v, float) and math.isfinite(v)}
                print(f"  {rows[i]['case_id']}: {', '.join(n for n, p in parts.items() if p[i])} | label issue z "
                      f"{issue_z[i]:.2f}, worst class z {worst_z[i]:.2f}, class ratio {ratio[i]:.2f}, structure "
                      f"{structure[i]:.2f}, outline {outline[i]:.2f}, class shares {shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
