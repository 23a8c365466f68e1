"""The ranked review queue: a sortable table of cases with status / flagged / class filters."""

from __future__ import annotations

import math

from qtpy.QtCore import QEvent, QObject, Qt, Signal
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..labelquality.flag import FLAG_RULE
from ..pipelines.table import TOO_LITTLE_DRAWN, TOO_RARE, unjudged_classes, unjudged_explanation
from ..review.store import STATUSES

ALL = "all"
FLAG_BRUSH = QBrush(QColor(255, 140, 0, 110))  # translucent orange: readable in light and dark themes
SORT_ROLE = Qt.ItemDataRole.UserRole
CASE_ROLE = Qt.ItemDataRole.UserRole + 1


class SortItem(QTableWidgetItem):
    """A cell that sorts by a numeric/text key (NaN and missing values always last)."""

    def __init__(self, text: str, key):
        super().__init__(text)
        self.setData(SORT_ROLE, key)
        self.setFlags(self.flags() & ~Qt.ItemFlag.ItemIsEditable)

    def __lt__(self, other):  # noqa: D105
        mine, theirs = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)):
            mine_nan, theirs_nan = math.isnan(mine), math.isnan(theirs)
            if mine_nan or theirs_nan:
                ascending = self.tableWidget() is None or \
                    self.tableWidget().horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
                return (not mine_nan) == ascending if mine_nan != theirs_nan else False
            return mine < theirs
        return str(mine) < str(theirs)


def _number(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


def _fmt(value: float, digits: int = 3) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def _percent(share: float) -> str:
    """A share in ``[0, 1]`` as ``"12.3 %"`` (empty for NaN)."""
    return "" if math.isnan(share) else f"{100 * share:.1f} %"


def worst_class(row: dict | None, class_names: list[str]) -> str:
    """The class most likely mislabelled in a score-table row: highest ``label_issue_<class>``, or
    highest per-class AUV when label quality did not run ('' when none)."""
    if not row:
        return ""
    for prefix in ("label_issue_", "auv_"):
        values = [(_number(row.get(f"{prefix}{n}")), n) for n in class_names]
        values = [(v, n) for v, n in values if not math.isnan(v)]
        if values:
            return max(values)[1]
    return ""


def flag_tooltip(row: dict) -> str:
    """The flagged cell's tooltip: why this case is flagged (the row's ``flag_reason``), then the rule."""
    reason = row.get("flag_reason") if row.get("flagged") else ""
    why = f"flagged because: {reason}\n\n" if isinstance(reason, str) and reason else ""
    return f"{why}flagged: likely mislabelled ({FLAG_RULE})"


def _same_key(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


class _BulkEdit:
    """Many cell changes as one: sorting and column fitting are paused, then done once.

    With sorting on, Qt re-sorts after every changed cell, and a header in ResizeToContents mode
    re-measures a whole column after every changed cell: filling the queue cell by cell cost
    O(rows²) (hundreds of milliseconds for 20 cases, on the GUI thread, at every refresh).
    """

    def __init__(self, queue: "QueueTable"):
        self.queue = queue

    def __enter__(self):
        table = self.queue.table
        table.blockSignals(True)
        table.setSortingEnabled(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        return self

    def __exit__(self, *exc):
        queue, table = self.queue, self.queue.table
        try:
            sort_column, sort_order = queue._sort
            if sort_column < 0 or sort_column >= table.columnCount():
                sort_column, sort_order = 0, Qt.SortOrder.AscendingOrder
            table.setSortingEnabled(True)
            table.sortItems(sort_column, sort_order)
            table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            queue.apply_filters()
            if queue._current is not None:
                queue._select_row_of(queue._current)
        finally:
            table.blockSignals(False)
        return False


#: the rank-by choices shown → the core's ``rank_by`` keys (``pipelines.table.RANK_BY``)
RANK_BY_CHOICES = {"issue rank": "issue-rank", "label issue": "label-issue", "contradicted": "contradicted",
                   "worst region": "worst-region",
                   "AUV": "auv"}


#: keys of the table that move one case (the review panel's next / previous case), not one page
STEP_KEYS = {Qt.Key.Key_PageDown: +1, Qt.Key.Key_PageUp: -1}


class QueueTable(QWidget):
    """Ranked cases with filters; emits :attr:`case_selected` with the case id,
    :attr:`rank_by_chosen` with a ``rank_by`` key when the user ranks by another column, and
    :attr:`step_requested` (+1 / -1) for PageDown / PageUp in the table: the documented next /
    previous case keys move one case, as on the canvas, instead of Qt's page jump."""

    case_selected = Signal(str)
    rank_by_chosen = Signal(str)
    step_requested = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.class_names: list[str] = []
        self._rows: dict[str, dict | None] = {}
        self._statuses: dict[str, str] = {}
        self._current: str | None = None
        #: case id -> its row's cells (they move with the row when the table sorts) and what they show
        self._items: dict[str, list[SortItem]] = {}
        self._shown: dict[str, tuple[list[tuple[str, object]], bool]] = {}

        self.status_filter = QComboBox()
        self.status_filter.addItems([ALL, *STATUSES])
        self.status_filter.setToolTip("Show only cases with this review status")
        self.class_filter = QComboBox()
        self.class_filter.addItem(ALL)
        self.class_filter.setToolTip("Show only cases whose annotation contains this class")
        self.flagged_only = QCheckBox("flagged only")
        self.flagged_only.setToolTip(f"Show only flagged cases, likely mislabelled: {FLAG_RULE}")
        self.count_label = QLabel("")
        self.rank_by = QComboBox()
        self.rank_by.addItems(list(RANK_BY_CHOICES))
        self.rank_by.setEnabled(False)
        self.rank_by.setToolTip("The column the rank follows (stored with the scores). issue rank: the flagged cases "
                                "first, each group by the mean of the case's percentile ranks of label issue and of "
                                "its worst class's contradicted share (the default, the measured best over both "
                                "benchmarks and the issue-16 sets); label issue: the learned label "
                                "quality, drawn and missed; contradicted: the share of the "
                                "drawing it doubts (better where many cases are badly over-drawn); worst region: pixels of the "
                                "largest contradicted region (independent of the case's size); AUV: the paper's "
                                "difficulty score")

        # two short rows: the panel may be ~300 px wide beside the retraining panel
        filters = QVBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        for widgets in ((QLabel("rank by"), self.rank_by, QLabel("status"), self.status_filter),
                        (QLabel("class"), self.class_filter, self.flagged_only)):
            row = QHBoxLayout()
            for widget in widgets:
                row.addWidget(widget)
            row.addStretch(1)
            filters.addLayout(row)

        self.table = QTableWidget(0, 0)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setAlternatingRowColors(False)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.setMinimumHeight(110)
        self._sort = (0, Qt.SortOrder.AscendingOrder)  # rank, most doubtful first
        self.table.setToolTip("Cases ranked by label issue, most likely mislabelled first (rank 1 = review first). Click a header to "
                              "sort; flagged cases are highlighted.")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count_label)

        self.status_filter.currentTextChanged.connect(self.apply_filters)
        self.class_filter.currentTextChanged.connect(self.apply_filters)
        self.flagged_only.toggled.connect(self.apply_filters)
        self.rank_by.textActivated.connect(lambda text: self.rank_by_chosen.emit(RANK_BY_CHOICES[text]))
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.installEventFilter(self)
        self.table.horizontalHeader().sortIndicatorChanged.connect(self._on_sort)

    def set_rank_by(self, rank_by: str | None) -> None:
        """Show the stored ranking (a ``rank_by`` key; ``None``: not scored, the choice is disabled)."""
        self.rank_by.setEnabled(rank_by is not None)
        if rank_by is not None:
            self.rank_by.setCurrentText(next(t for t, k in RANK_BY_CHOICES.items() if k == rank_by))

    def _on_sort(self, column: int, order) -> None:
        if column >= 0:
            self._sort = (column, order)

    # -- content ---------------------------------------------------------------------------

    def columns(self) -> list[str]:
        """Header labels in display order."""
        per_class = [n.replace("_", chr(10)) for n in self.class_names]
        return (["rank", "case", "label\nissue", "contra-\ndicted", "worst\nclass"]
                + [f"contra-\ndicted\n{n}" for n in per_class]
                + ["AUV"] + [f"AUV\n{n}" for n in per_class] + ["FM\ndisagr.", "status", "flagged"])

    def clear(self) -> None:
        """Forget the cases shown (another dataset opens): the next :meth:`set_cases` builds its rows
        anew, in that dataset's order, even when the case ids are the same."""
        self._rows, self._items, self._shown = {}, {}, {}
        self.table.setRowCount(0)

    def set_cases(self, case_ids: list[str], class_names: list[str], rows: dict[str, dict],
                  statuses: dict[str, str]) -> None:
        """Show every case of the dataset; ``rows`` are the scored ones (case id → table row)."""
        columns_changed = class_names != self.class_names
        if columns_changed:
            self.class_names = list(class_names)
            self.class_filter.blockSignals(True)
            self.class_filter.clear()
            self.class_filter.addItems([ALL, *class_names])
            self.class_filter.blockSignals(False)
        same_cases = list(case_ids) == list(self._rows) and len(self._items) == len(self._rows)
        self._rows = {case_id: rows.get(case_id) for case_id in case_ids}
        self._statuses = dict(statuses)
        if same_cases and not columns_changed:
            self._update_rows()
        else:
            self._rebuild()

    def _row_cells(self, case_id: str) -> tuple[list[tuple[str, object]], bool]:
        """What a case's row shows: ``(text, sort key)`` per column, and whether it is flagged."""
        row = self._rows.get(case_id) or {}
        rank = _number(row.get("rank"))
        auv = _number(row.get("auv"))
        status = self._statuses.get(case_id, "unreviewed")
        flagged = bool(row.get("flagged", False))
        worst = worst_class(row, self.class_names)
        issue = _number(row.get("label_issue"))
        contradicted = _number(row.get("contradicted"))
        cells = [("" if math.isnan(rank) else str(int(rank)), rank), (case_id, case_id), (_fmt(issue), issue),
                 (_percent(contradicted), contradicted), (worst, worst)]
        unjudged = unjudged_classes(row, self.class_names)
        for name in self.class_names:
            value = _number(row.get(f"contradicted_{name}"))
            text = unjudged.get(name) or _percent(value)
            cells.append((text, value))
        cells.append((_fmt(auv), auv))
        for name in self.class_names:
            value = _number(row.get(f"auv_{name}"))
            cells.append((_fmt(value), value))
        disagreement = _number(row.get("fm_disagreement"))
        cells += [(_fmt(disagreement), disagreement), (status, status),
                  ("yes" if flagged else "", 1.0 if flagged else 0.0)]
        return cells, flagged

    def _new_items(self, case_id: str) -> list[SortItem]:
        cells, flagged = self._row_cells(case_id)
        items = []
        for text, key in cells:
            item = SortItem(text, key)
            item.setData(CASE_ROLE, case_id)
            if flagged:
                item.setBackground(FLAG_BRUSH)
            if isinstance(key, float):
                item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
            items.append(item)
        items[2].setToolTip("label issue: how strongly the label quality learned from the dataset's other "
                            "annotations contradicts this one, drawn or missed (0–1); the queue's order")
        items[3].setToolTip("contradicted: the share of this case's drawn annotation whose class the learned "
                            "label quality doubts (does not count what was left out)")
        items[5 + len(self.class_names)].setToolTip("the paper's aleatoric uncertainty value: how hard the case "
                                                    "looks to the model (dataset-normalised, 1 = hardest)")
        items[-1].setToolTip(flag_tooltip(self._rows.get(case_id) or {}))
        for column, name in enumerate(self.class_names, start=5):
            if cells[column][0] in (TOO_RARE, TOO_LITTLE_DRAWN):  # the cell shows why it has no share
                items[column].setToolTip(f"{name}: {unjudged_explanation(cells[column][0])}")
        self._shown[case_id] = (cells, flagged)
        return items

    def _bulk_edit(self) -> "_BulkEdit":
        """Context for changing many cells: no re-sorting or column fitting per cell (once at the end)."""
        return _BulkEdit(self)

    def _rebuild(self) -> None:
        """Recreate every row (the case list or the columns changed)."""
        columns = self.columns()
        with self._bulk_edit():
            self.table.clearContents()
            self._items, self._shown = {}, {}
            self.table.setColumnCount(len(columns))
            self.table.setHorizontalHeaderLabels(columns)
            self.table.setRowCount(len(self._rows))
            for r, case_id in enumerate(self._rows):
                self._items[case_id] = self._new_items(case_id)
                for c, item in enumerate(self._items[case_id]):
                    self.table.setItem(r, c, item)

    def _update_rows(self) -> None:
        """Change only the cells whose text, sort key or flag changed, then sort once."""
        with self._bulk_edit():
            for case_id, items in self._items.items():
                cells, flagged = self._row_cells(case_id)
                shown_cells, shown_flagged = self._shown[case_id]
                for item, (text, key), (shown_text, shown_key) in zip(items, cells, shown_cells):
                    if text != shown_text or not _same_key(key, shown_key):
                        item.setText(text)
                        item.setData(SORT_ROLE, key)
                if flagged != shown_flagged:
                    for item in items:
                        item.setBackground(FLAG_BRUSH if flagged else QBrush())
                items[-1].setToolTip(flag_tooltip(self._rows.get(case_id) or {}))
                self._shown[case_id] = (cells, flagged)

    def set_status(self, case_id: str, status: str) -> None:
        """Update one case's status cell (and the filters)."""
        self._statuses[case_id] = status
        if case_id in self._items:
            self._update_rows()
        else:
            self.apply_filters()

    # -- filters ---------------------------------------------------------------------------

    def passes(self, case_id: str) -> bool:
        """Whether a case passes the current filters."""
        row = self._rows.get(case_id) or {}
        status = self.status_filter.currentText()
        if status != ALL and self._statuses.get(case_id, "unreviewed") != status:
            return False
        if self.flagged_only.isChecked() and not row.get("flagged", False):
            return False
        klass = self.class_filter.currentText()
        if klass and klass != ALL:
            # per-class scores are NaN where the class is absent from the annotation
            if math.isnan(_number(row.get(f"sps_{klass}", row.get(f"auv_{klass}")))):
                return False
        return True

    def apply_filters(self, *_args) -> None:
        """Hide the rows that do not pass the filters."""
        shown = 0
        for case_id, items in self._items.items():
            visible = self.passes(case_id)
            self.table.setRowHidden(items[0].row(), not visible)
            shown += visible
        scored = sum(1 for row in self._rows.values() if row)
        self.count_label.setText(f"{shown} shown / {len(self._rows)} cases, {scored} scored")

    # -- selection -------------------------------------------------------------------------

    def row_of(self, case_id: str) -> int | None:
        """Table row of a case (after sorting), or ``None``."""
        items = self._items.get(case_id)
        return items[0].row() if items else None

    def visible_case_ids(self) -> list[str]:
        """Case ids in display order, filtered rows left out."""
        return [self.table.item(r, 0).data(CASE_ROLE) for r in range(self.table.rowCount())
                if not self.table.isRowHidden(r) and self.table.item(r, 0) is not None]

    def _select_row_of(self, case_id: str) -> None:
        r = self.row_of(case_id)
        if r is None:
            self.table.clearSelection()
        else:
            self.table.selectRow(r)
            self.table.scrollToItem(self.table.item(r, 0))

    def select(self, case_id: str | None, emit: bool = False) -> None:
        """Highlight a case's row; emit :attr:`case_selected` only when ``emit``."""
        self._current = case_id
        self.table.blockSignals(True)
        if case_id is None:
            self.table.clearSelection()
        else:
            self._select_row_of(case_id)
        self.table.blockSignals(False)
        if emit and case_id is not None:
            self.case_selected.emit(case_id)

    @property
    def selected_case(self) -> str | None:
        """The case highlighted (the one shown, or being opened), ``None`` when none is."""
        return self._current

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        if watched is self.table and event.type() == QEvent.Type.KeyPress and \
                event.key() in STEP_KEYS and event.modifiers() in (Qt.KeyboardModifier.NoModifier,
                                                                   Qt.KeyboardModifier.KeypadModifier):
            self.step_requested.emit(STEP_KEYS[event.key()])
            return True
        return super().eventFilter(watched, event)

    def _on_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        item = self.table.item(rows[0].row(), 0)
        case_id = item.data(CASE_ROLE) if item is not None else None
        if case_id and case_id != self._current:
            self.case_selected.emit(case_id)
