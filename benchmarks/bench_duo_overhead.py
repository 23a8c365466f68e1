"""Loss overhead: time of one training step with DUO (``--compare duo``, default), with the
label-issue pixel weights (``--compare issue-weights``) or with the label-issue pixel weights and soft
targets together (``--compare issue-relabel``, the default guidance) vs the plain β·Dice + (1−β)·BCE loss.

``--compare issue-weights`` / ``issue-relabel``: both kinds of step also cut their batch from the
prepared cases (``make_weighted_batch``, the training loop's data path); the guided kind's cases
carry a weight map (``issue-weights``: entering the weighted BCE and Dice) or, as the default
``label_issues="relabel"`` gives them (``LabelIssuePlan.guidance`` returns ``(pixel_weights,
soft_targets)``: relabel where the model is sure, down-weight the other contradicted pixels), a weight
map AND per-class soft targets (``issue-relabel``: the soft targets replace the one-hot targets and the
weights enter the weighted BCE and Dice), cut into patches alongside, exactly as the training loop
passes them to ``duo_loss(..., pixel_weights=w)``; their values do not change the cost. The one-off label-issue pass at the start of a run is not a step cost; the
noisy-training benchmark records its time per run.

Same network (the default UNet, width 16, depth 4, unless changed), same optimiser, same batches of
real patches from the bundled sample datasets: 2D MRI slices (batch 4, 240×208, 2 classes) and 3D
CT patches (batch 2, 32×64×64, 3 classes). A step is forward, loss, backward and the Adam update:

- plain: ``net.segment(x)`` (the noise head is not evaluated) and the unweighted loss;
- DUO:   ``net(x)`` (both heads), the batched SPS of every (sample, class) prediction, the weights
         ``1/(1 + α·S)``, the label denoising and the noise head's own loss.

The machine may be shared, so the two kinds of step are interleaved in ABBA order after a warm-up
and the report gives medians and the median of the per-pair ratios. The SPS alone is timed too.
With ``--threads 1`` every operation runs on the calling thread, and its CPU time (``thread_time``)
is reported as well: it does not count the time other processes take the core away.

Usage: python benchmarks/bench_duo_overhead.py [--compare duo|issue-weights|issue-relabel] [--pairs 20] [--warmup 3]
       [--threads N] [--width 16] [--configs 2d,3d] [--out result.json]
(the result keys ``duo_*`` hold the compared kind's figures whatever ``--compare`` is)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np
import torch

from napari_aleatoric.data.dataset import open_dataset
from napari_aleatoric.sample_data import dataset_path
from napari_aleatoric.training.data import CaseLoader, make_batch, make_weighted_batch
from napari_aleatoric.training.duo import duo_loss, prediction_scales
from napari_aleatoric.training.networks import build_network

CONFIGS = {
    "2d": {"dataset": "Dataset001_MNIBrainSlices", "patch": (240, 208), "batch": 4},
    "3d": {"dataset": "Dataset002_SyntheticCT", "patch": (32, 64, 64), "batch": 2},
}


def bench(config: dict, args) -> dict:
    ds = open_dataset(dataset_path(config["dataset"]))
    loader = CaseLoader(ds)
    num_fg = len(ds.foreground)
    rng = np.random.default_rng(0)
    ids = [r.case_id for r in ds.cases]
    batches = [make_batch([loader.get(ids[(i * config["batch"] + k) % len(ids)]) for k in range(config["batch"])],
                          config["patch"], rng, num_fg) for i in range(4)]
    torch.manual_seed(0)
    net = build_network("unet", len(config["patch"]), num_fg + 1, width=args.width, depth=args.depth)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    cases = [loader.get(i) for i in ids]
    if args.compare == "issue-relabel":  # the default "relabel" guidance (LabelIssuePlan.guidance): pixel
        # weights (1 where relabelled, lower on the other contradicted pixels) AND soft targets, both
        weighted = [type(c)(c.case_id, c.image, c.label, c.foreground,
                            rng.uniform(0, 1, c.label.shape).astype(np.float32),
                            rng.uniform(0, 1, (num_fg,) + c.label.shape).astype(np.float32)) for c in cases]
    else:
        weighted = [type(c)(c.case_id, c.image, c.label, c.foreground,
                            rng.uniform(0, 1, c.label.shape).astype(np.float32)) for c in cases]

    def step(other: bool, k: int) -> tuple[float, float]:
        started, cpu_started = time.perf_counter(), time.thread_time()
        if args.compare in ("issue-weights", "issue-relabel"):
            chosen = [(weighted if other else cases)[(k * config["batch"] + i) % len(ids)] for i in range(config["batch"])]
            x, y, w = make_weighted_batch(chosen, config["patch"], np.random.default_rng(k), num_fg)
            parts = duo_loss(net.segment(x), None, y, weighting=False, denoising=False, pixel_weights=w)
        elif other:
            x, y = batches[k % len(batches)]
            seg, noise = net(x)
            parts = duo_loss(seg, noise, y)
        else:
            x, y = batches[k % len(batches)]
            parts = duo_loss(net.segment(x), None, y, weighting=False, denoising=False)
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        optimizer.step()
        return time.perf_counter() - started, time.thread_time() - cpu_started

    for k in range(args.warmup):
        step(False, k)
        step(True, k)
    plain, duo, ratios, cpu_plain, cpu_duo, cpu_ratios = [], [], [], [], [], []
    for k in range(args.pairs):
        order = (False, True) if k % 2 == 0 else (True, False)
        times = {kind: step(kind, k) for kind in order}
        plain.append(times[False][0])
        duo.append(times[True][0])
        ratios.append(times[True][0] / times[False][0])
        cpu_plain.append(times[False][1])
        cpu_duo.append(times[True][1])
        cpu_ratios.append(times[True][1] / times[False][1])
    with torch.no_grad():
        probabilities = torch.softmax(net.segment(batches[0][0]), 1)[:, 1:]
    sps = []
    for _ in range(args.pairs):
        started = time.perf_counter()
        prediction_scales(probabilities)
        sps.append(time.perf_counter() - started)
    result = {
        "dataset": config["dataset"], "batch": config["batch"], "patch": list(config["patch"]), "classes": num_fg,
        "plain_median_s": statistics.median(plain), "duo_median_s": statistics.median(duo),
        "overhead_of_medians": statistics.median(duo) / statistics.median(plain) - 1.0,
        "median_pair_ratio_minus_1": statistics.median(ratios) - 1.0,
        "sps_median_s": statistics.median(sps), "pairs": args.pairs,
        "cpu_plain_median_s": statistics.median(cpu_plain), "cpu_duo_median_s": statistics.median(cpu_duo),
        "cpu_median_pair_ratio_minus_1": statistics.median(cpu_ratios) - 1.0,
    }
    print(f"{config['dataset']}: batch {config['batch']} × {'×'.join(map(str, config['patch']))}, {num_fg} classes: "
          f"plain {result['plain_median_s'] * 1000:.0f} ms, {args.compare} {result['duo_median_s'] * 1000:.0f} ms "
          f"per step "
          f"(median of {args.pairs}); overhead {100 * result['overhead_of_medians']:+.1f} % (medians), "
          f"{100 * result['median_pair_ratio_minus_1']:+.1f} % (median pair ratio); "
          f"SPS alone {result['sps_median_s'] * 1000:.1f} ms", flush=True)
    if torch.get_num_threads() == 1:  # the calling thread does all the work: its CPU time ignores other load
        print(f"  CPU time of the calling thread: plain {result['cpu_plain_median_s'] * 1000:.0f} ms, "
              f"{args.compare} {result['cpu_duo_median_s'] * 1000:.0f} ms; overhead "
              f"{100 * result['cpu_median_pair_ratio_minus_1']:+.1f} % (median pair ratio)", flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--configs", default="2d,3d")
    parser.add_argument("--compare", choices=("duo", "issue-weights", "issue-relabel"), default="duo",
                        help="what is compared with the plain step")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, "
          f"UNet width {args.width} depth {args.depth}")
    results = {"compare": args.compare, "threads": torch.get_num_threads(), "width": args.width, "depth": args.depth,
               "torch": torch.__version__, "configs": {}}
    for name in args.configs.split(","):
        results["configs"][name] = bench(CONFIGS[name], args)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
