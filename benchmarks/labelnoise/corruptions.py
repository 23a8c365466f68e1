"""Named annotation errors, each fully described by a JSON record so it can be re-applied exactly.

The kinds shared with the bundled sample data (``boundary_shift``, ``class_swap``,
``missing_slices``) are applied by ``scripts/make_sample_data.py``'s :func:`apply_corruption`; the
others are defined here. Volumes are ``(D, H, W)``: erosion, dilation and coarse outlines act
in-plane, slice by slice, as an annotator drawing on axial slices would err.

Record: ``{"kind", "class_value", "params"}`` (plus free-form keys such as ``case`` or ``class``).

Kinds and ``params``:
    erosion            radius (px), fill: the class shrinks by an in-plane disc; removed pixels
                       become ``fill``.
    dilation           radius (px), into (values): the class grows by an in-plane disc over
                       pixels whose value is in ``into``.
    boundary_shift     offset (per axis, px), fill: the class mask is moved (make_sample_data).
    missing_structure  seeds (list of indices), radius (px or null), fill: for each seed, the
                       connected component of the class (restricted to the disc/ball of
                       ``radius`` around the seed when given) becomes ``fill``.
    spurious_blob      centres (list of indices), radii (list of per-axis semi-axes, px), into:
                       ellipsoids painted with the class over pixels whose value is in ``into``.
    class_swap         other, center, radius: the class and ``other`` swap inside a disc/ball
                       (make_sample_data).
    coarse_polygon     tolerance (px), fill: in every slice the class outline is replaced by a
                       polygon through its contour simplified with Douglas-Peucker at
                       ``tolerance`` px (even-odd fill, so holes stay holes); pixels the class
                       gains become the class, pixels it loses become ``fill``.
    missing_slices     start, stop, fill (make_sample_data).
"""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parents[2]

KINDS = ("erosion", "dilation", "boundary_shift", "missing_structure", "spurious_blob", "class_swap",
         "coarse_polygon")


@lru_cache(maxsize=1)
def sample_data_module():
    """``scripts/make_sample_data.py`` imported as a module (its corruption and data helpers)."""
    path = REPO / "scripts" / "make_sample_data.py"
    spec = importlib.util.spec_from_file_location("_make_sample_data", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_make_sample_data", module)
    spec.loader.exec_module(module)
    return module


def disc(radius: int) -> np.ndarray:
    """Boolean ``(2r+1, 2r+1)`` disc."""
    r = int(radius)
    yy, xx = np.ogrid[-r:r + 1, -r:r + 1]
    return yy * yy + xx * xx <= r * r


def _inplane(structure2d: np.ndarray, ndim: int) -> np.ndarray:
    return structure2d if ndim == 2 else structure2d[None]


def _ellipsoid(shape, centre, radii) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - float(c)) / max(float(r), 0.5)) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0


def coarse_polygon_mask(mask2d: np.ndarray, tolerance: float) -> np.ndarray:
    """The 2D mask redrawn as Douglas-Peucker-simplified polygons (even-odd rule)."""
    from skimage.draw import polygon as draw_polygon
    from skimage.measure import approximate_polygon, find_contours

    if not mask2d.any():
        return mask2d.copy()
    padded = np.pad(mask2d.astype(np.float32), 1)
    out = np.zeros(padded.shape, bool)
    for contour in find_contours(padded, 0.5):
        simple = approximate_polygon(contour, tolerance=float(tolerance))
        if len(simple) < 3:
            continue
        rr, cc = draw_polygon(simple[:, 0], simple[:, 1], shape=padded.shape)
        filled = np.zeros(padded.shape, bool)
        filled[rr, cc] = True
        out ^= filled
    return out[1:-1, 1:-1]


def apply_corruption(clean: np.ndarray, record: dict) -> np.ndarray:
    """A corrupted copy of ``clean`` (``(H, W)`` or ``(D, H, W)``) as described by ``record``."""
    lab = np.asarray(clean)
    kind = record["kind"]
    c = int(record["class_value"])
    p = record["params"]
    mask = lab == c
    out = lab.copy()
    if kind == "erosion":
        shrunk = ndi.binary_erosion(mask, structure=_inplane(disc(p["radius"]), lab.ndim), border_value=1)
        out[mask & ~shrunk] = p["fill"]
    elif kind == "dilation":
        grown = ndi.binary_dilation(mask, structure=_inplane(disc(p["radius"]), lab.ndim))
        out[grown & ~mask & np.isin(lab, p["into"])] = c
    elif kind == "missing_structure":
        for seed in p["seeds"]:
            region = mask
            if p.get("radius") is not None:
                grids = np.ogrid[tuple(slice(0, n) for n in lab.shape)]
                region = mask & (sum((g - int(s)) ** 2 for g, s in zip(grids, seed)) <= int(p["radius"]) ** 2)
            components, _ = ndi.label(region)
            cid = components[tuple(seed)]
            if cid == 0:
                raise ValueError(f"seed {seed} is not on class {c}")
            out[components == cid] = p["fill"]
    elif kind == "spurious_blob":
        for centre, radii in zip(p["centres"], p["radii"]):
            blob = _ellipsoid(lab.shape, centre, radii)
            out[blob & np.isin(lab, p["into"])] = c
    elif kind == "coarse_polygon":
        new = np.stack([coarse_polygon_mask(m, p["tolerance"]) for m in (mask[None] if lab.ndim == 2 else mask)])
        new = new[0] if lab.ndim == 2 else new
        out[mask & ~new] = p["fill"]
        out[new & ~mask] = c
    elif kind in ("boundary_shift", "class_swap", "missing_slices"):
        out = sample_data_module().apply_corruption(lab, record)
    else:
        raise ValueError(f"unknown corruption kind {kind!r}")
    return out.astype(lab.dtype, copy=False)


def class_error_masks(clean: np.ndarray, corrupted: np.ndarray, values: list[int]) -> np.ndarray:
    """``(C, *shape)`` bool: where membership of each class changed (the per-class error mask)."""
    return np.stack([(clean == v) != (corrupted == v) for v in values])


# ----------------------------------------------------------------------------------- planning

def _pick(rng: np.random.Generator, mask: np.ndarray) -> list[int] | None:
    points = np.argwhere(mask)
    if len(points) == 0:
        return None
    return [int(v) for v in points[int(rng.integers(len(points)))]]


def _offset(rng: np.random.Generator, ndim: int, low: int, high: int) -> list[int]:
    """In-plane integer offset with each component's magnitude in [low, high] or 0 (not both 0)."""
    while True:
        dy, dx = (int(rng.integers(0, high + 1)) * int(rng.choice([-1, 1])) for _ in range(2))
        if max(abs(dy), abs(dx)) >= low:
            return [dy, dx] if ndim == 2 else [0, dy, dx]


def plan_erosion(lab, rng, classes: dict[int, tuple[int, int, int]]) -> dict | None:
    """classes: value → (min radius, max radius, fill)."""
    present = [v for v in classes if (lab == v).any()]
    if not present:
        return None
    c = int(rng.choice(present))
    lo, hi, fill = classes[c]
    return {"kind": "erosion", "class_value": c, "params": {"radius": int(rng.integers(lo, hi + 1)), "fill": fill}}


def plan_dilation(lab, rng, classes: dict[int, tuple[int, int, list[int]]]) -> dict | None:
    """classes: value → (min radius, max radius, values it may grow into)."""
    present = [v for v in classes if (lab == v).any()]
    if not present:
        return None
    c = int(rng.choice(present))
    lo, hi, into = classes[c]
    return {"kind": "dilation", "class_value": c, "params": {"radius": int(rng.integers(lo, hi + 1)), "into": into}}


def plan_shift(lab, rng, classes: dict[int, int], low: int = 2, high: int = 6) -> dict | None:
    """classes: value → fill value."""
    present = [v for v in classes if (lab == v).any()]
    if not present:
        return None
    c = int(rng.choice(present))
    return {"kind": "boundary_shift", "class_value": c,
            "params": {"offset": _offset(rng, lab.ndim, low, high), "fill": classes[c]}}


def plan_missing(lab, rng, classes: dict[int, tuple], min_size: int = 40) -> dict | None:
    """classes: value → (radius range or None, fill, number of components range)."""
    present = [v for v in classes if (lab == v).any()]
    if not present:
        return None
    c = int(rng.choice(present))
    radius_range, fill, count_range = classes[c]
    mask = lab == c
    if radius_range is None:
        components, n = ndi.label(mask)
        sizes = np.bincount(components.ravel(), minlength=n + 1)
        big = [i for i in range(1, n + 1) if sizes[i] >= min_size]
        if not big:
            return None
        k = min(len(big), int(rng.integers(count_range[0], count_range[1] + 1)))
        chosen = rng.choice(big, size=k, replace=False)
        seeds = [_pick(rng, components == i) for i in chosen]
        return {"kind": "missing_structure", "class_value": c, "params": {"seeds": seeds, "radius": None, "fill": fill}}
    inner = mask & (ndi.distance_transform_edt(mask) >= 2)
    seed = _pick(rng, inner)
    if seed is None:
        return None
    return {"kind": "missing_structure", "class_value": c,
            "params": {"seeds": [seed], "radius": int(rng.integers(radius_range[0], radius_range[1] + 1)), "fill": fill}}


def plan_blob(lab, rng, classes: dict[int, tuple], region: np.ndarray | None = None, count=(1, 1)) -> dict | None:
    """classes: value → (min radius, max radius, into values, z half-extent range or None).

    Blobs lie at least ``radius + 3`` px from the class (a new component, so a new box prompt)
    and inside ``region`` (default: anywhere)."""
    c = int(rng.choice(list(classes)))
    lo, hi, into, z_range = classes[c]
    away = ndi.distance_transform_edt(lab != c)
    allowed = np.isin(lab, into) if region is None else (region & np.isin(lab, into))
    centres, radii = [], []
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        r = [int(rng.integers(lo, hi + 1)) for _ in range(2)]
        ok = allowed & (away >= max(r) + 3)
        centre = _pick(rng, ok)
        if centre is None:
            return None
        centres.append(centre)
        radii.append(r if lab.ndim == 2 else [float(rng.integers(z_range[0], z_range[1] + 1)) + 0.5] + r)
        # later blobs keep away from this one too
        grids = np.ogrid[tuple(slice(0, n) for n in lab.shape)]
        far = sum((g - cc) ** 2 for g, cc in zip(grids[-2:], centre[-2:])) > (2 * max(r) + 3) ** 2
        allowed = allowed & far
    return {"kind": "spurious_blob", "class_value": c, "params": {"centres": centres, "radii": radii, "into": into}}


def plan_swap(lab, rng, pairs: list[tuple[int, int]], radius=(12, 20), near: int = 8) -> dict | None:
    """pairs: (class, other); the disc/ball centre is on ``class`` within ``near`` px of ``other``."""
    present = [(a, b) for a, b in pairs if (lab == a).any() and (lab == b).any()]
    if not present:
        return None
    a, b = present[int(rng.integers(len(present)))]
    structure = _inplane(disc(near), lab.ndim)
    centre = _pick(rng, ndi.binary_dilation(lab == b, structure=structure) & (lab == a))
    if centre is None:
        return None
    return {"kind": "class_swap", "class_value": a,
            "params": {"other": b, "center": centre, "radius": int(rng.integers(radius[0], radius[1] + 1))}}


def plan_polygon(lab, rng, classes: dict[int, int], tolerance=(2, 5)) -> dict | None:
    """classes: value → fill value."""
    present = [v for v in classes if (lab == v).any()]
    if not present:
        return None
    c = int(rng.choice(present))
    return {"kind": "coarse_polygon", "class_value": c,
            "params": {"tolerance": int(rng.integers(tolerance[0], tolerance[1] + 1)), "fill": classes[c]}}
