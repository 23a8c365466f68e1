"""How much compute a second process adds on this machine: the ceiling of any 2-worker speed-up.

Runs the same single-threaded workload in 1 process, then in ``--processes`` processes at once
(started together, each with one torch thread), and reports the aggregate throughput ratio. Two
workloads: a float32 matmul (1024², pure compute) and the LiteMedSAM image encoder on one 256²
slice (the scoring's dominant cost; ``--no-encoder`` skips it). If the ratio is well below the
number of processes, the cores share execution units or memory bandwidth (for example, virtual
CPUs that are hyper-threads of one physical core) and no scheduler can do better than it.

Usage::

    python benchmarks/bench_core_scaling.py --out benchmarks/results/core_scaling.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path


def _matmul_work(seconds: float) -> float:
    """Matmuls per second over about ``seconds`` of one thread."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        done += 1
    return done / (time.perf_counter() - started)


def encoder_forwards_per_second(repeats: int) -> float:
    """Encoder forwards per second (LiteMedSAM, one 256² slice, one thread)."""
    import torch

    from napari_aleatoric.models.registry import load_model

    torch.set_num_threads(1)
    model = load_model("litemedsam", "cpu")
    x = torch.rand(1, 3, 256, 256)
    model.embed(x)
    started = time.perf_counter()
    for _ in range(repeats):
        model.embed(x)
    return repeats / (time.perf_counter() - started)


def _run(work, argument, processes: int) -> list[float]:
    with mp.get_context("spawn").Pool(processes) as pool:
        return pool.map(work, [argument] * processes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="matmul workload per process")
    parser.add_argument("--encoder-repeats", type=int, default=8)
    parser.add_argument("--no-encoder", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    result = {"machine": platform.machine(), "cpus": os.cpu_count(), "load_average_start": list(os.getloadavg()),
              "processes": args.processes, "workloads": {}}
    workloads = {"matmul_1024": (_matmul_work, args.seconds)}
    if not args.no_encoder:
        workloads["litemedsam_encoder"] = (encoder_forwards_per_second, args.encoder_repeats)
    for name, (work, argument) in workloads.items():
        alone = _run(work, argument, 1)[0]
        together = _run(work, argument, args.processes)
        result["workloads"][name] = {"per_second_alone": round(alone, 3),
                                     "per_second_each_together": [round(v, 3) for v in together],
                                     "aggregate_ratio": round(sum(together) / alone, 3)}
        print(name, json.dumps(result["workloads"][name]), flush=True)
    result["load_average_end"] = list(os.getloadavg())
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
