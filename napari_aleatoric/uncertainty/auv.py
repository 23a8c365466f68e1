"""Aleatoric uncertainty value (AUV): dataset min-max normalisation of log SPS, and the filters.

    AUV_i = 1 − (log S_i − min_k log S_k) / (max_k log S_k − min_k log S_k)   ∈ [0, 1]

AUV near 1 marks the most uncertain (hardest) sample of the scored dataset. The same formula over
the per-class scales ``S(Z_i|c)`` gives a per-class AUV. Missing values (NaN: a class absent from a
case) stay NaN and do not take part in the min and max.
"""

from __future__ import annotations

import numpy as np

LOG_FLOOR = 1e-12


def auv_from_sps(sps: np.ndarray) -> np.ndarray:
    """Min-max normalised ``1 − log S`` over the dataset.

    Args:
        sps: ``(N,)`` or ``(N, C)`` SPS values in ``[0, 1]``; NaN where missing. For ``(N, C)`` the
            normalisation is done per column (per class).

    Returns:
        Array of the same shape with AUV in ``[0, 1]`` (NaN where the input is NaN). A column whose
        finite values are all equal gets AUV 0 (no case is more uncertain than another).
    """
    values = np.asarray(sps, dtype=np.float64)
    logs = np.log(np.clip(values, LOG_FLOOR, None))
    logs[np.isnan(values)] = np.nan
    squeeze = logs.ndim == 1
    if squeeze:
        logs = logs[:, None]
    out = np.full_like(logs, np.nan)
    for column in range(logs.shape[1]):
        col = logs[:, column]
        finite = np.isfinite(col)
        if not finite.any():
            continue
        low, high = col[finite].min(), col[finite].max()
        span = high - low
        out[finite, column] = 0.0 if span <= 0 else 1.0 - (col[finite] - low) / span
    return out[:, 0] if squeeze else out


def keep_mask(auv: np.ndarray, quantile: float = 0.95) -> np.ndarray:
    """Strategy 1 of the paper: keep samples whose AUV is at or below the dataset's quantile.

    Args:
        auv: ``(N,)`` AUV values (NaN = unscored, kept).
        quantile: ``p̃`` in ``(0, 1]``; 0.95 by default, 0.90 gave the paper's best result.

    Returns:
        ``(N,)`` boolean mask of samples to keep.
    """
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    values = np.asarray(auv, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.ones(values.shape, dtype=bool)
    threshold = np.quantile(values[finite], quantile)
    return ~finite | (values <= threshold)


def keep_mask_classwise(auv_per_class: np.ndarray, quantile: float = 0.95) -> np.ndarray:
    """Class-wise variant: keep a sample only if every class it contains is within its class quantile.

    Args:
        auv_per_class: ``(N, C)`` per-class AUV (NaN where the class is absent).
        quantile: per-class quantile ``p̃``.

    Returns:
        ``(N,)`` boolean mask.
    """
    values = np.asarray(auv_per_class, dtype=np.float64)
    per_class = np.stack([keep_mask(values[:, c], quantile) for c in range(values.shape[1])], axis=1)
    return per_class.all(axis=1)
