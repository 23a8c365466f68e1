"""Semantic perception scale (SPS): normalised entropy of a class map's singular-value energy.

This is the paper's measure (Li et al., CVPR 2026; ``docs/method.md`` of the project). For a
decoded class map reshaped to a matrix ``z`` with singular values ``σ_1 ≥ … ≥ σ_r``
(``r = min(rows, cols)``)::

    p_j = σ_j² / (Σ_k σ_k² + ε)            (energy="sigma2", default)
    p_j = σ_j  / (Σ_k σ_k  + ε)            (energy="sigma", the published snippet)
    S   = −Σ_j p_j log p_j / log r         ∈ [0, 1]

High S (energy spread over many directions) means a rich, confident representation; low S (energy
in a few directions) means high aleatoric uncertainty.

Only singular values are needed, so they come from the eigenvalues of the small Gram matrix
(``z zᵀ`` or ``zᵀ z``, whichever is smaller), computed in float64: far cheaper than an SVD.
"""

from __future__ import annotations

from typing import Literal

import torch

from ..torch_threads import one_cpu_thread

Energy = Literal["sigma2", "sigma"]
SvdMode = Literal["D_HW", "H_DW", "W_DH"]

EPS = 1e-12


def squared_singular_values(matrices: torch.Tensor) -> torch.Tensor:
    """σ² of a batch of matrices via the eigenvalues of the smaller Gram matrix.

    Args:
        matrices: ``(..., m, n)`` real tensor on any device.

    Returns:
        ``(..., min(m, n))`` float64 tensor of squared singular values, descending, clamped ≥ 0.
    """
    z = matrices.to(torch.float64)
    m, n = z.shape[-2], z.shape[-1]
    gram = z @ z.transpose(-1, -2) if m <= n else z.transpose(-1, -2) @ z
    with one_cpu_thread(gram.device):
        eigenvalues = torch.linalg.eigvalsh(gram)  # ascending
    return eigenvalues.flip(-1).clamp_min(0.0)


def sps_from_squared_singular_values(sigma2: torch.Tensor, energy: Energy = "sigma2") -> torch.Tensor:
    """Normalised spectral entropy from squared singular values.

    Args:
        sigma2: ``(..., r)`` squared singular values (non-negative), ``r ≥ 2``.
        energy: ``"sigma2"`` uses σ² as the energy (default), ``"sigma"`` uses σ.

    Returns:
        ``(...,)`` float64 SPS in ``[0, 1]``. An all-zero spectrum (a constant zero map) gives 0.
    """
    r = sigma2.shape[-1]
    if r < 2:
        raise ValueError(f"SPS needs at least 2 singular values, got r={r} (a 1×n matrix has one)")
    if energy not in ("sigma2", "sigma"):
        raise ValueError(f"energy must be 'sigma2' or 'sigma', got {energy!r}")
    weights = sigma2 if energy == "sigma2" else sigma2.sqrt()
    p = weights / (weights.sum(-1, keepdim=True) + EPS)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    return (entropy / torch.log(torch.tensor(float(r), dtype=entropy.dtype, device=entropy.device))).clamp(0.0, 1.0)


def class_map_matrix(class_map: torch.Tensor, svd_mode: SvdMode = "D_HW") -> torch.Tensor:
    """Reshape one decoded class map to the matrix whose spectrum defines the SPS.

    Args:
        class_map: ``(..., H, W)`` for a 2D map (kept as an ``H × W`` matrix) or ``(..., D, H, W)``
            for a volume when ``svd_mode`` is given and the map has 3 trailing axes; leading axes
            are batch axes.
        svd_mode: for volumes, ``"D_HW"`` (one row per slice, the paper's default), ``"H_DW"`` or
            ``"W_DH"``.

    Returns:
        ``(..., rows, cols)`` tensor (a view or copy of ``class_map``).
    """
    if class_map.ndim < 3:
        return class_map
    *batch, d, h, w = class_map.shape
    if svd_mode == "D_HW":
        return class_map.reshape(*batch, d, h * w)
    if svd_mode == "H_DW":
        return class_map.movedim(-2, -3).reshape(*batch, h, d * w)
    if svd_mode == "W_DH":
        return class_map.movedim(-1, -3).reshape(*batch, w, d * h)
    raise ValueError(f"svd_mode must be 'D_HW', 'H_DW' or 'W_DH', got {svd_mode!r}")


def semantic_perception_scale(
    class_maps: torch.Tensor,
    *,
    volumetric: bool,
    svd_mode: SvdMode = "D_HW",
    energy: Energy = "sigma2",
) -> torch.Tensor:
    """SPS ``S(Z|c)`` of a batch of class maps, computed on the maps' device.

    Args:
        class_maps: ``(B, H, W)`` 2D maps (``volumetric=False``) or ``(B, D, H, W)`` volumes
            (``volumetric=True``); any real dtype.
        volumetric: whether the last three axes are ``(D, H, W)``.
        svd_mode: matrix layout for volumes (see :func:`class_map_matrix`).
        energy: ``"sigma2"`` (default) or ``"sigma"``.

    Returns:
        ``(B,)`` float64 tensor of SPS values in ``[0, 1]``.
    """
    expected = 4 if volumetric else 3
    if class_maps.ndim != expected:
        raise ValueError(f"expected a {expected}-D batch of class maps, got shape {tuple(class_maps.shape)}")
    matrices = class_map_matrix(class_maps, svd_mode) if volumetric else class_maps
    return sps_from_squared_singular_values(squared_singular_values(matrices), energy)


def class_scales(
    probabilities: torch.Tensor,
    prompted: torch.Tensor,
    *,
    svd_mode: SvdMode = "D_HW",
    energy: Energy = "sigma2",
) -> torch.Tensor:
    """SPS of every foreground class of one case from its decoded class maps.

    Rows of a volume's matrix are only the slices where the class was prompted (annotated):
    slices without the class have no prompt and hence no map, and adding zero rows would lower the
    entropy of classes that span few slices. A class prompted in a single slice (and every 2D case)
    uses that slice's ``H × W`` map as the matrix.

    Args:
        probabilities: ``(C, D, H, W)`` class maps (``D = 1`` for 2D cases).
        prompted: ``(C, D)`` bool, slices where each class was prompted.
        svd_mode: matrix layout for volumes (``"D_HW"``, ``"H_DW"``, ``"W_DH"``).
        energy: ``"sigma2"`` (default) or ``"sigma"``.

    Returns:
        ``(C,)`` float64 SPS, NaN for classes that are absent from the case.
    """
    scales = torch.full((probabilities.shape[0],), float("nan"), dtype=torch.float64, device=probabilities.device)
    for c in range(probabilities.shape[0]):
        slices = torch.nonzero(prompted[c]).flatten()
        if slices.numel() == 0:
            continue
        maps = probabilities[c, slices]
        if slices.numel() == 1:
            scales[c] = semantic_perception_scale(maps, volumetric=False, energy=energy)[0]
        else:
            scales[c] = semantic_perception_scale(maps[None], volumetric=True, svd_mode=svd_mode, energy=energy)[0]
    return scales
