"""The review panel's text about the case shown: its summary (scores, status, map state) and revision history.

:func:`summary_html` and :func:`revision_text` are plain functions of a
:class:`~napari_aleatoric.gui.case_view.CaseView` and a
:class:`~napari_aleatoric.review.store.Revision`; :class:`CaseSummary` holds the two widgets that
show them (placed by the panel's Case tab).
"""

from __future__ import annotations

import html
import math

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QListWidget, QListWidgetItem, QSizePolicy

from ..data.errors import AleatoricError
from ..pipelines.table import unjudged_classes
from ..review.store import Revision
from . import notify
from .case_view import CaseView, class_colour


def _finite(value) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def _number(row: dict, key: str, style: str = ".3f") -> str:
    value = row.get(key, math.nan)
    return format(value, style) if _finite(value) else "–"


def _headline(view: CaseView, row: dict, status: str, total: int, dirty: bool) -> str:
    parts = [f"<b>{view.case_id}</b>"]
    if row:
        parts.append(f"rank {row['rank']} of {total}")
        issue = row.get("label_issue", math.nan)
        if _finite(issue):
            parts.append(f"label issue <b>{issue:.3f}</b>")
        contradicted = row.get("contradicted", math.nan)
        if _finite(contradicted):
            parts.append(f"{100 * contradicted:.1f} % of the drawing contradicted")
        structure = row.get("worst_structure", math.nan)
        if _finite(structure):
            parts.append(f"worst structure {100 * structure:.0f} % contradicted")
        outline = row.get("worst_outline", math.nan)
        if _finite(outline):
            parts.append(f"worst outline {100 * outline:.0f} % contradicted")
        region = row.get("worst_region_voxels", math.nan)
        if _finite(region) and region > 0:
            where = f" at slice {row['worst_region_slice']:.0f}" if view.is_3d else ""
            parts.append(f"worst region {region:.0f} {'voxels' if view.is_3d else 'px'}{where}")
        parts.append(f"AUV {row['auv']:.3f}" if math.isfinite(row["auv"]) else "AUV –")
        if row.get("flagged"):
            reason = row.get("flag_reason")
            why = f": {html.escape(reason)}" if isinstance(reason, str) and reason else ""
            parts.append(f"<span style='color:#ff9d00'><b>flagged</b>{why}</span>")
    else:
        parts.append("not scored")
    parts.append(f"status <b>{status}</b>")
    if dirty:
        parts.append("<i>unsaved edits</i>")
    return " · ".join(parts)


def _class_table(view: CaseView, row: dict) -> str:
    worst = view.worst_class()
    unjudged = unjudged_classes(row, view.class_names)
    cells = ["<tr><th align='left'>class</th><th>contradicted</th><th>AUV</th><th>SPS</th><th>FM Dice</th></tr>"]
    for name, value in zip(view.class_names, view.class_values):
        swatch = f"<span style='color:{class_colour(value)}'>■</span>"
        label = f"<b>{name}</b> (worst)" if name == worst and row else name
        share = row.get("contradicted_" + name, math.nan)
        share_text = unjudged.get(name) or (f"{100 * share:.1f} %" if _finite(share) else "–")
        cells.append(f"<tr><td>{swatch} {label}</td><td align='right'>{share_text}</td>"
                     f"<td align='right'>{_number(row, 'auv_' + name)}</td>"
                     f"<td align='right'>{_number(row, 'sps_' + name, '.3g')}</td>"
                     f"<td align='right'>{_number(row, 'dice_fm_' + name)}</td></tr>")
    return "<table cellspacing='0' cellpadding='2'>" + "".join(cells) + "</table>"


def _map_state(view: CaseView) -> str | None:
    if view.heatmaps is None:
        return "<i>No maps yet: score the dataset.</i>"
    if view.heatmap_kind == "uncertainty":
        return ("<i>Heatmaps: the model's uncertainty (label-quality maps appear after scoring "
                "or Refresh priorities).</i>")
    if view.maps_stale:
        return "<i>Maps are out of date (the annotation changed since scoring).</i>"
    if view.fm_stale:
        return ("<i>Label-issue maps are current; the FM segmentation and AUV are from before the "
                "annotation changed (Score updates them).</i>")
    return None


def summary_html(view: CaseView, status: str, total: int, dirty: bool) -> str:
    """The summary of a case (rich text): rank of ``total``, scores, status and unsaved edits, the
    per-class table, what the maps shown are, and for volumes the slices and spacing."""
    row = view.row or {}
    lines = [_headline(view, row, status, total, dirty), _class_table(view, row)]
    state = _map_state(view)
    if state is not None:
        lines.append(state)
    if view.is_3d:
        lines.append(f"Volume {view.case.image.shape[0]} slices; spacing "
                     f"{' × '.join(f'{s:g}' for s in view.spacing)} mm (slider: axis 0).")
    return "<br>".join(lines)


def revision_text(revision: Revision) -> str:
    """One line of the revision history: id, time, user, note, label issue before → after, AUV after."""
    def percent(value):
        return "–" if value is None else f"{100 * value:.1f} %"

    issue = "" if revision.issue_before is None and revision.issue_after is None else \
        f", label issue {percent(revision.issue_before)} → {percent(revision.issue_after)}"
    auv = "" if revision.auv_after is None else f", AUV after {revision.auv_after:.3f}"
    return f"#{revision.id} {revision.created_at[:19].replace('T', ' ')} {revision.user or ''}" \
           f"{' — ' + revision.note if revision.note else ''}{issue}{auv}"


class CaseSummary:
    """The summary label and the revision list of the case shown (``label``, ``history``)."""

    def __init__(self):
        self.label = QLabel("Open a dataset to start.")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.history = QListWidget()
        self.history.setMinimumHeight(60)

    def show(self, view: CaseView, status: str, total: int, dirty: bool) -> None:
        """Show the summary of ``view`` (see :func:`summary_html`)."""
        self.label.setText(summary_html(view, status, total, dirty))

    def show_text(self, text: str) -> None:
        """Show ``text`` instead of a summary (no case, or a case that cannot be opened)."""
        self.label.setText(text)

    def clear(self, has_dataset: bool) -> None:
        """No case shown: say what to do, empty the history."""
        self.label.setText("Select a case in the queue." if has_dataset else "Open a dataset to start.")
        self.history.clear()

    def show_history(self, store, case_id: str | None) -> None:
        """List the revisions of ``case_id`` from ``store``, newest first (empty without either)."""
        self.history.clear()
        if case_id is None or store is None:
            return
        try:
            revisions = store.revisions(case_id)
        except AleatoricError as error:
            notify.error("Cannot read the revision history", error)
            return
        for revision in reversed(revisions):
            item = QListWidgetItem(revision_text(revision))
            item.setData(Qt.ItemDataRole.UserRole, revision.id)
            self.history.addItem(item)

    def selected_revision(self) -> int | None:
        """The id of the revision selected in the list, or ``None``."""
        item = self.history.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))
