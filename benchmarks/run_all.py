"""Label-error benchmark: does the ranking find the wrong annotations? (one command, CPU).

Builds three datasets with annotation errors injected into a known 25 % of the cases (real MNI152
MRI slices, real stardist nuclei tiles, synthetic CT volumes), scores them with the project's
pipeline (raw and mask-normalised input, σ² and σ energy), evaluates every method registered in
``benchmarks/labelnoise/methods.py`` (AUROC, AUPRC, precision at the top 10 %, per error kind) and
the per-pixel heatmaps (pixel AUROC against the injected error masks), measures difficulty (the
paper's Table 4: correlation of each score with the per-case error of a task model trained with
4-fold cross-validation on the clean cases, ``labelnoise/difficulty.py``), and writes
``OUT/results.json``, ``OUT/summary.md`` and ``OUT/plots/*.png``.

Usage::

    python benchmarks/run_all.py                       # full run, LiteMedSAM (23 min on a quiet 2-core CPU)
    python benchmarks/run_all.py --quick --model tiny  # smoke test (seconds)
    python benchmarks/run_all.py --out /tmp/bench      # where data, caches and results go

Re-running with the same ``--out`` reuses the generated data and the pipeline's caches, so only the
analysis is repeated. See docs/benchmarks.md for the results and what they mean.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labelnoise.runner import run  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small datasets, 2 replicates (a few minutes)")
    parser.add_argument("--model", default="litemedsam", help="litemedsam (default) | tiny | any --model spec")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: a folder under the system temp dir)")
    parser.add_argument("--datasets", default=None, help="comma-separated subset of mni,nuclei,ct")
    parser.add_argument("--replicates", type=int, default=None, help="corruption replicates per dataset")
    parser.add_argument("--masknorm-replicates", type=int, default=None,
                        help="replicates also scored with mask-normalised input (each needs new encodes)")
    parser.add_argument("--bootstrap", type=int, default=None, help="bootstrap resamples for the AUROC CI")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--bench-scoring-json", type=Path, default=None,
                        help="include the JSON written by benchmarks/bench_scoring.py --out in the results")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.gettempdir()) / f"napari_aleatoric_bench_{'quick' if args.quick else 'full'}_{args.model.split(':')[0]}"
    run(args.quick, args.model, out, device=args.device,
        datasets=args.datasets.split(",") if args.datasets else None, replicates=args.replicates,
        masknorm_replicates=args.masknorm_replicates, n_boot=args.bootstrap, plots=not args.no_plots,
        bench_scoring_json=args.bench_scoring_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
