"""A tiny, randomly initialised SAM-like model with the real interface, for fast tests."""

from __future__ import annotations

import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer
from torch import nn

from .base import FoundationModel

TINY_INPUT_SIZE = 64
TINY_EMBED_DIM = 32


class TinyImageEncoder(nn.Module):
    """Two strided convolutions: ``(B, 3, 64, 64)`` → ``(B, 32, 4, 4)`` (stride 16 like SAM)."""

    def __init__(self, embed_dim: int = TINY_EMBED_DIM):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=4, stride=4), nn.GELU(),
            nn.Conv2d(16, embed_dim, kernel_size=4, stride=4),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


def build_tiny_model(device: torch.device, seed: int = 0) -> FoundationModel:
    """The tiny model, identical for a given seed: 64 px input, 16 px mask logits, 4 feature channels."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        side = TINY_INPUT_SIZE // 16
        encoder = TinyImageEncoder()
        prompt_encoder = PromptEncoder(embed_dim=TINY_EMBED_DIM, image_embedding_size=(side, side),
                                       input_image_size=(TINY_INPUT_SIZE, TINY_INPUT_SIZE), mask_in_chans=4)
        decoder = MaskDecoder(num_multimask_outputs=3, transformer_dim=TINY_EMBED_DIM,
                              transformer=TwoWayTransformer(depth=1, embedding_dim=TINY_EMBED_DIM, mlp_dim=64, num_heads=2),
                              iou_head_depth=1, iou_head_hidden_dim=16)
    finally:
        torch.random.set_rng_state(generator_state)
    return FoundationModel(f"tiny@seed{seed}", encoder, prompt_encoder, decoder, TINY_INPUT_SIZE,
                           lambda images01: images01 * 2.0 - 1.0, device)
