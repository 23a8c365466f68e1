"""The files of a training run, ``<dataset>/.aleatoric/models/<run name>/``.

=================  ===========================================================================
``settings.json``  the :class:`TrainSettings` and what a prediction needs (classes with their
                   label values, modality, 2D/3D, patch size), package versions
``cases.json``     training and validation cases, the cases left out and why, the filter summary,
                   and the folder of the label snapshot
``labels/``        the label files as they were when the run started; the run (and its resume)
                   reads only these, so corrections saved meanwhile never mix into it
``metrics.json``   one entry per finished epoch (losses, per-class validation Dice, seconds),
                   best epoch and Dice
``last.pt``        model, optimiser, position (epoch, step), partial epoch sums, history
``best.pt``        the model with the best mean validation Dice so far (plus its epoch and Dice)
``labels/``        the label files of the run's cases as they were at its start (the run reads
                   its labels from here; see ``training.data.snapshot_labels``)
=================  ===========================================================================

Checkpoints hold only tensors and plain Python values, so they load with
``torch.load(weights_only=True)`` (no code runs), and every file is written atomically
(temporary file, fsync, rename): a run killed while writing keeps the previous complete file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.atomic import atomic_write_bytes
from ..data.errors import ModelError
from ..data.state_layout import models_dir as _models_dir, state_dir
from ..models.checkpoints import torch_load_safely

CHECKPOINT_FORMAT = "napari-aleatoric-train/1"
SETTINGS_FILE = "settings.json"
CASES_FILE = "cases.json"
METRICS_FILE = "metrics.json"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
LABEL_SNAPSHOT_DIR = "labels"


def models_dir(dataset_root: str | Path) -> Path:
    """``<dataset>/.aleatoric/models``."""
    return _models_dir(state_dir(dataset_root))


def write_json(path: Path, data) -> None:
    """Write JSON atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=True) + "\n").encode("utf-8"))


def read_json(path: Path) -> dict:
    """Read a run's JSON file; :class:`ModelError` naming the file when missing or invalid."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ModelError(path, "missing: not a finished training run folder") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(path, f"cannot read: {error}") from error
    if not isinstance(data, dict):
        raise ModelError(path, "expected a JSON object")
    return data


def best_checkpoint(run_dir: str | Path) -> Path | None:
    """The run's ``best.pt`` if it exists (written when an epoch ends), else ``None``: a run stopped
    before its first epoch finished has no model yet, only ``last.pt`` to resume from."""
    path = Path(run_dir) / BEST_CHECKPOINT
    return path if path.is_file() else None


def save_checkpoint(path: Path, payload: dict) -> None:
    """``torch.save`` into memory, then write the bytes to a temporary file beside ``path`` and
    rename it over ``path``.

    Serialising in memory first means a full disk or a permission problem surfaces as the
    ``OSError`` of a plain write (``ENOSPC``, ``EACCES``), which callers report in plain words,
    instead of torch's "PytorchStreamWriter failed writing file ... unexpected pos ...".
    """
    import io  # noqa: PLC0415

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint with ``weights_only=True``.

    Raises:
        ModelError: missing, unreadable, not ours, or a pickle that would need code to load.
    """
    path = Path(path)
    payload = torch_load_safely(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or "model" not in payload:
        raise ModelError(path, f"not a napari-aleatoric training checkpoint (format {CHECKPOINT_FORMAT})")
    return payload


@dataclass(frozen=True)
class RunInfo:
    """A training run folder as listed for a user (e.g. a GUI model picker).

    Attributes:
        path: the run folder.
        name: its name.
        network: network name from its settings.
        epochs_done: finished epochs.
        best_epoch: epoch (1-based) of ``best.pt``, or ``None``.
        best_dice: its mean validation Dice, or ``None``.
        has_model: whether ``best.pt`` exists (the run can predict).
    """

    path: Path
    name: str
    network: str
    epochs_done: int
    best_epoch: int | None
    best_dice: float | None
    has_model: bool


def list_runs(dataset_root: str | Path) -> list[RunInfo]:
    """Training runs of a dataset, newest first; folders that are not runs are skipped."""
    root = models_dir(dataset_root)
    if not root.is_dir():
        return []
    runs = []
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        try:
            settings = read_json(folder / SETTINGS_FILE)
        except ModelError:
            continue
        try:
            metrics = read_json(folder / METRICS_FILE)
        except ModelError:
            metrics = {}
        runs.append((folder.stat().st_mtime, RunInfo(
            path=folder, name=folder.name, network=str(settings.get("settings", {}).get("network", "?")),
            epochs_done=len(metrics.get("epochs", [])), best_epoch=metrics.get("best_epoch"),
            best_dice=metrics.get("best_val_mean_dice"), has_model=(folder / BEST_CHECKPOINT).is_file())))
    return [info for _, info in sorted(runs, key=lambda item: (-item[0], item[1].name))]


def latest_run(dataset_root: str | Path) -> Path | None:
    """The run folder whose ``last.pt`` was written most recently, or ``None``."""
    root = models_dir(dataset_root)
    if not root.is_dir():
        return None
    candidates = [p for p in root.iterdir() if (p / LAST_CHECKPOINT).is_file()]
    return max(candidates, key=lambda p: (p / LAST_CHECKPOINT).stat().st_mtime, default=None)
