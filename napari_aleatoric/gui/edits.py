"""Follow the edits of an annotation layer: whether it differs from the saved annotation, as it changes.

napari's labels layer tells of a brush stroke, a fill, an eraser stroke or a ``data_setitem`` with
``events.paint``, and of an undo / redo (and of every re-slice) with ``events.set_data``; a new
array with ``events.data``. Each one (re)starts a short single-shot timer, and when the timer fires
the comparison runs once: a stroke or a slider drag does not compare a whole volume per event.
The callback runs only when the answer changes (``True``: unsaved edits appeared, ``False``: the
layer is back to the saved state, by undo or by a save).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from qtpy.QtCore import QObject, QTimer

#: the labels layer's events that may change its data
EDIT_EVENTS = ("paint", "set_data", "data")


class EditWatch(QObject):
    """Calls ``changed(dirty)`` when ``is_dirty()`` changes after an edit of a followed layer.

    Args:
        is_dirty: whether the annotation differs from the saved one (the panel's rule).
        changed: called with the new answer, in the GUI thread.
        delay_ms: quiet time after the last edit event before comparing.
    """

    def __init__(self, is_dirty: Callable[[], bool], changed: Callable[[bool], None], parent: QObject | None = None,
                 delay_ms: int = 120):
        super().__init__(parent)
        self._is_dirty, self._changed = is_dirty, changed
        self._shown: bool | None = None
        self._layers: weakref.WeakSet = weakref.WeakSet()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.check)

    def follow(self, layer) -> None:
        """Listen to a labels layer's edits (once per layer)."""
        if layer in self._layers:
            return
        for name in EDIT_EVENTS:
            getattr(layer.events, name).connect(self._poke)
        self._layers.add(layer)

    def shown(self, dirty: bool) -> None:
        """The view now shows ``dirty`` (it redrew for another reason): no callback for it."""
        self._shown = dirty

    def check(self) -> None:
        """Compare now; call ``changed`` if the answer is not the one shown."""
        self._timer.stop()
        dirty = bool(self._is_dirty())
        if dirty != self._shown:
            self._shown = dirty
            self._changed(dirty)

    def _poke(self, _event=None) -> None:
        self._timer.start()

    def close(self) -> None:
        """Stop listening (the panel closes; the layers may stay in the viewer)."""
        self._timer.stop()
        for layer in list(self._layers):
            for name in EDIT_EVENTS:
                getattr(layer.events, name).disconnect(self._poke)
        self._layers = weakref.WeakSet()
