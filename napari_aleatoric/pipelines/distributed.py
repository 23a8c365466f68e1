"""Scoring on a Dask cluster: one task per case, a model per worker process, results as they finish.

Only imported when a Dask client, ``--workers`` or ``--scheduler`` is given, so the plain path never
imports Dask. Each task scores one case exactly as the serial path does (:func:`.scoring._score_one`)
on a worker, writes the case's cache entries (atomic ``.npz`` files) into the dataset's cache
folder, which must be on a filesystem every worker and the client share, and returns the small
per-case result. The label-quality pass then runs on the client after the last case (it reads the
cached maps and embeddings). A worker that dies mid-case (even by SIGKILL) is replaced by its
nanny and the scheduler runs the case again elsewhere; the atomic writes leave no torn entry, so the
scores equal a serial run's.

Workers must run the same napari-aleatoric code as the client (:func:`code_fingerprint`); a cluster
whose workers differ is refused before any case is sent.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dask.config
import torch
from distributed import Client, LocalCluster, as_completed

from .. import __version__
from ..data.dataset import Dataset
from ..data.errors import AleatoricError, CaseError

_PACKAGE = Path(__file__).resolve().parents[1]


class VersionMismatchError(AleatoricError):
    """Workers run different napari-aleatoric code than the client."""


@functools.cache
def code_fingerprint() -> str:
    """``"<version>+<digest>"``: the package version and a SHA-256 over its non-GUI source files, so
    that two processes agree only if they would compute the same scores."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        relative = path.relative_to(_PACKAGE)
        if relative.parts[0] == "gui":
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


def _worker_fingerprint() -> str:
    # sent to the workers by reference: each runs its own installed code_fingerprint
    return code_fingerprint()


def check_worker_versions(client: Client) -> int:
    """Refuse a cluster whose workers run other napari-aleatoric code than this process.

    Returns:
        the number of workers.

    Raises:
        VersionMismatchError: naming the workers, their version and this one; also when the
            workers cannot import napari_aleatoric at all, or the cluster has no worker.
    """
    mine = code_fingerprint()
    try:
        theirs = client.run(_worker_fingerprint)
    except (ImportError, ModuleNotFoundError) as error:
        raise VersionMismatchError(client.scheduler.address, f"the Dask workers cannot import napari_aleatoric "
                                   f"({error}); install napari-aleatoric {__version__} on every worker") from error
    if not theirs:
        raise VersionMismatchError(client.scheduler.address, "the Dask cluster has no workers")
    different = {worker: version for worker, version in theirs.items() if version != mine}
    if different:
        listed = ", ".join(f"{worker} runs {version}" for worker, version in sorted(different.items()))
        raise VersionMismatchError(client.scheduler.address, f"Dask workers run different napari-aleatoric code "
                                   f"than this process ({mine}): {listed}; install the same version everywhere")
    return len(theirs)


def connect(address: str) -> Client:
    """A client of the Dask scheduler at ``address`` (``tcp://host:8786``).

    The connection waits at most Dask's ``distributed.comm.timeouts.connect`` (settable with
    ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``).

    Raises:
        AleatoricError: naming the address when the scheduler cannot be reached.
    """
    timeout = dask.config.get("distributed.comm.timeouts.connect")
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AleatoricError(None, f"{address}: cannot reach the Dask scheduler ({detail})") from error


def scoring_on_scheduler(address: str, dataset, model: str, **options) -> Iterator:
    """:func:`~napari_aleatoric.pipelines.scoring.score_dataset` on the Dask cluster of the
    scheduler at ``address``: connects when the generator starts (in the caller's worker thread,
    so a GUI stays responsive while it waits), closes the client when it ends or is closed.

    Args:
        address: e.g. ``"tcp://host:8786"``.
        dataset, model, options: as for ``score_dataset`` (``model`` a specification string).

    Raises:
        AleatoricError: naming the address when the scheduler cannot be reached.
    """
    from .scoring import score_dataset  # noqa: PLC0415

    client = connect(address)
    try:
        yield from score_dataset(dataset, model, client=client, **options)
    finally:
        client.close()


@contextmanager
def local_client(workers: int, torch_threads: int = 1) -> Iterator[Client]:
    """A :class:`LocalCluster` of ``workers`` processes with one Dask thread each (and, in
    :func:`scored_on_cluster`, ``torch_threads`` torch threads each), closed on exit."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    threads = str(torch_threads)
    # Dask's nannies set MALLOC_TRIM_THRESHOLD_=65536 in every worker; a fixed trim threshold also
    # fixes glibc's mmap threshold, so each large tensor is mmap'ed and unmapped again: the encoder
    # then ran 1.6x slower in a worker than in a plain process (3.6 s against 2.2 s per slice,
    # docs/performance.md). Workers keep glibc's adaptive defaults instead. The nannies copy that
    # environment into this process's os.environ before spawning, so an earlier cluster of this
    # process (or the shell) may have left the variable here; workers must not inherit it either.
    inherited = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        with dask.config.set({TRIM_SETTING: None}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                   env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
    finally:
        if inherited is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = inherited
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


#: the Dask setting that makes nannies fix glibc's malloc trim threshold in their workers
TRIM_SETTING = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


# One model per (specification, device) and worker process, built on the process's first case.
_PROCESS_MODELS: dict[tuple[str, str], object] = {}


def _process_model(spec: str, device: str | None):
    from ..models.lazy import LazyModel  # noqa: PLC0415

    key = (spec, str(device))
    if key not in _PROCESS_MODELS:
        _PROCESS_MODELS[key] = LazyModel(spec, device)
    return _PROCESS_MODELS[key]


def score_case_task(dataset: Dataset, case_id: str, spec: str, device: str | None, options: dict,
                    fingerprint: str, torch_threads: int | None) -> tuple:
    """One case on a worker: ``("scored", CaseResult, seconds)`` or ``("skipped", path, problem, seconds)``.

    Raises:
        VersionMismatchError: the worker runs other code than the client (a worker that joined late).
    """
    if fingerprint != code_fingerprint():
        raise VersionMismatchError(None, f"this Dask worker runs napari-aleatoric {code_fingerprint()}, the client "
                                   f"{fingerprint}; install the same version everywhere")
    if torch_threads:
        torch.set_num_threads(torch_threads)
    from ..models.base import resolve_device  # noqa: PLC0415
    from .scoring import _score_one  # noqa: PLC0415

    from .scoring import resolve_batch_size  # noqa: PLC0415

    started = time.perf_counter()
    compute_device = resolve_device(device)
    options = dict(options, batch_size=resolve_batch_size(options.get("batch_size"), compute_device))
    try:
        result = _score_one(dataset, case_id, _process_model(spec, device), compute_device=compute_device, **options)
    except CaseError as error:
        return ("skipped", str(error.path) if error.path else None, error.problem, time.perf_counter() - started)
    return ("scored", result, time.perf_counter() - started)


def scored_on_cluster(client: Client, ds: Dataset, todo: list[str], spec: str, device: str | None, options: dict,
                      torch_threads: int | None = None) -> Iterator[tuple[str, object, float]]:
    """``(case_id, CaseResult or CaseError, seconds)`` per case of ``todo``, in the order they finish.

    Closing the generator (Ctrl+C, a GUI's cancel) cancels the cases not yet finished.
    """
    check_worker_versions(client)
    fingerprint = code_fingerprint()
    [shared] = client.scatter([ds], broadcast=True, hash=False)
    futures = {client.submit(score_case_task, shared, case_id, spec, device, options, fingerprint, torch_threads,
                             key=f"napari-aleatoric-score-{case_id}-{time.time_ns()}", pure=False): case_id
               for case_id in todo}
    try:
        for future in as_completed(futures, loop=client.loop):
            case_id = futures[future]
            try:
                outcome = future.result()
            except VersionMismatchError:
                raise
            except Exception as error:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
                name = type(error).__name__
                ref = ds.case(case_id)
                yield case_id, CaseError(ref.image_paths[0], f"the Dask workers failed on this case ({name}: "
                                         f"{error}); case skipped"), 0.0
                continue
            if outcome[0] == "scored":
                yield case_id, outcome[1], outcome[2]
            else:
                yield case_id, CaseError(outcome[1], outcome[2]), outcome[3]
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
        client.cancel([shared])
