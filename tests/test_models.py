"""Foundation-model interface, preprocessing and safe, verified checkpoint loading."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_aleatoric.data.errors import ModelError
from napari_aleatoric.models import checkpoints
from napari_aleatoric.models.base import resolve_device
from napari_aleatoric.models.preprocess import Resize, normalise_intensity
from napari_aleatoric.models.prompting import SlicePredictor
from napari_aleatoric.models.registry import load_model, model_identity
from napari_aleatoric.data.arraycache import ArrayCache
from conftest import device_option


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny", device_option())


def test_tiny_model_decodes_boxes_points_and_features(tiny):
    embedding = tiny.embed(torch.rand(1, 3, 64, 64))
    assert embedding.device.type == torch.device(device_option()).type
    assert embedding.shape == (1, 32, 4, 4)
    decoded = tiny.decode(embedding, boxes=torch.tensor([[4.0, 4.0, 30.0, 30.0], [0.0, 0.0, 63.0, 63.0]]),
                          with_features=True)
    assert decoded.logits.shape == (2, 16, 16) and decoded.features.shape == (2, 4, 16, 16)
    by_points = tiny.decode(embedding, points=torch.tensor([[[10.0, 10.0], [40.0, 40.0]]]),
                            point_labels=torch.tensor([[1, 0]]))
    assert by_points.logits.shape == (1, 16, 16) and by_points.features is None
    assert tiny.seconds_in_model > 0


def test_tiny_model_is_identical_for_the_same_seed():
    a, b = load_model("tiny", device_option()), load_model("tiny", device_option())
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(a.embed(x), b.embed(x))
    assert model_identity("tiny") == a.name


def test_resize_maps_coordinates_and_logits_back():
    resize = Resize(height=100, width=200, size=64)
    assert resize.scale == pytest.approx(0.32) and resize.resized_shape == (32, 64)
    model_input = resize.image_to_model(np.ones((100, 200), np.float32))
    assert model_input.shape == (1, 3, 64, 64)
    assert model_input[0, 0, :32].min() > 0.99 and model_input[0, 0, 33:].max() == 0.0
    box = resize.coords_to_model(torch.tensor([[10.0, 20.0, 110.0, 90.0]]))
    assert box[0].tolist() == pytest.approx([3.2, 6.4, 35.2, 28.8])
    logits = torch.zeros(1, 16, 16)
    logits[:, :8, :] = 5.0
    back = resize.logits_to_image(logits)
    assert back.shape == (1, 100, 200) and back.min() > 4.9


def test_slice_predictor_returns_logits_at_slice_resolution_and_caches_embedding(tiny, tmp_path):
    slice01 = np.random.default_rng(0).random((50, 70)).astype(np.float32)
    cache = ArrayCache(tmp_path / "embeddings")
    first = SlicePredictor(tiny, slice01, cache)
    logits, _ = first.predict(boxes=np.array([[5, 5, 40, 30]], np.float32))
    assert logits.shape == (1, 50, 70) and not first.embedding_was_cached
    second = SlicePredictor(tiny, slice01, cache)
    assert second.embedding_was_cached
    again, _ = second.predict(boxes=np.array([[5, 5, 40, 30]], np.float32))
    assert torch.allclose(logits, again, atol=1e-2)


def test_ct_is_windowed_and_mr_uses_percentiles():
    ct = np.array([[-1000.0, -160.0, 40.0, 240.0, 3000.0]])
    np.testing.assert_allclose(normalise_intensity(ct, "CT"), [[0.0, 0.0, 0.5, 1.0, 1.0]])
    mr = np.linspace(0, 1000, 1001)[None]
    out = normalise_intensity(mr, "MRI")
    assert out.min() == 0.0 and out.max() == 1.0 and out[0, 500] == pytest.approx(0.5, abs=1e-3)
    fg = np.zeros_like(mr, bool)
    fg[0, 400:600] = True
    masked = normalise_intensity(mr, "MRI", "masknorm", fg)
    assert masked[0, 399] == 0.0 and masked[0, 600] == 1.0


def test_code_running_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        pickle.dump({"weight": Exploit()}, handle)
    with pytest.raises(ModelError, match="evil.pth"):
        checkpoints.load_state_dict(path)
    assert not marker.exists()


def test_checkpoint_with_wrong_shapes_names_the_tensor(tmp_path):
    model = load_model("tiny", "cpu")
    state = {f"image_encoder.{k}": v for k, v in model.image_encoder.state_dict().items()}
    key = "image_encoder.layers.0.weight"
    state[key] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    from napari_aleatoric.models.tiny import TinyImageEncoder

    wrapper = torch.nn.Module()
    wrapper.image_encoder = TinyImageEncoder()
    with pytest.raises(ModelError, match="wrong shape.*layers.0.weight"):
        checkpoints.load_into(wrapper, checkpoints.load_state_dict(path), path)


def test_missing_and_corrupt_checkpoints_are_named(tmp_path):
    with pytest.raises(ModelError, match="sam.pth.*not found"):
        load_model(f"sam-vit-b:{tmp_path / 'sam.pth'}", "cpu")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(ModelError, match="broken.pth"):
        load_model(f"medsam:{broken}", "cpu")
    with pytest.raises(ModelError, match="unknown model"):
        load_model("resnet", "cpu")


def test_litemedsam_file_is_verified_by_size_and_hash(tmp_path):
    fake = tmp_path / "lite_medsam.pth"
    fake.write_bytes(b"0" * 100)
    with pytest.raises(ModelError, match="lite_medsam.pth.*100 bytes"):
        checkpoints.verify_litemedsam(fake)
    same_size = tmp_path / "same_size.pth"
    with same_size.open("wb") as handle:
        handle.truncate(checkpoints.LITEMEDSAM_SIZE)
    with pytest.raises(ModelError, match="SHA-256"):
        checkpoints.verify_litemedsam(same_size)


def test_unavailable_device_is_refused_with_its_name(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None).type == "cpu"
    with pytest.raises(ValueError, match="cuda:1"):
        resolve_device("cuda:1")


@pytest.mark.slow
def test_real_litemedsam_loads_offline_with_documented_shapes():
    path = checkpoints.litemedsam_checkpoint_path()
    assert path.stat().st_size == checkpoints.LITEMEDSAM_SIZE
    model = load_model("litemedsam", device_option())
    assert model.name == model_identity("litemedsam") and model.input_size == 256
    image = torch.zeros(1, 3, 256, 256)
    image[:, :, 80:170, 60:200] = 1.0
    embedding = model.embed(image)
    assert embedding.shape == (1, 256, 64, 64)
    decoded = model.decode(embedding, boxes=torch.tensor([[55.0, 75.0, 205.0, 175.0]]), with_features=True)
    assert decoded.logits.shape == (1, 256, 256) and decoded.features.shape == (1, 32, 256, 256)
    mask = decoded.logits[0] > 0
    inside = mask[80:170, 60:200].float().mean()
    assert decoded.logits.device.type == torch.device(device_option()).type
    outside = mask[:60].float().mean()
    assert inside > 0.8 and outside < 0.05
