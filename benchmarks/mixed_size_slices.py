"""The flag on all-clean 2D datasets whose slices differ in size: a measurement of a known failure mode.

The flag's ``label_issue`` parts use lower thresholds in tables of single slices (the tenth flag
round, docs/label_quality.md), chosen on sets whose slices are all of one size. Here the 30 clean
sagittal MNI slices of ``fresh_datasets.py``'s ``mni_clean`` are each resampled by a factor drawn
from ``SCALES`` (image: linear with anti-aliasing; annotation: nearest), so the slices of one
dataset differ up to 4× in pixel count, one dataset per seed. Each is scored with the shipped
pipeline and its defaults (``fresh_evaluation.score``), and the clean cases flagged are counted
(nothing is wrong in them)::

    python benchmarks/mixed_size_slices.py --out /work/mixed_sizes --seeds 1 2 3 \\
        --json benchmarks/results/mixed_size_slices.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import fresh_datasets as fresh  # noqa: E402
from fresh_evaluation import score  # noqa: E402

#: resampling factors per side (a slice of factor 0.5 has a quarter of the pixels of one at 1.0)
SCALES = (0.5, 0.75, 1.0)


def build(root: Path, seed: int) -> dict[str, float]:
    """The clean sagittal slices, each resampled by a seeded factor from :data:`SCALES`, written as a
    PNG dataset at ``root``. Returns case id → factor."""
    from skimage.transform import rescale

    images, labels = fresh.mni_cases(fresh.mni_levels()[0], "sag_l")
    _planners, meta = fresh.mni_setup()
    rng = np.random.default_rng([seed, 7])
    factors = {}
    for case in sorted(images):
        factor = float(rng.choice(SCALES))
        factors[case] = factor
        images[case] = np.round(rescale(images[case].astype(np.float64), factor, order=1, anti_aliasing=True,
                                        preserve_range=True)).clip(0, 65535).astype(np.uint16)
        labels[case] = rescale(labels[case], factor, order=0, anti_aliasing=False, preserve_range=True).astype(np.uint8)
    fresh.write_dataset(root, f"mni_clean_mixed_sizes_{seed}", images, labels, meta, {"corrupted": {}})
    return factors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the datasets (created)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--json", type=Path, help="results file")
    args = parser.parse_args(argv)
    report = {"command": " ".join(["python", *sys.argv]), "machine": f"{platform.platform()}, CPU only",
              "scales": SCALES, "sets": {}}
    for seed in args.seeds:
        root = args.out / f"seed{seed}"
        factors = json.loads((root / "factors.json").read_text()) if (root / "factors.json").exists() else None
        if factors is None:
            factors = build(root, seed)
            (root / "factors.json").write_text(json.dumps(factors, indent=1))
        start = time.monotonic()
        rows = score(root).table.rows
        flagged = {r["case_id"]: {"factor": factors[r["case_id"]], "reason": r["flag_reason"],
                                  "label_issue": r["label_issue"]} for r in rows if r["flagged"]}
        entry = {"cases": len(rows), "flagged": len(flagged), "flagged_cases": flagged,
                 "cases_per_factor": {str(f): sum(v == f for v in factors.values()) for f in SCALES},
                 "seconds": round(time.monotonic() - start, 1)}
        report["sets"][f"seed{seed}"] = entry
        print(f"seed {seed}: {len(flagged)} of {len(rows)} clean slices flagged", flush=True)
        for case, info in flagged.items():
            print(f"  {case} (factor {info['factor']}): {info['reason']}", flush=True)
    total = sum(e["flagged"] for e in report["sets"].values())
    cases = sum(e["cases"] for e in report["sets"].values())
    report["pooled"] = {"flagged": total, "cases": cases}
    print(f"pooled: {total} of {cases} clean slices flagged ({100 * total / max(cases, 1):.1f} %)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
