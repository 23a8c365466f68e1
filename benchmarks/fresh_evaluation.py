"""The fresh evaluation of issue 16 (item 7): score the datasets of ``fresh_datasets.py`` with the shipped
pipeline and its defaults, then measure the queue and the flag against the issue's targets.

Settings are frozen: ``score_dataset(root, "litemedsam", device="cpu")`` with every other default
(rank by ``label_issue``; the flag rule of :mod:`napari_aleatoric.labelquality.flag`). Per dataset:
the queue's AUROC (corrupted vs clean cases, by the ranking column; ``contradicted`` and
``worst_region_voxels`` beside it), the flag's false-alarm rate (flagged clean / clean) and recall
(flagged corrupted / corrupted), and the rank of every clean rare-class case against the top
quarter of the queue (``ceil(n / 4)``).

    python benchmarks/fresh_datasets.py --out /work/fresh
    python benchmarks/fresh_evaluation.py /work/fresh --out benchmarks/results/fresh_evaluation.json

``--warm-only`` runs the scoring (foundation-model embeddings and maps into each dataset's cache)
and prints and writes nothing else: the expensive pass can run before the evaluation is frozen
without anything of its result being read.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from napari_aleatoric.pipelines.scoring import ScoringFinished, score_dataset  # noqa: E402

ORDER = ("mni_clean", "ct_sizes", "mni_subtle", "ct_rare", "nuclei_tiles", "mni_small", "ct_clean")
TARGETS = {"auroc": {"ct_sizes": 0.95, "mni_subtle": 0.90}, "clean_flagged_at_most": 0.05, "flag_recall_at_least": 0.80}


def _auroc(positive: np.ndarray, score: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if positive.all() or not positive.any():
        return None
    return round(float(roc_auc_score(positive, np.nan_to_num(score, nan=-np.inf))), 4)


def score(root: Path):
    finished = None
    for event in score_dataset(root, "litemedsam", device="cpu"):
        if isinstance(event, ScoringFinished):
            finished = event
    return finished


def measure(root: Path, finished: ScoringFinished, seconds: float) -> dict:
    truth = json.loads((root / "truth.json").read_text())
    rows = finished.table.rows
    ids = [r["case_id"] for r in rows]
    bad = np.array([c in truth["corrupted"] for c in ids])
    flags = np.array([bool(r["flagged"]) for r in rows])
    summary = json.loads(Path(finished.summary_path).read_text())
    result = {
        "cases": len(ids), "corrupted": int(bad.sum()), "slices": int(sum(truth["slices"].values())),
        "ranking": finished.table.ranking,
        "auroc": {column: _auroc(bad, np.array([r.get(column, math.nan) for r in rows], float))
                  for column in (finished.table.ranking, "label_issue", "contradicted", "worst_region_voxels")},
        "flagged": [c for c, f in zip(ids, flags) if f],
        "false_alarm_rate": round(float(flags[~bad].mean()), 4) if (~bad).any() else None,
        "recall": round(float(flags[bad].mean()), 4) if bad.any() else None,
        "ranks_of_corrupted": {c: r["rank"] for c, r in zip(ids, rows) if c in truth["corrupted"]},
        "corrupted_kinds": {c: [rec["kind"], rec["changed_voxels"]] for c, rec in truth["corrupted"].items()},
        "scoring_seconds": round(seconds, 1),
        "foundation_model_seconds": round(summary["forward_seconds_total"], 1),
        "label_quality_seconds": (summary.get("label_quality") or {}).get("seconds"),
        "unjudged": (summary.get("label_quality") or {}).get("unjudged", {}),
    }
    if truth.get("rare_clean_cases"):
        quarter = math.ceil(len(ids) / 4)
        result["rare_class"] = {
            "class": truth["rare_class"], "top_quarter": quarter,
            "ranks": {c: r["rank"] for c, r in zip(ids, rows) if c in truth["rare_clean_cases"]},
            "flagged": [c for c, f in zip(ids, flags) if f and c in truth["rare_clean_cases"]]}
        result["rare_class"]["any_in_top_quarter"] = any(v <= quarter for v in result["rare_class"]["ranks"].values())
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the fresh_datasets.py output folder")
    parser.add_argument("--out", type=Path, help="JSON results")
    parser.add_argument("--warm-only", action="store_true", help="score only; print and write nothing")
    args = parser.parse_args(argv)
    report = {"command": "python benchmarks/fresh_evaluation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": f"{platform.processor() or platform.machine()}, {platform.platform()}, CPU only",
              "settings": "score_dataset(root, 'litemedsam', device='cpu'), every other setting its default",
              "targets": TARGETS, "datasets": {}}
    for name in ORDER:
        root = args.data / name
        if not root.is_dir():
            continue
        started = time.perf_counter()
        finished = score(root)
        if args.warm_only:
            print(f"{name}: scored", flush=True)
            continue
        report["datasets"][name] = measure(root, finished, time.perf_counter() - started)
        print(name, json.dumps(report["datasets"][name]), flush=True)
    if args.warm_only:
        return 0
    found = [report["datasets"][n] for n in report["datasets"] if report["datasets"][n]["corrupted"]]
    report["pooled_flag_recall"] = round(sum(len(set(d["flagged"]) & set(d["ranks_of_corrupted"])) for d in found)
                                         / sum(d["corrupted"] for d in found), 4) if found else None
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
