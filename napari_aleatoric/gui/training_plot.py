"""The retraining panel's live plot: training loss per step and per-class validation Dice per epoch."""

from __future__ import annotations

from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

#: plot colours (napari's dark theme) and one colour per class
_PLOT_BG, _PLOT_FG = "#262930", "#d1d2d4"
_CLASS_LINE_COLOURS = ("#00bfff", "#32cd32", "#ff00ff", "#ffd700", "#1e90ff", "#adff2f", "#ff69b4")


class TrainingPlot(QWidget):
    """Live plot: training loss per step (left) and per-class validation Dice per epoch (right).

    The data are kept in :attr:`loss_steps` / :attr:`losses` and :attr:`dice_epochs` /
    :attr:`dice` (class → values); the figure is redrawn lazily (``draw_idle``).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.loss_steps: list[int] = []
        self.losses: list[float] = []
        self.dice_epochs: list[int] = []
        self.dice: dict[str, list[float]] = {}
        self.redraws = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        try:
            from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg  # noqa: PLC0415
            from matplotlib.figure import Figure  # noqa: PLC0415
        except ImportError:  # pragma: no cover - matplotlib is a dependency
            self.canvas = None
            layout.addWidget(QLabel("Install matplotlib for the live plot (pip install matplotlib)."))
            return
        self.figure = Figure(figsize=(4.6, 2.2), facecolor=_PLOT_BG, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(150)
        self.loss_axes, self.dice_axes = self.figure.subplots(1, 2)
        for axes, title in ((self.loss_axes, "training loss"), (self.dice_axes, "validation Dice")):
            axes.set_facecolor(_PLOT_BG)
            axes.set_title(title, color=_PLOT_FG, fontsize=9)
            axes.tick_params(colors=_PLOT_FG, labelsize=7)
            for spine in axes.spines.values():
                spine.set_color("#5a5d66")
        self.loss_axes.set_xlabel("step", color=_PLOT_FG, fontsize=8)
        self.dice_axes.set_xlabel("epoch", color=_PLOT_FG, fontsize=8)
        from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

        for axes in (self.loss_axes, self.dice_axes):  # few ticks: the panel may be 300 px wide
            axes.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
            axes.yaxis.set_major_locator(MaxNLocator(nbins=5))
        self.loss_axes.set_xlim(0, 1)  # set again on every redraw (a fixed limit switches autoscaling off)
        (self.loss_line,) = self.loss_axes.plot([], [], color="#ff9f40", linewidth=1.0)
        self.dice_lines: dict = {}
        layout.addWidget(self.canvas)

    def reset(self, classes: list[str]) -> None:
        """Clear the curves for a new run with these classes."""
        self.loss_steps, self.losses, self.dice_epochs = [], [], []
        self.dice = {name: [] for name in classes}
        if self.canvas is None:
            return
        for line in self.dice_lines.values():
            line.remove()
        self.dice_lines = {}
        for k, name in enumerate(classes):
            (self.dice_lines[name],) = self.dice_axes.plot([], [], marker="o", markersize=3, linewidth=1.2,
                                                           color=_CLASS_LINE_COLOURS[k % len(_CLASS_LINE_COLOURS)],
                                                           label=name)
        legend = self.dice_axes.legend(fontsize=7, loc="lower right", facecolor=_PLOT_BG, edgecolor="#5a5d66")
        for text in legend.get_texts():
            text.set_color(_PLOT_FG)
        self._redraw()

    def add_step(self, global_step: int, loss: float) -> None:
        """One training step's loss."""
        self.loss_steps.append(int(global_step))
        self.losses.append(float(loss))
        self._redraw()

    def add_epoch(self, epoch: int, dice: dict[str, float]) -> None:
        """One epoch's validation Dice per class (NaN: the class was absent everywhere)."""
        self.dice_epochs.append(int(epoch))
        for name, value in dice.items():
            self.dice.setdefault(name, []).append(float(value))
        self._redraw()

    def _redraw(self) -> None:
        if self.canvas is None:
            return
        self.loss_line.set_data(self.loss_steps, self.losses)
        for name, line in self.dice_lines.items():
            line.set_data(self.dice_epochs[:len(self.dice.get(name, []))], self.dice.get(name, []))
        self.loss_axes.set_xlim(0, max(1, self.loss_steps[-1] if self.loss_steps else 1))
        self.loss_axes.relim()
        self.loss_axes.autoscale_view(scalex=False)
        self.dice_axes.set_xlim(0.5, max(2, len(self.dice_epochs)) + 0.5)
        self.dice_axes.set_ylim(0.0, 1.0)
        self.canvas.draw_idle()
        self.redraws += 1
