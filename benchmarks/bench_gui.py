"""GUI responsiveness benchmark (review app): event-loop latency while scoring, case switching.

Run under a display (a virtual one is fine):

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_gui.py [--model litemedsam] [--out gui.json]

1. Opens the review panel on a fresh copy of the MNI sample dataset, starts scoring in the
   background and, until it finishes, measures how late a 10 ms QTimer fires (the latency a user
   feels when clicking or scrolling while scoring runs).
2. Times switching to a cached case (from the click until the event loop is idle again, layers
   shown and drawn) on the 2D sample and on 256×256×100 volumes (scored with the tiny model first
   so that their maps are cached), split into phases: ``load`` (files and cached maps read in the
   worker thread), ``show`` (layers updated on the GUI thread) and ``draw`` (the events and the
   repaint that follow).

Waiting runs Qt's own event loop (``QEventLoop.exec``), as napari does, not a Python loop of
``processEvents`` and ``sleep``: such a loop takes the GIL back from the worker thread every
millisecond and so measures itself. The package measured is the checkout this script is in
(or the one on ``PYTHONPATH``, to compare two versions with the same script). The load average
is recorded with every figure: on a shared machine the figures move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parent.parent))  # this checkout, unless PYTHONPATH names another

import numpy as np  # noqa: E402


def _percentile(values, q):
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def load_average() -> float:
    """1-minute load average (``nan`` where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return float("nan")


def run_event_loop(condition, timeout_s: float, poll_ms: int = 5) -> bool:
    """Run Qt's event loop until ``condition()`` holds (checked every ``poll_ms``) or the timeout."""
    from qtpy.QtCore import QEventLoop, QTimer  # noqa: PLC0415

    loop = QEventLoop()
    deadline = time.perf_counter() + timeout_s

    def check():
        if condition() or time.perf_counter() > deadline:
            loop.quit()

    poll = QTimer()
    poll.setInterval(poll_ms)
    poll.timeout.connect(check)
    poll.start()
    if not condition():
        loop.exec()
    poll.stop()
    return condition()


def wait_until(app, condition, timeout_s: float) -> bool:
    """Compatibility name: run the event loop until ``condition()`` holds."""
    return run_event_loop(condition, timeout_s)


def event_loop_latency(app, panel, timeout_s: float) -> dict:
    from qtpy.QtCore import QEventLoop, QTimer  # noqa: PLC0415

    lateness_ms: list[float] = []
    last = [time.perf_counter()]
    loop = QEventLoop()
    deadline = time.perf_counter() + timeout_s

    def tick():
        now = time.perf_counter()
        lateness_ms.append(max(0.0, (now - last[0]) * 1000.0 - 10.0))
        last[0] = now
        if panel._score_worker is None or now > deadline:
            loop.quit()

    timer = QTimer()
    timer.setTimerType(timer.timerType().PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    load_before = load_average()
    assert panel.start_scoring(), "scoring did not start"
    started = time.perf_counter()
    last[0] = started
    timer.start()
    loop.exec()
    timer.stop()
    seconds = time.perf_counter() - started
    return {"scoring_finished": panel._score_worker is None, "scoring_seconds": seconds, "ticks": len(lateness_ms),
            "ticks_if_never_late": int(seconds * 100),
            "ticks_over_50ms_late": sum(v > 50.0 for v in lateness_ms),
            "latency_ms_p50": _percentile(lateness_ms, 50), "latency_ms_p95": _percentile(lateness_ms, 95),
            "latency_ms_max": max(lateness_ms) if lateness_ms else float("nan"),
            "load_average_1min": [load_before, load_average()]}


def switch_times(app, panel, case_ids: list[str], rounds: int) -> dict:
    """Time select_case → layers shown → event loop idle, per phase (see the module docstring)."""
    from qtpy.QtCore import QTimer  # noqa: PLC0415

    phases: dict[str, list[float]] = {"load": [], "show": [], "draw": [], "total": []}
    marks: dict[str, float] = {}
    show_case = panel._show_case

    def timed_show_case(*args, **kwargs):
        marks["loaded"] = time.perf_counter()
        try:
            return show_case(*args, **kwargs)
        finally:
            marks["shown"] = time.perf_counter()
            QTimer.singleShot(0, lambda: marks.setdefault("idle", time.perf_counter()))

    load_before = load_average()
    panel._show_case = timed_show_case
    try:
        for _ in range(rounds):
            for case_id in case_ids:
                if panel.current is not None and panel.current.case_id == case_id:
                    continue  # already shown: no switch
                marks.clear()
                started = time.perf_counter()
                panel.select_case(case_id)
                ok = run_event_loop(lambda: "idle" in marks, 60, poll_ms=1)
                if ok and panel.current is not None and panel.current.case_id == case_id:
                    phases["load"].append(marks["loaded"] - started)
                    phases["show"].append(marks["shown"] - marks["loaded"])
                    phases["draw"].append(marks["idle"] - marks["shown"])
                    phases["total"].append(marks["idle"] - started)
    finally:
        del panel._show_case
    seconds = phases["total"]
    result = {"switches": len(seconds), "seconds_median": statistics.median(seconds) if seconds else float("nan"),
              "seconds_p95": _percentile(seconds, 95), "seconds_max": max(seconds) if seconds else float("nan")}
    for phase in ("load", "show", "draw"):
        result[f"{phase}_seconds_median"] = statistics.median(phases[phase]) if phases[phase] else float("nan")
    result["load_average_1min"] = [load_before, load_average()]
    return result


PARTS = ("latency", "switch2d", "switch3d")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--volume-depth", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="what to measure (default: all)")
    args = parser.parse_args(argv)

    import torch  # noqa: PLC0415  (before napari's GL stack; see gui/_compat.py)
    import napari  # noqa: PLC0415
    from synthetic import make_3d_dataset  # noqa: PLC0415

    import napari_aleatoric  # noqa: PLC0415
    from napari_aleatoric.gui.review_panel import ReviewPanel  # noqa: PLC0415
    from napari_aleatoric.pipelines.scoring import score_dataset  # noqa: PLC0415
    from napari_aleatoric.sample_data import dataset_path  # noqa: PLC0415

    results = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                           "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "load_average_1min_at_start": load_average()},
               "package": str(Path(napari_aleatoric.__file__).parent), "model": args.model}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mni = tmp / "Dataset001_MNIBrainSlices"
        shutil.copytree(dataset_path("Dataset001_MNIBrainSlices"), mni,
                        ignore=shutil.ignore_patterns(".aleatoric", "__pycache__"))
        volumes = make_3d_dataset(tmp / "volumes", args.volume_depth, size=256, cases=2)
        for _ in score_dataset(volumes, "tiny", device=args.device):
            pass
        viewer = napari.Viewer(show=True)
        app = napari.qt.get_qapp()
        panel = ReviewPanel(viewer)
        viewer.window.add_dock_widget(panel, area="right")
        panel.model_edit.setText(args.model)
        assert panel.open_dataset(mni, select=False)
        settle = time.perf_counter() + 1.0
        run_event_loop(lambda: time.perf_counter() > settle, 2)  # the window is shown and drawn
        if "latency" in args.parts:
            results["latency_while_scoring"] = event_loop_latency(app, panel, timeout_s=1800)
        else:
            for _ in score_dataset(mni, "tiny", device=args.device):
                pass
            assert panel.open_dataset(mni, select=False)
        if "switch2d" in args.parts:
            ids = [row["case_id"] for row in panel.table.rows[:6]]
            switch_times(app, panel, ids[:1], 1)  # first display creates the layers
            results["switch_2d_233x197"] = switch_times(app, panel, ids, rounds=2)
        if "switch3d" in args.parts:
            panel.model_edit.setText("tiny")
            assert panel.open_dataset(volumes, select=False)
            vol_ids = [ref.case_id for ref in panel.dataset.cases]
            switch_times(app, panel, vol_ids[:1], 1)
            results[f"switch_3d_{args.volume_depth}x256x256"] = switch_times(app, panel, vol_ids, rounds=3)
        panel.shutdown()
        viewer.close()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
