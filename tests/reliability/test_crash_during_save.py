"""SIGKILL at random moments of a save: the label file is the old or the new version byte for
byte, the review store opens and (after the reconcile run when a case is opened) agrees with the
file, and the first original is still in ``originals/``.

Runs :data:`KILLS` kills spread over three label formats through a fork server
(``save_crash_server.py``), so each trial costs milliseconds. Set ``RELIABILITY_SAVE_KILLS`` to run
more (the count and outcome table are printed with ``-s``).
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from fork_server import ForkServer
from PIL import Image
from save_crash_server import corrected_labels

from napari_aleatoric.data import medio
from napari_aleatoric.data.dataset import open_dataset
from napari_aleatoric.review.saving import original_path, reconcile_case
from napari_aleatoric.review.store import ReviewStore

KILLS = int(os.environ.get("RELIABILITY_SAVE_KILLS", "200"))
FORMATS = (".nii.gz", ".png", ".nii")
CASE = "case_001"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_dataset(root: Path, ending: str) -> Path:
    """A one-case nnU-Net dataset; returns the label file."""
    rng = np.random.default_rng(11)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    if ending == ".png":
        image, label = rng.integers(0, 255, (40, 48)).astype(np.uint8), rng.integers(0, 3, (40, 48)).astype(np.uint8)
        Image.fromarray(image).save(root / "imagesTr" / f"{CASE}_0000.png")
        Image.fromarray(label).save(root / "labelsTr" / f"{CASE}.png")
    else:
        affine = np.diag([0.8, 0.8, 2.5, 1.0])
        nib.save(nib.Nifti1Image(rng.normal(size=(48, 40, 6)).astype(np.float32), affine),
                 str(root / "imagesTr" / f"{CASE}_0000{ending}"))
        nib.save(nib.Nifti1Image(rng.integers(0, 3, (48, 40, 6)).astype(np.uint8), affine),
                 str(root / "labelsTr" / f"{CASE}{ending}"))
    (root / "dataset.json").write_text('{"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1, '
                                       f'"b": 2}}, "numTraining": 1, "file_ending": "{ending}"}}')
    return root / "labelsTr" / f"{CASE}{ending}"


def expected_bytes(label: Path, trial: int, scratch: Path) -> bytes:
    """What the trial's save writes, produced the same way in this process (writers are deterministic)."""
    labels, geometry = medio.read_label(label)
    out = scratch / f"expected{label.name[len(CASE):]}"
    medio.write_label(out, corrected_labels(labels, trial), geometry)
    return out.read_bytes()


class SaveServer(ForkServer):
    def __init__(self):
        super().__init__("save_crash_server.py")

    def trial(self, root: Path, label: Path, trial: int, delay: float) -> tuple[str, float]:
        outcome, value = self.ask(root, label, CASE, trial, f"{delay:.6f}")
        assert outcome in ("killed", "finished"), f"trial {trial}: the save failed ({value}) instead of finishing"
        return outcome, float(value)


def check_after_crash(root: Path, label: Path, first: bytes, old: bytes, new: bytes, msg: str) -> str:
    """Every promise after one kill; returns which state the kill left."""
    now = label.read_bytes()
    assert now in (old, new), f"{msg}: the label file is neither the old nor the new version"
    medio.read_label(label)  # and it decodes
    with ReviewStore.for_dataset(root) as store:  # opens (integrity-checked) after the kill
        kept = original_path(root, label, store)
        if now != first:
            assert kept.read_bytes() == first, f"{msg}: the original annotation is not kept"
        if kept.exists():
            assert kept.read_bytes() == first, f"{msg}: the kept original changed"
        rows = store.revisions(CASE)
        for rev in rows:  # the store never claims a file that is not there
            assert sha(store.revision_file(rev).read_bytes()) == rev.label_sha256, f"{msg}: revision {rev.id}"
        before = store.latest_revision(CASE)
        recovered = reconcile_case(root, CASE, label, store, "reviewer")
        latest = store.latest_revision(CASE)
        if now == first and latest is None:
            state = "old file, nothing recorded"
        else:
            assert latest is not None and latest.label_sha256 == sha(now), f"{msg}: store disagrees with the file"
            assert store.status(CASE) == ("unreviewed" if now == first else "corrected"), msg
            state = ("new file, recorded by reconcile" if recovered is not None
                     else "new file, recorded" if now == new else "old file, store agrees")
            if recovered is not None:
                assert before is None or before.label_sha256 != sha(now), msg
    assert label.read_bytes() == now, f"{msg}: checking changed the label file"
    return state


def test_sigkill_at_random_moments_of_a_save_never_loses_the_annotation(tmp_path):
    seed = int(os.environ.get("RELIABILITY_SEED", int.from_bytes(os.urandom(4), "little")))
    rng = random.Random(seed)
    datasets = {ending: tmp_path / f"Dataset{i}" for i, ending in enumerate(FORMATS)}
    labels = {ending: make_dataset(root, ending) for ending, root in datasets.items()}
    firsts = {ending: label.read_bytes() for ending, label in labels.items()}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    server = SaveServer()
    durations = collections.defaultdict(list)
    outcomes: collections.Counter = collections.Counter()
    started = time.perf_counter()
    try:
        for trial in range(1, 4):  # calibrate: how long a save takes here, per format
            for ending in FORMATS:
                old = labels[ending].read_bytes()
                new = expected_bytes(labels[ending], trial, scratch)
                outcome, seconds = server.trial(datasets[ending], labels[ending], trial, 30.0)
                assert outcome == "finished" and labels[ending].read_bytes() == new != old
                durations[ending].append(seconds)
        trial = 3
        killed = 0
        while killed < KILLS and trial < 4 * KILLS:
            trial += 1
            ending = FORMATS[trial % len(FORMATS)]
            root, label = datasets[ending], labels[ending]
            old = label.read_bytes()
            new = expected_bytes(label, trial, scratch)
            assert new != old
            typical = float(np.median(durations[ending][-7:]))  # a save's duration on this machine now
            delay = rng.uniform(0.0, 1.05 * typical)
            outcome, seconds = server.trial(root, label, trial, delay)
            if outcome == "finished":
                durations[ending].append(seconds)
            killed += outcome == "killed"
            state = check_after_crash(root, label, firsts[ending], old, new,
                                      f"seed={seed} trial={trial} {ending} kill after {delay * 1000:.2f} ms")
            outcomes[(outcome, state)] += 1
    finally:
        server.close()
    total = time.perf_counter() - started

    for ending, root in datasets.items():  # temporaries a kill left never show up as cases...
        assert [ref.case_id for ref in open_dataset(root).cases] == [CASE]
        for path in root.rglob("*"):  # ...and are removed by the next reconcile once stale
            if path.is_file() and path.name.startswith("."):
                os.utime(path, (time.time() - 7200, time.time() - 7200))
        with ReviewStore.for_dataset(root) as store:
            reconcile_case(root, CASE, labels[ending], store, "reviewer")
        leftovers = [p for p in root.rglob("*") if p.is_file() and p.name.startswith(".")
                     and not p.name.startswith("review.sqlite")]
        assert leftovers == [], leftovers

    trials = sum(outcomes.values())
    print(f"\ncrash-during-save: seed={seed} trials={trials} killed={killed} in {total:.1f} s; typical save "
          f"{', '.join(f'{e} {1000 * float(np.median(d)):.1f} ms' for e, d in durations.items())}")
    for (outcome, state), n in sorted(outcomes.items()):
        print(f"  {outcome:8s} {state:34s} {n}")
    assert killed >= KILLS, f"only {killed} of {trials} trials were killed mid-save"
    states = {state for _, state in outcomes}
    assert {"old file, store agrees", "new file, recorded by reconcile"} <= states, outcomes
