"""Command line: ``napari-aleatoric score | train | demo | history``.

Exit status: 0 success, 2 bad arguments, an unusable dataset / model or an operating-system
fault such as a full disk or a read-only folder (one ``error: <path>: <cause>`` line on stderr),
1 for an internal error (one line, no traceback), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from pathlib import Path

from .data.errors import AleatoricError

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="napari-aleatoric", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score a labelled dataset and write the ranked CSV")
    score.add_argument("dataset", type=Path, help="nnU-Net v2 raw or Decathlon dataset folder")
    _add_scoring_options(score)
    score.add_argument("--out", type=Path, default=None,
                       help="CSV path (default <dataset>/.aleatoric/scores.csv); the summary goes beside it as "
                            "<name>.json. Inside the dataset only .aleatoric/ is allowed")
    score.add_argument("--cache", type=Path, default=None,
                       help="keep the caches in this folder instead of <dataset>/.aleatoric/cache (without --out, "
                            "scores.csv goes there too): score a read-only dataset")
    score.add_argument("--export-maps", type=Path, default=None, metavar="DIR",
                       help="after scoring, write every case's per-class label-issue maps and the foundation "
                            "model's segmentation to DIR on the image's own geometry (<case>_<class>_issue.nii.gz, "
                            "<case>_fm_seg.nii.gz; .tif/.png for TIFF/PNG datasets) to open over the image in 3D "
                            "Slicer or ITK-SNAP; not inside imagesTr/labelsTr")
    spread = score.add_mutually_exclusive_group()
    spread.add_argument("--workers", type=_positive_int, default=None,
                        help="score on a local Dask cluster of N worker processes (one torch thread each)")
    spread.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="score on the Dask cluster of this scheduler (e.g. tcp://host:8786); the dataset and "
                             "its cache must be on a filesystem the workers share")

    demo = commands.add_parser("demo", help="open napari with the review panel on the bundled sample data "
                                            "(headless: score the sample data and print the queue)")
    demo.add_argument("--dataset", default="Dataset001_MNIBrainSlices", help="bundled sample dataset name or a folder")
    demo.add_argument("--headless", action="store_true", help="do not open a window even if a display exists")
    _add_scoring_options(demo)
    _add_train_parser(commands)

    history = commands.add_parser("history", help="print the review status changes of a dataset, oldest first "
                                                  "(who set which status when, and why)")
    history.add_argument("dataset", type=Path, help="the dataset folder")
    history.add_argument("--case", default=None, help="only this case")
    return parser


def _add_scoring_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="litemedsam",
                        help="litemedsam (default, offline), litemedsam:PATH, sam-vit-b:PATH, sam-vit-l:PATH, "
                             "sam-vit-h:PATH, medsam:PATH, or tiny (random, for tests)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if available, else CPU)")
    parser.add_argument("--input", dest="input_mode", choices=["raw", "masknorm"], default="raw",
                        help="image fed to the model: raw, or normalised with intensity statistics inside the mask")
    parser.add_argument("--svd-mode", choices=["D_HW", "H_DW", "W_DH"], default="D_HW",
                        help="matrix layout of volumes for the singular values (default D_HW)")
    parser.add_argument("--energy", choices=["sigma2", "sigma"], default="sigma2",
                        help="singular-value energy: sigma2 (default) or sigma (the published snippet)")
    parser.add_argument("--rank-by", choices=["issue-rank", "label-issue", "contradicted", "worst-region", "auv"],
                        default="issue-rank",
                        help="the queue's order: issue-rank (default; the mean of each case's percentile ranks of "
                             "label-issue and contradicted within the dataset, the measured best over both "
                             "benchmarks), label-issue (the learned label quality, drawn and missed: best where few "
                             "cases are wrong), contradicted (share of the drawing the learned model doubts; "
                             "better where many cases are badly over-drawn), worst-region (pixels of the largest "
                             "contradicted region: the same error ranks the same in a small and a large volume), auv "
                             "(the paper's score: difficulty). Re-running with another choice on a scored dataset only "
                             "re-ranks")
    parser.add_argument("--batch-size", type=_positive_int, default=None,
                        help="slices per foundation-model encoder forward (default 8 on CUDA, 1 on the CPU); "
                             "the scores do not depend on it")


def print_dataset_warnings(dataset, stream=None):
    """Open ``dataset`` (a folder or an opened dataset) and print its warnings (files that were
    ignored, count mismatches ...) as ``warning: ...`` lines; returns the opened dataset."""
    from .data.dataset import Dataset, open_dataset  # noqa: PLC0415

    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    for warning in ds.warnings:
        print(f"warning: {ds.root}: {warning}", file=stream or sys.stderr)
    return ds


def run_scoring(dataset, args, stream=None):
    """Run :func:`score_dataset` with a terminal progress bar; return the finished event.

    With ``args.workers`` or ``args.scheduler`` the cases are scored on a Dask cluster (imported
    only then; see :mod:`napari_aleatoric.pipelines.distributed`)."""
    workers, scheduler = getattr(args, "workers", None), getattr(args, "scheduler", None)
    if workers is None and scheduler is None:
        return _run_scoring(dataset, args, stream)
    try:
        from .pipelines import distributed  # noqa: PLC0415
    except ImportError as error:
        raise AleatoricError(None, f"--workers and --scheduler need Dask's 'distributed' package ({error}); "
                             "install it with: pip install 'napari-aleatoric[distributed]'") from error
    if workers is not None:
        with distributed.local_client(workers, torch_threads=1) as client:
            return _run_scoring(dataset, args, stream, client)
    client = distributed.connect(scheduler)
    try:
        return _run_scoring(dataset, args, stream, client)
    finally:
        client.close()


def _run_scoring(dataset, args, stream=None, client=None):
    from tqdm import tqdm  # noqa: PLC0415

    from .labelquality.assess import LabelQualityProgress  # noqa: PLC0415
    from .pipelines.scoring import CaseScored, CaseSkipped, ScoringFinished, ScoringStarted, score_dataset  # noqa: PLC0415

    stream = stream or sys.stderr
    dataset = print_dataset_warnings(dataset, stream)
    events = score_dataset(dataset, args.model, device=args.device, input_mode=args.input_mode,
                           svd_mode=args.svd_mode, energy=args.energy,
                           rank_by=args.rank_by, out_csv=getattr(args, "out", None), cache_dir=getattr(args, "cache", None),
                           batch_size=getattr(args, "batch_size", None), client=client)
    bar = None
    finished = None
    try:
        for event in events:
            if isinstance(event, ScoringStarted):
                bar = tqdm(total=event.total, unit="case", file=stream, desc="scoring", dynamic_ncols=True)
                for error in event.skipped:
                    bar.update(1)
                    tqdm.write(f"skipped: {error}", file=stream)
            elif isinstance(event, CaseScored):
                bar.set_postfix_str(f"{event.result.case_id}{' (cached)' if event.result.cached else ''}")
                bar.update(1)
            elif isinstance(event, CaseSkipped):
                tqdm.write(f"skipped: {event.error}", file=stream)
                bar.update(1)
            elif isinstance(event, LabelQualityProgress):
                if event.index == 1 and bar is not None:
                    bar.close()
                    bar = tqdm(total=event.total, unit="case" if event.case_id else "fold", file=stream,
                               desc=f"label quality: {event.stage}", dynamic_ncols=True)
                bar.update(1)
            elif isinstance(event, ScoringFinished):
                finished = event
    finally:
        if bar is not None:
            bar.close()
        events.close()
    return finished


def print_queue(finished, limit: int = 10, stream=None) -> None:
    """Print the top of the ranked queue."""
    from .pipelines.table import TOO_LITTLE_DRAWN, TOO_RARE, unjudged_classes, unjudged_explanation  # noqa: PLC0415

    stream = stream or sys.stdout
    rows = finished.table.rows
    print(f"ranked by {finished.table.ranking}", file=stream)
    print(f"{'rank':>4}  {'case':<24} {'label issue':>11} {'contradicted':>12} {'worst structure':>15} "
          f"{'worst outline':>13} {'wrong px':>9} {'worst at':>14} "
          f"{'AUV':>6}  {'flag':<4} {'FM disagreement':>15}", file=stream)

    def number(value, style: str) -> str:
        return "" if not isinstance(value, float) or math.isnan(value) else format(value, style)

    for row in rows[:limit]:
        share, structure = row.get("contradicted", math.nan), row.get("worst_structure", math.nan)
        outline = row.get("worst_outline", math.nan)
        where = ("" if math.isnan(row.get("worst_region_slice", math.nan)) else
                 f"{row['worst_region_slice']:.0f},{row['worst_region_row']:.0f},{row['worst_region_col']:.0f}")
        print(f"{row['rank']:>4}  {row['case_id']:<24} {number(row['label_issue'], '.3f'):>11} "
              f"{number(100 * share, '.1f') + (' %' if math.isfinite(share) else ''):>12} "
              f"{number(100 * structure, '.0f') + (' %' if math.isfinite(structure) else ''):>15} "
              f"{number(100 * outline, '.0f') + (' %' if math.isfinite(outline) else ''):>13} "
              f"{number(row.get('wrong_voxels', math.nan), '.0f'):>9} {where:>14} {row['auv']:6.3f}  "
              f"{'*' if row['flagged'] else '':<4} {number(row['fm_disagreement'], '.3f'):>15}", file=stream)
    print("(worst structure: the most contradicted connected piece of one class, volumes only; worst outline: "
          "the most contradicted 2-px rim of such a piece of at least 100 voxels, where a structure drawn too wide "
          "is wrong; wrong px: pixels "
          "whose annotation the learned label quality contradicts; worst at: slice,row,col of the largest such "
          "region)", file=stream)
    print(f"{len(rows)} cases scored, {sum(r['flagged'] for r in rows)} flagged, {len(finished.skipped)} skipped",
          file=stream)
    print(f"flag (*): {finished.table.flag_rule}", file=stream)
    for row in rows[:limit]:
        if row["flagged"] and row.get("flag_reason"):
            print(f"  * {row['case_id']}: {row['flag_reason']}", file=stream)
    names = [c[len("dice_fm_"):] for c in finished.table.columns if c.startswith("dice_fm_")]
    unjudged = {r["case_id"]: unjudged_classes(r, names) for r in rows}
    for reason in (TOO_RARE, TOO_LITTLE_DRAWN):
        cases = {case_id: [name for name, why in classes.items() if why == reason]
                 for case_id, classes in unjudged.items()}
        cases = {case_id: classes for case_id, classes in cases.items() if classes}
        if cases:
            listed = "; ".join(f"{case_id}: {', '.join(classes)}" for case_id, classes in list(cases.items())[:5])
            print(f"{unjudged_explanation(reason)}. {listed}{' …' if len(cases) > 5 else ''}", file=stream)
    print(f"CSV: {finished.csv_path}\nsummary: {finished.summary_path}", file=stream)


def _command_score(args) -> int:
    dataset = args.dataset
    export_dir = getattr(args, "export_maps", None)
    if export_dir is not None:  # a bad folder is refused before any case is scored
        from .data.dataset import open_dataset  # noqa: PLC0415
        from .pipelines.export_maps import check_export_dir  # noqa: PLC0415

        dataset = open_dataset(args.dataset)
        check_export_dir(dataset, export_dir)
    try:
        finished = run_scoring(dataset, args)
    except OSError as error:
        from .data.oserrors import describe_os_error  # noqa: PLC0415

        hint = ""
        if error.errno in (errno.EACCES, errno.EPERM) and getattr(args, "cache", None) is None:
            hint = "; to score a dataset you cannot write to, add --cache DIR (a writable folder)"
        print(f"error: {describe_os_error(error)}{hint}", file=sys.stderr)
        return EXIT_USAGE
    if finished is None:
        return EXIT_INTERRUPTED
    for error in finished.skipped:
        print(f"skipped: {error}", file=sys.stderr)
    print_queue(finished)
    if not finished.table.rows:
        print(f"error: {args.dataset}: no case could be scored", file=sys.stderr)
        return EXIT_USAGE
    if export_dir is not None:
        export_scored_maps(dataset, finished, export_dir, getattr(args, "cache", None))
    return EXIT_OK


def export_scored_maps(dataset, finished, out_dir: Path, cache_dir: Path | None = None, stream=None):
    """Export the maps of a finished scoring run to ``out_dir`` (see :mod:`.pipelines.export_maps`)
    with a progress bar; print how many files were written and which cases were skipped and why.
    Returns the :class:`~napari_aleatoric.pipelines.export_maps.MapsExportFinished` event."""
    from tqdm import tqdm  # noqa: PLC0415

    from .pipelines.export_maps import (  # noqa: PLC0415
        CaseMapsExported,
        CaseMapsSkipped,
        MapsExportFinished,
        export_maps,
    )
    from .session import ScoringSettings  # noqa: PLC0415

    stream = stream or sys.stderr
    settings = ScoringSettings.read(finished.summary_path)
    if settings is None or not settings.model:
        raise AleatoricError(finished.summary_path, "cannot read the scoring settings to find the cached maps")
    events = export_maps(dataset, out_dir, settings.model, settings.input_mode, cache_dir=cache_dir)
    done, bar = None, None
    try:
        for event in events:
            if isinstance(event, (CaseMapsExported, CaseMapsSkipped)):
                if bar is None:
                    bar = tqdm(total=event.total, unit="case", file=stream, desc="exporting maps", dynamic_ncols=True)
                bar.set_postfix_str(event.case_id)
                bar.update(1)
            elif isinstance(event, MapsExportFinished):
                done = event
    finally:
        if bar is not None:
            bar.close()
        events.close()
    for case_id, reason in done.skipped.items():
        print(f"maps not exported: {case_id}: {reason}", file=stream)
    print(f"maps: {len(done.files)} files written for {len(done.exported)} cases to {done.out_dir}; "
          f"{len(done.skipped)} cases skipped", file=sys.stdout)
    return done


def has_display() -> bool:
    """Whether a window can be opened (X11 / Wayland display, or macOS / Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _resolve_demo_dataset(name: str) -> Path:
    """A dataset folder as given, or a writable working copy of a bundled sample dataset."""
    path = Path(name)
    if path.is_dir():
        return path
    from ._sample import working_copy  # noqa: PLC0415

    return working_copy(name)


def _command_demo(args) -> int:
    dataset = _resolve_demo_dataset(args.dataset)
    if args.headless or not has_display():
        if not args.headless:
            print("No display found (DISPLAY / WAYLAND_DISPLAY unset): running the headless demo instead of napari.",
                  file=sys.stderr)
        finished = run_scoring(dataset, args)
        if finished is None:
            return EXIT_INTERRUPTED
        print_queue(finished)
        return EXIT_OK
    from .gui.launch import open_review_app  # noqa: PLC0415

    open_review_app(dataset, model=args.model, device=args.device)
    return EXIT_OK


# ------------------------------------------------------------------------------------- train

def _add_train_parser(commands) -> None:
    """The ``train`` sub-command. Its setting options are made from
    :func:`~napari_aleatoric.training.settings.setting_specs` (one per :class:`TrainSettings` field:
    name, type, choices, help and the default the help names); every one defaults to ``None`` = the
    run's stored value with ``--resume``, else :class:`TrainSettings`'s default."""
    from .training.settings import STRATEGIES  # noqa: PLC0415

    train = commands.add_parser(
        "train", help="train a segmentation network guided by the label issues (docs/training.md)",
        description="Train a MONAI network on the dataset's current annotations (cases excluded in review are "
                    "left out). By default, on a scored dataset, every pixel's loss is weighted by how much the "
                    "out-of-fold label-quality model (learned on the training cases only) trusts its annotation; "
                    "cases accepted or corrected in review count at full weight. On an unscored dataset it trains "
                    "plainly and says so. --strategy picks another strategy, among them the paper's AUV filtering "
                    "and DUO loss. Writes <dataset>/.aleatoric/models/<run>/.")
    train.add_argument("dataset", type=Path, help="nnU-Net v2 raw or Decathlon dataset folder")
    train.add_argument("--strategy", choices=list(STRATEGIES),
                       help="default (issue-relabel when the dataset is scored, else plain); plain; auv-filter (paper: drop AUV above the 0.9 quantile); duo (paper's loss); "
                            "auv-filter+duo; issue-filter (drop label issue above the 0.8 quantile); issue-weight "
                            "(contradicted pixels weigh less); issue-relabel (contradicted pixels learn the label-quality model's "
                            "classes where it is at least 80 %% sure, else weigh less); issue-filter+relabel. The options below override it.")
    train.add_argument("--out", type=Path, help="run folder (default <dataset>/.aleatoric/models/<name>; "
                                                "with --resume: the run to continue, default the latest)")
    train.add_argument("--resume", action="store_true", help="continue a run from its last checkpoint")
    train.add_argument("--scores", type=Path, help="AUV table (default <dataset>/.aleatoric/scores.csv)")
    settings = train.add_argument_group("training settings (default: the stored run's with --resume)")
    for spec in _train_specs():
        help_text = f"{spec.help} (default {spec.default_text()})".replace("%", "%%")
        if spec.kind == "bool":
            settings.add_argument(spec.option, dest=spec.name, action=argparse.BooleanOptionalAction, default=None,
                                  help=help_text)
        else:
            settings.add_argument(spec.option, dest=spec.name, type=_option_type(spec), default=None,
                                  choices=spec.choices, metavar=None if spec.choices else spec.name.upper(),
                                  help=help_text)


def _train_specs():
    from .training.settings import setting_specs  # noqa: PLC0415

    return setting_specs()


def _option_type(spec):
    """``text → value`` for argparse (its error names the option)."""
    def convert(text: str):
        try:
            return spec.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = spec.kind  # argparse names the type in its message
    return convert


def _train_settings(args):
    """Settings from the command line; with ``--resume``, the stored run's settings updated by them."""
    from dataclasses import replace  # noqa: PLC0415

    from .training.runs import SETTINGS_FILE, latest_run, read_json  # noqa: PLC0415
    from .training.settings import STRATEGIES, TrainSettings  # noqa: PLC0415

    given = {spec.name: getattr(args, spec.name) for spec in _train_specs() if getattr(args, spec.name) is not None}
    if args.strategy is not None:
        given = {**STRATEGIES[args.strategy], **given}
    if not args.resume:
        return TrainSettings(**given), args.out
    run_dir = args.out
    if run_dir is None:
        if not args.dataset.is_dir():
            raise AleatoricError(args.dataset, "dataset folder does not exist")
        run_dir = latest_run(args.dataset.resolve())
        if run_dir is None:
            raise AleatoricError(args.dataset, "no training run to resume (none under .aleatoric/models)")
    stored = TrainSettings.from_dict(read_json(Path(run_dir) / SETTINGS_FILE)["settings"])
    return replace(stored, **given), run_dir


def _command_train(args) -> int:
    from tqdm import tqdm  # noqa: PLC0415

    from .training.label_issues import PreparingLabelIssues  # noqa: PLC0415
    from .training.loop import EpochDone, StepDone, TrainingFinished, TrainingStarted, train  # noqa: PLC0415
    from .training.runs import best_checkpoint, list_runs  # noqa: PLC0415
    from .training.settings import strategy_of  # noqa: PLC0415

    settings, run_dir = _train_settings(args)
    print_dataset_warnings(args.dataset)
    events = train(args.dataset, settings, run_dir=run_dir, resume=args.resume, scores_csv=args.scores)
    bar = None
    started = None
    try:
        for event in events:
            if isinstance(event, PreparingLabelIssues):
                if bar is None:
                    bar = tqdm(total=event.total, unit="case", file=sys.stderr, leave=False, dynamic_ncols=True)
                if bar.total != event.total or bar.desc != f"label issues: {event.stage}":
                    bar.reset(total=event.total)
                    bar.set_description_str(f"label issues: {event.stage}")
                bar.n = event.index
                bar.refresh()
            elif isinstance(event, TrainingStarted):
                if bar is not None:
                    bar.close()
                    bar = None
                started = event
                print(f"run: {event.run_dir}")
                print(f"{event.settings.network}, {event.spatial_dims}D, patch {'x'.join(map(str, event.patch))}, "
                      f"batch {event.batch_size}, device {event.device}; strategy "
                      f"{strategy_of(event.settings) or 'custom'}: "
                      f"{'DUO' if event.settings.duo else 'plain loss'}, "
                      f"{'AUV keep ' + format(event.settings.keep, 'g') if event.settings.filtering else 'no AUV filtering'}")
                if event.label_issues:
                    print(event.label_issues)
                print(f"cases: {len(event.train_cases)} training, {len(event.val_cases)} validation, "
                      f"{len(event.left_out)} left out")
                for case_id, reason in list(event.left_out.items())[:20]:
                    print(f"  left out {case_id}: {reason}")
                if event.resumed:
                    print(f"resuming at epoch {event.start_epoch}, step {event.start_step + 1}")
            elif isinstance(event, StepDone):
                if bar is None:
                    bar = tqdm(total=event.steps_per_epoch, initial=event.step - 1, unit="step", file=sys.stderr,
                               desc=f"epoch {event.epoch}", leave=False, dynamic_ncols=True)
                bar.set_postfix_str(f"loss {event.loss:.4f}")
                bar.update(1)
            elif isinstance(event, EpochDone):
                if bar is not None:
                    bar.close()
                    bar = None
                dice = "  ".join(f"{n} {v:.3f}" for n, v in event.val_dice.items())
                print(f"epoch {event.epoch:>3}/{event.epochs}  loss {event.train_loss:.4f}  val Dice {dice}  "
                      f"mean {event.val_mean_dice:.3f}{'  *best' if event.best else ''}  {event.epoch_seconds:.1f} s",
                      flush=True)
            elif isinstance(event, TrainingFinished):
                print(f"best epoch {event.best_epoch}: mean validation Dice {event.best_dice:.3f}")
                previous = _previous_run(list_runs(args.dataset), event.run_dir, started)
                if previous is not None:
                    print(f"the previous run on the same validation cases, {previous.name}, reached "
                          f"{previous.best_dice:.3f}: {100 * (event.best_dice - previous.best_dice):+.1f} Dice points")
                print(f"model: {event.model_path}\nmetrics: {event.metrics_path}")
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        events.close()
        where = f" --out {started.run_dir}" if started is not None else ""
        if started is not None:
            best = best_checkpoint(started.run_dir)
            print(f"best model so far: {best}" if best is not None else
                  "no model yet: no epoch had finished (the best model is kept once an epoch ends)", file=sys.stderr)
        print(f"interrupted; continue with: napari-aleatoric train {args.dataset} --resume{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
        events.close()
    return EXIT_OK


def _previous_run(runs, run_dir: Path, started):
    """The newest other finished run validated on the same cases as ``started`` (for "how much better")."""
    from .training.runs import CASES_FILE, read_json  # noqa: PLC0415
    from .data.errors import ModelError  # noqa: PLC0415

    if started is None:
        return None
    for info in runs:
        if info.path.resolve() == Path(run_dir).resolve() or info.best_dice is None:
            continue
        try:
            if read_json(info.path / CASES_FILE).get("val") == started.val_cases:
                return info
        except ModelError:
            continue
    return None


def _command_history(args: argparse.Namespace) -> int:
    """Print the status log of the dataset's review store (never creates a store)."""
    from .data.state_layout import review_store, state_dir  # noqa: PLC0415
    from .review.store import ReviewStore  # noqa: PLC0415

    path = review_store(state_dir(args.dataset))
    if not path.is_file():
        if not Path(args.dataset).is_dir():
            raise AleatoricError(args.dataset, "no such dataset folder")
        print(f"no review yet: {path} does not exist")
        return EXIT_OK
    with ReviewStore(path) as store:
        changes = store.status_history(args.case)
    if not changes:
        print("no status changes" + (f" of case {args.case}" if args.case else ""))
    for change in changes:
        before = change.old_status if change.old_status is not None else "(before the log)"
        why = f"  ({change.reason})" if change.reason else ""
        print(f"{change.changed_at}  {change.case_id}  {before} -> {change.new_status}  "
              f"by {change.changed_by or 'unknown'}{why}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``napari-aleatoric`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "score":
            return _command_score(args)
        if args.command == "demo":
            return _command_demo(args)
        if args.command == "train":
            return _command_train(args)
        if args.command == "history":
            return _command_history(args)
    except AleatoricError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # disk full, permission denied, read-only file system, a folder for a file ...
        from .data.oserrors import describe_os_error  # noqa: PLC0415

        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("error: not enough memory; score fewer or smaller cases (tile or downsample huge images)",
              file=sys.stderr)
        return EXIT_USAGE
    except RecursionError:
        print("error: the input is nested too deeply to be read (a damaged or hostile file?)", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; finished cases are cached and the next run resumes", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - a bug: one line, never a traceback for the user
        print(f"error: internal error (please report it with the command you ran): {type(error).__name__}: "
              f"{error}", file=sys.stderr)
        return EXIT_INTERNAL
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
