"""Background work shared by the panels: napari workers whose errors become notifications."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from napari.qt.threading import create_worker

from . import notify


@dataclass
class Failure:
    """What a worker returns/yields instead of raising, so errors become clean notifications."""

    what: str
    error: BaseException


def guarded(what: str, func: Callable, *args, **kwargs):
    """Run ``func`` (in a worker); an exception is returned as a :class:`Failure` naming ``what``."""
    try:
        return func(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - shown to the user, the viewer goes on
        return Failure(what, error)


def forward_events(what: str, events_factory: Callable):
    """Generator run in a worker: the core generator's events, or one :class:`Failure` at the end.

    The core generator is made inside the worker and closed explicitly when the worker stops it
    (``quit``), so e.g. the training loop saves ``last.pt`` at the step it had reached.
    """
    events = None
    try:
        events = events_factory()
        for event in events:
            yield event
    except Exception as error:  # noqa: BLE001 - shown to the user
        yield Failure(what, error)
    finally:
        if events is not None:
            events.close()


def safe_slot(callback: Callable) -> Callable:
    """A Qt slot that turns an unexpected exception into a notification instead of aborting Qt."""

    def slot(*args):
        try:
            callback(*args)
        except Exception as error:  # noqa: BLE001 - a bug must not take the viewer down
            notify.error("napari-aleatoric: unexpected error (please report it)", error)

    return slot


class BackgroundWork:
    """Mixin for a panel that runs work in napari workers.

    The panel provides ``self._workers`` (a set), ``self._busy`` (a set of job names) and
    ``_update_buttons()``; :meth:`_start` keeps them current.
    """

    def _start(self, func, *args, returned=None, yielded=None, finished=None, name: str | None = None, **kwargs):
        """Start ``func(*args, **kwargs)`` in a worker; the callbacks run on the GUI thread."""
        worker = create_worker(func, *args, _ignore_errors=True, **kwargs)
        if returned is not None:
            worker.returned.connect(safe_slot(returned))
        if yielded is not None:
            worker.yielded.connect(safe_slot(yielded))
        if name is not None:
            self._busy.add(name)

        def done():
            self._workers.discard(worker)
            if name is not None:
                self._busy.discard(name)
            if finished is not None:
                finished()
            self._update_buttons()

        worker.finished.connect(safe_slot(done))
        self._workers.add(worker)
        worker.start()
        self._update_buttons()
        return worker
