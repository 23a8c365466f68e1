"""Score unlabelled cases (``imagesTs/``): a trained task network supplies the box prompts.

Scoring needs an annotation to draw the foundation model's box prompts from; unlabelled cases have
none. After retraining, the task network's segmentation takes its place: :func:`score_unlabelled`
segments every test case with a trained run, writes the segmentation as a label file, and scores
the cases with those labels exactly as :func:`napari_aleatoric.pipelines.scoring.score_dataset`
scores annotated ones (same prompts, SPS, AUV and heatmaps). The ranked table then says which
predictions the foundation model doubts most, so a reviewer can check those first.

Files, under ``<dataset>/.aleatoric/unlabelled/<run name>/``:
    ``labelsTs/<case><ending>``   the run's segmentation of each test case (dataset label values;
                                  image geometry; the dataset's label file format, else NIfTI)
    ``scores.csv``, ``scores.json``  the ranked table and its summary

The model maps are cached with the annotated cases' maps (``.aleatoric/cache/maps``), keyed by
content, so scoring again after a new run re-uses nothing stale. No Qt, no napari.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from ..data.dataset import CaseRef, Dataset, load_case, open_dataset
from ..data.errors import AleatoricError, CaseError, DatasetError, ModelError
from ..data.formats import LABEL_ENDINGS
from ..data.medio import write_label
from ..data.state_layout import predicted_labels_dir, scores_csv
from ..data.state_layout import unlabelled_dir as layout_unlabelled_dir
from ..models.base import FoundationModel
from ..models.registry import DEFAULT_MODEL
from ..training.prediction import load_trained_model
from .scoring import ScoringEvent, score_dataset

def unlabelled_dir(dataset: Dataset, run_name: str) -> Path:
    """``<dataset>/.aleatoric/unlabelled/<run name>``: a run's predictions and scores of the test cases."""
    return layout_unlabelled_dir(dataset.state_dir, run_name)


def predicted_label_path(dataset: Dataset, run_name: str, case_id: str) -> Path:
    """Where the run's segmentation of test case ``case_id`` is written."""
    ending = dataset.file_ending if dataset.file_ending.lower() in LABEL_ENDINGS else ".nii.gz"
    return predicted_labels_dir(dataset.state_dir, run_name) / f"{case_id}{ending}"


def pseudo_labelled_dataset(dataset: Dataset, run_name: str) -> Dataset:
    """The dataset's test cases that have a predicted label file, as labelled cases.

    The result scores and loads like any dataset (``score_dataset``, ``load_case``); its ``cases``
    are the test cases with the run's segmentation as ``label_path`` and it has no test cases.
    """
    cases = []
    for ref in dataset.test_cases:
        path = predicted_label_path(dataset, run_name, ref.case_id)
        if path.is_file():
            cases.append(CaseRef(ref.case_id, ref.image_paths, path))
    return replace(dataset, cases=cases, test_cases=[], warnings=[])


@dataclass
class UnlabelledStarted:
    """Emitted once: the test cases to segment and score, and the run that segments them."""

    total: int
    run_dir: Path
    out_dir: Path


@dataclass
class CasePredicted:
    """A test case was segmented; ``label_path`` holds the segmentation (``index`` counts from 1)."""

    index: int
    total: int
    case_id: str
    label_path: Path
    foreground_voxels: int
    seconds: float


@dataclass
class PredictionSkipped:
    """A test case could not be read or segmented; the others go on."""

    index: int
    total: int
    case_id: str
    error: AleatoricError


UnlabelledEvent = UnlabelledStarted | CasePredicted | PredictionSkipped | ScoringEvent


def score_unlabelled(
    dataset: str | Path | Dataset,
    model_dir: str | Path,
    model: str | FoundationModel = DEFAULT_MODEL,
    *,
    device: str | None = None,
    case_ids: list[str] | None = None,
    checkpoint: str = "best",
) -> Iterator[UnlabelledEvent]:
    """Segment the test cases with a trained run, then score them with those segmentations as prompts.

    Args:
        dataset: the dataset folder (or opened dataset) whose ``imagesTs`` cases are scored.
        model_dir: a training run folder (``<dataset>/.aleatoric/models/<run>``) with ``best.pt``.
        model: the foundation model that scores (as for ``score_dataset``).
        device: torch device for both models (``None``: CUDA if available).
        case_ids: only these test cases (default all).
        checkpoint: ``"best"`` or ``"last"``.

    Yields:
        :class:`UnlabelledStarted`, :class:`CasePredicted` / :class:`PredictionSkipped` per case,
        then the scoring events (``ScoringStarted``, ``CaseScored``..., ``ScoringFinished``, whose
        table ranks the test cases; written to ``unlabelled/<run>/scores.csv``).

    Raises (at the first ``next()``):
        DatasetError: no test cases, or an unknown case id.
        ModelError: the run cannot be loaded or was trained on other classes.
    """
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    if not ds.test_cases:
        raise DatasetError(ds.root / "imagesTs", "the dataset has no unlabelled cases (imagesTs/ is missing or "
                           "empty, or dataset.json lists no 'test' images)")
    known = {ref.case_id: ref for ref in ds.test_cases}
    wanted = list(known) if case_ids is None else list(case_ids)
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise DatasetError(ds.root, f"not unlabelled cases of this dataset: {', '.join(unknown[:5])}")
    model_dir = Path(model_dir)
    trained = load_trained_model(model_dir, device=device, checkpoint=checkpoint)
    dataset_values = [int(v) for v in ds.foreground.values()]
    if [int(v) for v in trained.label_values[1:]] != dataset_values:
        raise ModelError(model_dir, f"trained on classes {', '.join(trained.class_names)} (values "
                         f"{[int(v) for v in trained.label_values[1:]]}) but the dataset declares "
                         f"{', '.join(ds.foreground)} (values {dataset_values})")
    run_name = model_dir.name
    out_dir = unlabelled_dir(ds, run_name)
    total = len(wanted)
    yield UnlabelledStarted(total=total, run_dir=model_dir, out_dir=out_dir)
    predicted = []
    for index, case_id in enumerate(wanted, start=1):
        started = time.perf_counter()
        try:
            case = load_case(ds, known[case_id])
            try:
                labels = trained.predict(case.image)
            except ValueError as error:  # wrong dimensionality, non-finite values
                raise CaseError(known[case_id].image_paths[0], f"cannot be segmented: {error}") from error
            path = predicted_label_path(ds, run_name, case_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_label(path, labels, case.geometry)
        except AleatoricError as error:
            yield PredictionSkipped(index=index, total=total, case_id=case_id, error=error)
            continue
        predicted.append(case_id)
        yield CasePredicted(index=index, total=total, case_id=case_id, label_path=path,
                            foreground_voxels=int((labels != 0).sum()), seconds=time.perf_counter() - started)
    pseudo = pseudo_labelled_dataset(ds, run_name)
    yield from score_dataset(pseudo, model, device=device, case_ids=predicted,
                             out_csv=scores_csv(out_dir))
