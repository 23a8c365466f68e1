"""Atomic file writes: a temporary file in the same folder, fsync, ``os.replace``, fsync the folder.

The one module that writes files durably: :func:`atomic_write_bytes` / :func:`atomic_writer` replace
a file, :func:`atomic_create` creates one that must never be replaced, :func:`write_new_file` and
:func:`fsync_dir` are the steps of both (used by ``review.saving`` for its revision copies).

The temporary file is named ``.<name>.<random>.partial<suffixes>``: it starts with a dot (dataset
listings ignore dot-files) and keeps the real suffixes (``.nii.gz``, ``.png``...) so that writers
which choose their format or compression from the file name (nibabel, Pillow, tifffile) still do
the right thing. If anything fails the temporary file is removed and the previous file (if any)
is left byte-for-byte intact.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".xz", ".zst"}


def full_suffix(path: str | Path) -> str:
    """The file ending of ``path`` including a compression suffix: ``"x.nii.gz"`` -> ``".nii.gz"``."""
    path = Path(path)
    suffixes = path.suffixes
    if len(suffixes) >= 2 and suffixes[-1].lower() in _COMPRESSION_SUFFIXES:
        return "".join(suffixes[-2:])
    return path.suffix


def temp_path_for(path: str | Path) -> Path:
    """A fresh, unused-looking temporary path beside ``path`` (not created)."""
    path = Path(path)
    suffix = full_suffix(path)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    stem = stem[:150]  # keep the temporary name under the usual 255-byte limit
    return path.with_name(f".{stem}.{secrets.token_hex(6)}.partial{suffix}")


def temp_name_pattern(path: str | Path) -> re.Pattern:
    """The names of the temporaries :func:`temp_path_for` gives ``path`` (to find those a killed
    process left: ``.<stem>.<12 hex digits>.partial<ending>``)."""
    path = Path(path)
    suffix = full_suffix(path)
    stem = (path.name[: len(path.name) - len(suffix)] if suffix else path.name)[:150]
    return re.compile(rf"\.{re.escape(stem)}\.[0-9a-f]{{12}}\.partial{re.escape(suffix)}")


def fsync_dir(folder: str | Path) -> None:
    """fsync a folder so that a rename or a new file in it is durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[Path]:
    """Write ``path`` atomically.

    Yields the path of an empty temporary file in the same folder with the same suffix(es); the
    caller writes the complete content there (by name, e.g. ``nibabel.save(img, tmp)``). When the
    ``with`` block finishes without an exception the temporary file is fsynced, renamed over
    ``path`` with :func:`os.replace`, and the folder is fsynced. On any exception the temporary
    file is removed, ``path`` is left untouched and the exception propagates.

    The new file gets the permission bits of the file it replaces (or the default permissions
    allowed by the umask for a new file).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"{tmp}: the temporary file disappeared before it was committed")
        with open(tmp, "rb+") as handle:
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            # a write through a file object names no file: name the one being written
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    fsync_dir(folder)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace the content of ``path`` with ``data`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Replace the content of ``path`` with ``text`` atomically (see :func:`atomic_writer`)."""
    atomic_write_bytes(path, text.encode(encoding))


def write_new_file(path: str | Path, data: bytes) -> None:
    """Create ``path`` (it must not exist: ``FileExistsError``), write all of ``data``, fsync it.

    Not atomic by itself: a crash can leave a part; write a temporary name and publish it with
    ``os.replace`` (or :func:`atomic_create`). The folder is not fsynced.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_create(path: str | Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` atomically, unless it exists: an existing file is never
    replaced, not even one another process creates meanwhile.

    ``data`` goes to a temporary file beside ``path`` (named by :func:`temp_path_for`), fsynced,
    then hard-linked to ``path`` (``os.link`` refuses to overwrite); on file systems without hard
    links (FAT, some network shares) it is renamed there if ``path`` still does not exist. The
    folder is fsynced; the temporary file is always removed.

    Returns:
        whether this call created ``path``.
    Raises:
        OSError: the write failed (nothing is left behind; ``path`` is untouched).
    """
    path = Path(path)
    if path.exists():
        return False
    tmp = temp_path_for(path)
    try:
        write_new_file(tmp, data)
        try:
            os.link(tmp, path)
            created = True
        except FileExistsError:
            created = False
        except OSError:
            created = not path.exists()
            if created:
                os.replace(tmp, path)
        fsync_dir(path.parent if str(path.parent) else Path("."))
        return created
    finally:
        _unlink_quietly(tmp)
