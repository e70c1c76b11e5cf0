import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as ndi

from blurmap import blur, estimate, estimators, synthetic


@pytest.fixture(scope="module")
def signal():
    """Seed 001's toy signal: 64 x 64 standard normal noise."""
    return np.random.default_rng(1337).standard_normal((64, 64)).astype(np.float32)


def test_seed_001_global_blur_is_recovered(signal):
    blurred = blur(signal, np.full(signal.shape, 3.0, np.float32))
    got = estimate(blurred, "reference", reference=signal, sigma_min=3.0, sigma_max=9.0)
    assert np.abs(got - 3.0).max() < 0.1


def test_seed_001_local_blur_is_recovered(signal):
    # left half sigma 4, right half sigma 7, fitted between bounds 3 and 9 as in the seed
    truth = np.where(np.arange(64) < 32, 4.0, 7.0)[None, :] * np.ones((64, 1), np.float32)
    got = estimate(blur(signal, truth), "reference", reference=signal, sigma_min=3.0, sigma_max=9.0)
    away = np.r_[0:29, 35:64]  # the blocks astride the change are mixed
    assert np.abs(got - truth)[:, away].max() < 0.1


@pytest.fixture(scope="module")
def dead_leaves_case():
    sharp = synthetic.dead_leaves((256, 256), seed=11)
    truth = synthetic.sine(sharp.shape, 0.3, 5.0)
    return sharp, truth, blur(sharp, truth)


def test_noisy_sine_is_recovered_to_a_tenth_of_a_pixel(dead_leaves_case):
    sharp, truth, blurred = dead_leaves_case
    noisy = blurred + np.random.default_rng(2).normal(0, 0.0316 * blurred.std(), blurred.shape).astype(np.float32)
    got = estimate(noisy, "reference", reference=sharp)
    assert np.sqrt(np.nanmean((got - truth) ** 2)) < 0.1


def test_confidence_marks_where_the_reference_does_not_explain_the_image(dead_leaves_case):
    sharp, _, blurred = dead_leaves_case
    image = blurred.copy()
    image[100:160, 100:160] = synthetic.dead_leaves((60, 60), seed=5)  # something the reference lacks
    image += np.random.default_rng(3).normal(0, 0.0316 * image.std(), image.shape).astype(np.float32)
    _, conf = estimate(image, "reference", reference=sharp, return_confidence=True)
    assert np.median(conf[115:145, 115:145]) < 0.1 * np.median(conf[:, :60])


def test_shift_gain_and_offset_are_fitted_and_reported(dead_leaves_case):
    from blurmap import estimate_tiles
    sharp, truth, blurred = dead_leaves_case
    moved = ndi.shift(blurred * 3.0 + 0.5, (1.3, -2.6), order=3, mode="mirror")
    *_, last = estimate_tiles(moved, "reference", reference=sharp)
    p = last.params
    assert abs(p["shift_y"] - 1.3) < 0.02 and abs(p["shift_x"] + 2.6) < 0.02
    assert abs(p["gain"] / 3.0 - 1) < 0.01 and abs(p["offset"] - 0.5) < 0.02
    inner = (slice(24, -24), slice(24, -24))
    assert np.sqrt(np.nanmean((last.sigma - truth)[inner] ** 2)) < 0.25


def test_bad_references_are_refused(dead_leaves_case):
    sharp, _, blurred = dead_leaves_case
    with pytest.raises(TypeError, match="needs the image 'reference'"):
        estimate(blurred, "reference")
    with pytest.raises(ValueError, match="must agree"):
        estimate(blurred, "reference", reference=sharp[:200])
    other = synthetic.dead_leaves((256, 256), seed=99)
    with pytest.raises(ValueError, match="does not match"):
        estimate(blurred, "reference", reference=other)
    with pytest.raises(ValueError, match="sigma_max"):
        estimate(blurred, "reference", reference=sharp, sigma_max=50)


def test_chunked_equals_unchunked_away_from_the_border():
    params = {"fill_reach": 16.0, "sigma_max": 5.0}
    est = estimators()["reference"]
    halo = est.halo_for(est.check(params))
    side = 3 * halo + 64  # two chunks along each axis (2 halos and more than 1), whatever the halo
    sharp = synthetic.dead_leaves((side, side), seed=13)
    blurred = blur(sharp, synthetic.ramp(sharp.shape, 0.3, 5.0))
    whole, _ = estimate(blurred, "reference", reference=sharp, return_confidence=True, **params)
    lazy = estimate(da.from_array(blurred, chunks=2 * halo), "reference", reference=sharp, **params)
    assert lazy.numblocks[0] > 1
    inner = (slice(16, -16), slice(16, -16))
    np.testing.assert_allclose(lazy.compute()[inner], whole[inner], atol=0.05, equal_nan=True)
