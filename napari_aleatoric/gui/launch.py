"""``open_review_app``: a napari window with the review panel on a dataset (``napari-aleatoric demo``)."""

from __future__ import annotations

from pathlib import Path

from ..models.registry import DEFAULT_MODEL


def open_review_app(dataset_path: str | Path, model: str = DEFAULT_MODEL, device: str | None = None, *,
                    score_if_needed: bool = True, run: bool = True):
    """Open napari with the review panel docked on ``dataset_path`` and start the event loop.

    A bundled sample dataset is opened through its writable working copy. When the dataset has
    no saved scores and ``score_if_needed`` is set, scoring starts in the background at once.

    Args:
        dataset_path: dataset folder (nnU-Net v2 raw or Decathlon).
        model: foundation-model specification (``litemedsam``, ``sam-vit-b:PATH``, ``tiny``...).
        device: ``None``/``"auto"``, ``"cpu"`` or ``"cuda"``.
        score_if_needed: start scoring when there is no ``.aleatoric/scores.csv`` yet.
        run: start napari's event loop (``False`` for scripts and tests).

    Returns:
        ``(viewer, panel)``.
    """
    from ._compat import preload_torch  # noqa: PLC0415

    preload_torch()  # before napari's OpenGL context exists (see _compat)
    import napari  # noqa: PLC0415

    from .sample import dock_panel  # noqa: PLC0415

    viewer = napari.Viewer(title="napari-aleatoric review")
    panel = dock_panel(viewer, model=model, device=device)
    fill_screen(viewer)
    if panel.open_dataset(dataset_path) and score_if_needed and panel.table is None:
        panel.start_scoring()
    if run:
        napari.run()
    return viewer, panel


def fill_screen(viewer) -> None:
    """Give the window the whole available screen (a new napari window is about 1090 × 880 px, in
    which the docked review panel leaves the image canvas a thumbnail)."""
    from qtpy.QtWidgets import QApplication  # noqa: PLC0415

    screen = QApplication.primaryScreen()
    if screen is not None:
        area = screen.availableGeometry()
        viewer.window.set_geometry(area.x(), area.y(), area.width(), area.height())
