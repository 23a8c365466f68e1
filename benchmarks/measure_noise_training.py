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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
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
