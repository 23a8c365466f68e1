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


# ---------------------------------------------------------------- import graph of the package

import ast  # noqa: E402

PACKAGE = "napari_aleatoric"
#: top-level modules that start the GUI on request (the CLI's `demo`, npe2's reader): they may import
#: `gui`; everything else outside `gui/` is core and must not
GUI_ENTRY_POINTS = {"cli", "__main__", "readers"}


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file of the package (a package is its ``__init__``)."""
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = (package_dir.name, *path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file (top level, inside functions,
    under ``TYPE_CHECKING``): ``from a import b`` counts as importing ``a.b`` where that is a module."""
    found = set()
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (here[: len(here) - node.level + 1] if node.level else [])
            prefix = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def part_of(module: str) -> str:
    """The part a module belongs to: its subpackage (``training``) or, at the top level, itself (``cli``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def part_graph(package_dir: Path) -> dict[str, dict[str, list[str]]]:
    """``{part: {imported part: ["module -> module", ...]}}`` between the package's parts."""
    known = module_names(package_dir)
    graph: dict[str, dict[str, list[str]]] = {}
    for name, path in known.items():
        for target in imported_modules(name, path, known):
            a, b = part_of(name), part_of(target)
            if a and b and a != b:
                graph.setdefault(a, {}).setdefault(b, []).append(f"{name} -> {target}")
    return graph


def import_cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected groups of more than one part (each an import circle), with their edges."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(set(graph) | {b for edges in graph.values() for b in edges}):
        if node not in index:
            visit(node)
    return [[f"{a}: {edge}" for a in group for b in group for edge in graph.get(a, {}).get(b, [])]
            for group in groups]


def test_no_import_circle_between_the_parts_of_the_package():
    assert import_cycles(part_graph(ROOT / PACKAGE)) == []


def test_core_never_imports_the_gui():
    graph = part_graph(ROOT / PACKAGE)
    core = set(graph) - {"gui"} - GUI_ENTRY_POINTS
    assert [edge for part in sorted(core) for edge in graph[part].get("gui", [])] == []


def test_the_scores_file_format_is_below_pipelines_and_training():
    graph = part_graph(ROOT / PACKAGE)
    assert "pipelines" not in graph["training"]
    assert {"pipelines", "training"}.isdisjoint(graph.get("data", {}))


def test_the_import_check_finds_circles_through_function_level_imports(tmp_path):
    package = tmp_path / PACKAGE
    for folder in ("data", "gui", "pipelines", "training"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "_sample.py").write_text("def open_sample():\n    from .gui.sample import open_sample\n")
    (package / "gui" / "sample.py").write_text("from .._sample import working_copy\n")
    (package / "pipelines" / "unlabelled.py").write_text("from ..training.prediction import load\n")
    (package / "training" / "prediction.py").write_text("load = 1\n")
    (package / "training" / "data.py").write_text("from napari_aleatoric.pipelines import table\n")
    (package / "pipelines" / "table.py").write_text("if False:\n    from ..data import x\n")
    (package / "data" / "x.py").write_text("")
    cycles = import_cycles(part_graph(package))
    assert sorted(sorted({line.split(":")[0] for line in cycle}) for cycle in cycles) == [
        ["_sample", "gui"], ["pipelines", "training"]]
    assert "training: napari_aleatoric.training.data -> napari_aleatoric.pipelines.table" in cycles[1] + cycles[0]


# ---------------------------------------------------------------- one owner of the .aleatoric/ layout

LAYOUT_OWNER = "napari_aleatoric/data/state_layout.py"
#: names of the state folder's files and folders (see the owner); a path built with one of them
#: (``state_dir / "scores.csv"``) anywhere else spells the layout out again
LAYOUT_NAMES = frozenset({"scores.csv", "scores.json", "review.sqlite", "originals", "revisions", "models",
                          "label_snapshots", "unlabelled", "cache", "maps", "embeddings", "quality",
                          "quality-training"})


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def layout_spellings(path: Path) -> list[str]:
    """``'<line>: <what>'`` for each place in a module's code (not its docstrings or messages) that
    spells out the state folder: a string ``".aleatoric"`` or a path starting with it
    (``".aleatoric/scores.csv"``), or a path joined with a name of the layout (``x / "scores.csv"``,
    ``x.joinpath("models")``) outside an f-string (the text of a message)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    in_fstrings = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                   for inner in ast.walk(node) if inner is not node}
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
                and (node.value == ".aleatoric" or node.value.startswith((".aleatoric/", ".aleatoric\\")))):
            found.append(f"{node.lineno}: {node.value!r}")
        if id(node) in in_fstrings:
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            name = node.right
            if isinstance(name, ast.Constant) and name.value in LAYOUT_NAMES:
                found.append(f'{node.lineno}: / "{name.value}"')
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "joinpath"
                and any(isinstance(a, ast.Constant) and a.value in LAYOUT_NAMES for a in node.args)):
            found.append(f"{node.lineno}: joinpath")
    return found


def test_only_state_layout_spells_out_the_state_folder():
    spelled = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel != LAYOUT_OWNER and (found := layout_spellings(path)):
            spelled[rel] = found
    assert spelled == {}


def test_the_layout_check_finds_spelled_out_paths(tmp_path):
    module = tmp_path / "module.py"
    module.write_text('"""Scores go to ``.aleatoric/scores.csv``."""\n'
                      'import pathlib\n'
                      'def f(root, ds):\n'
                      '    """Under ".aleatoric"."""\n'
                      '    a = root / ".aleatoric" / "review.sqlite"\n'
                      '    b = ds.state_dir / "scores.csv"\n'
                      '    c = pathlib.Path(".aleatoric/models")\n'
                      '    d = ds.cache_dir.joinpath("embeddings")\n'
                      '    e = f"{root / \'maps\'} or the .aleatoric folder"\n'
                      '    raise ValueError("is inside the dataset\'s .aleatoric state folder")\n')
    assert sorted(layout_spellings(module)) == ["5: '.aleatoric'", '5: / "review.sqlite"', '6: / "scores.csv"',
                                                "7: '.aleatoric/models'", "8: joinpath"]
