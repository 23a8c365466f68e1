"""The case scores and pixel heatmaps the benchmark compares. Adding one is one function.

A **case method** gets a :class:`Context` (one replicate of one dataset: its case ids in order, the
scoring pipeline's CSV rows, the cached foundation-model maps, images and labels) and returns one
float per case, **higher = more likely mislabelled**::

    @method("my_score", label="My score", group="label-aware", needs=("raw",))
    def my_score(ctx: Context) -> np.ndarray:
        return np.array([... for case_id in ctx.case_ids])

``needs`` names the scoring runs it reads (``"raw"`` and/or ``"masknorm"`` input): a method that
needs ``"masknorm"`` is evaluated only on the replicates that were scored with it. A method may fit
anything on the replicate's images and labels (e.g. a cross-validated learned scorer), but never
on :attr:`Context.truth` — that is only for the metrics.

A **heatmap** gets the context and one case id and returns a ``(C, D, H, W)`` map per foreground
class (higher = more likely wrong there); it is scored by pixel AUROC against the injected error
mask of that class on the corrupted cases::

    @heatmap("my_map", label="My map")
    def my_map(ctx: Context, case_id: str) -> np.ndarray: ...
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.stats import rankdata

from napari_aleatoric.data.dataset import Dataset, load_case

PROBABILITY_CLIP = 1e-4


@dataclass
class MethodInfo:
    name: str
    fn: Callable
    label: str
    group: str
    needs: tuple[str, ...]
    description: str


METHODS: dict[str, MethodInfo] = {}
HEATMAPS: dict[str, MethodInfo] = {}


def method(name: str, *, label: str, group: str, needs: tuple[str, ...] = ("raw",), description: str = ""):
    """Register a case-level score (see the module docstring)."""
    def register(fn):
        METHODS[name] = MethodInfo(name, fn, label, group, tuple(needs), description or (fn.__doc__ or "").strip())
        return fn
    return register


def heatmap(name: str, *, label: str, needs: tuple[str, ...] = ("raw",), description: str = ""):
    """Register a per-pixel map (see the module docstring)."""
    def register(fn):
        HEATMAPS[name] = MethodInfo(name, fn, label, "heatmap", tuple(needs), description or (fn.__doc__ or "").strip())
        return fn
    return register


@dataclass
class Context:
    """One replicate of one benchmark dataset, as the methods see it.

    Attributes:
        name: benchmark dataset name (``mni``, ``nuclei``, ``ct``).
        case_ids: the replicate's cases, in order (corrupted variants carry ``__r<k>``).
        class_names, class_values: foreground classes in dataset order.
        rows: run name (``raw_sigma2``, ``raw_sigma``, ``masknorm_sigma2``, ``masknorm_sigma``) →
            case id → the pipeline's CSV row (``auv``, ``fm_disagreement``, ``dice_fm_<c>``...).
        datasets: input mode → opened scoring :class:`Dataset` (its ``.aleatoric`` holds the maps).
        truth: corrupted flags — for the metrics only, never for a method.
        model: the foundation model the replicate was scored with (for methods that need its encoder).
    """

    name: str
    case_ids: list[str]
    class_names: list[str]
    class_values: list[int]
    rows: dict[str, dict[str, dict]]
    datasets: dict[str, Dataset]
    truth: np.ndarray | None = None
    seed: int = 0
    model: object | None = None
    _memo: dict = field(default_factory=dict, repr=False)

    def column(self, run: str, column: str) -> np.ndarray:
        """One CSV column of a scoring run for the replicate's cases (NaN where missing)."""
        table = self.rows[run]
        return np.array([table.get(c, {}).get(column, math.nan) for c in self.case_ids], dtype=np.float64)

    def maps(self, case_id: str, mode: str = "raw") -> dict[str, np.ndarray]:
        """Cached maps of a case: ``probabilities``, ``heatmaps`` ``(C, D, H, W)`` float32, ``prompted``."""
        key = ("maps", case_id, mode)
        if key not in self._memo:
            path = self.datasets[mode].state_dir / "cache" / "maps" / f"{case_id}.npz"
            with np.load(path, allow_pickle=False) as npz:
                self._memo[key] = {k: (npz[k].astype(np.float32) if npz[k].dtype == np.float16 else npz[k])
                                   for k in npz.files if not k.startswith("__")}
        return self._memo[key]

    def case(self, case_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(image, label)`` of a case as ``(D, H, W)`` arrays (``D = 1`` for 2D)."""
        key = ("case", case_id)
        if key not in self._memo:
            ds = self.datasets["raw"]
            loaded = load_case(ds, ds.case(case_id))
            image, label = loaded.image, loaded.label
            if image.ndim == 2:
                image, label = image[None], label[None]
            self._memo[key] = (image, label)
        return self._memo[key]

    def label(self, case_id: str) -> np.ndarray:
        return self.case(case_id)[1]

    def onehot(self, case_id: str) -> np.ndarray:
        """``(C, D, H, W)`` bool annotation per foreground class."""
        label = self.label(case_id)
        return np.stack([label == v for v in self.class_values])


# ------------------------------------------------------------------------------ helpers

def ranks01(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to (0, 1]; NaN ranks lowest."""
    v = np.asarray(values, np.float64)
    v = np.where(np.isfinite(v), v, -np.inf)
    return rankdata(v) / len(v)


def robust_z(values: np.ndarray) -> np.ndarray:
    """(x − median) / (1.4826·MAD) over the finite values; NaN stays NaN."""
    v = np.asarray(values, np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return v
    med = np.median(finite)
    mad = 1.4826 * np.median(np.abs(finite - med))
    return (v - med) / (mad + 1e-6)


def kclass_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """K = C + 1 class probabilities from C per-class sigmoid maps.

    Each class map is an independent sigmoid (one box-prompted decoder call per class), so a pixel
    can be claimed by several classes or by none. Conditioning the independent sigmoids on "at most
    one class" gives ``q_0 ∝ 1`` and ``q_c ∝ p_c / (1 − p_c)`` (the odds), i.e. a softmax over the
    logits with a background logit of 0. A class not prompted in a slice has ``p = 0`` there.
    """
    p = np.clip(probabilities.astype(np.float64), PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    odds = p / (1.0 - p)
    total = 1.0 + odds.sum(axis=0, keepdims=True)
    return np.concatenate([1.0 / total, odds / total], axis=0)


# ------------------------------------------------------------------------------ case methods

@method("random", label="random order", group="baseline", description="uniform random scores (expected value over draws)")
def random_scores(ctx: Context) -> np.ndarray:
    return np.random.default_rng(ctx.seed).random(len(ctx.case_ids))


def _auv(run: str):
    def score(ctx: Context) -> np.ndarray:
        return ctx.column(run, "auv")
    return score


for _mode, _energy, _label in (("raw", "sigma2", "paper AUV, σ², raw input"), ("raw", "sigma", "paper AUV, σ, raw input"),
                               ("masknorm", "sigma2", "paper AUV, σ², mask-normalised input"),
                               ("masknorm", "sigma", "paper AUV, σ, mask-normalised input")):
    method(f"auv_{_energy}_{_mode}", label=_label, group="paper", needs=(_mode,),
           description=f"the pipeline's `auv` column, energy={_energy}, input={_mode}")(_auv(f"{_mode}_{_energy}"))


@method("auv_class_max", label="paper AUV, worst class (σ², raw)", group="paper")
def auv_class_max(ctx: Context) -> np.ndarray:
    """max over classes of the per-class AUV (`auv_<c>`), σ², raw input."""
    cols = np.stack([ctx.column("raw_sigma2", f"auv_{n}") for n in ctx.class_names])
    return np.where(np.isfinite(cols).any(axis=0), np.nanmax(np.where(np.isfinite(cols), cols, -np.inf), axis=0), np.nan)


@method("fm_disagreement", label="1 − Dice(FM, annotation), worst class", group="label-aware")
def fm_disagreement(ctx: Context) -> np.ndarray:
    """the pipeline's `fm_disagreement` (raw input): 1 − min over classes of Dice(p > 0.5, annotation)."""
    return ctx.column("raw_sigma2", "fm_disagreement")


@method("fm_disagreement_masknorm", label="1 − Dice(FM, annotation), mask-normalised input", group="label-aware",
        needs=("masknorm",))
def fm_disagreement_masknorm(ctx: Context) -> np.ndarray:
    """`fm_disagreement` of the mask-normalised run."""
    return ctx.column("masknorm_sigma2", "fm_disagreement")


@method("mean_dice_disagreement", label="1 − mean Dice over classes", group="label-aware")
def mean_dice_disagreement(ctx: Context) -> np.ndarray:
    """1 − the mean over present classes of `dice_fm_<c>` (raw input)."""
    cols = np.stack([ctx.column("raw_sigma2", f"dice_fm_{n}") for n in ctx.class_names])
    return 1.0 - np.nanmean(np.where(np.isfinite(cols), cols, np.nan), axis=0)


@method("dice_z_max", label="per-class Dice, robust z, worst class", group="label-aware")
def dice_z_max(ctx: Context) -> np.ndarray:
    """Each class's 1 − Dice standardised over the dataset (median/MAD), max over classes.

    A class the model segments badly everywhere (white matter) no longer dominates the case score;
    what counts is being unusually bad *for that class*."""
    z = np.stack([robust_z(1.0 - ctx.column("raw_sigma2", f"dice_fm_{n}")) for n in ctx.class_names])
    return np.where(np.isfinite(z).any(axis=0), np.nanmax(np.where(np.isfinite(z), z, -np.inf), axis=0), np.nan)


@method("soft_dice_disagreement", label="1 − soft Dice(FM probability, annotation), worst class", group="label-aware")
def soft_dice_disagreement(ctx: Context) -> np.ndarray:
    """1 − min over present classes of 2Σpy / (Σp + Σy) with the FM probability p (no threshold)."""
    out = []
    for case_id in ctx.case_ids:
        p = ctx.maps(case_id)["probabilities"]
        y = ctx.onehot(case_id)
        dices = [2.0 * (p[c] * y[c]).sum() / (p[c].sum() + y[c].sum()) for c in range(len(y)) if y[c].any()]
        out.append(1.0 - min(dices) if dices else math.nan)
    return np.array(out)


def _component_dices(p: np.ndarray, y: np.ndarray, min_area: int = 9) -> list[float]:
    """Dice of each annotated connected component with the FM mask inside its padded box, per slice."""
    from scipy import ndimage

    dices = []
    for d in range(y.shape[0]):
        components, count = ndimage.label(y[d])
        if count == 0:
            continue
        mask = p[d] > 0.5
        for index, (rows, cols) in enumerate(ndimage.find_objects(components), start=1):
            comp = components[rows, cols] == index
            area = int(comp.sum())
            if area < min_area:
                continue
            pad_r = max(2, int(0.05 * (rows.stop - rows.start)))
            pad_c = max(2, int(0.05 * (cols.stop - cols.start)))
            box = (slice(max(0, rows.start - pad_r), rows.stop + pad_r), slice(max(0, cols.start - pad_c), cols.stop + pad_c))
            comp_full = components[box] == index
            fm = mask[box]
            dices.append(2.0 * (comp_full & fm).sum() / (area + fm.sum()))
    return dices


@method("component_disagreement", label="1 − Dice of the worst annotated component", group="label-aware")
def component_disagreement(ctx: Context) -> np.ndarray:
    """1 − min over the annotation's connected components (every class and slice, ≥ 9 px, the
    units the model is prompted with) of the Dice between the component and the FM mask inside the
    component's padded box (raw input). A spurious blob or a badly drawn single object stands out
    even when the class-level Dice over many objects hardly moves."""
    out = []
    for case_id in ctx.case_ids:
        p = ctx.maps(case_id)["probabilities"]
        y = ctx.onehot(case_id)
        dices = [v for c in range(len(y)) for v in _component_dices(p[c], y[c])]
        out.append(1.0 - min(dices) if dices else math.nan)
    return np.array(out)


@method("cleanlab_softmin", label="cleanlab softmin on FM probabilities", group="baseline",
        description="1 − cleanlab.segmentation.rank.get_label_quality_scores(method='softmin') on "
                    "K-class probabilities softmax([0, logit_1..logit_C]) of the FM maps (raw input)")
def cleanlab_softmin(ctx: Context) -> np.ndarray:
    from cleanlab.segmentation.rank import get_label_quality_scores

    out = []
    for case_id in ctx.case_ids:
        probs = kclass_probabilities(ctx.maps(case_id)["probabilities"])  # (K, D, H, W)
        label = ctx.label(case_id)
        index = np.zeros(label.shape, np.int64)
        for i, v in enumerate(ctx.class_values, start=1):
            index[label == v] = i
        k, d, h, w = probs.shape
        scores, _ = get_label_quality_scores(index.reshape(1, d * h, w), probs.reshape(1, k, d * h, w),
                                             method="softmin", verbose=False)
        out.append(1.0 - float(scores[0]))
    return np.array(out)


@method("rank_mean_fm_auv", label="rank mean of 1 − Dice and AUV", group="combination")
def rank_mean_fm_auv(ctx: Context) -> np.ndarray:
    """Mean of the within-dataset ranks of `fm_disagreement` and the AUV (σ², raw)."""
    return 0.5 * (ranks01(fm_disagreement(ctx)) + ranks01(ctx.column("raw_sigma2", "auv")))


@method("fm_disagreement_given_auv", label="1 − Dice adjusted for AUV difficulty", group="combination")
def fm_disagreement_given_auv(ctx: Context) -> np.ndarray:
    """Residual of `fm_disagreement` after a least-squares line on the AUV (σ², raw) over the
    dataset: disagreement beyond what the case's difficulty explains."""
    x, y = ctx.column("raw_sigma2", "auv"), fm_disagreement(ctx)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return y
    slope, intercept = np.polyfit(x[ok], y[ok], 1)
    return y - (slope * x + intercept)


@method("dice_z_plus_cleanlab", label="rank mean of Dice z and cleanlab", group="combination")
def dice_z_plus_cleanlab(ctx: Context) -> np.ndarray:
    """Mean of the within-dataset ranks of `dice_z_max` and `cleanlab_softmin`."""
    return 0.5 * (ranks01(dice_z_max(ctx)) + ranks01(cleanlab_softmin(ctx)))


# ------------------------------------------------------------------------------ learned label quality

def learned(ctx: Context) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Out-of-fold class probabilities ``(K, D, H, W)`` and label index of every case of the replicate,
    from the project's label-quality classifier (5-fold CV by case on frozen FM features)."""
    if "learned" not in ctx._memo:
        from napari_aleatoric.data.arraycache import ArrayCache
        from napari_aleatoric.labelquality.case_source import EmbeddedCase
        from napari_aleatoric.labelquality.classifier import CasePredicted, out_of_fold_probabilities
        from napari_aleatoric.labelquality.scores import label_index
        from napari_aleatoric.models.preprocess import normalise_intensity

        dataset = ctx.datasets["raw"]
        cache = ArrayCache(dataset.state_dir / "cache" / "embeddings")

        def load(case_id: str) -> EmbeddedCase:
            image, label = ctx.case(case_id)
            image01 = normalise_intensity(image, dataset.modality, "raw")
            return EmbeddedCase(ctx.model, image01, label_index(label, ctx.class_values), cache)

        out = {}
        started = time.perf_counter()
        for event in out_of_fold_probabilities(ctx.case_ids, load, len(ctx.class_values) + 1, seed=ctx.seed):
            if isinstance(event, CasePredicted):
                out[event.case_id] = (event.probabilities, event.case.label_index)
        ctx._memo["learned_seconds"] = time.perf_counter() - started
        ctx._memo["learned"] = out
    return ctx._memo["learned"]


@method("learned_contradicted", label="learned: contradicted share of the drawn annotation (the queue Nov 2026, "
        "now its `contradicted` column)", group="learned")
def learned_contradicted(ctx: Context) -> np.ndarray:
    """The pipeline's `contradicted`: the share of each case's drawn pixels whose annotated class the
    out-of-fold model gives less than 0.5."""
    return learned_candidates(ctx)["drawn_share"]


@method("learned_softmin", label="learned (CV on FM features): 1 − softmin quality over all pixels  ← the app's queue",
        group="learned")
def learned_softmin(ctx: Context) -> np.ndarray:
    """The pipeline's `label_issue`: 1 − softmin over pixels of the out-of-fold probability of the
    annotated class (cleanlab's pooling; its equality with cleanlab is tested)."""
    return learned_candidates(ctx)["softmin"]


def case_candidates(probabilities: np.ndarray, index: np.ndarray) -> dict:
    """Candidate case scores from out-of-fold class probabilities (higher = more likely mislabelled).

    ``contradicted`` means ``q_y < 0.5`` (the annotated class is doubted); the *union* is the pixels
    drawn or predicted (argmax of ``q``) as foreground, so it also holds confidently missed
    foreground. Keys: ``softmin`` (1 − softmin of ``q_y`` over all pixels), ``drawn_share``,
    ``union_share``, ``drawn_count``, ``union_count`` (pixels), ``largest_region`` (pixels of the
    largest connected contradicted region of the union), ``per_class`` ``(C,)`` drawn shares (the
    product's: NaN for a class drawn with fewer than ``MIN_SHARE_PIXELS`` pixels), ``structure`` (the
    product's largest contradicted share over connected pieces of one class; NaN for a single slice),
    ``outline`` (the product's largest contradicted share over those pieces' 2-px outlines; NaN for a
    single slice).

    Args:
        probabilities: ``(K, D, H, W)``, ``K = C + 1``.
        index: ``(D, H, W)`` class index of the annotation.
    """
    from scipy import ndimage

    from napari_aleatoric.labelquality.scores import (annotated_class_probability, class_contradicted_shares,
                                                      softmin_quality)
    from napari_aleatoric.labelquality.structures import worst_outline_share, worst_structure_share

    q_y = annotated_class_probability(probabilities, index)
    drawn, union = index > 0, (index > 0) | (probabilities.argmax(0) > 0)
    contradicted = q_y < 0.5
    regions, n = ndimage.label(contradicted & union)
    per_class = class_contradicted_shares(contradicted, index, probabilities.shape[0])
    return {"softmin": 1.0 - softmin_quality(q_y),
            "drawn_share": float(contradicted[drawn].mean()) if drawn.any() else np.nan,
            "union_share": float(contradicted[union].mean()) if union.any() else np.nan,
            "drawn_count": float((contradicted & drawn).sum()), "union_count": float((contradicted & union).sum()),
            "largest_region": float(np.bincount(regions.ravel())[1:].max()) if n else 0.0,
            "per_class": per_class, "structure": worst_structure_share(probabilities, index),
            "outline": worst_outline_share(probabilities, index)}


def learned_candidates(ctx: Context) -> dict[str, np.ndarray]:
    """:func:`case_candidates` of every case of the replicate, one array per key (memoised)."""
    if "learned_candidates" not in ctx._memo:
        rows = [case_candidates(*learned(ctx)[c]) for c in ctx.case_ids]
        ctx._memo["learned_candidates"] = {k: np.array([r[k] for r in rows], np.float64) for k in rows[0]}
    return ctx._memo["learned_candidates"]


@method("learned_union_share", label="learned: contradicted share of the pixels drawn or predicted as foreground",
        group="learned")
def learned_union_share(ctx: Context) -> np.ndarray:
    """Like the drawn share, over the pixels drawn *or* predicted as foreground (sees missed foreground)."""
    return learned_candidates(ctx)["union_share"]


@method("learned_largest_region", label="learned: pixels of the largest contradicted region", group="learned")
def learned_largest_region(ctx: Context) -> np.ndarray:
    """Size of the largest connected region of contradicted pixels among those drawn or predicted
    as foreground (does not depend on the case's size)."""
    return learned_candidates(ctx)["largest_region"]


@method("learned_rank_mean", label="learned: rank mean of softmin and drawn share", group="learned")
def learned_rank_mean(ctx: Context) -> np.ndarray:
    """Mean of the within-replicate ranks of the softmin and the contradicted drawn share."""
    scores = learned_candidates(ctx)
    return 0.5 * (ranks01(scores["softmin"]) + ranks01(scores["drawn_share"]))


@method("learned_class_share", label="learned: contradicted share of the drawn annotation, worst class", group="learned")
def learned_class_share(ctx: Context) -> np.ndarray:
    """max over classes of the contradicted share of that class's drawn pixels (a small class's error
    is not diluted by a large class's boundary noise)."""
    per_class = learned_candidates(ctx)["per_class"]
    return np.nanmax(np.where(np.isfinite(per_class), per_class, -np.inf), axis=1)


@method("learned_rank_class", label="learned: rank mean of softmin and worst-class drawn share", group="learned")
def learned_rank_class(ctx: Context) -> np.ndarray:
    """Mean of the within-replicate ranks of the softmin and the worst class's contradicted share."""
    return 0.5 * (ranks01(learned_candidates(ctx)["softmin"]) + ranks01(learned_class_share(ctx)))


@method("learned_softmin_class_max", label="learned: 1 − softmin quality, worst class", group="learned")
def learned_softmin_class_max(ctx: Context) -> np.ndarray:
    """max over classes of the softmin per-class scores."""
    from napari_aleatoric.labelquality.scores import label_issue_scores

    per_class = np.stack([label_issue_scores(*learned(ctx)[c])[1] for c in ctx.case_ids])
    return np.nanmax(np.where(np.isfinite(per_class), per_class, -np.inf), axis=1)


@method("learned_disagreement", label="learned: 1 − soft Dice(q, annotation), worst class", group="learned")
def learned_disagreement(ctx: Context) -> np.ndarray:
    """max over classes of 1 − 2Σq_c·y_c / (Σq_c + Σy_c) with the out-of-fold probability q (an
    area-level alternative to the softmin's worst-pixel pooling)."""
    out = []
    for case_id in ctx.case_ids:
        probs, index = learned(ctx)[case_id]
        dices = []
        for k in range(1, probs.shape[0]):
            y = index == k
            total = probs[k].sum() + y.sum()
            if total > 0.5:
                dices.append(2.0 * probs[k][y].sum() / total)
        out.append(1.0 - min(dices) if dices else math.nan)
    return np.array(out)


# ------------------------------------------------------------------------------ heatmaps

@heatmap("entropy", label="pipeline heatmap: binary entropy of p_FM")
def entropy_heatmap(ctx: Context, case_id: str) -> np.ndarray:
    """The cached `heatmaps` the viewer shows (raw input)."""
    return ctx.maps(case_id)["heatmaps"]


@heatmap("abs_diff", label="abs(p_FM − annotation)")
def abs_diff_heatmap(ctx: Context, case_id: str) -> np.ndarray:
    """Absolute difference between the FM probability and the annotation, per class."""
    return np.abs(ctx.maps(case_id)["probabilities"] - ctx.onehot(case_id).astype(np.float32))


@heatmap("boundary_proximity", label="control: closeness to the annotation's outline (no model)")
def boundary_proximity_heatmap(ctx: Context, case_id: str) -> np.ndarray:
    """A control that knows nothing about errors: 1 / (1 + in-plane distance to the outline of the
    class's annotation). Errors sit on or near the given outline, so a map scores high pixel AUROC
    merely by being bright along it; a useful map must beat this."""
    from scipy import ndimage

    y = ctx.onehot(case_id)
    out = np.zeros(y.shape, np.float32)
    for c in range(y.shape[0]):
        for d in range(y.shape[1]):
            m = y[c, d]
            if not m.any():
                continue
            edge = m ^ ndimage.binary_erosion(m)
            out[c, d] = 1.0 / (1.0 + ndimage.distance_transform_edt(~edge))
    return out


@heatmap("learned_issue", label="learned label-issue map |1[label = c] − q_c| (CV on FM features)")
def learned_issue_heatmap(ctx: Context, case_id: str) -> np.ndarray:
    """The viewer's label-issue map: out-of-fold probability disagreeing with the annotation."""
    from napari_aleatoric.labelquality.scores import issue_maps

    return issue_maps(*learned(ctx)[case_id])


def method_table() -> list[dict]:
    """Name, label, group, needs and description of every registered method (for the report)."""
    return [{"name": m.name, "label": m.label, "group": m.group, "needs": list(m.needs), "description": m.description}
            for m in METHODS.values()]


def maps_path(dataset: Dataset, case_id: str) -> Path:
    return dataset.state_dir / "cache" / "maps" / f"{case_id}.npz"
