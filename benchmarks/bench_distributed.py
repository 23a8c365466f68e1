"""Distributed scoring benchmark (issue 14): serial vs a local Dask cluster, and the scheduler's overhead.

The same synthetic 2D dataset (256×256, 3 foreground classes, ``benchmarks/synthetic.py``) is
scored three times from scratch, each on a fresh copy, without the label-quality pass (it runs on
the client after the last case either way):

1. serially in this process, with ``--threads`` torch threads (default 1);
2. on a ``LocalCluster`` of ``--workers`` processes (default 2) with one torch thread each, started
   and warmed up (each worker loads the model on a small warm-up dataset) before the clock starts;
3. the scores of 2. are compared with 1. (``compare_scores.py``: ``scores.csv`` and every map).

Reported: cases per second of each and their ratio (the target is ≥ 1.7× with 2 workers on 2
cores); the scheduler's overhead per case as the gaps between one case's task and the next on each
worker (Dask's task stream), and, coarser, ``(wall × workers − Σ task seconds) / cases`` (time a
worker slot was not inside a case, the idle tail at the end included), each also as a share of a
case's model time (forward seconds; target ≤ 2 %).

Usage:  python benchmarks/bench_distributed.py [--model litemedsam] [--cases 20] [--workers 2] [--out results.json]
Check that it runs with ``--model tiny --cases 3``; timings need a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_scores import compare_runs  # noqa: E402
from synthetic import make_2d_dataset  # noqa: E402

import torch  # noqa: E402

from napari_aleatoric.pipelines import distributed  # noqa: E402
from distributed import get_task_stream  # noqa: E402
from napari_aleatoric.pipelines.scoring import CaseScored, CaseSkipped, score_dataset  # noqa: E402


def timed_run(dataset: Path, model: str, device: str, client=None) -> dict:
    """Score ``dataset`` once (no label-quality pass): wall time and the per-case times."""
    started = time.perf_counter()
    cases, skipped = [], 0
    for event in score_dataset(dataset, model, device=device, label_quality=False, client=client):
        if isinstance(event, CaseScored):
            cases.append({"case": event.result.case_id, "seconds": event.seconds,
                          "forward_seconds": event.result.forward_seconds, "cached": event.result.cached})
        elif isinstance(event, CaseSkipped):
            skipped += 1
    wall = time.perf_counter() - started
    n = max(1, len(cases))
    return {"cases": len(cases), "skipped": skipped, "wall_seconds": wall, "cases_per_second": len(cases) / wall,
            "case_seconds_total": sum(c["seconds"] for c in cases),
            "forward_seconds_per_case": sum(c["forward_seconds"] for c in cases) / n,
            "cached_cases": sum(c["cached"] for c in cases)}


def gaps_between_tasks(task_stream: list[dict]) -> float:
    """Seconds each worker spent between the end of one case's task and the start of its next
    (Dask's task stream: scheduling, transfers, the client's turn), summed over the workers. The
    idle time before a worker's first and after its last case (the tail, load imbalance) is not in it."""
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for task in task_stream:
        if not str(task.get("key", "")).startswith("napari-aleatoric-score"):
            continue
        spans = [(s["start"], s["stop"]) for s in task.get("startstops", []) if s.get("action") == "compute"]
        by_worker.setdefault(task["worker"], []).extend(spans)
    total = 0.0
    for spans in by_worker.values():
        spans.sort()
        total += sum(max(0.0, nxt[0] - prev[1]) for prev, nxt in zip(spans, spans[1:]))
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", type=int, default=20, help="2D cases (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the serial run (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                           "cpus": os.cpu_count(), "load_average_before": os.getloadavg(),
                           "device": args.device, "torch": torch.__version__},
               "model": args.model, "cases": args.cases, "workers": args.workers, "serial_torch_threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = make_2d_dataset(tmp / "source", args.cases)
        serial_ds, cluster_ds = tmp / "serial", tmp / "cluster"
        shutil.copytree(source, serial_ds)
        shutil.copytree(source, cluster_ds)
        warm = make_2d_dataset(tmp / "warm", max(2, args.workers), seed=99)
        timed_run(warm, args.model, args.device)  # this process loads the model and warms up
        shutil.rmtree(warm / ".aleatoric")
        results["serial"] = timed_run(serial_ds, args.model, args.device)
        print(f"serial: {results['serial']['cases_per_second']:.3f} cases/s", file=sys.stderr, flush=True)
        started = time.perf_counter()
        with distributed.local_client(args.workers, torch_threads=1) as client:
            client.wait_for_workers(args.workers, timeout=300)
            results["cluster_start_seconds"] = time.perf_counter() - started
            warm_run = timed_run(warm, args.model, args.device, client)  # every worker loads its model
            results["cluster_warm_up_seconds"] = warm_run["wall_seconds"]
            loaded = client.run(lambda: sorted(distributed._PROCESS_MODELS))
            results["workers_with_a_model"] = sum(bool(models) for models in loaded.values())
            with get_task_stream(client) as stream:
                cluster = timed_run(cluster_ds, args.model, args.device, client)
            cluster["gap_seconds_per_case"] = gaps_between_tasks(stream.data) / max(1, cluster["cases"])
            cluster["gap_share_of_model_time"] = (cluster["gap_seconds_per_case"]
                                                  / max(1e-9, cluster["forward_seconds_per_case"]))
        slots = args.workers * cluster["wall_seconds"]
        overhead = (slots - cluster["case_seconds_total"]) / max(1, cluster["cases"])
        cluster["overhead_seconds_per_case"] = overhead
        cluster["overhead_share_of_model_time"] = overhead / max(1e-9, cluster["forward_seconds_per_case"])
        results["cluster"] = cluster
        results["speedup"] = cluster["cases_per_second"] / results["serial"]["cases_per_second"]
        results["scores_compared"] = compare_runs(serial_ds / ".aleatoric", cluster_ds / ".aleatoric")
    results["machine"]["load_average_after"] = os.getloadavg()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
