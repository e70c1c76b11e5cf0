import numpy as np
import pytest
from scipy import ndimage as ndi

from blurmap import blur, synthetic


def direct_blur(image, sigma_map, points):
    """Each output pixel by its own 2-D Gaussian, borders reflected as scipy.ndimage does."""
    h, w = image.shape
    out = []
    for y, x in points:
        s = float(sigma_map[y, x])
        r = int(np.ceil(6 * s)) + 1
        yy, xx = np.mgrid[y - r:y + r + 1, x - r:x + r + 1]
        k = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s * s))
        ry = np.where(yy < 0, -yy - 1, np.where(yy >= h, 2 * h - yy - 1, yy))
        rx = np.where(xx < 0, -xx - 1, np.where(xx >= w, 2 * w - xx - 1, xx))
        out.append((k * image[ry, rx]).sum() / k.sum())
    return np.array(out)


def test_spatially_varying_blur_matches_direct_gaussian_within_1pct(leaves):
    yy, xx = np.mgrid[0:256, 0:256]
    sigma = (0.3 + 4.7 * xx / 255) * (1 + 0.3 * np.sin(yy / 17.0))
    out = blur(leaves, sigma)
    rng = np.random.default_rng(0)
    points = list(zip(rng.integers(0, 256, 400), rng.integers(0, 256, 400)))
    expected = direct_blur(leaves.astype(np.float64), sigma, points)
    got = np.array([out[p] for p in points])
    assert np.max(np.abs(got - expected)) < 0.01 * np.ptp(leaves)


def test_zero_sigma_is_identity_and_uniform_sigma_is_gaussian(leaves):
    from scipy import ndimage as ndi
    assert np.array_equal(blur(leaves, np.zeros_like(leaves)), leaves)
    uniform = blur(leaves, np.full(leaves.shape, 2.2))
    assert np.max(np.abs(uniform - ndi.gaussian_filter(leaves.astype(np.float64), 2.2))) < 0.005 * np.ptp(leaves)


def test_blur_rejects_bad_sigma_maps(leaves):
    with pytest.raises(ValueError, match="shape"):
        blur(leaves, np.ones((10, 10)))
    with pytest.raises(ValueError, match="non-negative"):
        blur(leaves, -np.ones_like(leaves))


def test_profiles_span_their_range():
    shape = (64, 100)
    assert np.isclose(synthetic.ramp(shape, 0.3, 3.0).min(), 0.3)
    assert np.isclose(synthetic.ramp(shape, 0.3, 3.0).max(), 3.0)
    s = synthetic.sine(shape, 0.3, 3.0, periods=1)
    assert s.min() >= 0.3 - 1e-6 and abs(s.max() - 3.0) < 0.01
    st = synthetic.step(shape, 0.5, 2.5)
    assert st[0, 0] == 0.5 and st[0, -1] == 2.5
    tilt = synthetic.tilted_focal_plane((200, 200), position=0.25, angle_deg=0, floor=0.5)
    assert np.argmin(tilt[:, 100]) == round(0.25 * 199) and np.isclose(tilt.min(), 0.5)


def test_ladder_cascade_matches_direct_blurs():
    from blurmap.forward import ladder, ladder_levels
    sharp = synthetic.dead_leaves((128, 128), seed=12)
    levels = ladder(6.0)
    for level, got in zip(levels[1:], ladder_levels(sharp, levels)):
        assert np.abs(got - ndi.gaussian_filter(sharp, level, truncate=4.0)).max() < 5e-4
