"""Corrections saved from two threads (one sharing the review store, one with its own connection)
while a training run and a scoring run go on in background threads: the training run reads only
its snapshot, the store agrees with every label file and no save is lost."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from helpers import make_tiny_dataset

from napari_aleatoric.data import dataset as dataset_module
from napari_aleatoric.data import medio
from napari_aleatoric.pipelines.scoring import CaseSkipped, ScoringFinished, score_dataset
from napari_aleatoric.review.saving import reconcile_case, save_correction
from napari_aleatoric.review.store import ReviewStore
from napari_aleatoric.training import TrainingFinished, TrainingStarted, TrainSettings, train

SETTINGS = TrainSettings(epochs=4, width=4, depth=3, keep=1.0, batch_size=2, lr=3e-3, device="cpu",
                         val_fraction=0.25, name="concurrent")
SAVES_PER_THREAD = 24

pytestmark = pytest.mark.usefixtures("one_thread")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_saves_during_training_and_scoring_are_all_kept(tmp_path, monkeypatch):
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny")
    labels_dir = root / "labelsTr"
    before = {p.stem: p.read_bytes() for p in labels_dir.glob("*.png")}
    reads: list[tuple[str, Path]] = []
    real_read_label = dataset_module.read_label

    def spying_read_label(path):
        reads.append((threading.current_thread().name, Path(path)))
        return real_read_label(path)

    monkeypatch.setattr(dataset_module, "read_label", spying_read_label)
    errors: list[BaseException] = []
    snapshot_taken = threading.Event()
    results: dict[str, list] = {}

    def guarded(name, work):
        def run():
            try:
                results[name] = work()
            except BaseException as error:  # noqa: BLE001 - reported by the test
                errors.append(error)
                snapshot_taken.set()
        return threading.Thread(target=run, name=name)

    def training():
        events = []
        for event in train(root, SETTINGS):
            events.append(event)
            if isinstance(event, TrainingStarted):
                snapshot_taken.set()
        finished_at["training"] = time.perf_counter()
        return events

    shared_store = ReviewStore.for_dataset(root)
    saved: dict[str, list[str]] = defaultdict(list)  # case -> sha of each save, in commit order
    saved_lock = threading.Lock()
    finished_at: dict[str, float] = {}
    save_times: list[float] = []

    def saver(case_ids: list[str], own_store: bool, offset: int):
        store = ReviewStore.for_dataset(root) if own_store else shared_store
        try:
            for i in range(SAVES_PER_THREAD):
                case_id = case_ids[i % len(case_ids)]
                label = labels_dir / f"{case_id}.png"
                current, geometry = medio.read_label(label)
                new = current.copy()
                new[0, :16] = [((offset + i) >> b) & 1 for b in range(16)]  # unique per save
                revision = save_correction(root, case_id, label, new, geometry, user=f"thread{offset}",
                                           model="tiny", auv_before=None, store=store)
                with saved_lock:
                    saved[case_id].append((revision.id, revision.label_sha256))
                    save_times.append(time.perf_counter())
        finally:
            if own_store:
                store.close()

    trainer = guarded("training", training)
    scorer = guarded("scoring", lambda: list(score_dataset(root, "tiny", device="cpu")))
    savers = [guarded("saver-a", lambda: saver(["c00", "c01", "c02", "c03"], False, 0)),
              guarded("saver-b", lambda: saver(["c03", "c04", "c05", "c06", "c07"], True, 1000))]
    trainer.start()
    assert snapshot_taken.wait(120)
    for thread in (scorer, *savers):
        thread.start()
    for thread in (trainer, scorer, *savers):
        thread.join(300)
        assert not thread.is_alive(), f"{thread.name} hangs"
    assert errors == [], errors
    overlapping = sum(t < finished_at["training"] for t in save_times)
    print(f"\nconcurrency: {len(save_times)} saves, {overlapping} committed while training ran")
    assert overlapping > 0, "no save overlapped the training run; the test exercised nothing"

    # training finished on its snapshot: the labels as they were before any save
    assert isinstance(results["training"][-1], TrainingFinished)
    run = root / ".aleatoric" / "models" / "concurrent"
    snapshot = {p.stem: p.read_bytes() for p in (run / "labels").glob("*.png")}
    assert snapshot == before
    training_reads = [path for thread, path in reads if thread == "training"]
    assert training_reads and all(path.parent == run / "labels" for path in training_reads)

    # scoring finished without skipping a case because of a save in progress
    scoring = results["scoring"]
    assert isinstance(scoring[-1], ScoringFinished) and not any(isinstance(e, CaseSkipped) for e in scoring)

    # every save recorded, in order; the store agrees with every file; nothing left unrecorded
    assert sum(len(v) for v in saved.values()) == 2 * SAVES_PER_THREAD
    with ReviewStore.for_dataset(root) as store:
        for case_id, commits in saved.items():
            label = labels_dir / f"{case_id}.png"
            rows = store.revisions(case_id)
            assert [(r.id, r.label_sha256) for r in rows] == sorted(commits), case_id
            assert rows[-1].label_sha256 == sha(label.read_bytes()), f"{case_id}: the last save is not on disk"
            assert all(sha(store.revision_file(r).read_bytes()) == r.label_sha256 for r in rows)
            assert store.status(case_id) == "corrected"
            assert reconcile_case(root, case_id, label, store, "check") is None
            kept = store.state_dir / "originals" / "labelsTr" / label.name
            assert kept.read_bytes() == before[case_id]
    shared_store.close()
