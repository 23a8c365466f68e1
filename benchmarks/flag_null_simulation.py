"""How often a flag rule's ``label_issue`` part flags a dataset with nothing wrong, on simulated data.

A clean dataset's ``label_issue`` is drawn as ``n`` independent standard normal values (the
location and scale do not matter: every part is a z of the dataset's own values), and, with
``--clean``, as ``n`` values resampled with replacement from each real clean-only set's (the
label-error benchmark's three, ``clean_dataset_scores.json``: their shape, not a normal one); each
part is applied to ``draws`` such datasets per ``n``. Reported per part and ``n``: the mean share of cases
flagged and the share of datasets with more than 5 % flagged (issue 16's limit). A check that does
not depend on which tuning sets are on disk: the eighth flag round's corpus (docs/label_quality.md)
could not see that the lower-half spread is noisier than the MAD of all cases::

    python benchmarks/flag_null_simulation.py --clean benchmarks/results/clean_dataset_scores_v10.json \
        --out benchmarks/results/flag_null_simulation.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from flag_rule_round8 import lower_half_z  # noqa: E402

from napari_aleatoric.labelquality.flag import robust_z  # noqa: E402

PARTS = {
    "robust z > 2.5 (shipped)": lambda x: robust_z(x) > 2.5,
    "lower-half z > 2.5": lambda x: lower_half_z(x) > 2.5,
    "lower-half z > 3": lambda x: lower_half_z(x) > 3.0,
    "lower-half z > 2 (the eighth round's choice)": lambda x: lower_half_z(x) > 2.0,
}
SIZES = (8, 16, 30, 60, 200)


def simulate(draws: int = 4000, seed: int = 0, pool: np.ndarray | None = None) -> dict:
    """``{part: {n: {"mean_flagged": share, "datasets_over_5_percent": share}}}`` over ``draws`` datasets of
    standard normal values, or of values resampled from ``pool`` (``(M,)``) where given."""
    rng = np.random.default_rng(seed)
    datasets = {n: rng.standard_normal((draws, n)) if pool is None else rng.choice(pool, (draws, n))
                for n in SIZES}
    out = {}
    for name, part in PARTS.items():
        out[name] = {}
        for n, values in datasets.items():
            flagged = np.array([part(x).mean() for x in values])
            out[name][n] = {"mean_flagged": round(float(flagged.mean()), 4),
                            "datasets_over_5_percent": round(float((flagged > 0.05).mean()), 4)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--clean", type=Path, help="clean_dataset_scores.json: also resample its sets' label_issue")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    results = {"normal": simulate(args.draws)}
    if args.clean:
        for name, entry in json.loads(args.clean.read_text()).items():
            results[f"resampled {name}"] = simulate(args.draws, pool=np.array(entry["clean_scores"], float))
    args.out.write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "machine": platform.platform(),
                                    "draws": args.draws, "nulls": results}, indent=1) + "\n")
    for null, result in results.items():
        print(f"{null}: part | " + " | ".join(f"n={n}" for n in SIZES) + "   (mean % flagged; % of datasets over 5 %)")
        for name, row in result.items():
            cells = " | ".join(f"{100 * v['mean_flagged']:.1f}; {100 * v['datasets_over_5_percent']:.0f}"
                               for v in row.values())
            print(f"  {name} | {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
