"""Structure rules checked on the source: no private napari attribute access, a Qt-free session, short GUI modules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: napari's private window / viewer / layer attributes (napari shows the user a "Private attribute
#: access" warning for some of them), as attributes or as strings given to getattr / hasattr
_PRIVATE_NAMES = r"_qt_window|_dock_widgets|_qt_viewer|_type_string|_dock_widget|_main_menu|_viewer_widget"
PRIVATE_NAPARI = re.compile(
    rf"\.(?:{_PRIVATE_NAMES})\b|\bwindow\._qt\w*|\.qt_viewer\b|(?:getattr|hasattr)\([^)]*['\"](?:{_PRIVATE_NAMES})['\"]"
)


def private_napari_uses(folder: Path) -> list[str]:
    """``path:line: text`` of every private napari attribute access in the Python files under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if PRIVATE_NAPARI.search(line):
                found.append(f"{path.relative_to(folder.parent)}:{number}: {line.strip()}")
    return found


@pytest.mark.parametrize("folder", ["napari_aleatoric", "scripts"])
def test_no_private_napari_attribute_is_used(folder):
    assert private_napari_uses(ROOT / folder) == []


@pytest.mark.parametrize("line, private", [
    ("qt_window = getattr(window, '_qt_window', None)", True),
    ("viewer.window._qt_window.resize(1, 2)", True),
    ("for dock in getattr(window, \"_dock_widgets\", {}).values():", True),
    ("viewer.window._qt_viewer.canvas", True),
    ("viewer.window.qt_viewer.canvas", True),
    ("layer._type_string != 'labels'", True),
    ("for widget in viewer.window.dock_widgets.values():", False),
    ("self._qt_ready = True", False),
])
def test_the_check_tells_private_from_public_access(tmp_path, line, private):
    folder = tmp_path / "package"
    folder.mkdir()
    (folder / "module.py").write_text(line + "\n")
    assert bool(private_napari_uses(folder)) is private


def test_the_review_session_imports_no_qt_or_napari():
    code = ("import sys, napari_aleatoric.session, napari_aleatoric.gui.sessions; "
            "bad = [m for m in sys.modules if m.startswith(('qtpy', 'PyQt', 'PySide', 'napari.', 'superqt'))"
            " or m == 'napari']; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


#: the most lines a module of the GUI may have: a longer one does more than one thing
GUI_MAX_LINES = 600
GUI = ROOT / "napari_aleatoric" / "gui"


@pytest.mark.parametrize("name", [path.name for path in sorted(GUI.glob("*.py"))])
def test_every_gui_module_is_under_600_lines(name):
    lines = len((GUI / name).read_text(encoding="utf-8").splitlines())
    assert lines < GUI_MAX_LINES, f"gui/{name} has {lines} lines: split it into views that do one thing each"
