"""Per-pixel uncertainty maps of the foundation model's class probabilities.

The map of class ``c`` is the binary entropy of the model's probability ``p`` that the pixel
belongs to ``c`` (given box prompts from the annotation), divided by ``log 2``::

    u = −(p log p + (1 − p) log(1 − p)) / log 2        ∈ [0, 1]

It is 1 where the model is split 50/50 (blurred, ambiguous boundaries, low contrast) and 0 where it
is certain either way. It shows *where* the model hesitates about a class, not whether the
annotation is right.
"""

from __future__ import annotations

import math

import torch

PROBABILITY_FLOOR = 1e-6


def binary_entropy_map(probabilities: torch.Tensor) -> torch.Tensor:
    """Normalised binary entropy, element-wise.

    Args:
        probabilities: any-shape tensor of probabilities in ``[0, 1]``.

    Returns:
        tensor of the same shape and dtype with values in ``[0, 1]``.
    """
    p = probabilities.clamp(PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return (-(p * p.log() + (1 - p) * (1 - p).log()) / math.log(2.0)).to(probabilities.dtype)
