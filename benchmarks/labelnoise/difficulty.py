"""Difficulty, the paper's Table 4 on our data: does a score predict where a trained model fails?

For a dataset's clean cases, split into ``folds`` folds by case, a task model is trained with the
shipped trainer (:func:`napari_aleatoric.training.train`: MONAI UNet, plain Dice + BCE, no AUV
filtering, no DUO) on the clean labels of the other folds, and segments the held-out cases. Each
clean case thus gets an out-of-fold Dice against its clean label. The correlation (Pearson and
Spearman, with a bootstrap 95 % CI over cases) between a case's score and its *error* ``1 − Dice``
says how well the score predicts difficulty; positive = higher score, harder case. The paper
reports Pearson 0.63 / Spearman 0.75 for its score (method.md §4).

Scores compared (all from the benchmark's raw-input scoring of the clean case, so no corruption is
involved): the paper's AUV (σ² and σ energy); the per-class AUV against the per-class error; the
foundation model's disagreement with the annotation; and a trivial control that needs no model, the
annotation's boundary share (outline pixels / foreground pixels: thin or small structures are hard).

Files: ``<out>/work/difficulty/<dataset>/fold<k>/`` is a hard-linked nnU-Net folder of the fold's
training cases with the run in ``.aleatoric/models/task``; ``fold<k>/dice.json`` caches the fold's
out-of-fold Dice (reused when the settings are unchanged).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy import stats

from napari_aleatoric.data.dataset import load_case, open_dataset
from napari_aleatoric.training import EpochDone, TrainingFinished, TrainSettings, train
from napari_aleatoric.training.prediction import load_trained_model

from .datasets import BenchDataset, _link

#: datasets with a difficulty stage: the CT phantom volumes are 4 slices deep, too thin for a UNet's pooling
DATASETS = ("mni", "nuclei")
RUN_NAME = "task"


@dataclass(frozen=True)
class DifficultyConfig:
    """Cross-validation and task-model settings (the full and quick presets are in :data:`PRESETS`)."""

    folds: int = 4
    epochs: int = 40
    width: int = 8
    depth: int = 4
    patch: int | None = 128
    batch_size: int = 4
    seed: int = 0


PRESETS = {"full": DifficultyConfig(), "quick": DifficultyConfig(folds=2, epochs=2, width=4, depth=3, patch=None)}


def fold_of_cases(cases: list[str], folds: int, seed: int) -> dict[str, int]:
    """Case id → fold index ``0..folds-1``: a seeded permutation dealt round-robin (sizes differ by ≤ 1)."""
    if folds < 2 or folds > len(cases):
        raise ValueError(f"need 2 ≤ folds ≤ number of cases ({len(cases)}), got {folds}")
    order = np.random.default_rng(seed).permutation(sorted(cases))
    return {str(case): i % folds for i, case in enumerate(order)}


def dice_per_class(prediction: np.ndarray, truth: np.ndarray, values: list[int]) -> list[float]:
    """Dice of each label value (NaN where the class is absent from both; shapes must match)."""
    out = []
    for value in values:
        p, t = prediction == value, truth == value
        total = int(p.sum()) + int(t.sum())
        out.append(2.0 * int(np.logical_and(p, t).sum()) / total if total else math.nan)
    return out


def boundary_share(label: np.ndarray) -> float:
    """Outline pixels / foreground pixels of an annotation (NaN when it has no foreground)."""
    foreground = label > 0
    area = int(foreground.sum())
    if not area:
        return math.nan
    edge = np.zeros_like(foreground)
    for value in np.unique(label[foreground]):
        region = label == value
        edge |= region & ~ndi.binary_erosion(region, border_value=1)
    return float(edge.sum()) / area


def correlation(scores: np.ndarray, errors: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """Pearson and Spearman correlation of ``scores`` with ``errors`` (1-D, NaN pairs dropped), with
    two-sided p-values and bootstrap 95 % CIs over cases."""
    keep = np.isfinite(scores) & np.isfinite(errors)
    x, y = np.asarray(scores, np.float64)[keep], np.asarray(errors, np.float64)[keep]
    out = {"n": int(keep.sum())}
    if out["n"] < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out | {k: math.nan for k in ("pearson", "pearson_p", "spearman", "spearman_p")}
    pearson, spearman = stats.pearsonr(x, y), stats.spearmanr(x, y)
    out |= {"pearson": float(pearson.statistic), "pearson_p": float(pearson.pvalue),
            "spearman": float(spearman.statistic), "spearman_p": float(spearman.pvalue)}
    rng = np.random.default_rng(seed)
    boot = {"pearson": [], "spearman": []}
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if np.ptp(x[idx]) == 0 or np.ptp(y[idx]) == 0:
            continue
        boot["pearson"].append(np.corrcoef(x[idx], y[idx])[0, 1])
        boot["spearman"].append(stats.spearmanr(x[idx], y[idx]).statistic)
    for name, values in boot.items():
        out[f"{name}_ci"] = [float(v) for v in np.nanpercentile(values, [2.5, 97.5])] if values else None
    return out


def _config_key(ds: BenchDataset, config: DifficultyConfig, device: str) -> str:
    payload = json.dumps([ds.config.get("key"), asdict(config), device], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _fold_folder(ds: BenchDataset, train_ids: list[str], folder: Path) -> None:
    """A hard-linked nnU-Net folder holding only ``train_ids`` (clean images and labels)."""
    if folder.exists():
        shutil.rmtree(folder)
    meta = json.loads((ds.root / "dataset.json").read_text())
    ending = meta["file_ending"]
    for case in train_ids:
        _link(ds.root / "imagesTr" / f"{case}_0000{ending}", folder / "imagesTr" / f"{case}_0000{ending}")
        _link(ds.root / "labelsTr" / f"{case}{ending}", folder / "labelsTr" / f"{case}{ending}")
    meta.update(numTraining=len(train_ids), name=f"{meta['name']}_difficulty")
    (folder / "dataset.json").write_text(json.dumps(meta, indent=1))


def run_fold(ds: BenchDataset, fold: int, assignment: dict[str, int], config: DifficultyConfig, work: Path,
             device: str, log=print) -> dict:
    """Train on the other folds' clean cases, segment this fold's; returns (and caches) its Dice."""
    key = _config_key(ds, config, device)
    folder = work / f"fold{fold}"
    cache = work / f"fold{fold}_dice.json"
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return cached
    train_ids = sorted(c for c, f in assignment.items() if f != fold)
    test_ids = sorted(c for c, f in assignment.items() if f == fold)
    _fold_folder(ds, train_ids, folder)
    settings = TrainSettings(network="unet", epochs=config.epochs, batch_size=config.batch_size,
                             patch=(config.patch,) * 2 if config.patch else None, width=config.width,
                             depth=config.depth, seed=config.seed + fold, keep=1.0, duo=False,
                             device=device, name=RUN_NAME)
    started = time.perf_counter()
    finished = None
    for event in train(folder, settings):
        if isinstance(event, EpochDone) and (event.epoch % 10 == 0 or event.epoch == event.epochs):
            log(f"  [difficulty {ds.name} fold {fold}] epoch {event.epoch}/{event.epochs}, "
                f"val Dice {event.val_mean_dice:.3f}, {time.perf_counter() - started:.0f} s")
        elif isinstance(event, TrainingFinished):
            finished = event
    train_seconds = time.perf_counter() - started
    model = load_trained_model(finished.run_dir, device=device)
    source = open_dataset(ds.root)
    values = [ds.foreground[n] for n in ds.foreground]
    dice = {}
    for case_id in test_ids:
        case = load_case(source, source.case(case_id))
        per_class = dice_per_class(model.predict(case.image), case.label, values)
        dice[case_id] = {"dice": float(np.nanmean(per_class)) if np.isfinite(per_class).any() else math.nan,
                         **{f"dice_{n}": d for n, d in zip(ds.foreground, per_class)},
                         "boundary_share": boundary_share(case.label)}
    result = {"key": key, "fold": fold, "train_cases": len(train_ids), "test_cases": test_ids,
              "best_epoch": finished.best_epoch, "best_val_dice": finished.best_dice,
              "train_seconds": round(train_seconds, 1), "dice": dice}
    cache.write_text(json.dumps(result, indent=1))
    return result


#: name → (label, scoring run, column) of every case-level score compared with ``1 − Dice``
SCORES = {"auv_sigma2": ("paper AUV, σ², raw input (`auv`)", "raw_sigma2", "auv"),
          "auv_sigma": ("paper AUV, σ, raw input", "raw_sigma", "auv"),
          "fm_disagreement": ("1 − Dice(FM, annotation), worst class (`fm_disagreement`)", "raw_sigma2",
                              "fm_disagreement"),
          "boundary_share": ("control: the annotation's outline pixels / foreground pixels", "", "")}


def evaluate(ds: BenchDataset, rows: dict, out: Path, config: DifficultyConfig, device: str = "cpu",
             n_boot: int = 1000, log=print) -> dict:
    """Cross-validated per-case Dice of the clean cases and its correlation with each score.

    Args:
        ds: a benchmark dataset (its clean cases are used).
        rows: scoring run name (``"raw_sigma2"``, ``"raw_sigma"``) → case id → score-table row.
        out: the benchmark's output folder (work goes to ``out/work/difficulty/<name>``).
    """
    started = time.perf_counter()
    work = out / "work" / "difficulty" / ds.name
    work.mkdir(parents=True, exist_ok=True)
    assignment = fold_of_cases(ds.cases, config.folds, config.seed)
    folds = [run_fold(ds, k, assignment, config, work, device, log) for k in range(config.folds)]
    cases = {case: dict(entry) for fold in folds for case, entry in fold["dice"].items()}
    ids = sorted(cases)
    error = np.array([1.0 - cases[c]["dice"] for c in ids])
    correlations = {}
    for name, (label, run, column) in SCORES.items():
        values = (np.array([cases[c]["boundary_share"] for c in ids]) if name == "boundary_share"
                  else np.array([_number(rows[run][c].get(column)) for c in ids]))
        correlations[name] = {"label": label, **correlation(values, error, n_boot)}
        for case, value in zip(ids, values):
            cases[case].setdefault("scores", {})[name] = None if not math.isfinite(value) else float(value)
    per_class = {}
    for cls in ds.foreground:
        auv = np.array([_number(rows["raw_sigma2"][c].get(f"auv_{cls}")) for c in ids])
        class_error = np.array([1.0 - cases[c][f"dice_{cls}"] for c in ids])
        per_class[cls] = {"mean_dice": float(np.nanmean(1.0 - class_error)), **correlation(auv, class_error, n_boot)}
    dice = np.array([cases[c]["dice"] for c in ids])
    log(f"[difficulty] {ds.name}: {len(ids)} clean cases, {config.folds}-fold mean Dice {np.nanmean(dice):.3f}; "
        f"AUV vs 1 − Dice Spearman {correlations['auv_sigma2'].get('spearman', math.nan):.2f}")
    return {"config": asdict(config), "cases": cases, "mean_dice": float(np.nanmean(dice)),
            "dice_range": [float(np.nanmin(dice)), float(np.nanmax(dice))],
            "folds": [{k: f[k] for k in ("fold", "train_cases", "best_epoch", "best_val_dice", "train_seconds")}
                      for f in folds],
            "correlations": correlations, "per_class_auv": per_class,
            "seconds": round(time.perf_counter() - started, 1)}


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
