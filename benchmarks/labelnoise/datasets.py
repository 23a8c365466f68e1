"""Benchmark datasets with known annotation errors, deterministic by seed.

Each dataset is one nnU-Net v2 raw folder holding every clean case (``<case>``) and, for each
replicate ``r``, the corrupted variants of the cases corrupted in that replicate
(``<case>__r<r>``, same image file, corrupted label). A *replicate* is one realistic dataset: every
case once, ``frac`` of them (25 % by default) with a corrupted label, the error kinds cycled so that
each kind is about equally frequent over the replicates. Replicates differ only in which cases are
corrupted and how, so the foundation model's image embeddings are shared by all of them.

Files under ``<out>/data/<name>/``:
    ``dataset.json``, ``imagesTr/``, ``labelsTr/``   the nnU-Net folder (variants included);
    ``benchmark.json``                               config, cases, replicates with every
                                                     corruption record (kind, class, params,
                                                     changed pixels);
    ``errors/<variant>.npz``                         ``class_errors`` ``(C, *shape)`` bool: the
                                                     pixels whose membership of each foreground
                                                     class was changed (the injected error mask).

Datasets:
    mni     real MRI: axial and coronal slices of the MNI ICBM152 2009a T1 template (nilearn wheel),
            grey/white-matter labels from its tissue probability maps (as the sample data).
    nuclei  real microscopy: the stardist wheel's img2d.tif/mask2d.tif (512×512, DSB 2018, CC0)
            tiled into overlapping 128×128 tiles; instance mask → one "nucleus" class.
    ct      synthetic abdominal CT volumes (HU) from the sample-data generator with other seeds,
            cropped to a slab of slices around the tumour / organs; liver, kidney, tumour.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage as ndi

from . import corruptions as cor

DATA_VERSION = "1"


@dataclass
class DatasetConfig:
    """Size of one benchmark dataset (the full and quick presets are in :data:`PRESETS`)."""

    cases: int
    replicates: int = 4
    frac: float = 0.25
    seed: int = 0
    extra: dict = field(default_factory=dict)


PRESETS = {
    "full": {
        "mni": DatasetConfig(cases=48, replicates=4, seed=11, extra={"axial": 28}),
        "nuclei": DatasetConfig(cases=36, replicates=4, seed=22, extra={"tile": 128, "stride": 76}),
        "ct": DatasetConfig(cases=24, replicates=8, seed=33, extra={"depth": 4}),
    },
    "quick": {
        "mni": DatasetConfig(cases=8, replicates=2, seed=11, extra={"axial": 4}),
        "nuclei": DatasetConfig(cases=8, replicates=2, seed=22, extra={"tile": 128, "stride": 128}),
        "ct": DatasetConfig(cases=4, replicates=2, seed=33, extra={"depth": 3}),
    },
}


@dataclass
class BenchDataset:
    """An on-disk benchmark dataset (see the module docstring)."""

    name: str
    root: Path
    labels: dict[str, int]
    cases: list[str]
    replicates: list[list[dict]]
    config: dict

    @property
    def foreground(self) -> dict[str, int]:
        return {n: v for n, v in self.labels.items() if v != 0}

    def replicate(self, r: int) -> tuple[list[str], np.ndarray, list[str | None]]:
        """Case ids (variant where corrupted), corrupted flags and error kinds of replicate ``r``."""
        by_case = {rec["case"]: rec for rec in self.replicates[r]}
        ids, flags, kinds = [], [], []
        for case in self.cases:
            rec = by_case.get(case)
            ids.append(rec["variant"] if rec else case)
            flags.append(rec is not None)
            kinds.append(rec["kind"] if rec else None)
        return ids, np.array(flags), kinds

    def record(self, variant: str) -> dict | None:
        """The corruption record of a variant id (``None`` for a clean case)."""
        for rep in self.replicates:
            for rec in rep:
                if rec["variant"] == variant:
                    return rec
        return None

    def error_masks(self, variant: str) -> np.ndarray:
        """``(C, *shape)`` bool per-class error mask of a variant (foreground classes in order)."""
        with np.load(self.root / "errors" / f"{variant}.npz") as npz:
            return npz["class_errors"]

    def all_ids(self, replicates: int | None = None) -> list[str]:
        """Clean cases plus the variants of the first ``replicates`` replicates (all by default)."""
        reps = self.replicates if replicates is None else self.replicates[:replicates]
        return list(self.cases) + [rec["variant"] for rep in reps for rec in rep]


# ------------------------------------------------------------------------------ sources

def stardist_images_dir() -> Path | None:
    """Folder with the stardist wheel's example images, found without importing stardist."""
    spec = importlib.util.find_spec("stardist")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "images"
    return folder if (folder / "img2d.tif").is_file() and (folder / "mask2d.tif").is_file() else None


def available(name: str) -> str | None:
    """``None`` if the source data of a dataset is installed, else why not."""
    if name == "mni" and cor.sample_data_module().nilearn_data_dir() is None:
        return "nilearn (with its bundled MNI152 template) is not installed: pip install nilearn"
    if name == "nuclei" and stardist_images_dir() is None:
        return "stardist (its wheel ships img2d.tif/mask2d.tif) is not installed: pip install stardist"
    return None


def _coronal(vol: np.ndarray, y: int) -> np.ndarray:
    """RAS volume → coronal slice (H, W): superior at the top, patient's right on the left."""
    return np.ascontiguousarray(vol[::-1, y, ::-1].T)


def _even_levels(area: np.ndarray, n: int, min_fraction: float = 0.3) -> list[int]:
    good = np.flatnonzero(area >= min_fraction * area.max())
    return [int(v) for v in np.round(np.linspace(good.min(), good.max(), n)).astype(int)]


def build_mni(config: DatasetConfig):
    """Clean MNI slices: images (uint16), labels (0 bg, 1 GM, 2 WM)."""
    sd = cor.sample_data_module()
    t1, gm, wm, _csf, _ = sd.load_mni(sd.nilearn_data_dir())
    lab_vol = sd.mni_labels_from_probs(gm, wm, None)
    n_axial = int(config.extra.get("axial", config.cases // 2))
    images, labels, info = {}, {}, {}
    brain = lab_vol > 0
    scale = 257 if t1.dtype == np.uint8 else 65535.0 / max(float(t1.max()), 1e-6)
    for i, z in enumerate(_even_levels(brain.sum(axis=(0, 1)), n_axial)):
        case = f"mni_ax{i:03d}"
        images[case] = np.round(sd._axial(t1, z).astype(np.float64) * scale).astype(np.uint16)
        labels[case] = sd._axial(lab_vol, z).astype(np.uint8)
        info[case] = {"plane": "axial", "voxel": z}
    for i, y in enumerate(_even_levels(brain.sum(axis=(0, 2)), config.cases - n_axial)):
        case = f"mni_co{i:03d}"
        images[case] = np.round(_coronal(t1, y).astype(np.float64) * scale).astype(np.uint16)
        labels[case] = _coronal(lab_vol, y).astype(np.uint8)
        info[case] = {"plane": "coronal", "voxel": y}
    planners = {
        "erosion": lambda lab, rng: cor.plan_erosion(lab, rng, {2: (2, 5, 1), 1: (2, 2, 0)}),
        "dilation": lambda lab, rng: cor.plan_dilation(lab, rng, {1: (2, 5, [0]), 2: (2, 4, [1])}),
        "boundary_shift": lambda lab, rng: cor.plan_shift(lab, rng, {1: 0, 2: 1}),
        "missing_structure": lambda lab, rng: cor.plan_missing(lab, rng, {1: ((12, 20), 0, None),
                                                                          2: ((10, 16), 1, None)}),
        "spurious_blob": lambda lab, rng: cor.plan_blob(
            lab, rng, {1: (5, 10, [0, 2], None), 2: (5, 10, [0, 1], None)},
            region=ndi.binary_dilation(lab > 0, iterations=5)),
        "class_swap": lambda lab, rng: cor.plan_swap(lab, rng, [(1, 2)], radius=(12, 20)),
        "coarse_polygon": lambda lab, rng: cor.plan_polygon(lab, rng, {1: 0, 2: 1}, tolerance=(2, 5)),
    }
    meta = {"labels": {"background": 0, "grey_matter": 1, "white_matter": 2}, "modality": "MRI",
            "ending": ".png", "source": "nilearn MNI ICBM152 2009a T1 + GM/WM maps", "cases_info": info}
    return images, labels, planners, meta


def build_nuclei(config: DatasetConfig):
    """Overlapping tiles of the stardist nuclei image; semantic nucleus label (1)."""
    import tifffile

    folder = stardist_images_dir()
    image = tifffile.imread(folder / "img2d.tif")
    instances = tifffile.imread(folder / "mask2d.tif")
    tile, stride = int(config.extra.get("tile", 128)), int(config.extra.get("stride", 64))
    starts = list(range(0, image.shape[0] - tile + 1, stride))
    images, labels, info = {}, {}, {}
    for y in starts:
        for x in starts:
            if len(images) >= config.cases:
                break
            case = f"nuc_y{y:03d}_x{x:03d}"
            images[case] = np.ascontiguousarray(image[y:y + tile, x:x + tile]).astype(np.uint16)
            labels[case] = (instances[y:y + tile, x:x + tile] > 0).astype(np.uint8)
            info[case] = {"y": y, "x": x}
    planners = {
        "erosion": lambda lab, rng: cor.plan_erosion(lab, rng, {1: (2, 3, 0)}),
        "dilation": lambda lab, rng: cor.plan_dilation(lab, rng, {1: (2, 4, [0])}),
        "boundary_shift": lambda lab, rng: cor.plan_shift(lab, rng, {1: 0}),
        "missing_structure": lambda lab, rng: cor.plan_missing(lab, rng, {1: (None, 0, (1, 3))}),
        "spurious_blob": lambda lab, rng: cor.plan_blob(lab, rng, {1: (4, 8, [0], None)}, count=(1, 2)),
        "coarse_polygon": lambda lab, rng: cor.plan_polygon(lab, rng, {1: 0}, tolerance=(2, 4)),
    }
    meta = {"labels": {"background": 0, "nucleus": 1}, "modality": "fluorescence microscopy",
            "ending": ".png", "source": "stardist img2d.tif/mask2d.tif (Kaggle DSB 2018, CC0)",
            "cases_info": info, "tile": tile, "stride": stride}
    return images, labels, planners, meta


def build_ct(config: DatasetConfig):
    """Synthetic CT volumes (sample-data generator, other seeds), cropped to ``depth`` slices."""
    sd = cor.sample_data_module()
    depth = int(config.extra.get("depth", 8))
    images, labels, info = {}, {}, {}
    for i in range(config.cases):
        rng = np.random.default_rng([1000 + config.seed, i])
        with_tumour = i % 5 != 4  # one volume in five has no tumour
        hu, lab, _ = sd.synth_ct_case(rng, with_tumour)
        tumour = np.flatnonzero((lab == 3).any(axis=(1, 2)))
        organs = ((lab == 1).sum(axis=(1, 2)) > 0) & ((lab == 2).sum(axis=(1, 2)) > 0)
        centre = int(tumour.mean()) if len(tumour) else int(np.flatnonzero(organs).mean()) if organs.any() \
            else lab.shape[0] // 2
        start = int(np.clip(centre - depth // 2, 0, lab.shape[0] - depth))
        case = f"ct_{i:03d}"
        images[case] = np.ascontiguousarray(hu[start:start + depth])
        labels[case] = np.ascontiguousarray(lab[start:start + depth])
        info[case] = {"slices": [start, start + depth], "tumour": bool(len(tumour))}
    planners = {
        "erosion": lambda lab, rng: cor.plan_erosion(lab, rng, {1: (2, 4, 0), 2: (2, 3, 0)}),
        "dilation": lambda lab, rng: cor.plan_dilation(lab, rng, {1: (2, 4, [0]), 2: (2, 3, [0]), 3: (2, 3, [1])}),
        "boundary_shift": lambda lab, rng: cor.plan_shift(lab, rng, {1: 0, 2: 0, 3: 1}),
        "missing_structure": lambda lab, rng: cor.plan_missing(lab, rng, {2: (None, 0, (1, 1)), 3: (None, 1, (1, 1))}),
        "spurious_blob": lambda lab, rng: cor.plan_blob(lab, rng, {3: (3, 6, [1], (0, 1))}, region=lab == 1),
        "class_swap": lambda lab, rng: cor.plan_swap(lab, rng, [(3, 1), (2, 1)], radius=(3, 6), near=3),
        "coarse_polygon": lambda lab, rng: cor.plan_polygon(lab, rng, {1: 0, 2: 0}, tolerance=(2, 4)),
    }
    meta = {"labels": {"background": 0, "liver": 1, "kidney": 2, "tumour": 3}, "modality": "CT",
            "ending": ".nii.gz", "source": "scripts/make_sample_data.py synth_ct_case (seeds "
            f"[{1000 + config.seed}, i])", "cases_info": info, "spacing_mm": list(sd.CT_SPACING)}
    return images, labels, planners, meta


BUILDERS: dict[str, Callable] = {"mni": build_mni, "nuclei": build_nuclei, "ct": build_ct}


# ------------------------------------------------------------------------------ corruption plan

def plan_replicates(labels: dict[str, np.ndarray], planners: dict, config: DatasetConfig,
                    min_changed: int = 30) -> list[list[dict]]:
    """Which cases are corrupted in each replicate, and how (kinds cycled over all replicates)."""
    cases = sorted(labels)
    kinds = [k for k in cor.KINDS if k in planners]
    order_rng = np.random.default_rng([config.seed, 999])
    kinds = [kinds[i] for i in order_rng.permutation(len(kinds))]
    n_cor = max(1, int(round(config.frac * len(cases))))
    replicates = []
    counter = 0
    for r in range(config.replicates):
        rng = np.random.default_rng([config.seed, r])
        pool = [cases[i] for i in rng.permutation(len(cases))]
        records = []
        for _ in range(n_cor):
            kind = kinds[counter % len(kinds)]
            counter += 1
            for attempt in range(60):
                case = pool[attempt % len(pool)]
                rec = planners[kind](labels[case], rng)
                if rec is None:
                    continue
                corrupted = cor.apply_corruption(labels[case], rec)
                changed = int(np.count_nonzero(corrupted != labels[case]))
                if changed < min_changed:
                    continue
                name = {v: k for k, v in config.extra.get("_labels", {}).items()}.get(rec["class_value"])
                records.append({"case": case, "variant": f"{case}__r{r}", "kind": rec["kind"],
                                "class": name, "class_value": rec["class_value"], "params": rec["params"],
                                "changed_pixels": changed})
                pool.remove(case)
                break
        replicates.append(sorted(records, key=lambda x: x["case"]))
    return replicates


# ------------------------------------------------------------------------------ writing

def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _config_key(name: str, config: DatasetConfig) -> str:
    payload = json.dumps([DATA_VERSION, name, config.cases, config.replicates, config.frac, config.seed,
                          config.extra], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _write_case(root: Path, case: str, image, label, meta, write_image: bool) -> None:
    sd = cor.sample_data_module()
    ending = meta["ending"]
    if ending == ".png":
        if write_image:
            sd._write_png(root / "imagesTr" / f"{case}_0000.png", image)
        sd._write_png(root / "labelsTr" / f"{case}.png", label)
    else:
        affine = sd.ct_affine(shape=label.shape)
        if write_image:
            sd._write_nifti(root / "imagesTr" / f"{case}_0000.nii.gz", image, affine, np.int16)
        sd._write_nifti(root / "labelsTr" / f"{case}.nii.gz", label, affine, np.uint8)


def build_dataset(name: str, config: DatasetConfig, out: Path, log=print) -> BenchDataset:
    """Write (or reuse, when the config is unchanged) one benchmark dataset under ``out/data``."""
    root = out / "data" / name
    key = _config_key(name, config)
    manifest = root / "benchmark.json"
    if manifest.is_file():
        meta = json.loads(manifest.read_text())
        if meta.get("key") == key:
            return BenchDataset(name, root, meta["labels"], meta["cases"], meta["replicates"], meta)
    if root.exists():
        shutil.rmtree(root)
    images, labels, planners, meta = BUILDERS[name](config)
    config.extra["_labels"] = meta["labels"]
    replicates = plan_replicates(labels, planners, config)
    config.extra.pop("_labels")
    values = [v for v in meta["labels"].values() if v != 0]
    for case in sorted(images):
        _write_case(root, case, images[case], labels[case], meta, True)
    for rep in replicates:
        for rec in rep:
            clean = labels[rec["case"]]
            corrupted = cor.apply_corruption(clean, rec)
            _write_case(root, rec["variant"], None, corrupted, meta, False)
            image_file = next((root / "imagesTr").glob(f"{rec['case']}_0000*"))
            _link(image_file, root / "imagesTr" / image_file.name.replace(rec["case"], rec["variant"], 1))
            (root / "errors").mkdir(parents=True, exist_ok=True)
            np.savez_compressed(root / "errors" / f"{rec['variant']}.npz",
                                class_errors=cor.class_error_masks(clean, corrupted, values))
    n_total = len(images) + sum(len(r) for r in replicates)
    dataset_json = {"channel_names": {"0": meta["modality"]}, "labels": meta["labels"], "numTraining": n_total,
                    "file_ending": meta["ending"], "name": f"LabelNoise_{name}",
                    "description": f"label-error benchmark ({meta['source']}); see benchmark.json"}
    (root / "dataset.json").write_text(json.dumps(dataset_json, indent=1))
    manifest_data = {"key": key, "name": name, "labels": meta["labels"], "cases": sorted(images),
                     "replicates": replicates,
                     "config": {"cases": config.cases, "replicates": config.replicates, "frac": config.frac,
                                "seed": config.seed, "extra": config.extra},
                     "source": meta["source"], "cases_info": meta["cases_info"]}
    manifest.write_text(json.dumps(manifest_data, indent=1))
    log(f"[data] {name}: {len(images)} cases, {config.replicates} replicates × "
        f"{len(replicates[0]) if replicates else 0} corrupted -> {root}")
    return BenchDataset(name, root, meta["labels"], sorted(images), replicates, manifest_data)


def scoring_root(dataset: BenchDataset, mode: str, out: Path) -> Path:
    """A hard-linked copy of the dataset folder for one input mode (its own ``.aleatoric`` cache)."""
    root = out / "work" / f"{dataset.name}_{mode}"
    stamp = root / ".benchmark_key"
    if stamp.is_file() and stamp.read_text() == dataset.config["key"]:
        return root
    # Relink the files but keep .aleatoric: its caches are keyed by content, so whatever is
    # still valid for the new data (clean cases, embeddings) is reused.
    for sub in ("imagesTr", "labelsTr"):
        if (root / sub).exists():
            shutil.rmtree(root / sub)
        for file in (dataset.root / sub).iterdir():
            _link(file, root / sub / file.name)
    _link(dataset.root / "dataset.json", root / "dataset.json")
    stamp.write_text(dataset.config["key"])
    return root
