"""GUI responsiveness benchmark (review app): event-loop latency while scoring, case switching.

Run under a display (a virtual one is fine):

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_gui.py [--model litemedsam] [--out gui.json]

1. Opens the review panel on a fresh copy of the MNI sample dataset, starts scoring in the
   background and, until it finishes, measures how late a 10 ms QTimer fires (the latency a user
   feels when clicking or scrolling while scoring runs).
2. Times switching to a cached case (from the click to the layers shown) on the 2D sample and on
   256×256×100 volumes (scored with the tiny model first so that their maps are cached).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402


def _percentile(values, q):
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def wait_until(app, condition, timeout_s: float) -> bool:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            return False
        app.processEvents()
        time.sleep(0.001)
    return True


def event_loop_latency(app, panel, timeout_s: float) -> dict:
    from qtpy.QtCore import QTimer  # noqa: PLC0415

    lateness_ms: list[float] = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        lateness_ms.append(max(0.0, (now - last[0]) * 1000.0 - 10.0))
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    assert panel.start_scoring(), "scoring did not start"
    started = time.perf_counter()
    last[0] = started
    timer.start()
    finished = wait_until(app, lambda: panel._score_worker is None, timeout_s)
    timer.stop()
    return {"scoring_finished": finished, "scoring_seconds": time.perf_counter() - started, "ticks": len(lateness_ms),
            "latency_ms_p50": _percentile(lateness_ms, 50), "latency_ms_p95": _percentile(lateness_ms, 95),
            "latency_ms_max": max(lateness_ms) if lateness_ms else float("nan")}


def switch_times(app, panel, case_ids: list[str], rounds: int) -> dict:
    seconds = []
    for _ in range(rounds):
        for case_id in case_ids:
            started = time.perf_counter()
            panel.select_case(case_id)
            ok = wait_until(app, lambda: panel.current is not None and panel.current.case_id == case_id
                            and panel._loading is None, 60)
            app.processEvents()
            if ok:
                seconds.append(time.perf_counter() - started)
    return {"switches": len(seconds), "seconds_median": statistics.median(seconds) if seconds else float("nan"),
            "seconds_p95": _percentile(seconds, 95), "seconds_max": max(seconds) if seconds else float("nan")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--volume-depth", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch  # noqa: F401, PLC0415  (before napari's GL stack; see gui/_compat.py)
    import napari  # noqa: PLC0415
    from synthetic import make_3d_dataset  # noqa: PLC0415

    from napari_aleatoric.gui.review_panel import ReviewPanel  # noqa: PLC0415
    from napari_aleatoric.pipelines.scoring import score_dataset  # noqa: PLC0415
    from napari_aleatoric.sample_data import dataset_path  # noqa: PLC0415

    results = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine()},
               "model": args.model}
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
        wait_until(app, lambda: True, 1)
        results["latency_while_scoring"] = event_loop_latency(app, panel, timeout_s=1800)
        ids = [row["case_id"] for row in panel.table.rows[:6]]
        switch_times(app, panel, ids[:1], 1)  # first display creates the layers
        results["switch_2d_233x197"] = switch_times(app, panel, ids, rounds=2)
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
