"""Saving corrected label files safely, keeping the original and every revision.

Layout under the dataset's state folder (``store.state_dir``, normally ``<dataset>/.aleatoric``)::

    originals/<label path relative to the dataset root>     first-seen bytes of the label file
    revisions/<case_id>/<UTC timestamp>_<sha8><ending>      one copy per recorded revision
    review.sqlite                                           statuses and revision rows

Crash-safety order of :func:`save_correction` (and :func:`revert`)
------------------------------------------------------------------

1. **Keep the original.** If ``originals/<rel>`` does not exist, the current label file's bytes
   are written to a temporary file beside it, fsynced, and published with ``os.link`` (which
   refuses to overwrite, so an original is never replaced, even by a concurrent process), then
   the folder is fsynced. The label file is untouched so far.
2. **Write the revision copy.** The new labels are encoded with ``medio.write_label`` (original
   format, original geometry) into a hidden ``.pending-...`` file in ``revisions/<case_id>/``,
   hashed (SHA-256 of the file's bytes), renamed to ``<timestamp>_<sha8><ending>`` and the
   folder fsynced. The label file is still untouched.
3. **Publish the label file.** Exactly those bytes replace the label file with
   ``napari_aleatoric.data.atomic.atomic_write_bytes`` (temporary file in the same folder,
   fsync, ``os.replace``, fsync of the folder). This rename is the commit point for the user's
   data: before it the label file is the old version byte for byte, after it the new one.
4. **Record.** One SQLite transaction inserts the revision row and sets the status
   (``'corrected'``). Only now does the store claim the revision, whose copy is already in place.

If the process dies before 3 the label file is the old version and at most an unreferenced copy
or a ``.pending-`` temporary is left under ``.aleatoric/``. If it dies between 3 and 4 the label
file is the new version, its copy is in ``revisions/`` and the original in ``originals/``, but no
row records it. On an error (``OSError``: disk full, permission denied ...) every file this call
created is removed, the label file keeps its previous bytes and an :class:`AleatoricError`
naming the file that failed is raised.

Recovery rule
-------------

**The label file on disk is the truth; the store is its history.** A label file whose SHA-256
matches no revision and differs from the kept original is valid user data (a save interrupted
between steps 3 and 4, or an edit made outside napari-aleatoric) and is never discarded or
rewritten. :func:`reconcile_case` — to be called when a case is opened — compares the label
file's hash with the case's latest revision (or, with none, with the kept original); on a
mismatch it records the file as a new revision (copy first, then the row) with the note
``"recovered: ..."`` and status ``'corrected'`` (``'unreviewed'`` if it equals the original).
It also removes the stale temporaries (older than an hour) a killed save of that case left
(``.pending-*``, ``.keep-*`` and the atomic writer's ``.<name>.<hex>.partial<ending>``, also
``..pending-*.partial<ending>`` when the kill came while the revision copy was being encoded).
"""

from __future__ import annotations

import errno
import getpass
import hashlib
import os
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from napari_aleatoric.data.atomic import (atomic_create, atomic_write_bytes, fsync_dir, temp_name_pattern,
                                           write_new_file)
from napari_aleatoric.data.errors import AleatoricError
from napari_aleatoric.data.state_layout import STATE_DIR_NAME, originals_dir, revisions_dir
from napari_aleatoric.review.store import ReviewStore, Revision

#: Environment variable that overrides the user name recorded with revisions and statuses.
USER_ENV = "NAPARI_ALEATORIC_USER"

#: Temporaries of this module older than this (seconds) are removed by :func:`reconcile_case`.
STALE_TEMP_AGE_S = 3600.0

_PENDING_PREFIX = ".pending-"
_KEEP_PREFIX = ".keep-"

LabelWriter = Callable[[Path, np.ndarray, object], None]

_case_locks: dict[tuple[str, str], threading.Lock] = {}
_case_locks_guard = threading.Lock()


# -- small helpers ---------------------------------------------------------------------------


def default_user() -> str:
    """The user name recorded with revisions: ``$NAPARI_ALEATORIC_USER``, else the login name.

    Falls back to ``"unknown"`` when the operating system cannot tell.
    """
    name = os.environ.get(USER_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): getpass raises KeyError/OSError
        return "unknown"


def label_ending(path: str | Path) -> str:
    """The file ending that selects the label format: ``".nii.gz"``, ``".png"``, ``".tif"`` ..."""
    name = Path(path).name.lower()
    for double in (".nii.gz",):
        if name.endswith(double):
            return Path(path).name[-len(double):]
    return Path(path).suffix


def sha256_bytes(data: bytes) -> str:
    """SHA-256 hex digest (64 lowercase hex digits) of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def original_path(dataset_root: str | Path, label_path: str | Path, store: ReviewStore) -> Path:
    """Where the original of a label file is kept: ``<state_dir>/originals/<path relative to root>``.

    Raises:
        AleatoricError: the label file is not inside the dataset root.
    """
    return originals_dir(store.state_dir) / _relative_to_root(dataset_root, label_path)


def _relative_to_root(dataset_root: str | Path, label_path: str | Path) -> Path:
    root = Path(os.path.abspath(dataset_root))
    label = Path(os.path.abspath(label_path))
    try:
        rel = label.relative_to(root)
    except ValueError:
        raise AleatoricError(
            label, f"the label file is not inside the dataset folder {root}; it cannot be corrected here"
        ) from None
    if not rel.parts or rel.parts[0] == STATE_DIR_NAME:
        raise AleatoricError(label, "not a label file of the dataset")
    return rel


def _check_case_id(case_id: str, label_path: Path) -> None:
    """Refuse, before anything is written, a case id that cannot name a folder or be stored as
    text (a file name that is not valid UTF-8 decodes to lone surrogates SQLite cannot store)."""
    try:
        case_id.encode("utf-8")
    except UnicodeEncodeError:
        raise AleatoricError(label_path, f"case id {case_id!r} is not valid UTF-8 text (the file name has "
                             "undecodable bytes); rename the case's files to save corrections") from None
    if not case_id or case_id in (".", "..") or "/" in case_id or "\\" in case_id or "\0" in case_id:
        raise AleatoricError(label_path, f"case id {case_id!r} cannot be used as a folder name")


def _revision_dir(store: ReviewStore, case_id: str) -> Path:
    if not case_id or case_id in (".", "..") or "/" in case_id or "\\" in case_id or "\0" in case_id:
        raise ValueError(f"case id {case_id!r} cannot be used as a folder name")
    return revisions_dir(store.state_dir, case_id)


def _case_lock(store: ReviewStore, case_id: str) -> threading.Lock:
    key = (os.path.abspath(store.path), case_id)
    with _case_locks_guard:
        return _case_locks.setdefault(key, threading.Lock())


def _unlink_quietly(path: Path | None) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def _failure(path: Path, exc: OSError, label_path: Path, what: str) -> AleatoricError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the disk"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = f"permission denied ({reason})"
    return AleatoricError(path, f"cannot {what}: {reason}; the label file {label_path} was not changed")


# -- the steps -------------------------------------------------------------------------------


def _keep_original(label_path: Path, original: Path) -> None:
    """Step 1: copy the label file's bytes to ``original`` unless an original is already kept
    (:func:`~napari_aleatoric.data.atomic.atomic_create` never replaces one, even one another
    process keeps meanwhile)."""
    if original.exists():
        return
    try:
        data = label_path.read_bytes()
        original.parent.mkdir(parents=True, exist_ok=True)
        atomic_create(original, data)
    except OSError as exc:
        raise _failure(original, exc, label_path, "keep a copy of the original annotation") from exc


def _write_revision_copy(
    store: ReviewStore, case_id: str, ending: str, produce: Callable[[Path], None], label_path: Path
) -> tuple[Path, bytes, str]:
    """Step 2: ``produce(pending_path)`` writes the file; hash it and give it its final name.

    Returns:
        ``(final path, file bytes, sha256 hex)``.
    """
    folder = _revision_dir(store, case_id)
    stamp = _timestamp()
    pending = folder / f"{_PENDING_PREFIX}{stamp}-{secrets.token_hex(4)}{ending}"
    final: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        produce(pending)
        data = pending.read_bytes()
        sha = sha256_bytes(data)
        final = folder / f"{stamp}_{sha[:8]}{ending}"
        os.replace(pending, final)
        fsync_dir(folder)
        return final, data, sha
    except OSError as exc:
        _unlink_quietly(pending)
        _unlink_quietly(final)
        raise _failure(final or pending, exc, label_path, "write the revision copy") from exc
    except BaseException:
        _unlink_quietly(pending)
        _unlink_quietly(final)
        raise


def _publish_label(label_path: Path, data: bytes, copy: Path) -> None:
    """Step 3: atomically replace the label file with ``data``; on failure drop the copy."""
    try:
        atomic_write_bytes(label_path, data)
    except OSError as exc:
        _unlink_quietly(copy)
        raise _failure(label_path, exc, label_path, "write the label file") from exc
    except BaseException:
        _unlink_quietly(copy)
        raise


def _record(store: ReviewStore, case_id: str, label_path: Path, **fields) -> Revision:
    """Step 4: record the revision; a failure here leaves valid, unrecorded user data."""
    try:
        return store.add_revision(case_id, **fields)
    except AleatoricError as exc:
        raise AleatoricError(
            label_path,
            f"the label file was saved, but the review store could not record it ({exc}); it will "
            "be recorded when the case is next opened",
        ) from exc


def _stored_path(store: ReviewStore, copy: Path) -> str:
    return copy.relative_to(store.state_dir).as_posix()


# -- public API ------------------------------------------------------------------------------


def save_correction(
    dataset_root: str | Path,
    case_id: str,
    label_path: str | Path,
    labels: np.ndarray,
    geometry,
    *,
    user: str | None,
    model: str | None,
    auv_before: float | None,
    store: ReviewStore,
    note: str | None = None,
    writer: LabelWriter | None = None,
    issue_before: float | None = None,
) -> Revision:
    """Save corrected labels over a case's label file, keeping the original and a revision copy.

    Args:
        dataset_root: the dataset folder (the label file must be inside it).
        case_id: the case's id (used as a folder name under ``revisions/``).
        label_path: the case's existing label file; rewritten in its own format.
        labels: integer label array in napari axis order, ``(H, W)`` or ``(D, H, W)``.
        geometry: the :class:`~napari_aleatoric.data.geometry.Geometry` read with the labels
            (affine, header, file dtype) so the file is written back with the same geometry.
        user: who saves (see :func:`default_user`); ``model``: model name guiding the
            correction; ``auv_before``: the case's AUV score before correcting (dimensionless);
            ``issue_before``: its queue score ``label_issue`` (0–1) before correcting.
        store: the dataset's :class:`ReviewStore`; copies go under ``store.state_dir``.
        note: optional free text recorded with the revision.
        writer: ``writer(path, labels, geometry)`` encoding a label file; defaults to
            :func:`napari_aleatoric.data.medio.write_label`.

    Returns:
        The recorded :class:`Revision` (status of the case becomes ``'corrected'``).

    Raises:
        AleatoricError: naming the file, when the labels hold values the dataset's
            ``dataset.json`` does not declare (they are named; nothing is written), when the label
            file is missing or outside the dataset or a write fails (the label file then keeps its
            previous bytes and no temporary file is left), or when the saved file could not be recorded (see module docs).
    """
    label = Path(os.path.abspath(label_path))
    original = original_path(dataset_root, label, store)
    if not label.is_file():
        raise AleatoricError(label, "the label file does not exist; there is nothing to correct")
    _check_declared(dataset_root, label, labels)
    if writer is None:
        from napari_aleatoric.data.medio import write_label as writer
    ending = label_ending(label)

    return _commit_revision(store, case_id, label, original, ending,
                            lambda pending: writer(pending, labels, geometry),
                            user=user, model=model, auv_before=auv_before, note=note, status="corrected",
                            issue_before=issue_before)


def _check_declared(dataset_root: str | Path, label: Path, labels: np.ndarray) -> None:
    """Refuse, before anything is written, labels with values ``dataset.json`` does not declare
    (a saved file with such values could no longer be opened, scored or trained on)."""
    from napari_aleatoric.data.dataset import check_declared_values, declared_labels  # noqa: PLC0415

    declared = declared_labels(dataset_root)
    if declared is not None:
        check_declared_values(label, labels, declared, action="; nothing was saved (paint only declared classes)")


def _commit_revision(store, case_id, label: Path, original: Path, ending: str, write_pending, *,
                     user, model, auv_before, note, status, issue_before=None) -> Revision:
    """The crash-safe order shared by every save: keep the original (if the label exists), write
    the revision copy, publish it as the label file atomically, then record it in the store."""
    _check_case_id(case_id, label)
    with _case_lock(store, case_id):
        if label.is_file():
            _keep_original(label, original)
        copy, data, sha = _write_revision_copy(store, case_id, ending, write_pending, label)
        _publish_label(label, data, copy)
        return _record(store, case_id, label, label_sha256=sha, stored_path=_stored_path(store, copy),
                       user=user, model=model, auv_before=auv_before, note=note, status=status,
                       issue_before=issue_before)


def revert(
    dataset_root: str | Path,
    case_id: str,
    label_path: str | Path,
    to: Literal["original"] | int,
    store: ReviewStore,
    user: str | None,
    *,
    model: str | None = None,
    auv_before: float | None = None,
    issue_before: float | None = None,
) -> Revision:
    """Restore a case's label file, byte for byte, to its original or to a recorded revision.

    The restore is itself recorded as a new revision (note ``"revert to original"`` or
    ``"revert to revision <id>"``), written in the same crash-safe order as
    :func:`save_correction`. The status becomes ``'unreviewed'`` when reverting to the
    original, ``'corrected'`` otherwise.

    Args:
        to: ``"original"`` or the id of a revision of this case.

    Raises:
        AleatoricError: no original is kept (the case was never corrected), the revision's copy
            is missing or does not match its recorded SHA-256, or a write fails (the label file
            then keeps its previous bytes).
        KeyError: no revision with that id; ValueError: the revision belongs to another case.
    """
    label = Path(os.path.abspath(label_path))
    original = original_path(dataset_root, label, store)
    ending = label_ending(label)

    if to == "original":
        source = original
        if not source.is_file():
            raise AleatoricError(
                source, f"no original annotation is kept for case {case_id!r} (it was never corrected)"
            )
        expected_sha = None
        note = "revert to original"
        status = "unreviewed"
    else:
        target = store.revision(int(to))
        if target.case_id != case_id:
            raise ValueError(f"revision {target.id} belongs to case {target.case_id!r}, not {case_id!r}")
        source = store.revision_file(target)
        expected_sha = target.label_sha256
        note = f"revert to revision {target.id}"
        status = "corrected"

    try:
        data = source.read_bytes()
    except OSError as exc:
        raise AleatoricError(source, f"cannot read the copy to restore: {exc.strerror or exc}") from exc
    if expected_sha is not None and sha256_bytes(data) != expected_sha:
        raise AleatoricError(source, "the revision copy does not match its recorded SHA-256; it was not restored")

    return _commit_revision(store, case_id, label, original, ending,
                            lambda pending: write_new_file(pending, data),
                            user=user, model=model, auv_before=auv_before, note=note, status=status,
                       issue_before=issue_before)


def reconcile_case(
    dataset_root: str | Path,
    case_id: str,
    label_path: str | Path,
    store: ReviewStore,
    user: str | None,
) -> Revision | None:
    """Apply the recovery rule to one case; call it when a case is opened.

    If the label file's SHA-256 differs from the case's latest revision (or, with no revision,
    from the kept original), the file is valid user data that was never recorded: it is copied
    to ``revisions/`` and recorded (note ``"recovered: ..."``), status ``'corrected'`` or
    ``'unreviewed'`` if it equals the original. The label file is only read, never written.
    Also removes stale temporaries (older than :data:`STALE_TEMP_AGE_S`) that a killed save of
    this case left: ``.pending-*`` revision copies, ``.keep-*`` originals and the atomic
    writer's ``.<name>.<hex>.partial<ending>`` files beside the label file.

    Returns:
        The recovered :class:`Revision`, or ``None`` when the store already agrees with the file
        (or the label file does not exist).
    """
    label = Path(os.path.abspath(label_path))
    original = original_path(dataset_root, label, store)
    _check_case_id(case_id, label)
    # ".pending-*" copies, and "..pending-*.partial*": the atomic writer's temporary of a copy
    _remove_stale_temps(_revision_dir(store, case_id), (_PENDING_PREFIX, "." + _PENDING_PREFIX))
    _remove_stale_temps(original.parent, temp_name_pattern(original))
    _remove_stale_temps(original.parent, _KEEP_PREFIX)  # what older versions named the temporary of an original
    _remove_stale_temps(label.parent, temp_name_pattern(label))
    if not label.is_file():
        return None

    with _case_lock(store, case_id):
        try:
            data = label.read_bytes()
        except OSError as exc:
            raise AleatoricError(label, f"cannot read the label file: {exc.strerror or exc}") from exc
        sha = sha256_bytes(data)
        latest = store.latest_revision(case_id)
        original_sha = sha256_file(original) if original.is_file() else None
        if latest is not None and latest.label_sha256 == sha:
            return None
        if latest is None and original_sha in (None, sha):
            return None  # never corrected, or corrected and nothing recorded yet but unchanged

        copy, _, _ = _write_revision_copy(
            store, case_id, label_ending(label), lambda pending: write_new_file(pending, data), label
        )
        return _record(
            store,
            case_id,
            label,
            label_sha256=sha,
            stored_path=_stored_path(store, copy),
            user=user,
            model=None,
            auv_before=None,
            note="recovered: the label file changed without a recorded revision "
            "(interrupted save or edit outside napari-aleatoric)",
            status="unreviewed" if sha == original_sha else "corrected",
        )


def _remove_stale_temps(folder: Path, prefix: str | tuple[str, ...] | re.Pattern,
                        max_age_s: float = STALE_TEMP_AGE_S) -> None:
    """Remove temporaries left by a killed process: names starting with ``prefix`` (or fully
    matching the pattern) and older than ``max_age_s`` seconds, so that a write in progress in
    another process is never disturbed."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        matches = prefix.fullmatch(entry.name) if isinstance(prefix, re.Pattern) else entry.name.startswith(prefix)
        if matches:
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime > max_age_s:
                    os.unlink(entry.path)
            except OSError:
                pass
