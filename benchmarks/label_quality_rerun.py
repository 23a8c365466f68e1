"""Re-run the label-quality pass of already scored ``fresh_datasets.py`` sets with the code on the
path, for several seeds, and measure the queue against each set's ``truth.json``.

The pass runs into a temporary cache (nothing in the datasets changes); the table is the set's
``scores.csv`` with the new label-quality columns, ranked and flagged as the pipeline does
(:func:`napari_aleatoric.pipelines.table.with_label_quality`). Per set: the mean over seeds of the
AUROC (corrupted vs clean) of ``issue_rank``, ``label_issue`` and ``contradicted``, the mean flag
recall, clean cases flagged per seed, and per seed the best (lowest) rank of a clean rare-class
case. The seed moves the folds, the pixel sample and the classifiers, so one seed is one draw::

    python benchmarks/label_quality_rerun.py /work/fresh{,2,3,4}/ct_rare --seeds 0 1 2 \\
        --out benchmarks/results/label_quality_rerun_rare.json

Run it from a checkout of the code to measure (``git worktree add``) to compare two versions.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from napari_aleatoric.data.dataset import open_dataset  # noqa: E402
from napari_aleatoric.data.scores_file import read_scores  # noqa: E402
from napari_aleatoric.labelquality.assess import LabelQualityFinished, assess_label_quality  # noqa: E402
from napari_aleatoric.models.lazy import LazyModel  # noqa: E402
from napari_aleatoric.pipelines.table import with_label_quality  # noqa: E402
from scored_tables import with_sizes  # noqa: E402

COLUMNS = ("issue_rank", "label_issue", "contradicted")


def one_run(root: Path, cache: Path, seed: int) -> dict:
    """One seed on one set: AUROC per column, recall, clean flagged, clean rare-class ranks."""
    from sklearn.metrics import roc_auc_score

    dataset = open_dataset(root)
    table = read_scores(root / ".aleatoric" / "scores.csv")
    case_ids = sorted(row["case_id"] for row in table.rows)  # the scoring pass's order
    model = LazyModel("litemedsam", device="cpu")
    result = None
    for event in assess_label_quality(dataset, case_ids, model.identity(), model.get, seed=seed, cache_dir=cache):
        if isinstance(event, LabelQualityFinished):
            result = event.result
    rows = with_label_quality(with_sizes(table, root), list(dataset.foreground), result).rows
    truth = json.loads((root / "truth.json").read_text())
    bad = np.array([row["case_id"] in truth["corrupted"] for row in rows])
    flagged = np.array([bool(row["flagged"]) for row in rows])
    out = {"clean_flagged": int(flagged[~bad].sum()), "clean": int((~bad).sum())}
    if bad.any() and not bad.all():
        for column in COLUMNS:
            values = np.nan_to_num(np.array([row[column] for row in rows], float), nan=-1.0)
            out[column] = float(roc_auc_score(bad, values))
        out["recall"] = float(flagged[bad].mean())
    if truth.get("rare_clean_cases"):
        out["rare_clean_ranks"] = sorted(row["rank"] for row in rows if row["case_id"] in truth["rare_clean_cases"])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", type=Path, nargs="+", help="scored fresh_datasets.py set folders")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, help="JSON results")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    report = {"command": " ".join(["python", *sys.argv]), "commit": commit,
              "machine": f"{platform.machine()}, {platform.platform()}, CPU only", "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for root in args.sets:
            runs = [one_run(root, Path(tmp) / f"{root.parent.name}-{root.name}-{s}", s) for s in args.seeds]
            entry = {"seeds": args.seeds, "clean_flagged": [r["clean_flagged"] for r in runs], "clean": runs[0]["clean"]}
            for column in (*COLUMNS, "recall"):
                if column in runs[0]:
                    entry[f"mean_{column}"] = round(float(np.mean([r[column] for r in runs])), 3)
            if "rare_clean_ranks" in runs[0]:
                entry["rare_clean_ranks"] = [r["rare_clean_ranks"] for r in runs]
            name = f"{root.parent.name}/{root.name}"
            report["sets"][name] = entry
            print(name, json.dumps(entry), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
