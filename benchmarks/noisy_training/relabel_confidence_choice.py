"""Which relabel confidence the default guidance uses: the rule of the third tuning round (issue 12).

The rule, written down before the runs of corruption seed 3 (docs/training.md, decision 5): for each
candidate confidence ``c`` (relabel only where the label-quality model is at least ``c`` sure of one
class), the share of the clean-minus-plain gap it recovers on each dataset (2D MRI ``mni``, 3D CT
``ct``), averaged over the tuning corruption seeds 100 and 3 (training seeds 0 and 1, means per
corruption seed); the candidate whose *worse* dataset recovers the most wins. The ``clean/`` folder
is the same for every corruption seed (same images, labels and split; training runs are
bit-reproducible), so the clean runs of seed 100 serve seed 3.

    python -m benchmarks.noisy_training.relabel_confidence_choice \\
        benchmarks/results/noisy_training_tuning_relabel_confidence.jsonl \\
        benchmarks/results/noisy_training_tuning_c3.jsonl --out benchmarks/results/relabel_confidence_choice.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

TUNING_SEEDS = (100, 3)
TRAINING_SEEDS = (0, 1)
DATASETS = ("mni", "ct")
#: candidate → row name per corruption seed (seed 100's 0.8 runs were made as ``-conf80`` in round 2)
CANDIDATES = {
    "0.8 (the default since round 2)": {100: "issue-relabel-conf80", 3: "issue-relabel"},
    "0.7": {100: "issue-relabel-conf0.7", 3: "issue-relabel-conf0.7"},
    "0.6": {100: "issue-relabel-conf0.6", 3: "issue-relabel-conf0.6"},
}


def load(paths: list[Path]) -> dict[str, float]:
    """``job_key`` (``<dataset>-c<S>/<row>/s<seed>``) → best validation Dice."""
    runs = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                runs[record["job_key"]] = record["best_dice"]
    return runs


def mean_of(runs: dict, data: str, row: str) -> float | None:
    values = [runs.get(f"{data}/{row}/s{s}") for s in TRAINING_SEEDS]
    return float(np.mean(values)) if all(v is not None for v in values) else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="JSON-lines files of benchmarks.noisy_training.strategies")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = load(args.results)
    table = {}
    for label, rows in CANDIDATES.items():
        entry = {}
        for dataset in DATASETS:
            shares = []
            for seed in TUNING_SEEDS:
                data = f"{dataset}-c{seed}"
                plain, cand = mean_of(runs, data, "plain"), mean_of(runs, data, rows[seed])
                clean = mean_of(runs, f"{dataset}-c100", "clean")
                shares.append(None if None in (plain, cand, clean) else (cand - plain) / (clean - plain))
            entry[dataset] = {"per_seed": dict(zip(map(str, TUNING_SEEDS), shares)),
                              "mean": float(np.mean(shares)) if None not in shares else None}
        means = [entry[d]["mean"] for d in DATASETS]
        entry["worse"] = min(means) if None not in means else None
        table[label] = entry
    complete = {k: v for k, v in table.items() if v["worse"] is not None}
    chosen = max(complete, key=lambda k: complete[k]["worse"]) if complete else None
    print("| relabel confidence | MRI: gap recovered, seeds 100 / 3, mean | CT: seeds 100 / 3, mean | worse |")
    print("|---|---|---|---|")
    for label, entry in table.items():
        def cell(d):
            e = entry[d]
            fmt = lambda v: "–" if v is None else f"{100 * v:.0f} %"  # noqa: E731
            return f"{fmt(e['per_seed']['100'])} / {fmt(e['per_seed']['3'])}, **{fmt(e['mean'])}**"
        worse = "–" if entry["worse"] is None else f"{100 * entry['worse']:.0f} %"
        print(f"| {label} | {cell('mni')} | {cell('ct')} | {worse} |")
    print(f"chosen (largest worse-dataset mean among complete candidates): {chosen}")
    if args.out:
        args.out.write_text(json.dumps({"chosen": chosen, "candidates": table}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
