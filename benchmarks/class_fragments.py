"""Classes drawn with only a few pixels in a case (a structure's tip at the edge of a crop): their
per-class contradicted share rests on a handful of pixels. Lists, per dataset, every case and class
with 1 to ``--below - 1`` drawn pixels::

    python benchmarks/class_fragments.py /work/fresh*/* /work/bench12data/*/noisy --below 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from napari_aleatoric.data.dataset import load_case, open_dataset  # noqa: E402


def fragments(root: Path, below: int) -> list[tuple[str, str, int]]:
    """``(case id, class name, drawn pixels)`` for every class drawn with ``1 ≤ n < below`` pixels."""
    dataset = open_dataset(root)
    found = []
    for ref in dataset.cases:
        label = load_case(dataset, ref).label
        if label is None:
            continue
        for name, value in dataset.foreground.items():
            count = int((label == value).sum())
            if 0 < count < below:
                found.append((ref.case_id, name, count))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", help="dataset folders (with dataset.json)")
    parser.add_argument("--below", type=int, default=20, help="list classes with fewer drawn pixels than this")
    args = parser.parse_args(argv)
    for root in args.roots:
        if not (root / "dataset.json").is_file():
            continue
        found = fragments(root, args.below)
        print(f"{root}: {len(found)}{': ' if found else ''}{', '.join(f'{c} {n} ({k})' for c, n, k in found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
