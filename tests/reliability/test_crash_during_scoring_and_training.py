"""SIGKILL at random moments of scoring and training runs: what a killed run leaves is either
complete (and the next run uses it) or ignored as incomplete, never read as valid; after all the
kills, resuming ends with exactly the scores and weights of an uninterrupted run."""

from __future__ import annotations

import os
import random
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fork_server import ForkServer
from helpers import make_tiny_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_crash_server import TRAIN_SETTINGS

from conftest import MNI, copy_sample
from napari_aleatoric.data.arraycache import ArrayCache
from napari_aleatoric.data.errors import ModelError
from napari_aleatoric.pipelines.scoring import CaseScored, score_dataset
from napari_aleatoric.pipelines.table import read_scores
from napari_aleatoric.training import list_runs, train
from napari_aleatoric.training.runs import latest_run, load_checkpoint

SCORING_KILLS = int(os.environ.get("RELIABILITY_SCORING_KILLS", "10"))
TRAINING_KILLS = int(os.environ.get("RELIABILITY_TRAINING_KILLS", "8"))

pytestmark = pytest.mark.usefixtures("one_thread")


class CrashServer(ForkServer):
    """The fork server of ``run_crash_server.py`` in a fresh interpreter (one per module)."""

    def __init__(self):
        super().__init__("run_crash_server.py")

    def run_and_kill(self, job: str, dataset: Path, delay: float) -> tuple[str, float]:
        outcome, value = self.ask(job, dataset, f"{delay:.6f}")
        return outcome, float(value)


@pytest.fixture(scope="module")
def server():
    crash_server = CrashServer()
    yield crash_server
    crash_server.close()


def seed_from_env() -> int:
    return int(os.environ.get("RELIABILITY_SEED", int.from_bytes(os.urandom(4), "little")))


def score_all(dataset: Path) -> list:
    return list(score_dataset(dataset, "tiny", device="cpu"))


def check_cache_entries(dataset: Path, msg: str) -> int:
    """Every entry a reader can find is complete; temporaries are dot-files no reader opens."""
    complete = 0
    for path in (dataset / ".aleatoric" / "cache").rglob("*.npz"):
        if path.name.startswith("."):
            continue  # an interrupted atomic write's temporary: never looked up
        with np.load(path, allow_pickle=False) as npz:  # raises on a truncated or damaged file
            assert "__key__" in npz.files, f"{msg}: {path.name} has no validity key"
            for name in npz.files:
                npz[name]
        complete += 1
    scores = dataset / ".aleatoric" / "scores.csv"
    if scores.exists():
        read_scores(scores)
    return complete


def test_killed_scoring_runs_resume_to_the_uninterrupted_scores(server, tmp_path):
    seed = seed_from_env()
    rng = random.Random(seed)
    reference = copy_sample(MNI, tmp_path / "reference")
    started = time.perf_counter()
    score_all(reference)
    full = time.perf_counter() - started
    dataset = copy_sample(MNI, tmp_path / "killed")
    killed, outcomes = 0, []
    while killed < SCORING_KILLS and len(outcomes) < 3 * SCORING_KILLS:
        delay = rng.uniform(0.0, full)
        outcome, _ = server.run_and_kill("score", dataset, delay)
        assert outcome != "failed", f"seed={seed}: a scoring run failed instead of resuming"
        killed += outcome == "killed"
        entries = check_cache_entries(dataset, f"seed={seed} kill {len(outcomes)} after {delay:.3f} s")
        outcomes.append((outcome, entries))
        if outcome == "finished":
            shutil.rmtree(dataset / ".aleatoric")  # start over so that the next kills land mid-run
    final = [e for e in score_all(dataset) if isinstance(e, CaseScored)]
    assert (dataset / ".aleatoric" / "scores.csv").read_bytes() == \
        (reference / ".aleatoric" / "scores.csv").read_bytes()
    print(f"\ncrash-during-scoring: seed={seed} runs={len(outcomes)} killed={killed}; cache entries after each "
          f"kill {[n for _, n in outcomes]}; final run reused {sum(e.result.cached for e in final)}/{len(final)}")
    assert killed >= SCORING_KILLS
    assert any(0 < n for _, n in outcomes), "no kill landed after a case was cached; nothing was resumed"


def check_run_files(dataset: Path, msg: str) -> None:
    for run in (dataset / ".aleatoric" / "models").glob("*"):
        for name in ("last.pt", "best.pt"):
            if (run / name).exists():
                load_checkpoint(run / name)  # complete: loads as a checkpoint
        # an interrupted atomic write leaves a dot-file temporary (complete or not): nothing looks it up
        for path in run.glob("*.pt"):
            assert path.name in ("last.pt", "best.pt") or (path.name.startswith(".") and ".partial" in path.name), \
                f"{msg}: {path.name}"
    list_runs(dataset)  # lists the runs without tripping over what a kill left


def test_killed_training_runs_resume_to_the_uninterrupted_weights(server, tmp_path):
    seed = seed_from_env()
    rng = random.Random(seed)
    reference = make_tiny_dataset(tmp_path / "reference" / "Dataset900_Tiny")
    started = time.perf_counter()
    list(train(reference, TRAIN_SETTINGS))
    full = time.perf_counter() - started
    dataset = make_tiny_dataset(tmp_path / "killed" / "Dataset900_Tiny")

    killed, outcomes = 0, []
    while killed < TRAINING_KILLS and len(outcomes) < 3 * TRAINING_KILLS:
        run = latest_run(dataset)
        if run is not None and load_checkpoint(run / "last.pt")["epoch"] == TRAIN_SETTINGS.epochs:
            shutil.rmtree(dataset / ".aleatoric")  # finished: start over so that the next kills land mid-run
        delay = rng.uniform(0.0, 1.1 * full)
        outcome, _ = server.run_and_kill("train", dataset, delay)
        assert outcome != "failed", f"seed={seed}: a training run failed instead of resuming"
        killed += outcome == "killed"
        check_run_files(dataset, f"seed={seed} kill {len(outcomes)} after {delay:.3f} s")
        position = load_checkpoint(latest_run(dataset) / "last.pt") if latest_run(dataset) else None
        outcomes.append((outcome, None if position is None else (position["epoch"], position["step"])))
    run = latest_run(dataset)
    if run is None or load_checkpoint(run / "last.pt")["epoch"] < TRAIN_SETTINGS.epochs:
        assert server.run_and_kill("train", dataset, 600.0)[0] == "finished"  # resume (or restart) to the end
        run = latest_run(dataset)
    assert load_checkpoint(run / "last.pt")["epoch"] == TRAIN_SETTINGS.epochs
    resumed = load_checkpoint(run / "last.pt")["model"]
    uninterrupted = load_checkpoint(reference / ".aleatoric" / "models" / "killed" / "last.pt")["model"]
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted), f"seed={seed}"
    print(f"\ncrash-during-training: seed={seed} runs={len(outcomes)} killed={killed}; position after each "
          f"(epoch, step): {[p for _, p in outcomes]}")
    assert killed >= TRAINING_KILLS


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 0.999))
def test_a_truncated_cache_entry_is_never_valid(tmp_path, cut):
    cache = ArrayCache(tmp_path / "cache")
    arrays = {"probabilities": np.linspace(0, 1, 600, dtype=np.float32).reshape(2, 3, 10, 10)}
    path = cache.save("case", "key", arrays, {"names": ["a", "b"]})
    data = path.read_bytes()
    path.write_bytes(data[: int(cut * len(data))])
    assert cache.load("case", "key") is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 0.999))
def test_a_truncated_checkpoint_is_never_valid(tmp_path, cut):
    path = tmp_path / "last.pt"
    torch.save({"format": "napari-aleatoric-train/1", "model": {"w": torch.arange(500.0)}, "epoch": 1}, path)
    data = path.read_bytes()
    path.write_bytes(data[: int(cut * len(data))])
    with pytest.raises(ModelError, match="last.pt"):
        load_checkpoint(path)


def test_a_cache_entry_holding_a_pickle_is_not_loaded(tmp_path):
    marker = tmp_path / "code-ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    cache = ArrayCache(tmp_path / "cache")
    path = cache.save("case", "key", {"probabilities": np.zeros(3, np.float32)})
    with zipfile.ZipFile(path, "a") as archive:  # an object array: loading it would unpickle
        with archive.open("evil.npy", "w") as handle:
            np.lib.format.write_array(handle, np.array([Exploit()], dtype=object), allow_pickle=True)
    assert cache.load("case", "key") is None
    assert not marker.exists()
