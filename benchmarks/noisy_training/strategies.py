"""Noisy-label training benchmark (issue 12): training strategies on noisy labels, and the closed loop.

Data: ``python -m benchmarks.noisy_training.data build/score`` (clean and noisy folders per dataset
and corruption seed, the noisy one scored with LiteMedSAM; see ``data.py``). Every run is the
shipped :func:`napari_aleatoric.training.train` on the noisy folder (clean validation labels, the
core's split), best-epoch mean validation Dice against the clean validation labels.

Rows (``ROWS``): the strategies of :data:`napari_aleatoric.training.STRATEGIES` (plain, the paper's
AUV filtering and DUO, label-issue filtering / weighting / both), and two controls: ``oracle-filter``
(drops exactly the corrupted training cases) and ``clean`` (plain training on the clean labels).
The label-issue strategies learn label quality out of fold on the training split only (the core
does it at the start of the run; validation labels are never read).

Closed loop (``loop``): a simulated reviewer corrects the top-k training cases of an order (their
labels become the clean ones and they are marked *corrected* in the review store; a clean case
reviewed is marked *accepted*), then the network is retrained. Orders: ``queue`` (the review
queue as shipped: ``issue_rank``, the mean percentile rank of ``label_issue`` and
``contradicted`` in the noisy folder's ``scores.csv``, highest first), ``label-issue`` (the
softmin from the out-of-fold pass over the whole dataset, the queue's order from QUALITY_VERSION 4
until the second round of the choice; the seed-2 runs named ``queue`` then were renamed to it),
``contradicted`` (the same pass's ``contradicted`` column, the queue's order from QUALITY_VERSION 3
until 4), ``random`` (drawn per
training seed), ``auv`` (highest AUV first). The scores must come from the current label-quality version
(``napari-aleatoric score`` again, or :func:`~napari_aleatoric.pipelines.priorities.refresh_priorities`).

Commands (results are appended to a JSON-lines file; finished runs are skipped on a re-run)::

    python -m benchmarks.noisy_training.strategies rows DATA/mni-c1 --seeds 0,1,2 --jobs 2 --out R.jsonl
    python -m benchmarks.noisy_training.strategies loop DATA/mni-c1 --fractions 0,0.1,0.2,0.3,0.5,0.75,1
        --orders queue,random,auv --seeds 0,1,2 --jobs 2 --out L.jsonl
    python -m benchmarks.noisy_training.report R.jsonl L.jsonl      (tables and figures)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

#: training settings per dataset, frozen from the calibration (CALIBRATION.md): ~30 s (2D) and
#: ~100 s (3D) of one CPU thread per run
BASE = {
    "mni": dict(network="unet", epochs=40, batch_size=8, width=8, depth=3, lr=1e-3, device="cpu"),
    "ct": dict(network="unet", epochs=50, batch_size=2, width=8, depth=3, lr=1e-3, device="cpu"),
}
ROWS = ("plain", "auv-filter", "duo", "auv-filter+duo", "issue-filter", "issue-weight", "issue-relabel",
        "issue-filter+relabel", "oracle-filter", "clean")
ORDERS = ("queue", "label-issue", "contradicted", "random", "auv")
#: the column each score-based review order follows, highest first: ``queue`` is the queue's
#: default order as shipped (``issue_rank`` since the second round of the choice, recomputed from
#: ``scores.csv``); ``label-issue`` the softmin (the default from QUALITY_VERSION 4 until then)
ORDER_COLUMNS = {"queue": "issue_rank", "label-issue": "label_issue", "contradicted": "contradicted", "auv": "auv"}


def dataset_kind(root: Path) -> str:
    """``mni`` or ``ct`` from a data folder named ``<dataset>-c<S>``."""
    return root.name.split("-c")[0]


def truth(root: Path) -> dict:
    return json.loads((root / "truth.json").read_text())


def base_settings(root: Path, seed: int, overrides: dict | None = None):
    from napari_aleatoric.training import TrainSettings

    return TrainSettings(**{**BASE[dataset_kind(root)], **(overrides or {})}, seed=seed)


def _threads() -> None:
    import torch

    torch.set_num_threads(1)


# ------------------------------------------------------------------------------------ one run

def train_once(folder: Path, settings, run_dir: Path, scores_csv: Path | None = None) -> dict:
    """Train (or read the finished result of) one run; returns the figures of the run."""
    from napari_aleatoric.training import EpochDone, TrainingFinished, TrainingStarted, train

    metrics = run_dir / "metrics.json"
    if metrics.is_file() and (run_dir / "done").is_file():
        return json.loads((run_dir / "done").read_text())
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cpu, wall = time.process_time(), time.perf_counter()
    history, started, finished = [], None, None
    for event in train(folder, settings, run_dir=run_dir, scores_csv=scores_csv):
        if isinstance(event, TrainingStarted):
            started = event
        elif isinstance(event, EpochDone):
            history.append(event.val_mean_dice)
        elif isinstance(event, TrainingFinished):
            finished = event
    cases = json.loads((run_dir / "cases.json").read_text())
    result = {"best_dice": finished.best_dice, "best_epoch": finished.best_epoch,
              "last5_dice": float(np.mean(history[-5:])), "history": [round(h, 5) for h in history],
              "train_cases": len(started.train_cases), "left_out": sorted(started.left_out),
              "label_issues": cases.get("label_issues", {}), "label_issue_line": started.label_issues,
              "cpu_seconds": time.process_time() - cpu, "wall_seconds": time.perf_counter() - wall}
    (run_dir / "done").write_text(json.dumps(result))
    return result


# ------------------------------------------------------------------------------------ rows

def oracle_scores(root: Path, work: Path) -> tuple[Path, float]:
    """A scores table whose AUV is 1 for the corrupted training cases and 0 for the others, and the
    keep quantile that drops exactly the corrupted ones."""
    from napari_aleatoric.data.atomic import atomic_write_bytes
    from napari_aleatoric.pipelines.table import ScoreTable, read_scores, table_to_csv

    info = truth(root)
    table = read_scores(root / "noisy" / ".aleatoric" / "scores.csv")
    rows = [dict(row, auv=1.0 if row["case_id"] in info["corrupted"] else 0.0) for row in table.rows]
    path = work / f"{root.name}-oracle_scores.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, table_to_csv(ScoreTable(table.columns, rows)).encode())
    n, clean = len(info["train"]), len(info["train"]) - len(info["corrupted"])
    return path, (clean - 1) / (n - 1)  # the quantile at the last clean case: AUV 0 exactly


def run_row(job: dict) -> dict:
    """One (row, seed) run on a data folder."""
    from napari_aleatoric.training import with_strategy

    _threads()
    root, row, seed, work = Path(job["root"]), job["row"], int(job["seed"]), Path(job["work"])
    overrides = job.get("overrides") or {}
    if job.get("trust"):  # tuning only (the tuning history in docs/training.md): frozen values are the module's
        from napari_aleatoric.training import label_issues

        values = job["trust"].split(",")
        label_issues.TRUST_FLOOR, label_issues.TRUST_THRESHOLD = float(values[0]), float(values[1])
        if len(values) > 2:
            overrides = {**overrides, "label_issues": values[2]}
        if len(values) > 3:
            label_issues.RELABEL_CONFIDENCE = float(values[3])
    settings = base_settings(root, seed, overrides)
    folder, scores_csv = root / "noisy", None
    if row == "clean":
        folder, settings = root / "clean", with_strategy(settings, "plain")
    elif row == "oracle-filter":
        scores_csv, keep = oracle_scores(root, work)
        settings = replace(with_strategy(settings, "auv-filter"), keep=keep)
    else:
        settings = with_strategy(settings, row)
    if overrides:
        settings = replace(settings, **overrides)
    tag = job.get("tag", "")
    run_dir = work / root.name / f"{row}{tag}" / f"s{seed}"
    result = train_once(folder, replace(settings, name=f"{row}{tag}-s{seed}".replace("+", "-and-")), run_dir, scores_csv)
    corrupted = set(truth(root)["corrupted"])
    result.update(kind="row", data=root.name, row=row + tag, seed=seed,
                  left_out_corrupted=sum(c in corrupted for c in result["left_out"]))
    per_case = result["label_issues"].get("cases", {})
    if per_case:
        lost = {c: v["weight_lost"] for c, v in per_case.items() if v.get("weight_lost") is not None}
        result["weight_lost_corrupted"] = float(np.mean([v for c, v in lost.items() if c in corrupted] or [np.nan]))
        result["weight_lost_clean"] = float(np.mean([v for c, v in lost.items() if c not in corrupted] or [np.nan]))
    return result


# ------------------------------------------------------------------------------------ closed loop

def review_order(root: Path, order: str, seed: int) -> list[str]:
    """The training cases in the order a reviewer following ``order`` would open them."""
    from napari_aleatoric.pipelines.table import ranked, read_scores

    train_ids = sorted(truth(root)["train"])
    if order == "random":
        return [train_ids[i] for i in np.random.default_rng([seed, 7]).permutation(len(train_ids))]
    if order in ORDER_COLUMNS:
        column = ORDER_COLUMNS[order]
        rows = {r["case_id"]: r for r in ranked(read_scores(root / "noisy" / ".aleatoric" / "scores.csv")).rows}
        return sorted(train_ids, key=lambda c: (-rows[c][column], c))
    raise ValueError(f"unknown order {order!r}")


def reviewed_folder(root: Path, work: Path, reviewed: list[str], name: str) -> Path:
    """A copy of the noisy folder where the ``reviewed`` cases carry their clean labels and a review
    status (corrected / accepted); images, scores and embeddings are shared (hard links)."""
    from napari_aleatoric.review.store import ReviewStore

    info = truth(root)
    folder = work / root.name / "loop-data" / name
    if (folder / "ready").is_file():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    noisy = root / "noisy"
    (folder / "labelsTr").mkdir(parents=True)
    shutil.copytree(noisy / "imagesTr", folder / "imagesTr", copy_function=os.link)  # hard links: inside the folder
    shutil.copy2(noisy / "dataset.json", folder / "dataset.json")
    for label in (noisy / "labelsTr").iterdir():
        case = label.name.split(".")[0]
        source = root / info["clean_labels"][case] if case in reviewed else label
        shutil.copy2(source, folder / "labelsTr" / label.name)
    state = folder / ".aleatoric"
    (state / "cache").mkdir(parents=True)
    for name_ in ("scores.csv", "scores.json"):
        shutil.copy2(noisy / ".aleatoric" / name_, state / name_)
    shutil.copytree(noisy / ".aleatoric" / "cache" / "embeddings", state / "cache" / "embeddings",
                    copy_function=os.link)
    store = ReviewStore.for_dataset(folder)
    try:
        for case in reviewed:
            store.set_status(case, "corrected" if case in info["corrupted"] else "accepted", "simulated reviewer")
    finally:
        store.close()
    (folder / "ready").write_text("")
    return folder


def run_loop(job: dict) -> dict:
    """One closed-loop run: (order, k reviewed cases, seed)."""
    from napari_aleatoric.training import with_strategy

    _threads()
    root, work, seed = Path(job["root"]), Path(job["work"]), int(job["seed"])
    folder = Path(job["folder"])
    settings = with_strategy(base_settings(root, seed), job["strategy"])
    run_dir = work / root.name / "loop-runs" / job["strategy"] / folder.name / f"s{seed}"
    result = train_once(folder, replace(settings, name=f"loop-{job['strategy']}-s{seed}"), run_dir)
    corrupted = set(truth(root)["corrupted"])
    result.update(kind="loop", data=root.name, order=job["order"], k=job["k"], fraction=job["fraction"],
                  seed=seed, strategy=job["strategy"], corrected=sum(c in corrupted for c in job["reviewed"]))
    return result


# ------------------------------------------------------------------------------------ driver

def _run_jobs(function, jobs: list[dict], processes: int, out: Path) -> None:
    done = set()
    if out.is_file():
        for line in out.read_text().splitlines():
            record = json.loads(line)
            done.add(record.get("job_key"))
    todo = [j for j in jobs if j["job_key"] not in done]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already in {out}; {len(todo)} to run", flush=True)
    if not todo:
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(processes) as pool:
        for result, job in zip(pool.imap(function, todo), todo):
            result.update(job_key=job["job_key"], machine=platform.machine(), processor=platform.processor(),
                          finished_utc=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                          load_average=list(os.getloadavg()))
            with out.open("a") as stream:
                stream.write(json.dumps(result) + "\n")
            print(f"{job['job_key']}: best Dice {result['best_dice']:.4f} (epoch {result['best_epoch']}), "
                  f"{result['cpu_seconds']:.0f} s CPU", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("rows", "loop"):
        p = sub.add_parser(name)
        p.add_argument("roots", type=Path, nargs="+", help="DATA/<dataset>-c<S> folders")
        p.add_argument("--seeds", default="0,1,2")
        p.add_argument("--jobs", type=int, default=2, help="parallel processes (one torch thread each)")
        p.add_argument("--work", type=Path, default=Path("/tmp/noisy_training_work"))
        p.add_argument("--out", type=Path, required=True, help="results, one JSON line per run (appended)")
    sub.choices["rows"].add_argument("--rows", default=",".join(ROWS))
    sub.choices["rows"].add_argument("--trust", default=None, help="tuning only: FLOOR,THRESHOLD[,MODE[,RELABEL_CONFIDENCE]] of the guidance")
    sub.choices["rows"].add_argument("--tag", default="", help="suffix of the row names (tuning variants)")
    sub.choices["loop"].add_argument("--orders", default=",".join(ORDERS))
    sub.choices["loop"].add_argument("--fractions", default="0,0.1,0.2,0.3,0.5,0.75,1")
    sub.choices["loop"].add_argument("--strategy", default="plain", help="how the reviewed data is trained")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = []
    if args.command == "rows":
        for root in args.roots:
            for seed in seeds:
                for row in args.rows.split(","):
                    job = {"root": str(root.resolve()), "row": row, "seed": seed, "work": str(args.work),
                           "tag": args.tag, "job_key": f"{root.name}/{row}{args.tag}/s{seed}"}
                    if args.trust is not None:
                        job["trust"] = args.trust
                    jobs.append(job)
        _run_jobs(run_row, jobs, args.jobs, args.out)
        return 0
    _threads()
    fractions = [float(f) for f in args.fractions.split(",")]
    for root in args.roots:
        n = len(truth(root)["train"])
        for seed in seeds:
            for order in args.orders.split(","):
                ranking = review_order(root, order, seed)
                for fraction in fractions:
                    k = int(round(fraction * n))
                    same_for_all = k in (0, n)  # nothing or everything reviewed: the order does not matter
                    # named by the cases reviewed: a folder or run of another ordering is never reused
                    digest = hashlib.sha1(",".join(ranking[:k]).encode()).hexdigest()[:8]
                    name = f"all-k{k}" if same_for_all else f"{order}-k{k}-{digest}"
                    folder = reviewed_folder(root, args.work, ranking[:k], name)
                    key = f"{root.name}/loop/{args.strategy}/{'all' if same_for_all else order}-k{k}/s{seed}"
                    if any(j["job_key"] == key for j in jobs):
                        continue
                    jobs.append({"root": str(root.resolve()), "work": str(args.work), "seed": seed,
                                 "folder": str(folder), "order": "all" if same_for_all else order, "k": k,
                                 "fraction": fraction, "reviewed": ranking[:k], "strategy": args.strategy,
                                 "job_key": key})
    _run_jobs(run_loop, jobs, args.jobs, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
