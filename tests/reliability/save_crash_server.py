"""Fork server for the crash-during-save test (run as a script, never imported by pytest).

It imports the saving code once, then for every line ``<root> <label> <case_id> <trial> <delay_s>``
read on stdin it forks a child that prepares (opens the review store, reads the label file), says
"ready" through a pipe and calls :func:`save_correction` once; the server waits ``delay_s`` seconds
after "ready" and kills the child with SIGKILL (unless it already finished). It answers one line:
``killed <seconds the save ran>`` or ``finished <seconds the save took>``. Forking keeps each of the
hundreds of trials at a few milliseconds instead of a fresh interpreter's second.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from fork_server import finish_or_kill

from napari_aleatoric.data import medio
from napari_aleatoric.review.saving import save_correction
from napari_aleatoric.review.store import ReviewStore


def corrected_labels(labels: np.ndarray, trial: int) -> np.ndarray:
    """The labels a trial saves: the first 24 voxels spell the trial number in binary (unique)."""
    new = labels.copy()
    bits = [(trial >> i) & 1 for i in range(24)]
    new.reshape(-1)[:24] = bits
    return new


def child(root: str, label: str, case_id: str, trial: int, ready_fd: int) -> None:
    store = ReviewStore.for_dataset(root)
    labels, geometry = medio.read_label(label)
    new = corrected_labels(labels, trial)
    os.write(ready_fd, b"r")
    save_correction(root, case_id, label, new, geometry, user="crash-test", model=None, auv_before=None,
                    store=store, note=f"trial {trial}")
    store.close()


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        root, label, case_id, trial, delay = line.split("\t")
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: save once, then leave without running any cleanup of the server
            os.close(read_end)
            code = 0
            try:
                child(root, label, case_id, int(trial), write_end)
            except BaseException as error:  # noqa: BLE001 - reported through the exit status
                print(f"child error: {error!r}", file=sys.stderr, flush=True)
                code = 3
            os._exit(code)
        os.close(write_end)
        os.read(read_end, 1)  # prepared; the save starts now
        started = time.perf_counter()
        os.close(read_end)
        finish_or_kill(pid, started, float(delay), poll_s=0.0002)


if __name__ == "__main__":
    main()
