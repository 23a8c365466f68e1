"""Datasets on disk: nnU-Net v2 raw folders and Medical Segmentation Decathlon (MSD) folders.

nnU-Net v2 raw (``dataset.json`` with ``channel_names``, ``labels`` name->value, ``file_ending``,
``numTraining``): training cases are found as ``imagesTr/<case>_0000<file_ending>`` with labels
``labelsTr/<case><file_ending>`` (when that file is missing, ``labelsTr/<case>`` with another
label ending is used, e.g. NIfTI labels beside DICOM images); channel ``c`` of a case is
``imagesTr/<case>_<cccc><file_ending>``. Test cases come from ``imagesTs/`` (no labels). A DICOM
series is a folder ``<case>_0000<file_ending>`` or ``<case>_0000``.

Decathlon (``dataset.json`` with a ``training`` list of ``{"image": ..., "label": ...}`` paths,
``labels`` value->name, ``modality``, optional ``test`` list): multi-modal images are 4D NIfTI files
with the modality on the fourth axis.

Multi-channel cases: only channel 0 is loaded (``Case.image``); the other channels are checked by
:func:`validate_case_files` but not read. Dot-files (including the ``.aleatoric`` state folder)
are never listed. Nothing here writes to the dataset folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from .atomic import full_suffix
from .errors import AleatoricError, CaseError, DatasetError
from .formats import ENDINGS, LABEL_ENDINGS, ImageInfo, detect_format
from .geometry import Geometry
from .medio import probe, read_image, read_label
from .state_layout import STATE_DIR_NAME, cache_dir, state_dir

__all__ = ["CaseRef", "Dataset", "Case", "open_dataset", "validate_case_files", "validate_dataset",
           "load_case", "STATE_DIR_NAME", "check_declared_values", "declared_labels", "undeclared_values"]


#: relative tolerance on spacing (mm) between an image and its label
SPACING_RTOL = 1e-3
#: tolerances on the NIfTI affines of an image and its label (mm and direction cosines)
AFFINE_RTOL, AFFINE_ATOL = 1e-4, 1e-3
#: label names that are not classes to score (nnU-Net's "ignore" label marks unannotated voxels)
NOT_FOREGROUND = frozenset({"background", "ignore"})


@dataclass(frozen=True)
class CaseRef:
    """Where one case's files are.

    Attributes:
        case_id: the case identifier (file name without channel suffix and ending).
        image_paths: one path per channel (channel 0 first); a DICOM series is a folder.
        label_path: the label file, or ``None`` for test cases.
    """

    case_id: str
    image_paths: tuple[Path, ...]
    label_path: Path | None


@dataclass
class Dataset:
    """An opened dataset (only ``dataset.json`` and folder listings are read).

    Attributes:
        root: absolute, resolved dataset folder.
        name: ``dataset.json``'s ``name`` or the folder name.
        labels: label name -> value, background (0) included.
        modality: name of channel 0 (``"CT"``, ``"MRI"``, ``"T2"``...).
        file_ending: image file ending (``".nii.gz"``, ``".png"``...).
        cases: training cases (with labels), sorted by ``case_id``.
        test_cases: cases without labels (``imagesTs`` / ``test``).
        layout: ``"nnunet"`` or ``"msd"``.
        channel_names: channel index -> name.
        warnings: harmless oddities found while opening (ignored files, count mismatches...).
        cache_root: folder for scoring's caches instead of ``.aleatoric/cache`` (see :attr:`cache_dir`).
    """

    root: Path
    name: str
    labels: dict[str, int]
    modality: str
    file_ending: str
    cases: list[CaseRef]
    test_cases: list[CaseRef] = field(default_factory=list)
    layout: str = "nnunet"
    channel_names: dict[int, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cache_root: Path | None = None

    @property
    def cache_dir(self) -> Path:
        """Where scoring keeps its caches: ``cache_root`` if set (a read-only dataset scored with
        ``--cache DIR``), else ``<root>/.aleatoric/cache``."""
        return Path(self.cache_root) if self.cache_root is not None else cache_dir(self.state_dir)

    @property
    def foreground(self) -> dict[str, int]:
        """Label name -> value of the classes to score: all labels except value 0 (background)
        and nnU-Net's ``"ignore"`` label."""
        return {n: v for n, v in self.labels.items() if v != 0 and n.lower() not in NOT_FOREGROUND}

    @property
    def label_names(self) -> dict[int, str]:
        """Label value -> name."""
        return {v: n for n, v in self.labels.items()}

    @property
    def state_dir(self) -> Path:
        """``<root>/.aleatoric``, where the project keeps its own state (not created here)."""
        return state_dir(self.root)

    @property
    def num_channels(self) -> int:
        """Number of image channels declared in ``dataset.json``."""
        return max(1, len(self.channel_names))

    def case(self, case_id: str) -> CaseRef:
        """The training or test case called ``case_id``; raises :class:`CaseError` if unknown."""
        for ref in (*self.cases, *self.test_cases):
            if ref.case_id == case_id:
                return ref
        raise CaseError(self.root, f"no case {case_id!r} in dataset {self.name!r}")


@dataclass
class Case:
    """One loaded case.

    Attributes:
        ref: where it came from.
        image: float32 ``(H, W)`` or ``(D, H, W)`` (channel 0), intensity in file units (HU for CT).
        label: integer array of the same shape, or ``None`` for a test case.
        geometry: geometry of the label (of the image when there is no label); spacing in mm.
        image_geometry: geometry of the image.
    """

    ref: CaseRef
    image: np.ndarray
    label: np.ndarray | None
    geometry: Geometry
    image_geometry: Geometry | None = None

    @property
    def case_id(self) -> str:
        return self.ref.case_id

    @property
    def spacing(self) -> tuple[float, ...]:
        """mm per array axis."""
        return self.geometry.spacing


# ------------------------------------------------------------------------------ dataset.json

def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(path, "dataset.json is missing")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"dataset.json is not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(path, f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise DatasetError(path, "JSON nested too deeply to be read (damaged or not a dataset.json)") from exc
    except OSError as exc:
        raise DatasetError(path, f"cannot read dataset.json: {exc}") from exc
    if not isinstance(meta, dict):
        raise DatasetError(path, f"dataset.json must hold a JSON object, not {type(meta).__name__}")
    return meta


def _int_key(js: Path, key, where: str) -> int:
    if isinstance(key, bool):
        raise DatasetError(js, f"{where}: {key!r} is not an integer")
    if isinstance(key, int):
        return key
    if isinstance(key, str) and re.fullmatch(r"\s*\d+\s*", key):
        return int(key)
    raise DatasetError(js, f"{where}: {key!r} is not a non-negative integer")


def _parse_labels(js: Path, raw, warnings: list[str]) -> dict[str, int]:
    """``labels`` as name -> value, from either name->value (nnU-Net v2) or value->name (MSD)."""
    if raw is None:
        raise DatasetError(js, "missing key 'labels'")
    if not isinstance(raw, dict) or not raw:
        raise DatasetError(js, "'labels' must be a non-empty object")
    labels: dict[str, int] = {}
    if all(isinstance(v, str) for v in raw.values()):  # value -> name
        for key, name in raw.items():
            value = _int_key(js, key, "'labels' key")
            if name in labels:
                raise DatasetError(js, f"label name {name!r} is used for values {labels[name]} and {value}")
            labels[name] = value
    else:  # name -> value
        for name, value in raw.items():
            if isinstance(value, (list, tuple)):
                raise DatasetError(js, f"region-based labels are not supported ({name!r}: {value})")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DatasetError(js, f"label {name!r} has value {value!r}; expected a non-negative integer")
            labels[name] = value
    by_value: dict[int, str] = {}
    for name, value in labels.items():
        if value in by_value:
            raise DatasetError(js, f"label value {value} is used by both {by_value[value]!r} and {name!r}")
        by_value[value] = name
    if 0 not in by_value:
        labels = {"background": 0, **labels}
        warnings.append("dataset.json declares no label with value 0; added 'background': 0")
    return dict(sorted(labels.items(), key=lambda kv: kv[1]))


def _parse_channels(js: Path, meta: dict, keys: tuple[str, ...]) -> dict[int, str]:
    for key in keys:
        raw = meta.get(key)
        if raw is None:
            continue
        if isinstance(raw, str):
            return {0: raw}
        if not isinstance(raw, dict) or not raw:
            raise DatasetError(js, f"'{key}' must be a non-empty object like {{\"0\": \"CT\"}}")
        channels = {_int_key(js, k, f"'{key}' key"): str(v) for k, v in raw.items()}
        if sorted(channels) != list(range(len(channels))):
            raise DatasetError(js, f"'{key}' keys must be 0..{len(channels) - 1}, got {sorted(channels)}")
        return dict(sorted(channels.items()))
    raise DatasetError(js, f"missing key '{keys[0]}'")


def _safe_relative(root: Path, js: Path, value, where: str) -> Path:
    """``root / value`` for a relative path from dataset.json; refuses absolute paths and ``..``.

    (Symbolic links that escape the root are refused when the case is validated or loaded.)
    """
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(js, f"{where}: expected a relative path string, got {value!r}")
    if "\0" in value:
        raise DatasetError(js, f"{where}: path {value!r} contains a NUL character; refused")
    posix, windows = PurePosixPath(value), PureWindowsPath(value)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise DatasetError(js, f"{where}: absolute path '{value}' refused; paths must be inside the dataset folder")
    if ".." in posix.parts or ".." in windows.parts:
        raise DatasetError(js, f"{where}: path '{value}' leaves the dataset folder ('..'); refused")
    return root.joinpath(*[p for p in posix.parts if p not in (".", "")])


# --------------------------------------------------------------------------- nnU-Net layout

def _strip_ending(name: str, ending: str) -> str | None:
    return name[: -len(ending)] if ending and name.endswith(ending) else (name if not ending else None)


def _discover(folder: Path, ending: str, n_channels: int, warnings: list[str]) -> list[tuple[str, tuple[Path, ...]]]:
    """(case_id, channel paths) for ``<case>_0000<ending>`` entries (files or DICOM folders)."""
    found: dict[str, tuple[Path, ...]] = {}
    channel_re = re.compile(r"_(\d{4})$")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name.startswith("."):
            continue
        stem, suffix = _strip_ending(name, ending), ending
        if stem is None and entry.is_dir():  # DICOM series folder named <case>_0000
            stem, suffix = name, ""
        match = channel_re.search(stem) if stem is not None else None
        if match is None:
            warnings.append(f"ignored {folder.name}/{name}: not named <case>_0000{ending}")
            continue
        if match.group(1) != "0000":
            continue  # another channel of a case, picked up from its channel 0
        case_id = stem[: match.start()]
        if not case_id:
            warnings.append(f"ignored {folder.name}/{name}: empty case identifier")
            continue
        found[case_id] = tuple(folder / f"{case_id}_{c:04d}{suffix}" for c in range(n_channels))
    return sorted(found.items())


def _label_path(folder: Path, case_id: str, ending: str) -> Path:
    exact = folder / f"{case_id}{ending}"
    if exact.exists():
        return exact
    for other in LABEL_ENDINGS:
        candidate = folder / f"{case_id}{other}"
        if candidate.is_file():
            return candidate
    return exact if ending.lower() in LABEL_ENDINGS else folder / f"{case_id}.nii.gz"


def _open_nnunet(root: Path, js: Path, meta: dict) -> Dataset:
    warnings: list[str] = []
    channels = _parse_channels(js, meta, ("channel_names", "modality"))
    labels = _parse_labels(js, meta.get("labels"), warnings)
    ending = meta.get("file_ending")
    if ending is None:
        raise DatasetError(js, "missing key 'file_ending'")
    if not isinstance(ending, str) or not ending.startswith(".") or ending.lower() not in ENDINGS:
        raise DatasetError(js, f"'file_ending' {ending!r} is not supported (use one of {', '.join(ENDINGS)})")
    images_tr = root / "imagesTr"
    if not images_tr.is_dir():
        raise DatasetError(images_tr, "imagesTr folder is missing")
    labels_tr = root / "labelsTr"
    if not labels_tr.is_dir():
        warnings.append("labelsTr folder is missing: every training case lacks its label")
    cases = [CaseRef(cid, paths, _label_path(labels_tr, cid, ending))
             for cid, paths in _discover(images_tr, ending, len(channels), warnings)]
    if not cases:
        raise DatasetError(images_tr, f"no training cases found (expected files named <case>_0000{ending})")
    test_cases: list[CaseRef] = []
    if (root / "imagesTs").is_dir():
        test_cases = [CaseRef(cid, paths, None)
                      for cid, paths in _discover(root / "imagesTs", ending, len(channels), warnings)]
    num = meta.get("numTraining")
    if num is not None and num != len(cases):
        warnings.append(f"numTraining is {num} but {len(cases)} training cases were found")
    return Dataset(root=root, name=str(meta.get("name") or root.name), labels=labels, modality=channels[0],
                   file_ending=ending, cases=cases, test_cases=test_cases, layout="nnunet",
                   channel_names=channels, warnings=warnings)


# ------------------------------------------------------------------------------- MSD layout

def _case_id_from(path: Path) -> str:
    suffix = full_suffix(path)
    return path.name[: -len(suffix)] if suffix and suffix.lower() in ENDINGS else path.name


def _open_msd(root: Path, js: Path, meta: dict) -> Dataset:
    warnings: list[str] = []
    channels = _parse_channels(js, meta, ("modality", "channel_names"))
    labels = _parse_labels(js, meta.get("labels"), warnings)
    cases: list[CaseRef] = []
    for i, entry in enumerate(meta["training"]):
        where = f"training[{i}]"
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            raise DatasetError(js, f"{where} must be an object with 'image' and 'label' paths, got {entry!r}")
        image = _safe_relative(root, js, entry["image"], f"{where}.image")
        label = _safe_relative(root, js, entry["label"], f"{where}.label")
        cases.append(CaseRef(_case_id_from(image), (image,), label))
    if not cases:
        raise DatasetError(js, "'training' lists no cases")
    test_cases: list[CaseRef] = []
    raw_test = meta.get("test", [])
    if not isinstance(raw_test, list):
        raise DatasetError(js, "'test' must be a list of image paths")
    for i, entry in enumerate(raw_test):
        value = entry.get("image") if isinstance(entry, dict) else entry
        image = _safe_relative(root, js, value, f"test[{i}]")
        test_cases.append(CaseRef(_case_id_from(image), (image,), None))
    seen: set[str] = set()
    for ref in (*cases, *test_cases):
        if ref.case_id in seen:
            raise DatasetError(js, f"case {ref.case_id!r} is listed twice")
        seen.add(ref.case_id)
    num = meta.get("numTraining")
    if num is not None and num != len(cases):
        warnings.append(f"numTraining is {num} but 'training' lists {len(cases)} cases")
    ending = full_suffix(cases[0].image_paths[0]) or ".dcm"
    return Dataset(root=root, name=str(meta.get("name") or root.name), labels=labels, modality=channels[0],
                   file_ending=ending, cases=sorted(cases, key=lambda r: r.case_id),
                   test_cases=sorted(test_cases, key=lambda r: r.case_id), layout="msd",
                   channel_names=channels, warnings=warnings)


def open_dataset(root: str | Path) -> Dataset:
    """Open an nnU-Net v2 raw or Decathlon dataset folder.

    Reads ``dataset.json`` and lists the image folders; no image is opened and nothing is written.

    Raises:
        DatasetError: missing folder or ``dataset.json``, invalid JSON, missing or malformed keys,
            region-based labels, paths outside the folder, or no training cases.
    """
    root = Path(root)
    try:
        if not root.exists():
            raise DatasetError(root, "dataset folder does not exist")
        if not root.is_dir():
            raise DatasetError(root, "not a folder")
        root = root.resolve()
        js = root / "dataset.json"
        meta = _read_json(js)
        if "training" in meta:
            if not isinstance(meta["training"], list):
                raise DatasetError(js, "'training' must be a list of {\"image\": ..., \"label\": ...} objects")
            return _open_msd(root, js, meta)
        return _open_nnunet(root, js, meta)
    except OSError as exc:  # an unreadable folder (permissions), an I/O error while listing
        from .oserrors import as_aleatoric_error  # noqa: PLC0415

        error = as_aleatoric_error(exc, root, "reading the dataset folder")
        raise DatasetError(error.path, error.problem) from exc


# ------------------------------------------------------------------------ validation/loading

def _check_inside(ds: Dataset, path: Path) -> None:
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, NUL characters
        raise CaseError(path, f"cannot resolve path: {exc}") from exc
    if not resolved.is_relative_to(ds.root):
        raise CaseError(path, f"resolves outside the dataset folder (to {resolved}); refused")


def _image_channel(ds: Dataset) -> int | None:
    """Channel to take from a 4D image: Decathlon multi-modal files hold channels on axis 4."""
    return 0 if ds.layout == "msd" and ds.num_channels > 1 else None


def image_channel(ds: Dataset) -> int | None:
    """The channel :func:`load_case` reads from a 4D image file (Decathlon multi-modal), else ``None``."""
    return _image_channel(ds)


def _compare(image_path: Path, image: ImageInfo, label_path: Path, label: ImageInfo) -> None:
    """Raise CaseError (naming the label file) if image and label do not overlay voxel for voxel."""
    if tuple(image.shape) != tuple(label.shape):
        raise CaseError(label_path, f"label shape {tuple(label.shape)} does not match image shape "
                        f"{tuple(image.shape)} of {image_path.name}")
    if not np.allclose(image.spacing, label.spacing, rtol=SPACING_RTOL, atol=1e-6):
        fmt = lambda s: "(" + ", ".join(f"{v:.4g}" for v in s) + ")"  # noqa: E731
        raise CaseError(label_path, f"label spacing {fmt(label.spacing)} mm does not match image spacing "
                        f"{fmt(image.spacing)} mm of {image_path.name}")
    if image.affine is not None and label.affine is not None and image.format == label.format == "nifti":
        if not np.allclose(image.affine, label.affine, rtol=AFFINE_RTOL, atol=AFFINE_ATOL):
            raise CaseError(label_path, f"label orientation/origin (affine) differs from {image_path.name}")


def _check_names_are_text(ds: Dataset, ref: CaseRef) -> None:
    """File names that are not valid UTF-8 (undecodable bytes) cannot be recorded in the review
    store, the scores or a training run: refuse the case with a message naming the file."""
    for path in (*ref.image_paths, *((ref.label_path,) if ref.label_path is not None else ())):
        try:
            str(path.relative_to(ds.root) if path.is_relative_to(ds.root) else path).encode("utf-8")
        except UnicodeEncodeError:
            raise CaseError(path, "file name is not valid UTF-8 text (undecodable bytes); rename the file") from None


def _check_files_exist(ds: Dataset, ref: CaseRef) -> None:
    _check_names_are_text(ds, ref)
    for i, path in enumerate(ref.image_paths):
        _check_inside(ds, path)
        if not path.exists():
            raise CaseError(path, f"image file of case {ref.case_id!r} (channel {i}) is missing")
    if ref.label_path is not None:
        _check_inside(ds, ref.label_path)
        if not ref.label_path.exists():
            raise CaseError(ref.label_path, f"label file of case {ref.case_id!r} is missing")
        if detect_format(ref.label_path) == "dicom":
            raise CaseError(ref.label_path, "DICOM labels are not supported; store labels as NIfTI, PNG or TIFF")


def validate_case_files(ds: Dataset, ref: CaseRef) -> None:
    """Cheap checks of one case from file headers (no voxel data decoded where avoidable).

    Checks that every file is inside the dataset folder and exists, that headers are readable and
    2D/3D, that all channels and the label have the same shape, and that the label's spacing (and
    NIfTI affine) agree with the image. Raises :class:`CaseError` naming the file and the problem.
    """
    _check_files_exist(ds, ref)
    channel = _image_channel(ds)
    first = probe(ref.image_paths[0], channel=channel)
    for i, path in enumerate(ref.image_paths[1:], start=1):
        other = probe(path, channel=channel)
        if tuple(other.shape) != tuple(first.shape):
            raise CaseError(path, f"channel {i} shape {tuple(other.shape)} does not match channel 0 "
                            f"shape {tuple(first.shape)}")
    if ref.label_path is not None:
        _compare(ref.image_paths[0], first, ref.label_path, probe(ref.label_path))


def validate_dataset(ds: Dataset, *, include_test: bool = True) -> list[CaseError]:
    """Run :func:`validate_case_files` over every case; return the problems (never raises for a case)."""
    problems: list[CaseError] = []
    for ref in (*ds.cases, *(ds.test_cases if include_test else ())):
        try:
            validate_case_files(ds, ref)
        except CaseError as exc:
            problems.append(exc)
        except AleatoricError as exc:
            problems.append(CaseError(exc.path or ref.image_paths[0], exc.problem))
        except Exception as exc:  # noqa: BLE001 - one broken case must not stop the scan
            problems.append(CaseError(ref.image_paths[0], f"unexpected error: {type(exc).__name__}: {exc}"))
    return problems


def _present_values(label: np.ndarray) -> np.ndarray:
    if label.size == 0:
        return np.zeros(0, dtype=np.int64)
    hi = int(label.max())
    if hi < 1 << 16:
        return np.flatnonzero(np.bincount(label.ravel(), minlength=hi + 1))
    return np.unique(label)


def load_case(ds: Dataset, ref: CaseRef) -> Case:
    """Load one case: channel 0 of the image (float32) and the label (integer), same shape.

    Raises:
        CaseError: naming the file, for files outside the dataset folder or missing, unreadable
            files, NaN/inf in the image, non-2D/3D arrays, image/label shape or spacing (or NIfTI
            affine) mismatch, and label values not declared in ``dataset.json`` (they are named).
    """
    _check_files_exist(ds, ref)
    image, image_geometry = read_image(ref.image_paths[0], channel=_image_channel(ds))
    if ref.label_path is None:
        return Case(ref, image, None, image_geometry, image_geometry)
    label_path = ref.label_path
    label, geometry = read_label(label_path)
    _compare(ref.image_paths[0], ImageInfo(image.shape, image_geometry.spacing, image_geometry.affine,
                                           "nifti" if image_geometry.header is not None else ""),
             label_path, ImageInfo(label.shape, geometry.spacing, geometry.affine,
                                       "nifti" if geometry.header is not None else ""))
    check_declared_values(label_path, label, ds.labels)
    return Case(ref, image, label, geometry, image_geometry)


def undeclared_values(label: np.ndarray, labels: dict[str, int]) -> list[int]:
    """The values present in ``label`` that ``labels`` (name -> value) does not declare, ascending."""
    declared = set(labels.values())
    label = np.asarray(label)
    integer = np.issubdtype(label.dtype, np.integer) and np.issubdtype(label.dtype, np.unsignedinteger) or \
        (np.issubdtype(label.dtype, np.integer) and (label.size == 0 or int(label.min()) >= 0))
    values = _present_values(label) if integer else np.unique(label)
    return [int(v) for v in values if v not in declared]


def check_declared_values(path: str | Path, label: np.ndarray, labels: dict[str, int], *,
                          action: str = "") -> None:
    """Raise :class:`CaseError` naming ``path`` and the label values ``labels`` does not declare.

    ``action`` is appended to the message (e.g. ``"; nothing was saved"``).
    """
    label = np.asarray(label)
    if label.size and np.issubdtype(label.dtype, np.integer) and int(label.min()) < 0:
        negative = sorted({int(v) for v in np.unique(label[label < 0])})
        raise CaseError(path, f"negative label values {', '.join(map(str, negative[:10]))} are not allowed{action}")
    undeclared = undeclared_values(label, labels)
    if undeclared:
        shown = ", ".join(map(str, undeclared[:10])) + (", ..." if len(undeclared) > 10 else "")
        known = ", ".join(f"{v}={n}" for n, v in labels.items())
        raise CaseError(path, f"label values {shown} are not declared in dataset.json labels "
                        f"(declared: {known}){action}")


def declared_labels(root: str | Path) -> dict[str, int] | None:
    """The labels (name -> value) ``<root>/dataset.json`` declares, or ``None`` without a ``dataset.json``.

    Raises:
        DatasetError: ``dataset.json`` exists but cannot be read or its ``labels`` are malformed.
    """
    js = Path(root) / "dataset.json"
    if not js.is_file():
        return None
    return _parse_labels(js, _read_json(js).get("labels"), [])
