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


def _elliptical_fields(shape, turn: bool = False):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / (shape[0] - 1)
    if turn:  # a focal band where the major axis turns by 90 degrees, round at its centre
        band = np.abs(yy - 0.5)
        return 0.8 + 6.0 * band, 0.8 + 2.0 * band, np.where(yy < 0.5, 20.0, 110.0)
    major = 1.0 + 2.5 * xx
    return major, np.minimum(0.7 + 0.8 * yy, major), 30 + 120 * yy


@pytest.mark.parametrize("turn", [False, True], ids=["smooth fields", "axis turning across a focal band"])
def test_elliptical_blur_matches_a_direct_per_pixel_kernel_within_1pct(leaves, turn):
    from blurmap.forward import blur_elliptical, blur_elliptical_direct

    image = leaves[:160, :160]
    major, minor, angle = _elliptical_fields(image.shape, turn)
    got = blur_elliptical(image, major, minor, angle)
    want = blur_elliptical_direct(image, major, minor, angle)
    assert np.max(np.abs(got - want)) < 0.01 * np.ptp(image)


def test_elliptical_blur_of_constant_fields_is_scipys_gaussian_along_its_axes(leaves):
    from blurmap import blur_elliptical

    inner = (slice(16, -16), slice(16, -16))
    along_rows = blur_elliptical(leaves, 3.0, 1.0, 0.0)  # 0 degrees: the major axis along the rows
    assert np.abs(along_rows - ndi.gaussian_filter(leaves, (1.0, 3.0)))[inner].max() < 0.005 * np.ptp(leaves)
    upright = blur_elliptical(leaves, 3.0, 1.0, 90.0)
    assert np.abs(upright - ndi.gaussian_filter(leaves, (3.0, 1.0)))[inner].max() < 0.005 * np.ptp(leaves)
    np.testing.assert_allclose(blur_elliptical(leaves, 2.0, 2.0, 37.0), blur(leaves, np.full(leaves.shape, 2.0)),
                               atol=0.005 * np.ptp(leaves))


def test_the_angle_turns_counter_clockwise_as_displayed():
    from blurmap import blur_elliptical

    dot = np.zeros((41, 41), np.float32)
    dot[20, 20] = 1.0
    spot = blur_elliptical(dot, 4.0, 1.0, 45.0)
    assert spot[20 - 5, 20 + 5] > 10 * spot[20 + 5, 20 + 5]  # up and to the right, as displayed (rows grow down)


def test_elliptical_blur_refuses_a_minor_above_the_major(leaves):
    from blurmap import blur_elliptical

    with pytest.raises(ValueError, match="sigma_minor <= sigma_major"):
        blur_elliptical(leaves, 1.0, 2.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        blur_elliptical(leaves, np.nan, 1.0, 0.0)
