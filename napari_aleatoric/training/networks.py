"""Task networks: a MONAI backbone with the paper's two heads (segmentation θ1, noise estimation θ2).

::

    x ──► MONAI backbone (UNet / SegResNet / SwinUNETR, out_channels = F) ──► features (B, F, ...)
              ├──► seg head:   1×1 conv F → K            (K = background + foreground classes)
              └──► noise head: 1×1 conv F → K − 1                         (one map per class)

The segmentation path is the plain MONAI network followed by a 1×1 convolution, so a model
trained without DUO is an ordinary MONAI segmentation network. The noise head is another 1×1
convolution on the shared features; it starts with zero weights and bias −4 (an estimated label noise of ≈ 0.02, so
the denoising starts as a no-op); with ``detach_noise_input=True`` (noise training
``"disagreement"`` or ``"none"``) it reads the features without gradient, so nothing it learns
changes the segmentation network.
"""

from __future__ import annotations

import torch
from torch import nn

from .settings import NETWORKS

#: initial bias of the noise head's output: the estimated label noise starts near 0 (sigmoid(−4) ≈ 0.018)
NOISE_BIAS_INIT = -4.0


def size_divisor(network: str, depth: int) -> int:
    """Every spatial size of a patch must be a multiple of this."""
    if network == "swinunetr":
        return 32
    return 2 ** (depth - 1)


def _conv(spatial_dims: int):
    return nn.Conv2d if spatial_dims == 2 else nn.Conv3d


def build_backbone(network: str, spatial_dims: int, out_channels: int, width: int, depth: int) -> nn.Module:
    """The MONAI network producing ``out_channels`` feature maps at the input resolution.

    Raises:
        ValueError: unknown network, or an optional dependency of the network is missing.
    """
    if network == "unet":
        from monai.networks.nets import UNet  # noqa: PLC0415

        return UNet(spatial_dims=spatial_dims, in_channels=1, out_channels=out_channels,
                    channels=tuple(width * 2 ** k for k in range(depth)), strides=(2,) * (depth - 1),
                    num_res_units=2, norm="INSTANCE")
    if network == "segresnet":
        from monai.networks.nets import SegResNet  # noqa: PLC0415

        groups = 8 if width % 8 == 0 else 1
        return SegResNet(spatial_dims=spatial_dims, init_filters=width, in_channels=1, out_channels=out_channels,
                         blocks_down=(1,) + (2,) * (depth - 2) + (4,),
                         blocks_up=(1,) * (depth - 1), norm=("GROUP", {"num_groups": groups}))
    if network == "swinunetr":
        try:
            import einops  # noqa: F401, PLC0415
        except ImportError as error:
            raise ValueError("network 'swinunetr' needs the package 'einops' (pip install einops)") from error
        from monai.networks.nets import SwinUNETR  # noqa: PLC0415

        feature_size = max(12, -(-width // 12) * 12)
        return SwinUNETR(in_channels=1, out_channels=out_channels, feature_size=feature_size,
                         spatial_dims=spatial_dims)
    raise ValueError(f"unknown network {network!r} (choose one of {', '.join(NETWORKS)})")


class DuoNet(nn.Module):
    """A backbone with a segmentation head and a noise-estimation head.

    Args:
        backbone: maps ``(B, 1, ...)`` to ``(B, features, ...)``.
        spatial_dims: 2 or 3.
        features: channels of the backbone's output.
        num_labels: segmentation channels ``K`` (background included).
        detach_noise_input: feed the noise head detached features.
    """

    def __init__(self, backbone: nn.Module, spatial_dims: int, features: int, num_labels: int,
                 detach_noise_input: bool = True):
        super().__init__()
        conv = _conv(spatial_dims)
        self.backbone = backbone
        self.seg_head = conv(features, num_labels, kernel_size=1)
        self.noise_head = conv(features, num_labels - 1, kernel_size=1)
        nn.init.zeros_(self.noise_head.weight)  # f_θ2 = sigmoid(−4) ≈ 0.02 everywhere at start
        nn.init.constant_(self.noise_head.bias, NOISE_BIAS_INIT)
        self.detach_noise_input = detach_noise_input

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(seg_logits (B, K, ...), noise_logits (B, K − 1, ...))``."""
        features = self.backbone(x)
        noise_input = features.detach() if self.detach_noise_input else features
        return self.seg_head(features), self.noise_head(noise_input)

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        """Segmentation logits only (for inference; the noise head is not evaluated)."""
        return self.seg_head(self.backbone(x))


def build_network(network: str, spatial_dims: int, num_labels: int, *, width: int = 16, depth: int = 4,
                  detach_noise_input: bool = True) -> DuoNet:
    """A :class:`DuoNet` for ``num_labels`` labels (background included), 2D or 3D."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if num_labels < 2:
        raise ValueError("a segmentation network needs at least one foreground class")
    features = max(8, width)
    backbone = build_backbone(network, spatial_dims, features, width, depth)
    return DuoNet(backbone, spatial_dims, features, num_labels, detach_noise_input)
