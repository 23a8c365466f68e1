"""Cost of the label-quality part of scoring against the foundation model, on datasets already scored.

For each dataset folder given (scored before, so that ``<dataset>/.aleatoric/cache`` holds the
foundation model's maps and the slice embeddings of every slice), this

1. re-runs ``score_dataset`` in a fresh subprocess on a temporary cache whose ``maps/`` and
   ``embeddings/`` are links to the dataset's cached files and whose ``quality/`` is empty: every
   case's foundation-model maps come from the cache (the run stops if one does not) and the
   label-quality pass runs in full. Timed between the generator's events, in wall time, CPU time
   of the calling thread (``time.thread_time``) and CPU time of the process:

   - ``cached_cases``: the per-case part without the model (reading, hashing, cached maps, SPS);
   - ``label_quality``: everything after the last case: the out-of-fold label-quality pass
     (``assess_label_quality``: pixel sampling, 5-fold classifier fits, out-of-fold maps, scores,
     contradicted shares, wrong regions, issue-map cache) and the table, flag and outputs
     (``build_table``, ``write_outputs``);
   - ``table_flag_outputs``: of which the part after the last case's out-of-fold prediction (that
     case's scores, regions and issue maps, then the table, flag and outputs).

   The model is built before the clock starts (a first scoring run has it built already); if the
   pass had to embed a slice the result says so (``encoder_seconds_in_pass``).
2. times the foundation model itself (LiteMedSAM, or ``--model``) on a sample of the dataset's
   annotated slices, as the scoring pass runs it (``compute_class_maps`` on the slice: encoder and
   one decoder call per class and component, no embedding cache), after one untimed warm-up
   slice, and extrapolates per slice to the slices the scoring pass prompts (read from the cached
   maps' ``prompted``). The encoder alone is timed on the same slices: a first scoring run's
   label-quality pass embeds the slices without annotation itself (the scoring pass embeds only the
   annotated ones), so on a first run that encoder time belongs to the pass (``first_run_*``); on a
   re-run every embedding is cached. The forward seconds recorded in the cached maps are reported too, but they
   were measured under whatever load the original scoring run had.
3. with ``--memory``, measures the peak resident memory of fresh subprocesses that run the same
   scoring on all the cases and on every other case (``--memory-repeats`` processes of each,
   alternating): the peak (``VmHWM``) is reset once the imports are done and the model is built
   (Linux ``/proc/self/clear_refs``), so the figure is the growth of the peak during the scoring
   (cached cases, label-quality pass, table), per phase too, to see whether it grows with the number
   of cases. (``ru_maxrss`` is recorded as well but is no use here: it is never reset, and a child
   process starts with the resident size of the parent it was forked from.)

Nothing is written into the dataset folders (the scores and issue maps go to the temporary cache);
the script checks that no file under ``<dataset>/.aleatoric`` changed.

Usage: python benchmarks/bench_label_quality_cost.py DATASET [DATASET ...] [--fm-slices 6]
       [--threads 1] [--memory] [--memory-repeats 3] [--model litemedsam] [--out result.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _clock() -> tuple[float, float, float]:
    return time.perf_counter(), time.thread_time(), time.process_time()


def _since(start: tuple[float, float, float], end: tuple[float, float, float]) -> dict[str, float]:
    return {"wall_s": end[0] - start[0], "thread_cpu_s": end[1] - start[1], "process_cpu_s": end[2] - start[2]}


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _proc_status_mib(*fields: str) -> dict[str, float]:
    """``VmRSS``, ``VmHWM``, ``RssAnon`` ... of this process from ``/proc/self/status``, in MiB."""
    values = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            if name in fields:
                values[name] = int(rest.split()[0]) / 1024.0  # kB
    return values


def _reset_peak_rss() -> bool:
    """Reset the process's peak resident set (``VmHWM``) to its current size (Linux ``clear_refs``
    5), so that the peak read afterwards is the peak of what runs next, not of the imports and the
    model's loading before it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _state_fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    """``{path: (size, mtime_ns)}`` of every file under ``<dataset>/.aleatoric``."""
    state = root / ".aleatoric"
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(state.rglob("*")) if p.is_file()}


def linked_cache(root: Path, folder: Path) -> Path:
    """A cache folder whose ``maps/`` and ``embeddings/`` link to the dataset's cached files (a file
    written there replaces its link, never the dataset's file) and whose ``quality/`` is empty."""
    cache = folder / "cache"
    for kind in ("maps", "embeddings"):
        (cache / kind).mkdir(parents=True)
        for path in (root / ".aleatoric" / "cache" / kind).iterdir():
            (cache / kind / path.name).symlink_to(path)
    return cache


# ---------------------------------------------------------------------------------------------- child
def child(args) -> int:
    """One scoring run on the linked cache (a fresh process): phase times and peak memory, as JSON."""
    import torch  # noqa: PLC0415

    from napari_aleatoric.data.dataset import open_dataset  # noqa: PLC0415
    from napari_aleatoric.labelquality.assess import LabelQualityProgress  # noqa: PLC0415
    from napari_aleatoric.models.registry import load_model  # noqa: PLC0415
    from napari_aleatoric.pipelines.scoring import CaseScored, CaseSkipped, ScoringFinished, score_dataset  # noqa: PLC0415

    if args.threads:
        torch.set_num_threads(args.threads)
    ds = open_dataset(args.dataset)
    case_ids = [ref.case_id for ref in ds.cases]
    if args.cases == "half":
        case_ids = case_ids[::2]
    started = time.perf_counter()
    model = load_model(args.model, "cpu")
    model_build_s = time.perf_counter() - started
    rss_before = _maxrss_mib()
    peak_reset = _reset_peak_rss()
    status_before = _proc_status_mib("VmRSS", "RssAnon", "VmHWM")
    encoder_before = model.seconds_in_model
    marks = {"start": _clock()}
    cached, slices = True, 0
    peak_by_phase: dict[str, float] = {}  # VmHWM (MiB) when each phase ended
    for event in score_dataset(ds, model, device="cpu", cache_dir=args.cache, case_ids=case_ids):
        now = _clock()
        if peak_reset:
            phase = type(event).__name__ if not isinstance(event, LabelQualityProgress) else event.stage
            peak_by_phase[{"CaseScored": "cached_cases"}.get(phase, phase)] = _proc_status_mib("VmHWM")["VmHWM"]
        if isinstance(event, CaseScored):
            marks["last_case"] = now
            cached = cached and event.result.cached
            slices += event.result.shape[0]
        elif isinstance(event, CaseSkipped):
            raise SystemExit(f"case {event.case_id} skipped: {event.error}")
        elif isinstance(event, LabelQualityProgress):
            marks.setdefault("first_quality", now)
            if event.stage == "predicting" and event.index == event.total:
                marks["last_predicted"] = now
        elif isinstance(event, ScoringFinished):
            marks["finished"] = now
            table = event.table
    if not cached:
        raise SystemExit("some case's foundation-model maps were not in the cache: the run used the model")
    result = {
        "cases": len(case_ids), "slices": slices, "threads": torch.get_num_threads(), "model_build_s": model_build_s,
        "cached_cases": _since(marks["start"], marks["last_case"]),
        "label_quality": _since(marks["last_case"], marks["finished"]),
        "table_flag_outputs": _since(marks["last_predicted"], marks["finished"]),
        "encoder_seconds_in_pass": model.seconds_in_model - encoder_before,
        "maxrss_before_mib": rss_before, "maxrss_after_mib": _maxrss_mib(),
        "peak_reset": peak_reset, "rss_before_pass_mib": status_before["VmRSS"],
        "anon_before_pass_mib": status_before["RssAnon"],
        "peak_rss_during_scoring_mib": _proc_status_mib("VmHWM")["VmHWM"] if peak_reset else None,
        "peak_rss_by_phase_mib": peak_by_phase,
        "flagged": [r["case_id"] for r in table.rows if r["flagged"]],
    }
    print(json.dumps(result))
    return 0


def run_child(dataset: Path, cases: str, args) -> dict:
    """Run :func:`child` in a fresh subprocess on a fresh linked cache."""
    with tempfile.TemporaryDirectory(prefix="lq_cost_") as tmp:
        cache = linked_cache(dataset, Path(tmp))
        command = [sys.executable, __file__, "--child", str(dataset), "--cases", cases, "--cache", str(cache),
                   "--model", args.model] + (["--threads", str(args.threads)] if args.threads else [])
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"child failed on {dataset} ({cases}):\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if cases == "all":  # the re-run's scores against the dataset's own (same cases, same code: same numbers)
            result["label_issue_matches_dataset"] = _same_label_issue(dataset / ".aleatoric" / "scores.csv",
                                                                      cache / "scores.csv")
        return result


def _same_label_issue(a: Path, b: Path) -> bool | None:
    def read(path):
        with open(path, newline="") as handle:
            return {row["case_id"]: row.get("label_issue") for row in csv.DictReader(handle)}
    if not a.exists():
        return None
    return read(a) == read(b)


# ------------------------------------------------------------------------------------ model timing
def foundation_model_time(dataset: Path, model, slices: int) -> dict:
    """Time the model as scoring runs it on ``slices`` annotated slices spread over the cases."""
    from napari_aleatoric.data.arraycache import ArrayCache  # noqa: PLC0415
    from napari_aleatoric.data.dataset import load_case, open_dataset  # noqa: PLC0415
    from napari_aleatoric.models.preprocess import normalise_intensity  # noqa: PLC0415
    from napari_aleatoric.models.prompting import slice_embedding  # noqa: PLC0415
    from napari_aleatoric.pipelines.class_maps import compute_class_maps  # noqa: PLC0415
    from napari_aleatoric.pipelines.scoring import maps_cache_dir  # noqa: PLC0415

    ds = open_dataset(dataset)
    values = list(ds.foreground.values())
    maps = ArrayCache(maps_cache_dir(ds))
    prompted_slices, total_slices, recorded = 0, 0, 0.0
    per_case: list[tuple[str, list[int]]] = []
    for ref in ds.cases:
        path = maps.path(ref.case_id)
        with np.load(path) as data:
            prompted = data["prompted"].any(axis=0)
            meta = json.loads(str(data["__meta__"]))
        prompted_slices += int(prompted.sum())
        total_slices += int(prompted.size)
        recorded += float(meta.get("forward_seconds", 0.0))
        per_case.append((ref.case_id, [int(d) for d in np.flatnonzero(prompted)]))
    # one slice per case in turn (the middle prompted slice, then the others), over the cases
    sample: list[tuple[str, int]] = []
    round_ = 0
    while len(sample) < slices + 1 and any(len(s) > round_ for _, s in per_case):
        for case_id, prompted in per_case:
            if len(prompted) > round_ and len(sample) < slices + 1:
                order = sorted(prompted, key=lambda d: abs(d - prompted[len(prompted) // 2]))
                sample.append((case_id, order[round_]))
        round_ += 1
    times = []
    for k, (case_id, d) in enumerate(sample):
        case = load_case(ds, ds.case(case_id))
        image = case.image if case.image.ndim == 3 else case.image[None]
        label = case.label if case.label.ndim == 3 else case.label[None]
        image01 = normalise_intensity(image, ds.modality, "raw", label > 0)
        start = _clock()
        maps_ = compute_class_maps(model, image01[d:d + 1], label[d:d + 1], values, None, batch_size=1)
        end = _clock()
        slice_embedding(model, image01[d], None)  # the encoder alone, as the label-quality pass runs it
        encoded = _clock()
        if k > 0:  # the first one is the warm-up
            times.append(dict(_since(start, end), model_s=maps_.forward_seconds, case=case_id, slice=d,
                              encoder_only=_since(end, encoded)))
    per_slice = {key: statistics.mean(t[key] for t in times) for key in ("wall_s", "thread_cpu_s", "process_cpu_s",
                                                                          "model_s")}
    encoder = {key: statistics.mean(t["encoder_only"][key] for t in times) for key in ("wall_s", "thread_cpu_s")}
    unprompted = total_slices - prompted_slices
    return {"prompted_slices": prompted_slices, "slices": total_slices, "sampled": times,
            "per_slice_mean": per_slice, "per_slice_median_wall_s": statistics.median(t["wall_s"] for t in times),
            "estimate": {key: value * prompted_slices for key, value in per_slice.items()},
            "encoder_only_per_slice_mean": encoder,
            # a first scoring run's label-quality pass embeds the slices without annotation itself
            "unprompted_slices": unprompted,
            "first_run_pass_encoder_estimate": {key: value * unprompted for key, value in encoder.items()},
            "recorded_forward_seconds_in_cache": recorded}


# --------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", type=Path)
    parser.add_argument("--fm-slices", type=int, default=6, help="annotated slices the model is timed on")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--memory", action="store_true", help="also peak memory with all and half the cases")
    parser.add_argument("--memory-repeats", type=int, default=3, help="fresh processes per size (--memory)")
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cases", default="all", choices=("all", "half"), help=argparse.SUPPRESS)
    parser.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        args.dataset = args.child
        return child(args)
    if not args.datasets:
        parser.error("name at least one scored dataset folder")

    import torch  # noqa: PLC0415

    from napari_aleatoric.models.registry import load_model  # noqa: PLC0415

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, "
          f"Python {platform.python_version()}, load average {os.getloadavg()}", flush=True)
    model = load_model(args.model, "cpu")
    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
               "model": model.name, "load_average_start": list(os.getloadavg()), "datasets": {}}
    for dataset in args.datasets:
        dataset = dataset.resolve()
        before = _state_fingerprint(dataset)
        post = run_child(dataset, "all", args)
        fm = foundation_model_time(dataset, model, args.fm_slices)
        entry = {"post_model": post, "foundation_model": fm,
                 "ratio_wall": post["label_quality"]["wall_s"] / fm["estimate"]["wall_s"],
                 "ratio_thread_cpu": post["label_quality"]["thread_cpu_s"] / fm["estimate"]["thread_cpu_s"],
                 "ratio_process_cpu": post["label_quality"]["process_cpu_s"] / fm["estimate"]["process_cpu_s"]}
        if fm["unprompted_slices"]:  # on a first run the pass also embeds the slices without annotation
            entry["first_run_ratio_wall"] = ((post["label_quality"]["wall_s"] + fm["first_run_pass_encoder_estimate"]
                                              ["wall_s"]) / fm["estimate"]["wall_s"])
            entry["first_run_ratio_thread_cpu"] = ((post["label_quality"]["thread_cpu_s"]
                                                    + fm["first_run_pass_encoder_estimate"]["thread_cpu_s"])
                                                   / fm["estimate"]["thread_cpu_s"])
        lq = post["label_quality"]
        print(f"{dataset.name}: {post['cases']} cases, {fm['prompted_slices']} prompted slices; label quality + "
              f"table {lq['wall_s']:.1f} s wall, {lq['thread_cpu_s']:.1f} s thread CPU "
              f"(table/flag/outputs {post['table_flag_outputs']['wall_s']:.2f} s; cached cases "
              f"{post['cached_cases']['wall_s']:.1f} s; encoder in pass {post['encoder_seconds_in_pass']:.1f} s); "
              f"model {fm['per_slice_mean']['wall_s']:.2f} s wall / {fm['per_slice_mean']['thread_cpu_s']:.2f} s "
              f"thread CPU per slice -> {fm['estimate']['wall_s']:.0f} s / {fm['estimate']['thread_cpu_s']:.0f} s; "
              f"ratio {100 * entry['ratio_wall']:.1f} % wall, {100 * entry['ratio_thread_cpu']:.1f} % thread CPU; "
              f"label_issue as in the dataset's scores: {post.get('label_issue_matches_dataset')}", flush=True)
        if fm["unprompted_slices"]:
            print(f"  first run: the pass also embeds {fm['unprompted_slices']} slices without annotation "
                  f"(encoder {fm['encoder_only_per_slice_mean']['thread_cpu_s']:.2f} s thread CPU per slice): ratio "
                  f"{100 * entry['first_run_ratio_wall']:.1f} % wall, {100 * entry['first_run_ratio_thread_cpu']:.1f} % "
                  "thread CPU", flush=True)
        if args.memory:  # fresh processes, alternating half / all; the first "all" is the timed run above
            runs: dict[str, list[dict]] = {"all": [post], "half": []}
            for k in range(args.memory_repeats):
                runs["half"].append(run_child(dataset, "half", args))
                if k + 1 < args.memory_repeats:
                    runs["all"].append(run_child(dataset, "all", args))
            entry["memory"] = {}
            for part, part_runs in runs.items():
                growth = [r["peak_rss_during_scoring_mib"] - r["rss_before_pass_mib"] for r in part_runs
                          if r["peak_rss_during_scoring_mib"] is not None]
                entry["memory"][part] = {
                    "cases": part_runs[0]["cases"], "slices": part_runs[0]["slices"],
                    "growth_during_scoring_mib": growth,
                    "growth_median_mib": statistics.median(growth) if growth else None,
                    "runs": [{k: r[k] for k in ("maxrss_before_mib", "maxrss_after_mib", "peak_reset",
                                                "rss_before_pass_mib", "anon_before_pass_mib",
                                                "peak_rss_during_scoring_mib", "peak_rss_by_phase_mib")}
                             for r in part_runs]}
                print(f"  {part}: {part_runs[0]['cases']} cases ({part_runs[0]['slices']} slices): RSS before "
                      f"scoring {part_runs[0]['rss_before_pass_mib']:.0f} MiB; peak growth during scoring "
                      f"{', '.join(f'{g:.0f}' for g in growth)} MiB", flush=True)
            entry["memory"]["half_label_quality"] = [r["label_quality"] for r in runs["half"]]
        entry["dataset_state_unchanged"] = _state_fingerprint(dataset) == before
        if not entry["dataset_state_unchanged"]:
            print(f"  WARNING: files under {dataset}/.aleatoric changed", flush=True)
        results["datasets"][dataset.name] = entry
    results["load_average_end"] = list(os.getloadavg())
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
