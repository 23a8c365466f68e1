"""``napari-aleatoric train`` as a user runs it: terminal output, files, exit codes."""

import json

import pytest
import torch

from napari_aleatoric.cli import main

FAST = ["--width", "4", "--depth", "3", "--batch-size", "2", "--device", "cpu", "--val-fraction", "0.25"]

pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_prints_epochs_and_writes_the_model(tiny, capsys):
    assert main(["train", str(tiny), "--epochs", "2", "--keep", "1", "--name", "cli", *FAST]) == 0
    out = capsys.readouterr().out
    assert "epoch   1/2" in out and "epoch   2/2" in out and "val Dice disc" in out and "best epoch" in out
    run = tiny / ".aleatoric" / "models" / "cli"
    assert (run / "best.pt").is_file() and len(json.loads((run / "metrics.json").read_text())["epochs"]) == 2

    assert main(["train", str(tiny), "--epochs", "3", "--resume"]) == 0  # latest run, stored settings
    out = capsys.readouterr().out
    assert "resuming at epoch 3" in out and "epoch   3/3" in out
    assert len(json.loads((run / "metrics.json").read_text())["epochs"]) == 3


def _interrupt_at(monkeypatch, epoch: int, step: int) -> None:
    """Ctrl-C in the terminal when ``train`` has done ``step`` steps of ``epoch``."""
    from napari_aleatoric.training import loop

    real = loop.train

    def interrupted(*args, **kwargs):
        events = real(*args, **kwargs)
        try:
            for event in events:
                yield event
                if isinstance(event, loop.StepDone) and (event.epoch, event.step) == (epoch, step):
                    raise KeyboardInterrupt
        finally:
            events.close()

    monkeypatch.setattr(loop, "train", interrupted)


def test_an_interrupted_run_names_its_model_only_once_an_epoch_ended(tiny, capsys, monkeypatch):
    from napari_aleatoric.cli import EXIT_INTERRUPTED

    _interrupt_at(monkeypatch, 1, 1)
    assert main(["train", str(tiny), "--epochs", "3", "--keep", "1", "--name", "early", *FAST]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    run = tiny / ".aleatoric" / "models" / "early"
    assert not (run / "best.pt").exists() and (run / "last.pt").is_file()
    assert "no model yet" in err and "best.pt" not in err and "--resume" in err

    monkeypatch.undo()
    _interrupt_at(monkeypatch, 2, 1)
    assert main(["train", str(tiny), "--epochs", "3", "--keep", "1", "--name", "later", *FAST]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert f"best model so far: {tiny / '.aleatoric' / 'models' / 'later' / 'best.pt'}" in err
    assert (tiny / ".aleatoric" / "models" / "later" / "best.pt").is_file()


def test_out_folder_and_switches_reach_the_settings(tiny, tmp_path):
    out = tmp_path / "elsewhere"
    assert main(["train", str(tiny), "--epochs", "1", "--keep", "1", "--duo", "--no-denoise", "--alpha", "0.25",
                 "--beta", "0.7", "--lr", "0.002", "--seed", "3", "--out", str(out), *FAST]) == 0
    settings = json.loads((out / "settings.json").read_text())["settings"]
    assert (settings["denoise"], settings["duo"], settings["alpha"], settings["beta"], settings["lr"],
            settings["seed"]) == (False, True, 0.25, 0.7, 0.002, 3)


@pytest.mark.parametrize(("arguments", "message"), [
    (["--network", "vnet"], "unknown network 'vnet'"),
    (["--epochs", "0"], "epochs must be an integer ≥ 1"),
    (["--keep", "1.5"], "keep must be a quantile in (0, 1]"),
    (["--alpha", "-0.5"], "alpha must be ≥ 0"),
    (["--beta", "2"], "beta must be in [0, 1]"),
    (["--lr", "0"], "learning rate must be > 0"),
    (["--keep", "0.9", "--lr", "0.01"], "napari-aleatoric score"),
    (["--resume"], "no training run to resume"),
    (["--device", "cuda:7"], "cuda:7"),
])
def test_bad_settings_exit_2_with_the_reason(tiny, capsys, monkeypatch, arguments, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if "--keep" not in arguments and "--resume" not in arguments:
        arguments = [*arguments, "--keep", "1"]
    assert main(["train", str(tiny), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_missing_dataset_exits_2(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nowhere"), "--keep", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_non_numeric_option_is_a_usage_error(tiny, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(tiny), "--epochs", "many"])
    assert exit_info.value.code == 2


def test_the_train_defaults_are_train_settings_defaults(tmp_path, capsys):
    """One definition of the defaults: the parser leaves every setting unset (``None``) and
    ``TrainSettings`` fills it; the help names the same values."""
    import dataclasses

    from napari_aleatoric.cli import _TRAIN_SETTING_ARGS, _train_settings, build_parser
    from napari_aleatoric.training.settings import TrainSettings

    args = build_parser().parse_args(["train", str(tmp_path)])
    assert all(getattr(args, name) is None for name in _TRAIN_SETTING_ARGS)
    settings, _ = _train_settings(args)
    assert settings == TrainSettings()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = TrainSettings()
    for name in ("epochs", "width", "depth", "seed"):
        option = "--" + name.replace("_", "-")
        assert f"(default {getattr(defaults, name)})" in text.split(option, 2)[2].split(" --", 1)[0], name
    for name in ("alpha", "beta", "lr", "val_fraction"):
        option = "--" + name.replace("_", "-")
        assert f"(default {getattr(defaults, name):g}" in text.split(option, 2)[2].split(" --", 1)[0], name
    assert {f.name for f in dataclasses.fields(TrainSettings)} >= set(_TRAIN_SETTING_ARGS)
