"""Per-class contradicted shares of every case of every label-error replicate (flag rule, third round).

``results.json`` of ``benchmarks/run_all.py`` keeps only the worst class's share
(``learned_class_share``); the third round's ``class_ratio`` needs each class's share. They are
recomputed by the same out-of-fold pass (``labelnoise.methods.learned_candidates``: the replicate's
cases, its seed, the cached embeddings) and checked against the stored ``learned_softmin``,
``learned_contradicted`` and ``learned_class_share`` (the largest absolute difference of each is
stored; ``flag_rule_choice.py --round 3`` uses the recomputed values).

Run it on a COPY of the benchmark folder (its ``data/``, ``work/<name>_raw/`` and ``results.json``),
since the pass may write to the caches::

    python benchmarks/label_error_per_class.py --bq /tmp/flag3-bq \
        --out benchmarks/results/label_error_per_class.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labelnoise import datasets as D  # noqa: E402
from labelnoise.methods import Context, learned_candidates  # noqa: E402

from napari_aleatoric.data.dataset import open_dataset  # noqa: E402
from napari_aleatoric.models.registry import load_model  # noqa: E402


def _rounded(values) -> list:
    return [None if not np.isfinite(v) else round(float(v), 6) for v in np.asarray(values, float).ravel()]


def _max_difference(stored: list, recomputed: np.ndarray) -> float:
    a = np.array([np.nan if v is None else v for v in stored], float)
    b = np.round(np.asarray(recomputed, float), 6)
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return float("inf")
    finite = np.isfinite(a)
    return float(np.abs(a[finite] - b[finite]).max()) if finite.any() else 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bq", type=Path, required=True, help="a copy of the run_all.py output folder")
    parser.add_argument("--out", type=Path, required=True, help="JSON result")
    parser.add_argument("--model", default="litemedsam")
    args = parser.parse_args(argv)
    results = json.loads((args.bq / "results.json").read_text())
    model = load_model(args.model, "cpu")
    report = {}
    for name, evaluation in results["datasets"].items():
        ds = D.build_dataset(name, D.PRESETS["full"][name], args.bq, log=lambda *a: None)
        scoring = {"raw": open_dataset(D.scoring_root(ds, "raw", args.bq))}
        names = list(ds.foreground)
        values = [ds.foreground[n] for n in names]
        stored = evaluation["scores"]
        entry = {"class_names": names, "replicates": {}}
        for rep, cases in evaluation["cases"].items():
            started = time.perf_counter()
            ctx = Context(name, cases["ids"], names, values, {}, scoring, truth=None, seed=int(rep), model=model)
            candidates = learned_candidates(ctx)
            per_class = candidates["per_class"]
            worst = np.where(np.isfinite(per_class).any(axis=1),
                             np.where(np.isfinite(per_class), per_class, -np.inf).max(axis=1), np.nan)
            entry["replicates"][rep] = {
                "ids": cases["ids"],
                "label_issue": _rounded(candidates["softmin"]),
                "contradicted": _rounded(candidates["drawn_share"]),
                "per_class": [_rounded(row) for row in per_class],
                "structure": _rounded(candidates["structure"]),
                "outline": _rounded(candidates["outline"]),
                "max_difference_from_results_json": {
                    "learned_softmin": _max_difference(stored["learned_softmin"][rep], candidates["softmin"]),
                    "learned_contradicted": _max_difference(stored["learned_contradicted"][rep],
                                                            candidates["drawn_share"]),
                    "learned_class_share": _max_difference(stored["learned_class_share"][rep], worst)},
                "seconds": round(time.perf_counter() - started, 1)}
            print(name, rep, entry["replicates"][rep]["max_difference_from_results_json"],
                  f"{entry['replicates'][rep]['seconds']} s", flush=True)
        report[name] = entry
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
