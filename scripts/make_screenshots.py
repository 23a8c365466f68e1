"""Screenshots of the review panel for the docs: the MNI brain slices and the synthetic CT.

Each bundled sample dataset is copied to a temporary folder (the bundled data stays untouched),
scored with ``--model`` (default ``tiny``: fast, random weights; use ``--model litemedsam`` for the
real foundation model), the top-ranked case is selected, and the whole window is saved.

Run under a display, for example headless::

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/make_screenshots.py --model litemedsam

Writes ``docs/images/review_panel_mri.png`` and ``docs/images/review_panel_ct.png``, and with
``--only training`` ``docs/images/both_panels.png`` (the retraining panel docked beside the review
panel on the queue's top case, as it opens) and ``docs/images/training_panel.png``: the same
after "Show weights" (the issue-relabel strategy's distrust map, shown on the training case
with the highest label issue) and a short run on the MNI slices (UNet width 8, depth 3,
``--epochs`` epochs) and "Predict" on that case. With
``--workdir DIR`` the dataset copies and their cached maps are kept, so a re-run is fast (the
committed images were made with ``--model litemedsam`` on the CPU, about 10 minutes).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHOTS = {"Dataset001_MNIBrainSlices": "review_panel_mri.png", "Dataset002_SyntheticCT": "review_panel_ct.png"}


def wait_until(condition, timeout: float = 900.0) -> None:
    """Run the Qt event loop until ``condition()`` holds."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError("timed out waiting for the review panel")
        app.processEvents()
        time.sleep(0.02)


def settle(seconds: float = 1.0) -> None:
    """Let napari draw."""
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() > end)


def shoot(name: str, out: Path, model: str, device: str | None, size: tuple[int, int],
          workdir: Path | None = None) -> Path:
    from napari_aleatoric.gui.launch import open_review_app
    from napari_aleatoric.sample_data import dataset_path

    keep = workdir is not None
    work = workdir if keep else Path(tempfile.mkdtemp(prefix="aleatoric-shots-"))
    root = work / name
    if not (root / "dataset.json").is_file():
        shutil.copytree(dataset_path(name), root, ignore=shutil.ignore_patterns(".aleatoric"))
    viewer, panel = open_review_app(root, model=model, device=device, score_if_needed=False, run=False)
    try:
        window = panel.window()  # the main window the docked panel sits in (public Qt API)
        window.resize(*size)
        window.show()
        assert panel.start_scoring(), "scoring did not start"
        wait_until(lambda: not panel.is_busy())
        top = panel.top_case()
        panel.select_case(top)
        wait_until(lambda: panel.current is not None and panel.current.case_id == top and not panel.is_busy())
        settle(1.5)
        path = out / SHOTS[name]
        viewer.screenshot(str(path), canvas_only=False)
        print(f"{path} (top case {top}, AUV {panel.current.row['auv']:.3f})")
        return path
    finally:
        panel.shutdown()
        viewer.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def shoot_training(out: Path, model: str, device: str | None, size: tuple[int, int], epochs: int,
                   workdir: Path | None = None) -> Path:
    """The retraining panel after a short run, with the trained model's prediction of the top case."""
    from napari_aleatoric.gui.launch import open_review_app
    from napari_aleatoric.gui.training_panel import TrainingPanel
    from napari_aleatoric.sample_data import dataset_path

    name = "Dataset001_MNIBrainSlices"
    keep = workdir is not None
    work = workdir if keep else Path(tempfile.mkdtemp(prefix="aleatoric-shots-"))
    root = work / name
    if not (root / "dataset.json").is_file():
        shutil.copytree(dataset_path(name), root, ignore=shutil.ignore_patterns(".aleatoric"))
    shutil.rmtree(root / ".aleatoric" / "models", ignore_errors=True)
    viewer, panel = open_review_app(root, model=model, device=device, score_if_needed=False, run=False)
    training = TrainingPanel(viewer)
    try:
        window = panel.window()  # the main window the docked panel sits in (public Qt API)
        window.resize(*size)
        window.show()
        # docked as napari docks a plugin's widget; the panel places itself beside the review panel
        viewer.window.add_dock_widget(training, name="Retraining", area="right")
        if not (root / ".aleatoric" / "scores.csv").is_file():
            assert panel.start_scoring(), "scoring did not start"
            wait_until(lambda: not panel.is_busy())
        training.refresh()
        top = panel.top_case()
        panel.select_case(top)
        wait_until(lambda: panel.current is not None and panel.current.case_id == top and not panel.is_busy())
        settle(1.5)
        both = out / "both_panels.png"
        viewer.screenshot(str(both), canvas_only=False)
        print(f"{both} (window {window.width()}x{window.height()}, canvas {window.centralWidget().width()} px)")
        form = training.form
        form["strategy"].value = "issue-relabel"
        for key, value in {"epochs": epochs, "width": 8, "depth": 3, "device": device or "auto"}.items():
            form[key].value = value
        assert training.preview_weights(), "the weights preview did not start"
        wait_until(lambda: training.weight_plan is not None and not training.is_busy())
        plan = training.weight_plan
        top = max(plan.cases, key=lambda c: plan.cases[c].contradicted)
        panel.select_case(top)
        wait_until(lambda: panel.current is not None and panel.current.case_id == top and not panel.is_busy())
        assert training.show_case_weights(top), "no weights layer"
        assert training.start_training(), "training did not start"
        wait_until(lambda: not training.is_training(), timeout=1800)
        assert training.predict_current(), "prediction did not start"
        wait_until(lambda: not training.is_busy())
        from napari_aleatoric.gui.training_panel import WEIGHTS_LAYER

        for layer in viewer.layers:
            if layer.name.startswith(("uncertainty", "label issue", "FM segmentation", "annotation")):
                layer.visible = False
        viewer.layers.move(viewer.layers.index(WEIGHTS_LAYER), len(viewer.layers))  # the distrust map on top
        training.show_case_weights(top)  # its line in the status
        settle(1.5)
        path = out / "training_panel.png"
        viewer.screenshot(str(path), canvas_only=False)
        print(f"{path} ({training.status.text()})")
        return path
    finally:
        training.shutdown()
        panel.shutdown()
        viewer.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="model specification (default tiny; litemedsam for real)")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: auto)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--only", choices=["mri", "ct", "training"], default=None)
    parser.add_argument("--epochs", type=int, default=12, help="training epochs of the retraining screenshot")
    parser.add_argument("--size", default="1600x1000", help="window size WIDTHxHEIGHT")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the dataset copies (and their cached maps) here for faster re-runs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    names = [n for n, f in SHOTS.items() if args.only is None or args.only in f]
    for name in names:
        shoot(name, args.out, args.model, args.device, size, args.workdir)
    if args.only in (None, "training"):
        shoot_training(args.out, args.model, args.device, size, args.epochs, args.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
