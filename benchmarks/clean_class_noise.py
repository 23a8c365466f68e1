"""How much of each class the label-quality model contradicts in *clean* cases: the floor an error
has to rise above before any per-class score can find it.

For every scored dataset folder given (``fresh_datasets.py`` sets or noisy-training ``DATA/<set>``
folders, with ``truth.json``; out-of-fold maps in the dataset's ``.aleatoric/cache/quality``), per
foreground class over its clean cases drawn with at least ``MIN_SHARE_PIXELS`` pixels: the median
and 90th percentile of the contradicted share, the same over the *interior* (pixels more than one
pixel inside the class's outline in their slice, so boundary blur does not count), and the median
probability of the annotated class on the contradicted pixels (near 0.5: hesitation; near 0:
confident contradiction)::

    python benchmarks/clean_class_noise.py /work/fresh8/ct_sizes /work/fresh8/ct_rare \\
        --out benchmarks/results/clean_class_noise.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from quality_maps import cached_cases  # noqa: E402

from napari_aleatoric.data.dataset import open_dataset  # noqa: E402
from napari_aleatoric.labelquality.scores import (CONTRADICTED_BELOW, MIN_SHARE_PIXELS,  # noqa: E402
                                                  annotated_class_probability)
from napari_aleatoric.training.label_issues import class_probabilities  # noqa: E402


def interior(mask: np.ndarray) -> np.ndarray:
    """``(D, H, W)`` bool: the pixels of ``mask`` more than one pixel inside its outline, slice by slice."""
    return np.stack([ndimage.binary_erosion(plane) for plane in mask])


def class_noise(root: Path) -> dict:
    """``{class: summary}`` over the clean cases of one dataset folder (see the module docstring)."""
    truth = json.loads((root / "truth.json").read_text())
    dataset = open_dataset(root / "noisy" if (root / "noisy").is_dir() else root)
    names = list(dataset.foreground)
    shares = {name: {"all": [], "interior": [], "q_contradicted": []} for name in names}
    for _case_id, maps, index in cached_cases(dataset, skip=set(truth["corrupted"])):
        given = annotated_class_probability(class_probabilities(maps, index), index)
        contradicted = given < CONTRADICTED_BELOW
        for k, name in enumerate(names, start=1):
            drawn = index == k
            if drawn.sum() < MIN_SHARE_PIXELS:
                continue
            inside = interior(drawn)
            shares[name]["all"].append(float(contradicted[drawn].mean()))
            if inside.any():
                shares[name]["interior"].append(float(contradicted[inside].mean()))
            if (contradicted & drawn).any():
                shares[name]["q_contradicted"].append(float(np.median(given[contradicted & drawn])))

    def summary(values: list[float]) -> list[float] | None:
        return [round(float(np.median(values)), 3), round(float(np.percentile(values, 90)), 3)] if values else None

    return {name: {"clean_cases": len(v["all"]), "share_median_p90": summary(v["all"]),
                   "interior_share_median_p90": summary(v["interior"]),
                   "q_on_contradicted_median": round(float(np.median(v["q_contradicted"])), 3)
                   if v["q_contradicted"] else None}
            for name, v in shares.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", help="scored dataset folders with truth.json")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    args = parser.parse_args(argv)
    report = {}
    for root in args.roots:
        report[str(root)] = class_noise(root)
        for name, values in report[str(root)].items():
            print(f"{root} {name}: {json.dumps(values)}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
