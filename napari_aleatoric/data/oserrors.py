"""Operating-system errors in plain words ("disk full while writing ...", "no permission to ..."),
so that the CLI and the GUI report them as one line naming the path and the cause."""

from __future__ import annotations

import errno
from pathlib import Path

from .errors import AleatoricError

__all__ = ["describe_os_error", "os_problem", "as_aleatoric_error"]


def os_problem(error: OSError, action: str = "writing") -> str:
    """The cause of ``error`` in plain words, without the path (``action``: ``"writing"``, ``"reading"`` ...)."""
    code = error.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return f"disk full while {action} (no space left on the device); free some space and try again"
    if code in (errno.EACCES, errno.EPERM):
        return f"no permission for {action}; check the owner and permissions of the file and its folder"
    if code == errno.EROFS:
        return (f"the file system is read-only (e.g. a read-only mount), so {action} is impossible; "
                "put the cache elsewhere (score --cache DIR) or copy the dataset to a writable folder")
    if code == errno.EISDIR:
        return f"a folder is where a file was expected ({action}); move or rename that folder"
    if code == errno.ENOTDIR:
        return f"a file is where a folder was expected ({action}); move or rename that file"
    if code == errno.EEXIST:
        return f"a file is where a folder was expected ({action}); move or rename that file"
    if code == errno.ENOENT:
        return f"does not exist ({action})"
    if code == errno.EIO:
        return f"input/output error while {action} (failing disk or network share)"
    if code == errno.ENAMETOOLONG:
        return "the file name is too long for this file system"
    if code == errno.EMFILE or code == errno.ENFILE:
        return "too many open files; close other programs and try again"
    return f"{error.strerror or type(error).__name__} while {action}"


def describe_os_error(error: OSError, path: str | Path | None = None, action: str = "writing") -> str:
    """``"<path>: <cause in plain words>"``; the path is the one the OS named, else ``path``."""
    target = error.filename if error.filename not in (None, "") else path
    problem = os_problem(error, action)
    return f"{target}: {problem}" if target is not None else problem


def as_aleatoric_error(error: OSError, path: str | Path | None = None, action: str = "writing") -> AleatoricError:
    """An :class:`AleatoricError` naming the path and the cause of ``error`` in plain words."""
    target = error.filename if error.filename not in (None, "") else path
    try:
        target = Path(target) if target is not None else None
    except TypeError:  # a file descriptor
        target = Path(path) if path is not None else None
    return AleatoricError(target, os_problem(error, action))
