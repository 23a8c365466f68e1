"""Tables and figures of the noisy-label training benchmark (issue 12) from its JSON-lines results.

    python -m benchmarks.noisy_training.report RESULTS.jsonl [MORE.jsonl ...] --out benchmarks/results/noisy_training

writes ``<out>.md`` (tables) and ``<out>_rows.png`` / ``<out>_loop.png`` (figures). Dice × 100.

- Rows: mean ± sd of the best-epoch validation Dice over the runs (corruption seeds × training
  seeds); the paired change against plain training on the same data and seed, with a 95 % t
  interval over those pairs; the share of the clean-vs-plain gap recovered (mean change / mean gap).
- Closed loop: mean Dice against the number of reviewed training cases for each review order, and
  the fewest reviewed cases whose mean Dice comes within ``TOLERANCE`` of the clean-label Dice
  (the loop's own runs with every training case reviewed, same seeds).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

#: Dice points (× 100) under the clean-label Dice that count as "reached" in the closed loop
TOLERANCE = 0.5


def load(paths: list[Path]) -> list[dict]:
    records = []
    for path in paths:
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t interval (NaN bounds for fewer than 2 values)."""
    from scipy import stats

    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def _nanmean(values) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def dataset_of(record: dict) -> str:
    return record["data"].split("-c")[0]


def row_table(records: list[dict], dataset: str) -> tuple[list[str], dict]:
    runs = [r for r in records if r["kind"] == "row" and dataset_of(r) == dataset]
    by = {(r["row"], r["data"], r["seed"]): r for r in runs}
    from .strategies import ROWS

    rows = sorted(dict.fromkeys(r["row"] for r in runs), key=lambda r: (ROWS.index(r) if r in ROWS else len(ROWS), r))
    pairs = sorted({(d, s) for (_, d, s) in by})
    stats = {}
    gaps = [100 * (by[("clean", d, s)]["best_dice"] - by[("plain", d, s)]["best_dice"]) for d, s in pairs
            if ("clean", d, s) in by and ("plain", d, s) in by]
    gap = float(np.mean(gaps)) if gaps else math.nan
    lines = [f"| strategy | val Dice, mean ± sd | paired change vs plain [95 % CI] | gap recovered | runs | "
             f"left out (corrupted) | weight lost: corrupted / clean cases |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        values = np.array([100 * by[(row, d, s)]["best_dice"] for d, s in pairs if (row, d, s) in by])
        diffs = np.array([100 * (by[(row, d, s)]["best_dice"] - by[("plain", d, s)]["best_dice"]) for d, s in pairs
                          if (row, d, s) in by and ("plain", d, s) in by])
        mean_diff, low, high = interval(diffs) if diffs.size else (math.nan, math.nan, math.nan)
        recovered = 100 * mean_diff / gap if gap and math.isfinite(gap) and row != "plain" else math.nan
        chosen = [by[(row, d, s)] for d, s in pairs if (row, d, s) in by]
        left = np.mean([len(r["left_out"]) for r in chosen])
        left_bad = np.mean([r.get("left_out_corrupted", 0) for r in chosen])
        lost_bad = _nanmean([r.get("weight_lost_corrupted", math.nan) for r in chosen])
        lost_ok = _nanmean([r.get("weight_lost_clean", math.nan) for r in chosen])
        stats[row] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0,
                      "diff": mean_diff, "low": low, "high": high, "recovered": recovered, "n": int(values.size)}
        change = "–" if row == "plain" else f"{mean_diff:+.2f} [{low:+.2f}, {high:+.2f}]"
        lost = f"{100 * lost_bad:.1f} % / {100 * lost_ok:.1f} %" if math.isfinite(lost_bad) else "–"
        lines.append(f"| {row} | {stats[row]['mean']:.2f} ± {stats[row]['sd']:.2f} | {change} | "
                     f"{'–' if not math.isfinite(recovered) else f'{recovered:.0f} %'} | {values.size} | "
                     f"{left:.1f} ({left_bad:.1f}) | {lost} |")
    lines.append("")
    lines.append(f"Gap between clean and noisy labels (plain training): {gap:.2f} Dice points "
                 f"(mean of {len(gaps)} paired runs).")
    return lines, stats


def loop_table(records: list[dict], clean: float | None) -> tuple[list[str], dict]:
    runs = [r for r in records if r["kind"] == "loop"]
    curves: dict = defaultdict(lambda: defaultdict(list))
    n_train = {}
    present = defaultdict(set)  # the orders run with each strategy ("all": k = 0 or every case, order-free)
    for r in runs:
        if r["order"] != "all":
            present[r["strategy"]].add(r["order"])
    for r in runs:
        orders = sorted(present[r["strategy"]]) if r["order"] == "all" else (r["order"],)
        for order in orders:
            curves[(r["strategy"], order)][r["k"]].append(100 * r["best_dice"])
    for r in runs:
        n_train[r["data"]] = max(n_train.get(r["data"], 0), r["k"])
    lines = ["| strategy | order | " + " | ".join(f"k={k}" for k in sorted({r['k'] for r in runs})) +
             " | fewest reviewed within " + f"{TOLERANCE} of clean |", ""]
    ks = sorted({r["k"] for r in runs})
    lines[1] = "|---|---|" + "---|" * len(ks) + "---|"
    reached = {}
    for (strategy, order), by_k in sorted(curves.items()):
        means = {k: float(np.mean(v)) for k, v in by_k.items()}
        clean = means.get(max(means))  # every training case reviewed: the clean labels, same seeds
        first = next((k for k in sorted(means) if clean is not None and means[k] >= clean - TOLERANCE), None)
        reached[(strategy, order)] = first
        cells = " | ".join(f"{means[k]:.2f} (n={len(by_k[k])})" if k in means else "–" for k in ks)
        lines.append(f"| {strategy} | {order} | {cells} | {first if first is not None else 'not reached'} |")
    return lines, {"curves": {f"{s}/{o}": {k: float(np.mean(v)) for k, v in c.items()} for (s, o), c in curves.items()},
                   "reached": {f"{s}/{o}": v for (s, o), v in reached.items()}, "n_train": n_train}


def plot_rows(stats_by_dataset: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(stats_by_dataset), figsize=(5.2 * len(stats_by_dataset), 3.8), squeeze=False)
    for ax, (dataset, stats) in zip(axes[0], stats_by_dataset.items()):
        rows = [r for r in stats if r != "plain"]
        y = np.arange(len(rows))[::-1]
        diffs = [stats[r]["diff"] for r in rows]
        errors = np.array([[stats[r]["diff"] - stats[r]["low"], stats[r]["high"] - stats[r]["diff"]] for r in rows]).T
        colours = ["#2a9d8f" if r.startswith("issue") else "#888888" if r in ("clean", "oracle-filter") else "#e76f51"
                   for r in rows]
        ax.barh(y, diffs, xerr=np.nan_to_num(errors), color=colours, capsize=3)
        ax.axvline(0, color="black", linewidth=0.8)
        if "clean" in stats:
            ax.axvline(stats["clean"]["diff"], color="#888888", linestyle="--", linewidth=0.8)
            ax.axvline(stats["clean"]["diff"] / 2, color="#888888", linestyle=":", linewidth=0.8)
        finite = [v for r in rows for v in (stats[r]["low"], stats[r]["high"], stats[r]["diff"]) if math.isfinite(v)]
        ax.set_xlim(max(min(finite + [0.0]) - 0.5, -8.0), min(max(finite + [0.0]) + 0.5, 10.0))  # longer bars clipped
        ax.set_yticks(y, rows)
        ax.set_xlabel("Dice change vs plain (points, 95 % CI)")
        ax.set_title(f"{dataset}: noisy training labels (n = {stats['plain']['n']} runs)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_loop(loop: dict, clean: float | None, plain: float | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    colours = {"queue": "#264653", "label-issue": "#8ab17d", "contradicted": "#2a9d8f", "random": "#888888", "auv": "#e76f51"}
    n = max(loop["n_train"].values()) if loop["n_train"] else 1
    for key, curve in sorted(loop["curves"].items()):
        strategy, order = key.split("/")
        ks = sorted(curve)
        names = {"queue": "queue order (issue rank)", "label-issue": "label-issue (softmin) order",
                 "contradicted": "contradicted-share order",
                 "random": "random order", "auv": "AUV order"}
        ax.plot([100 * k / n for k in ks], [curve[k] for k in ks], marker="o", color=colours.get(order),
                linestyle="-" if strategy == "plain" else "--", label=f"{names.get(order, order)} ({strategy} training)")
    if clean is not None:
        ax.axhline(clean, color="black", linestyle="--", linewidth=0.8, label="clean labels")
    if plain is not None:
        ax.axhline(plain, color="black", linestyle=":", linewidth=0.8, label="noisy labels, plain")
    ax.set_xlabel("training cases reviewed and corrected (%)")
    ax.set_ylabel("validation Dice (× 100)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True, help="output stem (.md and _*.png are added)")
    args = parser.parse_args(argv)
    records = load(args.results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines, stats_by_dataset = [], {}
    for dataset in sorted({dataset_of(r) for r in records if r["kind"] == "row"}):
        table, stats = row_table(records, dataset)
        stats_by_dataset[dataset] = stats
        seeds = sorted({(r["data"], r["seed"]) for r in records if r["kind"] == "row" and dataset_of(r) == dataset})
        lines += [f"## {dataset}: strategies on noisy labels", "",
                  f"Runs (data, training seed): {', '.join(f'{d}/s{s}' for d, s in seeds)}", "", *table, ""]
    if stats_by_dataset:
        plot_rows(stats_by_dataset, args.out.parent / f"{args.out.name}_rows.png")
    loop_records = [r for r in records if r["kind"] == "loop"]
    if loop_records:
        dataset = dataset_of(loop_records[0])
        clean = stats_by_dataset.get(dataset, {}).get("clean", {}).get("mean")
        plain = stats_by_dataset.get(dataset, {}).get("plain", {}).get("mean")
        table, loop = loop_table(records, clean)
        lines += [f"## {dataset}: closed loop (review budget against model quality)", "",
                  f"'reached' = mean Dice ≥ (mean Dice with every training case reviewed) − {TOLERANCE}.", "",
                  *table, ""]
        plot_loop(loop, clean, plain, args.out.parent / f"{args.out.name}_loop.png",
                  f"{dataset}: review budget against validation Dice")
        (args.out.parent / f"{args.out.name}_loop.json").write_text(json.dumps(loop, indent=1))
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    (args.out.parent / f"{args.out.name}_rows.json").write_text(json.dumps(stats_by_dataset, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
