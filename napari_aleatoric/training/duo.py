"""Dynamic Uncertainty-aware Optimization (DUO), the paper's strategy 2, in pure torch.

Per sample ``i`` and foreground class ``c`` (``docs/method.md`` §3 of the project)::

    L     = (1/N) Σ_i Σ_c  L_seg( f_θ1(x_i)_c , ỹ_i,c ) / (1 + α · S(f_θ1(x_i)_c))
    ỹ_i   = y_i − ε̂_i · f_θ2(x_i),      ε̂ normalised to mean 0, variance 1 over the batch
    L_seg = β · Dice + (1 − β) · BCE

How the symbols are realised here (``docs/training.md`` explains each choice):

- ``f_θ1(x)_c`` is the softmax probability ``p_c`` of foreground class ``c`` (the network has one
  channel per label, background included; background is never a term of the loss).
- ``S`` is the semantic perception scale of ``p_c`` as an ``H × W`` matrix (2D) or ``D × (H·W)``
  (3D, ``svd_mode``) computed for the whole batch in one call of
  :func:`napari_aleatoric.uncertainty.sps.semantic_perception_scale`, without gradient.
- ``f_θ2(x)`` is ``sigmoid`` of the noise head's logits, one map per foreground class: the
  estimated amplitude of the label noise at each pixel.
- ``ε̂`` (default ``epsilon="gaussian"``) is a standard normal sample per pixel, normalised to mean
  0 and variance 1 over the batch (per class, over batch and pixels): ``ỹ = y − ε̂·f_θ2`` is the
  label perturbed by noise of the estimated amplitude (the reparameterisation of Kendall & Gal),
  and θ2 learns through ``ỹ`` (``noise_training="target"``). Averaged over ``ε`` the loss lowers
  ``f_θ2`` where the prediction agrees with the label and raises it only where it cannot fit the
  label, so it cannot collapse. ``epsilon="noise-map"`` normalises ``f_θ2`` itself instead; it is
  kept for comparison and measured to rewrite most foreground labels (``docs/training.md``).
- ``ỹ`` is clamped to ``[0, 1]`` before it enters Dice and BCE.
- Dice is MONAI's soft Dice with the soft-label formulation (exact for binary targets, minimal at
  ``p = ỹ`` for soft ones); BCE is computed from the log-softmax, so it is exact and stable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from ..uncertainty.sps import class_map_matrix, semantic_perception_scale, sps_from_squared_singular_values

#: floor of the standard deviation in :func:`standardise_over_batch`: a (nearly) constant map is
#: divided by the floor, not by ~0 (√0 has an infinite gradient: a measured run went NaN)
STD_FLOOR = 1e-3
SMOOTH = 1e-5

_dice = DiceLoss(include_background=True, reduction="none", soft_label=True, smooth_nr=SMOOTH, smooth_dr=SMOOTH)


@dataclass
class LossParts:
    """What one loss evaluation produced.

    Attributes:
        total: what to back-propagate: ``loss + noise_weight · noise_loss``.
        loss: the segmentation loss ``L`` (DUO, or the plain loss when DUO is off).
        noise_loss: the noise head's own loss (zero tensor when it has none).
        per_class: ``(B, C)`` unweighted ``L_seg`` per sample and foreground class (detached).
        weights: ``(B, C)`` ``1 / (1 + α·S)`` (ones when weighting is off).
        scales: ``(B, C)`` SPS of the prediction, or ``None`` when not computed.
        targets: ``(B, C, ...)`` the targets the loss used (``ỹ`` or ``y``), detached.
    """

    total: torch.Tensor
    loss: torch.Tensor
    noise_loss: torch.Tensor
    per_class: torch.Tensor
    weights: torch.Tensor
    scales: torch.Tensor | None
    targets: torch.Tensor


def foreground_log_probabilities(seg_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p_c`` and ``log(1 − p_c)`` of every foreground channel under a softmax over all channels.

    Args:
        seg_logits: ``(B, K, ...)`` logits, channel 0 = background, ``K ≥ 2``.

    Returns:
        two ``(B, K − 1, ...)`` tensors; ``log(1 − p_c)`` is the log-sum-exp of the other channels
        minus that of all channels, exact even where ``p_c`` rounds to 1.
    """
    total = torch.logsumexp(seg_logits, dim=1, keepdim=True)
    log_p = seg_logits[:, 1:] - total
    k = seg_logits.shape[1]
    others = []
    for c in range(1, k):
        rest = torch.cat([seg_logits[:, :c], seg_logits[:, c + 1:]], dim=1)
        others.append(torch.logsumexp(rest, dim=1, keepdim=True))
    return log_p, torch.cat(others, dim=1) - total


def prediction_scales(probabilities: torch.Tensor, *, svd_mode: str = "D_HW", energy: str = "sigma2") -> torch.Tensor:
    """SPS ``S(f_θ1(x_i)_c)`` of every (sample, class) map, batched, without gradient.

    Args:
        probabilities: ``(B, C, H, W)`` or ``(B, C, D, H, W)`` foreground probability maps.
        svd_mode, energy: as in :func:`napari_aleatoric.uncertainty.sps.semantic_perception_scale`.

    Returns:
        ``(B, C)`` float32 SPS in ``[0, 1]`` on the maps' device. Non-finite map values count as 0.
        If LAPACK cannot solve the Gram matrices' eigenvalues (ill-conditioned), the singular values
        come from ``torch.linalg.svdvals`` instead; if that fails too, S = 0 (weight 1, the
        unweighted loss) for the whole batch.
    """
    b, c, *spatial = probabilities.shape
    if len(spatial) not in (2, 3):
        raise ValueError(f"expected (B, C, H, W) or (B, C, D, H, W) maps, got {tuple(probabilities.shape)}")
    volumetric = len(spatial) == 3
    with torch.no_grad():
        maps = torch.nan_to_num(probabilities.detach().reshape(b * c, *spatial), nan=0.0, posinf=0.0, neginf=0.0)
        try:
            scales = semantic_perception_scale(maps, volumetric=volumetric, svd_mode=svd_mode, energy=energy)
        except torch.linalg.LinAlgError:
            matrices = class_map_matrix(maps, svd_mode) if volumetric else maps
            try:
                sigma2 = torch.linalg.svdvals(matrices.to(torch.float64)) ** 2
                scales = sps_from_squared_singular_values(sigma2, energy)
            except torch.linalg.LinAlgError:
                scales = torch.zeros(b * c, dtype=torch.float64, device=maps.device)
    return scales.to(torch.float32).reshape(b, c)


def duo_weights(scales: torch.Tensor, alpha: float) -> torch.Tensor:
    """The DUO weights ``1 / (1 + α·S)``, in ``[1/(1+α), 1]`` for ``S ∈ [0, 1]``."""
    return 1.0 / (1.0 + alpha * scales)


def standardise_over_batch(noise: torch.Tensor) -> torch.Tensor:
    """``ε̂ = (f − mean) / std`` per class over the batch and all pixels (population std).

    Args:
        noise: ``(B, C, ...)`` noise-head maps ``f_θ2(x)``.

    Returns:
        ``(B, C, ...)`` with mean 0 and variance 1 over every axis but the class axis (a map
        whose standard deviation is below :data:`STD_FLOOR` is divided by the floor instead).
    """
    axes = [0, *range(2, noise.ndim)]
    var, mean = torch.var_mean(noise, dim=axes, keepdim=True, correction=0)
    return (noise - mean) / var.clamp_min(STD_FLOOR ** 2).sqrt()  # clamp before √: no infinite gradient


def denoise_targets(targets: torch.Tensor, noise: torch.Tensor, epsilon: torch.Tensor | None = None) -> torch.Tensor:
    """The paper's label denoising ``ỹ = y − ε̂ · f_θ2(x)``, clamped to ``[0, 1]``.

    Args:
        targets: ``(B, C, ...)`` one-hot foreground labels ``y``.
        noise: ``(B, C, ...)`` noise maps ``f_θ2(x)`` in ``[0, 1]`` (gradient kept if it has one).
        epsilon: ``(B, C, ...)`` raw ``ε`` (e.g. a standard normal sample); ``ε̂`` is it normalised
            with :func:`standardise_over_batch`. ``None`` takes ``ε`` from the noise map itself
            (the ``"noise-map"`` reading).
    """
    eps = standardise_over_batch(noise if epsilon is None else epsilon)
    return (targets - eps * noise).clamp(0.0, 1.0)


def segmentation_loss(log_p: torch.Tensor, log_1mp: torch.Tensor, targets: torch.Tensor, beta: float,
                      probabilities: torch.Tensor | None = None,
                      pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """``L_seg = β·Dice + (1 − β)·BCE`` per sample and class.

    Args:
        log_p, log_1mp: ``(B, C, ...)`` from :func:`foreground_log_probabilities`.
        targets: ``(B, C, ...)`` targets in ``[0, 1]``.
        beta: Dice share.
        probabilities: ``log_p.exp()`` if already computed.
        pixel_weights: ``(B, 1, ...)`` per-pixel weights in ``[0, 1]`` (label-issue weighting), or
            ``None``. A pixel of weight ``w`` counts ``w`` times in the BCE mean and in the Dice
            sums (intersection and both areas), so a weight-0 pixel teaches nothing.

    Returns:
        ``(B, C)`` losses (Dice: soft Dice over the sample's pixels; BCE: mean over its pixels).
    """
    b, c = targets.shape[:2]
    bce_pixels = -(targets * log_p + (1.0 - targets) * log_1mp)
    if pixel_weights is not None:
        bce_pixels = bce_pixels * pixel_weights
    bce = bce_pixels.reshape(b, c, -1).mean(-1)
    if beta == 0:
        return bce
    p = log_p.exp() if probabilities is None else probabilities
    if pixel_weights is None:
        dice = _dice(p, targets).reshape(b, c)
    else:
        dice = weighted_dice_loss(p, targets, pixel_weights)
    return beta * dice + (1.0 - beta) * bce


def weighted_dice_loss(probabilities: torch.Tensor, targets: torch.Tensor, pixel_weights: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss per sample and class with per-pixel weights (the soft-label form MONAI uses).

    ``1 − (2·Σ w·p·t + s) / (Σ w·p + Σ w·t + s)``; with ``w = 1`` it equals MONAI's
    ``DiceLoss(soft_label=True)`` for binary targets (tested).

    Args:
        probabilities, targets: ``(B, C, ...)``.
        pixel_weights: ``(B, 1, ...)`` in ``[0, 1]``.

    Returns:
        ``(B, C)``.
    """
    b, c = targets.shape[:2]
    w = pixel_weights.expand_as(targets).reshape(b, c, -1)
    p = probabilities.reshape(b, c, -1)
    t = targets.reshape(b, c, -1)
    intersection = (w * p * t).sum(-1)
    areas = (w * p).sum(-1) + (w * t).sum(-1)
    return 1.0 - (2.0 * intersection + SMOOTH) / (areas + SMOOTH)


def duo_loss(
    seg_logits: torch.Tensor,
    noise_logits: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    weighting: bool = True,
    denoising: bool = True,
    noise_training: str = "target",
    noise_weight: float = 1.0,
    epsilon: str = "gaussian",
    generator: torch.Generator | None = None,
    svd_mode: str = "D_HW",
    energy: str = "sigma2",
    pixel_weights: torch.Tensor | None = None,
) -> LossParts:
    """The DUO loss of one batch (or the plain loss with ``weighting=denoising=False``).

    Args:
        seg_logits: ``(B, K, ...)`` segmentation logits, channel 0 background.
        noise_logits: ``(B, K − 1, ...)`` noise-head logits (needed when ``denoising``).
        targets: ``(B, K − 1, ...)`` one-hot foreground labels ``y`` (float).
        alpha: weight strength α (``1/(1 + α·S)``).
        beta: Dice share β of ``L_seg``.
        weighting: apply the per-sample, per-class weights.
        denoising: replace ``y`` by ``ỹ``.
        noise_training: ``"target"``: ỹ keeps its gradient, θ2 learns through the loss (the
            paper's loss as written); ``"disagreement"``: ỹ uses the detached noise map and the
            noise head gets its own loss ``BCE(f_θ2, |y − p|)`` (``p`` detached); ``"none"``: ỹ
            detached, no noise loss (the published snippet).
        noise_weight: factor of the noise head's loss in ``total``.
        epsilon: ``"gaussian"``: ``ε ~ N(0, 1)`` per pixel, normalised over the batch, and
            ``f_θ2`` is the noise amplitude (reparameterised label noise); ``"noise-map"``:
            ``ε̂`` is the noise map itself normalised over the batch.
        generator: random generator for the ``"gaussian"`` sample (on the logits' device).
        svd_mode, energy: SPS options.
        pixel_weights: ``(B, 1, ...)`` label-issue loss weights (see :func:`segmentation_loss`), or ``None``.

    Returns:
        :class:`LossParts`; ``loss`` is exactly the formula above.
    """
    log_p, log_1mp = foreground_log_probabilities(seg_logits)
    probabilities = log_p.exp()
    b, c = targets.shape[:2]
    if log_p.shape != targets.shape:
        raise ValueError(f"targets {tuple(targets.shape)} do not match the foreground channels {tuple(log_p.shape)}")
    zero = seg_logits.new_zeros(())
    scales = None
    weights = torch.ones((b, c), dtype=seg_logits.dtype, device=seg_logits.device)
    if weighting:
        scales = prediction_scales(probabilities, svd_mode=svd_mode, energy=energy)
        weights = duo_weights(scales, alpha).to(seg_logits.dtype)
    used = targets
    noise_loss = zero
    if denoising:
        if noise_logits is None or noise_logits.shape != targets.shape:
            raise ValueError("denoising needs noise logits with one channel per foreground class")
        noise = torch.sigmoid(noise_logits)
        sample = None
        if epsilon == "gaussian":
            sample = torch.randn(targets.shape, generator=generator, device=targets.device, dtype=targets.dtype)
        elif epsilon != "noise-map":
            raise ValueError(f"unknown epsilon {epsilon!r}")
        if noise_training == "target":
            used = denoise_targets(targets, noise, sample)
        else:
            used = denoise_targets(targets, noise.detach(), sample)
            if noise_training == "disagreement":
                disagreement = (targets - probabilities.detach()).abs()
                noise_loss = F.binary_cross_entropy_with_logits(noise_logits, disagreement)
            elif noise_training != "none":
                raise ValueError(f"unknown noise training {noise_training!r}")
    per_class = segmentation_loss(log_p, log_1mp, used, beta, probabilities, pixel_weights)
    loss = (per_class * weights).sum(dim=1).mean()
    return LossParts(total=loss + noise_weight * noise_loss, loss=loss, noise_loss=noise_loss,
                     per_class=per_class.detach(), weights=weights.detach(), scales=scales,
                     targets=used.detach())
