"""The per-slice issue strip of a volume case and the "next / previous hot slice" keys.

A compact bar plot of the issue mass of every slice (:func:`~napari_aleatoric.labelquality.profile.slice_profile`),
slices holding contradicted pixels in orange, hot slices marked red above the bars, the slice shown
as a light line; clicking the strip goes to that slice. Beside it "◀ hot" / "hot ▶" and a line
naming the hot slices. Keys on the viewer: Shift-PageDown next hot slice, Shift-PageUp previous one
(PageDown / PageUp are next / previous case; ``[`` / ``]`` are napari's brush size).

The profile is computed in a worker when a volume case is shown; the strip hides itself for 2D
cases and cases without maps. The review panel creates one :class:`HotSlices`, puts it in its Case
tab, calls :meth:`HotSlices.follow` with the case shown from its ``_update_buttons`` and
:meth:`HotSlices.shutdown` when it closes; it uses the panel's ``viewer``, ``_start`` (its workers),
``current_slice()``.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QRectF, Qt, Signal
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from ..labelquality.profile import SliceProfile, next_hot_slice, slice_profile
from ..labelquality.scores import label_index
from . import notify
from .case_layers import show_slice
from .workers import Failure, guarded

#: key → (step, description)
HOT_SLICE_KEYS = {"Shift-PageDown": (+1, "next hot slice"), "Shift-PageUp": (-1, "previous hot slice")}
JOB = "profile"
#: at most this many hot slices are named in the line (all are marked on the strip)
NAMED = 12


def case_profile(view) -> SliceProfile | None:
    """The issue profile of a shown volume case (``None``: 2D or no maps). Contradicted regions only
    from label-issue maps that are current (learned from the annotation as saved)."""
    if view is None or not view.is_3d or view.heatmaps is None:
        return None
    index = None
    if view.heatmap_kind == "label issue" and not view.maps_stale and view.case.label is not None:
        index = label_index(np.asarray(view.case.label), view.class_values)
    return slice_profile(view.heatmaps, index)


class IssueStrip(QWidget):
    """Bars of per-slice issue mass; emits :attr:`slice_clicked` with the slice under a click."""

    slice_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.profile: SliceProfile | None = None
        self.current = 0
        self.setMinimumHeight(34)
        self.setMaximumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("issue mass per slice (orange: holds contradicted pixels; red marks: hot slices; "
                        "light line: the slice shown); click to go to a slice")

    def set_profile(self, profile: SliceProfile | None) -> None:
        self.profile = profile
        self.update()

    def set_current(self, index: int) -> None:
        if index != self.current:
            self.current = index
            self.update()

    def slice_at(self, x: float) -> int:
        depth = self.profile.depth if self.profile is not None else 1
        return int(np.clip(x / max(1, self.width()) * depth, 0, depth - 1))

    def paintEvent(self, _event):  # noqa: N802 (Qt)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 36))
        profile = self.profile
        if profile is None or not profile.depth:
            painter.end()
            return
        width, height = float(self.width()), float(self.height())
        step = width / profile.depth
        top = 6.0  # room for the hot-slice marks
        low = float(np.median(profile.mass))
        excess = np.clip(profile.mass - low, 0, None)
        scale = float(excess.max()) or 1.0
        for z in range(profile.depth):
            bar = (height - top) * (0.08 + 0.92 * excess[z] / scale) if profile.mass[z] > 0 else 0.0
            colour = QColor(255, 140, 0) if profile.contradicted[z] > 0 else QColor(120, 120, 140)
            painter.fillRect(QRectF(z * step, height - bar, max(1.0, step - (1 if step > 3 else 0)), bar), colour)
        for z in profile.hot:
            painter.fillRect(QRectF(z * step, 0, max(2.0, step), top - 1), QColor(230, 40, 40))
        painter.setPen(QPen(QColor(220, 240, 255), 1.5))
        x = (self.current + 0.5) * step
        painter.drawLine(int(round(x)), 0, int(round(x)), int(height))
        painter.end()

    def mousePressEvent(self, event):  # noqa: N802 (Qt)
        if self.profile is not None:
            position = event.position().x() if hasattr(event, "position") else event.x()
            self.slice_clicked.emit(self.slice_at(position))


class HotSlices(QWidget):
    """The strip, the hot-slice buttons and keys of a review panel (see the module docstring)."""

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.viewer = panel.viewer
        self.profile: SliceProfile | None = None
        self._view = None  # the case the profile is (being) computed for
        self._token = 0
        self.strip = IssueStrip()
        self.previous_button = QPushButton("◀ hot")
        self.previous_button.setToolTip("previous hot slice (Shift-PageUp)")
        self.next_button = QPushButton("hot ▶")
        self.next_button.setToolTip("next hot slice (Shift-PageDown)")
        self.label = QLabel("")
        self.label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        row = QHBoxLayout()
        row.addWidget(self.previous_button)
        row.addWidget(self.label, 1)
        row.addWidget(self.next_button)
        layout.addLayout(row)
        layout.addWidget(self.strip)
        self.previous_button.clicked.connect(self.previous_hot)
        self.next_button.clicked.connect(self.next_hot)
        self.strip.slice_clicked.connect(self.go_to)
        self.viewer.dims.events.current_step.connect(self._dims_moved)
        self._bound: list[str] = []
        for key, (step, _what) in HOT_SLICE_KEYS.items():
            def handler(_viewer, _step=step):
                self.step(_step)
            try:
                self.viewer.bind_key(key, handler, overwrite=True)
                self._bound.append(key)
            except (TypeError, ValueError) as error:  # pragma: no cover - napari API drift
                notify.warning(f"napari-aleatoric: cannot bind {key}: {error}")
        self.setVisible(False)

    # ------------------------------------------------------------------ the case shown

    def follow(self, view) -> None:
        """The panel shows ``view`` (a :class:`~.case_view.CaseView` or ``None``): compute its profile
        once (in a worker), or hide for a 2D case / no case."""
        if view is self._view:
            return
        self._view, self.profile = view, None
        self._token += 1
        token = self._token
        self.strip.set_profile(None)
        if view is None or not view.is_3d or view.heatmaps is None:
            self.setVisible(False)
            return
        self.label.setText("issue profile…")
        self.setVisible(True)

        def computed(result):
            if token != self._token:
                return  # another case is shown now
            if isinstance(result, Failure):
                notify.error("Cannot compute the per-slice issue profile", result.error)
                self.label.setText("")
                return
            self.profile = result
            self.strip.set_profile(result)
            self._dims_moved()

        self.panel._start(guarded, "Issue profile failed", case_profile, view, returned=computed, name=JOB)

    def _dims_moved(self, _event=None) -> None:
        if self.profile is None:
            return
        current = self.panel.current_slice()
        self.strip.set_current(current)
        hot = self.profile.hot
        if not hot:
            self.label.setText("no hot slices")
            return
        named = ", ".join(str(z) for z in hot[:NAMED]) + (f", … ({len(hot)})" if len(hot) > NAMED else "")
        here = f" — on hot slice {hot.index(current) + 1} of {len(hot)}" if current in hot else ""
        self.label.setText(f"hot slices: {named}{here}")
        self.previous_button.setEnabled(next_hot_slice(hot, current, -1) is not None)
        self.next_button.setEnabled(next_hot_slice(hot, current, +1) is not None)

    # ------------------------------------------------------------------ moving

    def go_to(self, index: int) -> None:
        """Show slice ``index`` of the case."""
        view = self.panel.current
        if view is None or not view.is_3d:
            return
        show_slice(self.viewer, view, index)

    def step(self, step: int) -> int | None:
        """Go to the next (``step`` > 0) or previous hot slice; returns it (``None``: there is none)."""
        if self.profile is None or self._view is not self.panel.current:
            return None
        target = next_hot_slice(self.profile.hot, self.panel.current_slice(), step)
        if target is not None:
            self.go_to(target)
        return target

    def next_hot(self) -> int | None:
        return self.step(+1)

    def previous_hot(self) -> int | None:
        return self.step(-1)

    def shutdown(self) -> None:
        """Unbind the keys and stop following the viewer (the panel closes)."""
        for key in self._bound:
            try:
                self.viewer.bind_key(key, None)
            except (TypeError, ValueError, KeyError):
                pass
        self._bound = []
        try:
            self.viewer.dims.events.current_step.disconnect(self._dims_moved)
        except (TypeError, ValueError, RuntimeError):
            pass
