"""How much of each *structure* (a connected piece of one class's drawing) the label-quality model
contradicts, by error kind: the whole piece (the flag's sixth round) and its outline (the seventh
round).

For every case of the given ``fresh_datasets.py`` folders (``truth.json``; out-of-fold maps in the
dataset's ``.aleatoric/cache/quality``; ``scores.csv`` for which classes were judged):

- ``piece``: the largest contradicted share over the pieces of at least 20 pixels of the classes
  the case's table judged (``label_issue_<class>`` known), as
  ``labelquality.structures.piece_shares``: 3D pieces in a volume (the product's
  ``worst_structure``), 2D pieces in a single slice (which the product does not use; printed to
  show why);
- ``outline``: the largest contradicted share over the outlines of the judged structures of at
  least 100 voxels, the voxels within 2 pixels of the piece's edge in their slice
  (``labelquality.structures.worst_outline_share``, the product's ``worst_outline``). A dilation
  error grows a structure into its neighbour, so the voxels it adds sit on the outline, while the
  whole piece's share stays low because the real structure dominates it.

Printed per kind (clean or the planted error's kind) as the 10th, 50th, 90th, 95th and 99th
percentiles and the maximum::

    python benchmarks/structure_shares.py /work/fresh/ct_sizes /work/fresh{2,3,4,5,6,7,8,9,10}/ct_sizes
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from quality_maps import cached_cases  # noqa: E402

from napari_aleatoric.data.dataset import open_dataset  # noqa: E402
from napari_aleatoric.labelquality.structures import piece_shares, worst_outline_share  # noqa: E402
from napari_aleatoric.pipelines.table import read_scores  # noqa: E402
from napari_aleatoric.training.label_issues import class_probabilities  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", type=Path, nargs="+", help="scored fresh_datasets.py set folders")
    args = parser.parse_args(argv)
    shares = {"piece": defaultdict(list), "outline": defaultdict(list)}
    for root in args.sets:
        truth = json.loads((root / "truth.json").read_text())["corrupted"]
        dataset = open_dataset(root)
        rows = {row["case_id"]: row for row in read_scores(root / ".aleatoric" / "scores.csv").rows}
        for case_id, maps, index in cached_cases(dataset):
            probabilities = class_probabilities(maps, index)
            seen = np.array([True] + [np.isfinite(rows[case_id].get(f"label_issue_{name}", np.nan))
                                      for name in dataset.foreground])
            kind = truth[case_id]["kind"] if case_id in truth else "clean"
            pieces = piece_shares(probabilities, index, seen)
            shares["piece"][kind].append(max(pieces) if pieces else np.nan)
            shares["outline"][kind].append(worst_outline_share(probabilities, index, seen))
    for measure, per_kind in shares.items():
        for kind, values in sorted(per_kind.items()):
            finite = np.array(values, float)[np.isfinite(values)]
            if not finite.size:
                continue
            print(f"{measure:<7} {kind:<18} {len(finite):>4} cases  p10/p50/p90/p95/p99/max "
                  + " / ".join(f"{v:.2f}" for v in np.percentile(finite, [10, 50, 90, 95, 99, 100])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
