"""Scoring benchmark (issue: score a labelled dataset): where the time goes, cache, memory.

Measures, on this machine's CPU (or --device):
1. time per case split into foundation-model forward (embed + decode) vs everything else, for 2D
   256×256 cases with 3 classes and for one 3D volume;
2. the speed-up of a second run over the same dataset (everything cached);
3. peak memory (max RSS of a fresh process) scoring 10 vs 100 cases.

Usage:  python benchmarks/bench_scoring.py [--model litemedsam] [--device cpu] [--quick] [--out results.json]
``--quick`` uses fewer cases (for a smoke test with ``--model tiny``).

Batching (``--batch-size 1 16 32``): the first run over each dataset is repeated once per batch
size, each on a fresh copy of the same data, and the JSON gets, per batch size, the seconds per
annotated slice in the model and the largest difference of its scores and maps from the first
batch size's run (``benchmarks/compare_scores.py``). ``--save-scores DIR`` keeps each run's
``scores.csv`` and cached maps as ``DIR/<dataset>/b<batch>/`` (for comparing devices).
``--cases``, ``--depth`` and ``--volumes`` set the sizes; ``--skip-memory`` and ``--skip-second``
leave out the memory and cached-run parts; ``--no-label-quality`` times the per-case scoring alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_scores import compare_runs  # noqa: E402
from synthetic import make_2d_dataset, make_3d_dataset  # noqa: E402

from napari_aleatoric.models.registry import load_model  # noqa: E402
from napari_aleatoric.pipelines.scoring import CaseScored, score_dataset  # noqa: E402


def time_run(dataset: Path, model, device: str, batch_size: int | None = None, label_quality: bool = True) -> dict:
    """Score a dataset once; per-case totals and forward seconds, and the run's wall time."""
    started = time.perf_counter()
    cases = []
    for event in score_dataset(dataset, model, device=device, batch_size=batch_size, label_quality=label_quality):
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
    parser.add_argument("--batch-size", type=int, nargs="+", default=None,
                        help="slices per encoder forward; several values: one first run per value, compared")
    parser.add_argument("--cases", type=int, default=None, help="2D cases (default 10; --quick 4)")
    parser.add_argument("--depth", type=int, default=None, help="slices per volume (default 24; --quick 4)")
    parser.add_argument("--volumes", type=int, default=1, help="3D volumes (default 1)")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the peak-memory part")
    parser.add_argument("--skip-second", action="store_true", help="leave out the second (cached) run")
    parser.add_argument("--no-label-quality", action="store_true", help="score without the label-quality pass")
    parser.add_argument("--save-scores", type=Path, default=None,
                        help="keep each run's scores.csv and maps under DIR/<dataset>/b<batch>/")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    cases_2d, depth, memory_cases = (4, 4, (3, 6)) if args.quick else (10, 24, (10, 100))
    cases_2d, depth = args.cases or cases_2d, args.depth or depth
    if args.batch_size is not None:
        return _batched(args, cases_2d, depth)
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


def _save_run(dataset: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(dataset / ".aleatoric" / "scores.csv", target / "scores.csv")
    shutil.copytree(dataset / ".aleatoric" / "cache" / "maps", target / "maps", dirs_exist_ok=True)


def _batched(args, cases_2d: int, depth: int) -> int:
    """First runs of the same data at each ``--batch-size``, timed and compared with the first."""
    results = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                           "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                           "torch": torch.__version__, "device": args.device},
               "model": args.model, "label_quality": not args.no_label_quality}
    model = load_model(args.model, args.device)
    label_quality = not args.no_label_quality
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sources = {f"2d_{cases_2d}x256x256_3_classes": make_2d_dataset(tmp / "src" / "d2", cases_2d),
                   f"3d_{args.volumes}x{depth}x256x256_3_classes": make_3d_dataset(tmp / "src" / "d3", depth,
                                                                                   cases=args.volumes)}
        # one untimed run first, so that CUDA and the allocator are warm for every timed batch size
        warm = tmp / "warm"
        shutil.copytree(sources[next(iter(sources))], warm)
        time_run(warm, model, args.device, args.batch_size[0], label_quality=False)
        for name, source in sources.items():
            entry = {}
            reference = None
            for batch in args.batch_size:
                copy = tmp / f"b{batch}" / name
                shutil.copytree(source, copy)
                run = time_run(copy, model, args.device, batch, label_quality)
                slices = _annotated_slices(copy)
                run["annotated_slices"] = slices
                run["forward_seconds_per_slice"] = run["forward_seconds_total"] / max(1, slices)
                run["wall_seconds_per_slice"] = run["wall_seconds"] / max(1, slices)
                if not args.skip_second:
                    run["second_wall_seconds"] = time_run(copy, model, args.device, batch, label_quality)["wall_seconds"]
                if args.save_scores is not None:
                    _save_run(copy, args.save_scores / name / f"b{batch}")
                if reference is None:
                    reference = copy
                else:
                    run["compared_with_first"] = compare_runs(reference / ".aleatoric", copy / ".aleatoric")
                entry[f"batch_{batch}"] = run
                print(f"{name} batch {batch}: {run['forward_seconds_per_slice'] * 1000:.2f} ms/slice in the model, "
                      f"{run['wall_seconds']:.2f} s wall", file=sys.stderr, flush=True)
                results[name] = entry
                if args.out:  # what is measured so far survives a time limit
                    args.out.write_text(json.dumps(results, indent=2))
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


def _annotated_slices(dataset: Path) -> int:
    """Slices the model embedded (those with a prompt), from the cached maps' ``prompted`` arrays."""
    import numpy as np  # noqa: PLC0415

    total = 0
    for path in (dataset / ".aleatoric" / "cache" / "maps").glob("*.npz"):
        with np.load(path, allow_pickle=False) as npz:
            total += int(npz["prompted"].any(axis=0).sum())
    return total


if __name__ == "__main__":
    sys.exit(main())
