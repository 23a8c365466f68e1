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


@pytest.mark.parametrize(("arguments", "message"), [
    (["--epochs", "many"], "--epochs: expected an integer, got 'many'"),
    (["--network", "vnet"], "--network: invalid choice: 'vnet' (choose from"),
    (["--patch", "64,big"], "--patch: expected sizes like 32,64,64"),
])
def test_non_numeric_option_or_unknown_choice_is_a_usage_error(tiny, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(tiny), *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def train_options() -> dict:
    """The ``train`` sub-command's options: dest → argparse action."""
    import argparse

    from napari_aleatoric.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action for action in commands.choices["train"]._actions}


def test_every_train_setting_is_a_cli_option_with_its_default_choices_and_help(tmp_path, capsys):
    """One definition of the settings: every TrainSettings field is an option that leaves it unset
    (``None``: TrainSettings or the stored run fills it), with the field's choices, and the help
    names the field's default; the choices are the ones the core accepts."""
    import dataclasses

    from napari_aleatoric.cli import _train_settings, build_parser
    from napari_aleatoric.training.settings import TrainSettings, setting_specs

    options = train_options()
    defaults = TrainSettings()
    specs = {spec.name: spec for spec in setting_specs()}
    assert list(specs) == [f.name for f in dataclasses.fields(TrainSettings)]
    for name, spec in specs.items():
        assert name in options, f"TrainSettings.{name} has no --option"
        action = options[name]
        assert action.default is None, name
        assert spec.default == getattr(defaults, name), name
        assert action.option_strings[0] == "--" + name.replace("_", "-"), name
        assert (tuple(action.choices) if action.choices else None) == spec.choices, name
        assert f"(default {spec.default_text()})" in " ".join(action.help.split()).replace("%%", "%"), name
        for choice in spec.choices or ():  # every offered choice is one the core accepts, and only those
            dataclasses.replace(defaults, **{name: choice}).validated()
        if spec.choices:
            with pytest.raises(ValueError, match="must be one of|unknown"):
                dataclasses.replace(defaults, **{name: "not-a-choice"}).validated()
    args = build_parser().parse_args(["train", str(tmp_path)])
    settings, _ = _train_settings(args)
    assert settings == defaults
    # a value given on the command line reaches TrainSettings, for every field
    argv, expected = ["train", str(tmp_path)], {}
    for name, spec in specs.items():
        value = _other_value(spec)
        expected[name] = value
        if spec.kind == "bool":
            argv.append(spec.option if value else "--no-" + spec.option[2:])
        else:
            argv += [spec.option, ",".join(map(str, value)) if spec.kind == "sizes" else str(value)]
    settings, _ = _train_settings(build_parser().parse_args(argv))
    assert settings == TrainSettings(**expected)


def _other_value(spec):
    """A value of ``spec`` that is not its default."""
    if spec.choices:
        return spec.choices[-1] if spec.default != spec.choices[-1] else spec.choices[0]
    return {"bool": not spec.default, "sizes": (32, 48), "int": (spec.default or 0) + 3,
            "float": round((spec.default or 0.0) / 2 + 0.3, 2), "str": "cuda:1" if spec.name == "device" else "run-7"}[spec.kind]
