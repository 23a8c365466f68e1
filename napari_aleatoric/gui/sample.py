"""Opening datasets and the bundled samples in a viewer: the npe2 reader's dataset opening and the
sample-data commands (File > Open Sample)."""

from __future__ import annotations

import sys
from pathlib import Path

from .._sample import working_copy
from . import docking, notify
from .case_view import ANNOTATION, FM_SEGMENTATION, IMAGE, case_layer_data, is_heatmap_layer, load_case_view
from .review_panel import PANEL_NAME, ReviewPanel


def find_panel(viewer) -> ReviewPanel | None:
    """The review panel docked in ``viewer``, if any."""
    for widget in list(viewer.window.dock_widgets.values()):
        if isinstance(widget, ReviewPanel):
            return widget
    return None


def dock_panel(viewer, **kwargs) -> ReviewPanel:
    """The viewer's review panel, docked on the right if it is not there yet."""
    panel = find_panel(viewer)
    if panel is None:
        panel = ReviewPanel(viewer, **kwargs)
        dock = viewer.window.add_dock_widget(panel, name=PANEL_NAME, area="right")
        training = _training_panel(viewer)
        if training is None or not training.isVisible() or not docking.side_by_side(panel, training):
            _give_width(viewer, dock, panel.sizeHint().width())
    return panel


def _training_panel(viewer):
    """The retraining panel docked in ``viewer``, if any (the review panel docks beside it, not under it)."""
    module = sys.modules.get(f"{__package__}.training_panel")  # not imported: no retraining panel (and
    if module is None:                                        # importing it would load torch and MONAI)
        return None
    TrainingPanel = module.TrainingPanel  # noqa: N806
    return next((w for w in list(viewer.window.dock_widgets.values()) if isinstance(w, TrainingPanel)), None)


def _give_width(viewer, dock, width: int) -> None:
    """Start the dock wide enough for the queue (Qt otherwise splits the width evenly)."""
    try:
        from qtpy.QtCore import Qt  # noqa: PLC0415

        from qtpy.QtWidgets import QMainWindow  # noqa: PLC0415

        main = dock.window()  # the main window the dock sits in (Qt's public API, not napari's private one)
        if isinstance(main, QMainWindow):
            main.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
    except (AttributeError, TypeError, RuntimeError):  # cosmetic only
        pass


def open_in_viewer(viewer, root: str | Path) -> ReviewPanel:
    """Dock the review panel (if needed) and open the dataset at ``root`` in it."""
    panel = dock_panel(viewer)
    panel.open_dataset(root)
    return panel


def open_sample(name: str) -> list:
    """npe2 sample data: open a working copy of a bundled dataset in the review panel.

    Returns the layers of the queue's top case (napari adds them; the panel then adopts them), so
    File > Open Sample shows an image at once.
    """
    import napari  # noqa: PLC0415

    root = working_copy(name)
    viewer = napari.current_viewer()
    if viewer is None:
        from ..data.dataset import open_dataset  # noqa: PLC0415

        dataset = open_dataset(root)
        view = load_case_view(dataset, dataset.cases[0].case_id)
        return case_layer_data(view, dataset.labels)
    panel = dock_panel(viewer)
    if not panel.open_dataset(root, select=False):
        raise ValueError(f"{root}: the sample dataset cannot be opened (see the notification)")
    case_id = panel.top_case()
    try:
        view = load_case_view(panel.dataset, case_id, panel.settings,
                              panel.table.row(case_id) if panel.table else None)
    except Exception as error:
        notify.error(f"Cannot open case {case_id}", error)
        raise
    ours = {IMAGE, ANNOTATION, FM_SEGMENTATION}
    for layer in list(viewer.layers):
        if layer.name in ours or is_heatmap_layer(layer.name):
            viewer.layers.remove(layer)
    from qtpy.QtCore import QTimer  # noqa: PLC0415

    QTimer.singleShot(0, lambda: panel._show_case(view))
    return case_layer_data(view, panel.dataset.labels)


def mni_brain_slices() -> list:
    """File > Open Sample: the MNI brain-slice dataset, opened in the review panel."""
    return open_sample("Dataset001_MNIBrainSlices")


def synthetic_ct() -> list:
    """File > Open Sample: the synthetic abdominal CT dataset, opened in the review panel."""
    return open_sample("Dataset002_SyntheticCT")
