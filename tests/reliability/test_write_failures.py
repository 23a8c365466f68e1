"""Disk full and permission denied at every I/O call a save makes, one at a time: the save
reports the error naming the file, the previous label file is intact byte for byte, the store is
unchanged and no temporary or unreferenced file is left behind."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from napari_aleatoric.data import medio
from napari_aleatoric.data.errors import AleatoricError
from napari_aleatoric.review.saving import original_path, revert, save_correction
from napari_aleatoric.review.store import ReviewStore

CASE = "case_001"
#: the os-level calls through which every byte of a save reaches the disk
FAULTABLE = ("open", "write", "fsync", "replace", "link", "mkdir", "rename", "unlink")


def make_label(root: Path, ending: str) -> Path:
    rng = np.random.default_rng(2)
    path = root / "labelsTr" / f"{CASE}{ending}"
    path.parent.mkdir(parents=True)
    if ending == ".png":
        Image.fromarray(rng.integers(0, 3, (30, 40)).astype(np.uint8)).save(path)
    else:
        nib.save(nib.Nifti1Image(rng.integers(0, 3, (40, 30, 5)).astype(np.uint8), np.eye(4)), str(path))
    return path


class Faults:
    """Make the ``fail_at``-th faultable os call (counted from 0) raise ``OSError(code)``."""

    def __init__(self, monkeypatch, fail_at: int, code: int):
        self.calls = 0
        self.fail_at, self.code = fail_at, code
        self.failed_call: str | None = None
        for name in FAULTABLE:
            monkeypatch.setattr(os, name, self._wrap(name, getattr(os, name)))

    def _wrap(self, name, real):
        def faulty(*args, **kwargs):
            if name == "unlink":  # cleanup must still work; removing never fills a disk
                return real(*args, **kwargs)
            if name == "open" and len(args) > 1 and not args[1] & (os.O_WRONLY | os.O_RDWR):
                return real(*args, **kwargs)  # reading (e.g. fsync of a folder) is not a write
            index, self.calls = self.calls, self.calls + 1
            if index == self.fail_at:
                self.failed_call = name
                raise OSError(self.code, os.strerror(self.code), str(args[0]) if args else None)
            return real(*args, **kwargs)
        return faulty


def leftovers(root: Path, store: ReviewStore) -> list[str]:
    """Temporaries anywhere, and revision copies no row refers to."""
    referenced = {store.revision_file(r) for r in store.revisions(CASE)}
    out = []
    for p in root.rglob("*"):
        if not p.is_file() or p.name.startswith("review.sqlite"):
            continue
        if p.name.startswith(".") or ".partial" in p.name or ".pending" in p.name or ".keep" in p.name:
            out.append(str(p.relative_to(root)))
        elif "revisions" in p.parts and p not in referenced:
            out.append(f"unreferenced {p.relative_to(root)}")
    return out


@pytest.mark.parametrize("ending", [".nii.gz", ".png"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_failure_at_any_write_keeps_the_previous_label(tmp_path, monkeypatch, ending, code):
    root = tmp_path / "Dataset001"
    label = make_label(root, ending)
    first = label.read_bytes()
    store = ReviewStore.for_dataset(root)
    labels, geometry = medio.read_label(label)
    failures = 0
    for fail_at in range(200):
        old = label.read_bytes()
        rows = store.revisions(CASE)
        new = labels.copy()
        new.reshape(-1)[:8] = [(fail_at >> i) & 1 for i in range(8)]
        with monkeypatch.context() as patch:
            faults = Faults(patch, fail_at, code)
            try:
                save_correction(root, CASE, label, new, geometry, user="u", model=None, auv_before=None, store=store)
                error = None
            except AleatoricError as raised:
                error = raised
        msg = f"fault at call {fail_at} ({faults.failed_call}, {errno.errorcode[code]})"
        if faults.failed_call is None:  # every call of a save succeeded: all faults were tried
            assert error is None and fail_at > 5
            break
        if error is None:  # the fault hit a call after the commit point whose failure is harmless
            assert label.read_bytes() != old and len(store.revisions(CASE)) == len(rows) + 1, msg
        else:
            failures += 1
            expected = "no space left" if code == errno.ENOSPC else "permission denied"
            assert expected in str(error) and error.path is not None, f"{msg}: {error}"
            assert f"the label file {label} was not changed" in str(error), f"{msg}: {error}"
            assert label.read_bytes() == old, msg
            assert store.revisions(CASE) == rows, msg
        assert leftovers(root, store) == [], msg
        kept = original_path(root, label, store)
        assert not kept.exists() or kept.read_bytes() == first, msg
    else:
        pytest.fail("a save made more than 200 faultable calls")
    assert failures >= 6, f"only {failures} faults surfaced; the injection missed the save's writes"
    print(f"\nwrite failures ({errno.errorcode[code]}, {ending}): {failures} of {fail_at} injected faults "
          "reported, label intact, nothing left behind")
    # the same for a revert to the original
    rows = store.revisions(CASE)
    before = label.read_bytes()
    with monkeypatch.context() as patch:
        Faults(patch, 2, code)
        with pytest.raises(AleatoricError, match="was not changed"):
            revert(root, CASE, label, "original", store, "u")
    assert label.read_bytes() == before and store.revisions(CASE) == rows and leftovers(root, store) == []
    store.close()


def test_a_full_disk_while_the_writer_encodes_leaves_nothing(tmp_path, monkeypatch):
    """The encoder itself (nibabel) dies half-way through writing the temporary file."""
    root = tmp_path / "Dataset001"
    label = make_label(root, ".nii.gz")
    old = label.read_bytes()
    labels, geometry = medio.read_label(label)

    def half_written(img, filename):
        Path(filename).write_bytes(b"\x1f\x8b partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(filename))

    monkeypatch.setattr(nib, "save", half_written)
    with ReviewStore.for_dataset(root) as store:
        with pytest.raises(AleatoricError, match="no space left") as info:
            save_correction(root, CASE, label, labels * 0, geometry, user="u", model=None, auv_before=None,
                            store=store)
        assert info.value.path is not None
        assert label.read_bytes() == old and store.revisions(CASE) == []
        assert leftovers(root, store) == []
