"""Shared fixtures: writable copies of the bundled sample datasets, the tiny training dataset, one torch
thread, the panels' notifications and a factory of viewers with a docked review panel.

``--device cuda`` runs the model and scoring tests that ask for it (``device_option()`` or the
``device`` fixture) on that torch device; the default is the CPU. Nothing here imports napari or Qt
at import time, so the core's tests also run where only the core's dependencies are installed.
"""

import shutil
from pathlib import Path

import pytest
from helpers import make_tiny_dataset

try:
    from napari_aleatoric.sample_data import dataset_path
except ImportError:  # a checkout on PYTHONPATH, not installed: the sample_data/ folder itself
    def dataset_path(name: str) -> Path:
        return Path(__file__).resolve().parents[1] / "sample_data" / name

MNI = "Dataset001_MNIBrainSlices"
CT = "Dataset002_SyntheticCT"


_DEVICE = "cpu"


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu",
                     help="torch device for the model and scoring tests (cpu, cuda, cuda:N; default cpu)")


def pytest_configure(config):
    global _DEVICE
    _DEVICE = config.getoption("--device")


def device_option() -> str:
    """The torch device the model and scoring tests run on (``--device``, default ``"cpu"``)."""
    return _DEVICE




@pytest.fixture(scope="session")
def device() -> str:
    """The torch device of ``--device`` (default ``"cpu"``)."""
    return _DEVICE


def copy_sample(name: str, destination: Path) -> Path:
    """Copy a bundled dataset (never write into sample_data/)."""
    target = destination / name
    shutil.copytree(dataset_path(name), target, ignore=shutil.ignore_patterns(".aleatoric", "__pycache__"))
    return target


@pytest.fixture
def mni_dataset(tmp_path) -> Path:
    """A writable copy of the 2D MRI sample dataset."""
    return copy_sample(MNI, tmp_path)


@pytest.fixture
def ct_dataset(tmp_path) -> Path:
    """A writable copy of the 3D CT sample dataset."""
    return copy_sample(CT, tmp_path)


def tree_digest(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (outside ``.aleatoric``) with its bytes, to prove nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".aleatoric" not in p.parts}


@pytest.fixture
def tiny(tmp_path) -> Path:
    return make_tiny_dataset(tmp_path / "Dataset900_Tiny")


@pytest.fixture
def one_thread():
    """Tiny tensors train ~10× faster on one thread than on two busy cores (OpenMP waits).
    Modules that train use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def notifications(monkeypatch):
    """Messages shown through the panels' notifications: list of (level, text)."""
    from napari_aleatoric.gui import notify

    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(notify, "show_error", lambda text: shown.append(("error", text)))
    monkeypatch.setattr(notify, "show_warning", lambda text: shown.append(("warning", text)))
    monkeypatch.setattr(notify, "show_info", lambda text: shown.append(("info", text)))
    return shown


@pytest.fixture
def panel_factory(make_napari_viewer, qtbot):
    """``make(**dock_panel options)`` → (viewer, review panel) with the tiny model; an unsaved-changes
    dialog fails the test; every panel is stopped (scoring cancelled) and shut down afterwards."""
    from napari_aleatoric.gui.sample import dock_panel

    made = []

    def make(**kwargs):
        viewer = make_napari_viewer()
        panel = dock_panel(viewer, model="tiny", device="cpu", **kwargs)
        panel.confirm_unsaved = lambda case_id: pytest.fail(f"unexpected unsaved-changes dialog for {case_id}")
        made.append(panel)
        return viewer, panel

    yield make
    for panel in made:
        if panel.is_busy():
            panel.cancel_scoring()
            qtbot.waitUntil(lambda p=panel: not p.is_busy(), timeout=60_000)
        panel.shutdown()
