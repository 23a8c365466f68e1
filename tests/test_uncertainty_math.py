"""The paper's math: SPS against a direct SVD, analytic cases, AUV normalisation and filters."""

import math

import numpy as np
import pytest
import torch

from napari_aleatoric.uncertainty.auv import auv_from_sps, keep_mask, keep_mask_classwise
from napari_aleatoric.uncertainty.heatmap import binary_entropy_map
from napari_aleatoric.uncertainty.sps import (
    class_map_matrix,
    class_scales,
    semantic_perception_scale,
    squared_singular_values,
)


def numpy_sps(matrix: np.ndarray, energy: str = "sigma2") -> float:
    sigma = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    weights = sigma**2 if energy == "sigma2" else sigma
    p = weights / (weights.sum() + 1e-12)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(min(matrix.shape)))


@pytest.mark.parametrize("shape", [(8, 8), (5, 40), (40, 5), (64, 3)])
def test_squared_singular_values_match_numpy_svd(shape):
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=shape)
    expected = np.linalg.svd(matrix, compute_uv=False) ** 2
    got = squared_singular_values(torch.from_numpy(matrix)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("energy", ["sigma2", "sigma"])
def test_sps_matches_direct_svd_on_random_batches(energy):
    rng = np.random.default_rng(1)
    maps = rng.random(size=(6, 20, 30)) ** 3
    got = semantic_perception_scale(torch.from_numpy(maps), volumetric=False, energy=energy).numpy()
    expected = [numpy_sps(m, energy) for m in maps]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_rank_one_map_has_zero_scale():
    u, v = np.random.default_rng(2).random((2, 32))
    rank_one = torch.from_numpy(np.outer(u, v))[None]
    assert semantic_perception_scale(rank_one, volumetric=False).item() == pytest.approx(0.0, abs=1e-6)


def test_constant_map_has_zero_scale():
    constant = torch.full((1, 16, 24), 0.7)
    assert semantic_perception_scale(constant, volumetric=False).item() == pytest.approx(0.0, abs=1e-6)


def test_orthogonal_equal_energy_map_has_scale_one():
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(16, 16)))
    assert semantic_perception_scale(torch.from_numpy(q)[None], volumetric=False).item() == pytest.approx(1.0, abs=1e-9)


def test_zero_map_gives_zero_not_nan():
    assert semantic_perception_scale(torch.zeros(1, 8, 8), volumetric=False).item() == 0.0


def test_faster_decay_means_lower_scale():
    rng = np.random.default_rng(4)
    q1, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    q2, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    slow = q1 @ np.diag(np.linspace(1.0, 0.8, 20)) @ q2
    fast = q1 @ np.diag(0.3 ** np.arange(20)) @ q2
    scales = semantic_perception_scale(torch.from_numpy(np.stack([slow, fast])), volumetric=False)
    assert scales[0] > 0.95 and scales[1] < 0.3


def test_volume_layouts_reshape_as_documented():
    volume = torch.arange(2 * 3 * 4, dtype=torch.float64).reshape(2, 3, 4)
    assert class_map_matrix(volume, "D_HW").shape == (2, 12)
    assert class_map_matrix(volume, "H_DW").shape == (3, 8)
    assert class_map_matrix(volume, "W_DH").shape == (4, 6)
    assert torch.equal(class_map_matrix(volume, "D_HW")[1], volume[1].flatten())
    assert torch.equal(class_map_matrix(volume, "H_DW")[2], volume[:, 2, :].flatten())
    assert torch.equal(class_map_matrix(volume, "W_DH")[3], volume[:, :, 3].flatten())


def test_volumetric_sps_equals_numpy_on_each_layout():
    volume = np.random.default_rng(5).random((5, 6, 7))
    for mode, matrix in [("D_HW", volume.reshape(5, 42)), ("H_DW", volume.transpose(1, 0, 2).reshape(6, 35)),
                         ("W_DH", volume.transpose(2, 0, 1).reshape(7, 30))]:
        got = semantic_perception_scale(torch.from_numpy(volume)[None], volumetric=True, svd_mode=mode).item()
        assert got == pytest.approx(numpy_sps(matrix), abs=1e-9)


def test_single_row_matrix_is_refused():
    with pytest.raises(ValueError, match="at least 2 singular values"):
        semantic_perception_scale(torch.ones(1, 1, 10), volumetric=False)


def test_class_scales_use_only_prompted_slices_and_nan_for_absent_classes():
    rng = np.random.default_rng(6)
    probabilities = torch.from_numpy(rng.random((3, 4, 10, 12)))
    prompted = torch.tensor([[True, True, False, True], [False, False, True, False], [False] * 4])
    scales = class_scales(probabilities, prompted).numpy()
    expected0 = numpy_sps(probabilities[0, [0, 1, 3]].numpy().reshape(3, 120))
    expected1 = numpy_sps(probabilities[1, 2].numpy())
    assert scales[0] == pytest.approx(expected0, abs=1e-9)
    assert scales[1] == pytest.approx(expected1, abs=1e-9)
    assert math.isnan(scales[2])


def test_auv_is_min_max_of_log_scale_reversed():
    sps = np.array([0.9, 0.5, 0.1, np.nan])
    auv = auv_from_sps(sps)
    logs = np.log(sps[:3])
    expected = 1 - (logs - logs.min()) / (logs.max() - logs.min())
    np.testing.assert_allclose(auv[:3], expected)
    assert auv[2] == 1.0 and auv[0] == 0.0 and math.isnan(auv[3])


def test_auv_per_class_normalises_each_column():
    per_class = np.array([[0.2, 0.8], [0.4, np.nan], [0.8, 0.4]])
    auv = auv_from_sps(per_class)
    assert auv[0, 0] == 1.0 and auv[2, 0] == 0.0
    assert auv[0, 1] == 0.0 and auv[2, 1] == 1.0 and math.isnan(auv[1, 1])


def test_equal_scales_give_zero_auv():
    np.testing.assert_array_equal(auv_from_sps(np.array([0.5, 0.5])), [0.0, 0.0])


def test_keep_mask_drops_cases_above_quantile():
    auv = np.linspace(0, 1, 21)
    kept = keep_mask(auv, 0.9)
    assert kept.sum() == 19 and not kept[-1] and not kept[-2]
    with pytest.raises(ValueError):
        keep_mask(auv, 0.0)


def test_classwise_keep_mask_requires_every_present_class_within_its_quantile():
    auv = np.array([[0.1, np.nan], [0.2, 0.9], [1.0, 0.1], [0.3, 0.2], [0.0, 0.0]])
    kept = keep_mask_classwise(auv, 0.75)
    assert kept.tolist() == [True, False, False, True, True]


def test_binary_entropy_map_peaks_at_half():
    values = binary_entropy_map(torch.tensor([0.0, 0.5, 1.0, 0.1]))
    assert values[1].item() == pytest.approx(1.0)
    assert values[0].item() < 1e-4 and values[2].item() < 1e-4
    assert 0.4 < values[3].item() < 0.5
