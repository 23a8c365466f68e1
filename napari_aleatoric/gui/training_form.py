"""The retraining panel's settings form, made from :func:`~napari_aleatoric.training.settings.setting_specs`.

One row per :class:`~napari_aleatoric.training.TrainSettings` field (the CLI's ``train`` options are
made from the same specs): its label, tooltip, default, choices and number range come from the
field's metadata, so a field added to ``TrainSettings`` appears here without a change to this file.
Above them a **strategy** combo (:data:`~napari_aleatoric.training.STRATEGIES`) sets the fields it
names, and names the strategy the fields match (``custom`` otherwise). The network, epochs and
device are always shown; the other rows fold under **More settings** so that the panel fits a
1000-px screen next to the review panel.
"""

from __future__ import annotations

from dataclasses import replace

from magicgui import widgets as mg
from qtpy.QtWidgets import QGroupBox, QPushButton, QVBoxLayout, QWidget

from ..training import STRATEGIES, TrainSettings, strategy_of
from ..training.settings import SettingSpec, setting_specs
from .workers import safe_slot

#: the rows always shown (the others fold under "More settings")
BASIC = ("network", "epochs", "device")
#: the fields a named strategy sets
STRATEGY_FIELDS = tuple(sorted({key for values in STRATEGIES.values() for key in values}))
#: what an optional setting's combo shows for ``None``
AUTO = "auto"
STRATEGY_TIP = ("default: contradicted drawn pixels learn the label-quality model's class where it is sure and "
                "weigh less where it is not, when the dataset is scored, else plain; issue-*: guided by the label "
                "issues; auv-filter / duo: the paper's (docs/training.md has the measured effect of each). "
                "The fields a strategy sets are under More settings.")


def make_widget(spec: SettingSpec) -> mg.ValueWidget:
    """The form row of one setting (its value is the default of :class:`TrainSettings`)."""
    common = {"name": spec.name, "label": spec.label, "tooltip": spec.help}
    if spec.choices:
        return mg.ComboBox(choices=list(spec.choices), value=spec.default, **common)
    if spec.suggestions:
        return mg.ComboBox(choices=[AUTO, *spec.suggestions], value=AUTO if spec.default is None else spec.default,
                           **common)
    if spec.kind == "bool":
        return mg.CheckBox(value=spec.default, **common)
    if spec.optional or spec.kind in ("str", "sizes"):
        widget = mg.LineEdit(value="" if spec.default is None else str(spec.default), **common)
        if spec.auto:
            widget.native.setPlaceholderText(f"{AUTO}: {spec.auto}")
        return widget
    low = spec.minimum if spec.minimum is not None else 0
    if spec.kind == "int":
        high = spec.maximum if spec.maximum is not None else 2**31 - 1
        return mg.SpinBox(value=spec.default, min=int(low), max=int(high), **common)
    high = spec.maximum if spec.maximum is not None else 1e9
    widget = mg.FloatSpinBox(value=spec.default, min=low, max=high, step=spec.step or 0.1, **common)
    if spec.decimals is not None and hasattr(widget.native, "setDecimals"):
        widget.native.setDecimals(spec.decimals)
    return widget


class SettingsForm(QGroupBox):
    """The group box "Training settings": :attr:`form` (the magicgui container, its widgets named like
    the :class:`TrainSettings` fields plus ``strategy``), :meth:`settings`, :meth:`device`."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Training settings", parent)
        self.specs: dict[str, SettingSpec] = {spec.name: spec for spec in setting_specs()}
        order = [*BASIC, *(name for name in self.specs if name not in BASIC)]
        strategy = mg.ComboBox(name="strategy", label="strategy", choices=[*STRATEGIES, "custom"],
                               value=strategy_of(TrainSettings()) or "custom", tooltip=STRATEGY_TIP)
        self.form = mg.Container(widgets=[strategy, *(make_widget(self.specs[name]) for name in order)],
                                 labels=True)
        self.folded = tuple(name for name in order if name not in BASIC)
        self.more_button = QPushButton()
        self.more_button.setCheckable(True)
        self.more_button.setToolTip("the fields the strategy sets, the loss, the network's size, the run name")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.form.native)
        layout.addWidget(self.more_button)
        self.more_button.toggled.connect(self.show_more)
        self.show_more(False)
        self._syncing = False
        self.form["strategy"].changed.connect(safe_slot(self._apply_strategy))
        for name in STRATEGY_FIELDS:
            self.form[name].changed.connect(safe_slot(lambda *_: self._show_strategy()))

    def show_more(self, shown: bool) -> None:
        """Unfold (or fold) the rows below the network, epochs and device."""
        for name in self.folded:
            self.form[name].visible = shown
        self.more_button.setText("Fewer settings ▴" if shown else f"More settings ({len(self.folded)}) ▾")
        if self.more_button.isChecked() != shown:
            self.more_button.setChecked(shown)

    def settings(self) -> TrainSettings:
        """The form's values as (unvalidated) :class:`TrainSettings`; :class:`ValueError` names a text
        field that does not parse."""
        values = {}
        for name, spec in self.specs.items():
            value = self.form[name].value
            if isinstance(self.form[name], mg.LineEdit):
                try:
                    value = spec.parse(value)
                except ValueError as error:
                    raise ValueError(f"{spec.label}: {error}") from None
            elif spec.optional and value == AUTO:
                value = None
            values[name] = value
        return TrainSettings(**values)

    def device(self) -> str | None:
        """The chosen device (``None``: automatic)."""
        device = self.form["device"].value
        return None if device in ("", AUTO) else device

    def _apply_strategy(self, *_args) -> None:
        """The strategy combo sets its fields (``custom`` leaves them)."""
        name = self.form["strategy"].value
        if name not in STRATEGIES or self._syncing:
            return
        self._syncing = True
        try:
            for key, value in STRATEGIES[name].items():
                self.form[key].value = value
        finally:
            self._syncing = False

    def _show_strategy(self) -> None:
        """The strategy combo follows the fields (``custom`` for a combination of one's own)."""
        if self._syncing:
            return
        values = {key: self.form[key].value for key in STRATEGY_FIELDS}  # the others may not parse yet
        name = strategy_of(replace(TrainSettings(), **values)) or "custom"
        if self.form["strategy"].value != name:
            self._syncing = True
            try:
                self.form["strategy"].value = name
            finally:
                self._syncing = False
