"""Two panels side by side in the viewer's right dock area, through Qt's public API only.

napari docks every new widget of the right area under the ones already there; the review panel and
the retraining panel stacked that way are taller than a 1000-px screen (Start, the plot and Predict
fell off it). :func:`side_by_side` splits the area horizontally instead: the first panel on the
left, the second on its right, both :data:`SIDE_BY_SIDE_WIDTH` wide, so the image canvas keeps
about 40 % of a 1600-px window next to napari's layer list. The dock of a panel is found from the
panel itself (its parent :class:`QDockWidget`, whose parent is the :class:`QMainWindow`), never
through napari's private window attributes.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QDockWidget, QMainWindow, QWidget

#: the width each of two panels side by side starts with (at least its minimum width)
SIDE_BY_SIDE_WIDTH = 310


def dock_of(widget: QWidget | None) -> QDockWidget | None:
    """The dock widget ``widget`` sits in (napari may wrap it in a container first), or ``None``."""
    while widget is not None and not isinstance(widget, QDockWidget):
        widget = widget.parentWidget()
    return widget


def _docked(dock: QDockWidget | None) -> QMainWindow | None:
    """The main window ``dock`` is docked in (not floating), else ``None``."""
    main = dock.parentWidget() if dock is not None else None
    if not isinstance(main, QMainWindow) or dock.isFloating():
        return None
    return main


def side_by_side(first: QWidget, second: QWidget, width: int = SIDE_BY_SIDE_WIDTH) -> bool:
    """Dock ``second`` to the right of ``first`` (both docked in the same main window), each
    ``width`` wide or its minimum width. Returns whether they are side by side now."""
    a, b = dock_of(first), dock_of(second)
    main = _docked(a)
    if main is None or _docked(b) is not main:
        return False
    if b in main.tabifiedDockWidgets(a):  # a tab of the first panel's dock: take it out first
        main.removeDockWidget(b)
        main.addDockWidget(main.dockWidgetArea(a), b)
        b.show()
    main.splitDockWidget(a, b, Qt.Orientation.Horizontal)
    widths = [max(width, dock.widget().minimumWidth() if dock.widget() is not None else 0) for dock in (a, b)]
    main.resizeDocks([a, b], widths, Qt.Orientation.Horizontal)
    return True
