"""Build the datasets, score them with the pipeline, evaluate every registered method, write results."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from napari_aleatoric.data.dataset import open_dataset
from napari_aleatoric.models.registry import load_model
from napari_aleatoric.pipelines.scoring import CaseScored, CaseSkipped, ScoringFinished, score_dataset

from . import datasets as D
from . import difficulty as DF
from . import metrics as M
from .methods import HEATMAPS, METHODS, Context, method_table
from .plots import example_maps_path, example_records

MODES = ("raw", "masknorm")
ENERGIES = ("sigma2", "sigma")


def machine_info(device: str) -> dict:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "")
    except (OSError, subprocess.SubprocessError):
        model = ""
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_model": model or platform.processor(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "device": device, "cuda": torch.cuda.is_available()}


def score_runs(ds: D.BenchDataset, mode: str, ids: list[str], model, device: str, out: Path, log) -> tuple[dict, dict]:
    """Run the scoring pipeline (σ² then σ, the second from the cache) on ``ids`` in one input mode."""
    root = D.scoring_root(ds, mode, out)
    dataset = open_dataset(root)
    rows, timing = {}, {}
    for energy in ENERGIES:
        started = time.perf_counter()
        forward, cached, scored, skipped = 0.0, 0, 0, []
        table = None
        csv_path = out / "scores" / f"{ds.name}_{mode}_{energy}.csv"
        for event in score_dataset(dataset, model, device=device, input_mode=mode, energy=energy,
                                   out_csv=csv_path, case_ids=ids, label_quality=False):
            if isinstance(event, CaseScored):
                scored += 1
                forward += event.result.forward_seconds
                cached += int(event.result.cached)
                if not event.result.cached and (scored % 20 == 0 or scored == len(ids)):
                    log(f"  [{ds.name} {mode} {energy}] {scored}/{len(ids)} cases, "
                        f"{time.perf_counter() - started:.0f} s")
            elif isinstance(event, CaseSkipped):
                skipped.append(f"{event.case_id}: {event.error}")
            elif isinstance(event, ScoringFinished):
                table = event.table
        wall = time.perf_counter() - started
        rows[f"{mode}_{energy}"] = {r["case_id"]: r for r in table.rows}
        timing[f"{mode}_{energy}"] = {"cases": scored, "cached_cases": cached, "wall_seconds": round(wall, 2),
                                      "forward_seconds": round(forward, 2), "skipped": skipped,
                                      "seconds_per_uncached_case": round(wall / max(1, scored - cached), 3)
                                      if scored > cached else None}
        log(f"[score] {ds.name} {mode} {energy}: {scored} cases ({cached} cached) in {wall:.1f} s "
            f"(model {forward:.1f} s)")
    return rows, timing


def _groups(scores_by_rep: dict[int, np.ndarray], truth: dict[int, tuple], reps: list[int], kind: str | None):
    groups = []
    for r in reps:
        if r not in scores_by_rep:
            continue
        _, y, kinds = truth[r]
        s = scores_by_rep[r]
        if kind is None:
            groups.append((s, y))
        else:
            keep = ~y | np.array([k == kind for k in kinds])
            groups.append((s[keep], y[keep]))
    return groups


def evaluate_dataset(ds: D.BenchDataset, rows: dict, scoring: dict, reps_raw: int, reps_mn: int,
                     n_boot: int, log, model=None, contexts: dict | None = None) -> dict:
    """Every method on every replicate it can see; metrics on the 'same cases' and 'all' sets."""
    names = list(ds.foreground)
    values = [ds.foreground[n] for n in names]
    truth = {r: ds.replicate(r) for r in range(reps_raw)}
    kinds = sorted({k for r in truth for k in truth[r][2] if k})
    sets = {"same_cases": list(range(reps_mn)), "all_replicates": list(range(reps_raw))}
    out = {"kinds": kinds, "replicate_sets": sets, "methods": {}, "scores": {}}
    contexts = {} if contexts is None else contexts  # one per replicate: methods share what they compute
    for name, info in METHODS.items():
        available = reps_mn if "masknorm" in info.needs else reps_raw
        if available == 0:
            continue
        started = time.perf_counter()
        scores = {}
        for r in range(available):
            ids, y, _ = truth[r]
            ctx = contexts.setdefault(r, Context(ds.name, ids, names, values, rows, scoring, truth=None, seed=r,
                                                      model=model))
            scores[r] = np.asarray(info.fn(ctx), dtype=np.float64)
            if scores[r].shape != (len(ids),):
                raise ValueError(f"method {name} returned shape {scores[r].shape} for {len(ids)} cases")
        entry = {"label": info.label, "group": info.group, "needs": list(info.needs), "replicates": available,
                 "seconds": round(time.perf_counter() - started, 2)}
        for set_name, reps in sets.items():
            reps = [r for r in reps if r < available]
            if len(reps) < len(sets[set_name]):
                continue
            summary = {}
            for kind in [None] + kinds:
                groups = _groups(scores, truth, reps, kind)
                summary[kind or "all"] = (M.random_baseline(groups) if name == "random"
                                          else M.summarise(groups, n_boot=n_boot if kind is None else max(200, n_boot // 5)))
            entry[set_name] = summary
        out["methods"][name] = entry
        out["scores"][name] = {str(r): [None if not math.isfinite(v) else round(float(v), 6) for v in s]
                               for r, s in scores.items()}
    out["learned_timing"] = learned_timing(contexts)
    out["cases"] = {str(r): {"ids": truth[r][0], "corrupted": truth[r][1].tolist(), "kinds": truth[r][2]}
                    for r in truth}
    log(f"[eval] {ds.name}: {len(out['methods'])} methods")
    return out


def learned_timing(contexts: dict[int, Context]) -> dict:
    """Seconds of the learned label-quality pass per replicate vs the foundation model's seconds
    for the same cases (from each case's cached maps): the learned scorer's extra cost."""
    out = {}
    for r, ctx in contexts.items():
        if "learned_seconds" not in ctx._memo:
            continue
        forward = 0.0
        for case_id in ctx.case_ids:
            with np.load(ctx.datasets["raw"].state_dir / "cache" / "maps" / f"{case_id}.npz") as npz:
                forward += float(json.loads(str(npz["__meta__"])).get("forward_seconds", 0.0))
        out[str(r)] = {"cases": len(ctx.case_ids), "learned_seconds": round(ctx._memo["learned_seconds"], 2),
                       "model_seconds": round(forward, 2),
                       "ratio": round(ctx._memo["learned_seconds"] / forward, 3) if forward else None}
    return out


def save_example_maps(ds: D.BenchDataset, contexts: dict[int, Context], out: Path) -> None:
    """Keep the app's label-issue maps of the cases the examples figure shows (float16 ``.npy``)."""
    records = [rec for rep in ds.replicates for rec in rep]
    for rec in example_records(records):
        replicate = next(r for r, rep in enumerate(ds.replicates) if rec in rep)
        if replicate not in contexts:
            continue
        path = example_maps_path(out, ds.name, rec["variant"])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.asarray(HEATMAPS["learned_issue"].fn(contexts[replicate], rec["variant"]), np.float16))


def evaluate_heatmaps(ds: D.BenchDataset, rows: dict, scoring: dict, reps_raw: int, model=None,
                      contexts: dict | None = None) -> dict:
    """Pixel AUROC of each heatmap vs the injected per-class error mask, on the corrupted cases."""
    names = list(ds.foreground)
    values = [ds.foreground[n] for n in names]
    result = {}
    for hname, info in HEATMAPS.items():
        entries = []
        for r in range(reps_raw):
            ids, y, kinds = ds.replicate(r)
            ctx = (contexts or {}).get(r) or Context(ds.name, ids, names, values, rows, scoring, seed=r, model=model)
            for case_id, corrupted, kind in zip(ids, y, kinds):
                if not corrupted:
                    continue
                heat = np.asarray(info.fn(ctx, case_id))
                errors = ds.error_masks(case_id)
                for c, name in enumerate(names):
                    err = errors[c].reshape(heat[c].shape)
                    if err.any() and (~err).any():
                        entries.append({"case": case_id, "kind": kind, "class": name,
                                        "error_pixels": int(err.sum()), "auroc": M.pixel_auroc(heat[c], err)})
        aurocs = np.array([e["auroc"] for e in entries], dtype=np.float64)
        by_kind = {}
        for kind in sorted({e["kind"] for e in entries}):
            a = np.array([e["auroc"] for e in entries if e["kind"] == kind])
            by_kind[kind] = {"mean": float(np.nanmean(a)), "n": int(len(a))}
        result[hname] = {"label": info.label, "n": int(len(aurocs)),
                         "mean": float(np.nanmean(aurocs)) if len(aurocs) else math.nan,
                         "median": float(np.nanmedian(aurocs)) if len(aurocs) else math.nan,
                         "fraction_ge_0.8": float(np.mean(aurocs >= 0.8)) if len(aurocs) else math.nan,
                         "by_kind": by_kind, "entries": entries}
    return result


def run(quick: bool, model_spec: str, out: Path, device: str = "cpu", datasets: list[str] | None = None,
        replicates: int | None = None, masknorm_replicates: int | None = None, n_boot: int | None = None,
        plots: bool = True, bench_scoring_json: Path | None = None, log=print) -> dict:
    """The whole benchmark; returns (and writes to ``out/results.json``) the results."""
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    preset = D.PRESETS["quick" if quick else "full"]
    names = datasets or list(preset)
    reps_mn_default = 1
    n_boot = n_boot if n_boot is not None else (200 if quick else 1000)
    results = {"command": {"quick": quick, "model": model_spec, "device": device, "datasets": names},
               "machine": machine_info(device), "methods": method_table(),
               "heatmap_methods": {k: {"label": v.label, "description": v.description} for k, v in HEATMAPS.items()},
               "datasets": {}, "timing": {}, "skipped_datasets": {}}
    torch.manual_seed(0)
    load_started = time.perf_counter()
    model = load_model(model_spec, device)
    results["timing"]["model_load_seconds"] = round(time.perf_counter() - load_started, 2)
    for name in names:
        why = D.available(name)
        if why:
            log(f"[skip] {name}: {why}")
            results["skipped_datasets"][name] = why
            continue
        config = D.PRESETS["quick" if quick else "full"][name]
        if replicates is not None:
            config = D.DatasetConfig(config.cases, replicates, config.frac, config.seed, dict(config.extra))
        t0 = time.perf_counter()
        ds = D.build_dataset(name, config, out, log=log)
        t_data = time.perf_counter() - t0
        reps_raw = len(ds.replicates)
        reps_mn = min(reps_raw, masknorm_replicates if masknorm_replicates is not None else reps_mn_default)
        rows, timing, scoring = {}, {"data_seconds": round(t_data, 2)}, {}
        for mode in MODES:
            n = reps_raw if mode == "raw" else reps_mn
            if n == 0:
                continue
            # raw: every clean case and every variant; masknorm (new encodes for each label):
            # only the cases of its replicates.
            ids = ds.all_ids(n) if mode == "raw" else list(dict.fromkeys(
                c for r in range(n) for c in ds.replicate(r)[0]))
            mode_rows, mode_timing = score_runs(ds, mode, ids, model, device, out, log)
            rows.update(mode_rows)
            timing.update(mode_timing)
            scoring[mode] = open_dataset(D.scoring_root(ds, mode, out))
        t0 = time.perf_counter()
        contexts: dict[int, Context] = {}
        evaluation = evaluate_dataset(ds, rows, scoring, reps_raw, reps_mn, n_boot, log, model, contexts)
        evaluation["heatmaps"] = evaluate_heatmaps(ds, rows, scoring, reps_raw, model, contexts)
        save_example_maps(ds, contexts, out)
        timing["evaluation_seconds"] = round(time.perf_counter() - t0, 2)
        if name in DF.DATASETS:
            t0 = time.perf_counter()
            evaluation["difficulty"] = DF.evaluate(ds, rows, out, DF.PRESETS["quick" if quick else "full"],
                                                   device, n_boot, log)
            timing["difficulty_seconds"] = round(time.perf_counter() - t0, 2)
        evaluation["info"] = {"cases": len(ds.cases), "replicates": reps_raw, "masknorm_replicates": reps_mn,
                              "corrupted_per_replicate": [len(r) for r in ds.replicates],
                              "classes": ds.foreground, "source": ds.config.get("source"),
                              "config": ds.config.get("config"),
                              "corruptions": [rec for rep in ds.replicates for rec in rep]}
        results["datasets"][name] = evaluation
        results["timing"][name] = timing
    if bench_scoring_json is not None and Path(bench_scoring_json).is_file():
        results["bench_scoring"] = json.loads(Path(bench_scoring_json).read_text())
    results["timing"]["total_seconds"] = round(time.perf_counter() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default))
    if plots:
        from . import plots as P

        results["plots"] = P.make_all(results, out)
    report = summary_markdown(results)
    (out / "summary.md").write_text(report)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default))
    log(report)
    log(f"[done] {results['timing']['total_seconds']:.0f} s; results in {out / 'results.json'}")
    return results


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value))


def _fmt(x, digits=2) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def summary_markdown(results: dict) -> str:
    """Markdown tables of the headline numbers."""
    lines = []
    names = list(results["datasets"])
    for set_name, title in (("same_cases", "All methods on the same cases (replicates scored with both inputs)"),
                            ("all_replicates", "Raw-input methods on all replicates")):
        lines += [f"### {title}", "",
                  "AUROC [95% bootstrap CI] / AUPRC / precision@10% for 'this case was corrupted'.", ""]
        header = "| method | " + " | ".join(names) + " | mean AUROC |"
        lines += [header, "|" + "---|" * (len(names) + 2)]
        for method in results["methods"]:
            cells, aurocs = [], []
            for ds in names:
                entry = results["datasets"][ds]["methods"].get(method["name"], {}).get(set_name)
                if not entry:
                    cells.append("—")
                    continue
                a = entry["all"]
                aurocs.append(a["auroc"])
                ci = a.get("auroc_ci") or [math.nan, math.nan]
                cells.append(f"{_fmt(a['auroc'])} [{_fmt(ci[0])}–{_fmt(ci[1])}] / {_fmt(a['auprc'])} / {_fmt(a['p_at_10'])}")
            if all(c == "—" for c in cells):
                continue
            mean = _fmt(float(np.mean(aurocs))) if len(aurocs) == len(names) else "—"
            lines.append(f"| {method['label']} (`{method['name']}`) | " + " | ".join(cells) + f" | {mean} |")
        counts = []
        for ds in names:
            entry = results["datasets"][ds]["methods"]["random"].get(set_name)
            counts.append(f"{ds}: {entry['all']['positives']} corrupted, prevalence {entry['all']['prevalence']:.2f}"
                          if entry else f"{ds}: —")
        lines += ["", "Positives: " + "; ".join(counts), ""]
    for ds in names:
        ev = results["datasets"][ds]
        kinds = ev["kinds"]
        lines += [f"### AUROC per error kind — {ds} (all replicates; masknorm methods on their replicates)", "",
                  "| method | " + " | ".join(kinds) + " |", "|" + "---|" * (len(kinds) + 1)]
        for name, entry in ev["methods"].items():
            summary = entry.get("all_replicates") or entry.get("same_cases")
            lines.append(f"| `{name}` | " + " | ".join(_fmt(summary[k]["auroc"]) for k in kinds) + " |")
        pos = (ev["methods"]["random"].get("all_replicates") or ev["methods"]["random"]["same_cases"])
        lines += ["", "corrupted cases per kind: " + ", ".join(f"{k} {pos[k]['positives']}" for k in kinds), ""]
    lines += ["### Heatmaps: pixel AUROC against the injected per-class error mask (corrupted cases)", "",
              "| dataset | heatmap | mean | median | ≥ 0.8 | n (case, class) |", "|---|---|---|---|---|---|"]
    for ds in names:
        for hname, h in results["datasets"][ds]["heatmaps"].items():
            lines.append(f"| {ds} | {h['label']} | {_fmt(h['mean'])} | {_fmt(h['median'])} | "
                         f"{_fmt(h['fraction_ge_0.8'])} | {h['n']} |")
    lines += ["", "### Timing", "", "| dataset | run | cases (cached) | wall s | model s |", "|---|---|---|---|---|"]
    for ds in names:
        for run, t in results["timing"].get(ds, {}).items():
            if isinstance(t, dict):
                lines.append(f"| {ds} | {run} | {t['cases']} ({t['cached_cases']}) | {t['wall_seconds']} | "
                             f"{t['forward_seconds']} |")
    lines += ["", "### Extra cost of the learned label quality (per replicate)", "",
              "| dataset | cases | learned s (mean) | foundation-model s for those cases (mean) | ratio (mean, max) |",
              "|---|---|---|---|---|"]
    for ds in names:
        timing = results["datasets"][ds].get("learned_timing") or {}
        if timing:
            ratios = [t["ratio"] for t in timing.values() if t["ratio"] is not None]
            lines.append(f"| {ds} | {next(iter(timing.values()))['cases']} | "
                         f"{np.mean([t['learned_seconds'] for t in timing.values()]):.1f} | "
                         f"{np.mean([t['model_seconds'] for t in timing.values()]):.1f} | "
                         f"{np.mean(ratios):.3f}, {np.max(ratios):.3f} |")
    lines += difficulty_markdown(results)
    lines.append(f"\nTotal: {results['timing'].get('total_seconds', 0):.0f} s")
    return "\n".join(lines) + "\n"


def difficulty_markdown(results: dict) -> list[str]:
    """The difficulty table (paper's Table 4 on our data): correlation of each score with 1 − Dice."""
    names = [ds for ds in results["datasets"] if "difficulty" in results["datasets"][ds]]
    if not names:
        return []
    lines = ["", "### Difficulty: correlation with the cross-validated task model's per-case error (1 − Dice)", "",
             "Pearson / Spearman [95 % bootstrap CI of Spearman] over the clean cases; positive = the score "
             "rises where the trained model does worse.", "",
             "| score | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for score in DF.SCORES:
        cells = []
        for ds in names:
            c = results["datasets"][ds]["difficulty"]["correlations"][score]
            ci = c.get("spearman_ci") or [math.nan, math.nan]
            cells.append(f"{_fmt(c.get('pearson'))} / {_fmt(c.get('spearman'))} [{_fmt(ci[0])}–{_fmt(ci[1])}]")
        label = results["datasets"][names[0]]["difficulty"]["correlations"][score]["label"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| dataset | clean cases | folds | epochs | mean Dice (min–max) | per-class AUV vs per-class error, "
              "Spearman | seconds |", "|---|---|---|---|---|---|---|"]
    for ds in names:
        d = results["datasets"][ds]["difficulty"]
        per_class = ", ".join(f"{cls} {_fmt(v.get('spearman'))} (Dice {_fmt(v['mean_dice'])})"
                              for cls, v in d["per_class_auv"].items())
        lines.append(f"| {ds} | {len(d['cases'])} | {d['config']['folds']} | {d['config']['epochs']} | "
                     f"{_fmt(d['mean_dice'], 3)} ({_fmt(d['dice_range'][0])}–{_fmt(d['dice_range'][1])}) | "
                     f"{per_class} | {d['seconds']:.0f} |")
    return lines
