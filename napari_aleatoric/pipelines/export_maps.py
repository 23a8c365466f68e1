"""Export the per-class label-issue maps and the foundation model's segmentation as image files that
overlay the case's image in 3D Slicer, ITK-SNAP, Fiji or any other viewer.

For every scored case, in one folder (never inside the dataset's image or label folders):

================================= ==============================================================
file                              content
================================= ==============================================================
``<case>_<class>_issue.<ext>``    per foreground class, the label-issue map
                                  ``|1[annotation = c] − q_c|``: how strongly the learned
                                  label-quality model disagrees with the annotation of class
                                  ``c`` (the viewer's ``label issue: <class>`` layer); float32 in
                                  ``[0, 1]`` (PNG: uint16 ``0..65535``, see the sidecar)
``<case>_<class>_issue.json``     PNG only: the sidecar saying how to scale the stored values
                                  back to ``[0, 1]`` (``value = stored * scale + offset``)
``<case>_fm_seg.<ext>``           the foundation model's segmentation with the dataset's label
                                  values (the class value of the most probable class where its
                                  p > 0.5, else 0), as the viewer's "FM segmentation" layer
================================= ==============================================================

``<class>`` is the label name from ``dataset.json`` with every character other than letters, digits,
``.``, ``_`` and ``-`` replaced by ``_``. ``<ext>`` follows the case's image: NIfTI → ``.nii.gz``
with the image's affine and header (qform/sform), so the maps sit on the image voxel for voxel;
DICOM series → ``.nii.gz`` with the affine computed for the series (RAS); TIFF → ``.tif`` with the
image's resolution tags and ImageJ metadata (spacing, unit); PNG → ``.png`` (16-bit for the
label-issue maps, with the image's dpi). Every file has the image's own shape and axis order (the
maps are held ``(D, H, W)`` internally; the writers undo the readers' transposition).

Only current maps are exported: a case whose image or annotation changed since it was scored (or
that was never scored) is skipped with the reason, never written from stale maps. Writes are
atomic (:mod:`..data.atomic`). No Qt or napari here: the CLI runs :func:`export_maps` and the
panel can run it in a worker (or :func:`write_case_maps` for the case on screen).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from ..data.atomic import atomic_write_text
from ..data.dataset import Dataset, load_case, open_dataset
from ..data.errors import AleatoricError, CaseError
from ..data.geometry import Geometry
from ..data.medio import write_image
from ..data.oserrors import os_problem
from ..data.state_layout import RESERVED_STATE_FOLDERS
from ..labelquality.assess import load_issue_maps, quality_cache_dir
from .class_maps import fm_segmentation
from .scoring import load_class_maps, maps_cache_dir
from .table import check_cache_dir

#: file-name suffixes (after ``<case>_``) of the exported maps
#: (3D Slicer's Add Data dialog marks a file as a label map when its name holds ``_label_``, ``_labels_``
#: or ``_seg`` as a word: the float label-issue maps must not, the segmentation should)
LABEL_ISSUE_SUFFIX = "issue"
FM_SEGMENTATION_SUFFIX = "fm_seg"
#: a label-issue map ``m`` in ``[0, 1]`` is stored in a PNG as ``round(m * PNG_SCALE)``
PNG_SCALE = 65535
#: export file ending by the image's own ending (DICOM and plain ``.nii`` give ``.nii.gz``)
EXPORT_ENDINGS = {".nii.gz": ".nii.gz", ".nii": ".nii.gz", ".dcm": ".nii.gz", ".tif": ".tif", ".tiff": ".tif",
                  ".png": ".png"}


@dataclass
class CaseMapsExported:
    """Emitted after a case's files are written (``index`` counts from 1 over all cases)."""

    index: int
    total: int
    case_id: str
    files: list[Path]


@dataclass
class CaseMapsSkipped:
    """Emitted for a case that was not exported, with the reason (no current maps, unreadable...)."""

    index: int
    total: int
    case_id: str
    reason: str


@dataclass
class MapsExportFinished:
    """Emitted last.

    Attributes:
        out_dir: the export folder (absolute).
        files: every file written, in case order.
        exported: the cases exported.
        skipped: case id → why it was not exported.
        seconds: wall time of the export.
    """

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


ExportEvent = CaseMapsExported | CaseMapsSkipped | MapsExportFinished


def file_part(name: str) -> str:
    """``name`` made safe for a file name: runs of characters other than letters, digits, ``.``,
    ``_`` and ``-`` become ``_`` (``"left kidney"`` → ``"left_kidney"``); never starts with a dot."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    return "_" + safe[1:] if safe.startswith(".") else (safe or "_")


def export_ending(geometry: Geometry) -> str:
    """The file ending the maps of an image with ``geometry`` are written with (see :data:`EXPORT_ENDINGS`)."""
    ending = geometry.source_format.lower()
    if ending not in EXPORT_ENDINGS:
        raise ValueError(f"cannot export maps for an image of type {geometry.source_format!r}")
    return EXPORT_ENDINGS[ending]


def export_paths(out_dir: str | Path, case_id: str, class_names: list[str], ending: str) -> tuple[list[Path], Path]:
    """``([<case>_<class>_issue<ending> per class], <case>_fm_seg<ending>)`` in ``out_dir``."""
    out_dir = Path(out_dir)
    issues = [out_dir / f"{case_id}_{file_part(name)}_{LABEL_ISSUE_SUFFIX}{ending}" for name in class_names]
    return issues, out_dir / f"{case_id}_{FM_SEGMENTATION_SUFFIX}{ending}"


def check_export_dir(dataset: Dataset, out_dir: str | Path) -> Path:
    """Check the export folder and create it; returns it as an absolute path.

    Refused inside the dataset folder itself (its top level), inside any folder that holds a case's
    image or label files (``imagesTr``, ``labelsTr``, ``imagesTs``, a Decathlon dataset's folders)
    and inside ``.aleatoric``'s ``originals/``, ``revisions/``, ``cache/`` and ``models/``. A new
    subfolder of the dataset (``<dataset>/maps``) or any folder outside it is fine.

    Raises:
        AleatoricError: naming ``out_dir``, when it is refused, is a file, or cannot be created.
    """
    folder = Path(out_dir).expanduser().absolute()
    resolved = folder.resolve()
    root = dataset.root.resolve()
    case_folders = {path.parent.resolve() for ref in (*dataset.cases, *dataset.test_cases)
                    for path in (*ref.image_paths, *((ref.label_path,) if ref.label_path is not None else ()))}
    for case_folder in sorted(case_folders):
        if resolved.is_relative_to(case_folder):
            raise AleatoricError(folder, f"is inside {case_folder}, which holds the dataset's images or labels; "
                                 "export the maps to another folder (e.g. a new folder outside the dataset); "
                                 "nothing was written")
    if resolved == root:
        raise AleatoricError(folder, "is the dataset folder itself; export the maps to a subfolder (e.g. "
                             f"{root / 'maps'}) or outside the dataset; nothing was written")
    if resolved.is_relative_to(dataset.state_dir.resolve()):
        parts = resolved.relative_to(dataset.state_dir.resolve()).parts
        if parts and parts[0] in RESERVED_STATE_FOLDERS:
            raise AleatoricError(folder, f"is inside {dataset.state_dir / parts[0]}, which the plugin manages; "
                                 "export the maps to another folder; nothing was written")
    if folder.exists() and not folder.is_dir():
        raise AleatoricError(folder, "is a file; the maps are exported to a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AleatoricError(folder, f"cannot create the export folder: {os_problem(error, 'creating it')}") from error
    return folder


def _export_geometry(geometry: Geometry, dtype: str, description: str, value_range: tuple[float, float],
                     intent: str) -> Geometry:
    """The image's geometry for writing a map: the map's dtype, a NIfTI header describing the map
    (description, display range, intent; affine, qform/sform and zooms unchanged), a grayscale PNG
    (not the image's palette)."""
    header = geometry.header
    if header is not None and hasattr(header, "set_intent"):  # a NIfTI header
        header = header.copy()
        header["descrip"] = f"{description} (napari-aleatoric)".encode("ascii", "replace")[:79]
        header["cal_min"], header["cal_max"] = value_range
        header["aux_file"] = b""
        header.set_intent(intent)
    extra = {k: v for k, v in geometry.extra.items() if k not in ("palette", "png_mode")}
    extra["role"] = "image"
    return replace(geometry, file_dtype=dtype, header=header, extra=extra)


def _png_sidecar(path: Path, case_id: str, class_name: str, class_value: int) -> Path:
    sidecar = path.with_suffix(".json")
    atomic_write_text(sidecar, json.dumps({
        "file": path.name, "case": case_id, "class": class_name, "label_value": class_value,
        "map": "label issue |1[annotation = class] - q_class| of the learned label-quality model",
        "stored": "uint16", "scale": 1.0 / PNG_SCALE, "offset": 0.0,
        "value": f"stored * scale + offset, in [0, 1] (stored = round(value * {PNG_SCALE}))",
        "range": [0.0, 1.0]}, indent=2) + "\n")
    return sidecar


def write_case_maps(out_dir: str | Path, case_id: str, image_geometry: Geometry, image_shape: tuple[int, ...],
                    class_names: list[str], class_values: list[int], *, issue_maps: np.ndarray | None = None,
                    segmentation: np.ndarray | None = None) -> list[Path]:
    """Write one case's maps on its image's geometry (the writer the panel can call for a shown case).

    Args:
        out_dir: an existing folder checked with :func:`check_export_dir`.
        case_id: the case (the files' prefix).
        image_geometry: the geometry :func:`~napari_aleatoric.data.medio.read_image` returned for the
            case's image (``Case.image_geometry``).
        image_shape: the image as loaded, ``(H, W)`` or ``(D, H, W)`` (napari order).
        class_names / class_values: the foreground classes in the maps' class order.
        issue_maps: ``(C, D, H, W)`` (``D = 1`` in 2D) or ``(C, *image_shape)`` label-issue maps in
            ``[0, 1]`` (the cached float16 maps), or ``None`` to write none.
        segmentation: ``image_shape`` (or ``(1, H, W)`` in 2D) integer label map with the dataset's
            values (:func:`~napari_aleatoric.pipelines.class_maps.fm_segmentation`), or ``None``.

    Returns:
        The files written (see the module's table for names and contents).

    Raises:
        CaseError: naming the file, when a map cannot be stored in the image's format (e.g. a
            label value above 65535 for a PNG). Files written before it stay.
        ValueError: the maps do not fit the classes, two class names give the same file name, or
            the image's format has no export format.
        OSError: the folder cannot be written (full disk, permissions).
    """
    ending = export_ending(image_geometry)
    issue_paths, segmentation_path = export_paths(out_dir, case_id, class_names, ending)
    if len(set(issue_paths)) < len(issue_paths):
        raise ValueError(f"class names {class_names} give the same file name once made safe for file names")
    image_shape = tuple(image_shape)
    written: list[Path] = []
    if issue_maps is not None:
        if issue_maps.shape[0] != len(class_names):
            raise ValueError(f"{issue_maps.shape[0]} label-issue maps for {len(class_names)} classes")
        dtype = "uint16" if ending == ".png" else "float32"
        for path, name, value, values in zip(issue_paths, class_names, class_values, issue_maps):
            data = np.clip(np.asarray(values, dtype=np.float32).reshape(image_shape), 0.0, 1.0)
            if ending == ".png":
                data = np.round(data * PNG_SCALE).astype(np.uint16)
            write_image(path, data, _export_geometry(image_geometry, dtype, f"label issue: {name}", (0.0, 1.0), "none"))
            written.append(path)
            if ending == ".png":
                written.append(_png_sidecar(path, case_id, name, value))
    if segmentation is not None:
        labels = np.asarray(segmentation).reshape(image_shape)
        top = int(max(class_values, default=0))
        dtype = "uint8" if top < 256 else "uint16" if top < 65536 else "int32"
        geometry = _export_geometry(image_geometry, dtype, "FM segmentation", (0.0, float(top)), "label")
        write_image(segmentation_path, labels.astype(dtype, copy=False), geometry)
        written.append(segmentation_path)
    return written


def _current_maps(ds: Dataset, case_id: str, model_name: str, input_mode: str, names: list[str],
                  ) -> tuple[Geometry, tuple[int, ...], np.ndarray, np.ndarray]:
    """``(image geometry, image shape, issue maps, segmentation)`` of a case whose maps are current.

    Raises:
        CaseError: why it cannot be exported (naming the file when one cannot be read).
    """
    ref = ds.case(case_id)
    if ref.label_path is None:
        raise CaseError(None, "has no annotation (a test case): only scored training cases have "
                        "label-issue maps")
    case = load_case(ds, ref)
    values = [ds.foreground[n] for n in names]
    issue_maps = load_issue_maps(ds, case_id, model_name, case.image, case.label)
    entry = load_class_maps(ds, case_id, model_name, input_mode, case.image, case.label)
    missing = (("label-issue maps; label quality needs at least 4 scored cases", issue_maps, quality_cache_dir(ds)),
               ("foundation-model maps", entry, maps_cache_dir(ds)))
    for what, maps, cache in missing:
        if maps is not None:
            continue
        if not (cache / f"{case_id}.npz").is_file():
            raise CaseError(None, f"not scored (no {what}): score the dataset first")
        raise CaseError(None, f"its maps are out of date: the image or annotation changed since it was "
                        f"scored (or it was scored with another model than {model_name}); stale maps are not "
                        "exported: score again")
    probabilities = entry[0].get("probabilities")
    stored_names = list(entry[1].get("names") or names)
    if issue_maps.shape[0] != len(names) or probabilities is None or stored_names != names:
        raise CaseError(None, "its maps were computed for other classes than dataset.json declares now: "
                        "score again")
    return case.image_geometry, tuple(case.image.shape), issue_maps, fm_segmentation(probabilities, values)


def export_maps(
    dataset: str | Path | Dataset,
    out_dir: str | Path,
    model_name: str,
    input_mode: str = "raw",
    *,
    case_ids: list[str] | None = None,
    cache_dir: str | Path | None = None,
) -> Iterator[ExportEvent]:
    """Export every scored case's label-issue maps and FM segmentation to ``out_dir``.

    Args:
        dataset: dataset folder or an opened :class:`Dataset`.
        out_dir: export folder (created; refused inside the dataset's image or label folders, see
            :func:`check_export_dir`). Files of an earlier export there are replaced.
        model_name: the model identity the dataset was scored with (``scores.json`` ``settings.model``,
            e.g. ``"litemedsam@<sha8>"``, ``"tiny@seed0"``): the caches are keyed by it.
        input_mode: the scoring's ``input_mode`` (``"raw"`` or ``"masknorm"``).
        case_ids: export only these cases (default: every labelled training case).
        cache_dir: the caches' folder if scoring used ``--cache DIR``.

    Yields:
        :class:`CaseMapsExported` or :class:`CaseMapsSkipped` per case, then one
        :class:`MapsExportFinished` listing the files written and the skipped cases with reasons.

    Raises:
        DatasetError: the dataset cannot be opened.
        AleatoricError: ``out_dir`` is refused or cannot be created (before anything is written).
        OSError: a file cannot be written (full disk, permissions); the files written so far stay.
    """
    started = time.perf_counter()
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    if cache_dir is not None:
        ds = replace(ds, cache_root=check_cache_dir(ds.root, cache_dir))
    folder = check_export_dir(ds, out_dir)
    names = list(ds.foreground)
    values = [ds.foreground[n] for n in names]
    wanted = list(case_ids) if case_ids is not None else [ref.case_id for ref in ds.cases]
    finished = MapsExportFinished(folder)
    owner: dict[Path, str] = {}
    for index, case_id in enumerate(wanted, start=1):
        try:
            geometry, shape, issue_maps, segmentation = _current_maps(ds, case_id, model_name, input_mode, names)
            issue_paths, segmentation_path = export_paths(folder, case_id, names, export_ending(geometry))
            clash = next((owner[p] for p in (*issue_paths, segmentation_path) if p in owner), None)
            if clash is not None:
                raise CaseError(None, f"its file names are those of case {clash!r} (case and class "
                                "names joined by '_' are ambiguous); export it on its own")
            files = write_case_maps(folder, case_id, geometry, shape, names, values, issue_maps=issue_maps,
                                    segmentation=segmentation)
        except (CaseError, ValueError) as error:
            reason = str(error)
            finished.skipped[case_id] = reason
            yield CaseMapsSkipped(index, len(wanted), case_id, reason)
            continue
        owner.update({p: case_id for p in (*issue_paths, segmentation_path)})
        finished.files += files
        finished.exported.append(case_id)
        yield CaseMapsExported(index, len(wanted), case_id, files)
    finished.seconds = time.perf_counter() - started
    yield finished
