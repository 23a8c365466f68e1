"""Label maps from a trained run (what a GUI 'Predict' button calls).

    labels = predict(run_dir, case.image)          # one call, loads the model each time
    model = load_trained_model(run_dir)            # or load once ...
    labels = model.predict(image)                  # ... and predict many images

The image is given in its file's intensity units (HU for CT), as :func:`napari_aleatoric.data.
dataset.load_case` returns it; it is normalised the way the run was trained. Volumes (and 2D
images larger than the patch) go through MONAI's sliding-window inference with the training patch
size; a model trained on 2D slices segments a volume slice by slice. The result holds the
dataset's label values (0 = background).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.errors import ModelError
from ..models.base import resolve_device
from ..models.checkpoints import load_into
from ..models.preprocess import normalise_intensity
from .loop import segment_logits
from .networks import DuoNet, build_network
from .runs import BEST_CHECKPOINT, LAST_CHECKPOINT, SETTINGS_FILE, load_checkpoint, read_json
from .settings import TrainSettings


@dataclass
class TrainedModel:
    """A trained network ready to segment images.

    Attributes:
        net: the network (eval mode) on ``device``.
        device: where it runs.
        spatial_dims: 2 or 3.
        patch: sliding-window size.
        modality: channel name the intensity normalisation follows.
        class_names: foreground class names in channel order.
        label_values: ``(K,)`` dataset label value of every output channel (background first).
        path: the checkpoint loaded.
        epoch: the epoch it was saved at.
    """

    net: DuoNet
    device: torch.device
    spatial_dims: int
    patch: tuple[int, ...]
    batch_size: int
    modality: str
    class_names: list[str]
    label_values: np.ndarray
    path: Path
    epoch: int

    def _check(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim not in (2, 3) or (self.spatial_dims == 3 and image.ndim != 3):
            raise ValueError(f"this {self.spatial_dims}D model cannot segment an image of shape {image.shape}")
        if not np.isfinite(image).all():
            raise ValueError("the image holds NaN or infinite values")
        return image

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Softmax probabilities ``(K, *image.shape)`` float32 (channel 0 background)."""
        image = normalise_intensity(self._check(image), self.modality)
        with torch.no_grad():
            if image.ndim == self.spatial_dims:
                return self._window(image)
            return np.stack([self._window(s) for s in image], axis=1)

    def _window(self, image: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None].to(self.device)
        logits = segment_logits(self.net, tensor, self.patch, self.batch_size)
        return torch.softmax(logits, dim=1)[0].float().cpu().numpy()

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Label map of ``image``'s shape holding the dataset's label values."""
        channels = self.probabilities(image).argmax(0)
        return self.label_values[channels]


def load_trained_model(model_dir: str | Path, *, device: str | torch.device | None = None,
                       checkpoint: str = "best") -> TrainedModel:
    """Load a run's ``best.pt`` (or ``last.pt`` with ``checkpoint="last"``).

    Raises:
        ModelError: not a run folder, missing or damaged checkpoint, or one that does not fit.
        ValueError: unknown ``checkpoint`` or unavailable ``device``.
    """
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    model_dir = Path(model_dir)
    record = read_json(model_dir / SETTINGS_FILE)
    try:
        settings = TrainSettings.from_dict(record["settings"])
        classes = record["classes"]
        spatial_dims = int(record["spatial_dims"])
        patch = tuple(int(p) for p in record["patch"])
        values = [int(record.get("background_value", 0))] + [int(c["value"]) for c in classes]
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(model_dir / SETTINGS_FILE, f"incomplete run settings: {error}") from error
    path = model_dir / (BEST_CHECKPOINT if checkpoint == "best" else LAST_CHECKPOINT)
    payload = load_checkpoint(path)
    device = resolve_device(device)
    net = build_network(settings.network, spatial_dims, len(values), width=settings.width, depth=settings.depth,
                        detach_noise_input=settings.noise_training != "target")
    load_into(net, payload["model"], path)
    net.to(device).eval()
    dtype = np.uint8 if max(values) < 256 else np.int32
    return TrainedModel(net=net, device=device, spatial_dims=spatial_dims, patch=patch,
                        batch_size=int(record.get("batch_size", 2)), modality=str(record.get("modality", "")),
                        class_names=[str(c["name"]) for c in classes], label_values=np.array(values, dtype=dtype),
                        path=path, epoch=int(payload.get("epoch", 0)))


def predict(model_dir: str | Path, image: np.ndarray, *, device: str | torch.device | None = None,
            checkpoint: str = "best") -> np.ndarray:
    """Segment one image with a trained run; returns a label map of the image's shape.

    Args:
        model_dir: the run folder (``<dataset>/.aleatoric/models/<run name>``).
        image: ``(H, W)`` or ``(D, H, W)`` intensities in file units.
        device: ``None`` = CUDA if available, else CPU.
        checkpoint: ``"best"`` (default) or ``"last"``.
    """
    return load_trained_model(model_dir, device=device, checkpoint=checkpoint).predict(image)
