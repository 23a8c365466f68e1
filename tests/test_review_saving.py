"""Saving corrected labels: originals kept, revisions recorded, reverts, failures and crashes."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from napari_aleatoric.data import medio
from napari_aleatoric.data.errors import AleatoricError
from napari_aleatoric.review import saving
from napari_aleatoric.review.saving import (
    default_user,
    original_path,
    reconcile_case,
    revert,
    save_correction,
)
from napari_aleatoric.review.store import ReviewStore

FORMATS = ["nii.gz", "png"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_label_file(root: Path, fmt: str, case_id: str = "case_001") -> Path:
    """A small label file in ``<root>/labelsTr``: a (6, 40, 48) NIfTI volume or a (40, 48) PNG."""
    folder = root / "labelsTr"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if fmt == "nii.gz":
        path = folder / f"{case_id}.nii.gz"
        data = (rng.random((48, 40, 6)) > 0.7).astype(np.uint8)  # file voxel order (i, j, k)
        affine = np.diag([0.8, 0.8, 2.5, 1.0])
        affine[:3, 3] = [-10.0, 5.0, 30.0]
        nib.save(nib.Nifti1Image(data, affine), str(path))
    else:
        path = folder / f"{case_id}.png"
        data = ((rng.random((40, 48)) > 0.7) * 1).astype(np.uint8)
        Image.fromarray(data).save(path)
    return path


@pytest.fixture(params=FORMATS)
def case(request, tmp_path):
    root = tmp_path / "Dataset001_Test"
    label = make_label_file(root, request.param)
    store = ReviewStore.for_dataset(root)
    yield root, label, store
    store.close()


def corrected(labels: np.ndarray, value: int = 1, offset: int = 0) -> np.ndarray:
    out = labels.copy()
    out[..., 3 + offset : 12 + offset, 5:20] = value
    return out


def all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def temp_files(root: Path) -> list[str]:
    return [f for f in all_files(root) if Path(f).name.startswith(".") or ".partial" in f or ".pending" in f]


def save(root, label, store, labels, geometry, **kw):
    kw.setdefault("user", "ann")
    kw.setdefault("model", "tiny")
    kw.setdefault("auv_before", 0.9)
    return save_correction(root, "case_001", label, labels, geometry, store=store, **kw)


# -- save ------------------------------------------------------------------------------------


def test_save_writes_labels_keeps_original_and_records_revision(case):
    root, label, store = case
    before = label.read_bytes()
    labels, geometry = medio.read_label(label)
    new = corrected(labels)

    rev = save(root, label, store, new, geometry, auv_before=0.87)

    after = label.read_bytes()
    assert after != before
    back, back_geometry = medio.read_label(label)
    np.testing.assert_array_equal(back, new)
    assert back.shape == labels.shape
    assert back_geometry.spacing == pytest.approx(geometry.spacing)
    if geometry.affine is not None:
        np.testing.assert_allclose(back_geometry.affine, geometry.affine)

    kept = original_path(root, label, store)
    assert kept == root / ".aleatoric" / "originals" / "labelsTr" / label.name
    assert kept.read_bytes() == before

    assert rev.label_sha256 == sha(after)
    assert store.revisions("case_001") == [rev]
    assert store.status("case_001") == "corrected"
    assert (rev.user, rev.model, rev.auv_before, rev.auv_after) == ("ann", "tiny", pytest.approx(0.87), None)
    copy = store.revision_file(rev)
    assert copy.read_bytes() == after
    ending = ".nii.gz" if label.name.endswith(".nii.gz") else ".png"
    assert re.fullmatch(
        rf"revisions/case_001/\d{{8}}T\d{{6}}\.\d{{6}}Z_{rev.label_sha256[:8]}{re.escape(ending)}", rev.stored_path
    )
    assert temp_files(root) == []


def test_second_save_keeps_the_first_original(case):
    root, label, store = case
    before = label.read_bytes()
    labels, geometry = medio.read_label(label)
    r1 = save(root, label, store, corrected(labels, 1), geometry)
    first = label.read_bytes()
    r2 = save(root, label, store, corrected(labels, 2, offset=2), geometry)
    second = label.read_bytes()
    assert second != first
    assert original_path(root, label, store).read_bytes() == before
    assert [r.id for r in store.revisions("case_001")] == [r1.id, r2.id]
    assert store.revision_file(r1).read_bytes() == first
    assert store.revision_file(r2).read_bytes() == second
    assert r2.label_sha256 == sha(second)


def test_existing_original_is_never_overwritten(case):
    root, label, store = case
    kept = original_path(root, label, store)
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"an original kept by an earlier session")
    labels, geometry = medio.read_label(label)
    save(root, label, store, corrected(labels), geometry)
    assert kept.read_bytes() == b"an original kept by an earlier session"


def test_label_must_exist_and_be_inside_the_dataset(case, tmp_path):
    root, label, store = case
    labels, geometry = medio.read_label(label)
    with pytest.raises(AleatoricError, match="does not exist"):
        save_correction(root, "case_009", label.with_name("missing" + label.name), labels, geometry,
                        user="u", model=None, auv_before=None, store=store)
    outside = tmp_path / ("elsewhere" + label.name)
    outside.write_bytes(label.read_bytes())
    with pytest.raises(AleatoricError, match="not inside the dataset"):
        save_correction(root, "case_001", outside, labels, geometry,
                        user="u", model=None, auv_before=None, store=store)
    assert store.revisions("case_001") == []


# -- revert ----------------------------------------------------------------------------------


def test_revert_to_original_restores_bytes_exactly(case):
    root, label, store = case
    before = label.read_bytes()
    labels, geometry = medio.read_label(label)
    save(root, label, store, corrected(labels, 1), geometry)
    save(root, label, store, corrected(labels, 2, offset=1), geometry)

    rev = revert(root, "case_001", label, "original", store, "bob")

    assert label.read_bytes() == before
    assert rev.label_sha256 == sha(before)
    assert rev.note == "revert to original" and rev.user == "bob"
    assert store.status("case_001") == "unreviewed"
    assert store.revision_file(rev).read_bytes() == before
    assert len(store.revisions("case_001")) == 3
    assert original_path(root, label, store).read_bytes() == before
    assert temp_files(root) == []


def test_revert_to_a_revision_restores_that_revision(case):
    root, label, store = case
    labels, geometry = medio.read_label(label)
    r1 = save(root, label, store, corrected(labels, 1), geometry)
    first = label.read_bytes()
    save(root, label, store, corrected(labels, 2, offset=2), geometry)
    assert label.read_bytes() != first

    rev = revert(root, "case_001", label, r1.id, store, "bob")

    assert label.read_bytes() == first
    assert rev.label_sha256 == r1.label_sha256
    assert rev.note == f"revert to revision {r1.id}"
    assert store.status("case_001") == "corrected"
    assert store.latest_revision("case_001") == rev


def test_revert_refuses_what_it_cannot_restore(case):
    root, label, store = case
    before = label.read_bytes()
    with pytest.raises(AleatoricError, match="no original"):
        revert(root, "case_001", label, "original", store, "bob")
    labels, geometry = medio.read_label(label)
    r1 = save(root, label, store, corrected(labels, 1), geometry)
    other = store.add_revision("case_002", label_sha256=r1.label_sha256, stored_path=r1.stored_path, user="x")
    with pytest.raises(ValueError, match="belongs to case"):
        revert(root, "case_001", label, other.id, store, "bob")
    with pytest.raises(KeyError):
        revert(root, "case_001", label, 12345, store, "bob")
    now = label.read_bytes()
    store.revision_file(r1).write_bytes(b"tampered")
    with pytest.raises(AleatoricError, match="SHA-256"):
        revert(root, "case_001", label, r1.id, store, "bob")
    assert label.read_bytes() == now != before


# -- write failures ----------------------------------------------------------------------------


def _fail_replace(monkeypatch, err: int, only_to: Path | None = None):
    real_replace = os.replace

    def replace(src, dst, *a, **kw):
        if only_to is None or Path(dst) == only_to:
            raise OSError(err, os.strerror(err), str(dst))
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("first_save", [True, False], ids=["first-save", "later-save"])
def test_disk_full_leaves_previous_label_and_no_temp_files(case, monkeypatch, first_save):
    root, label, store = case
    initial = label.read_bytes()
    labels, geometry = medio.read_label(label)
    if not first_save:
        save(root, label, store, corrected(labels, 1), geometry)
    previous = label.read_bytes()
    revisions = store.revisions("case_001")
    files = all_files(root)

    _fail_replace(monkeypatch, errno.ENOSPC)
    with pytest.raises(AleatoricError) as info:
        save(root, label, store, corrected(labels, 3, offset=4), geometry)
    monkeypatch.undo()

    assert "no space left" in str(info.value)
    assert info.value.path is not None and str(info.value.path) in str(info.value)
    assert label.read_bytes() == previous
    assert temp_files(root) == []
    allowed_new = {original_path(root, label, store).relative_to(root).as_posix()}
    assert all_files(root) - files <= allowed_new | {f for f in all_files(root) if "review.sqlite" in f}
    assert store.revisions("case_001") == revisions
    kept = original_path(root, label, store)
    assert not kept.exists() or kept.read_bytes() == initial


def test_failure_publishing_the_label_drops_the_revision_copy(case, monkeypatch):
    root, label, store = case
    previous = label.read_bytes()
    labels, geometry = medio.read_label(label)
    _fail_replace(monkeypatch, errno.ENOSPC, only_to=label)
    with pytest.raises(AleatoricError) as info:
        save(root, label, store, corrected(labels), geometry)
    monkeypatch.undo()
    assert info.value.path == label
    assert label.read_bytes() == previous
    assert temp_files(root) == []
    assert not any((root / ".aleatoric" / "revisions").rglob("*.*"))
    assert store.revisions("case_001") == [] and store.status("case_001") == "unreviewed"


def test_permission_denied_is_a_clear_error(case, monkeypatch):
    root, label, store = case
    previous = label.read_bytes()
    labels, geometry = medio.read_label(label)

    def denied(path, labels, geometry):
        Path(path).write_bytes(b"half")  # a partial file the writer leaves behind
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    with pytest.raises(AleatoricError, match="permission denied"):
        save(root, label, store, corrected(labels), geometry, writer=denied)
    assert label.read_bytes() == previous
    assert temp_files(root) == []
    assert store.revisions("case_001") == []


def test_failure_to_record_is_reported_and_recovered_on_next_open(case):
    root, label, store = case
    labels, geometry = medio.read_label(label)
    store.close()  # the store cannot record anything now
    with pytest.raises(AleatoricError, match="was saved, but the review store could not record it"):
        save(root, label, store, corrected(labels), geometry)
    saved = label.read_bytes()
    with ReviewStore.for_dataset(root) as fresh:
        assert fresh.revisions("case_001") == []
        rev = reconcile_case(root, "case_001", label, fresh, "ann")
        assert rev is not None and rev.label_sha256 == sha(saved) and rev.note.startswith("recovered")
        assert fresh.status("case_001") == "corrected"
        assert fresh.revision_file(rev).read_bytes() == saved
        assert reconcile_case(root, "case_001", label, fresh, "ann") is None
    assert label.read_bytes() == saved


# -- recovery rule ---------------------------------------------------------------------------


def test_reconcile_records_outside_edits_and_leaves_untouched_cases_alone(case):
    root, label, store = case
    assert reconcile_case(root, "case_001", label, store, "ann") is None  # never corrected
    labels, geometry = medio.read_label(label)
    save(root, label, store, corrected(labels), geometry)
    assert reconcile_case(root, "case_001", label, store, "ann") is None  # in agreement

    medio.write_label(label, corrected(labels, 2, offset=3), geometry)  # edited elsewhere
    edited = label.read_bytes()
    rev = reconcile_case(root, "case_001", label, store, "ann")
    assert rev.label_sha256 == sha(edited) and store.status("case_001") == "corrected"
    assert label.read_bytes() == edited

    original = original_path(root, label, store).read_bytes()
    label.write_bytes(original)  # restored by hand
    rev = reconcile_case(root, "case_001", label, store, "ann")
    assert rev.label_sha256 == sha(original) and store.status("case_001") == "unreviewed"


def test_default_user(monkeypatch):
    monkeypatch.setenv("NAPARI_ALEATORIC_USER", "dr_who")
    assert default_user() == "dr_who"
    monkeypatch.delenv("NAPARI_ALEATORIC_USER")
    monkeypatch.setenv("LOGNAME", "login_name")
    assert default_user() == "login_name"


# -- crashes ---------------------------------------------------------------------------------

_CHILD = r"""
import sys
import numpy as np
from napari_aleatoric.data import medio
from napari_aleatoric.review.saving import save_correction
from napari_aleatoric.review.store import ReviewStore

root, label = sys.argv[1], sys.argv[2]
store = ReviewStore.for_dataset(root)
labels, geometry = medio.read_label(label)
for i in range(1000):
    new = labels.copy()
    new[..., i % 20 : i % 20 + 10, 3:30] = 1 + i % 2
    save_correction(root, "case_001", label, new, geometry,
                    user="crash", model=None, auv_before=None, store=store)
    if i == 0:  # one save done before the kill can come, however slow the machine: the kill lands on
        print("ready", flush=True)  # a dataset with history, during or between later saves
"""


def test_sigkill_mid_save_leaves_old_or_new_bytes(tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    changed_runs = 0
    for run in range(10):
        fmt = FORMATS[run % 2]
        root = tmp_path / f"run{run}"
        label = make_label_file(root, fmt)
        old = label.read_bytes()
        env = dict(os.environ, PYTHONPATH=str(Path(saving.__file__).parents[2]))
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(root), str(label)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        line = child.stdout.readline()
        assert line.strip() == b"ready", child.stderr.read().decode()
        time.sleep(rng.uniform(0.0, 0.12))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"seed={seed}: {child.stderr.read().decode()}"

        msg = f"seed={seed} run={run} fmt={fmt}"
        now = label.read_bytes()
        complete = {old} | {
            p.read_bytes() for p in (root / ".aleatoric" / "revisions").rglob("*") if p.is_file()
            and not p.name.startswith(".")
        }
        assert now in complete, msg  # the old file or one complete saved version, byte for byte
        medio.read_label(label)  # and it decodes
        kept = root / ".aleatoric" / "originals" / "labelsTr" / label.name
        if now != old:
            changed_runs += 1
            assert kept.read_bytes() == old, msg
        if kept.exists():
            assert kept.read_bytes() == old, msg

        with ReviewStore.for_dataset(root) as store:  # opens cleanly after the crash
            for rev in store.revisions("case_001"):  # no row without its file
                assert sha(store.revision_file(rev).read_bytes()) == rev.label_sha256, msg
            reconcile_case(root, "case_001", label, store, "ann")
            latest = store.latest_revision("case_001")
            if latest is None:
                assert now == old, msg
            else:
                assert latest.label_sha256 == sha(now), msg
        assert label.read_bytes() == now, msg
    assert changed_runs == 10, f"seed={seed}: a run ended with the original file although a save had finished"


def test_reconcile_removes_only_stale_temporaries(case):
    from napari_aleatoric.data.atomic import temp_path_for

    root, label, store = case
    labels, geometry = medio.read_label(label)
    save(root, label, store, corrected(labels), geometry)
    revisions = root / ".aleatoric" / "revisions" / "case_001"
    originals = original_path(root, label, store).parent
    stale = [
        temp_path_for(label),  # left by a killed atomic write of the label file
        revisions / ".pending-20240101T000000.000000Z-abcd1234.png",
        originals / f".keep-0123456789ab-{label.name}",  # (the name older versions gave it)
        temp_path_for(original_path(root, label, store)),  # left by a killed copy of the original
    ]
    fresh = [temp_path_for(label), revisions / ".pending-20990101T000000.000000Z-ffff0000.png"]
    unrelated = label.parent / ".hidden_user_file"
    two_hours_ago = time.time() - 7200
    for path in stale + fresh + [unrelated]:
        path.write_bytes(b"partial")
    for path in stale + [unrelated]:
        os.utime(path, (two_hours_ago, two_hours_ago))

    assert reconcile_case(root, "case_001", label, store, "ann") is None
    assert [p.exists() for p in stale] == [False, False, False, False]
    assert all(p.exists() for p in fresh) and unrelated.exists()
