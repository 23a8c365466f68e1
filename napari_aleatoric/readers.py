"""npe2 reader: medical image / label files, and whole datasets (opened in the review panel).

- A folder containing ``dataset.json`` (nnU-Net v2 raw or Decathlon): the review panel is docked
  in the current viewer and opens the dataset (the layers of the selected case appear there). With
  no viewer (scripted use) the first case's image and annotation are returned as layers.
- A single ``.nii``/``.nii.gz``/``.png``/``.tif``/``.tiff`` file: an image layer, or a labels layer
  when the file lies in a ``labelsTr``/``labelsTs`` folder or holds few integer values. The layer's
  ``scale`` is the voxel spacing (mm) and ``metadata["geometry"]`` keeps the source geometry so the
  writer can save a labels layer back with the same affine and header.

No Qt imports here: the GUI is imported only when a dataset folder is opened in a viewer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data.errors import AleatoricError

FILE_ENDINGS = (".nii.gz", ".nii", ".png", ".tif", ".tiff")
LABEL_FOLDERS = ("labelstr", "labelsts", "labels")
#: an integer file with at most this many distinct values (and max below 2**16) opens as labels
MAX_LABEL_VALUES = 64


def _ending(path: Path) -> str:
    name = path.name.lower()
    return next((e for e in FILE_ENDINGS if name.endswith(e)), "")


def get_reader(path):
    """Return a reader for ``path`` or ``None`` when this plugin cannot read it."""
    if isinstance(path, list):
        if not path or not all(get_reader(p) for p in path):
            return None
        return read_paths
    path = Path(path)
    if path.is_dir():
        return read_paths if (path / "dataset.json").is_file() else None
    return read_paths if _ending(path) else None


def read_paths(paths) -> list:
    """Read one or several paths (see the module docstring); errors become notifications."""
    from napari.utils.notifications import show_error  # noqa: PLC0415 (no Qt)

    layers: list = []
    for path in paths if isinstance(paths, list) else [paths]:
        path = Path(path)
        try:
            layers.extend(read_dataset(path) if path.is_dir() else read_file(path))
        except AleatoricError as error:
            show_error(f"Cannot open {error}")
    return layers or [(None,)]


def looks_like_labels(path: Path, image: np.ndarray, file_dtype: str | None) -> bool:
    """Labels when the file is in a labels folder, or holds few non-negative integer values."""
    if path.parent.name.lower() in LABEL_FOLDERS:
        return True
    if file_dtype is None or np.dtype(file_dtype).kind not in "iub":
        return False
    if image.size == 0 or image.min() < 0 or image.max() >= 2**16:
        return False
    sample = image.ravel()[:: max(1, image.size // 2_000_000)]
    return len(np.unique(sample)) <= MAX_LABEL_VALUES


def read_file(path: Path) -> list:
    """Layer data of one image or label file."""
    from .data import medio  # noqa: PLC0415

    image, geometry = medio.read_image(path)
    name = path.name[: -len(_ending(path))] if _ending(path) else path.stem
    if looks_like_labels(path, image, geometry.file_dtype):
        labels, label_geometry = medio.read_label(path)
        kwargs = {"name": name, "scale": tuple(label_geometry.spacing),
                  "metadata": {"geometry": label_geometry, "source_path": str(path)}}
        return [(labels, kwargs, "labels")]
    kwargs = {"name": name, "scale": tuple(geometry.spacing),
              "metadata": {"geometry": geometry, "source_path": str(path)}}
    return [(image, kwargs, "image")]


def read_dataset(root: Path) -> list:
    """Open a dataset folder in the review panel of the current viewer (or return its first case)."""
    try:
        import napari  # noqa: PLC0415

        viewer = napari.current_viewer()
    except ImportError:  # pragma: no cover - napari is a dependency
        viewer = None
    if viewer is not None:
        from .gui.sample import open_in_viewer  # noqa: PLC0415

        open_in_viewer(viewer, root)
        return [(None,)]
    from .data.dataset import load_case, open_dataset  # noqa: PLC0415

    dataset = open_dataset(root)
    if not dataset.cases:
        return [(None,)]
    case = load_case(dataset, dataset.cases[0])
    scale = tuple(case.geometry.spacing)
    layers = [(case.image, {"name": "image", "scale": scale}, "image")]
    if case.label is not None:
        layers.append((case.label, {"name": "annotation", "scale": scale}, "labels"))
    return layers
