"""The review queue's flag: which cases are most likely mislabelled, by a rule calibrated on clean data.

The flag used to mark the top 10 % of the queue, so it marked about 10 % of a dataset with nothing
wrong. It now marks a case whose ``label_issue`` is an outlier of its dataset: its *robust z*,
``(x − median) / (1.4826·MAD)`` over the cases label quality judged, above :data:`FLAG_Z`. The
threshold was chosen on tuning data by a rule written down beforehand (the lowest false-alarm rate
on clean-only datasets first, then recall; ``benchmarks/flag_rule_choice.py``,
docs/label_quality.md).
"""

from __future__ import annotations

import math

import numpy as np

#: fewer judged cases than this: no flag (a median and a spread of 3 numbers mean little)
MIN_CASES = 4
#: 1.4826·MAD estimates the standard deviation of normally distributed values
MAD_SCALE = 1.4826
#: where the MAD is 0 (over half the values equal): 1.2533·mean absolute deviation instead
MEAN_ABS_SCALE = 1.2533


def robust_z(values) -> np.ndarray:
    """``(x − median) / (1.4826·MAD)`` of every finite value over the finite values.

    Where the MAD is 0, the scale is ``1.2533·mean |x − median|``; where that is 0 too (every value
    equal), or fewer than :data:`MIN_CASES` values are finite, every z is NaN (nothing stands out).

    Args:
        values: ``(N,)`` numbers, NaN where unknown.

    Returns:
        ``(N,)`` float64, NaN where the input is NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    finite = np.isfinite(x)
    if finite.sum() < MIN_CASES:
        return out
    centre = float(np.median(x[finite]))
    deviation = np.abs(x[finite] - centre)
    scale = MAD_SCALE * float(np.median(deviation))
    if scale <= 0:
        scale = MEAN_ABS_SCALE * float(deviation.mean())
    if scale <= 0:
        return out
    out[finite] = (x[finite] - centre) / scale
    return out
