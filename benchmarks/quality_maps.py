"""The cached out-of-fold issue maps of a scored dataset, case by case, with the annotation's class index
(read by the diagnostics that work from a scoring pass's cache instead of re-running it)."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from napari_aleatoric.data.dataset import Dataset, load_case
from napari_aleatoric.labelquality.scores import label_index


def cached_cases(dataset: Dataset, skip: set[str] | frozenset[str] = frozenset()
                 ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(case id, maps (C, D, H, W) float32, index (D, H, W))`` of every case with cached maps in
    ``<cache>/quality``, in the dataset's order; cases in ``skip`` are not read."""
    values = list(dataset.foreground.values())
    for ref in dataset.cases:
        path = dataset.cache_dir / "quality" / f"{ref.case_id}.npz"
        if ref.case_id in skip or not path.is_file():
            continue
        with np.load(path) as npz:
            maps = npz["issue_maps"].astype(np.float32)
        label = load_case(dataset, ref).label
        yield ref.case_id, maps, label_index(label if label.ndim == 3 else label[None], values)
