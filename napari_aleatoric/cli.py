"""Command line: ``napari-aleatoric score | demo``.

Exit status: 0 success, 2 bad arguments or an unusable dataset / model (reason on stderr),
130 when interrupted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .data.errors import AleatoricError

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _quantile(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="napari-aleatoric", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score a labelled dataset and write the ranked CSV")
    score.add_argument("dataset", type=Path, help="nnU-Net v2 raw or Decathlon dataset folder")
    _add_scoring_options(score)
    score.add_argument("--out", type=Path, default=None, help="CSV path (default <dataset>/.aleatoric/scores.csv)")

    demo = commands.add_parser("demo", help="open napari with the review panel on the bundled sample data "
                                            "(headless: score the sample data and print the queue)")
    demo.add_argument("--dataset", default="Dataset001_MNIBrainSlices", help="bundled sample dataset name or a folder")
    demo.add_argument("--headless", action="store_true", help="do not open a window even if a display exists")
    _add_scoring_options(demo)
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
    parser.add_argument("--flag-quantile", type=_quantile, default=0.9, help="flag cases above this AUV quantile")


def run_scoring(dataset, args, stream=None):
    """Run :func:`score_dataset` with a terminal progress bar; return the finished event."""
    from tqdm import tqdm  # noqa: PLC0415

    from .pipelines.scoring import CaseScored, CaseSkipped, ScoringFinished, ScoringStarted, score_dataset  # noqa: PLC0415

    stream = stream or sys.stderr
    events = score_dataset(dataset, args.model, device=args.device, input_mode=args.input_mode,
                           svd_mode=args.svd_mode, energy=args.energy, flag_quantile=args.flag_quantile,
                           out_csv=getattr(args, "out", None))
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
            elif isinstance(event, ScoringFinished):
                finished = event
    finally:
        if bar is not None:
            bar.close()
        events.close()
    return finished


def print_queue(finished, limit: int = 10, stream=None) -> None:
    """Print the top of the ranked queue."""
    stream = stream or sys.stdout
    rows = finished.table.rows
    print(f"{'rank':>4}  {'case':<24} {'AUV':>6}  {'flag':<4} {'FM disagreement':>15}", file=stream)
    for row in rows[:limit]:
        disagreement = row["fm_disagreement"]
        text = "" if math.isnan(disagreement) else f"{disagreement:.3f}"
        print(f"{row['rank']:>4}  {row['case_id']:<24} {row['auv']:6.3f}  {'*' if row['flagged'] else '':<4} {text:>15}",
              file=stream)
    print(f"{len(rows)} cases scored, {sum(r['flagged'] for r in rows)} flagged, {len(finished.skipped)} skipped",
          file=stream)
    print(f"CSV: {finished.csv_path}\nsummary: {finished.summary_path}", file=stream)


def _command_score(args) -> int:
    finished = run_scoring(args.dataset, args)
    if finished is None:
        return EXIT_INTERRUPTED
    for error in finished.skipped:
        print(f"skipped: {error}", file=sys.stderr)
    print_queue(finished)
    if not finished.table.rows:
        print(f"error: {args.dataset}: no case could be scored", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``napari-aleatoric`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "score":
            return _command_score(args)
        if args.command == "demo":
            return _command_demo(args)
    except AleatoricError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; finished cases are cached and the next run resumes", file=sys.stderr)
        return EXIT_INTERRUPTED
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
