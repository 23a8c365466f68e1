"""Diagnostic for a next flag round (not used by the product): how much of each structure's *outer
shell* the label-quality model contradicts, by error kind.

A dilation error grows a structure by a few voxels into its neighbour, so the voxels it adds sit in
the structure's outer shell and are contradicted there, while the structure's share as a whole
(``worst_structure``) stays low because the real structure dominates it. For every case of the
given ``fresh_datasets.py`` folders (``truth.json``; out-of-fold maps in the dataset's
``.aleatoric/cache/quality``), over its structures (3D connected pieces of one class) of at least
``--min-voxels``: the contradicted share of the shell, the voxels within ``--shell`` pixels of the
piece's outline in their slice; per case the largest. Printed per kind (clean or the planted error's
kind) as the 10th, 50th, 90th and 99th percentiles::

    python benchmarks/structure_shell_shares.py /work/fresh/ct_sizes /work/fresh{2,3,4,5,6,7,8,9,10}/ct_sizes
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
    shares = defaultdict(list)
    for root in args.sets:
        truth = json.loads((root / "truth.json").read_text())["corrupted"]
        for case_id, maps, index in cached_cases(open_dataset(root)):
            contradicted = annotated_class_probability(class_probabilities(maps, index), index) < CONTRADICTED_BELOW
            kind = truth[case_id]["kind"] if case_id in truth else "clean"
            shares[kind].append(worst_shell_share(contradicted, index, args.shell, args.min_voxels))
    for kind, values in sorted(shares.items()):
        print(f"{kind:<16} {len(values):>4} cases  p10/p50/p90/p99 "
              + " / ".join(f"{v:.2f}" for v in np.percentile(values, [10, 50, 90, 99])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
