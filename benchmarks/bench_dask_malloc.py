"""The LiteMedSAM encoder in Dask workers with and without Dask's ``MALLOC_TRIM_THRESHOLD_``.

Starts a ``LocalCluster`` of 2 worker processes (one thread each) twice, once with Dask's default
worker environment and once with the setting :func:`napari_aleatoric.pipelines.distributed.local_client`
uses (no fixed trim threshold), and times ``--repeats`` encoder forwards of one 256² input on both
workers at once. Needs a quiet machine.

Usage::

    python benchmarks/bench_dask_malloc.py --out benchmarks/results/dask_malloc.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import dask.config
from distributed import Client, LocalCluster

from napari_aleatoric.pipelines.distributed import TRIM_SETTING


def encoder_seconds(repeats: int) -> dict:
    """Mean seconds per encoder forward in this worker, and its trim setting."""
    from bench_core_scaling import encoder_forwards_per_second  # the workers inherit this script's sys.path

    return {"seconds_per_forward": 1.0 / encoder_forwards_per_second(repeats),
            "MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_")}


def on_cluster(repeats: int, settings: dict) -> list[dict]:
    with dask.config.set(settings):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    client = Client(cluster, set_as_default=False)
    try:
        futures = [client.submit(encoder_seconds, repeats, pure=False, workers=[w], allow_other_workers=False)
                   for w in client.scheduler_info()["workers"]]
        return [f.result() for f in futures]
    finally:
        client.close()
        cluster.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    # without first: Dask's nannies leave the default in this process's environment for later clusters
    without = on_cluster(args.repeats, {TRIM_SETTING: None})
    result = {"without_trim_threshold": without, "dask_default": on_cluster(args.repeats, {}),
              "load_average_end": list(os.getloadavg())}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
