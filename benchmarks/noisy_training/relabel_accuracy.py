"""How often the label-quality model's preferred class is right on the pixels it contradicts, by
how sure it is (the evidence behind ``RELABEL_CONFIDENCE``, docs/training.md).

For the contradicted drawn pixels (``q_y < 0.5``) of the training cases of a noisy_training
dataset, binned by ``max_k q_k``: the share whose ``argmax q`` equals the clean label, and the share
whose annotation is wrong. From the queue's cached maps (``.aleatoric/cache/quality``)::

    python -m benchmarks.noisy_training.relabel_accuracy DATA/mni-c100 DATA/ct-c100 --out R.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.01)


def _volume(label: np.ndarray) -> np.ndarray:
    """``(D, H, W)``: a 2D label gets a leading axis."""
    return label if label.ndim == 3 else label[None]


def tabulate(root: Path) -> list[dict]:
    """One row per confidence bin: pixels, argmax right, annotation wrong (shares)."""
    from napari_aleatoric.data.dataset import load_case, open_dataset
    from napari_aleatoric.labelquality.scores import annotated_class_probability, label_index
    from napari_aleatoric.training.label_issues import class_probabilities

    truth = json.loads((root / "truth.json").read_text())
    noisy, clean = open_dataset(root / "noisy"), open_dataset(root / "clean")
    values = list(noisy.foreground.values())
    n, right, wrong = (np.zeros(len(BINS) - 1) for _ in range(3))
    for case_id in truth["train"]:
        with np.load(noisy.cache_dir / "quality" / f"{case_id}.npz") as npz:
            maps = npz["issue_maps"].astype(np.float32)

        index, clean_index = (label_index(_volume(load_case(ds, ds.case(case_id)).label), values)
                              for ds in (noisy, clean))
        q = class_probabilities(maps, index)
        q_y = annotated_class_probability(q, index)
        chosen = (index > 0) & (q_y < 0.5)
        bins = np.digitize(q.max(axis=0)[chosen], BINS) - 1
        preferred, correct, drawn = q.argmax(axis=0)[chosen], clean_index[chosen], index[chosen]
        for b in range(len(BINS) - 1):
            inside = bins == b
            n[b] += inside.sum()
            right[b] += (inside & (preferred == correct)).sum()
            wrong[b] += (inside & (drawn != correct)).sum()
    return [{"sure_from": BINS[b], "sure_to": min(BINS[b + 1], 1.0), "pixels": int(n[b]),
             "preferred_class_right": round(float(right[b] / max(n[b], 1)), 3),
             "annotation_wrong": round(float(wrong[b] / max(n[b], 1)), 3)} for b in range(len(BINS) - 1)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    report = {}
    for root in args.roots:
        report[root.name] = tabulate(root)
        for row in report[root.name]:
            print(root.name, row, flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
