"""The review store: per-case review status and the provenance of every saved label revision.

One SQLite file per dataset, ``<dataset>/.aleatoric/review.sqlite`` (standard-library
:mod:`sqlite3`), in WAL mode with ``synchronous=FULL`` so that a committed row survives a crash
or power loss. The schema is versioned with ``PRAGMA user_version``.

Concurrency:

- threads: one connection per store object, created with ``check_same_thread=False`` and every
  use serialised by a re-entrant lock, so one :class:`ReviewStore` may be shared by a GUI thread
  and worker threads;
- processes: several processes (napari plus a command-line scorer, say) may open the same file;
  writes use ``BEGIN IMMEDIATE`` and a busy timeout, WAL lets readers go on while one writes.

Tables: ``cases`` (each case's latest status), ``revisions`` (every saved label file) and
``status_log``, append-only: every change of a status (old, new, when, who, why: ``"revision
<id>"`` for a save) is appended in the transaction that makes it (:meth:`ReviewStore.status_history`).

The store holds no label data. Revision copies live under ``.aleatoric/revisions/`` and
``stored_path`` is recorded relative to the folder that holds the database file (the state
folder), so a dataset can be moved without breaking the store. See
:mod:`napari_aleatoric.review.saving` for the order in which files and rows are written.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from napari_aleatoric.data.errors import AleatoricError
from napari_aleatoric.data.state_layout import REVIEW_STORE, review_store, state_dir

#: Schema version written to ``PRAGMA user_version`` (2: revisions carry the queue's score,
#: ``issue_before`` / ``issue_after``; 3: the append-only ``status_log``). An older store is
#: upgraded in place on opening.
SCHEMA_VERSION = 3

#: File name of the store inside the dataset's state folder.
STORE_NAME = REVIEW_STORE

#: The review states a case can be in; cases never seen are ``"unreviewed"``.
STATUSES = ("unreviewed", "accepted", "corrected", "excluded")

#: Seconds a writer waits for another connection's write lock before giving up.
BUSY_TIMEOUT_S = 30.0

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS cases (
    case_id     TEXT PRIMARY KEY NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('unreviewed', 'accepted', 'corrected', 'excluded')),
    updated_at  TEXT NOT NULL,
    updated_by  TEXT
);
CREATE TABLE IF NOT EXISTS revisions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    user          TEXT,
    model         TEXT,
    auv_before    REAL,
    auv_after     REAL,
    label_sha256  TEXT NOT NULL CHECK (length(label_sha256) = 64),
    stored_path   TEXT NOT NULL,
    note          TEXT
);
CREATE INDEX IF NOT EXISTS revisions_by_case ON revisions (case_id, id);
"""

#: Version 1 → 2: the queue's score (``label_issue``) before and after each revision.
_MIGRATE_V1_V2 = """
ALTER TABLE revisions ADD COLUMN issue_before REAL;
ALTER TABLE revisions ADD COLUMN issue_after REAL
"""

#: Version 2 → 3: every status change, appended in the transaction that makes it. The statuses a
#: store already holds become one row each with ``old_status`` NULL (the change before the log).
_MIGRATE_V2_V3 = """
CREATE TABLE status_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     TEXT NOT NULL,
    old_status  TEXT,
    new_status  TEXT NOT NULL,
    changed_at  TEXT NOT NULL,
    changed_by  TEXT,
    reason      TEXT
);
CREATE INDEX status_log_by_case ON status_log (case_id, id);
INSERT INTO status_log (case_id, old_status, new_status, changed_at, changed_by, reason)
    SELECT case_id, NULL, status, updated_at, updated_by, 'recorded before the status log'
    FROM cases ORDER BY updated_at, case_id
"""

_STATUS_LOG_COLUMNS = "id, case_id, old_status, new_status, changed_at, changed_by, reason"

_REVISION_COLUMNS = (
    "id, case_id, created_at, user, model, auv_before, auv_after, label_sha256, stored_path, note, "
    "issue_before, issue_after"
)


def _real(value: float | None) -> float | None:
    return None if value is None else float(value)


def utc_now() -> str:
    """The current time as a UTC ISO 8601 string with microseconds (``...+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Revision:
    """One saved version of a case's label file.

    Attributes:
        id: row id, increasing in the order revisions were recorded (across all cases).
        case_id: the case the label file belongs to.
        created_at: when it was recorded, UTC ISO 8601 string.
        user: who saved it (see :func:`napari_aleatoric.review.saving.default_user`).
        model: name of the foundation model whose uncertainty guided the correction, if any.
        auv_before: the case's AUV score (dimensionless, dataset min-max normalised, higher is
            more doubtful) before the correction, if known.
        auv_after: the AUV score after re-scoring the corrected labels; ``None`` until re-scored.
        label_sha256: SHA-256 (64 lowercase hex digits) of the label file's bytes as saved.
        stored_path: POSIX path of the revision's copy, relative to the state folder
            (``revisions/<case_id>/<timestamp>_<sha8><ending>``); resolve it with
            :meth:`ReviewStore.revision_file`.
        note: free text (``"revert to original"``, ``"recovered ..."``, a user's comment).
        issue_before: the case's queue score, ``label_issue`` (share of the drawn annotation
            the learned label quality contradicts, 0–1), before the correction, if known.
        issue_after: ``label_issue`` after re-scoring the saved labels; ``None`` until re-scored.
    """

    id: int
    case_id: str
    created_at: str
    user: str | None
    model: str | None
    auv_before: float | None
    auv_after: float | None
    label_sha256: str
    stored_path: str
    note: str | None = None
    issue_before: float | None = None
    issue_after: float | None = None


@dataclass(frozen=True)
class StatusChange:
    """One change of a case's review status (a row of the append-only status log).

    Attributes:
        id: row id, increasing in the order the changes were made (across all cases).
        case_id: the case.
        old_status: its status before (``"unreviewed"`` for a case never touched); ``None`` for the
            status a store held when it was upgraded to the log (what came before is not known).
        new_status: its status after.
        changed_at: when, UTC ISO 8601 string.
        changed_by: who (see :func:`napari_aleatoric.review.saving.default_user`), if known.
        reason: what set it: ``None`` for a plain status change, ``"revision <id>"`` for a saved
            revision (a correction, a revert, a recovered edit), or the caller's text.
    """

    id: int
    case_id: str
    old_status: str | None
    new_status: str
    changed_at: str
    changed_by: str | None
    reason: str | None = None


class ReviewStore:
    """Review status and revision history of one dataset, in an SQLite file.

    Args:
        path: the database file, normally ``<dataset>/.aleatoric/review.sqlite``
            (see :meth:`for_dataset`). Its folder is created if missing; the file is created
            with the current schema if missing.

    Raises:
        AleatoricError: naming the file when it cannot be opened, is not an SQLite database,
            fails SQLite's integrity check, was written by a newer version of this package or
            lacks the expected tables. A damaged file is never deleted or rewritten: the
            message says to move it aside.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AleatoricError(self.path.parent, f"cannot create the review store's folder: {exc}") from exc
        try:
            self._conn = sqlite3.connect(
                str(self.path),
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=False,  # shared between threads under self._lock
            )
            self._configure()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise AleatoricError(
                self.path,
                f"the review store cannot be read ({exc}). It was left untouched; move it aside "
                "to start a new, empty review store (label files are not affected).",
            ) from exc
        except AleatoricError:
            self._close_quietly()
            raise

    @classmethod
    def for_dataset(cls, dataset_root: str | Path) -> "ReviewStore":
        """Open (or create) the store of a dataset, ``<dataset_root>/.aleatoric/review.sqlite``."""
        return cls(review_store(state_dir(dataset_root)))

    @property
    def state_dir(self) -> Path:
        """The folder holding the database file; ``stored_path`` values are relative to it."""
        return self.path.parent

    # -- opening -----------------------------------------------------------------------------

    def _configure(self) -> None:
        conn = self._connection()
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # Reading the header first turns "not a database" into an error before anything is written.
        conn.execute("PRAGMA schema_version").fetchone()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise AleatoricError(
                self.path,
                f"the review store could not be switched to WAL mode (journal mode is {mode!r}); "
                "is the dataset on a network or read-only file system?",
            )
        conn.execute("PRAGMA synchronous = FULL")
        result = conn.execute("PRAGMA quick_check").fetchall()
        if result != [("ok",)]:
            problems = "; ".join(str(row[0]) for row in result[:3])
            raise sqlite3.DatabaseError(f"integrity check failed: {problems}")

    def _migrate(self) -> None:
        conn = self._connection()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            self._check_tables()
            return
        if version > SCHEMA_VERSION:
            raise AleatoricError(
                self.path,
                f"the review store has schema version {version}, newer than this version of "
                f"napari-aleatoric understands ({SCHEMA_VERSION}); please upgrade napari-aleatoric",
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created the schema while we waited for the lock.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                existing = {
                    row[0]
                    for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                }
                if existing - {"sqlite_sequence"}:
                    raise AleatoricError(
                        self.path,
                        "this SQLite file is not a napari-aleatoric review store (it holds the "
                        f"tables {sorted(existing)}); it was left untouched",
                    )
                for statement in _SCHEMA_V1.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                version = 1
            if version == 1:
                for statement in _MIGRATE_V1_V2.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                version = 2
            if version == 2:
                for statement in _MIGRATE_V2_V3.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._check_tables()

    def _check_tables(self) -> None:
        tables = {
            row[0] for row in self._connection().execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        missing = {"cases", "revisions", "status_log"} - tables
        if missing:
            raise AleatoricError(
                self.path, f"the review store lacks the tables {sorted(missing)}; it was left untouched"
            )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise AleatoricError(self.path, "the review store is closed")
        return self._conn

    def _close_quietly(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    # -- helpers -----------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise AleatoricError(self.path, f"reading the review store failed: {exc}") from exc

    def _write(self, fn):
        """Run ``fn(conn)`` inside ``BEGIN IMMEDIATE ... COMMIT``; roll back on any error."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise AleatoricError(self.path, f"the review store is busy or read-only: {exc}") from exc
            try:
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException as exc:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.IntegrityError):
                    raise ValueError(f"{self.path}: rejected by the review store: {exc}") from exc
                if isinstance(exc, sqlite3.Error):
                    raise AleatoricError(self.path, f"writing the review store failed: {exc}") from exc
                raise

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown review status {status!r}; expected one of {STATUSES}")

    @staticmethod
    def _upsert_status(conn: sqlite3.Connection, case_id: str, status: str, user: str | None, now: str,
                       reason: str | None = None) -> None:
        """Set the status and, when it changes, append the change to the log (same transaction)."""
        row = conn.execute("SELECT status FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        old = row[0] if row else "unreviewed"
        if old != status:
            conn.execute(
                "INSERT INTO status_log (case_id, old_status, new_status, changed_at, changed_by, reason) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (case_id, old, status, now, user, reason),
            )
        conn.execute(
            "INSERT INTO cases (case_id, status, updated_at, updated_by) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (case_id) DO UPDATE SET status = excluded.status, "
            "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (case_id, status, now, user),
        )

    # -- statuses ----------------------------------------------------------------------------

    def status(self, case_id: str) -> str:
        """The review status of a case; ``"unreviewed"`` for a case never touched."""
        rows = self._read("SELECT status FROM cases WHERE case_id = ?", (case_id,))
        return rows[0][0] if rows else "unreviewed"

    def set_status(self, case_id: str, status: str, user: str | None, *, reason: str | None = None) -> None:
        """Set the review status of a case (one of :data:`STATUSES`), recording who and when; a
        change is appended to the status log in the same transaction (with ``reason``, if given).

        Raises:
            ValueError: unknown status.
        """
        self._check_status(status)
        now = utc_now()
        self._write(lambda conn: self._upsert_status(conn, case_id, status, user, now, reason))

    def statuses(self) -> dict[str, str]:
        """``{case_id: status}`` of every case that has a recorded status (others are unreviewed)."""
        return dict(self._read("SELECT case_id, status FROM cases ORDER BY case_id"))

    def status_history(self, case_id: str | None = None) -> list[StatusChange]:
        """The status changes of a case (or of every case), oldest first."""
        if case_id is None:
            rows = self._read(f"SELECT {_STATUS_LOG_COLUMNS} FROM status_log ORDER BY id")
        else:
            rows = self._read(f"SELECT {_STATUS_LOG_COLUMNS} FROM status_log WHERE case_id = ? ORDER BY id",
                              (case_id,))
        return [StatusChange(*row) for row in rows]

    # -- revisions ---------------------------------------------------------------------------

    def add_revision(
        self,
        case_id: str,
        *,
        label_sha256: str,
        stored_path: str,
        user: str | None,
        model: str | None = None,
        auv_before: float | None = None,
        auv_after: float | None = None,
        note: str | None = None,
        status: str | None = "corrected",
        issue_before: float | None = None,
        issue_after: float | None = None,
    ) -> Revision:
        """Record a revision whose copy is already in place, in one transaction with the status.

        Call this only after the revision copy (``stored_path``, relative to :attr:`state_dir`)
        and the label file are durably on disk: the store must never claim a file that is not
        there.

        Args:
            case_id: the case.
            label_sha256: SHA-256 hex digest (64 characters) of the saved label file's bytes.
            stored_path: the revision copy's path relative to :attr:`state_dir` (POSIX).
            user, model, auv_before, auv_after, note, issue_before, issue_after: provenance; see
                :class:`Revision`.
            status: the case's new status, set in the same transaction (``None`` leaves it).

        Returns:
            The recorded :class:`Revision`.
        """
        if status is not None:
            self._check_status(status)
        now = utc_now()
        sha = label_sha256.lower()

        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO revisions (case_id, created_at, user, model, auv_before, auv_after, "
                "label_sha256, stored_path, note, issue_before, issue_after) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    case_id,
                    now,
                    user,
                    model,
                    None if auv_before is None else float(auv_before),
                    None if auv_after is None else float(auv_after),
                    sha,
                    stored_path,
                    note,
                    _real(issue_before),
                    _real(issue_after),
                ),
            )
            if status is not None:
                self._upsert_status(conn, case_id, status, user, now, f"revision {cursor.lastrowid}")
            return int(cursor.lastrowid)

        revision_id = self._write(insert)
        return Revision(
            id=revision_id,
            case_id=case_id,
            created_at=now,
            user=user,
            model=model,
            auv_before=None if auv_before is None else float(auv_before),
            auv_after=None if auv_after is None else float(auv_after),
            label_sha256=sha,
            stored_path=stored_path,
            note=note,
            issue_before=_real(issue_before),
            issue_after=_real(issue_after),
        )

    def revisions(self, case_id: str) -> list[Revision]:
        """Every recorded revision of a case, oldest first."""
        rows = self._read(
            f"SELECT {_REVISION_COLUMNS} FROM revisions WHERE case_id = ? ORDER BY id", (case_id,)
        )
        return [Revision(*row) for row in rows]

    def revision(self, revision_id: int) -> Revision:
        """The revision with this id.

        Raises:
            KeyError: no such revision.
        """
        rows = self._read(f"SELECT {_REVISION_COLUMNS} FROM revisions WHERE id = ?", (int(revision_id),))
        if not rows:
            raise KeyError(f"{self.path}: no revision with id {revision_id}")
        return Revision(*rows[0])

    def latest_revision(self, case_id: str) -> Revision | None:
        """The most recently recorded revision of a case, or ``None``."""
        rows = self._read(
            f"SELECT {_REVISION_COLUMNS} FROM revisions WHERE case_id = ? ORDER BY id DESC LIMIT 1",
            (case_id,),
        )
        return Revision(*rows[0]) if rows else None

    def set_scores_after(self, revision_id: int, *, auv: float | None, label_issue: float | None) -> None:
        """Record a revision's scores after re-scoring it: the AUV (dimensionless) and the queue's
        ``label_issue`` (share of the drawing contradicted, 0–1); ``None`` leaves that value unknown.

        Raises:
            KeyError: no such revision.
        """

        def update(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE revisions SET auv_after = ?, issue_after = ? WHERE id = ?",
                (_real(auv), _real(label_issue), int(revision_id)),
            ).rowcount

        if self._write(update) == 0:
            raise KeyError(f"{self.path}: no revision with id {revision_id}")

    def revision_file(self, revision: Revision) -> Path:
        """Absolute path of a revision's stored copy."""
        return self.state_dir / Path(*revision.stored_path.split("/"))

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). Further calls raise :class:`AleatoricError`."""
        with self._lock:
            self._close_quietly()

    def __enter__(self) -> "ReviewStore":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReviewStore({str(self.path)!r})"
