"""Label-issue-guided training: what the review queue's signal does to a training run.

Before a run trains, the label-quality model of the review queue is learned again, out of fold, on
the run's **training cases only** (their snapshot labels; validation labels are never read), from
the foundation model's cached slice embeddings. Its out-of-fold class probabilities ``q`` give:

- **case filtering** (``issue_keep < 1``): training cases whose contradicted share (the share of
  their drawn annotation whose annotated class the model gives less than 0.5, the queue's
  ``contradicted`` column) is above the ``issue_keep`` quantile of the training cases are left out;
- **per-pixel guidance** (``label_issues``), from the trust ``w`` of each pixel's annotation,
  ``w = clip((q_y − TRUST_FLOOR) / (TRUST_THRESHOLD − TRUST_FLOOR), 0, 1)`` where ``q_y`` is the
  out-of-fold probability of the annotated class (1 where the model agrees, 0 where it
  contradicts the annotation); only drawn pixels are doubted, annotated background keeps ``w = 1``:

  - ``"weight"``: the pixel's loss is multiplied by ``w``; a contradicted pixel stops teaching;
  - ``"relabel"``: where the label-quality model is at least ``c`` sure of one class (``c`` chosen
    from the training cases, :func:`choose_relabel_confidence`), the pixel's target becomes
    ``w·onehot(y) + (1 − w)·q``: a contradicted pixel teaches what the model learned from the rest
    of the dataset; where it is less sure, the pixel is down-weighted as in ``"weight"``.

Cases a reviewer **accepted or corrected** (review store) are never filtered and keep weight 1
everywhere: a human has vouched for them.

The pass is cached in ``<cache>/quality-training/`` (``<dataset>/.aleatoric/cache`` unless
``--cache`` says otherwise; the queue's own maps in ``quality/`` are untouched), keyed by every training case's image and label, so runs on the
same labels (other seeds, networks, strategies, a resume) reuse it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from ..data.arraycache import ArrayCache
from ..data.dataset import Dataset, load_case
from ..data.errors import AleatoricError, CaseError, DatasetError
from ..data.scores_file import read_summary
from ..data.state_layout import scores_json, training_quality_cache
from ..labelquality.assess import (MIN_CASES, LabelQualityFinished, LabelQualityProgress, assess_label_quality,
                                  quality_key)
from ..labelquality.scores import label_index
from ..models.base import resolve_device
from ..models.lazy import LazyModel
from ..models.registry import DEFAULT_MODEL
from .settings import TrainSettings

#: A pixel keeps full weight while the label-quality model gives its annotated class at least
#: ``TRUST_THRESHOLD``, weighs 0 at or below ``TRUST_FLOOR``, and linearly in between (chosen on the
#: tuning data, docs/training.md).
TRUST_THRESHOLD = 0.5
TRUST_FLOOR = 0.45
#: ``"relabel"`` moves a contradicted pixel's target towards ``q`` only where the label-quality
#: model is at least ``c`` sure of one class (``max_k q_k ≥ c``); a contradicted pixel it is less
#: sure about is down-weighted as in ``"weight"``. ``c`` is chosen per run from the training cases
#: (:func:`choose_relabel_confidence`): the lowest of ``RELABEL_CONFIDENCES`` whose relabels are
#: estimated to be right at least ``RELABEL_PRECISION`` of the time, else the highest (chosen on
#: the tuning data, docs/training.md). ``RELABEL_CONFIDENCE`` set to a number fixes ``c`` (tuning
#: runs and tests); ``None`` lets the data choose.
RELABEL_CONFIDENCES = (0.6, 0.7, 0.8)
RELABEL_PRECISION = 0.8
RELABEL_CONFIDENCE: float | None = None
#: The share of training cases, least contradicted first, whose confident contradictions estimate
#: how often the label-quality model contradicts a correct annotation.
REFERENCE_SHARE = 0.25
#: What ``label_issues="auto"`` does on a scored dataset: on the tuning data, the mode whose worse
#: dataset (2D MRI, 3D CT) recovered the largest share of the noisy-label gap (docs/training.md).
AUTO_MODE = "relabel"
#: Review statuses whose cases count at full weight and are never filtered.
VOUCHED = frozenset({"accepted", "corrected"})


@dataclass
class PreparingLabelIssues:
    """Progress of the label-issue pass before a run trains (``stage`` as in the queue's pass:
    ``"sampling"``, ``"fitting"``, ``"predicting"``, then ``"weighing"``); ``index`` counts from 1."""

    stage: str
    index: int
    total: int
    case_id: str = ""


@dataclass
class CaseIssues:
    """What the strategy does to one training case.

    Attributes:
        contradicted: share of the case's drawn (foreground) annotation whose annotated class the
            label-quality model, learned out of fold on the training cases, gives less than 0.5
            (NaN: nothing drawn). The filter's criterion (the queue's ``contradicted`` column).
        reviewed: accepted or corrected in review (full weight, never filtered).
        left_out: dropped by label-issue filtering.
        down_weighted: fraction of the case's pixels with a loss weight below 1 (NaN: not computed).
        weight_lost: mean of ``1 − w`` over the case's pixels (NaN: not computed).
    """

    contradicted: float
    reviewed: bool = False
    left_out: bool = False
    down_weighted: float = math.nan
    weight_lost: float = math.nan


@dataclass
class LabelIssuePlan:
    """The label-issue side of a run: per-case scores, filtering and the pixel weights.

    Attributes:
        mode: ``"weight"`` or ``"relabel"`` (per-pixel guidance), ``""`` for none.
        keep: the contradicted-share quantile of the filter (when ``filtering``).
        filtering: whether label-issue filtering was applied.
        cases: ``{case_id: CaseIssues}`` of the training cases the pass covered.
        threshold: label-issue score above which a case was left out (``None``: no filtering).
        note: why label issues are not used (``""`` when they are).
        relabel_confidence: ``"relabel"`` moves a contradicted pixel's target only where
            ``max_k q_k`` reaches it (:func:`choose_relabel_confidence`).
        relabel_precision: the estimated share of those relabels that are right (NaN: fixed
            confidence or not estimated).
        cache_dir, model_name, label_paths, case_keys: where and how the issue maps are
            read (``case_keys``: each case's validity key, so reading its maps reads no case file).
    """

    mode: str = ""
    filtering: bool = False
    keep: float = 1.0
    cases: dict[str, CaseIssues] = field(default_factory=dict)
    threshold: float | None = None
    note: str = ""
    relabel_confidence: float = RELABEL_CONFIDENCES[-1]
    relabel_precision: float = math.nan
    cache_dir: Path | None = None
    model_name: str = ""
    label_paths: dict[str, Path] = field(default_factory=dict)
    case_keys: dict[str, str] = field(default_factory=dict)
    dataset: Dataset | None = None

    @property
    def weighting(self) -> bool:
        """Whether pixels are guided (weighted or relabelled)."""
        return bool(self.mode)

    @property
    def left_out(self) -> list[str]:
        """Cases dropped by label-issue filtering, sorted."""
        return sorted(c for c, info in self.cases.items() if info.left_out)

    def guidance(self, case_id: str, label_index: np.ndarray) -> np.ndarray | None:
        """The per-pixel guidance of a case: loss weights shaped like its label (``"weight"``), or
        ``(loss weights or None, soft targets (C, *label.shape))`` (``"relabel"``: soft targets where
        the model is sure, lower weights on the other contradicted pixels), or ``None`` (plain
        one-hot, weight 1).

        Args:
            case_id: a training case.
            label_index: ``(H, W)`` or ``(D, H, W)`` class index of its annotation (0 background,
                ``i + 1`` = i-th foreground class), as training reads it.

        Returns:
            float32 weights in ``[0, 1]`` / soft targets, or ``None`` when guidance is off, the case
            was reviewed, or it was not covered by the pass.

        Raises:
            AleatoricError: the case's issue maps are missing or do not match its labels.
        """
        info = self.cases.get(case_id)
        if not self.weighting or info is None or info.reviewed:
            return None
        maps = self._issue_maps(case_id)
        index = label_index if label_index.ndim == 3 else label_index[None]
        if maps.shape[1:] != index.shape:
            raise AleatoricError(self.cache_dir, f"label-issue maps of {case_id!r} have shape {maps.shape[1:]}, "
                                 f"its label {index.shape}; delete the folder to recompute them")
        weights = drawn_only(loss_weights(annotation_trust(maps, index)), index)
        if self.mode == "weight":
            return weights.reshape(label_index.shape)
        all_probabilities = class_probabilities(maps, index)  # (K, D, H, W), background first
        onehot = (index[None] == np.arange(1, maps.shape[0] + 1).reshape(-1, 1, 1, 1)).astype(np.float32)
        soft = weights[None] * onehot + (1.0 - weights[None]) * all_probabilities[1:]
        if self.relabel_confidence <= 0:
            return None, soft.reshape((maps.shape[0],) + label_index.shape)
        confident = all_probabilities.max(axis=0) >= self.relabel_confidence
        soft = np.where(confident[None], soft, onehot)
        pixel_weights = np.where(confident, np.float32(1.0), weights).astype(np.float32)
        return pixel_weights.reshape(label_index.shape), soft.reshape((maps.shape[0],) + label_index.shape)

    def case_weights(self, case_id: str) -> np.ndarray | None:
        """The trust weights ``w`` of a case read from its label file (for display and the summary),
        shaped like the label; ``None`` when the case keeps full weight."""
        if not self.weighting or case_id not in self.cases or self.cases[case_id].reviewed:
            return None
        index, trust, shape = self._trust(case_id)
        return drawn_only(loss_weights(trust), index).reshape(shape)

    def _trust(self, case_id: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        """``(index (D, H, W), q_y (D, H, W), the label's own shape)`` of a case, from its label file."""
        index, shape = self._index(case_id)
        return index, annotation_trust(self._issue_maps(case_id), index), shape

    def _index(self, case_id: str) -> tuple[np.ndarray, tuple[int, ...]]:
        """``(class index (D, H, W), the label's own shape)`` of a case, from its label file."""
        _, label = read_case(self.dataset, case_id, self.label_paths)
        return label_index(label if label.ndim == 3 else label[None], list(self.dataset.foreground.values())), label.shape

    def _issue_maps(self, case_id: str) -> np.ndarray:
        entry = ArrayCache(self.cache_dir).load(case_id, self.case_keys[case_id])
        if entry is None:
            raise AleatoricError(self.cache_dir, f"the label-issue maps of {case_id!r} are missing or stale; "
                                 "start the run again to recompute them")
        return entry[0]["issue_maps"]

    def summary(self) -> dict:
        """JSON-ready record of the plan (written to the run's ``cases.json``)."""
        def number(value: float) -> float | None:
            return None if value is None or not math.isfinite(value) else round(float(value), 6)

        return {"mode": self.mode, "weighting": self.weighting, "filtering": self.filtering, "keep": self.keep,
                "threshold": number(self.threshold),
                "trust_threshold": TRUST_THRESHOLD, "trust_floor": TRUST_FLOOR,
                "relabel_confidence": self.relabel_confidence,
                "relabel_precision_estimated": number(self.relabel_precision),
                "note": self.note, "model": self.model_name,
                "left_out": self.left_out,
                "reviewed": sorted(c for c, info in self.cases.items() if info.reviewed),
                "cases": {c: {"contradicted": number(info.contradicted),
                              "reviewed": info.reviewed,
                              "left_out": info.left_out, "down_weighted": number(info.down_weighted),
                              "weight_lost": number(info.weight_lost)} for c, info in sorted(self.cases.items())}}


# ------------------------------------------------------------------------------ the weights

def annotation_trust(issue_maps: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Out-of-fold probability ``q_y`` of the annotated class at every pixel, from the issue maps.

    The issue map of class ``c`` is ``|1[y = c] − q_c|`` (:func:`~napari_aleatoric.labelquality.scores.issue_maps`),
    so ``q_y = 1 − issue_y`` on a foreground pixel and ``q_0 = 1 − Σ_c q_c = 1 − Σ_c issue_c`` on
    a background pixel.

    Args:
        issue_maps: ``(C, D, H, W)`` per-class issue maps (any float dtype).
        index: ``(D, H, W)`` class index of the annotation.

    Returns:
        ``(D, H, W)`` float32 in ``[0, 1]``.
    """
    maps = issue_maps.astype(np.float32, copy=False)
    foreground = index > 0
    chosen = np.take_along_axis(maps, np.clip(index - 1, 0, maps.shape[0] - 1)[None].astype(np.int64), axis=0)[0]
    trust = np.where(foreground, 1.0 - chosen, 1.0 - maps.sum(axis=0))
    return np.clip(trust, 0.0, 1.0).astype(np.float32)


def class_probabilities(issue_maps: np.ndarray, index: np.ndarray) -> np.ndarray:
    """All out-of-fold class probabilities ``(K, D, H, W)`` from the issue maps and the annotation
    (``q_c = issue_c`` for a class not annotated, ``1 − issue_c`` for the annotated one, background
    the rest)."""
    maps = issue_maps.astype(np.float32, copy=False)
    onehot = index[None] == np.arange(1, maps.shape[0] + 1).reshape(-1, *([1] * index.ndim))
    foreground = np.where(onehot, 1.0 - maps, maps)
    background = np.clip(1.0 - foreground.sum(axis=0, keepdims=True), 0.0, 1.0)
    return np.concatenate([background, foreground]).astype(np.float32)


def drawn_only(weights: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Keep the trust ``w`` where a foreground class is drawn, 1 on annotated background.

    The guidance doubts what an annotator *drew*, never the background: when most cases share a
    systematic error (organs outlined too generously), the label-quality model learns it, and on
    the clean cases it contradicts the background around every organ; relabelling that background
    taught the network the error (3D CT, docs/training.md). Drawn pixels are where the
    contradictions single out the corrupted cases.

    Args:
        weights: ``(D, H, W)`` trust weights.
        index: ``(D, H, W)`` class index of the annotation.
    """
    return np.where(index > 0, weights, np.float32(1.0)).astype(np.float32)


def loss_weights(trust: np.ndarray, threshold: float | None = None, floor: float | None = None) -> np.ndarray:
    """Pixel loss weights ``clip((q_y − floor) / (threshold − floor), 0, 1)``: 1 where the annotation
    is trusted, 0 where the label-quality model contradicts it.

    Args:
        trust: ``q_y`` per pixel (any shape), in ``[0, 1]``.
        threshold, floor: default :data:`TRUST_THRESHOLD` and :data:`TRUST_FLOOR`.

    Returns:
        float32 weights of the same shape, in ``[0, 1]``.
    """
    threshold = TRUST_THRESHOLD if threshold is None else threshold
    floor = TRUST_FLOOR if floor is None else floor
    span = max(threshold - floor, 1e-6)
    return np.clip((np.asarray(trust, np.float32) - np.float32(floor)) / np.float32(span), 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------- the pass

def read_case(ds: Dataset, case_id: str, label_paths: dict[str, Path] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A case's image and label as loaded (2D stays 2D), reading ``label_paths[case_id]`` when given."""
    ref = ds.case(case_id)
    if label_paths and case_id in label_paths:
        ref = replace(ref, label_path=Path(label_paths[case_id]))
    case = load_case(ds, ref)
    if case.label is None:
        raise CaseError(ref.image_paths[0], "case has no annotation")
    return case.image, case.label


def preview_label_issues(dataset: str | Path | Dataset, settings: TrainSettings, *, scores_csv=None, device=None
                         ) -> Iterator[PreparingLabelIssues | LabelIssuePlan]:
    """What a run with ``settings`` would do with the label issues, before it starts (the
    retraining panel's preview): the same case selection and pass as :func:`~napari_aleatoric.training.train`,
    on the current labels. The pass is cached, so a run started next on the same labels reuses it.

    Yields:
        as :func:`plan_label_issues`.

    Raises:
        ValueError: invalid settings; AleatoricError: as :func:`~napari_aleatoric.training.train` before its first event.
    """
    from ..data.dataset import open_dataset  # noqa: PLC0415
    from .data import review_statuses, select_cases  # noqa: PLC0415

    settings = settings.validated()
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    selection = select_cases(ds, settings, scores_csv)
    yield from plan_label_issues(ds, selection.train, settings, statuses=review_statuses(ds), device=device)


def scoring_record(ds: Dataset) -> dict | None:
    """The settings of the dataset's scoring run (``scores.json``), or ``None`` if it was never scored."""
    path = scores_json(ds.state_dir)
    if not path.is_file():
        return None
    try:
        return dict(read_summary(path)["settings"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(path, f"cannot read the scoring summary ({error}); score the dataset again") from error


def label_issue_problem(ds: Dataset, settings: TrainSettings, n_train: int) -> str | None:
    """Why a run cannot use label issues (``None`` if it can or does not want them).

    Raises:
        DatasetError: the settings require label issues (explicit weighting or filtering) and
            they cannot be had; the message names the command to run first.
    """
    if not settings.uses_label_issues:
        return None
    problem = None
    if scoring_record(ds) is None:
        problem = (f"the dataset has not been scored (no {scores_json(ds.state_dir)}); "
                   f"run `napari-aleatoric score {ds.root}` first")
    elif n_train < MIN_CASES:
        problem = f"label issues need at least {MIN_CASES} training cases, the run has {n_train}"
    if problem is not None and settings.needs_label_issues:
        raise DatasetError(ds.root, f"label-issue {'filtering' if settings.issue_filtering else 'weighting'} "
                           f"is not possible: {problem}, or train with --strategy plain")
    return problem


def plan_label_issues(
    ds: Dataset,
    train_ids: list[str],
    settings: TrainSettings,
    *,
    label_paths: dict[str, Path] | None = None,
    statuses: dict[str, str] | None = None,
    device=None,
    apply_filter: bool = True,
) -> Iterator[PreparingLabelIssues | LabelIssuePlan]:
    """Learn label quality on ``train_ids`` out of fold and decide the run's filtering and weights.

    Args:
        ds: the dataset (scored, so the slice embeddings are cached).
        train_ids: the run's candidate training cases (never validation cases).
        settings: ``issue_keep`` and ``label_issues`` are used.
        label_paths: the labels to learn from (the run's snapshot); default the dataset's files.
        statuses: review statuses (accepted / corrected cases keep full weight and are never filtered).
        device: where the foundation model runs if a slice embedding is missing.
        apply_filter: apply ``issue_keep`` (off on resume: the stored case list is used).

    Yields:
        :class:`PreparingLabelIssues` events, then the :class:`LabelIssuePlan`. A plan with
        ``note`` set and no weighting when label issues are unavailable under ``"auto"``.

    Raises:
        DatasetError: required label issues cannot be had (see :func:`label_issue_problem`).
    """
    statuses = statuses or {}
    problem = label_issue_problem(ds, settings, len(train_ids))
    if not settings.uses_label_issues:
        yield LabelIssuePlan()
        return
    if problem is not None:
        yield LabelIssuePlan(note=f"trained without label-issue weights: {problem} (scoring first lets training "
                                  "down-weight the pixels whose annotation the label-quality model contradicts)")
        return
    record = scoring_record(ds)
    lazy = LazyModel(record.get("model_spec", DEFAULT_MODEL), resolve_device(device))
    cache_dir = training_quality_cache(ds.cache_dir)
    label_paths = {c: Path(p) for c, p in (label_paths or {}).items() if c in set(train_ids)}
    case_keys = {c: quality_key(lazy.identity(), *read_case(ds, c, label_paths)) for c in train_ids}
    result = None
    try:
        for event in assess_label_quality(ds, list(train_ids), lazy.identity(), lazy.get,
                                          case_keys=case_keys, label_paths=label_paths, cache_dir=cache_dir):
            if isinstance(event, LabelQualityProgress):
                yield PreparingLabelIssues(event.stage, event.index, event.total, event.case_id)
            elif isinstance(event, LabelQualityFinished):
                result = event.result
    except ValueError as error:  # e.g. a single class in every training case: nothing to learn from
        if settings.needs_label_issues:
            raise DatasetError(ds.root, f"label issues cannot be learned: {error}") from error
        yield LabelIssuePlan(note=f"trained without label-issue weights: {error}")
        return
    mode = {"auto": AUTO_MODE, "off": ""}.get(settings.label_issues, settings.label_issues)
    plan = LabelIssuePlan(mode=mode, filtering=settings.issue_filtering and apply_filter, keep=settings.issue_keep,
                          cache_dir=cache_dir, model_name=lazy.identity(),
                          label_paths=label_paths, case_keys=case_keys, dataset=ds)
    for case_id in train_ids:
        plan.cases[case_id] = CaseIssues(float(result.contradicted[case_id]), reviewed=statuses.get(case_id) in VOUCHED)
    counts = {}
    for i, case_id in enumerate(train_ids, 1):  # per case: what the guidance changes
        info = plan.cases[case_id]
        index, _ = plan._index(case_id)
        maps = plan._issue_maps(case_id)  # read once: the weights and the relabel counts both need it
        weights = drawn_only(loss_weights(annotation_trust(maps, index)), index)
        info.down_weighted = 0.0 if info.reviewed or not plan.mode else float((weights < 1.0).mean())
        info.weight_lost = 0.0 if info.reviewed or not plan.mode else float((1.0 - weights).mean())
        counts[case_id] = confident_contradictions(class_probabilities(maps, index), index)
        yield PreparingLabelIssues("weighing", i, len(train_ids), case_id)
    if RELABEL_CONFIDENCE is None:
        plan.relabel_confidence, plan.relabel_precision = choose_relabel_confidence(counts)
    else:
        plan.relabel_confidence = float(RELABEL_CONFIDENCE)
    if plan.filtering:
        candidates = np.array([info.contradicted for info in plan.cases.values() if not info.reviewed])
        candidates = candidates[np.isfinite(candidates)]
        if candidates.size:
            plan.threshold = float(np.quantile(candidates, plan.keep))
            for info in plan.cases.values():
                info.left_out = (not info.reviewed and math.isfinite(info.contradicted)
                                 and info.contradicted > plan.threshold)
    yield plan


def confident_contradictions(probabilities: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Pixel counts of one case for choosing the relabel confidence.

    Args:
        probabilities: ``(K, D, H, W)`` out-of-fold class probabilities, background first.
        index: ``(D, H, W)`` class index of the annotation.

    Returns:
        int64 ``(2 + len(RELABEL_CONFIDENCES),)``: drawn pixels, contradicted drawn pixels
        (``q_y < 0.5``), then contradicted drawn pixels with ``max_k q_k ≥ c`` for each candidate
        ``c`` of :data:`RELABEL_CONFIDENCES`.
    """
    drawn = index > 0
    contradicted = drawn & (np.take_along_axis(probabilities, index[None].astype(np.int64), axis=0)[0] < 0.5)
    sure = probabilities.max(axis=0)[contradicted]
    return np.array([drawn.sum(), contradicted.sum()] + [(sure >= c).sum() for c in RELABEL_CONFIDENCES], np.int64)


def relabel_precisions(counts: dict[str, np.ndarray]) -> list[float]:
    """Estimated share of right relabels at each candidate of :data:`RELABEL_CONFIDENCES`.

    A confident contradiction is either an annotation error found or a correct annotation the
    model doubts. The rate of the second kind is estimated on the :data:`REFERENCE_SHARE` of cases
    whose drawing is contradicted least (mostly clean ones), so the share of relabels that are
    right at confidence ``c`` is ``1 − rate_reference(c) / rate_all(c)`` (rates per drawn pixel).

    Args:
        counts: ``{case_id: confident_contradictions(...)}`` of the training cases.

    Returns:
        one estimate per candidate; NaN where it cannot be estimated (fewer than 4 cases with a
        drawing, or no confident contradiction at all).
    """
    rows = np.array([c for c in counts.values() if c[0] > 0], np.float64).reshape(-1, 2 + len(RELABEL_CONFIDENCES))
    if len(rows) < 4:
        return [math.nan] * len(RELABEL_CONFIDENCES)
    order = np.argsort(rows[:, 1] / rows[:, 0], kind="stable")
    reference = rows[order[:max(1, int(round(REFERENCE_SHARE * len(rows))))]]
    estimates = []
    for j in range(len(RELABEL_CONFIDENCES)):
        rate_all = rows[:, 2 + j].sum() / rows[:, 0].sum()
        rate_reference = reference[:, 2 + j].sum() / reference[:, 0].sum()
        estimates.append(float(1.0 - rate_reference / rate_all) if rate_all > 0 else math.nan)
    return estimates


def choose_relabel_confidence(counts: dict[str, np.ndarray]) -> tuple[float, float]:
    """The relabel confidence of a run: the lowest candidate of :data:`RELABEL_CONFIDENCES` whose
    estimated precision (:func:`relabel_precisions`) reaches :data:`RELABEL_PRECISION`, else the
    highest.

    Returns:
        ``(confidence, estimated precision at it)`` (NaN: not estimable).
    """
    estimates = relabel_precisions(counts)
    for confidence, precision in zip(RELABEL_CONFIDENCES, estimates):
        if math.isfinite(precision) and precision >= RELABEL_PRECISION:
            return float(confidence), precision
    return float(RELABEL_CONFIDENCES[-1]), estimates[-1]


def describe(plan: LabelIssuePlan, total_train: int | None = None) -> str:
    """One line for a person: what the strategy does to the training cases."""
    if plan.note:
        return plan.note
    if not plan.weighting and not plan.filtering:
        return "label issues not used"
    parts = []
    if plan.filtering:
        parts.append(f"leaves out {len(plan.left_out)} of {total_train or len(plan.cases)} training cases "
                     f"(contradicted share of the annotation above {100 * plan.threshold:.1f} %, "
                     f"the {plan.keep:g} quantile)")
    if plan.weighting:
        used = [info for info in plan.cases.values() if not info.left_out and math.isfinite(info.down_weighted)]
        touched = [info for info in used if info.down_weighted > 0]
        area = float(np.mean([info.down_weighted for info in used])) if used else 0.0
        verb = (f"relabels (softly, where the label-quality model is ≥ {100 * plan.relabel_confidence:.0f} % sure"
                + (f", about {100 * plan.relabel_precision:.0f} % of such relabels estimated right"
                   if math.isfinite(plan.relabel_precision) else "")
                + ") or down-weights" if plan.mode == "relabel" else "down-weights")
        parts.append(f"{verb} {100 * area:.1f} % of the pixels, in {len(touched)} of {len(used)} cases")
    reviewed = sum(info.reviewed for info in plan.cases.values())
    if reviewed:
        parts.append(f"{reviewed} reviewed case{'s' if reviewed != 1 else ''} at full weight")
    return "label issues: " + "; ".join(parts)
