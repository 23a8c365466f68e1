"""Training data: which cases, how they are split, filtered, loaded and cut into patches.

- **Cases**: the dataset's training cases with their current label files (corrections are saved
  in place, so they are what is read); cases marked ``excluded`` in the review store are left out.
- **Split**: by case, from a stable hash of the case identifier (:func:`split_cases`): the same
  case always lands on the same side whatever the seed, the filter or cases added later, so runs
  with and without filtering are validated on the same cases.
- **Filter** (the paper's strategy 1): among the training cases, keep those whose AUV from
  ``scores.csv`` is at or below the ``keep`` quantile (global, or per class). Validation cases are
  never filtered.
- **Snapshot**: :func:`snapshot_labels` copies the label files of a run's cases at its start, and
  the run reads its labels from that copy, so corrections saved while it trains (the user keeps
  reviewing) do not reach it half-way; the copy also records exactly what the model learned from.
- **Loading**: lazily, one case at a time, with an in-memory LRU of prepared cases bounded in bytes.
  Intensities go to ``[0, 1]`` with :func:`napari_aleatoric.models.preprocess.normalise_intensity`
  (CT window, else 0.5–99.5 percentiles); labels become channel indices (0 = background).
- **Patches**: one random patch per case and step (a third of them centred on a foreground voxel);
  a case smaller than the patch is zero-padded at a random offset. Light augmentation: that random
  placement and an intensity scale (×0.9–1.1) and shift (±0.1). No flips: left/right classes exist.
  All randomness comes from ``numpy.random.default_rng([seed, epoch, step])``, so a resumed run
  draws exactly the patches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import shutil
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..data.atomic import full_suffix
from ..data.dataset import CaseRef, Dataset, check_declared_values, load_case, validate_case_files
from ..data.errors import AleatoricError, CaseError, DatasetError
from ..data.medio import read_label
from ..data.scores_file import read_scores
from ..data.state_layout import review_store, scores_csv as default_scores_csv
from ..models.preprocess import normalise_intensity
from ..uncertainty.auv import keep_mask, keep_mask_classwise
from .settings import TrainSettings

FOREGROUND_PROBABILITY = 1.0 / 3.0
#: at most this many foreground voxel indices are kept per case for foreground-centred patches
MAX_FOREGROUND_INDICES = 20_000
PATCH_CAP_2D = 256
PATCH_CAP_3D = (32, 64, 64)
DEFAULT_CACHE_BYTES = 1 << 30


# ---------------------------------------------------------------------------------- selection

@dataclass
class CaseSelection:
    """Cases a run trains and validates on, and why the others were left out.

    Attributes:
        train: training case identifiers (after exclusion and filtering), sorted.
        val: validation case identifiers (after exclusion), sorted.
        left_out: ``{case_id: reason}`` for every dataset case not used.
        filter: what the AUV filter did (settings, thresholds, unscored cases), JSON-ready.
    """

    train: list[str]
    val: list[str]
    left_out: dict[str, str] = field(default_factory=dict)
    filter: dict = field(default_factory=dict)


def _hash_unit(case_id: str) -> float:
    digest = hashlib.sha256(case_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def split_cases(case_ids: list[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """Deterministic split by case: the ``ceil(val_fraction · n)`` cases with the smallest hash
    of their identifier validate (at least one, and at least one case is left to train).

    Returns:
        ``(train, val)``, each sorted.
    """
    ids = sorted(set(case_ids))
    if len(ids) < 2:
        return ids, []
    n_val = min(len(ids) - 1, max(1, math.ceil(val_fraction * len(ids))))
    ranked = sorted(ids, key=lambda c: (_hash_unit(c), c))
    val = sorted(ranked[:n_val])
    return sorted(set(ids) - set(val)), val


def review_statuses(ds: Dataset) -> dict[str, str]:
    """Recorded review statuses; ``{}`` when the dataset has no review store (none is created)."""
    from ..review.store import ReviewStore  # noqa: PLC0415

    if not review_store(ds.state_dir).is_file():
        return {}
    store = ReviewStore.for_dataset(ds.root)
    try:
        return store.statuses()
    finally:
        store.close()


def _filter(ds: Dataset, candidates: list[str], settings: TrainSettings, scores_csv: Path) -> tuple[list[str], dict, dict]:
    """Apply the AUV filter to ``candidates``; return (kept, left_out reasons, summary)."""
    if not scores_csv.is_file():
        raise DatasetError(scores_csv, f"AUV filtering (keep {settings.keep:g}) needs the scores of "
                           "`napari-aleatoric score DATASET` and they are missing; score the dataset "
                           "first, or train on every case with keep 1 (--keep 1)")
    try:
        table = read_scores(scores_csv)
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(scores_csv, f"cannot read the scores: {error}") from error
    rows = {row["case_id"]: row for row in table.rows}
    names = list(ds.foreground)
    summary: dict = {"keep": settings.keep, "classwise": settings.classwise, "scores": str(scores_csv)}
    if settings.classwise:
        missing = [f"auv_{n}" for n in names if f"auv_{n}" not in table.columns]
        if missing:
            raise DatasetError(scores_csv, f"class-wise filtering needs the columns {', '.join(missing)}; "
                               "re-score the dataset")
        values = np.array([[rows[c].get(f"auv_{n}", math.nan) if c in rows else math.nan for n in names]
                           for c in candidates], dtype=np.float64).reshape(len(candidates), len(names))
        mask = keep_mask_classwise(values, settings.keep)
        summary["thresholds"] = {n: _quantile(values[:, k], settings.keep) for k, n in enumerate(names)}
    else:
        if "auv" not in table.columns:
            raise DatasetError(scores_csv, "no 'auv' column; re-score the dataset")
        values = np.array([rows[c]["auv"] if c in rows else math.nan for c in candidates], dtype=np.float64)
        mask = keep_mask(values, settings.keep)
        summary["threshold"] = _quantile(values, settings.keep)
    summary["unscored"] = [c for c in candidates if c not in rows]
    kept = [c for c, m in zip(candidates, mask) if m]
    reasons = {}
    for c, m in zip(candidates, mask):
        if not m:
            reasons[c] = (f"AUV above the {settings.keep:g} quantile"
                          + (" of a class" if settings.classwise else f" ({rows[c]['auv']:.3f})"))
    summary["filtered_out"] = sorted(reasons)
    return kept, reasons, summary


def _quantile(values: np.ndarray, q: float) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if finite.size else None


def select_cases(ds: Dataset, settings: TrainSettings, scores_csv: str | Path | None = None) -> CaseSelection:
    """Split, exclude and filter the dataset's cases for a run.

    Args:
        ds: the opened dataset.
        settings: uses ``val_fraction``, ``keep`` and ``classwise``.
        scores_csv: the AUV table (default ``<dataset>/.aleatoric/scores.csv``); read only when
            filtering (``keep < 1``).

    Raises:
        DatasetError: filtering without a readable scores table, or no case left to train or to
            validate on.
    """
    ids = [ref.case_id for ref in ds.cases]
    train, val = split_cases(ids, settings.val_fraction)
    statuses = review_statuses(ds)
    left_out = {c: "excluded in review" for c in ids if statuses.get(c) == "excluded"}
    train = [c for c in train if c not in left_out]
    val = [c for c in val if c not in left_out]
    summary: dict = {"keep": settings.keep, "classwise": settings.classwise, "applied": False}
    if settings.filtering:
        path = Path(scores_csv) if scores_csv is not None else default_scores_csv(ds.state_dir)
        train, reasons, summary = _filter(ds, train, settings, path)
        summary["applied"] = True
        left_out.update(reasons)
    if not train:
        raise DatasetError(ds.root, f"no case left to train on ({len(ids)} cases, {len(left_out)} left out: "
                           "excluded in review or filtered by AUV)")
    if not val:
        raise DatasetError(ds.root, f"no case left to validate on ({len(ids)} cases; at least 2 usable cases "
                           "are needed, one of them for validation)")
    return CaseSelection(train=sorted(train), val=sorted(val), left_out=dict(sorted(left_out.items())),
                         filter=summary)


# ------------------------------------------------------------------------------------ loading

@dataclass
class PreparedCase:
    """One case ready for training.

    Attributes:
        case_id: the case.
        image: float32 ``(H, W)`` / ``(D, H, W)`` intensities in ``[0, 1]``.
        label: uint8 channel indices (0 background, ``k`` = k-th foreground class).
        foreground: flat indices of (up to :data:`MAX_FOREGROUND_INDICES`) foreground voxels.
        weight: float32 per-pixel loss weights in ``[0, 1]`` shaped like ``label``, or ``None``
            (weight 1 everywhere; see :mod:`napari_aleatoric.training.label_issues`).
        soft_target: ``(C, *label.shape)`` float32 foreground targets in ``[0, 1]`` replacing the
            one-hot label (label-issue relabelling), or ``None``.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    foreground: np.ndarray
    weight: np.ndarray | None = None
    soft_target: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        extra = sum(a.nbytes for a in (self.weight, self.soft_target) if a is not None)
        return self.image.nbytes + self.label.nbytes + self.foreground.nbytes + extra


def label_lookup(ds: Dataset) -> np.ndarray:
    """Lookup table label value → channel index (foreground classes in dataset order; others 0)."""
    values = list(ds.labels.values())
    lut = np.zeros(max(values) + 1, dtype=np.uint8)
    for channel, value in enumerate(ds.foreground.values(), start=1):
        lut[value] = channel
    return lut


def prepare_case(ds: Dataset, ref: CaseRef, lut: np.ndarray) -> PreparedCase:
    """Load, normalise and relabel one case (raises :class:`CaseError`)."""
    case = load_case(ds, ref)
    if case.label is None:
        raise CaseError(ref.image_paths[0], "has no label file")
    image = normalise_intensity(case.image, ds.modality)
    label = lut[np.clip(case.label, 0, len(lut) - 1)].astype(np.uint8)
    foreground = np.flatnonzero(label)
    if foreground.size > MAX_FOREGROUND_INDICES:
        foreground = foreground[np.linspace(0, foreground.size - 1, MAX_FOREGROUND_INDICES).astype(np.int64)]
    return PreparedCase(ref.case_id, image, label, foreground)


def snapshot_labels(ds: Dataset, case_ids: list[str], folder: Path) -> dict[str, Path]:
    """Copy the label files of ``case_ids`` into ``folder`` (``<case_id><ending>``), atomically.

    The files are copied into a temporary sibling folder that is renamed to ``folder`` when every
    copy is complete, so ``folder`` either holds the whole snapshot or does not exist. ``folder``
    must be inside the dataset folder (cases are only read from there) and must not exist yet.

    Returns:
        ``{case_id: path of its copied label file}``.

    Raises:
        CaseError: a label file cannot be read (names it); AleatoricError: ``folder`` exists or
        cannot be written.
    """
    folder = Path(folder)
    if folder.exists():
        raise AleatoricError(folder, "a label snapshot already exists here")
    refs = {ref.case_id: ref for ref in ds.cases}
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f".{folder.name}.{secrets.token_hex(6)}.partial")
    partial.mkdir()
    names = {}
    try:
        for case_id in case_ids:
            source = refs[case_id].label_path if case_id in refs else None
            if source is None:
                raise CaseError(ds.root, f"case {case_id!r} has no label file to snapshot")
            name = f"{case_id}{full_suffix(source)}"
            try:
                shutil.copyfile(source, partial / name)
            except OSError as error:
                raise CaseError(source, f"cannot copy the label file for the training snapshot: {error}") from error
            names[case_id] = name
        os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return {case_id: folder / name for case_id, name in names.items()}


def _prepare_named(ds: Dataset, ref: CaseRef, lut: np.ndarray, live_label: Path | None) -> PreparedCase:
    """:func:`prepare_case`; a problem found in a run's snapshot copy of a label names the dataset's
    label file (the one the user can fix), with the copy in parentheses."""
    try:
        return prepare_case(ds, ref, lut)
    except CaseError as error:
        if live_label is None or error.path is None or ref.label_path is None or error.path != ref.label_path \
                or ref.label_path == live_label:
            raise
        raise CaseError(live_label, f"{error.problem} (read from the run's snapshot copy {ref.label_path})") from error


class CaseLoader:
    """Prepared cases on demand, with an LRU bounded by ``budget_bytes`` (memory stays flat).

    ``label_paths`` replaces the label files of some cases (a run's snapshot, see
    :func:`snapshot_labels`); the images are always the dataset's. ``guidance(case_id, label)``
    gives a case's per-pixel loss weights, or ``(None, soft targets)``, or ``None``, e.g.
    :meth:`napari_aleatoric.training.label_issues.LabelIssuePlan.guidance`.
    """

    def __init__(self, ds: Dataset, budget_bytes: int = DEFAULT_CACHE_BYTES,
                 label_paths: dict[str, Path] | None = None,
                 guidance: Callable[[str, np.ndarray], object] | None = None):
        self.ds = ds
        self.guidance = guidance
        self.lut = label_lookup(ds)
        label_paths = label_paths or {}
        self.refs = {ref.case_id: (replace(ref, label_path=Path(label_paths[ref.case_id]))
                                   if ref.case_id in label_paths else ref) for ref in ds.cases}
        self._live = {ref.case_id: ref.label_path for ref in ds.cases}  # to name the dataset's file in errors
        self.budget = budget_bytes
        self._cache: OrderedDict[str, PreparedCase] = OrderedDict()
        self._bytes = 0

    def get(self, case_id: str) -> PreparedCase:
        """The prepared case (loaded now if not cached)."""
        if case_id in self._cache:
            self._cache.move_to_end(case_id)
            return self._cache[case_id]
        if case_id not in self.refs:
            raise CaseError(self.ds.root, f"case {case_id!r} is no longer in the dataset")
        case = _prepare_named(self.ds, self.refs[case_id], self.lut, self._live.get(case_id))
        if self.guidance is not None:
            guidance = self.guidance(case_id, case.label)
            if isinstance(guidance, tuple):  # (weights, soft targets)
                case.weight, case.soft_target = guidance
            else:
                case.weight = guidance
        self._cache[case_id] = case
        self._bytes += case.nbytes
        while self._bytes > self.budget and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._bytes -= old.nbytes
        return case


def _usable_label_shape(ds: Dataset, ref: CaseRef) -> tuple[int, ...]:
    """Shape of a case's label after reading it whole (corrupt files, undeclared values and
    slices thinner than 2 pixels are refused here, so one bad case is left out of a run instead of
    aborting it half-way). Raises :class:`CaseError` naming the label file."""
    label, _ = read_label(ref.label_path)
    check_declared_values(ref.label_path, label, ds.labels)
    if min(label.shape[-2:]) < 2:
        raise CaseError(ref.label_path,
                        f"slices of {label.shape[-2]}x{label.shape[-1]} pixels are too thin to train on")
    return tuple(label.shape)


def case_shapes(ds: Dataset, case_ids: list[str]) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Header shapes of the cases' label files, and ``{case_id: problem}`` for unusable cases."""
    refs = {ref.case_id: ref for ref in ds.cases}
    shapes, problems = {}, {}
    for case_id in case_ids:
        ref = refs.get(case_id)
        try:
            if ref is None:
                raise CaseError(ds.root, "not in the dataset")
            validate_case_files(ds, ref)
            shapes[case_id] = _usable_label_shape(ds, ref)
        except AleatoricError as error:
            problems[case_id] = f"cannot be used: {error}"
    return shapes, problems


def default_patch(shapes: list[tuple[int, ...]], divisor: int) -> tuple[int, ...]:
    """Patch size from the median case shape.

    2D: each axis rounded up to a multiple of ``max(16, divisor)`` (whole slices, zero-padded),
    at most 256. 3D: rounded down (at least one multiple), at most ``(32, 64, 64)``.
    """
    step = max(16, divisor)
    median = np.median(np.array(shapes), axis=0)
    if len(median) == 2:
        return tuple(int(min(PATCH_CAP_2D, step * math.ceil(m / step))) for m in median)
    return tuple(int(min(cap, max(step, step * math.floor(m / step)))) for m, cap in zip(median, PATCH_CAP_3D))


# ------------------------------------------------------------------------------------ patches

def _axis_window(size: int, patch: int, centre: int | None, rng: np.random.Generator, random: bool):
    """(source start, source stop, destination start) of one axis."""
    if size >= patch:
        if centre is not None:
            start = int(np.clip(centre - patch // 2, 0, size - patch))
        else:
            start = int(rng.integers(0, size - patch + 1)) if random else (size - patch) // 2
        return start, start + patch, 0
    offset = int(rng.integers(0, patch - size + 1)) if random else (patch - size) // 2
    return 0, size, offset


def sample_weighted_patch(case: PreparedCase, patch: tuple[int, ...], rng: np.random.Generator, *,
                          augment: bool = True, foreground_probability: float = FOREGROUND_PROBABILITY):
    """One ``patch``-sized ``(image, label)`` pair from a case and the patch of its loss weights.

    Returns:
        ``(image, label, weight)``: float32 image, uint8 label and float32 weights (1 outside the
        case) of shape ``patch``; ``weight`` is ``None`` when the case has no weights.
    """
    shape = case.image.shape
    if len(shape) != len(patch):
        raise CaseError(None, f"case {case.case_id!r} is {len(shape)}D but the patch is {len(patch)}D")
    centre = None
    if case.foreground.size and rng.random() < foreground_probability:
        centre = np.unravel_index(int(case.foreground[rng.integers(0, case.foreground.size)]), shape)
    windows = [_axis_window(s, p, None if centre is None else int(centre[k]), rng, augment)
               for k, (s, p) in enumerate(zip(shape, patch))]
    source = tuple(slice(a, b) for a, b, _ in windows)
    target = tuple(slice(o, o + (b - a)) for a, b, o in windows)
    image = np.zeros(patch, dtype=np.float32)
    label = np.zeros(patch, dtype=np.uint8)
    crop = case.image[source]
    if augment:
        crop = crop * np.float32(rng.uniform(0.9, 1.1)) + np.float32(rng.uniform(-0.1, 0.1))
    image[target] = crop
    label[target] = case.label[source]
    weight = None
    if case.weight is not None:
        weight = np.ones(patch, dtype=np.float32)
        weight[target] = case.weight[source]
    if case.soft_target is not None:
        soft = np.zeros((case.soft_target.shape[0],) + tuple(patch), dtype=np.float32)
        soft[(slice(None),) + target] = case.soft_target[(slice(None),) + source]
        return image, label, (weight, soft)
    return image, label, weight


def one_hot_foreground(labels: torch.Tensor, num_foreground: int) -> torch.Tensor:
    """``(B, ...)`` channel indices → ``(B, C, ...)`` float one-hot of the foreground channels."""
    channels = torch.arange(1, num_foreground + 1, device=labels.device).view(1, -1, *([1] * (labels.ndim - 1)))
    return (labels.unsqueeze(1) == channels).to(torch.float32)


def make_batch(cases: list[PreparedCase], patch: tuple[int, ...], rng: np.random.Generator, num_foreground: int,
               *, augment: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x (B, 1, *patch), y (B, C, *patch))`` for one step."""
    x, y, _ = make_weighted_batch(cases, patch, rng, num_foreground, augment=augment)
    return x, y


def make_weighted_batch(cases: list[PreparedCase], patch: tuple[int, ...], rng: np.random.Generator,
                        num_foreground: int, *, augment: bool = True
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`make_batch` plus ``w (B, 1, *patch)``, the pixels' loss weights (``None`` when no case
    of the batch has weights; a case without weights counts 1 everywhere)."""
    triples = [sample_weighted_patch(case, patch, rng, augment=augment) for case in cases]
    x = torch.from_numpy(np.stack([t[0] for t in triples]))[:, None]
    labels = torch.from_numpy(np.stack([t[1] for t in triples]).astype(np.int64))
    targets = one_hot_foreground(labels, num_foreground)
    softs = [t[2][1] if isinstance(t[2], tuple) else None for t in triples]
    masks = [t[2][0] if isinstance(t[2], tuple) else t[2] for t in triples]
    for b, soft in enumerate(softs):
        if soft is not None:
            targets[b] = torch.from_numpy(soft)
    weights = None
    if any(m is not None for m in masks):
        weights = torch.from_numpy(np.stack([m if m is not None else np.ones(patch, np.float32)
                                             for m in masks]))[:, None]
    return x, targets, weights


def epoch_batches(train: list[str], batch_size: int, seed: int, epoch: int) -> list[list[str]]:
    """The epoch's batches: a permutation of the training cases drawn from ``[seed, epoch]``."""
    order = np.random.default_rng([seed, epoch]).permutation(len(train))
    ids = [train[i] for i in order]
    return [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]


def step_rng(seed: int, epoch: int, step: int) -> np.random.Generator:
    """The random generator of one step (patch placement, augmentation)."""
    return np.random.default_rng([seed, epoch, step, 1])


def noise_seed(seed: int, epoch: int, step: int) -> int:
    """Seed of the step's torch generator (the DUO ε sample), independent of :func:`step_rng`."""
    return int(np.random.default_rng([seed, epoch, step, 2]).integers(1 << 62))
