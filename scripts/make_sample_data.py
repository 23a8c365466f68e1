#!/usr/bin/env python
"""Generate the bundled sample datasets under ``sample_data/`` (nnU-Net v2 raw layout).

Run from anywhere::

    python scripts/make_sample_data.py            # both datasets
    python scripts/make_sample_data.py --only ct  # only the synthetic CT one

Everything is deterministic (fixed seeds, no time stamps in the written files).

Dataset001_MNIBrainSlices
    Axial slices of the MNI ICBM152 2009a (nlin sym) T1 template and grey/white-matter
    probability maps, read directly from the files inside the installed ``nilearn`` wheel
    (``nilearn/datasets/data``); nilearn is neither imported nor asked to download anything.
Dataset002_SyntheticCT
    Small synthetic abdominal CT volumes (Hounsfield units) with liver, kidney and tumour labels.

Both datasets contain deliberately corrupted annotations. ``labelsTr/`` holds the labels as
shipped (some corrupted), ``labelsTr_clean/`` the uncorrupted labels for every case, and
``corruptions.json`` lists every corruption with its parameters and the number of changed pixels.
``apply_corruption(clean, record)`` recreates a corrupted label exactly from its record.
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "sample_data"

MNI_NAME = "Dataset001_MNIBrainSlices"
CT_NAME = "Dataset002_SyntheticCT"
MNI_SEED = 1001
CT_SEED = 2002

MNI_LABELS = {"background": 0, "grey_matter": 1, "white_matter": 2}
CT_LABELS = {"background": 0, "liver": 1, "kidney": 2, "tumour": 3}

MNI_N_SLICES = 20
MNI_PROB_THRESHOLD = 0.5

CT_N_CASES = 4
CT_SHAPE = (40, 96, 96)  # (D, H, W) = (slices, rows, cols)
CT_SPACING = (6.0, 3.0, 3.0)  # mm per array axis (D, H, W)

MNI_LICENSE = """\
MNI ICBM152 non-linear symmetric 2009a template (T1, grey-matter and white-matter maps)
=====================================================================================

The images in imagesTr/ are axial slices of the T1-weighted MNI ICBM152 2009a template; the
labels in labelsTr/ and labelsTr_clean/ are derived from its grey- and white-matter probability
maps (argmax with probability > 0.5). The template files were taken from the copy shipped in the
nilearn Python package (nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz),
which nilearn distributes as a rescaled 8-bit ("converted") version of the original release:
http://www.bic.mni.mcgill.ca/ServicesAtlases/ICBM152NLin2009
Some labels in labelsTr/ were deliberately corrupted (see corruptions.json); these corrupted
labels are not part of the original work.

Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software and its
documentation for any purpose and without fee is hereby granted, provided that the above copyright
notice appear in all copies. The authors and McGill University make no representations about the
suitability of this software for any purpose. It is provided "as is" without express or implied
warranty. The authors are not responsible for any data loss, equipment damage, property loss, or
injury to subjects or patients resulting from the use or misuse of this software package.

References:
  VS Fonov, AC Evans, RC McKinstry, CR Almli, DL Collins. Unbiased nonlinear average
  age-appropriate brain templates from birth to adulthood. NeuroImage 47 (2009) S102.
  VS Fonov, AC Evans, K Botteron, CR Almli, RC McKinstry, DL Collins. Unbiased average
  age-appropriate atlases for pediatric studies. NeuroImage 54(1) (2011) 313-327.
  DL Collins, AP Zijdenbos, WFC Baare, AC Evans. ANIMAL+INSECT: Improved cortical structure
  segmentation. IPMI 1999, LNCS 1613, 210-223.
"""


# --------------------------------------------------------------------------------------------
# Corruptions: a record fully determines the change, so they can be re-applied and checked.
# --------------------------------------------------------------------------------------------

def _shift(mask: np.ndarray, offset) -> np.ndarray:
    """Shift a boolean array by integer ``offset`` per axis, filling with False (no wrap)."""
    out = np.zeros_like(mask)
    src, dst = [], []
    for o, n in zip(offset, mask.shape):
        o = int(o)
        if abs(o) >= n:
            return out
        src.append(slice(max(0, -o), n - max(0, o)))
        dst.append(slice(max(0, o), n - max(0, -o)))
    out[tuple(dst)] = mask[tuple(src)]
    return out


def _ball(radius: int, ndim: int) -> np.ndarray:
    r = int(radius)
    grids = np.ogrid[tuple(slice(-r, r + 1) for _ in range(ndim))]
    return sum(g.astype(np.int64) ** 2 for g in grids) <= r * r


def _disc(shape, center, radius) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - int(c)) ** 2 for g, c in zip(grids, center)) <= int(radius) ** 2


def apply_corruption(clean: np.ndarray, record: dict) -> np.ndarray:
    """Return a corrupted copy of ``clean`` as described by one ``corruptions.json`` record.

    Kinds (``params`` keys):
      boundary_shift     offset (per axis, px), fill: the class mask is moved by ``offset``;
                         pixels it leaves become ``fill``, pixels it reaches become the class.
      missing_structure  seed (index), radius (px or null), fill: the class is restricted to the
                         disc/ball of ``radius`` around ``seed`` (whole image if null); the
                         connected component (face connectivity) of that restriction containing
                         ``seed`` becomes ``fill``.
      missing_slices     start, stop (axis-0 indices, stop exclusive), fill: the class becomes
                         ``fill`` in those slices.
      class_swap         other (class value), center (index), radius (px): inside the disc/ball
                         the class and ``other`` are swapped.
      dilation           radius (px), into (list of values): the class mask is dilated by a
                         disc/ball; only pixels whose value is in ``into`` are overwritten.
      erosion            radius (px), fill: the class mask is eroded by a disc/ball; removed
                         pixels become ``fill``.
    """
    lab = np.asarray(clean)
    out = lab.copy()
    c = int(record["class_value"])
    p = record["params"]
    kind = record["kind"]
    mask = lab == c
    if kind == "boundary_shift":
        moved = _shift(mask, p["offset"])
        out[mask & ~moved] = p["fill"]
        out[moved] = c
    elif kind == "missing_structure":
        region = mask
        if p.get("radius") is not None:
            region = mask & _disc(lab.shape, p["seed"], p["radius"])
        comps, _ = ndi.label(region)
        cid = comps[tuple(p["seed"])]
        if cid == 0:
            raise ValueError(f"seed {p['seed']} is not on class {c}")
        out[comps == cid] = p["fill"]
    elif kind == "missing_slices":
        sl = slice(int(p["start"]), int(p["stop"]))
        sub = out[sl]
        sub[mask[sl]] = p["fill"]
    elif kind == "class_swap":
        other = int(p["other"])
        disc = _disc(lab.shape, p["center"], p["radius"])
        out[disc & (lab == c)] = other
        out[disc & (lab == other)] = c
    elif kind == "dilation":
        grown = ndi.binary_dilation(mask, structure=_ball(p["radius"], lab.ndim))
        out[grown & ~mask & np.isin(lab, p["into"])] = c
    elif kind == "erosion":
        shrunk = ndi.binary_erosion(mask, structure=_ball(p["radius"], lab.ndim), border_value=1)
        out[mask & ~shrunk] = p["fill"]
    else:
        raise ValueError(f"unknown corruption kind {kind!r}")
    return out.astype(lab.dtype, copy=False)


def _finish_record(clean: np.ndarray, record: dict) -> tuple[np.ndarray, dict]:
    corrupted = apply_corruption(clean, record)
    record = dict(record, changed_pixels=int(np.count_nonzero(corrupted != clean)))
    return corrupted, record


# --------------------------------------------------------------------------------------------
# Writing helpers (deterministic bytes)
# --------------------------------------------------------------------------------------------

def _write_png(path: Path, array: np.ndarray) -> None:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, array, extension=".png")


def _write_nifti(path: Path, array_dhw: np.ndarray, affine: np.ndarray, dtype) -> None:
    """Write a (D, H, W) array as NIfTI (voxel axes reversed: i=W, j=H, k=D), gzip mtime 0."""
    import nibabel as nib

    data = np.ascontiguousarray(np.asarray(array_dhw, dtype=dtype).transpose(2, 1, 0))
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(dtype)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    img.header["scl_slope"] = 1.0
    img.header["scl_inter"] = 0.0
    raw = img.to_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    path.write_bytes(buf.getvalue())


def _write_json(path: Path, obj) -> None:
    text = json.dumps(obj, indent=2)
    # keep short lists of numbers on one line
    text = re.sub(r"\[\s*([-0-9.e, \n]+?)\s*\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    path.write_text(text + "\n", encoding="utf-8")


def _fresh_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


# --------------------------------------------------------------------------------------------
# Dataset001: MNI ICBM152 brain slices
# --------------------------------------------------------------------------------------------

def nilearn_data_dir() -> Path | None:
    """Folder with nilearn's bundled templates, found without importing nilearn."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return d if (d / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").is_file() else None


def _axial(vol: np.ndarray, z: int) -> np.ndarray:
    """RAS volume -> axial slice (H, W): anterior at the top, patient's right on the left
    (radiological convention)."""
    return np.ascontiguousarray(vol[::-1, ::-1, z].T)


def load_mni(data_dir: Path):
    import nibabel as nib

    def load(kind):
        img = nib.load(str(data_dir / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"))
        return np.asanyarray(img.dataobj), img.affine

    t1, affine = load("t1")
    gm, _ = load("gm")
    wm, _ = load("wm")
    csf_file = data_dir / "mni_icbm152_csf_tal_nlin_sym_09a_converted.nii.gz"
    csf = load("csf")[0] if csf_file.is_file() else None
    return t1, gm, wm, csf, affine


def mni_labels_from_probs(gm: np.ndarray, wm: np.ndarray, csf: np.ndarray | None) -> np.ndarray:
    """Argmax of the tissue probability maps; background where the max probability <= 0.5."""
    maps = [gm, wm] + ([csf] if csf is not None else [])
    scale = 255.0 if gm.dtype == np.uint8 else 1.0
    probs = np.stack([np.asarray(m, dtype=np.float32) / scale for m in maps])
    lab = (np.argmax(probs, axis=0) + 1).astype(np.uint8)
    lab[probs.max(axis=0) <= MNI_PROB_THRESHOLD] = 0
    return lab


def choose_mni_slices(lab_vol: np.ndarray, n: int) -> list[int]:
    """n axial indices with a constant step through the levels where the brain is substantial."""
    area = (lab_vol > 0).sum(axis=(0, 1))
    good = np.flatnonzero(area >= 0.15 * area.max())
    lo, hi = int(good.min()), int(good.max())
    step = max(1, (hi - lo) // (n - 1))
    start = lo + ((hi - lo) - step * (n - 1)) // 2
    return [start + i * step for i in range(n)]


def plan_mni_corruptions(clean: dict[str, np.ndarray], rng: np.random.Generator) -> list[dict]:
    """Pick cases and parameters for the MNI corruptions (one case per kind)."""
    cases = sorted(clean)
    middle = cases[3:-3]  # levels with plenty of both tissues
    chosen = rng.choice(len(middle), size=5, replace=False)
    picks = [middle[i] for i in sorted(chosen)]
    kinds = ["boundary_shift", "missing_structure", "class_swap", "dilation", "erosion"]
    order = rng.permutation(len(kinds))
    records = []
    for case, kind in zip(picks, [kinds[i] for i in order]):
        lab = clean[case]
        if kind == "boundary_shift":
            offset = [int(rng.integers(3, 6)) * int(rng.choice([-1, 1])),
                      int(rng.integers(3, 6)) * int(rng.choice([-1, 1]))]
            rec = dict(kind=kind, class_value=2, params={"offset": offset, "fill": 1})
        elif kind == "missing_structure":
            # a piece of cortex left unannotated: grey matter around a seed becomes background
            gm = lab == 1
            inner = gm & (ndi.distance_transform_edt(gm) >= 2)
            ys, xs = np.nonzero(inner)
            k = int(rng.integers(len(ys)))
            rec = dict(kind=kind, class_value=1,
                       params={"seed": [int(ys[k]), int(xs[k])],
                               "radius": int(rng.integers(14, 20)), "fill": 0})
        elif kind == "class_swap":
            # centre on a white-matter pixel that is also near grey matter
            near_gm = ndi.binary_dilation(lab == 1, iterations=8) & (lab == 2)
            ys, xs = np.nonzero(near_gm)
            k = int(rng.integers(len(ys)))
            rec = dict(kind=kind, class_value=1,
                       params={"other": 2, "center": [int(ys[k]), int(xs[k])],
                               "radius": int(rng.integers(15, 21))})
        elif kind == "dilation":
            rec = dict(kind=kind, class_value=2,
                       params={"radius": int(rng.integers(2, 4)), "into": [1]})
        else:  # erosion
            rec = dict(kind=kind, class_value=2,
                       params={"radius": int(rng.integers(2, 4)), "fill": 1})
        name = {v: k for k, v in MNI_LABELS.items()}[rec["class_value"]]
        records.append({"case": case, "kind": rec["kind"], "class": name,
                        "class_value": rec["class_value"], "params": rec["params"]})
    return records


def make_mni(out_root: Path, data_dir: Path) -> dict:
    rng = np.random.default_rng(MNI_SEED)
    t1, gm, wm, csf, _ = load_mni(data_dir)
    labels = dict(MNI_LABELS)
    # No CSF map is shipped in nilearn's bundled copy; use one only if it exists.
    if csf is not None:
        labels["csf"] = 3
    lab_vol = mni_labels_from_probs(gm, wm, csf)
    zs = choose_mni_slices(lab_vol, MNI_N_SLICES)

    root = out_root / MNI_NAME
    _fresh_dir(root)
    scale = 257 if t1.dtype == np.uint8 else 65535.0 / max(float(t1.max()), 1e-6)
    clean = {}
    slices_info = {}
    for i, z in enumerate(zs):
        case = f"mni_{i:03d}"
        img = _axial(t1, z).astype(np.float64) * scale
        _write_png(root / "imagesTr" / f"{case}_0000.png", np.round(img).astype(np.uint16))
        clean[case] = _axial(lab_vol, z).astype(np.uint8)
        _write_png(root / "labelsTr_clean" / f"{case}.png", clean[case])
        slices_info[case] = {"voxel_k": int(z), "mni_z_mm": float(z - 72)}

    records = []
    corrupted = dict(clean)
    for rec in plan_mni_corruptions(clean, rng):
        corrupted[rec["case"]], rec = _finish_record(clean[rec["case"]], rec)
        records.append(rec)
    for case, lab in corrupted.items():
        _write_png(root / "labelsTr" / f"{case}.png", lab)

    _write_json(root / "dataset.json", {
        "channel_names": {"0": "MRI"},
        "labels": labels,
        "numTraining": len(zs),
        "file_ending": ".png",
        "name": "MNIBrainSlices",
        "description": "Axial slices (1 mm pixels, anterior up, radiological left-right) of the "
                       "MNI ICBM152 2009a nlin sym T1 template with grey/white-matter labels "
                       "from its tissue probability maps. Some labels in labelsTr are "
                       "deliberately corrupted; see corruptions.json and labelsTr_clean.",
        "reference": "http://www.bic.mni.mcgill.ca/ServicesAtlases/ICBM152NLin2009",
        "licence": "MNI/McGill permissive notice, see LICENSE_MNI152.txt",
        "spacing_mm": [1.0, 1.0],
    })
    _write_json(root / "corruptions.json", {
        "dataset": MNI_NAME,
        "generator": "scripts/make_sample_data.py",
        "seed": MNI_SEED,
        "clean_labels": "labelsTr_clean",
        "corrupted_labels": "labelsTr",
        "pixel_index_order": "(row, col) of the 2D label image",
        "corruptions": records,
    })
    _write_json(root / "slices.json", {
        "source": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz (1 mm, RAS)",
        "orientation": "rows: anterior -> posterior; cols: patient right -> left",
        "intensity": "uint8 template value * 257",
        "cases": slices_info,
    })
    (root / "LICENSE_MNI152.txt").write_text(MNI_LICENSE, encoding="utf-8")
    return {"cases": len(zs), "corruptions": records}


# --------------------------------------------------------------------------------------------
# Dataset002: synthetic abdominal CT
# --------------------------------------------------------------------------------------------

def ct_affine(shape=CT_SHAPE, spacing=CT_SPACING) -> np.ndarray:
    """NIfTI affine for a (D, H, W) array stored as (i=W, j=H, k=D).

    i runs to the patient's left, j to posterior, k to superior (LPS voxel axes, like a CT
    converted from DICOM), centred on the volume."""
    sz, sy, sx = spacing
    a = np.diag([-sx, -sy, sz, 1.0])
    centre = np.array([(shape[2] - 1) / 2, (shape[1] - 1) / 2, (shape[0] - 1) / 2, 1.0])
    a[:3, 3] = -(a @ centre)[:3]
    return a


def _smooth_field(rng, shape, sigma_vox) -> np.ndarray:
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="wrap")
    return f / (f.std() + 1e-12)


def _ellipsoid(z, y, x, centre, axes, wobble=None, amp=0.0):
    d = ((z - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2 \
        + ((x - centre[2]) / axes[2]) ** 2
    if wobble is not None:
        d = d + amp * wobble
    return d <= 1.0


def synth_ct_case(rng: np.random.Generator, with_tumour: bool):
    """One synthetic abdominal CT: returns (hu int16 (D,H,W), labels uint8 (D,H,W), info)."""
    D, H, W = CT_SHAPE
    sz, sy, sx = CT_SPACING
    # physical coordinates (mm), centred; y grows posterior, x grows to the patient's left
    z = ((np.arange(D) - (D - 1) / 2) * sz)[:, None, None]
    y = ((np.arange(H) - (H - 1) / 2) * sy)[None, :, None]
    x = ((np.arange(W) - (W - 1) / 2) * sx)[None, None, :]
    zz, yy, xx = np.broadcast_arrays(z, y, x)
    lowfreq = lambda s: _smooth_field(rng, CT_SHAPE, s)  # noqa: E731

    # body: elliptic cylinder, slightly varying with z
    bx0, by0 = rng.uniform(122, 134), rng.uniform(88, 98)
    bx = bx0 * (1 + 0.03 * np.sin(zz / 60.0))
    by = by0 * (1 + 0.02 * np.cos(zz / 50.0))
    cy = 8.0
    r_body = (xx / bx) ** 2 + ((yy - cy) / by) ** 2
    body = r_body <= 1.0
    fat_t = rng.uniform(0.78, 0.84)  # subcutaneous fat thickness as a radius fraction
    wall = r_body <= fat_t ** 2
    cavity = r_body <= (fat_t - 0.07) ** 2

    hu = np.full(CT_SHAPE, -1000.0)
    hu[body] = -100.0 + 8 * lowfreq(3)[body]  # subcutaneous fat
    hu[wall] = 45.0  # abdominal wall muscle
    # visceral content: soft tissue/bowel with pockets of fat
    tex = lowfreq((1.0, 2.5, 2.5))
    visc = np.where(tex > 0.6, -90.0, 25.0 + 8 * tex)
    hu[cavity] = visc[cavity]
    # a few gas pockets in bowel
    gas = (lowfreq((0.8, 1.5, 1.5)) > 2.6) & cavity & (yy < 20)
    hu[gas] = -900.0

    # spine: vertebral body, canal, posterior elements, paraspinal muscles
    vy = cy + 0.52 * by0
    vbody = ((yy - vy) ** 2 + xx ** 2) <= 17.0 ** 2
    vcore = ((yy - vy) ** 2 + xx ** 2) <= 14.5 ** 2
    canal_y = vy + 26.0
    canal = ((yy - canal_y) ** 2 + xx ** 2) <= 8.0 ** 2
    arch = (((yy - canal_y) ** 2 + xx ** 2) <= 13.0 ** 2) & ~canal & (yy >= vy + 12)
    spinous = (np.abs(xx) <= 4.0) & (yy > canal_y + 8) & (yy < canal_y + 30) & wall
    para = ((((yy - canal_y - 8) / 20.0) ** 2 + ((np.abs(xx) - 30) / 20.0) ** 2) <= 1.0) & body
    disc = np.abs(((zz + rng.uniform(0, 30)) % 32.0) - 16.0) > 12.5  # intervertebral discs
    hu[para] = 50.0
    hu[vbody] = np.where(disc[vbody], 85.0, 1000.0)
    hu[vcore & ~disc] = 380.0 + 40 * lowfreq(1.2)[vcore & ~disc]
    hu[arch | spinous] = 750.0
    hu[canal] = 20.0
    # aorta (unenhanced) and inferior vena cava
    aorta = ((yy - (vy - 25)) ** 2 + (xx - 14) ** 2) <= 11.0 ** 2
    ivc = (((yy - (vy - 24)) / 9.0) ** 2 + ((xx + 24) / 12.0) ** 2) <= 1.0
    hu[aorta] = 42.0
    hu[ivc] = 38.0

    # kidneys: either side of the spine, right one lower
    kid_cort = np.zeros(CT_SHAPE, bool)
    kid_med = np.zeros(CT_SHAPE, bool)
    kidneys = []
    for side, dz in ((-1, rng.uniform(-45, -30)), (+1, rng.uniform(-28, -15))):
        c = (dz, vy - 2 + rng.uniform(-4, 4), side * rng.uniform(58, 66))
        axes = (rng.uniform(48, 56), rng.uniform(22, 26), rng.uniform(26, 30))
        outer = _ellipsoid(zz, yy, xx, c, axes, lowfreq(2.5), 0.08)
        inner = _ellipsoid(zz, yy, xx, c, [a - 7.0 for a in axes])
        # renal sinus (hilum) faces the spine
        sinus = _ellipsoid(zz, yy, xx, (c[0], c[1], c[2] - side * 18),
                           (axes[0] * 0.45, axes[1] * 0.45, 12.0))
        kid_cort |= outer & ~inner & ~sinus
        kid_med |= outer & inner & ~sinus
        hu[outer & sinus] = -80.0
        kidneys.append({"centre_mm": [round(float(v), 1) for v in c],
                        "semi_axes_mm": [round(float(v), 1) for v in axes]})
    kidney = kid_cort | kid_med
    hu[kid_med] = 25.0
    hu[kid_cort] = 42.0

    # liver: right upper quadrant (patient's right = image left = negative x)
    lc = (rng.uniform(20, 35), cy - rng.uniform(5, 15), -rng.uniform(45, 55))
    la = (rng.uniform(70, 80), rng.uniform(58, 66), rng.uniform(62, 72))
    liver = _ellipsoid(zz, yy, xx, lc, la, lowfreq(4), 0.15)
    # left lobe tapering towards the midline/anterior
    liver |= _ellipsoid(zz, yy, xx, (lc[0] + 20, lc[1] - 25, 0.0), (40, 25, 55), lowfreq(4), 0.1)
    liver &= cavity & ~ndi.binary_dilation(kidney | aorta | ivc | vbody | para, iterations=1)
    liver = ndi.binary_opening(liver, iterations=1)
    hu[liver] = 60.0 + 4 * lowfreq(2)[liver]

    tumour = np.zeros(CT_SHAPE, bool)
    info = {"liver_centre_mm": [round(float(v), 1) for v in lc], "kidneys": kidneys,
            "tumour": None}
    if with_tumour:
        r = rng.uniform(15, 24)
        # centre far enough inside the liver (distance in mm)
        dist = ndi.distance_transform_edt(liver, sampling=CT_SPACING)
        cand = np.argwhere(dist >= r + 4)
        if len(cand) == 0:
            cand = np.argwhere(dist >= dist.max() * 0.8)
        k = cand[int(rng.integers(len(cand)))]
        tc = (float(z[k[0], 0, 0]), float(y[0, k[1], 0]), float(x[0, 0, k[2]]))
        ta = (r * rng.uniform(0.9, 1.2), r * rng.uniform(0.85, 1.1), r)
        tumour = _ellipsoid(zz, yy, xx, tc, ta, lowfreq(2), 0.12) & liver
        hu[tumour] = rng.uniform(20, 30) + 5 * lowfreq(1.5)[tumour]
        info["tumour"] = {"centre_mm": [round(v, 1) for v in tc],
                          "semi_axes_mm": [round(float(v), 1) for v in ta]}

    labels = np.zeros(CT_SHAPE, np.uint8)
    labels[liver] = CT_LABELS["liver"]
    labels[kidney] = CT_LABELS["kidney"]
    labels[tumour] = CT_LABELS["tumour"]

    # partial-volume blur, then spatially correlated noise (~15 HU)
    hu = ndi.gaussian_filter(hu, sigma=(0.5, 0.7, 0.7), mode="nearest")
    noise = ndi.gaussian_filter(rng.standard_normal(CT_SHAPE), sigma=(0.0, 0.6, 0.6))
    hu = hu + 15.0 * noise / noise.std()
    hu = np.clip(np.round(hu), -1024, 3071).astype(np.int16)
    return hu, labels, info


def plan_ct_corruption(clean: dict[str, np.ndarray], rng: np.random.Generator) -> list[dict]:
    """One volume: the tumour is left unannotated (labelled liver) in part of its slices."""
    with_tumour = [c for c in sorted(clean) if np.any(clean[c] == CT_LABELS["tumour"])]
    case = with_tumour[int(rng.integers(len(with_tumour)))]
    ks = np.flatnonzero((clean[case] == CT_LABELS["tumour"]).any(axis=(1, 2)))
    n = max(1, len(ks) // 2)
    start = int(ks[0]) if rng.random() < 0.5 else int(ks[-1]) - n + 1
    return [{"case": case, "kind": "missing_slices", "class": "tumour",
             "class_value": CT_LABELS["tumour"],
             "params": {"start": start, "stop": start + n, "fill": CT_LABELS["liver"]}}]


def make_ct(out_root: Path) -> dict:
    rng = np.random.default_rng(CT_SEED)
    root = out_root / CT_NAME
    _fresh_dir(root)
    affine = ct_affine()
    no_tumour = int(rng.integers(CT_N_CASES))
    clean, infos = {}, {}
    for i in range(CT_N_CASES):
        case = f"ct_{i:03d}"
        hu, lab, info = synth_ct_case(np.random.default_rng([CT_SEED, i]), i != no_tumour)
        _write_nifti(root / "imagesTr" / f"{case}_0000.nii.gz", hu, affine, np.int16)
        _write_nifti(root / "labelsTr_clean" / f"{case}.nii.gz", lab, affine, np.uint8)
        clean[case] = lab
        infos[case] = info

    records = []
    corrupted = dict(clean)
    for rec in plan_ct_corruption(clean, rng):
        corrupted[rec["case"]], rec = _finish_record(clean[rec["case"]], rec)
        records.append(rec)
    for case, lab in corrupted.items():
        _write_nifti(root / "labelsTr" / f"{case}.nii.gz", lab, affine, np.uint8)

    _write_json(root / "dataset.json", {
        "channel_names": {"0": "CT"},
        "labels": CT_LABELS,
        "numTraining": CT_N_CASES,
        "file_ending": ".nii.gz",
        "name": "SyntheticCT",
        "description": "Synthetic abdominal CT phantoms in Hounsfield units (int16), "
                       f"{CT_SHAPE[2]}x{CT_SHAPE[1]}x{CT_SHAPE[0]} voxels of "
                       f"{CT_SPACING[2]}x{CT_SPACING[1]}x{CT_SPACING[0]} mm. Labels: liver, "
                       "kidney, tumour (inside the liver). One label volume is deliberately "
                       "corrupted; see corruptions.json and labelsTr_clean.",
        "licence": "Apache-2.0 (generated by scripts/make_sample_data.py)",
    })
    _write_json(root / "corruptions.json", {
        "dataset": CT_NAME,
        "generator": "scripts/make_sample_data.py",
        "seed": CT_SEED,
        "clean_labels": "labelsTr_clean",
        "corrupted_labels": "labelsTr",
        "pixel_index_order": "(D, H, W) array order = NIfTI voxel (k, j, i)",
        "corruptions": records,
        "phantoms": infos,
    })
    return {"cases": CT_N_CASES, "corruptions": records}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (sample_data/)")
    ap.add_argument("--only", choices=("mni", "ct"), help="build only one dataset")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "mni"):
        data_dir = nilearn_data_dir()
        if data_dir is None:
            print("nilearn (with its bundled MNI152 templates) is not installed; "
                  "pip install nilearn, or use --only ct", file=sys.stderr)
            return 1
        res = make_mni(args.out, data_dir)
        print(f"{MNI_NAME}: {res['cases']} cases, {len(res['corruptions'])} corrupted")
    if args.only in (None, "ct"):
        res = make_ct(args.out)
        print(f"{CT_NAME}: {res['cases']} cases, {len(res['corruptions'])} corrupted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
