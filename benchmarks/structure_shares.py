"""How much of each *structure* (a connected piece of one class's drawing) the label-quality model
contradicts, by error kind: the whole piece (the flag's sixth round) and its outer shell (a
candidate for a next round; not used by the product).

For every case of the given ``fresh_datasets.py`` folders (``truth.json``; out-of-fold maps in the
dataset's ``.aleatoric/cache/quality``; ``scores.csv`` for which classes were judged):

- ``piece``: the largest contradicted share over the pieces of at least 20 pixels of the classes
  the case's table judged (``label_issue_<class>`` known), as
  ``labelquality.structures.piece_shares``: 3D pieces in a volume (the product's
  ``worst_structure``), 2D pieces in a single slice (which the product does not use; printed to
  show why);
- ``shell``: the largest contradicted share over the outer shells of the structures of at least
  ``--min-voxels``, the voxels within ``--shell`` pixels of the piece's outline in their slice. A
  dilation error grows a structure into its neighbour, so the voxels it adds sit in the shell,
  while the whole piece's share stays low because the real structure dominates it.

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
from scipy import ndimage

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from quality_maps import cached_cases  # noqa: E402

from napari_aleatoric.data.dataset import open_dataset  # noqa: E402
from napari_aleatoric.labelquality.scores import CONTRADICTED_BELOW, annotated_class_probability  # noqa: E402
from napari_aleatoric.labelquality.structures import piece_shares  # noqa: E402
from napari_aleatoric.pipelines.table import read_scores  # noqa: E402
from napari_aleatoric.training.label_issues import class_probabilities  # noqa: E402


def worst_shell_share(contradicted: np.ndarray, index: np.ndarray, shell: int, min_voxels: int) -> float:
    """The largest contradicted share over the outer shells of the case's structures (0 when none)."""
    worst = 0.0
    for k in range(1, int(index.max()) + 1):
        pieces, count = ndimage.label(index == k)
        for piece_id in range(1, count + 1):
            piece = pieces == piece_id
            if piece.sum() < min_voxels:
                continue
            core = np.stack([ndimage.binary_erosion(plane, iterations=shell) for plane in piece])
            outer = piece & ~core
            if outer.sum() >= 20:
                worst = max(worst, float(contradicted[outer].mean()))
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", type=Path, nargs="+", help="scored fresh_datasets.py set folders")
    parser.add_argument("--shell", type=int, default=2, help="shell thickness in pixels (in-plane)")
    parser.add_argument("--min-voxels", type=int, default=100, help="smallest structure with a shell")
    args = parser.parse_args(argv)
    shares = {"piece": defaultdict(list), "shell": defaultdict(list)}
    for root in args.sets:
        truth = json.loads((root / "truth.json").read_text())["corrupted"]
        dataset = open_dataset(root)
        rows = {row["case_id"]: row for row in read_scores(root / ".aleatoric" / "scores.csv").rows}
        for case_id, maps, index in cached_cases(dataset):
            probabilities = class_probabilities(maps, index)
            contradicted = annotated_class_probability(probabilities, index) < CONTRADICTED_BELOW
            seen = np.array([True] + [np.isfinite(rows[case_id].get(f"label_issue_{name}", np.nan))
                                      for name in dataset.foreground])
            kind = truth[case_id]["kind"] if case_id in truth else "clean"
            pieces = piece_shares(probabilities, index, seen)
            shares["piece"][kind].append(max(pieces) if pieces else np.nan)
            shares["shell"][kind].append(worst_shell_share(contradicted, index, args.shell, args.min_voxels))
    for measure, per_kind in shares.items():
        for kind, values in sorted(per_kind.items()):
            finite = np.array(values, float)[np.isfinite(values)]
            if not finite.size:
                continue
            print(f"{measure:<6} {kind:<18} {len(finite):>4} cases  p10/p50/p90/p95/p99/max "
                  + " / ".join(f"{v:.2f}" for v in np.percentile(finite, [10, 50, 90, 95, 99, 100])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
