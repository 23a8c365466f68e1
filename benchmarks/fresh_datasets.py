"""Fresh evaluation datasets (issue 16, item 7): data no setting of the label-quality queue or its
flag was chosen on, built deterministically from seeds not used before.

Each dataset is a plain nnU-Net v2 raw folder (``dataset.json``, ``imagesTr/``, ``labelsTr/``; every
case once, the corrupted ones with their corrupted label) and ``truth.json`` (the corrupted cases
with their corruption record and changed voxels, the clean rare-class cases, per-case sizes)::

    python benchmarks/fresh_datasets.py --out /work/fresh
    python benchmarks/fresh_datasets.py --out /work/fresh2 --seed-base 5100   # the second evaluation

The MRI sets take their slices from the one MNI template and the nuclei set its tiles from the one
image, so a second seed base changes which cases are corrupted and how, not those images; the CT
phantoms are new.

Datasets (slices = what LiteMedSAM embeds):
    mni_clean     30 sagittal MNI slices of the left hemisphere, nothing wrong (30 slices);
    ct_sizes      14 CT phantoms (new seeds) cropped to 6, 10, 16, 26 or 40 slices; 5 with one small
                  error (≤ 2000 voxels: spurious / missed tumour, small class swap, tumour drawn
                  2–3 px too large), one per depth (254 slices); ``--ct-sizes-cases 42``: 42 phantoms,
                  every third one corrupted (14, all depths alike; the first 14 cases are those of
                  the default set);
    mni_subtle    30 sagittal MNI slices of the right hemisphere, 8 with one class shifted by 1–2 px
                  (30 slices);
    ct_rare       16 six-slice CT phantoms; 3 clean ones with a cyst (class ``cyst``, a hypodense
                  liver lesion) no other case has, 4 with one small error (96 slices);
    nuclei_tiles  the 16 non-overlapping 128² tiles of the stardist nuclei image, 4 corrupted
                  (16 slices);
    mni_small     8 sagittal MNI slices of the right hemisphere (between those of mni_subtle),
                  2 corrupted (8 slices);
    ct_clean      24 CT phantoms (new seeds) cropped to 6, 10 or 16 slices, nothing wrong (256
                  slices): an all-clean set that, unlike mni_clean, is new with every seed base
                  (added for the sixteenth evaluation; the clean CT shape is where the flag's
                  label-issue part alone flags most, benchmarks/flag_null_simulation.py).
The sagittal plane was never used before (the benchmarks use axial and coronal slices); the
template is left-right symmetric, so each dataset keeps to one hemisphere (no mirror twins). The
nuclei image is the one the label-error benchmark tiled with overlap (tuning data); here its tiles
do not overlap.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labelnoise import corruptions as cor  # noqa: E402
from labelnoise.datasets import DatasetConfig, build_mni, build_nuclei, stardist_images_dir  # noqa: E402

FRESH_VERSION = "1"
MIN_CHANGED = 30
SMALL_MAX = 2000  # voxels: a "small" error in the CT sets
CT_DEPTHS = (6, 10, 16, 26, 40)
CT_CLEAN_DEPTHS = (6, 10, 16)  # the all-clean CT set: thinner, to keep its foundation-model pass short
MNI_MIDLINE = 98  # x index of the symmetric template's mid-sagittal plane


def _sagittal(vol: np.ndarray, x: int) -> np.ndarray:
    """RAS volume → sagittal slice (H, W): superior at the top."""
    return np.ascontiguousarray(vol[x].T[::-1])


def mni_levels() -> tuple[list[int], list[int], list[int]]:
    """x levels of mni_clean (left hemisphere), mni_subtle and mni_small (right hemisphere)."""
    sd = cor.sample_data_module()
    _t1, gm, wm, _csf, _ = sd.load_mni(sd.nilearn_data_dir())
    lab = sd.mni_labels_from_probs(gm, wm, None)
    area = (lab > 0).sum(axis=(1, 2))
    good = np.flatnonzero(area >= 0.3 * area.max())
    left = [int(v) for v in np.round(np.linspace(good.min(), MNI_MIDLINE - 2, 30)).astype(int)]
    right_all = np.arange(MNI_MIDLINE + 2, good.max() + 1)
    subtle = [int(v) for v in right_all[np.round(np.linspace(0, len(right_all) - 1, 30)).astype(int)]]
    rest = [int(v) for v in right_all if int(v) not in subtle]
    small = [rest[i] for i in np.round(np.linspace(0, len(rest) - 1, 8)).astype(int)]
    return left, subtle, small


def mni_cases(levels: list[int], prefix: str) -> tuple[dict, dict]:
    sd = cor.sample_data_module()
    t1, gm, wm, _csf, _ = sd.load_mni(sd.nilearn_data_dir())
    lab_vol = sd.mni_labels_from_probs(gm, wm, None)
    scale = 257 if t1.dtype == np.uint8 else 65535.0 / max(float(t1.max()), 1e-6)
    images, labels = {}, {}
    for i, x in enumerate(levels):
        case = f"{prefix}{i:03d}_x{x:03d}"
        images[case] = np.round(_sagittal(t1, x).astype(np.float64) * scale).astype(np.uint16)
        labels[case] = _sagittal(lab_vol, x).astype(np.uint8)
    return images, labels


def ct_case(seed: list[int], depth: int, with_tumour: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """A phantom from ``seed`` cropped to ``depth`` slices around its tumour (or organs)."""
    sd = cor.sample_data_module()
    hu, lab, _ = sd.synth_ct_case(np.random.default_rng(seed), with_tumour)
    tumour = np.flatnonzero((lab == 3).any(axis=(1, 2)))
    organs = ((lab == 1).sum(axis=(1, 2)) > 0) & ((lab == 2).sum(axis=(1, 2)) > 0)
    centre = int(tumour.mean()) if len(tumour) else int(np.flatnonzero(organs).mean()) if organs.any() \
        else lab.shape[0] // 2
    start = int(np.clip(centre - depth // 2, 0, lab.shape[0] - depth))
    return (np.ascontiguousarray(hu[start:start + depth]), np.ascontiguousarray(lab[start:start + depth]),
            {"seed": seed, "slices": [start, start + depth], "tumour": bool(len(tumour))})


#: small CT errors (voxels of the 96² in-plane grid, 6 mm slices)
CT_SMALL = {
    "spurious_blob": lambda lab, rng: cor.plan_blob(lab, rng, {3: (3, 5, [1], (0, 1))}, region=lab == 1),
    "missing_structure": lambda lab, rng: cor.plan_missing(lab, rng, {3: (None, 1, (1, 1))}),
    "class_swap": lambda lab, rng: cor.plan_swap(lab, rng, [(3, 1), (2, 1)], radius=(3, 5), near=3),
    "dilation": lambda lab, rng: cor.plan_dilation(lab, rng, {3: (2, 3, [1])}),
}


def corrupt(label: np.ndarray, planners: dict, kinds: list[str], rng: np.random.Generator,
            max_changed: int | None = None) -> tuple[np.ndarray, dict] | None:
    """The first of ``kinds`` (then the others) whose plan changes ≥ MIN_CHANGED (≤ ``max_changed``)
    voxels: ``(corrupted label, record)``, or ``None``."""
    for kind in kinds + [k for k in planners if k not in kinds]:
        for _attempt in range(20):
            record = planners[kind](label, rng)
            if record is None:
                continue
            out = cor.apply_corruption(label, record)
            changed = int(np.count_nonzero(out != label))
            if changed >= MIN_CHANGED and (max_changed is None or changed <= max_changed):
                record["changed_voxels"] = changed
                return out, record
    return None


def add_cyst(hu: np.ndarray, lab: np.ndarray, rng: np.random.Generator, value: int) -> dict:
    """Paint a hypodense cyst (liver − 55 HU, ≈ water) inside the liver, away from the tumour; label it."""
    inside = ndi.distance_transform_edt(lab == 1, sampling=(2.0, 1.0, 1.0)) >= 6
    away = ndi.distance_transform_edt(lab != 3) >= 9
    candidates = np.argwhere(inside & away)
    if not len(candidates):
        raise ValueError("no liver voxel 6 mm inside the liver and 9 voxels from the tumour to centre a cyst on "
                         "(a crop whose liver is small or all near its tumour): try another --seed-base")
    centre = candidates[int(rng.integers(len(candidates)))]
    radii = [1.5, float(rng.integers(3, 5)), float(rng.integers(3, 5))]
    cyst = cor._ellipsoid(lab.shape, [int(c) for c in centre], radii) & (lab == 1)
    hu[cyst] = np.clip(hu[cyst].astype(np.int32) - 55, -1024, 3071).astype(hu.dtype)
    lab[cyst] = value
    return {"centre": [int(c) for c in centre], "radii": radii, "voxels": int(cyst.sum())}


def write_dataset(root: Path, name: str, images: dict, labels: dict, meta: dict, truth: dict) -> None:
    sd = cor.sample_data_module()
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for case in sorted(images):
        if meta["ending"] == ".png":
            sd._write_png(root / "imagesTr" / f"{case}_0000.png", images[case])
            sd._write_png(root / "labelsTr" / f"{case}.png", labels[case])
        else:
            affine = sd.ct_affine(shape=labels[case].shape)
            sd._write_nifti(root / "imagesTr" / f"{case}_0000.nii.gz", images[case], affine, np.int16)
            sd._write_nifti(root / "labelsTr" / f"{case}.nii.gz", labels[case], affine, np.uint8)
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": meta["modality"]}, "labels": meta["labels"], "numTraining": len(images),
        "file_ending": meta["ending"], "name": f"Fresh_{name}",
        "description": "fresh label-quality evaluation (benchmarks/fresh_datasets.py); see truth.json"}, indent=1))
    truth.update({"version": FRESH_VERSION, "name": name, "cases": sorted(images),
                  "slices": {c: int(1 if labels[c].ndim == 2 else labels[c].shape[0]) for c in sorted(images)}})
    (root / "truth.json").write_text(json.dumps(truth, indent=1))


def _corrupt_some(labels: dict, chosen: list[str], planners: dict, kinds: list[str], rng, max_changed=None) -> dict:
    records = {}
    for i, case in enumerate(chosen):
        result = corrupt(labels[case], planners, [kinds[i % len(kinds)]], rng, max_changed)
        if result is None:
            raise RuntimeError(f"no corruption fits {case}")
        labels[case], records[case] = result
    return records


def mni_setup() -> tuple[dict, dict]:
    """The MNI sets' error planners and dataset metadata (``labels``, ``modality``, ``ending``)."""
    _img, _lab, planners, meta = build_mni(DatasetConfig(cases=2, extra={"axial": 1}))
    return planners, {k: meta[k] for k in ("labels", "modality", "ending")}


def build_all(out: Path, base: int = 4100, ct_sizes_cases: int = 14) -> dict:
    """Every dataset into ``out``; ``base`` offsets every seed (4100: the first evaluation);
    ``ct_sizes_cases`` phantoms in ``ct_sizes``, every third corrupted."""
    made = {}
    left, subtle_levels, small_levels = mni_levels()
    mni_planners, mni_meta = mni_setup()

    images, labels = mni_cases(left, "sag_l")
    write_dataset(out / "mni_clean", "mni_clean", images, labels, mni_meta, {"corrupted": {}})
    made["mni_clean"] = len(images)

    images, labels = mni_cases(subtle_levels, "sag_r")
    rng = np.random.default_rng([base + 1, 0])
    chosen = sorted(rng.choice(sorted(images), size=8, replace=False).tolist())
    shift = {"boundary_shift": lambda lab, rng: cor.plan_shift(lab, rng, {1: 0, 2: 1}, low=1, high=2)}
    truth = {"corrupted": _corrupt_some(labels, chosen, shift, ["boundary_shift"], rng)}
    write_dataset(out / "mni_subtle", "mni_subtle", images, labels, mni_meta, truth)
    made["mni_subtle"] = len(images)

    images, labels = mni_cases(small_levels, "sag_s")
    rng = np.random.default_rng([base + 2, 0])
    chosen = sorted(rng.choice(sorted(images), size=2, replace=False).tolist())
    kinds = [list(mni_planners)[i] for i in rng.permutation(len(mni_planners))]
    truth = {"corrupted": _corrupt_some(labels, chosen, mni_planners, kinds, rng)}
    write_dataset(out / "mni_small", "mni_small", images, labels, mni_meta, truth)
    made["mni_small"] = len(images)

    ct_meta = {"labels": {"background": 0, "liver": 1, "kidney": 2, "tumour": 3}, "modality": "CT",
               "ending": ".nii.gz"}
    images, labels, info = {}, {}, {}
    for i in range(ct_sizes_cases):
        depth = CT_DEPTHS[i % len(CT_DEPTHS)]
        case = f"ct{i:03d}_d{depth:02d}"
        images[case], labels[case], info[case] = ct_case([base + 101, i], depth, with_tumour=i % 4 != 3)
    rng = np.random.default_rng([base + 102, 0])
    chosen = [c for i, c in enumerate(sorted(images)) if i % 3 == 0]  # 14 cases: depths 6, 26, 10, 40, 16
    truth = {"corrupted": _corrupt_some(labels, chosen, CT_SMALL, list(CT_SMALL), rng, SMALL_MAX), "cases_info": info}
    write_dataset(out / "ct_sizes", "ct_sizes", images, labels, ct_meta, truth)
    made["ct_sizes"] = sum(labels[c].shape[0] for c in labels)

    rare_meta = dict(ct_meta, labels={**ct_meta["labels"], "cyst": 4})
    images, labels, info = {}, {}, {}
    rng = np.random.default_rng([base + 201, 0])
    cysts = {}
    for i in range(16):
        case = f"ctr{i:03d}"
        images[case], labels[case], info[case] = ct_case([base + 202, i], 6, with_tumour=i % 5 != 4)
        if i in (2, 7, 13):
            cysts[case] = add_cyst(images[case], labels[case], rng, 4)
    chosen = [f"ctr{i:03d}" for i in (0, 5, 10, 15)]
    truth = {"corrupted": _corrupt_some(labels, chosen, CT_SMALL, list(CT_SMALL), rng, SMALL_MAX),
             "rare_class": "cyst", "rare_clean_cases": cysts, "cases_info": info}
    write_dataset(out / "ct_rare", "ct_rare", images, labels, rare_meta, truth)
    made["ct_rare"] = sum(labels[c].shape[0] for c in labels)

    images, labels, info = {}, {}, {}
    for i in range(24):
        depth = CT_CLEAN_DEPTHS[i % len(CT_CLEAN_DEPTHS)]
        case = f"ctc{i:03d}_d{depth:02d}"
        images[case], labels[case], info[case] = ct_case([base + 401, i], depth, with_tumour=i % 4 != 3)
    write_dataset(out / "ct_clean", "ct_clean", images, labels, ct_meta, {"corrupted": {}, "cases_info": info})
    made["ct_clean"] = sum(labels[c].shape[0] for c in labels)

    if stardist_images_dir() is not None:
        _img, _lab, nuc_planners, nuc_meta = build_nuclei(DatasetConfig(cases=1))
        images, labels = {}, {}
        all_images, all_labels, _p, _m = build_nuclei(DatasetConfig(cases=16, extra={"tile": 128, "stride": 128}))
        images, labels = dict(all_images), dict(all_labels)
        rng = np.random.default_rng([base + 301, 0])
        chosen = sorted(rng.choice(sorted(images), size=4, replace=False).tolist())
        kinds = [list(nuc_planners)[i] for i in rng.permutation(len(nuc_planners))]
        truth = {"corrupted": _corrupt_some(labels, chosen, nuc_planners, kinds, rng)}
        write_dataset(out / "nuclei_tiles", "nuclei_tiles", images, labels,
                      {k: nuc_meta[k] for k in ("labels", "modality", "ending")}, truth)
        made["nuclei_tiles"] = len(images)
    return made


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the datasets (must not exist)")
    parser.add_argument("--seed-base", type=int, default=4100,
                        help="offset of every seed: 4100 built the first evaluation (/work/fresh), 5100 the second")
    parser.add_argument("--ct-sizes-cases", type=int, default=14,
                        help="phantoms in ct_sizes (every third corrupted); 42 from the fifth evaluation on")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; the datasets are built once into a new folder")
    made = build_all(args.out, args.seed_base, args.ct_sizes_cases)
    print(json.dumps({"slices": made, "total_slices": sum(made.values())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
