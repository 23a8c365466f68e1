"""Scoring benchmark (issue: score a labelled dataset): where the time goes, cache, memory.

Measures, on this machine's CPU (or --device):
1. time per case split into foundation-model forward (embed + decode) vs everything else, for 2D
   256×256 cases with 3 classes and for one 3D volume;
2. the speed-up of a second run over the same dataset (everything cached);
3. peak memory (max RSS of a fresh process) scoring 10 vs 100 cases.

Usage:  python benchmarks/bench_scoring.py [--model litemedsam] [--device cpu] [--quick] [--out results.json]
``--quick`` uses fewer cases (for a smoke test with ``--model tiny``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import make_2d_dataset, make_3d_dataset  # noqa: E402

from napari_aleatoric.models.registry import load_model  # noqa: E402
from napari_aleatoric.pipelines.scoring import CaseScored, score_dataset  # noqa: E402


def time_run(dataset: Path, model, device: str) -> dict:
    """Score a dataset once; per-case totals and forward seconds, and the run's wall time."""
    started = time.perf_counter()
    cases = []
    for event in score_dataset(dataset, model, device=device):
        if isinstance(event, CaseScored):
            cases.append({"case": event.result.case_id, "seconds": event.seconds,
                          "forward_seconds": event.result.forward_seconds, "cached": event.result.cached})
    wall = time.perf_counter() - started
    total = sum(c["seconds"] for c in cases)
    forward = sum(c["forward_seconds"] for c in cases)
    return {"cases": len(cases), "wall_seconds": wall, "case_seconds_total": total, "forward_seconds_total": forward,
            "seconds_per_case": total / max(1, len(cases)), "forward_seconds_per_case": forward / max(1, len(cases)),
            "non_forward_fraction": (total - forward) / total if total else 0.0}


def peak_rss_mib(dataset: Path, model: str, device: str) -> float:
    """Max RSS (MiB) of a fresh process that scores ``dataset``."""
    code = ("import resource,sys;from napari_aleatoric.pipelines.scoring import score_dataset;"
            f"[None for _ in score_dataset(sys.argv[1], {model!r}, device={device!r})];"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, str(dataset)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="few cases (smoke test)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    cases_2d, depth, memory_cases = (4, 4, (3, 6)) if args.quick else (10, 24, (10, 100))
    results = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                           "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                           "device": args.device},
               "model": args.model}
    model = load_model(args.model, args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_2d = make_2d_dataset(tmp / "d2", cases_2d)
        data_3d = make_3d_dataset(tmp / "d3", depth)
        results["2d_256x256_3_classes"] = {"first": time_run(data_2d, model, args.device),
                                           "second": time_run(data_2d, model, args.device)}
        results[f"3d_{depth}x256x256_3_classes"] = {"first": time_run(data_3d, model, args.device),
                                                    "second": time_run(data_3d, model, args.device)}
        for key in ("2d_256x256_3_classes", f"3d_{depth}x256x256_3_classes"):
            entry = results[key]
            entry["cache_speedup"] = entry["first"]["wall_seconds"] / entry["second"]["wall_seconds"]
        memory = {}
        for n in memory_cases:
            memory[f"{n}_cases_peak_rss_mib"] = peak_rss_mib(make_2d_dataset(tmp / f"m{n}", n, seed=n),
                                                             args.model, args.device)
        small, large = (memory[f"{n}_cases_peak_rss_mib"] for n in memory_cases)
        memory["growth_fraction"] = (large - small) / small
        results["memory"] = memory
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
