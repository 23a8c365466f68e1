"""Score a labelled dataset: the foundation model's class maps, the paper's SPS/AUV, heatmaps.

:func:`score_dataset` is a generator of progress events; the CLI prints them, the GUI runs the
generator in a napari worker. Stopping the iteration between cases is always safe: every finished
case is already in the on-disk cache, so the next run resumes where this one stopped.

Files (under ``<dataset>/.aleatoric/``):
    ``cache/maps/<case_id>.npz``    per case: ``probabilities`` and ``heatmaps`` ``(C, D, H, W)``
                                    float16, ``prompted`` ``(C, D)`` bool; valid only for the same
                                    image and label content, model and preprocessing.
    ``cache/embeddings/*.npz``      slice embeddings of the foundation model (float16).
    ``cache/quality/<case_id>.npz`` per case: the learned label-issue maps ``(C, D, H, W)`` float16
                                    (see :mod:`napari_aleatoric.labelquality.assess`), valid for one whole pass.
    ``scores.csv``, ``scores.json`` the ranked table and a summary (settings, skipped cases, timing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..data.arraycache import ArrayCache, content_key
from ..data.dataset import Dataset, image_channel, load_case, open_dataset, validate_case_files
from ..data.errors import AleatoricError, CaseError
from ..data.medio import probe
from ..data.state_layout import embeddings_cache, maps_cache, scores_csv
from ..labelquality.assess import MIN_CASES, LabelQualityFinished, LabelQualityProgress, assess_label_quality, quality_key
from ..models.base import FoundationModel, resolve_device
from ..models.lazy import LazyModel
from ..models.preprocess import InputMode, normalise_intensity
from ..models.prompting import slice_embeddings
from ..models.registry import DEFAULT_MODEL
from ..uncertainty.heatmap import binary_entropy_map
from ..uncertainty.prompts import component_boxes
from ..uncertainty.sps import Energy, SvdMode, class_scales
from .class_maps import compute_class_maps
from .memory import check_scoring_memory
from .table import DEFAULT_RANK_BY, ScoreTable, build_table, check_cache_dir, check_rank_by, output_paths, write_outputs

PIPELINE_VERSION = "1"
#: Slices per encoder forward on CUDA when no batch size is given.
DEFAULT_CUDA_BATCH = 8


@dataclass
class CaseResult:
    """Scores of one case before dataset normalisation.

    Attributes:
        case_id: the case.
        sps_per_class: foreground label name → SPS in ``[0, 1]`` (NaN where the class is absent).
        dice_fm_per_class: label name → Dice between the model's mask (p > 0.5) and the annotation.
        maps_file: the cached maps of this case.
        shape: ``(D, H, W)`` of the case.
        forward_seconds: time in the foundation model (0 when everything came from the cache).
        cached: whether the maps came from the cache.
        quality_key: validity key of the case's label-quality maps (its content as scored).
    """

    case_id: str
    sps_per_class: dict[str, float]
    dice_fm_per_class: dict[str, float]
    maps_file: Path
    shape: tuple[int, int, int]
    forward_seconds: float = 0.0
    cached: bool = False
    quality_key: str = ""


@dataclass
class ScoringStarted:
    """Emitted once: how many cases will be scored and which failed the up-front validation."""

    total: int
    skipped: list[CaseError] = field(default_factory=list)


@dataclass
class CaseScored:
    """Emitted after each case (``index`` counts from 1 over all cases, scored or skipped)."""

    index: int
    total: int
    result: CaseResult
    seconds: float


@dataclass
class CaseSkipped:
    """Emitted for a case that could not be loaded or scored; the others go on."""

    index: int
    total: int
    case_id: str
    error: AleatoricError


@dataclass
class ScoringFinished:
    """Emitted last, after the CSV and JSON summary are written."""

    table: ScoreTable
    csv_path: Path
    summary_path: Path
    skipped: list[AleatoricError]


ScoringEvent = ScoringStarted | CaseScored | CaseSkipped | LabelQualityProgress | ScoringFinished


def maps_key(model_name: str, input_mode: str, image: np.ndarray, label: np.ndarray) -> str:
    """Validity key of a case's cached maps: content, model identity and preprocessing."""
    return content_key(PIPELINE_VERSION, model_name, input_mode, str(image.shape), image.tobytes(), label.tobytes())


def maps_cache_dir(dataset: Dataset) -> Path:
    """``<cache>/maps`` (``<dataset>/.aleatoric/cache/maps`` by default): the foundation model's maps."""
    return maps_cache(dataset.cache_dir)


def load_class_maps(dataset: Dataset, case_id: str, model_name: str, input_mode: str, image: np.ndarray,
                    label: np.ndarray) -> tuple[dict[str, np.ndarray], dict] | None:
    """The cached foundation-model maps of a case if they are current, else ``None`` (missing or stale).

    Args:
        image, label: the case as loaded (``(H, W)`` or ``(D, H, W)``), to check the maps are current.

    Returns:
        ``(arrays, metadata)``: ``probabilities`` and ``heatmaps`` ``(C, D, H, W)`` float16 (``D = 1``
        in 2D), ``prompted`` ``(C, D)`` bool; metadata with the class ``names`` and ``values``.

    Raises:
        ValueError: ``input_mode`` is unknown.
    """
    image, label = _case_volumes(image, label)
    image01 = normalise_intensity(image, dataset.modality, input_mode, label > 0)
    return ArrayCache(maps_cache_dir(dataset)).load(case_id, maps_key(model_name, input_mode, image01, label))


def _case_volumes(image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if image.ndim == 2:
        return image[None], label[None]
    return image, label


def _dice(mask: np.ndarray, reference: np.ndarray) -> float:
    total = mask.sum() + reference.sum()
    return float(2.0 * np.logical_and(mask, reference).sum() / total) if total else float("nan")


def check_scorable_shape(path: Path, shape: tuple[int, ...]) -> None:
    """Refuse a case whose slices are thinner than 2 pixels (the SPS needs at least two singular
    values of each slice's class map): raises :class:`CaseError` naming ``path``."""
    height, width = shape[-2:]
    if height < 2 or width < 2:
        raise CaseError(path, f"image is {height}x{width} pixels per slice; scoring needs slices of at least "
                        "2x2 pixels (a 1-pixel-wide or -tall image has a single singular value); case skipped")


@dataclass
class _LoadedCase:
    """One case read and normalised for scoring, with its cached maps if they are valid."""

    case_id: str
    image_path: Path
    image: np.ndarray  # (D, H, W) as read
    label: np.ndarray  # (D, H, W) annotation
    image01: np.ndarray  # (D, H, W) in [0, 1], what the model sees
    key: str  # validity key of the case's maps
    entry: tuple[dict[str, np.ndarray], dict] | None  # the cached maps, or None
    annotated: list[int] | None = None  # slices with a foreground annotation (set on first use)


def _load_for_scoring(dataset: Dataset, case_id: str, model_name: str, input_mode: InputMode) -> _LoadedCase:
    """Read, check and normalise one case, and look up its cached maps (raises :class:`CaseError`)."""
    ref = dataset.case(case_id)
    check_scoring_memory(ref.image_paths[0], probe(ref.image_paths[0], channel=image_channel(dataset)).shape)
    case = load_case(dataset, ref)
    if case.label is None:
        raise CaseError(ref.image_paths[0], "case has no annotation to score")
    check_scorable_shape(ref.image_paths[0], case.image.shape)
    image, label = _case_volumes(case.image, case.label)
    image01 = normalise_intensity(image, dataset.modality, input_mode, label > 0)
    key = maps_key(model_name, input_mode, image01, label)
    entry = ArrayCache(maps_cache_dir(dataset)).load(case_id, key)
    return _LoadedCase(case_id, ref.image_paths[0], image, label, image01, key, entry)


def _annotated_slices(dataset: Dataset, loaded: _LoadedCase) -> list[int]:
    """Indices of the slices the model is prompted on (those with a foreground annotation)."""
    if loaded.annotated is None:
        values = list(dataset.foreground.values())
        loaded.annotated = [d for d in range(loaded.label.shape[0]) if component_boxes(loaded.label[d], values)]
    return loaded.annotated


def _score_loaded(
    dataset: Dataset,
    loaded: _LoadedCase,
    model: LazyModel,
    *,
    input_mode: InputMode = "raw",
    svd_mode: SvdMode = "D_HW",
    energy: Energy = "sigma2",
    compute_device: torch.device | None = None,
    batch_size: int = 1,
    embed_seconds: float = 0.0,
) -> CaseResult:
    """Score a loaded case (maps from its cache entry or from the model); ``embed_seconds`` is
    encoder time already spent on this case's slices in a batch shared with other cases."""
    case_id, image, label = loaded.case_id, loaded.image, loaded.label
    names = list(dataset.foreground)
    values = [dataset.foreground[n] for n in names]
    maps_cache = ArrayCache(maps_cache_dir(dataset))
    model_name = model.identity()
    entry = loaded.entry
    cached = entry is not None
    forward_seconds = 0.0
    if cached:
        probabilities = torch.from_numpy(entry[0]["probabilities"].astype(np.float32))
        prompted = torch.from_numpy(entry[0]["prompted"])
    else:
        fm = model.get()
        class_maps = compute_class_maps(fm, loaded.image01, label, values, ArrayCache(embeddings_cache(dataset.cache_dir)),
                                        batch_size=batch_size)
        forward_seconds = class_maps.forward_seconds + embed_seconds
        # Scores come from the float16 maps that are cached, so a cached run gives identical numbers.
        probabilities = torch.from_numpy(class_maps.probabilities).half().float()
        prompted = torch.from_numpy(class_maps.prompted)
    device = compute_device or torch.device("cpu")
    probabilities_d = probabilities.to(device)
    scales = class_scales(probabilities_d, prompted.to(device), svd_mode=svd_mode, energy=energy).cpu().numpy()
    if not cached:
        heatmaps = binary_entropy_map(probabilities_d).cpu().numpy()
        maps_cache.save(case_id, loaded.key, {"probabilities": probabilities.numpy(), "heatmaps": heatmaps,
                                              "prompted": prompted.numpy()},
                        {"names": names, "values": values, "model": model_name, "input_mode": input_mode,
                         "forward_seconds": forward_seconds})
    masks = probabilities.numpy() > 0.5
    dice = {}
    for c, (name, value) in enumerate(zip(names, values)):
        reference = label == value
        dice[name] = _dice(masks[c], reference) if reference.any() else float("nan")
    return CaseResult(case_id=case_id, sps_per_class={n: float(s) for n, s in zip(names, scales)},
                      dice_fm_per_class=dice, maps_file=maps_cache.path(case_id), shape=tuple(label.shape),
                      forward_seconds=forward_seconds, cached=cached,
                      quality_key=quality_key(model_name, image, label))


def score_case(
    dataset: Dataset,
    case_id: str,
    model: LazyModel,
    *,
    input_mode: InputMode = "raw",
    svd_mode: SvdMode = "D_HW",
    energy: Energy = "sigma2",
    compute_device: torch.device | None = None,
    batch_size: int = 1,
) -> CaseResult:
    """Load, prompt (or read from the cache) and score one case.

    Args:
        batch_size: annotated slices of the case per encoder forward (the scores do not depend on it).

    Raises:
        CaseError: the case's files are invalid (names the file and the problem), or the case is too
            large to score in the memory available (see :mod:`.memory`).
    """
    loaded = _load_for_scoring(dataset, case_id, model.identity(), input_mode)
    return _score_loaded(dataset, loaded, model, input_mode=input_mode, svd_mode=svd_mode, energy=energy,
                         compute_device=compute_device, batch_size=batch_size)


def _as_case_error(ds: Dataset, case_id: str, error: Exception) -> CaseError:
    ref = ds.case(case_id)
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    kind = "not enough memory" if isinstance(error, MemoryError) else "cannot be scored"
    return CaseError(ref.image_paths[0], f"{kind}: {detail}; case skipped")


# The failures that belong to one case alone (degenerate shapes the math refuses, not enough memory).
_CASE_FAILURES = (ValueError, MemoryError, IndexError, ZeroDivisionError, np.linalg.LinAlgError)


def _score_one(ds: Dataset, case_id: str, lazy: LazyModel, **options) -> CaseResult:
    """:func:`score_case`, with the failures that belong to this case alone (degenerate shapes the
    math refuses, not enough memory for it) turned into a :class:`CaseError` naming its image, so
    that one case never aborts the run."""
    try:
        return score_case(ds, case_id, lazy, **options)
    except _CASE_FAILURES as error:
        raise _as_case_error(ds, case_id, error) from error


def _scored_one_by_one(ds: Dataset, todo: list[str], lazy: LazyModel, options: dict,
                       ) -> Iterator[tuple[str, CaseResult | CaseError, float]]:
    """``(case_id, result or error, seconds)`` for each case of ``todo``, one case at a time."""
    for case_id in todo:
        started = time.perf_counter()
        try:
            outcome: CaseResult | CaseError = _score_one(ds, case_id, lazy, **options)
        except CaseError as error:
            outcome = error
        yield case_id, outcome, time.perf_counter() - started


def resolve_batch_size(batch_size: int | None, device: torch.device) -> int:
    """Slices per encoder forward: ``batch_size`` if given, else ``DEFAULT_CUDA_BATCH`` on CUDA and 1
    elsewhere (on the CPU a batch does not make the encoder faster per slice; see performance.md)."""
    if batch_size is None:
        return DEFAULT_CUDA_BATCH if device.type == "cuda" else 1
    if int(batch_size) < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    return int(batch_size)


def _scored_in_batches(ds: Dataset, todo: list[str], lazy: LazyModel, batch_size: int, options: dict,
                       ) -> Iterator[tuple[str, CaseResult | CaseError, float]]:
    """``(case_id, result or error, seconds)`` for each case of ``todo`` in order.

    With ``batch_size > 1``, consecutive cases with fewer annotated slices than a batch (2D cases,
    thin volumes) are loaded together and their slices embedded in shared encoder forwards (the
    embeddings go to the embedding cache, where each case's own pass finds them); larger volumes
    batch their own slices. Per case, the scores are those of the unbatched path.
    """
    model_name = lazy.identity()
    input_mode = options["input_mode"]
    position = 0
    while position < len(todo):
        group: list[tuple[str, _LoadedCase | CaseError, float]] = []
        pending = 0
        while position < len(todo) and pending < batch_size and len(group) < batch_size:
            case_id = todo[position]
            started = time.perf_counter()
            try:
                loaded = _load_for_scoring(ds, case_id, model_name, input_mode)
            except CaseError as error:
                group.append((case_id, error, time.perf_counter() - started))
                position += 1
                continue
            except _CASE_FAILURES as error:
                group.append((case_id, _as_case_error(ds, case_id, error), time.perf_counter() - started))
                position += 1
                continue
            annotated = 0 if loaded.entry is not None else len(_annotated_slices(ds, loaded))
            if annotated >= batch_size and group:
                break  # a volume that fills batches on its own starts the next group
            position += 1
            group.append((case_id, loaded, time.perf_counter() - started))
            pending += annotated
        shared_seconds = _embed_group(ds, [g[1] for g in group if isinstance(g[1], _LoadedCase)], lazy, batch_size)
        for case_id, loaded, load_seconds in group:
            if isinstance(loaded, CaseError):
                yield case_id, loaded, load_seconds
                continue
            started = time.perf_counter()
            try:
                result = _score_loaded(ds, loaded, lazy, batch_size=batch_size,
                                       embed_seconds=shared_seconds.get(case_id, 0.0), **options)
            except CaseError as error:
                yield case_id, error, time.perf_counter() - started
                continue
            except _CASE_FAILURES as error:
                yield case_id, _as_case_error(ds, case_id, error), time.perf_counter() - started
                continue
            yield case_id, result, load_seconds + time.perf_counter() - started + shared_seconds.get(case_id, 0.0)


def _embed_group(ds: Dataset, group: list[_LoadedCase], lazy: LazyModel, batch_size: int) -> dict[str, float]:
    """Embed the annotated slices of a group's uncached small cases together (into the embedding
    cache); returns the encoder seconds per case (shared out by slice). A volume with a batch of
    annotated slices of its own, or a batch that fails, is left to the per-case pass."""
    slices, owners = [], []
    for loaded in group:
        if loaded.entry is not None:
            continue
        annotated = _annotated_slices(ds, loaded)
        if len(annotated) >= batch_size:
            continue
        slices += [loaded.image01[d] for d in annotated]
        owners += [loaded.case_id] * len(annotated)
    if len(slices) < 2:
        return {}
    model = lazy.get()
    before = model.seconds_in_model
    try:
        slice_embeddings(model, slices, ArrayCache(embeddings_cache(ds.cache_dir)), batch_size)
    except (*_CASE_FAILURES, RuntimeError):
        return {}  # each case then embeds its own slices, and a faulty one is skipped by itself
    per_slice = (model.seconds_in_model - before) / len(slices)
    seconds: dict[str, float] = {}
    for owner in owners:
        seconds[owner] = seconds.get(owner, 0.0) + per_slice
    return seconds


def score_dataset(
    dataset: str | Path | Dataset,
    model: str | FoundationModel = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = None,
    input_mode: InputMode = "raw",
    svd_mode: SvdMode = "D_HW",
    energy: Energy = "sigma2",
    rank_by: str = DEFAULT_RANK_BY,
    out_csv: str | Path | None = None,
    case_ids: list[str] | None = None,
    label_quality: bool = True,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
    client=None,
) -> Iterator[ScoringEvent]:
    """Score every labelled case of a dataset, one at a time, yielding progress events.

    Args:
        dataset: dataset folder (nnU-Net v2 raw or Decathlon) or an opened :class:`Dataset`.
        model: model specification (see :func:`napari_aleatoric.models.registry.load_model`) or a
            model; it is only built if some case is not cached.
        device: torch device for the model and the uncertainty math (default: CUDA if available).
        input_mode: ``"raw"`` image or ``"masknorm"`` (intensity statistics inside the annotation).
        svd_mode: matrix layout of volumes for the SPS.
        energy: ``"sigma2"`` or ``"sigma"``.
        rank_by: the column the queue's rank follows (a key of :data:`.table.RANK_BY`:
            ``"issue-rank"``, the default and the measured best over both benchmarks;
            ``"label-issue"``; ``"contradicted"``; ``"worst-region"``; ``"auv"``, the paper's order).
            Without label quality: AUV.
        out_csv: where to write the CSV (default ``<dataset>/.aleatoric/scores.csv``); refused
            inside the dataset folder outside ``.aleatoric/`` (see :func:`.table.output_paths`).
        case_ids: score only these cases (default all labelled training cases).
        label_quality: also learn label quality and rank by it (off: rank by AUV alone, e.g. for a
            benchmark that runs label quality on its own subsets of the cases).
        cache_dir: keep the caches there instead of ``<dataset>/.aleatoric/cache`` (and, without
            ``out_csv``, write ``scores.csv`` there): a read-only dataset can be scored this way.
        batch_size: slices per encoder forward (default ``DEFAULT_CUDA_BATCH`` on CUDA, 1 on the
            CPU); 2D cases are batched across consecutive cases. The scores do not depend on it
            (the same maps, bit for bit, wherever the encoder gives each slice the same embedding
            in a batch as alone, as it does on the CPU; see ``tests/test_scoring_batch.py``).

        client: a ``dask.distributed.Client``: score the cases on its cluster, one task per case
            (see :mod:`.distributed`; ``model`` must then be a specification string, the dataset and
            its cache on a filesystem the workers share, and ``device`` is resolved on each
            worker). Events arrive in the order the cases finish; the table and ``scores.json``
            are those of a serial run. Without a client, Dask is never imported.

    After the cases, the learned label quality of the whole dataset is assessed (at least
    ``MIN_CASES`` scored cases; see :mod:`napari_aleatoric.labelquality.assess`), and the column ``rank_by`` names orders the table.

    Yields:
        :class:`ScoringStarted`, then :class:`CaseScored` / :class:`CaseSkipped` per case, then
        :class:`LabelQualityProgress` events, then :class:`ScoringFinished`.

    Raises:
        DatasetError: the dataset cannot be opened at all.
        AleatoricError: ``out_csv`` would replace a dataset file or one the user did not name.
        ValueError: an unknown ``rank_by``.
    """
    check_rank_by(rank_by)
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    if cache_dir is not None:
        ds = replace(ds, cache_root=check_cache_dir(ds.root, cache_dir))
        if out_csv is None:
            out_csv = scores_csv(Path(cache_dir))
    if out_csv is not None:
        out_csv = output_paths(ds.root, out_csv)[0]  # refused before any work if it would harm a file
    if client is not None and not isinstance(model, str):
        raise ValueError("scoring on a Dask cluster needs the model as a specification (e.g. 'litemedsam'), "
                         "not a loaded model: each worker loads its own")
    try:
        torch_device = resolve_device(device)
    except ValueError:
        if client is None:
            raise
        torch_device = torch.device("cpu")  # the device is the workers' (e.g. GPU workers, CPU-only client)
    batch = resolve_batch_size(batch_size, torch_device)
    lazy = LazyModel(model, torch_device)
    wanted = case_ids if case_ids is not None else [ref.case_id for ref in ds.cases]
    problems = {}
    for case_id in wanted:
        try:
            validate_case_files(ds, ds.case(case_id))
        except CaseError as error:
            problems[case_id] = error
    skipped: list[AleatoricError] = list(problems.values())
    todo = [c for c in wanted if c not in problems]
    total = len(wanted)
    yield ScoringStarted(total=total, skipped=list(skipped))
    index = len(skipped)
    results: list[CaseResult] = []
    case_errors: list[tuple[str, CaseError]] = []
    options = {"input_mode": input_mode, "svd_mode": svd_mode, "energy": energy, "compute_device": torch_device}
    if client is not None:
        from .distributed import scored_on_cluster  # noqa: PLC0415 (Dask only on this path)

        worker_options = {"input_mode": input_mode, "svd_mode": svd_mode, "energy": energy, "batch_size": batch_size}
        outcomes = scored_on_cluster(client, ds, todo, model, None if device is None else str(device), worker_options)
    elif batch == 1:
        outcomes = _scored_one_by_one(ds, todo, lazy, options)
    else:
        outcomes = _scored_in_batches(ds, todo, lazy, batch, options)
    try:
        for case_id, outcome, seconds in outcomes:
            index += 1
            if isinstance(outcome, CaseError):
                case_errors.append((case_id, outcome))
                yield CaseSkipped(index=index, total=total, case_id=case_id, error=outcome)
                continue
            results.append(outcome)
            yield CaseScored(index=index, total=total, result=outcome, seconds=seconds)
    finally:
        outcomes.close()  # on a cluster: cancels the cases not yet finished
    # the order of a serial run, whatever order the cases finished in
    order = {case_id: i for i, case_id in enumerate(todo)}
    results.sort(key=lambda r: order[r.case_id])
    skipped += [error for _, error in sorted(case_errors, key=lambda item: order[item[0]])]
    quality_wanted = label_quality
    label_quality, quality_problem = None, f"fewer than {MIN_CASES} scored cases"
    if not quality_wanted:
        quality_problem = "switched off"
    elif len(results) >= MIN_CASES:
        try:
            for event in assess_label_quality(ds, [r.case_id for r in results], lazy.identity(), lazy.get,
                                              case_keys={r.case_id: r.quality_key for r in results}):
                if isinstance(event, LabelQualityFinished):
                    label_quality = event.result
                else:
                    yield event
        except (ValueError, AleatoricError) as error:  # e.g. a single class in the whole dataset
            quality_problem = str(error)
    table = build_table(results, list(ds.foreground), label_quality, rank_by)
    csv_path = Path(out_csv) if out_csv is not None else scores_csv(ds.state_dir)
    settings = {"model": lazy.identity(), "device": str(torch_device), "input_mode": input_mode,
                "model_spec": model if isinstance(model, str) else lazy.identity(), "svd_mode": svd_mode, "energy": energy,
                "rank_by": rank_by, "batch_size": batch,
                "label_quality": "ran" if label_quality is not None else f"not run: {quality_problem}"}
    if client is not None:  # the cases ran on the workers, with their device and its default batch size
        settings.update(device=f"Dask workers: {device or 'auto'}", batch_size=batch_size or "the workers' default")
    summary_path = write_outputs(table, csv_path, settings, skipped, results, label_quality)
    yield ScoringFinished(table=table, csv_path=csv_path, summary_path=summary_path, skipped=skipped)

