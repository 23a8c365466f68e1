"""The writable working copies of the bundled datasets (the npe2 sample-data commands that open
them in the review panel are in :mod:`napari_aleatoric.gui.sample`).

The bundled datasets (:mod:`napari_aleatoric.sample_data`) live inside the installed package,
which may be read-only and must stay pristine; scoring and reviewing write ``.aleatoric/`` and
corrected labels beside the data. So every GUI entry point works on a *working copy*:
``$NAPARI_ALEATORIC_DATA/<dataset>`` if that variable is set, else
``<platformdirs user data dir>/napari-aleatoric/samples/<dataset>``. The copy is made once and
then reused (so scores, reviews and corrections persist between sessions); delete it to start over.

No Qt here, and no import of :mod:`napari_aleatoric.gui`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .data.state_layout import STATE_DIR_NAME

#: Environment variable naming the folder that holds the working copies of the sample datasets.
DATA_ENV = "NAPARI_ALEATORIC_DATA"


def samples_home() -> Path:
    """Folder holding the working copies of the bundled sample datasets."""
    override = os.environ.get(DATA_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs  # noqa: PLC0415 (napari depends on it)

    return Path(platformdirs.user_data_dir("napari-aleatoric", appauthor=False)) / "samples"


def bundled_root() -> Path:
    """The folder of the bundled sample datasets inside the installed package."""
    from . import sample_data  # noqa: PLC0415

    return Path(sample_data.__file__).resolve().parent


def is_bundled(path: str | Path) -> bool:
    """Whether ``path`` lies inside the bundled (read-only) sample data."""
    try:
        Path(path).resolve().relative_to(bundled_root())
    except ValueError:
        return False
    return True


def working_copy(name: str, home: str | Path | None = None) -> Path:
    """A writable copy of the bundled dataset ``name`` (see :func:`sample_data.dataset_path`).

    Copied on first use (without any ``.aleatoric`` state folder); later calls return the existing
    copy unchanged. Raises ``KeyError`` / ``FileNotFoundError`` like ``dataset_path``.
    """
    from .sample_data import dataset_path  # noqa: PLC0415

    source = dataset_path(name)
    target = Path(home) if home is not None else samples_home()
    target = target / source.name
    if not (target / "dataset.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial, ignore=shutil.ignore_patterns(STATE_DIR_NAME, "__pycache__"))
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
    return target


def writable_dataset(path: str | Path) -> Path:
    """``path`` itself, or the working copy when ``path`` is a bundled sample dataset."""
    path = Path(path)
    if is_bundled(path) and (path / "dataset.json").is_file():
        return working_copy(path.resolve().name)
    return path

