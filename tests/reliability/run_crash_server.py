"""Fork server for the crash-during-scoring/training tests (run as a script, never imported by pytest).

A fresh interpreter imports torch and the pipelines once (forking pytest itself is not safe: its
torch thread pools and other threads may hold locks the child would wait on forever). For every
stdin line ``<job>\t<dataset>\t<delay_s>`` it forks a one-thread child that runs the job to its end
and kills it with SIGKILL after ``delay_s`` seconds unless it finished. Jobs: ``score``
(score_dataset with the tiny model, resuming from the cache) and ``train`` (resume the newest run
that has a ``last.pt``, else start a new one with ``TRAIN_SETTINGS``). Answers ``killed <s>``,
``finished <s>`` or ``failed <status>``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

import torch
from fork_server import finish_or_kill

from napari_aleatoric.pipelines.scoring import score_dataset
from napari_aleatoric.training import TrainSettings, train
from napari_aleatoric.training.runs import latest_run

TRAIN_SETTINGS = TrainSettings(epochs=5, width=4, depth=3, keep=1.0, batch_size=2, lr=3e-3, device="cpu",
                               val_fraction=0.25, name="killed")


def run_job(job: str, dataset: str) -> None:
    if job == "score":
        for _ in score_dataset(dataset, "tiny", device="cpu"):
            pass
    elif latest_run(dataset) is not None:
        for _ in train(dataset, None, resume=True):
            pass
    else:
        name = TRAIN_SETTINGS.name if not os.path.exists(os.path.join(dataset, ".aleatoric", "models", "killed")) \
            else f"killed-{os.getpid()}"  # the first run was killed before its first last.pt: start another
        for _ in train(dataset, replace(TRAIN_SETTINGS, name=name)):
            pass


def main() -> None:
    torch.set_num_threads(1)
    print("ready", flush=True)
    for line in sys.stdin:
        job, dataset, delay = line.rstrip("\n").split("\t")
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run_job(job, dataset)
            except BaseException as error:  # noqa: BLE001 - reported through the exit status
                print(f"forked {job} failed: {error!r}", file=sys.stderr, flush=True)
                code = 3
            os._exit(code)
        finish_or_kill(pid, started, float(delay), poll_s=0.001)


if __name__ == "__main__":
    main()
