"""The training loop, a generator of events that can be stopped between any two steps.

::

    events = train("Dataset001", TrainSettings(epochs=20, keep=0.9))
    for event in events:            # TrainingStarted, StepDone..., EpochDone, ..., TrainingFinished
        ...
    events.close()                  # or pass should_stop=...: last.pt is written at the current step

Stopping (closing the generator at a :class:`StepDone`, or ``should_stop()`` returning true before
a step) writes ``last.pt`` with the position reached; ``train(..., resume=True)`` continues from
it and, on the CPU, ends with exactly the weights an uninterrupted run would have (every random
draw comes from ``[seed, epoch, step]``). A crash or Ctrl+C in the middle of a step keeps the
previous ``last.pt`` (written at the end of every epoch and at start).
"""

from __future__ import annotations

import math
import platform
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..data.atomic import full_suffix
from ..data.dataset import Dataset, open_dataset
from ..data.errors import AleatoricError, DatasetError, ModelError
from ..data.state_layout import label_snapshots_dir
from ..models.base import resolve_device
from .data import (CaseLoader, case_shapes, default_patch, epoch_batches, make_weighted_batch, noise_seed,
                   review_statuses, select_cases, snapshot_labels, step_rng)
from .duo import duo_loss
from .label_issues import LabelIssuePlan, PreparingLabelIssues, describe, label_issue_problem, plan_label_issues
from .networks import DuoNet, build_network, size_divisor
from .runs import (BEST_CHECKPOINT, CASES_FILE, CHECKPOINT_FORMAT, LABEL_SNAPSHOT_DIR, LAST_CHECKPOINT, METRICS_FILE,
                   SETTINGS_FILE, best_checkpoint, latest_run, load_checkpoint, models_dir,
                   read_json, save_checkpoint, write_json)
from .settings import TrainSettings

POLY_EXPONENT = 0.9
SLIDING_WINDOW_OVERLAP = 0.25


# ------------------------------------------------------------------------------------- events

@dataclass
class TrainingStarted:
    """Emitted once, after the cases are chosen and the network is built (or restored).

    ``start_epoch`` is the 1-based epoch the run continues with and ``start_step`` the steps of
    it already done (both 1 and 0 for a new run).
    """

    run_dir: Path
    settings: TrainSettings
    device: str
    spatial_dims: int
    patch: tuple[int, ...]
    batch_size: int
    classes: list[str]
    train_cases: list[str]
    val_cases: list[str]
    left_out: dict[str, str]
    epochs: int
    steps_per_epoch: int
    start_epoch: int
    start_step: int
    resumed: bool
    label_issues: str = ""


@dataclass
class StepDone:
    """After every optimiser step (``epoch`` and ``step`` count from 1)."""

    epoch: int
    step: int
    steps_per_epoch: int
    global_step: int
    loss: float
    noise_loss: float
    lr: float
    elapsed: float


@dataclass
class EpochDone:
    """After every epoch's validation; ``val_dice`` maps class name → mean Dice (NaN: no case
    had the class, in truth or prediction). The checkpoints are on disk when this is emitted."""

    epoch: int
    epochs: int
    train_loss: float
    noise_loss: float
    val_dice: dict[str, float]
    val_mean_dice: float
    best: bool
    best_epoch: int
    best_dice: float
    lr: float
    epoch_seconds: float
    elapsed: float


@dataclass
class TrainingStopped:
    """``should_stop()`` returned true: ``last.pt`` holds the position (``step`` steps of ``epoch`` done).

    ``model_path`` is the run's ``best.pt`` (the best epoch so far), or ``None`` when no epoch has
    finished yet: there is no model to predict with, only the position to resume from.
    """

    run_dir: Path
    epoch: int
    step: int
    checkpoint: Path
    elapsed: float
    model_path: Path | None = None


@dataclass
class TrainingFinished:
    """All epochs done; ``model_path`` is ``best.pt``."""

    run_dir: Path
    best_epoch: int
    best_dice: float
    model_path: Path
    metrics_path: Path
    elapsed: float


TrainingEvent = (PreparingLabelIssues | TrainingStarted | StepDone | EpochDone | TrainingStopped
                 | TrainingFinished)


# ------------------------------------------------------------------------------------ helpers

def poly_lr(base: float, epoch: int, epochs: int) -> float:
    """``base · (1 − epoch / epochs)^0.9`` (nnU-Net's schedule, evaluated per epoch)."""
    return base * (1.0 - epoch / epochs) ** POLY_EXPONENT


def _run_name(network: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{network}-{stamp}-{secrets.token_hex(2)}"


def _nan_to_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def dice_per_class(pred: torch.Tensor, truth: torch.Tensor, num_foreground: int) -> np.ndarray:
    """Dice of every foreground class between two channel-index maps (NaN when both are empty).

    Uses :class:`monai.metrics.DiceMetric` (``ignore_empty=False``: a false positive in a case
    without the class scores 0) and marks classes absent from both maps as NaN, as nnU-Net does.
    """
    from monai.metrics import DiceMetric  # noqa: PLC0415

    k = num_foreground + 1
    channels = torch.arange(k, device=pred.device).view(1, k, *([1] * pred.ndim))
    pred_1h = (pred[None, None] == channels).float()
    truth_1h = (truth[None, None] == channels).float()
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=False)
    values = metric(pred_1h, truth_1h)[0].double().cpu().numpy()
    empty = (pred_1h[0, 1:].flatten(1).sum(1) + truth_1h[0, 1:].flatten(1).sum(1) == 0).cpu().numpy()
    values[empty] = np.nan
    return values


def segment_logits(net: DuoNet, image: torch.Tensor, patch: tuple[int, ...], batch_size: int) -> torch.Tensor:
    """Sliding-window segmentation logits ``(1, K, ...)`` of a ``(1, 1, ...)`` image (Gaussian blending)."""
    from monai.inferers import sliding_window_inference  # noqa: PLC0415

    return sliding_window_inference(image, roi_size=patch, sw_batch_size=batch_size, predictor=net.segment,
                                    overlap=SLIDING_WINDOW_OVERLAP, mode="gaussian")


def validate(net: DuoNet, loader: CaseLoader, case_ids: list[str], patch: tuple[int, ...], batch_size: int,
             device: torch.device, num_foreground: int) -> np.ndarray:
    """Per-class Dice ``(C,)`` averaged over ``case_ids`` (NaN-aware)."""
    net.eval()
    rows = []
    with torch.no_grad():
        for case_id in case_ids:
            case = loader.get(case_id)
            image = torch.from_numpy(case.image)[None, None].to(device)
            pred = segment_logits(net, image, patch, batch_size).argmax(1)[0]
            rows.append(dice_per_class(pred, torch.from_numpy(case.label.astype(np.int64)).to(device), num_foreground))
    net.train()
    values = np.array(rows)
    with np.errstate(all="ignore"):
        return np.array([np.nanmean(col) if np.isfinite(col).any() else np.nan for col in values.T])


def _mean_dice(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def _versions() -> dict:
    import monai  # noqa: PLC0415

    from .. import __version__  # noqa: PLC0415

    return {"napari_aleatoric": __version__, "torch": torch.__version__, "monai": monai.__version__,
            "python": platform.python_version()}


# ------------------------------------------------------------------------------------- set-up

@dataclass
class _Plan:
    run_dir: Path
    settings: TrainSettings
    train: list[str]
    val: list[str]
    left_out: dict[str, str]
    spatial_dims: int
    patch: tuple[int, ...]
    batch_size: int
    snapshot: Path | None = None  # folder of the run's label snapshot (None: an older run read the live labels)
    label_issues: dict | None = None  # the stored label-issue summary of a resumed run


def snapshot_folder(ds: Dataset, run_dir: Path, name: str) -> Path:
    """Where a run keeps its label snapshot: ``<run>/labels``, or ``<dataset>/.aleatoric/
    label_snapshots/<run name>`` for a run folder outside the dataset (cases are read only from
    inside the dataset folder)."""
    if Path(run_dir).resolve().is_relative_to(ds.root):
        return Path(run_dir) / LABEL_SNAPSHOT_DIR
    return label_snapshots_dir(ds.state_dir, name)


def _snapshot_paths(ds: Dataset, plan: _Plan) -> dict[str, Path]:
    """The label files a run reads: its snapshot's copies (checked), or ``{}`` for the live labels."""
    if plan.snapshot is None:
        return {}
    paths = {}
    for case_id in plan.train + plan.val:
        ref = next((r for r in ds.cases if r.case_id == case_id), None)
        if ref is None or ref.label_path is None:
            continue  # the loader names a case that left the dataset when it is needed
        path = plan.snapshot / f"{case_id}{full_suffix(ref.label_path)}"
        if not path.is_file():
            raise ModelError(path, "the run's label snapshot is incomplete (file missing); start a new run")
        paths[case_id] = path
    return paths


def _new_plan(ds: Dataset, settings: TrainSettings, run_dir: Path | None, scores_csv) -> tuple[_Plan, dict]:
    name = settings.name or _run_name(settings.network)
    settings = replace(settings, name=name)
    run_dir = Path(run_dir) if run_dir is not None else models_dir(ds.root) / name
    if (run_dir / LAST_CHECKPOINT).exists():  # without it: a start killed before its first checkpoint, reused
        raise AleatoricError(run_dir, "a training run already exists here; resume it (--resume) "
                             "or choose another run name or folder")
    selection = select_cases(ds, settings, scores_csv)
    shapes, problems = case_shapes(ds, selection.train + selection.val)
    selection.left_out.update(problems)
    train = [c for c in selection.train if c in shapes]
    val = [c for c in selection.val if c in shapes]
    if not train or not val:
        raise DatasetError(ds.root, f"not enough usable cases: {len(train)} to train and {len(val)} to validate "
                           f"(problems: {'; '.join(problems.values()) or 'none'})")
    dims = {len(s) for s in shapes.values()}
    if len(dims) != 1:
        raise DatasetError(ds.root, "the dataset mixes 2D and 3D cases; train on one kind")
    spatial_dims = dims.pop()
    divisor = size_divisor(settings.network, settings.depth)
    patch = settings.patch or default_patch([shapes[c] for c in train], divisor)
    if len(patch) != spatial_dims:
        raise ValueError(f"patch {tuple(patch)} has {len(patch)} axes but the cases are {spatial_dims}D")
    if any(p % divisor for p in patch):
        raise ValueError(f"every patch size must be a multiple of {divisor} for {settings.network} "
                         f"with depth {settings.depth}; got {tuple(patch)}")
    batch_size = settings.batch_size or (4 if spatial_dims == 2 else 2)
    label_issue_problem(ds, settings, len(train))  # a strategy that needs the scores fails here, before any work
    plan = _Plan(run_dir, settings, train, val, dict(sorted(selection.left_out.items())), spatial_dims,
                 tuple(int(p) for p in patch), batch_size)
    return plan, selection.filter


def _resume_plan(ds: Dataset, settings: TrainSettings | None, run_dir: Path | None) -> _Plan:
    if run_dir is None:
        run_dir = latest_run(ds.root)
        if run_dir is None:
            raise AleatoricError(models_dir(ds.root), "no training run to resume")
    run_dir = Path(run_dir)
    if not (run_dir / LAST_CHECKPOINT).is_file():
        raise AleatoricError(run_dir, "this run stopped before writing its first checkpoint (last.pt), so there is "
                             "nothing to resume; start it again without --resume (same name or folder: it is reused)")
    stored = read_json(run_dir / SETTINGS_FILE)
    try:
        stored_settings = TrainSettings.from_dict(stored["settings"]).validated()
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(run_dir / SETTINGS_FILE, f"unusable settings: {error}") from error
    if settings is None:
        settings = stored_settings
    else:
        differences = settings.differences(stored_settings)
        if differences:
            raise ValueError("cannot resume with different settings (only epochs and device may change): "
                             + "; ".join(differences))
        settings = replace(settings, name=stored_settings.name)
    cases = read_json(run_dir / CASES_FILE)
    snapshot = cases.get("labels_snapshot")
    if snapshot is not None:
        snapshot = Path(snapshot) if Path(snapshot).is_absolute() else ds.root / snapshot
    return _Plan(run_dir, settings, list(cases["train"]), list(cases["val"]), dict(cases.get("left_out", {})),
                 int(stored["spatial_dims"]), tuple(stored["patch"]), int(stored["batch_size"]), snapshot,
                 cases.get("label_issues"))


def _settings_record(plan: _Plan, ds: Dataset) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "settings": plan.settings.to_dict(),
        "dataset": {"name": ds.name, "root": str(ds.root)},
        "modality": ds.modality,
        "classes": [{"name": n, "value": int(v), "channel": k} for k, (n, v) in enumerate(ds.foreground.items(), 1)],
        "background_value": 0,
        "spatial_dims": plan.spatial_dims,
        "patch": list(plan.patch),
        "batch_size": plan.batch_size,
        "versions": _versions(),
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# -------------------------------------------------------------------------------------- train

def train(
    dataset: str | Path,
    settings: TrainSettings | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    scores_csv: str | Path | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[TrainingEvent]:
    """Train a task network, guided by the label issues and/or the paper's AUV filtering and DUO;
    yield progress events.

    Before training, the label-issue pass (:mod:`napari_aleatoric.training.label_issues`) learns
    label quality on the training cases' snapshot labels (out of fold; cached) and yields
    :class:`PreparingLabelIssues` events; it filters cases (``issue_keep``) and weights pixels
    (``label_issues``: pixels the label-quality model contradicts are relabelled or down-weighted).

    Args:
        dataset: nnU-Net v2 raw or Decathlon dataset folder.
        settings: the run's settings (default :class:`TrainSettings()`); on ``resume`` they must
            match the stored ones except ``epochs`` and ``device`` (``None`` = the stored ones).
        run_dir: the run folder (default ``<dataset>/.aleatoric/models/<settings.name>``; on
            resume, default the run with the newest ``last.pt``).
        resume: continue a run from its ``last.pt``.
        scores_csv: AUV table for the filter (default ``<dataset>/.aleatoric/scores.csv``).
        should_stop: polled before every step (and between cases of the label-issue pass); when it
            returns true the position is saved, a :class:`TrainingStopped` is yielded and the
            generator ends.

    Raises (before the first event):
        ValueError: invalid settings (message names them).
        AleatoricError: missing/invalid dataset, no trainable cases, filtering without scores,
            a strategy that needs label issues on an unscored dataset, an existing run folder
            (without ``resume``), a damaged checkpoint.
    """
    settings = settings.validated() if settings is not None else (None if resume else TrainSettings())
    ds = open_dataset(dataset)
    if not ds.foreground:
        raise DatasetError(ds.root / "dataset.json", "declares no foreground class to train")
    if settings is not None:
        resolve_device(settings.device)  # refuse an unavailable device before any work
    filter_summary: dict = {}
    if resume:
        plan = _resume_plan(ds, settings, run_dir)
    else:
        plan, filter_summary = _new_plan(ds, settings, Path(run_dir) if run_dir else None, scores_csv)
    settings = plan.settings
    device = resolve_device(settings.device)
    num_fg = len(ds.foreground)
    class_names = list(ds.foreground)

    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
        torch.manual_seed(settings.seed)
        net = build_network(settings.network, plan.spatial_dims, num_fg + 1, width=settings.width,
                            depth=settings.depth, detach_noise_input=settings.noise_training != "target")
    net = net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
    state = {"epoch": 0, "step": 0, "global_step": 0, "loss_sum": 0.0, "noise_sum": 0.0, "history": [],
             "best_epoch": 0, "best_dice": -math.inf, "seconds": 0.0}
    last_path, best_path = plan.run_dir / LAST_CHECKPOINT, plan.run_dir / BEST_CHECKPOINT
    if resume:
        payload = load_checkpoint(last_path)
        try:
            net.load_state_dict(payload["model"])
            optimizer.load_state_dict(payload["optimizer"])
        except (RuntimeError, ValueError, KeyError) as error:
            raise ModelError(last_path, f"checkpoint does not fit this run's network: {error}") from error
        for key in state:
            if key in payload:
                state[key] = payload[key]
        if state["epoch"] > settings.epochs or (state["epoch"] == settings.epochs and state["step"]):
            raise ValueError(f"the run has already done {state['epoch']} epochs; ask for more than that to resume")
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:  # the labels as they are now: corrections saved during training do not reach this run
        plan.snapshot = snapshot_folder(ds, plan.run_dir, settings.name)
        if plan.snapshot.exists():  # left by a start that failed before settings.json (checked above)
            shutil.rmtree(plan.snapshot)
        snapshot_labels(ds, plan.train + plan.val, plan.snapshot)
    label_paths = _snapshot_paths(ds, plan)
    issues = LabelIssuePlan()
    if not resume:
        for event in plan_label_issues(ds, plan.train, settings, label_paths=label_paths,
                                       statuses=review_statuses(ds), device=device):
            if isinstance(event, LabelIssuePlan):
                issues = event
                continue
            yield event
            if should_stop is not None and should_stop():  # stopped before training: leave nothing behind
                shutil.rmtree(plan.snapshot, ignore_errors=True)
                if not any(plan.run_dir.iterdir()):
                    plan.run_dir.rmdir()
                return
        for case_id in issues.left_out:
            plan.left_out[case_id] = f"contradicted share of the annotation above the {issues.keep:g} " \
                                     f"quantile ({100 * issues.cases[case_id].contradicted:.1f} %)"
        plan.train = [c for c in plan.train if c not in set(issues.left_out)]
        plan.left_out = dict(sorted(plan.left_out.items()))
    elif plan.label_issues and plan.label_issues.get("mode"):  # the same guidance as at the start
        vouched = {c: "accepted" for c in plan.label_issues.get("reviewed", [])}
        stored = replace(settings, issue_keep=1.0, label_issues=plan.label_issues["mode"])
        for event in plan_label_issues(ds, plan.train, stored,
                                       label_paths=label_paths, statuses=vouched, device=device, apply_filter=False):
            if isinstance(event, LabelIssuePlan):
                issues = event
            else:
                yield event
    steps_per_epoch = math.ceil(len(plan.train) / plan.batch_size)
    write_json(plan.run_dir / SETTINGS_FILE, _settings_record(plan, ds))
    if not resume:
        write_json(plan.run_dir / CASES_FILE, {
            "train": plan.train, "val": plan.val, "left_out": plan.left_out, "filter": filter_summary,
            "label_issues": issues.summary(),
            "labels_snapshot": plan.snapshot.resolve().relative_to(ds.root).as_posix()})
    loader = CaseLoader(ds, label_paths=label_paths, guidance=issues.guidance)
    started = time.perf_counter()
    seconds_before = float(state["seconds"])

    def elapsed() -> float:
        return time.perf_counter() - started

    def save_last() -> None:
        save_checkpoint(last_path, {
            "format": CHECKPOINT_FORMAT, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
            "epoch": int(state["epoch"]), "step": int(state["step"]), "global_step": int(state["global_step"]),
            "loss_sum": float(state["loss_sum"]), "noise_sum": float(state["noise_sum"]),
            "history": state["history"], "best_epoch": int(state["best_epoch"]),
            "best_dice": float(state["best_dice"]), "seconds": seconds_before + elapsed()})

    def write_metrics() -> Path:
        path = plan.run_dir / METRICS_FILE
        write_json(path, {"classes": class_names, "epochs": state["history"],
                          "best_epoch": int(state["best_epoch"]) or None,
                          "best_val_mean_dice": _nan_to_none(state["best_dice"]),
                          "train_seconds": seconds_before + elapsed()})
        return path

    if not resume:
        save_last()
    yield TrainingStarted(run_dir=plan.run_dir, settings=settings, device=str(device), spatial_dims=plan.spatial_dims,
                          patch=plan.patch, batch_size=plan.batch_size, classes=class_names, train_cases=plan.train,
                          val_cases=plan.val, left_out=plan.left_out, epochs=settings.epochs,
                          steps_per_epoch=steps_per_epoch, start_epoch=int(state["epoch"]) + 1,
                          start_step=int(state["step"]), resumed=resume,
                          label_issues=describe(issues, len(plan.train) + len(issues.left_out)))

    loss_options = dict(alpha=settings.alpha, beta=settings.beta, weighting=settings.weighting,
                        denoising=settings.denoising, noise_training=settings.noise_training,
                        noise_weight=settings.noise_weight, epsilon=settings.epsilon, svd_mode=settings.svd_mode,
                        energy=settings.energy)
    generator = torch.Generator(device=device)
    net.train()
    while state["epoch"] < settings.epochs:
        epoch = int(state["epoch"])
        epoch_started = time.perf_counter()
        lr = poly_lr(settings.lr, epoch, settings.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batches = epoch_batches(plan.train, plan.batch_size, settings.seed, epoch)
        while state["step"] < steps_per_epoch:
            step = int(state["step"])
            if should_stop is not None and should_stop():
                save_last()
                yield TrainingStopped(plan.run_dir, epoch + 1, step, last_path, elapsed(), best_checkpoint(plan.run_dir))
                return
            x, y, w = make_weighted_batch([loader.get(c) for c in batches[step]], plan.patch,
                                          step_rng(settings.seed, epoch, step), num_fg, augment=settings.augment)
            if settings.denoising:
                seg_logits, noise_logits = net(x.to(device))
            else:  # the noise head has no use: skip it, as a plain network would
                seg_logits, noise_logits = net.segment(x.to(device)), None
            generator.manual_seed(noise_seed(settings.seed, epoch, step))  # the step's DUO ε sample
            parts = duo_loss(seg_logits, noise_logits, y.to(device), generator=generator,
                             pixel_weights=None if w is None else w.to(device), **loss_options)
            if not torch.isfinite(parts.total):
                raise AleatoricError(plan.run_dir, f"the loss is not finite at epoch {epoch + 1}, step {step + 1}; "
                                     "lower the learning rate (--lr)")
            optimizer.zero_grad(set_to_none=True)
            parts.total.backward()
            optimizer.step()
            loss, noise_loss = float(parts.loss.detach()), float(parts.noise_loss.detach())
            state["loss_sum"] += loss
            state["noise_sum"] += noise_loss
            state["step"] = step + 1
            state["global_step"] += 1
            try:
                yield StepDone(epoch + 1, step + 1, steps_per_epoch, int(state["global_step"]), loss, noise_loss,
                               lr, elapsed())
            except GeneratorExit:
                save_last()
                raise
        dice = validate(net, loader, plan.val, plan.patch, plan.batch_size, device, num_fg)
        mean_dice = _mean_dice(dice)
        improved = state["best_epoch"] == 0 or (math.isfinite(mean_dice) and mean_dice > state["best_dice"])
        if improved:
            state["best_epoch"], state["best_dice"] = epoch + 1, (mean_dice if math.isfinite(mean_dice) else -math.inf)
            save_checkpoint(best_path, {"format": CHECKPOINT_FORMAT, "model": net.state_dict(), "epoch": epoch + 1,
                                        "val_mean_dice": float(mean_dice)})
        epoch_seconds = time.perf_counter() - epoch_started
        train_loss = state["loss_sum"] / steps_per_epoch
        noise_mean = state["noise_sum"] / steps_per_epoch
        state["history"].append({"epoch": epoch + 1, "train_loss": train_loss, "noise_loss": noise_mean,
                                 "val_dice": {n: _nan_to_none(v) for n, v in zip(class_names, dice)},
                                 "val_mean_dice": _nan_to_none(mean_dice), "lr": lr, "seconds": epoch_seconds})
        state.update(epoch=epoch + 1, step=0, loss_sum=0.0, noise_sum=0.0)
        save_last()
        write_metrics()
        yield EpochDone(epoch=epoch + 1, epochs=settings.epochs, train_loss=train_loss, noise_loss=noise_mean,
                        val_dice=dict(zip(class_names, map(float, dice))), val_mean_dice=mean_dice, best=improved,
                        best_epoch=int(state["best_epoch"]), best_dice=float(state["best_dice"]), lr=lr,
                        epoch_seconds=epoch_seconds, elapsed=elapsed())
    metrics_path = write_metrics()
    yield TrainingFinished(run_dir=plan.run_dir, best_epoch=int(state["best_epoch"]), best_dice=float(state["best_dice"]),
                           model_path=best_path, metrics_path=metrics_path, elapsed=elapsed())
