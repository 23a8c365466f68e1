"""Refresh the review priorities after corrections (re-learn label quality from the current labels),
or rank the queue by another column (:func:`rerank_scores`).

Only the small label-quality classifier is retrained (from the cached slice embeddings); the
foundation model's decoder does not run, so this takes seconds to minutes, not a re-scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from ..data.dataset import Dataset, open_dataset
from ..data.errors import DatasetError
from ..data.scores_file import read_summary, summary_path, write_scores
from ..data.state_layout import scores_csv
from ..labelquality.assess import LabelQualityFinished, LabelQualityProgress, assess_label_quality
from ..models.base import FoundationModel, resolve_device
from ..models.lazy import LazyModel
from ..models.registry import DEFAULT_MODEL
from .table import DEFAULT_RANK_BY, ScoreTable, check_rank_by, ranked, read_scores, with_label_quality


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
    csv_path = scores_csv(ds.state_dir)
    settings, table = _read_scored(csv_path)
    lazy = LazyModel(model if model is not None else settings.get("model_spec", DEFAULT_MODEL), resolve_device(device))
    if lazy.identity() != settings["model"]:
        raise DatasetError(summary_path(csv_path), f"the dataset was scored with {settings['model']}, not {lazy.identity()}: "
                                         "pass the model it was scored with, or score it again")
    known = {ref.case_id for ref in ds.cases}
    case_ids = [row["case_id"] for row in table.rows if row["case_id"] in known]
    result = None
    for event in assess_label_quality(ds, case_ids, lazy.identity(), lazy.get):
        if isinstance(event, LabelQualityFinished):
            result = event.result
        else:
            yield event
    refreshed = with_label_quality(table, list(ds.foreground), result, settings.get("rank_by", DEFAULT_RANK_BY))
    _write_ranking(csv_path, refreshed)
    yield PrioritiesRefreshed(refreshed, csv_path, result.seconds)


def rerank_scores(dataset: str | Path | Dataset, rank_by: str) -> ScoreTable:
    """Rank a scored dataset's queue by another column, without the model: ``scores.csv`` gets the
    new ranks and flags, ``scores.json`` the new ``rank_by`` (kept by later re-scores and refreshes),
    ranking and flagged cases; both written atomically.

    Args:
        dataset: a scored dataset.
        rank_by: a key of :data:`.table.RANK_BY` .

    Returns:
        the re-ranked table.

    Raises:
        DatasetError: the dataset has not been scored, or its files are unreadable.
        ValueError: an unknown ``rank_by``.
    """
    check_rank_by(rank_by)
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    csv_path = scores_csv(ds.state_dir)
    settings, table = _read_scored(csv_path)
    reranked = ranked(table, rank_by)
    _write_ranking(csv_path, reranked, rank_by)
    return reranked


def _read_scored(csv_path: Path) -> tuple[dict, ScoreTable]:
    """The scoring settings of ``scores.json`` and the table of ``scores.csv`` beside it."""
    summary = summary_path(csv_path)
    if not csv_path.is_file() or not summary.is_file():
        raise DatasetError(csv_path, "the dataset has not been scored yet: score it first")
    try:
        return read_summary(summary)["settings"], read_scores(csv_path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(summary, f"cannot read the scoring summary ({error})") from error


def _write_ranking(csv_path: Path, table: ScoreTable, rank_by: str | None = None) -> None:
    """Write a re-ranked table and its ranking, flags (and ``rank_by``) into ``scores.json``."""
    summary = read_summary(summary_path(csv_path))
    summary.update(ranking=table.ranking, flagged=[r["case_id"] for r in table.rows if r["flagged"]],
                   flag_rule=table.flag_rule)
    if rank_by is not None:
        summary["settings"]["rank_by"] = rank_by
    write_scores(csv_path, table, summary)
