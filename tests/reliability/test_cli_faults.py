"""Issue 13 on the command line: bad input and operating-system faults end with exit 2 and one
``error: ...`` line naming the path and the cause, never a Python traceback, and nothing the user
did not name is written."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from helpers import make_tiny_dataset
from reliability_helpers import read_only

from conftest import tree_digest
from napari_aleatoric.cli import main


def run(capsys, *arguments) -> tuple[int, str]:
    """``napari-aleatoric *arguments`` in this process: (exit status, stderr)."""
    status = main([str(a) for a in arguments])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if status == 2:
        assert err.strip().splitlines()[-1].startswith("error: "), err
    return status, err


@pytest.fixture
def tiny_ds(tmp_path):
    return make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=6)


# -- defect 2: score --out never replaces a dataset file ------------------------------------------


@pytest.mark.parametrize("target", ["dataset.csv", "labelsTr/c00.png", "labelsTr/c00.csv", "imagesTr/x.csv",
                                    ".aleatoric/originals/x.csv", ".aleatoric/review.sqlite"])
def test_score_out_inside_the_dataset_is_refused(capsys, tiny_ds, target):
    before = tree_digest(tiny_ds)
    status, err = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu", "--out", tiny_ds / target)
    assert status == 2 and err.startswith("error: ") and target.split("/")[-1] in err, err
    assert tree_digest(tiny_ds) == before
    assert not (tiny_ds / target).exists() or target.endswith(".png")
    assert not (tiny_ds / ".aleatoric" / "scores.csv").exists()  # refused before any scoring


def test_score_out_never_replaces_a_file_the_user_did_not_name(capsys, tiny_ds, tmp_path):
    notes = tmp_path / "results" / "notes.json"
    notes.parent.mkdir()
    notes.write_text('{"mine": 1}')
    status, err = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu",
                      "--out", notes.with_suffix(".csv"))
    assert status == 2 and "notes.json" in err and "not a scoring summary" in err
    assert notes.read_text() == '{"mine": 1}' and not notes.with_suffix(".csv").exists()


def test_score_out_under_the_state_folder_is_allowed(capsys, tiny_ds):
    target = tiny_ds / ".aleatoric" / "custom.csv"
    status, _ = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu", "--out", target)
    assert status == 0 and target.is_file()
    assert json.loads(target.with_suffix(".json").read_text())["scored"] == 6
    # a second run replaces its own summary
    assert run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu", "--out", target)[0] == 0


# -- defect 6: operating-system faults ----------------------------------------------------------

@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_read_only_dataset_gives_one_plain_error_and_scores_with_cache_elsewhere(capsys, monkeypatch, tiny_ds,
                                                                                   tmp_path, code):
    before = tree_digest(tiny_ds)
    read_only(monkeypatch, tiny_ds, code)
    status, err = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu")
    last = err.strip().splitlines()[-1]
    assert status == 2 and last.startswith("error: ") and str(tiny_ds) in last
    assert ("read-only" if code == errno.EROFS else "no permission") in last and "--cache" in last, err
    cache = tmp_path / "cache"
    status, err = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu", "--cache", cache)
    assert status == 0, err
    assert (cache / "scores.csv").is_file() and any((cache / "maps").iterdir())
    assert not (tiny_ds / ".aleatoric").exists() and tree_digest(tiny_ds) == before


def test_disk_full_while_scoring_names_the_file(capsys, monkeypatch, tiny_ds):
    from napari_aleatoric.data import arraycache

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(arraycache, "atomic_write_bytes", full)
    status, err = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu")
    last = err.strip().splitlines()[-1]
    assert status == 2 and last.startswith(f"error: {tiny_ds}/.aleatoric/cache/") and "disk full while writing" in last


def test_disk_full_while_training_names_the_checkpoint(capsys, monkeypatch, tiny_ds):
    from napari_aleatoric.data import atomic

    real_open = open

    class FullDisk:
        """A file object whose writes fail like a full disk (no file name attached, as in Python's io)."""

        def __init__(self, *args, **kwargs):
            self._handle = real_open(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self._handle, name)

    def faulty_open(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).endswith(".pt"):
            return FullDisk(path, mode, *args, **kwargs)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(atomic, "open", faulty_open, raising=False)
    monkeypatch.setattr("torch.get_num_threads", lambda: 1)
    status, err = run(capsys, "train", tiny_ds, "--epochs", "1", "--keep", "1", "--width", "4", "--depth", "3",
                      "--device", "cpu", "--name", "r")
    assert status == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "last.pt" in line and "disk full while writing" in line, err
    assert "unexpected pos" not in err


def test_an_unreadable_labels_folder_is_a_plain_error(capsys, monkeypatch, tiny_ds):
    labels = tiny_ds / "labelsTr"
    real_exists = Path.exists

    def exists(self, *args, **kwargs):
        if self.parent == labels.resolve() or self.parent == labels:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    status, err = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu")
    assert status == 2 and "labelsTr" in err and "no permission" in err, err


@pytest.mark.parametrize("where", ["scores.csv", "cache"])
def test_a_folder_or_file_where_the_state_folder_expects_the_other(capsys, tiny_ds, where):
    state = tiny_ds / ".aleatoric"
    state.mkdir()
    if where == "scores.csv":
        (state / "scores.csv").mkdir()  # a folder where the table goes
        expected = "a folder is where a file was expected"
    else:
        (state / "cache").write_text("not a folder")  # a file where the cache folder goes
        expected = "a file is where a folder was expected"
    status, err = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu")
    assert status == 2 and expected in err and str(state) in err, err


def test_gui_notifications_describe_os_errors_in_plain_words():
    from napari_aleatoric.gui.notify import describe

    assert describe(OSError(errno.ENOSPC, "No space left on device", "/data/x.npz")).startswith(
        "/data/x.npz: disk full while writing")
    assert "no permission" in describe(PermissionError(errno.EACCES, "Permission denied", "/data/labelsTr"))


# -- defect 7: malformed state and input files --------------------------------------------------


def scored_csv(root: Path) -> Path:
    """A scores.csv for every case (made up, but well formed) so that ``train`` filters by AUV."""
    from napari_aleatoric.data.dataset import open_dataset

    ds = open_dataset(root)
    names = list(ds.foreground)
    header = (["case_id", "rank", "label_issue", "auv", "flagged", "sps", "fm_disagreement"]
              + [f"auv_{n}" for n in names])
    lines = [",".join(header)] + [",".join([ref.case_id, str(i + 1), "", f"{i / 10:.6f}", "0", "0.5", ""]
                                           + ["0.5"] * len(names)) for i, ref in enumerate(ds.cases)]
    path = root / ".aleatoric" / "scores.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("damage", ["extra field", "not a number", "no case_id", "NUL byte"])
def test_train_with_a_damaged_scores_csv_is_a_plain_error(capsys, tiny_ds, damage):
    path = scored_csv(tiny_ds)
    text = path.read_text().splitlines()
    if damage == "extra field":
        text[2] += ",surplus"
    elif damage == "not a number":
        text[2] = text[2].replace("0.5", "abc", 1)
    elif damage == "no case_id":
        text[0] = text[0].replace("case_id", "case")
    else:
        text[2] += "\0"
    path.write_text("\n".join(text) + "\n")
    status, err = run(capsys, "train", tiny_ds, "--epochs", "1", "--keep", "0.9", "--device", "cpu")
    assert status == 2 and "scores.csv" in err.strip().splitlines()[-1], err


def test_deeply_nested_dataset_json_is_a_plain_error(capsys, tiny_ds):
    (tiny_ds / "dataset.json").write_text('{"labels": ' + "[" * 100_000 + "]" * 100_000 + "}")
    for command in (["score", tiny_ds, "--model", "tiny"], ["train", tiny_ds, "--keep", "1"]):
        status, err = run(capsys, *command)
        assert status == 2 and "dataset.json" in err and "nested too deeply" in err, err


def test_the_cli_prints_the_datasets_warnings(capsys, tiny_ds):
    (tiny_ds / "imagesTr" / "c00.png").write_bytes((tiny_ds / "imagesTr" / "c00_0000.png").read_bytes())
    status, err = run(capsys, "score", tiny_ds, "--model", "tiny", "--device", "cpu")
    assert status == 0 and "warning:" in err and "imagesTr/c00.png" in err and "_0000" in err, err
    status, err = run(capsys, "train", tiny_ds, "--epochs", "1", "--keep", "1", "--width", "4", "--depth", "3",
                      "--device", "cpu", "--name", "w")
    assert status == 0 and "imagesTr/c00.png" in err, err


# -- the console command itself: one line, exit 2, never a traceback ----------------------------


def test_the_console_command_prints_no_traceback_for_bad_input_or_os_faults(tmp_path):
    import subprocess
    import sys

    import napari_aleatoric

    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=4)
    state = root / ".aleatoric"
    state.mkdir()
    (state / "scores.csv").mkdir()  # a folder where a file is expected
    nested = make_tiny_dataset(tmp_path / "Dataset901_Nested", cases=4)
    (nested / "dataset.json").write_text('{"labels": ' + "[" * 50_000 + "]" * 50_000 + "}")
    env = dict(os.environ, PYTHONPATH=str(Path(napari_aleatoric.__file__).parents[1]), OMP_NUM_THREADS="1")
    faults = {
        "score --out inside the dataset": ["score", root, "--model", "tiny", "--out", root / "labelsTr" / "c00.csv"],
        "a folder where scores.csv goes": ["score", root, "--model", "tiny", "--device", "cpu"],
        "deeply nested dataset.json": ["train", nested, "--keep", "1"],
    }
    for fault, arguments in faults.items():
        done = subprocess.run([sys.executable, "-m", "napari_aleatoric", *map(str, arguments)], capture_output=True,
                              text=True, env=env, timeout=300)
        assert done.returncode == 2, (fault, done.stderr)
        assert "Traceback" not in done.stderr, (fault, done.stderr)
        assert done.stderr.strip().splitlines()[-1].startswith("error: "), (fault, done.stderr)
