"""How should the DUO noise head θ2 learn? Collapse diagnostics of the three choices (docs/training.md).

For each variant the same network, data, seed and steps; per epoch it records:

- ``duo_loss``: the loss being minimised (``L`` of method.md §3, against ỹ);
- ``true_loss``: the same unweighted ``L_seg`` against the dataset's labels ``y`` (what the
  segmentation actually achieves); a DUO loss that falls while this does not means the noise head
  is moving the targets towards the prediction instead of the prediction towards the labels;
- ``target_shift``: mean ``|ỹ − y|`` over foreground-label pixels (how much of the labels the
  denoising rewrote);
- ``val_dice``: mean validation Dice against the dataset's labels.

Variants: ``plain`` (β·Dice + (1−β)·BCE), ``weights`` (DUO weights, no denoising), and DUO with
denoising for both readings of ε̂ (``gaussian``: a standard normal sample normalised over the batch,
f_θ2 its amplitude; ``noise-map``: f_θ2 normalised over the batch) times the three ways θ2 can learn:
through the ``target`` (the paper's loss as written), by its own ``disagreement`` loss, or not at
all (``none``, the published snippet).

Usage: python benchmarks/measure_noise_training.py DATASET [--epochs 40] [--width 8] [--variants a,b]
       [--noise-bias B] [--out result.json]

Second mode, ``--strategies`` (issue 4, "Measured"): does AUV filtering and/or DUO help when 20–30 %
of the training annotations are wrong? It assembles a 2D dataset from the label-noise benchmark's
MNI slices (``benchmarks/labelnoise``): the core's split by case; about ``--corrupt`` of the
training cases get a corrupted label from the benchmark's replicates (kinds cycled: erosion,
dilation, boundary shift, missing structure, spurious blob, class swap, coarse polygon), while the
validation cases keep their clean labels. The AUV table comes from the benchmark's LiteMedSAM
scores (``--scores``, SPS per class, re-normalised over this dataset with the core's
``build_table``), or, when absent, from scoring the assembled dataset (slow on a CPU). Then the
shipped :func:`napari_aleatoric.training.train` runs plain / +filtering / +DUO / both for each
seed, and the best-epoch mean validation Dice against the clean labels is reported as mean ± sd.

       python benchmarks/measure_noise_training.py --strategies --bench-out BENCH_DIR --scores
           BENCH_DIR_SCORES/mni_raw_sigma2.csv --seeds 0,1,2 --epochs 40 --width 8 --depth 4
           --patch 128 --batch-size 4 --out strat.json

Controls: ``--strategy-list oracle-filtering`` (drops exactly the corrupted cases) and
``--corrupt 0 --strategy-list plain`` (clean labels, the upper bound). Figures: docs/training.md.
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
import torch

from napari_aleatoric.data.dataset import open_dataset
from napari_aleatoric.training.data import (CaseLoader, case_shapes, default_patch, epoch_batches, make_batch,
                                            noise_seed, split_cases, step_rng)
from napari_aleatoric.training.duo import duo_loss, foreground_log_probabilities, segmentation_loss
from napari_aleatoric.training.loop import poly_lr, validate
from napari_aleatoric.training.networks import build_network, size_divisor

VARIANTS = {
    "plain": dict(weighting=False, denoising=False),
    "weights": dict(weighting=True, denoising=False),
    **{f"{eps}/{mode}": dict(weighting=True, denoising=True, noise_training=mode, epsilon=eps)
       for eps in ("gaussian", "noise-map") for mode in ("target", "disagreement", "none")},
}


def run_variant(ds, name: str, options: dict, args) -> list[dict]:
    ids = [r.case_id for r in ds.cases]
    train_ids, val_ids = split_cases(ids, 0.2)
    shapes, _ = case_shapes(ds, train_ids)
    patch = default_patch(list(shapes.values()), size_divisor("unet", args.depth))
    num_fg = len(ds.foreground)
    torch.manual_seed(args.seed)
    net = build_network("unet", len(patch), num_fg + 1, width=args.width, depth=args.depth,
                        detach_noise_input=options.get("noise_training") != "target")
    if args.noise_bias is not None:  # start the noise head elsewhere than the default sigmoid(−4) ≈ 0.02
        torch.nn.init.constant_(net.noise_head.bias, args.noise_bias)
        torch.nn.init.normal_(net.noise_head.weight, std=0.1)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    loader = CaseLoader(ds)
    generator = torch.Generator()
    history = []
    for epoch in range(args.epochs):
        for group in optimizer.param_groups:
            group["lr"] = poly_lr(args.lr, epoch, args.epochs)
        sums = {"duo_loss": 0.0, "true_loss": 0.0, "target_shift": 0.0}
        started = time.perf_counter()
        batches = epoch_batches(train_ids, args.batch_size, args.seed, epoch)
        for step, batch in enumerate(batches):
            x, y = make_batch([loader.get(c) for c in batch], patch, step_rng(args.seed, epoch, step), num_fg)
            seg, noise = net(x)
            generator.manual_seed(noise_seed(args.seed, epoch, step))
            parts = duo_loss(seg, noise if options["denoising"] else None, y, generator=generator, **options)
            optimizer.zero_grad(set_to_none=True)
            parts.total.backward()
            optimizer.step()
            with torch.no_grad():
                log_p, log_1mp = foreground_log_probabilities(seg.detach())
                sums["true_loss"] += float(segmentation_loss(log_p, log_1mp, y, 0.5).sum(1).mean())
                fg = y > 0
                sums["target_shift"] += float((parts.targets - y).abs()[fg].mean()) if fg.any() else 0.0
            sums["duo_loss"] += float(parts.loss)
        dice = validate(net, loader, val_ids, patch, args.batch_size, torch.device("cpu"), num_fg)
        entry = {k: v / len(batches) for k, v in sums.items()}
        entry.update(epoch=epoch + 1, val_dice=float(np.nanmean(dice)), seconds=time.perf_counter() - started)
        history.append(entry)
        print(f"{name:>24} epoch {epoch + 1:>3}  duo {entry['duo_loss']:.4f}  true {entry['true_loss']:.4f}  "
              f"shift {entry['target_shift']:.3f}  val Dice {entry['val_dice']:.3f}", flush=True)
    return history


STRATEGIES = {  # name -> (keep quantile, DUO on)
    "plain": (1.0, False),
    "filtering": (0.9, False),
    "duo": (1.0, True),
    "both": (0.9, True),
    # control, not a method: filtering with a score that knows the corrupted cases (AUV 1 for them,
    # 0 otherwise), so every corrupted training case and no clean one is dropped; it shows what
    # filtering could give here if the score found the corrupted cases
    "oracle-filtering": (0.5, False),
}


def assemble_noisy_dataset(bench_out: Path, out: Path, corrupt: float, scores: Path | None) -> dict:
    """An nnU-Net folder of the benchmark's MNI slices with corrupted training labels, clean validation
    labels, and ``.aleatoric/scores.csv``; returns what was corrupted."""
    import os
    import shutil

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.labelnoise.datasets import PRESETS, build_dataset
    from napari_aleatoric.pipelines.scoring import CaseResult
    from napari_aleatoric.pipelines.table import build_table, read_scores, write_outputs

    bench = build_dataset("mni", PRESETS["full"]["mni"], bench_out)
    train_ids, val_ids = split_cases(bench.cases, 0.2)
    target = int(round(corrupt * len(train_ids)))
    chosen: dict[str, dict] = {}
    for replicate in bench.replicates:  # the benchmark's own records, in replicate order
        for record in replicate:
            if len(chosen) < target and record["case"] in train_ids and record["case"] not in chosen:
                chosen[record["case"]] = record
    if out.exists():
        shutil.rmtree(out)
    (out / "imagesTr").mkdir(parents=True)
    (out / "labelsTr").mkdir()
    ending = json.loads((bench.root / "dataset.json").read_text())["file_ending"]
    for case in bench.cases:
        source = chosen[case]["variant"] if case in chosen else case
        os.link(bench.root / "imagesTr" / f"{case}_0000{ending}", out / "imagesTr" / f"{case}_0000{ending}")
        os.link(bench.root / "labelsTr" / f"{source}{ending}", out / "labelsTr" / f"{case}{ending}")
    meta = json.loads((bench.root / "dataset.json").read_text())
    meta.update(numTraining=len(bench.cases), name="NoisyMNI")
    (out / "dataset.json").write_text(json.dumps(meta, indent=1))
    names = [n for n, v in bench.labels.items() if v != 0]
    if scores is not None and scores.is_file():
        rows = {row["case_id"]: row for row in read_scores(scores).rows}
        results = []
        for case in bench.cases:
            row = rows[chosen[case]["variant"] if case in chosen else case]
            results.append(CaseResult(case, {n: row[f"sps_{n}"] for n in names},
                                      {n: row[f"dice_fm_{n}"] for n in names}, Path(""), (1, 1, 1)))
        table = build_table(results, names)
        write_outputs(table, out / ".aleatoric" / "scores.csv", {"model": f"from {scores}"}, [], results)
    else:
        from napari_aleatoric.pipelines.scoring import score_dataset

        print("scoring the assembled dataset with litemedsam (no --scores table): slow on a CPU", flush=True)
        for _ in score_dataset(out, "litemedsam", device="cpu"):
            pass
    return {"train": train_ids, "val": val_ids, "corrupted": {c: r["kind"] for c, r in sorted(chosen.items())},
            "corrupted_fraction": len(chosen) / len(train_ids)}


def run_strategies(args) -> int:
    from napari_aleatoric.training import EpochDone, TrainingFinished, TrainSettings, train

    started_cpu = time.process_time()
    dataset = args.work / "NoisyMNI"
    info = assemble_noisy_dataset(args.bench_out, dataset, args.corrupt, args.scores)
    auv = {row["case_id"]: row["auv"] for row in __import__("napari_aleatoric.pipelines.table", fromlist=["x"])
           .read_scores(dataset / ".aleatoric" / "scores.csv").rows}
    print(f"{len(info['train'])} train ({len(info['corrupted'])} corrupted, "
          f"{100 * info['corrupted_fraction']:.0f} %), {len(info['val'])} validation (clean)", flush=True)
    results = {"info": info, "settings": {k: str(v) for k, v in vars(args).items()}, "runs": {}}
    seeds = [int(s) for s in args.seeds.split(",")]
    oracle_csv = args.work / "oracle_scores.csv"
    if "oracle-filtering" in args.strategy_list.split(","):
        from napari_aleatoric.data.atomic import atomic_write_bytes
        from napari_aleatoric.pipelines.table import ScoreTable, read_scores, table_to_csv

        table = read_scores(dataset / ".aleatoric" / "scores.csv")
        rows = [dict(row, auv=1.0 if row["case_id"] in info["corrupted"] else 0.0) for row in table.rows]
        atomic_write_bytes(oracle_csv, table_to_csv(ScoreTable(table.columns, rows)).encode())
    for seed in seeds:
        for name in args.strategy_list.split(","):
            keep, duo = STRATEGIES[name]
            settings = TrainSettings(network="unet", epochs=args.epochs, batch_size=args.batch_size,
                                     patch=(args.patch, args.patch), width=args.width, depth=args.depth, lr=args.lr,
                                     seed=seed, keep=keep, duo=duo, device="cpu", name=f"{name}-s{seed}")
            run_started, cpu_before = time.perf_counter(), time.process_time()
            history, finished = [], None
            for event in train(dataset, settings, run_dir=args.work / "runs" / f"{name}-s{seed}",
                               scores_csv=oracle_csv if name == "oracle-filtering" else None):
                if isinstance(event, EpochDone):
                    history.append(event.val_mean_dice)
                elif isinstance(event, TrainingFinished):
                    finished = event
            cases = json.loads((args.work / "runs" / f"{name}-s{seed}" / "cases.json").read_text())
            dropped = cases["filter"].get("filtered_out", [])
            entry = {"best_dice": finished.best_dice, "best_epoch": finished.best_epoch,
                     "last5_dice": float(np.mean(history[-5:])), "history": history,
                     "filtered_out": dropped, "filtered_out_corrupted": [c for c in dropped if c in info["corrupted"]],
                     "wall_seconds": time.perf_counter() - run_started, "cpu_seconds": time.process_time() - cpu_before}
            results["runs"][f"{name}/{seed}"] = entry
            print(f"{name:>10} seed {seed}: best Dice {entry['best_dice']:.4f} (epoch {entry['best_epoch']}), "
                  f"last-5 mean {entry['last5_dice']:.4f}, filtered {len(dropped)} "
                  f"({len(entry['filtered_out_corrupted'])} corrupted), {entry['cpu_seconds']:.0f} s CPU", flush=True)
            if args.out:
                args.out.write_text(json.dumps(results, indent=2))
    print("\nstrategy      best-epoch val Dice (mean ± sd over seeds)   last-5-epoch mean   vs plain")
    summary = {}
    for name in args.strategy_list.split(","):
        best = np.array([results["runs"][f"{name}/{s}"]["best_dice"] for s in seeds])
        last = np.array([results["runs"][f"{name}/{s}"]["last5_dice"] for s in seeds])
        summary[name] = {"best_mean": float(best.mean()), "best_sd": float(best.std(ddof=1)) if len(best) > 1 else 0.0,
                         "last5_mean": float(last.mean()), "last5_sd": float(last.std(ddof=1)) if len(last) > 1 else 0.0}
    for name, s in summary.items():
        diff = 100 * (s["best_mean"] - summary.get("plain", s)["best_mean"])
        print(f"{name:>10}    {100 * s['best_mean']:.2f} ± {100 * s['best_sd']:.2f}"
              f"                      {100 * s['last5_mean']:.2f} ± {100 * s['last5_sd']:.2f}      {diff:+.2f}")
    corrupted_auv = [auv[c] for c in info["corrupted"]]
    clean_auv = [auv[c] for c in info["train"] if c not in info["corrupted"]]
    from benchmarks.labelnoise.metrics import auroc

    separation = None
    if corrupted_auv and clean_auv:  # --corrupt 0 trains on clean labels (the upper bound): nothing to separate
        separation = auroc(np.array(corrupted_auv + clean_auv),
                           np.array([1] * len(corrupted_auv) + [0] * len(clean_auv)))
        print(f"AUROC of the AUV for 'corrupted' among the training cases: {separation:.2f}")
    results.update(summary=summary, auv_auroc=separation, total_cpu_seconds=time.process_time() - started_cpu,
                   machine=platform.processor() or platform.machine(), torch_threads=torch.get_num_threads())
    print(f"total CPU time {results['total_cpu_seconds']:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, nargs="?")
    parser.add_argument("--strategies", action="store_true", help="compare plain / filtering / DUO / both on noisy labels")
    parser.add_argument("--bench-out", type=Path, default=Path("/tmp/labelnoise_bench"),
                        help="label-noise benchmark folder (built there if missing)")
    parser.add_argument("--scores", type=Path, help="the benchmark's scores CSV of the MNI set (SPS per class)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/noisy_training"))
    parser.add_argument("--corrupt", type=float, default=0.25, help="fraction of training cases corrupted")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strategy-list", default="plain,filtering,duo,both",
                        help=f"comma-separated, from {', '.join(STRATEGIES)}")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--noise-bias", type=float, default=None,
                        help="start the noise head with this bias and N(0, 0.1) weights (default: zero weights, bias -4)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.strategies:
        return run_strategies(args)
    if args.dataset is None:
        parser.error("DATASET is needed (or --strategies)")
    ds = open_dataset(args.dataset)
    results = {"dataset": ds.name, "settings": vars(args) | {"dataset": str(args.dataset), "out": str(args.out)},
               "machine": platform.processor() or platform.machine(), "variants": {}}
    for name in args.variants.split(","):
        results["variants"][name] = run_variant(ds, name, VARIANTS[name], args)
    print("\nlast 5 epochs (mean):")
    for name, history in results["variants"].items():
        tail = history[-5:]
        mean = {k: float(np.mean([h[k] for h in tail])) for k in ("duo_loss", "true_loss", "target_shift", "val_dice")}
        print(f"{name:>24}  duo {mean['duo_loss']:.4f}  true {mean['true_loss']:.4f}  shift {mean['target_shift']:.3f}"
              f"  val Dice {mean['val_dice']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=lambda v: None if isinstance(v, float) and
                                       not math.isfinite(v) else str(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
