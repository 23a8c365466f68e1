"""Learn label quality from the whole dataset and write per-case scores and per-class issue maps.

The foundation model's slice embeddings of the image under the modality's fixed intensity mapping
(:data:`FEATURE_INPUT`, never statistics of the annotation; cached) plus multi-scale intensity
filters are the per-pixel features; a classifier trained with K-fold cross-validation by case on
the dataset's own annotations gives every pixel out-of-sample class probabilities ``q``. Where the
annotation disagrees with ``q`` it is likely wrong:

- per case: ``1 − softmin`` over its pixels of ``q`` of the annotated class (cleanlab's softmin
  pooling, dominated by the most confidently contradicted pixels; column ``label_issue``, the
  queue's order), and the share of its drawn annotation whose annotated class ``q`` gives less
  than 0.5, the *contradicted share* (column ``contradicted``, a number a person can read);
- per class: the same over the pixels annotated or predicted as that class (``label_issue_<class>``)
  and over the pixels drawn as that class (``contradicted_<class>``);
- per pixel: ``|1[annotation = c] − q_c|``, cached as ``cache/quality/<case>.npz`` ``issue_maps``
  ``(C, D, H, W)`` float16 — the heatmaps the viewer shows.

Nothing here re-runs the model's decoder, so after corrections the priorities can be refreshed
from the cache (:func:`assess_label_quality` again).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..data.arraycache import ArrayCache, content_key
from ..data.dataset import Dataset, load_case
from ..data.errors import CaseError
from ..data.state_layout import embeddings_cache, quality_cache
from .case_source import EmbeddedCase
from .classifier import CasePredicted, CaseSampled, FoldsFitted, out_of_fold_probabilities
from .regions import WrongRegions, wrong_regions
from .scores import contradicted_shares, issue_maps, label_index, label_issue_scores
from .structures import worst_outline_share, worst_structure_share
from ..models.base import FoundationModel
from ..models.preprocess import InputMode, normalise_intensity

QUALITY_VERSION = "10"
#: The image the features see: the modality's fixed intensity mapping, whatever ``--input`` the
#: scoring used. With ``masknorm`` the statistics come from inside the annotation, so one spurious
#: blob would shift every pixel's features and the model would judge the annotation by features
#: that depend on it. A dataset scored with ``masknorm`` gets its ``raw`` slice embeddings computed
#: (and cached) by the first label-quality pass.
FEATURE_INPUT: InputMode = "raw"
#: Fewest scored cases the cross-validation runs on.
MIN_CASES = 4


@dataclass
class LabelQualityProgress:
    """Emitted per case and stage: ``"sampling"`` (drawing training pixels), ``"fitting"``,
    ``"predicting"`` (out-of-fold maps); ``index`` counts from 1 within the stage."""

    stage: str
    index: int
    total: int
    case_id: str = ""


@dataclass
class LabelQuality:
    """The label-quality result of a dataset.

    Attributes:
        score: case id → label-issue score in ``[0, 1]`` (1 − softmin; the queue's order), higher =
            more likely mislabelled.
        per_class: case id → ``(C,)`` per-class label-issue score (NaN: the class is neither drawn
            nor predicted).
        contradicted: case id → share of the drawn annotation that ``q`` contradicts, in ``[0, 1]``
            (NaN: nothing drawn).
        contradicted_per_class: case id → ``(C,)`` the same per class (NaN: the class is not drawn).
        structure: case id → the largest contradicted share over the case's structures, connected
            pieces of one class (NaN for a single slice; :mod:`.structures`).
        outline: case id → the largest contradicted share over the outlines (outer 2-px rims, in
            each slice) of the case's structures of at least 100 voxels (NaN for a single slice).
        unjudged: case id → the classes drawn in the case that its fold never saw (too rare to be
            judged: drawn in fewer than ``classifier.MIN_CLASS_CASES`` cases, or in no other fold's);
            they count in none of the case's scores.
        wrong: case id → how many pixels look wrongly labelled and where the largest such region is
            (:class:`~napari_aleatoric.labelquality.regions.WrongRegions`).
        maps_files: case id → the cached issue maps.
        seconds: wall time of the whole pass.
    """

    score: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, np.ndarray] = field(default_factory=dict)
    contradicted: dict[str, float] = field(default_factory=dict)
    contradicted_per_class: dict[str, np.ndarray] = field(default_factory=dict)
    structure: dict[str, float] = field(default_factory=dict)
    outline: dict[str, float] = field(default_factory=dict)
    unjudged: dict[str, list[str]] = field(default_factory=dict)
    wrong: dict[str, WrongRegions] = field(default_factory=dict)
    maps_files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class LabelQualityFinished:
    """Emitted last."""

    result: LabelQuality


def _nullable(values) -> list:
    """Floats for JSON metadata, ``None`` for NaN."""
    return [None if not math.isfinite(v) else float(v) for v in values]


def _floats(values: list) -> np.ndarray:
    """Metadata values back to floats (``None`` → NaN)."""
    return np.array([math.nan if v is None else v for v in values], np.float64)


def quality_key(model_name: str, image: np.ndarray, label: np.ndarray) -> str:
    """Validity key of a case's cached issue maps: the image and annotation as loaded (``(H, W)`` or
    ``(D, H, W)``) and the model. An edited annotation makes the maps stale."""
    image = np.ascontiguousarray(image if image.ndim == 3 else image[None])
    label = np.ascontiguousarray(label if label.ndim == 3 else label[None])
    return content_key("quality", QUALITY_VERSION, model_name, str(image.shape), str(image.dtype),
                       image.tobytes(), str(label.dtype), label.tobytes())


def load_issue_maps(dataset: Dataset, case_id: str, model_name: str, image: np.ndarray,
                    label: np.ndarray) -> np.ndarray | None:
    """The cached ``(C, D, H, W)`` float16 issue maps of a case (as stored), or ``None`` if missing or stale.

    Args:
        image, label: the case as loaded (``(H, W)`` or ``(D, H, W)``), to check the maps are current.
    """
    entry = ArrayCache(quality_cache_dir(dataset)).load(
        case_id, quality_key(model_name, image, label))
    return None if entry is None else entry[0]["issue_maps"]


def run_key(model_name: str, folds: int, seed: int, case_keys: dict[str, str]) -> str:
    """Key of a whole label-quality pass: every case's content key and the settings (any edit to any
    case changes every case's out-of-fold model, so the whole pass is redone)."""
    return content_key("quality-run", QUALITY_VERSION, model_name, str(folds), str(seed),
                       *(f"{case_id}={key}" for case_id, key in sorted(case_keys.items())))


def quality_cache_dir(dataset: Dataset) -> Path:
    """``<cache>/quality`` (``<dataset>/.aleatoric/cache/quality`` by default): the review queue's issue maps."""
    return quality_cache(dataset.cache_dir)


def cached_label_quality(dataset: Dataset, case_ids: list[str], case_keys: dict[str, str], key: str,
                         cache_dir: Path | None = None) -> LabelQuality | None:
    """The stored result of the pass ``key`` if every case's entry is intact and from that pass."""
    cache = ArrayCache(cache_dir or quality_cache_dir(dataset))
    result = LabelQuality()
    for case_id in case_ids:
        meta = cache.metadata(case_id, case_keys[case_id])
        if meta is None or meta.get("run_key") != key:
            return None
        result.score[case_id] = float(meta["score"])
        result.per_class[case_id] = _floats(meta["per_class"])
        result.contradicted[case_id] = _floats([meta["contradicted"]])[0]
        result.contradicted_per_class[case_id] = _floats(meta["contradicted_per_class"])
        result.structure[case_id] = _floats([meta["structure"]])[0]
        result.outline[case_id] = _floats([meta["outline"]])[0]
        result.unjudged[case_id] = list(meta.get("unjudged", []))
        wrong = meta["wrong"]
        result.wrong[case_id] = WrongRegions(wrong["voxels"], wrong["size"], np.array(wrong["per_class"]),
                                             wrong["worst_voxels"],
                                             tuple(wrong["worst_center"]) if wrong["worst_center"] else None)
        result.maps_files[case_id] = cache.path(case_id)
    return result


def assess_label_quality(
    dataset: Dataset,
    case_ids: list[str],
    model_name: str,
    get_model: Callable[[], FoundationModel],
    *,
    case_keys: dict[str, str] | None = None,
    folds: int = 5,
    seed: int = 0,
    label_paths: dict[str, Path] | None = None,
    cache_dir: Path | None = None,
) -> Iterator[LabelQualityProgress | LabelQualityFinished]:
    """Cross-validated label quality of ``case_ids`` (at least :data:`MIN_CASES`).

    A pass over exactly the same cases, contents and settings is read back from the cache without
    building the model.

    Args:
        dataset: the opened dataset (its ``.aleatoric/cache`` holds embeddings and receives the maps).
        case_ids: labelled cases that load cleanly (the scoring pass's cases).
        model_name: the model's identity (cache keys).
        get_model: builds (or returns) the foundation model; called only when the pass is not
            cached. Its encoder runs only for slices not yet in the embedding cache.
        case_keys: each case's :func:`quality_key` if the caller knows them (else cases are read).
        folds: cross-validation folds by case.
        seed: seeds folds, pixel sampling and the classifiers.
        label_paths: label files to read instead of the dataset's for some cases (a training run's
            label snapshot).
        cache_dir: where the issue maps go (default :func:`quality_cache_dir`; a training run's
            pass on its training cases keeps its own folder so the queue's maps stay intact).

    Yields:
        :class:`LabelQualityProgress` events, then one :class:`LabelQualityFinished`.

    Raises:
        ValueError: fewer than :data:`MIN_CASES` cases, or a single class in the whole dataset.
        CaseError: a case's files cannot be read.
    """
    if len(case_ids) < MIN_CASES:
        raise ValueError(f"label quality needs at least {MIN_CASES} scored cases, got {len(case_ids)}")
    started = time.perf_counter()
    names = list(dataset.foreground)
    values = [dataset.foreground[n] for n in names]
    embeddings = ArrayCache(embeddings_cache(dataset.cache_dir))
    cache_dir = Path(cache_dir) if cache_dir is not None else quality_cache_dir(dataset)
    quality_cache = ArrayCache(cache_dir)
    label_paths = label_paths or {}

    spacing: dict[str, tuple[float, ...]] = {}

    def read(case_id: str) -> tuple[np.ndarray, np.ndarray]:
        ref = dataset.case(case_id)
        if case_id in label_paths:
            ref = replace(ref, label_path=Path(label_paths[case_id]))
        case = load_case(dataset, ref)
        if case.label is None:
            raise CaseError(ref.image_paths[0], "case has no annotation")
        image = case.image if case.image.ndim == 3 else case.image[None]
        label = case.label if case.label.ndim == 3 else case.label[None]
        spacing[case_id] = tuple(float(v) for v in case.spacing)
        return image, label

    if case_keys is None:
        case_keys = {case_id: quality_key(model_name, *read(case_id)) for case_id in case_ids}
    key = run_key(model_name, folds, seed, case_keys)
    cached = cached_label_quality(dataset, case_ids, case_keys, key, cache_dir)
    if cached is not None:
        cached.seconds = time.perf_counter() - started
        yield LabelQualityFinished(cached)
        return
    model = get_model()

    def load(case_id: str) -> EmbeddedCase:
        image, label = read(case_id)
        image01 = normalise_intensity(image, dataset.modality, FEATURE_INPUT)  # never the annotation
        return EmbeddedCase(model, image01, label_index(label, values), embeddings, key=case_keys[case_id])

    result = LabelQuality()
    stage_of = {CaseSampled: "sampling", CasePredicted: "predicting"}
    for event in out_of_fold_probabilities(case_ids, load, len(values) + 1, folds=folds, seed=seed):
        if isinstance(event, FoldsFitted):
            yield LabelQualityProgress("fitting", event.folds, event.folds)
            continue
        yield LabelQualityProgress(stage_of[type(event)], event.index, event.total, event.case_id)
        if isinstance(event, CasePredicted):
            case_id, index, seen = event.case_id, event.case.label_index, event.seen
            score, per_class = label_issue_scores(event.probabilities, index, seen)
            share, share_per_class = contradicted_shares(event.probabilities, index, seen)
            structure = worst_structure_share(event.probabilities, index, seen)
            outline = worst_outline_share(event.probabilities, index, seen)
            unjudged = [name for k, name in enumerate(names, start=1) if not seen[k] and (index == k).any()]
            wrong = wrong_regions(event.probabilities, index, spacing[case_id], seen)
            result.wrong[case_id] = wrong
            result.score[case_id], result.per_class[case_id] = score, per_class
            result.contradicted[case_id], result.contradicted_per_class[case_id] = share, share_per_class
            result.structure[case_id] = structure
            result.outline[case_id] = outline
            result.unjudged[case_id] = unjudged
            result.maps_files[case_id] = quality_cache.save(
                case_id, event.case.key, {"issue_maps": issue_maps(event.probabilities, index, seen)},
                {"names": names, "values": values, "model": model_name, "input_mode": FEATURE_INPUT, "run_key": key,
                 "score": score, "per_class": _nullable(per_class), "contradicted": _nullable([share])[0],
                 "contradicted_per_class": _nullable(share_per_class), "structure": _nullable([structure])[0],
                 "outline": _nullable([outline])[0],
                 "unjudged": unjudged,
                 "wrong": {"voxels": wrong.voxels, "size": wrong.size, "per_class": wrong.per_class.tolist(),
                           "worst_voxels": wrong.worst_voxels, "worst_center": wrong.worst_center}})
    result.seconds = time.perf_counter() - started
    yield LabelQualityFinished(result)
