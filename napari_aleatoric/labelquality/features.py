"""Per-pixel features of one slice: the frozen image embedding and multi-scale intensity filters."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..models.preprocess import Resize

#: Gaussian scales (pixels) of the intensity filters.
INTENSITY_SIGMAS = (1.0, 2.0, 4.0)
#: Embedding channels kept after the fixed random projection.
EMBEDDING_CHANNELS = 24
_PROJECTION_SEED = 20261128


def intensity_features(slice01: np.ndarray) -> np.ndarray:
    """Intensity, Gaussian-smoothed intensity, gradient magnitude and Laplacian of Gaussian.

    Args:
        slice01: ``(H, W)`` intensities in ``[0, 1]``.

    Returns:
        ``(1 + 3·len(INTENSITY_SIGMAS), H, W)`` float32.
    """
    image = np.asarray(slice01, dtype=np.float32)
    features = [image]
    for sigma in INTENSITY_SIGMAS:
        features.append(ndimage.gaussian_filter(image, sigma))
        features.append(ndimage.gaussian_gradient_magnitude(image, sigma))
        features.append(ndimage.gaussian_laplace(image, sigma))
    return np.stack(features).astype(np.float32)


def embedding_projection(channels: int, out_channels: int = EMBEDDING_CHANNELS) -> torch.Tensor:
    """A fixed (seeded) random orthonormal projection ``(out_channels, channels)``.

    The same matrix on every machine and run, so features and cached classifiers stay comparable;
    a random projection keeps distances (and hence what a classifier can separate) approximately.
    """
    generator = torch.Generator().manual_seed(_PROJECTION_SEED + channels)
    gaussian = torch.randn(channels, min(out_channels, channels), generator=generator, dtype=torch.float64)
    orthonormal, _ = torch.linalg.qr(gaussian)
    return orthonormal.T.to(torch.float32).contiguous()


def embedding_features(embedding: torch.Tensor | np.ndarray, height: int, width: int, input_size: int) -> np.ndarray:
    """Project an image embedding and bring it to the slice's pixels.

    Args:
        embedding: ``(E, h, w)`` or ``(1, E, h, w)`` embedding of the slice's padded ``S × S`` model
            input (``S = input_size``).
        height, width: the slice's size in pixels.
        input_size: the model's input side ``S``.

    Returns:
        ``(EMBEDDING_CHANNELS, H, W)`` float32, bilinearly interpolated.
    """
    tensor = torch.as_tensor(np.asarray(embedding) if not torch.is_tensor(embedding) else embedding)
    tensor = tensor.detach().to("cpu", torch.float32)
    if tensor.ndim == 4:
        tensor = tensor[0]
    projected = torch.einsum("pe,ehw->phw", embedding_projection(tensor.shape[0]), tensor)
    return Resize(height, width, input_size).logits_to_image(projected).numpy()


def slice_features(slice01: np.ndarray, embedding: torch.Tensor | np.ndarray, input_size: int) -> np.ndarray:
    """All per-pixel features of one slice.

    Args:
        slice01: ``(H, W)`` intensities in ``[0, 1]`` (the model's input before resizing).
        embedding: the model's embedding of that slice (see :func:`embedding_features`).
        input_size: the model's input side in pixels.

    Returns:
        ``(F, H, W)`` float32 with ``F = EMBEDDING_CHANNELS + 1 + 3·len(INTENSITY_SIGMAS)``.
    """
    height, width = slice01.shape
    return np.concatenate([embedding_features(embedding, height, width, input_size), intensity_features(slice01)])
