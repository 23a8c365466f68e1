"""Calibration of the noisy-label training benchmark: plain training on ``clean/`` vs ``noisy/``.

For one assembled dataset folder (``OUT/<dataset>-c<S>``, see :mod:`.data`) and each training
seed, train the shipped plain UNet (no DUO, no filtering) on ``clean/`` and on ``noisy/`` and
record the best-epoch mean validation Dice against the clean validation labels (the same cases in
both folders), its per-class values, and the CPU seconds of each run (one torch thread).

    OMP_NUM_THREADS=1 python -m benchmarks.noisy_training.calibrate OUT/mni-c100 --seeds 0,1
        --epochs 30 --width 8 --depth 3 --patch 96,112 --batch-size 8 --out calib.jsonl

One JSON line per run is appended to ``--out``; a summary (mean over seeds, gap clean − noisy) is
printed at the end. ``python -m benchmarks.noisy_training.calibrate table calib.jsonl`` prints the
Markdown table of every attempt (as in ``CALIBRATION.md``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch


def run(folder: Path, settings, run_dir: Path) -> dict:
    from napari_aleatoric.training import EpochDone, TrainingFinished, train

    if run_dir.exists():
        shutil.rmtree(run_dir)
    wall, cpu = time.perf_counter(), time.process_time()
    history, per_class, finished = [], [], None
    for event in train(folder, settings, run_dir=run_dir):
        if isinstance(event, EpochDone):
            history.append(event.val_mean_dice)
            per_class.append(dict(event.val_dice))
        elif isinstance(event, TrainingFinished):
            finished = event
    best = int(np.nanargmax(history))
    return {"best_dice": finished.best_dice, "best_epoch": finished.best_epoch,
            "best_per_class": per_class[best], "last_dice": history[-1],
            "last5_dice": float(np.mean(history[-5:])), "history": [round(h, 4) for h in history],
            "cpu_seconds": round(time.process_time() - cpu, 1), "wall_seconds": round(time.perf_counter() - wall, 1)}


def table(path: Path) -> str:
    """Markdown table of a calibration JSONL file: one row per attempt (label) and training seed.

    A ``clean/`` folder does not depend on the corruption seed or the noise settings, so an attempt
    that trained only ``noisy/`` is compared with the clean run of the same dataset, training
    settings and training seed from any attempt (marked ``*``)."""
    entries = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    clean_runs = {}
    for e in entries:
        if e["which"] == "clean":
            clean_runs[(e["root"].rstrip("/").split("-c")[0].split("/")[-1], e["seed"],
                        json.dumps(e["settings"], sort_keys=True))] = e
    rows: dict[tuple, dict] = {}
    for e in entries:
        key = (e["label"], Path(e["root"]).name, e["seed"])
        rows.setdefault(key, {"settings": e["settings"], "root": e["root"]})[e["which"]] = e
    out = ["| attempt | data | epochs, width, depth, patch, batch | seed | clean Dice | noisy Dice | gap (points) | "
           "per class, noisy (clean) | CPU s clean / noisy |", "|---|---|---|---|---|---|---|---|---|"]
    gaps: dict[tuple, list[float]] = {}
    for (label, data, seed), r in rows.items():
        s = r["settings"]
        noisy, clean, borrowed = r.get("noisy"), r.get("clean"), ""
        if clean is None:
            clean = clean_runs.get((r["root"].rstrip("/").split("-c")[0].split("/")[-1], seed,
                                    json.dumps(s, sort_keys=True)))
            borrowed = "*" if clean else ""
        gap = clean["best_dice"] - noisy["best_dice"] if clean and noisy else None
        if gap is not None:
            gaps.setdefault((label, data), []).append(gap)
        fmt = lambda e: f"{e['best_dice']:.4f}" if e else "–"  # noqa: E731
        classes = ", ".join(f"{name} {v:.3f}" + (f" ({clean['best_per_class'][name]:.3f})" if clean else "")
                            for name, v in noisy["best_per_class"].items()) if noisy else "–"
        out.append(f"| {label} | {data} | {s['epochs']}, {s['width']}, {s['depth']}, "
                   f"{'×'.join(map(str, s['patch'])) if s['patch'] else 'default'}, {s['batch_size'] or 'default'} | "
                   f"{seed} | {fmt(clean)}{borrowed} | {fmt(noisy)} | "
                   f"{f'{100 * gap:+.2f}' if gap is not None else '–'} | {classes} | "
                   f"{clean['cpu_seconds'] if clean else '–'} / {noisy['cpu_seconds'] if noisy else '–'} |")
    out.append("")
    for (label, data), values in gaps.items():
        out.append(f"- {label} ({data}): mean gap over {len(values)} training seed(s) "
                   f"{100 * sum(values) / len(values):+.2f} Dice points")
    return "\n".join(out)


def main(argv=None) -> int:
    from napari_aleatoric.training import TrainSettings

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "table":
        print(table(Path(argv[1])))
        return 0

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="OUT/<dataset>-c<S> (with clean/ and noisy/)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--which", default="clean,noisy")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--patch", default=None, help="comma-separated patch size (default: the trainer's)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--runs", type=Path, default=Path("/tmp/noisy_training_runs"))
    parser.add_argument("--label", default="", help="free text stored with each line (the attempt)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    patch = tuple(int(p) for p in args.patch.split(",")) if args.patch else None
    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for which in args.which.split(","):
            settings = TrainSettings(network="unet", epochs=args.epochs, batch_size=args.batch_size, patch=patch,
                                     width=args.width, depth=args.depth, lr=args.lr, keep=1.0, duo=False,
                                     seed=seed, device="cpu", name=f"calib-{which}-s{seed}")
            entry = run(args.root / which, settings, args.runs / args.root.name / f"{which}-s{seed}")
            entry.update(root=str(args.root), which=which, seed=seed, label=args.label,
                         settings={k: v for k, v in settings.to_dict().items()
                                   if k in ("epochs", "batch_size", "patch", "width", "depth", "lr")},
                         finished_utc=time.strftime("%H:%M:%S", time.gmtime()))
            with args.out.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")
            results.setdefault(which, []).append(entry["best_dice"])
            cpu.setdefault(which, []).append(entry["cpu_seconds"])
            print(f"{args.root.name} {which:>5} seed {seed}: best Dice {entry['best_dice']:.4f} (epoch "
                  f"{entry['best_epoch']}) {entry['best_per_class']}, last {entry['last_dice']:.4f}, "
                  f"{entry['cpu_seconds']:.0f} s CPU", flush=True)
    for which, values in results.items():
        print(f"{which:>5}: mean best Dice {np.mean(values):.4f} ({', '.join(f'{v:.4f}' for v in values)}), "
              f"CPU s per run {np.mean(cpu[which]):.0f}")
    if "clean" in results and "noisy" in results:
        print(f"gap clean - noisy: {np.mean(results['clean']) - np.mean(results['noisy']):+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
