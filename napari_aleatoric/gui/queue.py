"""The ranked review queue: a sortable table of cases with status / flagged / class filters."""

from __future__ import annotations

import math

from qtpy.QtCore import Qt, Signal
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


def worst_class(row: dict | None, class_names: list[str]) -> str:
    """The class with the highest per-class AUV in a score-table row ('' when none)."""
    if not row:
        return ""
    values = [(_number(row.get(f"auv_{n}")), n) for n in class_names]
    values = [(v, n) for v, n in values if not math.isnan(v)]
    return max(values)[1] if values else ""


class QueueTable(QWidget):
    """Ranked cases with filters; emits :attr:`case_selected` with the case id."""

    case_selected = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.class_names: list[str] = []
        self._rows: dict[str, dict | None] = {}
        self._statuses: dict[str, str] = {}
        self._current: str | None = None

        self.status_filter = QComboBox()
        self.status_filter.addItems([ALL, *STATUSES])
        self.status_filter.setToolTip("Show only cases with this review status")
        self.class_filter = QComboBox()
        self.class_filter.addItem(ALL)
        self.class_filter.setToolTip("Show only cases whose annotation contains this class")
        self.flagged_only = QCheckBox("flagged only")
        self.flagged_only.setToolTip("Show only cases flagged as most uncertain (AUV above the flag quantile)")
        self.count_label = QLabel("")

        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(QLabel("status"))
        filters.addWidget(self.status_filter)
        filters.addWidget(QLabel("class"))
        filters.addWidget(self.class_filter)
        filters.addWidget(self.flagged_only)
        filters.addStretch(1)

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
        self.table.setMinimumHeight(140)
        self._sort = (0, Qt.SortOrder.AscendingOrder)  # rank, most doubtful first
        self.table.setToolTip("Cases ranked by aleatoric uncertainty (rank 1 = review first). Click a header to "
                              "sort; flagged cases are highlighted.")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count_label)

        self.status_filter.currentTextChanged.connect(self.apply_filters)
        self.class_filter.currentTextChanged.connect(self.apply_filters)
        self.flagged_only.toggled.connect(self.apply_filters)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.horizontalHeader().sortIndicatorChanged.connect(self._on_sort)

    def _on_sort(self, column: int, order) -> None:
        if column >= 0:
            self._sort = (column, order)

    # -- content ---------------------------------------------------------------------------

    def columns(self) -> list[str]:
        """Header labels in display order."""
        return (["rank", "case", "AUV", "worst\nclass"] + [f"AUV\n{n.replace('_', chr(10))}" for n in self.class_names]
                + ["FM\ndisagr.", "status", "flagged"])

    def set_cases(self, case_ids: list[str], class_names: list[str], rows: dict[str, dict],
                  statuses: dict[str, str]) -> None:
        """Show every case of the dataset; ``rows`` are the scored ones (case id → table row)."""
        if class_names != self.class_names:
            self.class_names = list(class_names)
            self.class_filter.blockSignals(True)
            self.class_filter.clear()
            self.class_filter.addItems([ALL, *class_names])
            self.class_filter.blockSignals(False)
        self._rows = {case_id: rows.get(case_id) for case_id in case_ids}
        self._statuses = dict(statuses)
        self._rebuild()

    def _row_cells(self, case_id: str) -> list[SortItem]:
        row = self._rows.get(case_id) or {}
        rank = _number(row.get("rank"))
        auv = _number(row.get("auv"))
        status = self._statuses.get(case_id, "unreviewed")
        flagged = bool(row.get("flagged", False))
        cells = [SortItem("" if math.isnan(rank) else str(int(rank)), rank),
                 SortItem(case_id, case_id),
                 SortItem(_fmt(auv), auv),
                 SortItem(worst_class(row, self.class_names), worst_class(row, self.class_names))]
        for name in self.class_names:
            value = _number(row.get(f"auv_{name}"))
            cells.append(SortItem(_fmt(value), value))
        disagreement = _number(row.get("fm_disagreement"))
        cells += [SortItem(_fmt(disagreement), disagreement), SortItem(status, status),
                  SortItem("yes" if flagged else "", 1.0 if flagged else 0.0)]
        for cell in cells:
            cell.setData(CASE_ROLE, case_id)
            if flagged:
                cell.setBackground(FLAG_BRUSH)
            if cell.data(SORT_ROLE) is not None and isinstance(cell.data(SORT_ROLE), float):
                cell.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
        cells[2].setToolTip("aleatoric uncertainty value: dataset-normalised, 1 = most doubtful")
        return cells

    def _rebuild(self) -> None:
        sort_column, sort_order = self._sort
        columns = self.columns()
        self.table.blockSignals(True)
        self.table.setSortingEnabled(False)
        self.table.clearContents()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        self.table.setRowCount(len(self._rows))
        for r, case_id in enumerate(self._rows):
            for c, cell in enumerate(self._row_cells(case_id)):
                self.table.setItem(r, c, cell)
        self.table.setSortingEnabled(True)
        if sort_column < 0 or sort_column >= len(columns):
            sort_column, sort_order = 0, Qt.SortOrder.AscendingOrder
        self.table.sortItems(sort_column, sort_order)
        self.apply_filters()
        if self._current is not None:
            self._select_row_of(self._current)
        self.table.blockSignals(False)

    def set_status(self, case_id: str, status: str) -> None:
        """Update one case's status cell (and the filters)."""
        self._statuses[case_id] = status
        column = self.columns().index("status")
        r = self.row_of(case_id)
        if r is not None:
            sorting = self.table.isSortingEnabled()
            self.table.setSortingEnabled(False)
            item = self.table.item(r, column)
            item.setText(status)
            item.setData(SORT_ROLE, status)
            self.table.setSortingEnabled(sorting)
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
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            visible = item is not None and self.passes(item.data(CASE_ROLE))
            self.table.setRowHidden(r, not visible)
            shown += visible
        scored = sum(1 for row in self._rows.values() if row)
        self.count_label.setText(f"{shown} shown / {len(self._rows)} cases, {scored} scored")

    # -- selection -------------------------------------------------------------------------

    def row_of(self, case_id: str) -> int | None:
        """Table row of a case (after sorting), or ``None``."""
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item is not None and item.data(CASE_ROLE) == case_id:
                return r
        return None

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

    def neighbour(self, step: int) -> str | None:
        """The visible case ``step`` rows below (negative: above) the current one."""
        ids = self.visible_case_ids()
        if not ids:
            return None
        if self._current not in ids:
            return ids[0] if step > 0 else ids[-1]
        index = ids.index(self._current) + step
        return ids[index] if 0 <= index < len(ids) else None

    def _on_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        item = self.table.item(rows[0].row(), 0)
        case_id = item.data(CASE_ROLE) if item is not None else None
        if case_id and case_id != self._current:
            self.case_selected.emit(case_id)
