"""Checkpoints that would run code when loaded are refused at every place a checkpoint is read
(model weights, training resume, prediction), and checkpoints of the wrong shape get a clear
error naming the file and the tensor."""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import make_tiny_dataset

from napari_aleatoric.data.errors import ModelError
from napari_aleatoric.models import checkpoints
from napari_aleatoric.models.registry import load_model
from napari_aleatoric.training import TrainSettings, load_trained_model, train

SETTINGS = TrainSettings(epochs=1, width=4, depth=3, keep=1.0, batch_size=2, lr=3e-3, device="cpu",
                         val_fraction=0.25, name="run")


class CodeOnLoad:
    """Unpickling this runs ``touch <marker>``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def malicious_files(folder: Path, marker: Path) -> dict[str, Path]:
    """The same payload in every container a checkpoint can be: torch's zip format (alone, nested
    under "model", beside real tensors) and the legacy plain pickle."""
    folder.mkdir(parents=True, exist_ok=True)
    payloads = {
        "zip_top": CodeOnLoad(marker),
        "zip_in_model": {"format": "napari-aleatoric-train/1", "model": {"w": CodeOnLoad(marker)}},
        "zip_beside_tensors": {"weight": torch.zeros(2), "evil": CodeOnLoad(marker)},
    }
    files = {}
    for name, payload in payloads.items():
        files[name] = folder / f"{name}.pt"
        torch.save(payload, files[name])
    files["legacy_pickle"] = folder / "legacy_pickle.pth"
    with files["legacy_pickle"].open("wb") as handle:
        pickle.dump({"weight": CodeOnLoad(marker)}, handle, protocol=2)
    return files


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A finished one-epoch run to tamper with (copied per test)."""
    torch.set_num_threads(1)
    dataset = make_tiny_dataset(tmp_path_factory.mktemp("checkpoints") / "Dataset900_Tiny")
    list(train(dataset, SETTINGS))
    return dataset


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "code-ran"
    yield path
    assert not path.exists(), "loading a checkpoint ran code"


def test_every_model_loader_refuses_code(tmp_path, marker):
    registry = [lambda p: load_model(f"sam-vit-b:{p}", "cpu"), lambda p: load_model(f"medsam:{p}", "cpu"),
                lambda p: load_model(f"litemedsam:{p}", "cpu")]  # (building these networks is slow)
    for kind, path in malicious_files(tmp_path / "files", marker).items():
        for load in [checkpoints.load_state_dict, checkpoints.torch_load_safely] + (
                registry if kind in ("zip_in_model", "legacy_pickle") else []):
            with pytest.raises(ModelError) as info:
                load(path)
            assert info.value.path == path, f"{kind}: {info.value}"
            assert not marker.exists(), f"{kind}: code ran"


@pytest.mark.parametrize("which", ["last.pt", "best.pt"])
def test_training_resume_and_prediction_refuse_code(trained_run, tmp_path, marker, which):
    dataset = tmp_path / "Dataset900_Tiny"
    shutil.copytree(trained_run, dataset)
    run = dataset / ".aleatoric" / "models" / "run"
    evil = malicious_files(tmp_path / "files", marker)
    for kind, path in evil.items():
        shutil.copy(path, run / which)
        with pytest.raises(ModelError, match=which) as info:
            if which == "last.pt":
                list(train(dataset, replace(SETTINGS, epochs=2), run_dir=run, resume=True))
            else:
                load_trained_model(run)
        assert info.value.path == run / which, f"{kind}: {info.value}"
        assert not marker.exists(), f"{kind}: code ran"


def test_checkpoints_of_the_wrong_shape_name_the_file_and_tensor(trained_run, tmp_path):
    dataset = tmp_path / "Dataset900_Tiny"
    shutil.copytree(trained_run, dataset)
    run = dataset / ".aleatoric" / "models" / "run"
    for which in ("best.pt", "last.pt"):
        payload = torch.load(run / which, weights_only=True)
        key = next(k for k, v in payload["model"].items() if v.ndim == 4)
        payload["model"][key] = torch.zeros(3, 3, 3, 3)
        torch.save(payload, run / which)
    with pytest.raises(ModelError, match=rf"best\.pt: .*wrong shape.*{key.replace('.', '[.]')}"):
        load_trained_model(run)
    with pytest.raises(ModelError, match=r"last\.pt: .*does not fit"):
        list(train(dataset, replace(SETTINGS, epochs=2), run_dir=run, resume=True))
    sam_path = tmp_path / "sam.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(1, 1)}, sam_path)
    with pytest.raises(ModelError, match=r"sam\.pth: checkpoint does not fit this model"):
        load_model(f"medsam:{sam_path}", "cpu")
