"""Scoring on a Dask cluster (a real LocalCluster of 2 worker processes, tiny model) equals serial scoring.

Compared: ``scores.csv`` byte for byte and every array of every cached map, label-issue map and
embedding. A worker killed with SIGKILL while cases run is replaced and its cases run again; the
scores do not change. Also: the plain path never imports Dask, an unreachable scheduler is exit
status 2 naming the address, and workers running other code are refused.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import device_option
from helpers import cache_arrays
from napari_aleatoric.cli import main
from napari_aleatoric.pipelines import distributed
from napari_aleatoric.pipelines.scoring import CaseScored, ScoringFinished, score_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def client():
    with distributed.local_client(2, torch_threads=1) as dask_client:
        dask_client.wait_for_workers(2, timeout=120)
        yield dask_client


def assert_same_outputs(a: Path, b: Path) -> None:
    assert (a / ".aleatoric" / "scores.csv").read_bytes() == (b / ".aleatoric" / "scores.csv").read_bytes()
    first, second = cache_arrays(a), cache_arrays(b)
    assert set(first) == set(second) and any("maps/" in k for k in first) and any("quality/" in k for k in first)
    for name in first:
        assert np.array_equal(first[name], second[name]), name


def twin(dataset: Path, tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name / dataset.name
    shutil.copytree(dataset, copy)
    return copy


def test_cluster_scores_equal_serial_bit_for_bit(mni_dataset, tmp_path, client):
    on_cluster = twin(mni_dataset, tmp_path, "cluster")
    serial_events = list(score_dataset(mni_dataset, "tiny", device=device_option()))
    cluster_events = list(score_dataset(on_cluster, "tiny", device=device_option(), client=client))
    assert_same_outputs(mni_dataset, on_cluster)
    scored = [e for e in cluster_events if isinstance(e, CaseScored)]
    assert sorted(e.index for e in scored) == list(range(1, 21)) and not any(e.result.cached for e in scored)
    assert isinstance(cluster_events[-1], ScoringFinished)
    assert cluster_events[-1].table.rows == serial_events[-1].table.rows
    # both workers took part, each with its own model
    workers = client.run(lambda: sorted(distributed._PROCESS_MODELS))
    assert len(workers) == 2 and all(models == [("tiny", str(device_option()))] for models in workers.values())


def test_a_worker_killed_mid_run_does_not_change_the_scores(ct_dataset, tmp_path, client):
    """Volumes take long enough that the SIGKILL lands while cases are running on the worker."""
    on_cluster = twin(ct_dataset, tmp_path, "cluster")
    list(score_dataset(ct_dataset, "tiny", device=device_option()))
    pids = client.run(os.getpid)
    events = score_dataset(on_cluster, "tiny", device=device_option(), client=client)
    killed = None
    collected = []
    for event in events:
        collected.append(event)
        if killed is None:
            deadline = time.monotonic() + 30
            while killed is None and time.monotonic() < deadline:
                busy = [w for w, tasks in client.processing().items() if tasks]
                if busy:
                    killed = pids[busy[0]]
                    os.kill(killed, signal.SIGKILL)
                else:
                    time.sleep(0.01)
    assert killed is not None
    finished = collected[-1]
    assert isinstance(finished, ScoringFinished) and not finished.skipped
    assert len([e for e in collected if isinstance(e, CaseScored)]) == 4
    assert_same_outputs(ct_dataset, on_cluster)
    client.wait_for_workers(2, timeout=120)  # the nanny restarted the killed worker
    assert killed not in client.run(os.getpid).values()


def test_closing_the_events_cancels_the_cases_not_yet_finished(mni_dataset, tmp_path, client):
    """What Ctrl+C in the CLI (or a GUI's cancel) does: no case keeps running on the cluster, and the
    next run reuses what finished."""
    events = score_dataset(mni_dataset, "tiny", device=device_option(), client=client)
    done = []
    for event in events:
        if isinstance(event, CaseScored):
            done.append(event.result.case_id)
            if len(done) == 2:
                break
    events.close()
    deadline = time.monotonic() + 30
    while any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(client.processing().values())
    assert not (mni_dataset / ".aleatoric" / "scores.csv").exists()
    again = [e for e in score_dataset(mni_dataset, "tiny", device=device_option()) if isinstance(e, CaseScored)]
    assert set(done) <= {e.result.case_id for e in again if e.result.cached} and len(again) == 20


def _malloc_trim_threshold():
    import os

    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_workers_keep_glibcs_adaptive_malloc(client):
    """Dask's nannies set MALLOC_TRIM_THRESHOLD_, which made the encoder 1.6x slower in a worker
    (docs/performance.md); the local cluster's workers must not have it."""
    assert client.run(_malloc_trim_threshold) and set(client.run(_malloc_trim_threshold).values()) == {None}


def test_a_trim_threshold_left_in_this_process_does_not_reach_new_workers(monkeypatch):
    """Dask's nannies copy their worker environment into the parent's os.environ: a later cluster
    of the same process would inherit the variable without local_client's care."""
    import os

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with distributed.local_client(1, torch_threads=1) as one:
        assert set(one.run(_malloc_trim_threshold).values()) == {None}
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # this process's environment is left as it was


def test_workers_running_other_code_are_refused(mni_dataset, client, monkeypatch):
    monkeypatch.setattr(distributed, "code_fingerprint", lambda: "0.0.1+other")
    with pytest.raises(distributed.VersionMismatchError, match=r"different napari-aleatoric code.*0\.0\.1\+other"):
        list(score_dataset(mni_dataset, "tiny", device=device_option(), client=client))
    assert not (mni_dataset / ".aleatoric" / "scores.csv").exists()


def test_cli_workers_scores_like_serial(tiny, tmp_path):
    on_cluster = twin(tiny, tmp_path, "cli")
    common = ["--model", "tiny", "--device", device_option()]
    assert main(["score", str(tiny), *common]) == 0
    assert main(["score", str(on_cluster), *common, "--workers", "2"]) == 0
    assert (tiny / ".aleatoric" / "scores.csv").read_bytes() == (on_cluster / ".aleatoric" / "scores.csv").read_bytes()


def test_unreachable_scheduler_is_exit_2_naming_the_address(tiny, capsys, monkeypatch):
    import dask

    address = "tcp://127.0.0.1:9"  # the discard port: nothing listens there
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        status = main(["score", str(tiny), "--model", "tiny", "--device", "cpu", "--scheduler", address])
    err = capsys.readouterr().err
    assert status == 2 and address in err and "cannot reach the Dask scheduler" in err and "Traceback" not in err


def test_plain_scoring_never_imports_dask(tiny):
    code = ("import sys; from napari_aleatoric.cli import main; "
            f"status = main(['score', {str(tiny)!r}, '--model', 'tiny', '--device', 'cpu']); "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')); "
            "print('LOADED', loaded); sys.exit(status or (1 if loaded else 0))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                      os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LOADED []" in done.stdout
