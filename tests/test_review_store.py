"""The review store: statuses, revisions, WAL mode, schema version, threads, processes, corruption."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from napari_aleatoric.data.errors import AleatoricError
from napari_aleatoric.review.store import SCHEMA_VERSION, ReviewStore

SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture
def store(tmp_path):
    s = ReviewStore.for_dataset(tmp_path)
    yield s
    s.close()


def test_store_lives_in_the_state_folder(tmp_path, store):
    assert store.path == tmp_path / ".aleatoric" / "review.sqlite"
    assert store.path.is_file()
    assert store.state_dir == tmp_path / ".aleatoric"


def test_wal_mode_synchronous_full_and_schema_version(store):
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    # checked through an independent connection too: WAL is persistent in the file
    other = sqlite3.connect(store.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        other.close()


def test_statuses_default_set_and_list(store):
    assert store.status("case_1") == "unreviewed"
    assert store.statuses() == {}
    store.set_status("case_1", "accepted", "ann")
    store.set_status("case_2", "excluded", "bob")
    store.set_status("case_1", "corrected", "ann")
    assert store.status("case_1") == "corrected"
    assert store.status("case_2") == "excluded"
    assert store.status("case_3") == "unreviewed"
    assert store.statuses() == {"case_1": "corrected", "case_2": "excluded"}
    row = store._conn.execute("SELECT updated_by, updated_at FROM cases WHERE case_id='case_2'").fetchone()
    assert row[0] == "bob"
    assert datetime.fromisoformat(row[1]).tzinfo is not None


def test_unknown_status_is_rejected_in_python_and_by_the_schema(store):
    with pytest.raises(ValueError):
        store.set_status("c", "done", "ann")
    with pytest.raises(sqlite3.IntegrityError):
        store._conn.execute(
            "INSERT INTO cases (case_id, status, updated_at) VALUES ('c', 'done', 'now')"
        )
    assert store.status("c") == "unreviewed"


def test_revisions_round_trip_in_order_with_auv_after(store):
    r1 = store.add_revision(
        "case_1", label_sha256=SHA_A, stored_path="revisions/case_1/x_aaaaaaaa.png",
        user="ann", model="litemedsam", auv_before=0.83, note="first",
    )
    r2 = store.add_revision(
        "case_1", label_sha256=SHA_B, stored_path="revisions/case_1/y_bbbbbbbb.png",
        user="bob", model=None, auv_before=None,
    )
    store.add_revision("case_2", label_sha256=SHA_A, stored_path="p", user="ann", status=None)
    assert r2.id > r1.id
    assert store.status("case_1") == "corrected"
    assert store.status("case_2") == "unreviewed"  # status=None leaves it
    revs = store.revisions("case_1")
    assert [r.id for r in revs] == [r1.id, r2.id]
    assert revs[0] == r1
    assert revs[0].auv_before == pytest.approx(0.83) and revs[0].auv_after is None
    assert revs[0].model == "litemedsam" and revs[0].note == "first" and revs[0].user == "ann"
    created = datetime.fromisoformat(revs[0].created_at)
    assert created.utcoffset() == timezone.utc.utcoffset(None)
    assert store.latest_revision("case_1") == r2
    assert store.latest_revision("nope") is None
    assert store.revisions("nope") == []

    store.set_scores_after(r1.id, auv=0.21, label_issue=None)
    assert store.revision(r1.id).auv_after == pytest.approx(0.21)
    assert store.revision(r2.id).auv_after is None
    with pytest.raises(KeyError):
        store.set_scores_after(9999, auv=0.5, label_issue=None)
    with pytest.raises(KeyError):
        store.revision(9999)
    assert store.revision_file(r1) == store.state_dir / "revisions" / "case_1" / "x_aaaaaaaa.png"


def test_bad_sha_is_rejected(store):
    with pytest.raises(ValueError):
        store.add_revision("c", label_sha256="abc", stored_path="p", user="u")
    assert store.revisions("c") == [] and store.status("c") == "unreviewed"


def test_data_survives_reopening(tmp_path):
    with ReviewStore.for_dataset(tmp_path) as s:
        s.set_status("a", "accepted", "u")
        rev = s.add_revision("b", label_sha256=SHA_A, stored_path="p", user="u")
    with ReviewStore.for_dataset(tmp_path) as s:
        assert s.statuses() == {"a": "accepted", "b": "corrected"}
        assert s.revisions("b") == [rev]


def test_closed_store_raises_clear_error(tmp_path):
    s = ReviewStore.for_dataset(tmp_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(AleatoricError, match="closed"):
        s.status("a")


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["garbage", "damaged-header"],
)
def test_corrupt_store_gives_clear_error_and_is_not_deleted(tmp_path, content):
    path = tmp_path / ".aleatoric" / "review.sqlite"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(AleatoricError) as info:
        ReviewStore(path)
    assert str(path) in str(info.value)
    assert "move it aside" in str(info.value)
    assert path.read_bytes() == content  # never deleted or rewritten


def test_foreign_sqlite_file_is_refused_untouched(tmp_path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE stuff (x)")
    conn.commit()
    conn.close()
    with pytest.raises(AleatoricError, match="not a napari-aleatoric review store"):
        ReviewStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("stuff",)]
    conn.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "review.sqlite"
    ReviewStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(AleatoricError, match="newer"):
        ReviewStore(path)


def test_shared_between_threads(store):
    errors = []

    def work(n):
        try:
            for i in range(25):
                store.add_revision(f"case_{n}", label_sha256=SHA_A, stored_path=f"p{i}", user=f"t{n}")
                store.status(f"case_{n}")
                store.statuses()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n in range(6):
        assert len(store.revisions(f"case_{n}")) == 25


_WRITER = """
import sys
from napari_aleatoric.review.store import ReviewStore
s = ReviewStore(sys.argv[1])
for i in range(40):
    s.add_revision("shared", label_sha256="c" * 64, stored_path=f"{sys.argv[2]}-{i}", user=sys.argv[2])
    s.set_status(f"case_{sys.argv[2]}", "accepted", sys.argv[2])
s.close()
"""


def test_several_processes_write_concurrently(tmp_path):
    path = tmp_path / ".aleatoric" / "review.sqlite"
    ReviewStore(path).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"p{n}"], stderr=subprocess.PIPE)
        for n in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    with ReviewStore(path) as s:
        revs = s.revisions("shared")
        assert len(revs) == 120
        assert len({r.stored_path for r in revs}) == 120
        assert s.statuses() == {
            "shared": "corrected", "case_p0": "accepted", "case_p1": "accepted", "case_p2": "accepted"
        }


def test_scores_after_record_the_queue_score_and_the_auv(store):
    r1 = store.add_revision("case_1", label_sha256=SHA_A, stored_path="revisions/case_1/a.png", user="ann",
                            auv_before=0.8, issue_before=0.42)
    assert (r1.issue_before, r1.issue_after) == (pytest.approx(0.42), None)
    store.set_scores_after(r1.id, auv=0.3, label_issue=0.05)
    stored = store.revision(r1.id)
    assert (stored.auv_before, stored.auv_after) == (pytest.approx(0.8), pytest.approx(0.3))
    assert (stored.issue_before, stored.issue_after) == (pytest.approx(0.42), pytest.approx(0.05))
    store.set_scores_after(r1.id, auv=None, label_issue=0.07)  # an unknown AUV stays unknown
    assert store.revision(r1.id).auv_after is None and store.revision(r1.id).issue_after == pytest.approx(0.07)
    with pytest.raises(KeyError):
        store.set_scores_after(9999, auv=0.1, label_issue=0.1)


def test_a_version_1_store_is_upgraded_in_place_keeping_its_rows(tmp_path):
    from napari_aleatoric.review import store as store_module

    path = tmp_path / ".aleatoric" / "review.sqlite"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.executescript(store_module._SCHEMA_V1)
    conn.execute("INSERT INTO revisions (case_id, created_at, user, model, auv_before, auv_after, label_sha256, "
                 "stored_path, note) VALUES ('c', '2024-01-01T00:00:00+00:00', 'ann', 'm', 0.5, NULL, ?, 'x', NULL)",
                 (SHA_A,))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with ReviewStore(path) as upgraded:
        old = upgraded.revisions("c")[0]
        assert (old.auv_before, old.issue_before, old.issue_after) == (pytest.approx(0.5), None, None)
        upgraded.set_scores_after(old.id, auv=0.2, label_issue=0.1)
        assert upgraded.revision(old.id).issue_after == pytest.approx(0.1)
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    finally:
        check.close()


# -- status log --------------------------------------------------------------------------------


def test_every_status_change_is_logged_in_order(store):
    store.set_status("case_1", "accepted", "ann")
    store.set_status("case_1", "accepted", "ann")  # no change: nothing logged
    store.set_status("case_1", "unreviewed", "bob", reason="reset in the queue")
    history = store.status_history("case_1")
    assert [(c.old_status, c.new_status, c.changed_by, c.reason) for c in history] == [
        ("unreviewed", "accepted", "ann", None), ("accepted", "unreviewed", "bob", "reset in the queue")]
    assert history[0].id < history[1].id and history[0].changed_at <= history[1].changed_at
    assert datetime.fromisoformat(history[0].changed_at).utcoffset() == timezone.utc.utcoffset(None)
    assert store.status_history("case_2") == []


def test_a_revision_logs_its_status_change_in_the_same_transaction(store):
    r1 = store.add_revision("case_1", label_sha256=SHA_A, stored_path="p", user="ann")
    r2 = store.add_revision("case_1", label_sha256=SHA_B, stored_path="q", user="ann")  # still corrected
    store.add_revision("case_2", label_sha256=SHA_A, stored_path="p", user="ann", status=None)
    store.set_status("case_3", "excluded", "cy")
    assert [(c.case_id, c.old_status, c.new_status, c.reason) for c in store.status_history()] == [
        ("case_1", "unreviewed", "corrected", f"revision {r1.id}"), ("case_3", "unreviewed", "excluded", None)]
    assert r2.id > r1.id

    def failing_insert(conn):  # a transaction that fails after the status row: nothing of it stays
        store._upsert_status(conn, "case_4", "accepted", "ann", "2024-01-01T00:00:00+00:00")
        raise RuntimeError("crash inside the transaction")

    with pytest.raises(RuntimeError):
        store._write(failing_insert)
    assert store.status("case_4") == "unreviewed" and store.status_history("case_4") == []


def test_a_version_2_store_made_by_the_previous_release_keeps_its_data_and_gains_the_log(tmp_path):
    path = tmp_path / ".aleatoric" / "review.sqlite"
    path.parent.mkdir()
    path.write_bytes((Path(__file__).parent / "data" / "review_store_v2.sqlite").read_bytes())
    with ReviewStore(path) as upgraded:
        assert upgraded.statuses() == {"case_a": "corrected", "case_b": "excluded", "case_c": "corrected"}
        [revision] = upgraded.revisions("case_c")
        assert (revision.auv_before, revision.auv_after, revision.issue_before, revision.issue_after) == (
            pytest.approx(0.7), pytest.approx(0.2), pytest.approx(0.4), pytest.approx(0.05))
        assert (revision.user, revision.model, revision.note) == ("ann", "litemedsam", "first")
        before = upgraded.status_history()
        assert sorted((c.case_id, c.old_status, c.new_status, c.changed_by) for c in before) == [
            ("case_a", None, "corrected", "ann"), ("case_b", None, "excluded", "bob"),
            ("case_c", None, "corrected", "ann")]
        upgraded.set_status("case_b", "unreviewed", "cy")
        assert [(c.old_status, c.new_status) for c in upgraded.status_history("case_b")] == [
            (None, "excluded"), ("excluded", "unreviewed")]
    with ReviewStore(path) as reopened:  # opened again: nothing migrated twice
        assert len(reopened.status_history()) == 4 and reopened.status("case_b") == "unreviewed"
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    finally:
        check.close()
