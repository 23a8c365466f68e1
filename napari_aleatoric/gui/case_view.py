"""One case as the review panel shows it: image, annotation, cached model maps, napari layer data.

No Qt here. :func:`load_case_view` runs in a worker thread (reads files); :func:`case_layer_data`
turns the result into napari layer-data tuples ``(data, kwargs, layer_type)`` that the panel adds
to the viewer or uses to update layers of the same name in place.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.arraycache import ArrayCache
from ..data.dataset import Case, Dataset, load_case
from ..labelquality.assess import load_issue_maps
from ..models.preprocess import is_ct, normalise_intensity
from ..pipelines.class_maps import fm_segmentation
from ..session import ScoringSettings  # noqa: F401 (re-exported: the panels import it from here)

IMAGE = "image"
ANNOTATION = "annotation"
FM_SEGMENTATION = "FM segmentation"
UNCERTAINTY_PREFIX = "uncertainty: "
LABEL_ISSUE_PREFIX = "label issue: "
HEATMAP_PREFIXES = (LABEL_ISSUE_PREFIX, UNCERTAINTY_PREFIX)

#: CT display window in HU (soft tissue, as the brief for clinicians asks)
CT_DISPLAY_WINDOW = (-160.0, 240.0)
MR_PERCENTILES = (0.5, 99.5)

#: label colours by class value (value 0 is transparent); chosen to stand apart from 'inferno'
CLASS_COLOURS = [
    "#00bfff",  # deep sky blue
    "#32cd32",  # lime green
    "#ff00ff",  # magenta
    "#ffd700",  # gold
    "#1e90ff",
    "#adff2f",
    "#ff69b4",
    "#00ffff",
    "#ba55d3",
    "#7fffd4",
]


def class_colour(value: int) -> str:
    """Display colour of a label value (value 0 never shown)."""
    return CLASS_COLOURS[(int(value) - 1) % len(CLASS_COLOURS)]


def heatmap_layer_name(class_name: str, kind: str = "label issue") -> str:
    """Name of a class's heatmap layer: ``"label issue: <class>"`` (learned label-issue map) or
    ``"uncertainty: <class>"`` (the model's binary entropy, when label quality did not run)."""
    return f"{kind}: {class_name}"


def is_heatmap_layer(name: str) -> bool:
    """Whether a layer name is one of the per-class heatmap layers."""
    return name.startswith(HEATMAP_PREFIXES)


@dataclass
class CaseView:
    """A loaded case and its model maps, in napari axis order.

    Attributes:
        case: the core :class:`Case` (image, label, label geometry).
        class_names / class_values: foreground classes in dataset order.
        probabilities / heatmaps: ``(C, *image.shape)`` maps as cached (float16), or ``None`` if not
            scored. napari converts the slice it draws; converting whole volumes to float32 when a
            case opens cost time and doubled the memory. ``heatmaps`` are the learned label-issue
            maps where they are current, else the model's binary entropy (``heatmap_kind``).
        heatmap_kind: ``"label issue"`` or ``"uncertainty"``, what ``heatmaps`` hold.
        maps_stale: the heatmaps shown were computed for another image/annotation/model (for
            example before a correction); they are shown but marked as out of date. Label-issue
            maps learned from the annotation as it is now (Refresh priorities) are not.
        fm_stale: the model's maps (``probabilities``: the FM segmentation, and the AUV) were
            computed for another annotation/image; a refresh does not run the model, a scoring does.
        row: the case's score-table row, if scored.
        status: review status from the store.
    """

    case: Case
    class_names: list[str]
    class_values: list[int]
    modality: str
    probabilities: np.ndarray | None = None
    heatmaps: np.ndarray | None = None
    heatmap_kind: str = "uncertainty"
    maps_stale: bool = False
    fm_stale: bool = False
    row: dict | None = None
    status: str = "unreviewed"
    _image01: np.ndarray | None = field(default=None, repr=False)
    _segmentation: np.ndarray | None = field(default=None, repr=False)
    _contrast: tuple[float, float] | None = field(default=None, repr=False)
    _slice_uncertainty: np.ndarray | None = field(default=None, repr=False)

    @property
    def case_id(self) -> str:
        return self.case.case_id

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(float(s) for s in self.case.geometry.spacing)

    @property
    def outdated(self) -> bool:
        """Whether a scoring pass would give this case other maps (heatmaps or the model's)."""
        return self.maps_stale or self.fm_stale

    @property
    def is_3d(self) -> bool:
        return self.case.image.ndim == 3

    def image01(self) -> np.ndarray:
        """The whole case normalised to ``[0, 1]`` as the model sees it (computed once)."""
        if self._image01 is None:
            self._image01 = normalise_intensity(self.case.image, self.modality)
        return self._image01

    def worst_class(self) -> str | None:
        """The class with the highest per-class label issue, else per-class AUV (else the highest
        mean heatmap)."""
        for prefix in ("label_issue_", "auv_"):
            best, best_value = None, -math.inf
            for name in self.class_names:
                value = (self.row or {}).get(f"{prefix}{name}", math.nan)
                if isinstance(value, float) and math.isfinite(value) and value > best_value:
                    best, best_value = name, value
            if best is not None:
                return best
        if self.heatmaps is not None and len(self.class_names):
            return self.class_names[int(np.argmax(self.slice_uncertainty().sum(axis=1)))]
        return self.class_names[0] if self.class_names else None

    def slice_uncertainty(self) -> np.ndarray | None:
        """``(C, D)`` summed uncertainty per class and slice (computed once; ``D`` = 1 in 2D)."""
        if self.heatmaps is None:
            return None
        if self._slice_uncertainty is None:
            maps = self.heatmaps.reshape(len(self.heatmaps), -1, *self.heatmaps.shape[-2:])
            self._slice_uncertainty = maps.sum(axis=(2, 3), dtype=np.float64)
        return self._slice_uncertainty

    def fm_segmentation(self) -> np.ndarray | None:
        """The model's segmentation: class value of the most probable class where its p > 0.5.

        Ties go to the first class (as ``argmax``). Computed once, by
        :func:`~napari_aleatoric.pipelines.class_maps.fm_segmentation` (the map export writes the same).
        """
        if self.probabilities is None:
            return None
        if self._segmentation is None:
            self._segmentation = fm_segmentation(self.probabilities, self.class_values)
        return self._segmentation

    def contrast_limits(self) -> tuple[float, float]:
        """Display contrast of the image (computed once; see :func:`display_contrast`)."""
        if self._contrast is None:
            self._contrast = display_contrast(self.case.image, self.modality)
        return self._contrast

    def prepare_display(self) -> "CaseView":
        """Compute what showing the case needs (segmentation, contrast) now, in the loading thread."""
        self.fm_segmentation()
        self.contrast_limits()
        self.slice_uncertainty()
        return self

    def focus_slice(self) -> int:
        """For volumes, the slice of the largest region whose annotation the label quality
        contradicts (``worst_region_slice`` of the score row, while the maps are current), else the
        slice with the most heat of the worst class, else the one with the most annotation."""
        if not self.is_3d:
            return 0
        region = (self.row or {}).get("worst_region_slice", math.nan)
        if (self.heatmap_kind == "label issue" and not self.maps_stale and isinstance(region, float)
                and math.isfinite(region) and 0 <= region < self.case.image.shape[0]):
            return int(region)
        worst = self.worst_class()
        if self.heatmaps is not None and worst in self.class_names:
            per_slice = self.slice_uncertainty()[self.class_names.index(worst)]
            if per_slice.max() > 0:
                return int(np.argmax(per_slice))
        if self.case.label is not None and self.case.label.any():
            return int(np.argmax((self.case.label > 0).sum(axis=(1, 2))))
        return self.case.image.shape[0] // 2


def _read_npz_unchecked(path: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files if not k.startswith("__")}
            metadata = json.loads(str(npz["__meta__"])) if "__meta__" in npz.files else {}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return arrays, metadata


def read_case_maps(dataset: Dataset, case: Case, settings: ScoringSettings | None
                   ) -> tuple[dict[str, np.ndarray] | None, dict, bool]:
    """The cached maps of a case: ``(arrays or None, metadata, stale)``.

    The entry is checked against the key the scoring pipeline would compute now (same image,
    annotation, model and preprocessing). An entry written for other content is still returned,
    flagged stale, so a reviewer sees the maps that ranked the case.
    """
    from ..pipelines.scoring import load_class_maps, maps_cache_dir  # noqa: PLC0415

    path = ArrayCache(maps_cache_dir(dataset)).path(case.case_id)
    if not path.is_file():
        return None, {}, False
    if settings is not None and settings.model and case.label is not None:
        try:
            entry = load_class_maps(dataset, case.case_id, settings.model, settings.input_mode, case.image, case.label)
        except ValueError:
            entry = None
        if entry is not None:
            return entry[0], entry[1], False
    raw = _read_npz_unchecked(path)
    if raw is None:
        return None, {}, False
    return raw[0], raw[1], settings is not None


def _class_maps(arrays: dict[str, np.ndarray], metadata: dict, names: list[str], shape: tuple[int, ...],
                key: str) -> np.ndarray | None:
    maps = arrays.get(key)
    if maps is None or maps.ndim != 4:
        return None
    stored_names = list(metadata.get("names") or names)
    volume_shape = (1, *shape) if len(shape) == 2 else shape
    if tuple(maps.shape[1:]) != tuple(volume_shape):
        return None
    if stored_names[:len(names)] == names and maps.shape[0] >= len(names):
        return maps[:len(names)].reshape((len(names), *shape))  # as cached: no copy
    out = np.zeros((len(names), *shape), dtype=maps.dtype)
    for c, name in enumerate(names):
        if name in stored_names and stored_names.index(name) < maps.shape[0]:
            out[c] = maps[stored_names.index(name)].reshape(shape)
    return out


def load_case_view(dataset: Dataset, case_id: str, settings: ScoringSettings | None = None,
                   row: dict | None = None, status: str = "unreviewed") -> CaseView:
    """Load a case and its cached maps (runs in a worker thread).

    Raises:
        CaseError: the case's files cannot be read (names the file).
    """
    case = load_case(dataset, dataset.case(case_id))
    names = list(dataset.foreground)
    view = CaseView(case=case, class_names=names, class_values=[dataset.foreground[n] for n in names],
                    modality=dataset.modality, row=row, status=status)
    arrays, metadata, stale = read_case_maps(dataset, case, settings)
    if arrays is not None:
        view.probabilities = _class_maps(arrays, metadata, names, case.image.shape, "probabilities")
        view.heatmaps = _class_maps(arrays, metadata, names, case.image.shape, "heatmaps")
        view.maps_stale = view.fm_stale = stale and view.probabilities is not None
    issue_maps = None
    if settings is not None and settings.model and case.label is not None:
        issue_maps = load_issue_maps(dataset, case_id, settings.model, case.image, case.label)
    if issue_maps is not None and issue_maps.shape[0] == len(names):
        view.heatmaps = issue_maps.reshape((len(names), *case.image.shape))
        view.heatmap_kind = "label issue"
        view.maps_stale = False  # learned from the annotation as it is now
    return view.prepare_display()


def display_contrast(image: np.ndarray, modality: str) -> tuple[float, float]:
    """Contrast limits: the CT window in HU, else the 0.5–99.5 percentiles."""
    if is_ct(modality):
        return CT_DISPLAY_WINDOW
    sample = image.ravel()[:: max(1, image.size // 1_000_000)]
    low, high = (float(v) for v in np.percentile(sample, MR_PERCENTILES))
    if high <= low:
        high = low + 1.0
    return low, high


UNCERTAINTY_COLORMAP = "inferno (transparent low)"


def uncertainty_colormap():
    """'inferno' whose low end fades to transparent: certain pixels leave the image visible.

    Opacity rises linearly from 0 at uncertainty 0 to 1 at uncertainty 2/3 and stays 1 above, so a
    reviewer sees the grey image with doubtful regions glowing orange to yellow on top of it.
    """
    from napari.utils.colormaps import AVAILABLE_COLORMAPS, Colormap  # noqa: PLC0415

    inferno = np.asarray(AVAILABLE_COLORMAPS["inferno"].colors, dtype=np.float32)
    positions = np.linspace(0.0, 1.0, len(inferno))
    colours = inferno.copy()
    colours[:, 3] = np.clip(positions * 1.5, 0.0, 1.0)
    return Colormap(colors=colours, controls=positions, name=UNCERTAINTY_COLORMAP)


def label_colormap(class_values: dict[str, int]):
    """A napari direct label colormap with the class colours (background transparent)."""
    from napari.utils.colormaps import DirectLabelColormap  # noqa: PLC0415

    colours = {None: "transparent", 0: "transparent"}
    colours.update({value: class_colour(value) for value in class_values.values()})
    return DirectLabelColormap(color_dict=colours)


def label_features(labels: dict[str, int]) -> dict:
    """Layer features naming each label value (shown in napari's status bar when hovering)."""
    items = sorted(labels.items(), key=lambda kv: kv[1])
    return {"index": [v for _, v in items], "class": [n for n, _ in items]}


#: annotation drawn as outlines (pixels) so the image and the heatmap stay visible under it
ANNOTATION_CONTOUR = 1


def case_layer_data(view: CaseView, labels: dict[str, int]) -> list[tuple]:
    """napari layer-data tuples for a case, bottom to top.

    ``labels`` is the dataset's full name→value map (background included).
    """
    scale = view.spacing
    image = view.case.image
    layers: list[tuple] = [(image, {"name": IMAGE, "scale": scale, "colormap": "gray",
                                    "contrast_limits": view.contrast_limits(),
                                    "metadata": {"geometry": view.case.image_geometry, "case_id": view.case_id}},
                            "image")]
    worst = view.worst_class()
    if view.heatmaps is not None:
        for c, name in enumerate(view.class_names):
            layers.append((view.heatmaps[c], {
                "name": heatmap_layer_name(name, view.heatmap_kind), "scale": scale, "colormap": uncertainty_colormap(),
                "blending": "translucent", "contrast_limits": (0.0, 1.0), "opacity": 0.75,
                "visible": name == worst,
                "metadata": {"case_id": view.case_id, "class": name, "stale": view.maps_stale}}, "image"))
    colormap = label_colormap({n: v for n, v in labels.items() if v != 0})
    features = label_features(labels)
    segmentation = view.fm_segmentation()
    if segmentation is not None:
        layers.append((segmentation, {"name": FM_SEGMENTATION, "scale": scale, "colormap": colormap,
                                      "features": features, "opacity": 0.8, "visible": False,
                                      "metadata": {"case_id": view.case_id}}, "labels"))
    if view.case.label is not None:
        layers.append((np.array(view.case.label, copy=True), {
            "name": ANNOTATION, "scale": scale, "colormap": colormap, "features": features, "opacity": 0.9,
            "metadata": {"geometry": view.case.geometry, "case_id": view.case_id,
                         "source_path": str(view.case.ref.label_path)}}, "labels"))
    return layers
