import dask.array as da
import numpy as np
import pytest
from scipy.stats import spearmanr

from blurmap import blur, estimate, estimators, synthetic


@pytest.fixture(scope="module")
def ramp_case():
    sharp = synthetic.dead_leaves((256, 256), seed=31)
    truth = synthetic.ramp(sharp.shape, 0.3, 3.0)
    return blur(sharp, truth), truth


@pytest.mark.parametrize("method, sharper, bar", [("difference", True, 0.6), ("acutance", True, 0.6),
                                                  ("reblur_curve", False, 0.6)])
def test_relative_scores_follow_the_blur(ramp_case, method, sharper, bar):
    image, truth = ramp_case
    score = estimate(image, method)
    assert score.dtype == np.float32 and score.shape == image.shape
    assert estimators()[method].units == "relative" and estimators()[method].higher_is_sharper == sharper
    known = np.isfinite(score)
    rho = spearmanr(score[known], truth[known]).statistic
    assert (-rho if sharper else rho) > bar


@pytest.mark.parametrize("method", ["difference", "acutance", "reblur_curve"])
def test_relative_scores_ignore_gain_and_offset(ramp_case, method):
    image, _ = ramp_case
    ref = estimate(image, method, noise=0.0)
    np.testing.assert_allclose(estimate(40.0 * image + 300.0, method, noise=0.0), ref, rtol=1e-3, atol=1e-5,
                               equal_nan=True)


@pytest.mark.parametrize("method, params", [("difference", {}), ("acutance", {"block_size": 16}),
                                            ("reblur_curve", {"patch_size": 32, "reblur_max": 8})])
def test_relative_scores_chunked_equal_unchunked(method, params):
    image, _ = synthetic.sem_sample((300, 350), seed=8)  # ragged last chunks
    whole = estimate(image, method, **params)
    lazy = estimate(da.from_array(image, chunks=90), method, **params)
    assert lazy.numblocks[0] > 1
    np.testing.assert_allclose(lazy.compute(), whole, atol=1e-4, equal_nan=True)


def test_acutance_is_constant_on_its_blocks():
    image, _ = synthetic.sem_sample((128, 160), seed=9)
    score = estimate(image, "acutance", block_size=32)
    assert np.ptp(score[32:64, 64:96]) == 0 and score[0, 0] != score[0, 40]


@pytest.mark.parametrize("method, params, error", [
    ("acutance", {"block_size": 4}, ValueError),
    ("acutance", {"block_size": 20.5}, ValueError),
    ("difference", {"iterations": -1}, ValueError),
    ("difference", {"reblur_sigma": "wide"}, TypeError),
    ("reblur_curve", {"reblur_max": 3}, ValueError),
    ("reblur_curve", {"patch_size": 8}, ValueError),
])
def test_bad_parameters_are_refused(ramp_case, method, params, error):
    image, _ = ramp_case
    with pytest.raises(error):
        estimate(image, method, **params)


@pytest.mark.parametrize("sigma", [0.8, 1.5, 3.0])
def test_log_reads_uniform_blur_in_px(sigma):
    sharp = synthetic.dead_leaves((192, 192), seed=41)  # not a calibration seed
    est = estimate(blur(sharp, np.full(sharp.shape, sigma, np.float32)), "log", noise=0.0, shot_noise=0.0)
    assert est.dtype == np.float32 and est.shape == sharp.shape and estimators()["log"].units == "px"
    assert abs(np.nanmedian(est) / sigma - 1) < 0.15


def test_log_follows_a_ramp_and_removes_noise(ramp_case):
    image, truth = ramp_case
    noisy = image + np.random.default_rng(0).normal(0, 0.03 * image.std(), image.shape).astype(np.float32)
    for img in (image, noisy):
        est = estimate(img, "log")
        assert np.sqrt(np.nanmean((est - truth) ** 2)) < 0.4


def test_log_is_not_swayed_by_a_bright_strong_region(ramp_case):
    image, _ = ramp_case
    ref = estimate(image, "log", noise=0.0, shot_noise=0.0)
    brighter = image.copy()
    brighter[:, :64] = 10.0 * brighter[:, :64]  # a strong, bright band on the left
    est = estimate(brighter, "log", noise=0.0, shot_noise=0.0)
    # beyond the reach of the step the band's border makes, the rest reads the same
    np.testing.assert_allclose(est[:, 160:], ref[:, 160:], rtol=0.05)
    np.testing.assert_allclose(np.nanmedian(est[:, :40]), np.nanmedian(ref[:, :40]), rtol=0.05)


def test_log_gives_nan_where_there_is_no_texture():
    image = synthetic.dead_leaves((192, 192), seed=42)
    image[:, 96:] = 0.5
    est = estimate(image, "log", noise=0.0, shot_noise=0.0)
    assert np.isnan(est[:, 170:]).all() and np.isfinite(est[:, :60]).all()


def test_log_chunked_equals_unchunked():
    image, _ = synthetic.sem_sample((700, 420), seed=8)
    halo = estimators()["log"].halo
    whole = estimate(image, "log")
    lazy = estimate(da.from_array(image, chunks=2 * halo), "log")
    assert lazy.numblocks[0] > 1
    np.testing.assert_allclose(lazy.compute(), whole, atol=2e-3, equal_nan=True)


@pytest.mark.parametrize("params, error", [({"pooling_sigma": 2.0}, ValueError), ({"pooling_sigma": "wide"}, TypeError),
                                           ({"scales": 3}, TypeError)])
def test_log_bad_parameters_are_refused(ramp_case, params, error):
    with pytest.raises(error):
        estimate(ramp_case[0], "log", **params)


def test_acutance_removes_the_noise_it_is_told_of(ramp_case):
    image, _ = ramp_case
    noise = 0.05 * float(image.std())
    noisy = image + np.random.default_rng(1).normal(0, noise, image.shape).astype(np.float32)
    clean = estimate(image, "acutance", noise=0.0)
    blind = estimate(noisy, "acutance", noise=0.0)
    told = estimate(noisy, "acutance", noise=noise)
    assert np.median(np.abs(told / clean - 1)) < 0.5 * np.median(np.abs(blind / clean - 1))


def test_reblur_knee_grows_with_uniform_blur():
    sharp = synthetic.dead_leaves((192, 192), seed=43)
    knees = [np.nanmedian(estimate(blur(sharp, np.full(sharp.shape, s, np.float32)), "reblur_curve"))
             for s in (0.5, 1.5, 3.0)]
    assert knees[0] < knees[1] < knees[2] and 1 <= knees[0] and knees[2] <= 20


def test_reblur_knee_of_two_lines_is_their_crossing():
    from blurmap.estimators.reblur_curve import knee
    r = np.arange(1.0, 21.0)
    curve = np.minimum(0.2 * r, 0.2 * 7.0 + 0.01 * (r - 7.0))  # lines crossing at 7 px
    assert abs(float(knee(curve[:, None])[0]) - 7.0) < 1e-6
