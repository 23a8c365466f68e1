"""Where along a volume the label issues are: per-slice issue mass and the "hot" slices.

A 3D case opens on the slice of its worst contradicted region; the reviewer then wants to visit the
other places the maps point at without scrolling through hundreds of slices. :func:`slice_profile`
reads the heatmaps the queue shows (``(C, D, H, W)``: label-issue maps ``|1[label = c] − q_c|``, or
the model's uncertainty before label quality ran) and gives:

- ``mass``: the summed heat of every class on each slice;
- ``contradicted``: per slice, the pixels the label-quality model contradicts, recovered from the
  issue maps and the annotation (:func:`contradicted_from_issue_maps`; only for label-issue maps);
- ``hot``: the slices worth a look, in z order: for each sizeable contradicted region (3D,
  26-connected) the slice of its centre (where :func:`~.regions.wrong_regions` puts the worst
  region, the slice a volume opens on), and the local maxima of the mass profile that
  rise above its median (the heat every slice has) by a share of the highest such excess; slices closer than ``min_gap`` to a more important one are merged
  into it. Region slices come before peaks, bigger regions and higher peaks first.

No Qt here; :func:`next_hot_slice` is what "next / previous hot slice" keys do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .scores import CONTRADICTED_BELOW

#: a contradicted region smaller than this (voxels) is noise, not a hot slice
MIN_REGION_VOXELS = 10
#: nor one smaller than this share of the largest contradicted region
MIN_REGION_SHARE = 0.02
#: at most this many regions give hot slices (the largest)
MAX_REGIONS = 20
#: a local maximum of the mass profile is hot from this share of the profile's highest excess over its median
PEAK_SHARE = 0.25
#: a local maximum is the highest within this many slices on either side
PEAK_WINDOW = 2
#: hot slices closer than this are one place (the more important one is kept)
MIN_GAP = 2


@dataclass
class SliceProfile:
    """The per-slice issue profile of a case (see the module docstring).

    Attributes:
        mass: ``(D,)`` summed heat of all classes per slice.
        contradicted: ``(D,)`` contradicted pixels per slice (zeros when not known).
        hot: hot slice indices, ascending.
    """

    mass: np.ndarray
    contradicted: np.ndarray
    hot: list[int] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return int(len(self.mass))


def contradicted_from_issue_maps(issue_maps: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``(D, H, W)`` bool: pixels whose annotated class the label-quality model contradicts.

    The issue map of class ``c`` is ``1 − q_c`` where the annotation says ``c`` and ``q_c``
    elsewhere, so a pixel drawn as ``c`` is contradicted where its map exceeds ``1 −`` the
    threshold, and a background pixel where the maps' sum (``1 − q_background``) does.

    Args:
        issue_maps: ``(C, D, H, W)`` label-issue maps.
        index: ``(D, H, W)`` class index of the annotation (0 background, ``c + 1`` class ``c``).
    """
    limit = 1.0 - CONTRADICTED_BELOW
    drawn = index > 0
    own = np.take_along_axis(issue_maps, np.clip(index - 1, 0, None)[None].astype(np.intp), axis=0)[0]
    background = issue_maps.sum(axis=0, dtype=np.float32)
    return np.where(drawn, own > limit, background > limit)


def _region_slices(contradicted: np.ndarray, min_voxels: int, min_share: float,
                   max_regions: int) -> list[tuple[int, int]]:
    """``(slice, voxels)`` of the contradicted regions worth a look, each at the slice of its centre
    (as :func:`~.regions.wrong_regions` places the worst region, where a volume opens)."""
    if not contradicted.any():
        return []
    regions, _count = ndimage.label(contradicted, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0
    least = max(min_voxels, int(np.ceil(min_share * sizes.max())))
    keep = [int(i) for i in np.argsort(sizes)[::-1][:max_regions] if sizes[i] >= least]
    centres = ndimage.center_of_mass(contradicted, regions, keep) if keep else []
    return [(int(round(centre[0])), int(sizes[label])) for label, centre in zip(keep, centres)]


def _peaks(mass: np.ndarray, share: float, window: int) -> list[int]:
    """Local maxima of ``mass`` above its median (the heat every slice has) by at least ``share``
    of the highest excess, highest first."""
    if not len(mass):
        return []
    excess = mass - float(np.median(mass))
    if excess.max() <= 0:
        return []
    floor = share * float(excess.max())
    peaks = []
    for z, value in enumerate(excess):
        low, high = max(0, z - window), min(len(mass), z + window + 1)
        if value > 0 and value >= floor and value >= excess[low:high].max():
            peaks.append(z)
    return sorted(peaks, key=lambda z: -mass[z])


def slice_profile(heatmaps: np.ndarray, index: np.ndarray | None = None, *, min_region_voxels: int = MIN_REGION_VOXELS,
                  min_region_share: float = MIN_REGION_SHARE, max_regions: int = MAX_REGIONS,
                  peak_share: float = PEAK_SHARE, peak_window: int = PEAK_WINDOW,
                  min_gap: int = MIN_GAP) -> SliceProfile:
    """The per-slice issue profile of a case (see the module docstring).

    Args:
        heatmaps: ``(C, D, H, W)`` (or ``(C, H, W)`` for a 2D case) maps as shown.
        index: ``(D, H, W)`` class index of the annotation the maps are label-issue maps of, or
            ``None`` (the maps are uncertainty, or out of date: no contradicted regions).
    """
    maps = heatmaps.reshape(len(heatmaps), -1, *heatmaps.shape[-2:])
    mass = maps.sum(axis=(0, 2, 3), dtype=np.float64)
    contradicted_counts = np.zeros(len(mass), dtype=np.int64)
    candidates: list[int] = []
    if index is not None and len(maps):
        contradicted = contradicted_from_issue_maps(maps, index.reshape(maps.shape[1:]))
        contradicted_counts = contradicted.sum(axis=(1, 2)).astype(np.int64)
        candidates += [z for z, _size in _region_slices(contradicted, min_region_voxels, min_region_share,
                                                         max_regions)]
    candidates += _peaks(mass, peak_share, peak_window)
    hot: list[int] = []
    for z in candidates:  # in order of importance
        if all(abs(z - kept) > min_gap for kept in hot):
            hot.append(z)
    return SliceProfile(mass=mass, contradicted=contradicted_counts, hot=sorted(hot))


def next_hot_slice(hot: list[int], current: int, step: int) -> int | None:
    """The first hot slice after ``current`` (``step`` > 0) or before it (``step`` < 0), else ``None``."""
    if step > 0:
        after = [z for z in hot if z > current]
        return min(after) if after else None
    before = [z for z in hot if z < current]
    return max(before) if before else None
