"""The DUO loss against the formulas of docs/method.md §3, on hand-made batches (pure torch)."""

import math

import numpy as np
import pytest
import torch

from napari_aleatoric.training.duo import (
    denoise_targets,
    duo_loss,
    duo_weights,
    foreground_log_probabilities,
    prediction_scales,
    standardise_over_batch,
)


def spectral_scale(matrix: np.ndarray) -> float:
    """S = −Σ p log p / log r with p = σ² / Σσ², by a plain numpy SVD (independent of the package)."""
    sigma = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    energy = sigma ** 2
    p = energy / energy.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(min(matrix.shape)))


def softmax(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.double(), dim=1).numpy()


def test_weights_of_hand_made_maps_equal_the_formula():
    rank_one = np.outer(np.ones(6), np.arange(1.0, 6.0))  # one direction of energy: S = 0, weight 1
    identity = np.eye(6, 5)  # energy spread evenly: S = 1, weight 1 / (1 + α)
    rng = np.random.default_rng(3)
    random_map = rng.random((6, 5))
    maps = torch.tensor(np.stack([[rank_one, identity], [random_map, identity * 0.5]]), dtype=torch.float32)

    scales = prediction_scales(maps)
    expected = np.array([[spectral_scale(m) for m in row] for row in maps.numpy()])
    np.testing.assert_allclose(scales.numpy(), expected, atol=1e-5)
    assert scales[0, 0] == pytest.approx(0.0, abs=1e-6) and scales[0, 1] == pytest.approx(1.0, abs=1e-6)

    weights = duo_weights(scales, alpha=0.5)
    np.testing.assert_allclose(weights.numpy(), 1.0 / (1.0 + 0.5 * expected), atol=1e-6)
    assert weights[0, 0] == pytest.approx(1.0) and weights[0, 1] == pytest.approx(1 / 1.5)


def test_volume_scales_use_one_row_per_slice():
    rng = np.random.default_rng(0)
    volumes = torch.tensor(rng.random((2, 1, 4, 3, 5)), dtype=torch.float32)
    scales = prediction_scales(volumes, svd_mode="D_HW")
    expected = [spectral_scale(v[0].reshape(4, 15)) for v in volumes.numpy()]
    np.testing.assert_allclose(scales[:, 0].numpy(), expected, atol=1e-5)


def test_duo_loss_equals_the_formula_on_a_hand_made_batch():
    torch.manual_seed(0)
    logits = torch.randn(3, 3, 6, 5) * 2  # background + 2 classes
    labels = torch.randint(0, 3, (3, 6, 5))
    labels[2] = 0  # a sample without foreground
    y = torch.stack([(labels == 1), (labels == 2)], dim=1).float()
    alpha, beta = 0.7, 0.3

    parts = duo_loss(logits, None, y, alpha=alpha, beta=beta, denoising=False)

    p = softmax(logits)[:, 1:]
    yn = y.double().numpy()
    total = 0.0
    for i in range(3):
        for c in range(2):
            pi, yi = p[i, c], yn[i, c]
            dice = 1 - (2 * (pi * yi).sum() + 1e-5) / (pi.sum() + yi.sum() + 1e-5)
            bce = -(yi * np.log(pi) + (1 - yi) * np.log(1 - pi)).mean()
            weight = 1 / (1 + alpha * spectral_scale(pi))
            assert parts.weights[i, c].item() == pytest.approx(weight, rel=1e-5)
            assert parts.per_class[i, c].item() == pytest.approx(beta * dice + (1 - beta) * bce, rel=1e-4)
            total += weight * (beta * dice + (1 - beta) * bce)
    assert parts.loss.item() == pytest.approx(total / 3, rel=1e-4)  # (1/N) Σ_i Σ_c
    assert parts.noise_loss.item() == 0.0 and parts.total.item() == pytest.approx(parts.loss.item())


def test_plain_loss_is_duo_without_weights_and_denoising():
    torch.manual_seed(1)
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    y = (torch.rand(2, 1, 8, 8) > 0.5).float()
    plain = duo_loss(logits, None, y, weighting=False, denoising=False)
    assert torch.all(plain.weights == 1) and plain.scales is None
    weighted = duo_loss(logits, None, y, alpha=0.5, denoising=False)
    assert weighted.loss < plain.loss  # every weight is ≤ 1
    assert torch.all(weighted.weights >= 1 / 1.5 - 1e-6) and torch.all(weighted.weights <= 1)


def test_log_probabilities_are_exact_and_finite_for_extreme_logits():
    logits = torch.tensor([[[0.0, 50.0, -80.0]], [[3.0, 3.0, 3.0]]]).permute(0, 2, 1)[..., None]  # (2, 3, 1, 1)
    logits = logits.repeat(1, 1, 2, 2)
    log_p, log_1mp = foreground_log_probabilities(logits)
    p = softmax(logits)[:, 1:]
    assert torch.isfinite(log_p).all() and torch.isfinite(log_1mp).all()
    np.testing.assert_allclose(log_p.numpy(), np.log(p), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(log_1mp[1].exp().numpy(), 1 - p[1], rtol=1e-5)
    assert log_1mp[0, 0, 0, 0].item() == pytest.approx(-50.0, abs=1e-4)  # log(1 − p) where p ≈ 1


def test_denoising_normalises_epsilon_over_the_batch():
    torch.manual_seed(2)
    noise = torch.sigmoid(torch.randn(4, 2, 7, 6) * 2)
    eps = standardise_over_batch(noise)
    axes = (0, 2, 3)
    np.testing.assert_allclose(eps.mean(dim=axes).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(eps.var(dim=axes, unbiased=False).numpy(), 1.0, atol=1e-4)
    assert not torch.allclose(eps[:, 0], eps[:, 1])  # per class, not pooled

    y = (torch.rand(4, 2, 7, 6) > 0.5).float()
    logits = torch.randn(4, 3, 7, 6)
    noise_logits = torch.logit(noise)

    # "noise-map" reading: ε̂ is the noise map normalised over the batch
    assert torch.allclose(denoise_targets(y, noise), (y - eps * noise).clamp(0, 1))
    assert torch.all(denoise_targets(y, torch.full_like(noise, 0.3)) == y)  # a flat map changes nothing
    parts = duo_loss(logits, noise_logits, y, epsilon="noise-map")
    assert torch.allclose(parts.targets, (y - eps * noise).clamp(0, 1), atol=1e-6)

    # "gaussian" reading (default): ε ~ N(0, 1) per pixel, normalised over the batch; f_θ2 its amplitude
    sample = torch.randn(y.shape, generator=torch.Generator().manual_seed(5))
    eps_hat = standardise_over_batch(sample)
    np.testing.assert_allclose(eps_hat.mean(dim=axes).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(eps_hat.var(dim=axes, unbiased=False).numpy(), 1.0, atol=1e-4)
    parts = duo_loss(logits, noise_logits, y, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(parts.targets, (y - eps_hat * noise).clamp(0, 1), atol=1e-6)
    assert torch.all((parts.targets >= 0) & (parts.targets <= 1))
    quiet = duo_loss(logits, torch.full_like(noise_logits, -30.0), y)  # amplitude ≈ 0: labels unchanged
    assert torch.allclose(quiet.targets, y, atol=1e-6)


@pytest.mark.parametrize("epsilon", ["gaussian", "noise-map"])
@pytest.mark.parametrize(("mode", "loss_reaches_noise", "noise_loss"), [
    ("target", True, False), ("disagreement", False, True), ("none", False, False)])
def test_noise_head_gradient_paths(epsilon, mode, loss_reaches_noise, noise_loss):
    torch.manual_seed(3)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    noise_logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    y = (torch.rand(2, 2, 8, 8) > 0.6).float()
    parts = duo_loss(logits, noise_logits, y, noise_training=mode, epsilon=epsilon)
    (grad,) = torch.autograd.grad(parts.loss, noise_logits, allow_unused=True)
    assert (grad is not None and grad.abs().sum() > 0) == loss_reaches_noise
    assert (parts.noise_loss.item() > 0) == noise_loss
    if noise_loss:  # its own loss reaches the noise head only, never the segmentation logits
        (seg_grad,) = torch.autograd.grad(parts.noise_loss, logits, allow_unused=True)
        assert seg_grad is None or seg_grad.abs().sum() == 0


@pytest.mark.parametrize(("probability", "direction"), [(0.98, "down"), (0.02, "up")])
def test_gaussian_noise_amplitude_grows_only_where_the_prediction_disagrees(probability, direction):
    """Why the default cannot collapse: averaged over ε, the loss pushes the amplitude f_θ2 down
    where the prediction agrees with the label and up only where it does not."""
    y = torch.ones(64, 1, 16, 16)
    p = torch.full_like(y, probability)
    logits = torch.cat([torch.log1p(-p), torch.log(p)], dim=1)
    amplitude_logit = torch.full_like(y, -1.0, requires_grad=True)
    parts = duo_loss(logits, amplitude_logit, y, weighting=False, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad(parts.loss, amplitude_logit)
    assert (grad.sum() > 0) == (direction == "down")  # gradient descent moves against the gradient


def test_noise_head_starts_near_zero():
    from napari_aleatoric.training.networks import build_network

    net = build_network("unet", 2, 3, width=4, depth=3)
    _, noise_logits = net(torch.rand(1, 1, 16, 16))
    assert torch.sigmoid(noise_logits).max() < 0.1


def test_alpha_zero_weights_are_one():
    scales = torch.rand(3, 2)
    assert torch.all(duo_weights(scales, 0.0) == 1)


def test_a_constant_noise_map_standardises_to_zero_with_finite_gradients():
    noise = torch.full((2, 1, 4, 4), 0.02, requires_grad=True)
    eps = standardise_over_batch(noise)
    assert torch.all(eps == 0)
    (grad,) = torch.autograd.grad((eps * noise).sum(), noise)
    assert torch.isfinite(grad).all()


def test_scales_survive_non_finite_maps_and_lapack_failures(monkeypatch):
    import napari_aleatoric.training.duo as duo

    rng = np.random.default_rng(4)
    maps = torch.tensor(rng.random((2, 2, 6, 5)), dtype=torch.float32)
    expected = prediction_scales(maps)
    broken = maps.clone()
    broken[0, 0, 0, 0] = float("nan")
    assert torch.isfinite(prediction_scales(broken)).all()

    def failing(*args, **kwargs):
        raise torch.linalg.LinAlgError("ill-conditioned")

    monkeypatch.setattr(duo, "semantic_perception_scale", failing)
    assert torch.allclose(prediction_scales(maps), expected, atol=1e-5)  # svdvals fallback, same values
    monkeypatch.setattr(torch.linalg, "svdvals", failing)
    assert torch.all(prediction_scales(maps) == 0)  # last resort: weight 1 for the batch
