"""Refresh the review priorities after corrections: re-learn label quality from the current labels.

Only the small label-quality classifier is retrained (from the cached slice embeddings); the
foundation model's decoder does not run, so this takes seconds to minutes, not a re-scoring.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from ..data.atomic import atomic_write_bytes
from ..data.dataset import Dataset, open_dataset
from ..data.errors import DatasetError
from ..models.base import FoundationModel, resolve_device
from ..models.lazy import LazyModel
from ..models.registry import DEFAULT_MODEL
from .label_quality import LabelQualityFinished, LabelQualityProgress, assess_label_quality
from .table import ScoreTable, read_scores, table_to_csv, with_label_quality


@dataclass
class PrioritiesRefreshed:
    """Emitted last: the re-ranked table, written to ``csv_path``."""

    table: ScoreTable
    csv_path: Path
    seconds: float


def refresh_priorities(dataset: str | Path | Dataset, model: str | FoundationModel | None = None, *,
                       device: str | torch.device | None = None
                       ) -> Iterator[LabelQualityProgress | PrioritiesRefreshed]:
    """Re-learn label quality on the scored cases' current annotations and re-rank ``scores.csv``.

    Args:
        dataset: a dataset that has been scored (``.aleatoric/scores.csv`` and ``scores.json``).
        model: the scoring model (default: the model specification the scoring run recorded). It is
            built only if some slice embedding is missing from the cache.
        device: where the model runs if it is needed.

    Yields:
        :class:`LabelQualityProgress` events, then :class:`PrioritiesRefreshed`.

    Raises:
        DatasetError: the dataset has not been scored, or its summary is unreadable.
    """
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    csv_path = ds.state_dir / "scores.csv"
    summary_path = csv_path.with_suffix(".json")
    if not csv_path.is_file() or not summary_path.is_file():
        raise DatasetError(csv_path, "the dataset has not been scored yet: score it before refreshing priorities")
    try:
        settings = json.loads(summary_path.read_text())["settings"]
        table = read_scores(csv_path)
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(summary_path, f"cannot read the scoring summary ({error})") from error
    input_mode = settings.get("input_mode", "raw")
    lazy = LazyModel(model if model is not None else settings.get("model_spec", DEFAULT_MODEL), resolve_device(device))
    if lazy.identity() != settings["model"]:
        raise DatasetError(summary_path, f"the dataset was scored with {settings['model']}, not {lazy.identity()}: "
                                         "pass the model it was scored with, or score it again")
    known = {ref.case_id for ref in ds.cases}
    case_ids = [row["case_id"] for row in table.rows if row["case_id"] in known]
    result = None
    for event in assess_label_quality(ds, case_ids, lazy.identity(), lazy.get, input_mode=input_mode):
        if isinstance(event, LabelQualityFinished):
            result = event.result
        else:
            yield event
    refreshed = with_label_quality(table, list(ds.foreground), result, float(settings.get("flag_quantile", 0.9)))
    atomic_write_bytes(csv_path, table_to_csv(refreshed).encode())
    yield PrioritiesRefreshed(refreshed, csv_path, result.seconds)
