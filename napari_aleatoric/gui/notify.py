"""User-facing messages: every problem becomes a napari notification, never a crash."""

from __future__ import annotations

import logging

from napari.utils.notifications import show_error, show_info, show_warning

from ..data.errors import AleatoricError

_log = logging.getLogger("napari_aleatoric.gui")


def describe(error: BaseException) -> str:
    """Text for a notification: ``"<file>: <problem>"`` for our errors, type and message otherwise."""
    if isinstance(error, (AleatoricError, ValueError, KeyError, FileNotFoundError)):
        text = str(error)
        return text.strip("'\"") if isinstance(error, KeyError) else text
    if isinstance(error, OSError) and error.errno is not None:  # disk full, permission, read-only ...
        from ..data.oserrors import describe_os_error  # noqa: PLC0415

        return describe_os_error(error)
    if isinstance(error, MemoryError):
        return "not enough memory for this operation (close other programs, or downsample/tile the image)"
    return f"{type(error).__name__}: {error}"


def error(message: str, exc: BaseException | None = None) -> None:
    """Show an error notification (``exc`` is appended and logged with its traceback)."""
    text = f"{message}: {describe(exc)}" if exc is not None else message
    if exc is not None and not isinstance(exc, (AleatoricError, ValueError, OSError)):
        _log.error(text, exc_info=exc)
    show_error(text)


def warning(message: str) -> None:
    """Show a warning notification."""
    show_warning(message)


def info(message: str) -> None:
    """Show an information notification."""
    show_info(message)
