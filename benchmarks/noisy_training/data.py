"""Clean and noisy nnU-Net folders for the noisy-label training benchmark (issue 12).

For a dataset and a *corruption seed* ``S``, :func:`build` writes under ``OUT/<dataset>-c<S>/``:

    ``clean/``       nnU-Net v2 raw folder (``dataset.json``, ``imagesTr/``, ``labelsTr/``) with the
                     clean label of every case;
    ``noisy/``       the same images (hard links to ``clean/imagesTr``) and cases; the labels of the
                     corrupted training cases are corrupted, every other label is a copy (not a
                     link: a correction saved in ``noisy/`` never reaches ``clean/``) of the clean one;
    ``truth.json``   ``train`` / ``val`` (the core's split, :func:`split_cases` with 0.2: the
                     validation cases every run uses), ``corrupted`` ``{case: {kind, drawn_as,
                     changed_fraction, class_changed_fraction, class, class_value, params,
                     changed_voxels}}``, ``clean_labels`` ``{case: path of
                     its clean label file relative to OUT/<dataset>-c<S>}``, the noise settings used.

Only training cases are corrupted; validation labels are clean in both folders. Which training
cases are corrupted, with which kind and parameters, depends only on the corruption seed (and the
noise settings), so one seed can be used for tuning and fresh seeds for reporting. The images do
not depend on the seed: the foundation model's embedding cache can be shared between seeds.

``changed_fraction`` = voxels whose label changed / voxels that are foreground in the clean or the
noisy label of that case; ``class_changed_fraction`` = the same over the voxels of the corrupted
class (in the clean or the noisy label). A drawn error is kept when both reach the dataset's
minimum (``min_changed_fraction``, ``min_class_fraction``) and at least 20 voxels change.

Datasets (``PRESETS``):
    mni   real MRI, 2D: axial and coronal slices of the MNI ICBM152 2009a T1 template (nilearn
          wheel) resampled to 2 mm (2×2×2 block means of the template and of its tissue
          probability maps, so a slice is about 98×116 px and training is cheap on a CPU); labels
          0 background, 1 grey matter, 2 white matter (argmax of the probability maps, background
          where the largest is ≤ 0.5, as the sample data).
    ct    synthetic 3D abdominal CT (``scripts/make_sample_data.py``'s ``synth_ct_case``, 6×3×3 mm
          voxels), cropped to a slab of ``depth`` slices around the tumour (or the organs):
          ``depth``×96×96 voxels; labels 0 background, 1 liver, 2 kidney, 3 tumour.

Noise (``NOISE``): a fraction ``frac`` of the training cases (MNI 50 %, CT 75 %) get one error
each; the kinds come in proportion to their weights (a ``kind:class`` entry fixes the class, so
every seed gets the same mix), assigned to the cases in a seed-dependent order (``drawn_as`` in
``truth.json``; a kind that cannot be drawn on a case falls back to the next kind). The errors are
large and mostly *systematic* (the same class grows in the same direction in many cases: grey matter over-drawn into white
matter; organs outlined too generously; tumours missed), which is what costs a network trained on
them Dice on clean validation labels; random, unbiased errors largely average out. The levels
were tuned on corruption seed 100 (``CALIBRATION.md``).

CLI::

    python -m benchmarks.noisy_training.data build --out DIR --dataset mni|ct --corruption-seed S
        [--preset full|tiny] [--frac F]
    python -m benchmarks.noisy_training.data score OUT/<dataset>-c<S>/noisy [--embeddings-from
        OUT/<dataset>-c<T>/noisy/.aleatoric/cache/embeddings]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from benchmarks.labelnoise import corruptions as cor
from benchmarks.labelnoise.datasets import _coronal, _even_levels

VERSION = "1"

PRESETS = {
    "full": {
        "mni": {"axial": 40, "coronal": 40, "zoom": 2},
        "ct": {"cases": 28, "depth": 16, "data_seed": 12},
    },
    "tiny": {
        "mni": {"axial": 4, "coronal": 4, "zoom": 2},
        "ct": {"cases": 6, "depth": 6, "data_seed": 12},
    },
}

#: per dataset: fraction of training cases corrupted, kinds with weights and planner arguments
NOISE = {
    "mni": {
        "frac": 0.5,
        "min_changed_fraction": 0.04,
        "kinds": {  # kind: weight (the planners are in _planners)
            "dilation": 3,          # grey matter grows by 2-3 px (4-6 mm) into white matter/background
            "erosion": 2,           # white matter shrinks by 2-3 px, lost pixels become grey matter
            "missing_structure": 1,  # a 12-20 px disc of white matter labelled grey matter
            "class_swap": 1,        # GM and WM swapped in a 10-16 px disc
            "coarse_polygon": 1,    # GM outline redrawn as a coarse polygon (3-5 px tolerance)
            "spurious_blob": 1,     # 1-2 grey-matter blobs (radius 4-7 px) away from the cortex
        },
    },
    "ct": {
        "frac": 0.75,
        "min_changed_fraction": 0.0,
        "min_class_fraction": 0.15,
        # "kind:class" fixes the class, so every seed gets the same mix (a kind alone draws the class);
        # organs are only ever over-drawn and tumours only ever missed (one direction per class)
        "kinds": {
            "dilation:liver": 4,    # liver over-drawn by 4-7 px in-plane into the background
            "dilation:kidney": 4,   # kidney over-drawn by 3-5 px into the background
            "missing_structure:tumour": 3,  # the tumour not drawn (-> liver)
            "class_swap": 1,        # tumour/kidney and liver swapped in a ball of 5-8 px
            "spurious_blob": 1,     # a false tumour (3-6 px) inside the liver
            "coarse_polygon": 1,    # liver or kidney outlines as coarse polygons (3-5 px)
        },
    },
}

LABELS = {
    "mni": {"background": 0, "grey_matter": 1, "white_matter": 2},
    "ct": {"background": 0, "liver": 1, "kidney": 2, "tumour": 3},
}

_TAGS = {"mni": 1, "ct": 2}


# ------------------------------------------------------------------------------ sources

def _block_mean(vol: np.ndarray, f: int) -> np.ndarray:
    shape = [s - s % f for s in vol.shape]
    v = np.asarray(vol[:shape[0], :shape[1], :shape[2]], dtype=np.float32)
    return v.reshape(shape[0] // f, f, shape[1] // f, f, shape[2] // f, f).mean(axis=(1, 3, 5))


def source_mni(params: dict) -> tuple[dict, dict, dict]:
    """MNI slices at ``zoom`` mm: images uint16, labels uint8, per-case info."""
    sd = cor.sample_data_module()
    if sd.nilearn_data_dir() is None:
        raise RuntimeError("nilearn (with its bundled MNI152 template) is not installed: pip install nilearn")
    t1, gm, wm, _csf, _ = sd.load_mni(sd.nilearn_data_dir())
    f = int(params.get("zoom", 2))
    scale_t1 = 1.0 / 255.0 if t1.dtype == np.uint8 else 1.0 / max(float(t1.max()), 1e-6)
    scale_p = 1.0 / 255.0 if gm.dtype == np.uint8 else 1.0
    t1 = _block_mean(t1, f) * scale_t1
    lab_vol = sd.mni_labels_from_probs(_block_mean(gm, f) * scale_p, _block_mean(wm, f) * scale_p, None)
    brain = lab_vol > 0
    images, labels, info = {}, {}, {}

    def add(case, img, lab, plane, voxel):
        images[case] = np.round(np.clip(img, 0, 1) * 65535.0).astype(np.uint16)
        labels[case] = lab.astype(np.uint8)
        info[case] = {"plane": plane, "voxel": int(voxel), "zoom_mm": f}

    for i, z in enumerate(_even_levels(brain.sum(axis=(0, 1)), int(params["axial"]))):
        add(f"mni_ax{i:03d}", sd._axial(t1, z), sd._axial(lab_vol, z), "axial", z)
    for i, y in enumerate(_even_levels(brain.sum(axis=(0, 2)), int(params["coronal"]))):
        add(f"mni_co{i:03d}", _coronal(t1, y), _coronal(lab_vol, y), "coronal", y)
    return images, labels, info


def source_ct(params: dict) -> tuple[dict, dict, dict]:
    """Synthetic CT volumes (HU int16) cropped to ``depth`` slices; labels uint8; per-case info."""
    sd = cor.sample_data_module()
    depth = int(params["depth"])
    images, labels, info = {}, {}, {}
    for i in range(int(params["cases"])):
        rng = np.random.default_rng([1000 + int(params["data_seed"]), i])
        with_tumour = i % 5 != 4  # one volume in five has no tumour
        hu, lab, _ = sd.synth_ct_case(rng, with_tumour)
        tumour = np.flatnonzero((lab == 3).any(axis=(1, 2)))
        organs = ((lab == 1).sum(axis=(1, 2)) > 0) & ((lab == 2).sum(axis=(1, 2)) > 0)
        centre = (int(tumour.mean()) if len(tumour) else int(np.flatnonzero(organs).mean()) if organs.any()
                  else lab.shape[0] // 2)
        start = int(np.clip(centre - depth // 2, 0, lab.shape[0] - depth))
        case = f"ct_{i:03d}"
        images[case] = np.ascontiguousarray(hu[start:start + depth]).astype(np.int16)
        labels[case] = np.ascontiguousarray(lab[start:start + depth]).astype(np.uint8)
        info[case] = {"slices": [start, start + depth], "tumour": bool((labels[case] == 3).any())}
    return images, labels, info


SOURCES = {"mni": source_mni, "ct": source_ct}

_SOURCE_CACHE: dict[str, tuple[dict, dict, dict]] = {}


def source(dataset: str, params: dict) -> tuple[dict, dict, dict]:
    """Images, clean labels and case info of a dataset (kept in memory: they do not depend on the seed)."""
    key = json.dumps([dataset, params], sort_keys=True)
    if key not in _SOURCE_CACHE:
        _SOURCE_CACHE.clear()
        _SOURCE_CACHE[key] = SOURCES[dataset](params)
    images, labels, info = _SOURCE_CACHE[key]
    return dict(images), {c: v.copy() for c, v in labels.items()}, json.loads(json.dumps(info))


# ------------------------------------------------------------------------------ noise

def _planners(dataset: str) -> dict:
    if dataset == "mni":
        return {
            "dilation": lambda lab, rng: cor.plan_dilation(lab, rng, {1: (2, 3, [0, 2])}),
            "erosion": lambda lab, rng: cor.plan_erosion(lab, rng, {2: (2, 3, 1)}),
            "missing_structure": lambda lab, rng: cor.plan_missing(lab, rng, {2: ((12, 20), 1, None)}),
            "class_swap": lambda lab, rng: cor.plan_swap(lab, rng, [(1, 2), (2, 1)], radius=(10, 16), near=4),
            "coarse_polygon": lambda lab, rng: cor.plan_polygon(lab, rng, {1: 0}, tolerance=(3, 5)),
            "spurious_blob": lambda lab, rng: cor.plan_blob(
                lab, rng, {1: (4, 7, [0, 2], None)}, region=ndi.binary_dilation(lab > 0, iterations=12),
                count=(1, 2)),
        }
    dilation = {1: (4, 7, [0]), 2: (3, 5, [0]), 3: (2, 4, [1])}
    return {
        "dilation": lambda lab, rng: cor.plan_dilation(lab, rng, dilation),
        "dilation:liver": lambda lab, rng: cor.plan_dilation(lab, rng, {1: dilation[1]}),
        "dilation:kidney": lambda lab, rng: cor.plan_dilation(lab, rng, {2: dilation[2]}),
        "dilation:tumour": lambda lab, rng: cor.plan_dilation(lab, rng, {3: dilation[3]}),
        "missing_structure": lambda lab, rng: cor.plan_missing(
            lab, rng, {3: (None, 1, (1, 1))} if (lab == 3).sum() >= 20 else {2: (None, 0, (1, 1))}, min_size=20),
        "missing_structure:tumour": lambda lab, rng: cor.plan_missing(lab, rng, {3: (None, 1, (1, 1))}, min_size=20),
        "class_swap": lambda lab, rng: cor.plan_swap(lab, rng, [(3, 1), (2, 1)], radius=(5, 8), near=3),
        "spurious_blob": lambda lab, rng: cor.plan_blob(lab, rng, {3: (3, 6, [1], (0, 1))}, region=lab == 1),
        "coarse_polygon": lambda lab, rng: cor.plan_polygon(lab, rng, {1: 0, 2: 0}, tolerance=(3, 5)),
    }


def changed_fraction(clean: np.ndarray, noisy: np.ndarray) -> tuple[int, float]:
    """(changed voxels, changed voxels / voxels foreground in either label)."""
    changed = int(np.count_nonzero(clean != noisy))
    fg = int(np.count_nonzero((clean > 0) | (noisy > 0)))
    return changed, changed / max(fg, 1)


def plan_noise(dataset: str, labels: dict[str, np.ndarray], train: list[str], seed: int, noise: dict) -> dict:
    """``{case: record}`` for the corrupted training cases (record as in ``truth.json``)."""
    names = {v: k for k, v in LABELS[dataset].items()}
    planners = _planners(dataset)
    rng = np.random.default_rng([int(seed), _TAGS[dataset]])
    n_cor = int(round(float(noise["frac"]) * len(train)))
    order = [train[i] for i in rng.permutation(len(train))]
    weighted = [k for k, w in noise["kinds"].items() for _ in range(int(w))]
    # kinds in proportion to their weights, in a seed-dependent order
    kinds = [weighted[i % len(weighted)] for i in range(n_cor)]
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    records: dict[str, dict] = {}
    for case, kind in zip(order[:n_cor], kinds):
        crng = np.random.default_rng([int(seed), _TAGS[dataset], 7, sorted(labels).index(case)])
        clean = labels[case]
        fallback = [kind] + [k for k in noise["kinds"] if k != kind]
        for attempt in range(40):
            k = fallback[(attempt // 8) % len(fallback)]  # 8 draws of the wanted kind, then the next
            rec = planners[k](clean, crng)
            if rec is None:
                continue
            noisy = cor.apply_corruption(clean, rec)
            changed, frac = changed_fraction(clean, noisy)
            if frac < float(noise["min_changed_fraction"]) or changed < 20:
                continue
            in_class = int(np.count_nonzero((clean == rec["class_value"]) | (noisy == rec["class_value"])))
            if changed / max(in_class, 1) < float(noise.get("min_class_fraction", 0.0)):
                continue
            records[case] = {"kind": rec["kind"], "drawn_as": k, "changed_fraction": round(frac, 4),
                             "class_changed_fraction": round(changed / max(in_class, 1), 4),
                             "class": names[rec["class_value"]],
                             "class_value": int(rec["class_value"]), "params": rec["params"],
                             "changed_voxels": changed}
            break
    return dict(sorted(records.items()))


# ------------------------------------------------------------------------------ writing

def _write(path: Path, array: np.ndarray, dataset: str, nifti_dtype) -> None:
    """An image or label file: PNG for the MNI slices, NIfTI (``nifti_dtype``) for the CT volumes."""
    sd = cor.sample_data_module()
    if dataset == "mni":
        sd._write_png(path, array)
    else:
        sd._write_nifti(path, array, sd.ct_affine(shape=array.shape), nifti_dtype)


def _dataset_json(dataset: str, n: int, name: str) -> dict:
    meta = {"channel_names": {"0": "MRI" if dataset == "mni" else "CT"}, "labels": LABELS[dataset],
            "numTraining": n, "file_ending": ".png" if dataset == "mni" else ".nii.gz", "name": name}
    if dataset == "mni":
        meta["description"] = ("MNI ICBM152 2009a T1 slices at 2 mm with GM/WM labels (noisy-label training "
                               "benchmark, benchmarks/noisy_training)")
        meta["spacing_mm"] = [2.0, 2.0]
    else:
        meta["description"] = "synthetic abdominal CT (scripts/make_sample_data.py), noisy-label training benchmark"
        meta["spacing_mm"] = list(cor.sample_data_module().CT_SPACING)
    return meta


def build(out: Path, dataset: str, seed: int, preset: str = "full", frac: float | None = None,
          log=print) -> Path:
    """Write ``OUT/<dataset>-c<seed>/{clean,noisy,truth.json}``; return that folder.

    An existing folder is replaced, except ``noisy/.aleatoric/cache/embeddings`` (it depends only on
    the images, which do not depend on the seed or the noise)."""
    from napari_aleatoric.training.data import split_cases

    if dataset not in SOURCES:
        raise ValueError(f"unknown dataset {dataset!r} (mni or ct)")
    started = time.perf_counter()
    params = PRESETS[preset][dataset]
    noise = json.loads(json.dumps(NOISE[dataset]))
    if frac is not None:
        noise["frac"] = float(frac)
    images, labels, info = source(dataset, params)
    cases = sorted(images)
    train, val = split_cases(cases, 0.2)
    records = plan_noise(dataset, labels, train, seed, noise)

    root = Path(out) / f"{dataset}-c{seed}"
    keep = root / "noisy" / ".aleatoric" / "cache" / "embeddings"
    saved = None
    if keep.is_dir():
        saved = Path(out) / f".{dataset}-c{seed}.embeddings.keep"
        if saved.exists():
            shutil.rmtree(saved)
        keep.rename(saved)
    if root.exists():
        shutil.rmtree(root)
    ending = ".png" if dataset == "mni" else ".nii.gz"
    for sub in ("clean", "noisy"):
        (root / sub / "imagesTr").mkdir(parents=True)
        (root / sub / "labelsTr").mkdir(parents=True)
    for case in cases:
        image_file = root / "clean" / "imagesTr" / f"{case}_0000{ending}"
        _write(image_file, images[case], dataset, np.int16)
        os.link(image_file, root / "noisy" / "imagesTr" / image_file.name)
        clean_file = root / "clean" / "labelsTr" / f"{case}{ending}"
        _write(clean_file, labels[case], dataset, np.uint8)
        noisy_file = root / "noisy" / "labelsTr" / f"{case}{ending}"
        if case in records:
            _write(noisy_file, cor.apply_corruption(labels[case], records[case]), dataset, np.uint8)
        else:
            shutil.copyfile(clean_file, noisy_file)
    for sub in ("clean", "noisy"):
        meta = _dataset_json(dataset, len(cases), f"NoisyTraining_{dataset}_c{seed}_{sub}")
        (root / sub / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n")
    truth = {
        "version": VERSION, "dataset": dataset, "corruption_seed": int(seed), "preset": preset,
        "labels": LABELS[dataset], "source": params, "noise": noise,
        "train": train, "val": val,
        "corrupted_fraction": round(len(records) / max(len(train), 1), 4),
        "corrupted": records,
        "clean_labels": {c: f"clean/labelsTr/{c}{ending}" for c in cases},
        "noisy_labels": {c: f"noisy/labelsTr/{c}{ending}" for c in cases},
        "cases_info": info,
    }
    (root / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    if saved is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        saved.rename(keep)
    kinds = {}
    for rec in records.values():
        kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
    log(f"[noisy_training] {dataset} seed {seed}: {len(cases)} cases ({len(train)} train, {len(val)} val), "
        f"{len(records)} corrupted {kinds}, mean changed fraction "
        f"{np.mean([r['changed_fraction'] for r in records.values()]) if records else 0:.3f} -> {root} "
        f"({time.perf_counter() - started:.1f} s)")
    return root


def score(folder: Path, embeddings_from: Path | None = None, model: str = "litemedsam", log=print) -> dict:
    """Score ``folder`` (a ``noisy/`` folder) with the foundation model on the CPU, one thread.

    ``embeddings_from``: a ``.aleatoric/cache/embeddings`` folder of the same images (another seed)
    hard-linked in first, so only the prompts, the SPS and the label-quality pass are recomputed.
    Writes ``.aleatoric/scores.csv``/``scores.json`` and ``.aleatoric/scoring_time.json``."""
    import torch

    from napari_aleatoric.pipelines.scoring import score_dataset

    torch.set_num_threads(1)
    folder = Path(folder)
    target = folder / ".aleatoric" / "cache" / "embeddings"
    linked = 0
    if embeddings_from is not None:
        target.mkdir(parents=True, exist_ok=True)
        for file in Path(embeddings_from).rglob("*"):
            if file.is_file():
                dst = target / file.relative_to(embeddings_from)
                if not dst.exists():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.link(file, dst)
                    linked += 1
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in score_dataset(folder, model, device="cpu"):
        pass
    timing = {"folder": str(folder), "model": model, "wall_seconds": round(time.perf_counter() - wall, 1),
              "cpu_seconds": round(time.process_time() - cpu, 1), "embeddings_linked": linked,
              "embeddings_from": str(embeddings_from) if embeddings_from else None,
              "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
              "load_average": os.getloadavg()}
    (folder / ".aleatoric" / "scoring_time.json").write_text(json.dumps(timing, indent=1) + "\n")
    log(f"[noisy_training] scored {folder}: {timing['wall_seconds']} s wall, {timing['cpu_seconds']} s CPU "
        f"({linked} embedding files linked)")
    return timing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write OUT/<dataset>-c<seed>/{clean,noisy,truth.json}")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--dataset", choices=sorted(SOURCES), required=True)
    b.add_argument("--corruption-seed", type=int, required=True)
    b.add_argument("--preset", choices=sorted(PRESETS), default="full")
    b.add_argument("--frac", type=float, default=None, help="fraction of training cases corrupted "
                   "(default: the dataset's NOISE setting)")
    s = sub.add_parser("score", help="score a noisy/ folder with LiteMedSAM on the CPU (one thread)")
    s.add_argument("folder", type=Path)
    s.add_argument("--embeddings-from", type=Path, default=None,
                   help="hard-link this .aleatoric/cache/embeddings folder (same images) in first")
    s.add_argument("--model", default="litemedsam")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.out, args.dataset, args.corruption_seed, args.preset, args.frac)
    else:
        score(args.folder, args.embeddings_from, args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
