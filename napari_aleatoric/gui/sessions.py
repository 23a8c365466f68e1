"""One review session per viewer: how the panels of a viewer find the same :class:`ReviewSession`.

A small registry (a :class:`weakref.WeakKeyDictionary` viewer → session), so the panels never look
for each other through napari's private window attributes: the review panel and the retraining
panel of a viewer both call :func:`session_for` and subscribe to the session's events. No Qt here.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from ..session import ReviewSession

_SESSIONS: WeakKeyDictionary = WeakKeyDictionary()


def session_for(viewer, create: bool = True) -> ReviewSession | None:
    """The review session of ``viewer`` (made on first use when ``create``; else ``None`` if none).

    The session lives as long as the viewer object does.
    """
    session = _SESSIONS.get(viewer)
    if session is None and create:
        session = _SESSIONS[viewer] = ReviewSession()
    return session
