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


@pytest.mark.parametrize("method, bar", [("difference", 0.6), ("acutance", 0.6)])
def test_relative_scores_fall_as_blur_grows(ramp_case, method, bar):
    image, truth = ramp_case
    score = estimate(image, method)
    assert score.dtype == np.float32 and score.shape == image.shape
    assert estimators()[method].units == "relative" and estimators()[method].higher_is_sharper
    known = np.isfinite(score)
    assert spearmanr(score[known], truth[known]).statistic < -bar


@pytest.mark.parametrize("method", ["difference", "acutance"])
def test_relative_scores_ignore_gain_and_offset(ramp_case, method):
    image, _ = ramp_case
    ref = estimate(image, method, noise=0.0)
    np.testing.assert_allclose(estimate(40.0 * image + 300.0, method, noise=0.0), ref, rtol=1e-3, atol=1e-5,
                               equal_nan=True)


@pytest.mark.parametrize("method, params", [("difference", {}), ("acutance", {"block": 16})])
def test_relative_scores_chunked_equal_unchunked(method, params):
    image, _ = synthetic.sem_sample((300, 350), seed=8)  # ragged last chunks
    whole = estimate(image, method, **params)
    lazy = estimate(da.from_array(image, chunks=90), method, **params)
    assert lazy.numblocks[0] > 1
    np.testing.assert_allclose(lazy.compute(), whole, atol=1e-4, equal_nan=True)


def test_acutance_is_constant_on_its_blocks():
    image, _ = synthetic.sem_sample((128, 160), seed=9)
    score = estimate(image, "acutance", block=32)
    assert np.ptp(score[32:64, 64:96]) == 0 and score[0, 0] != score[0, 40]


@pytest.mark.parametrize("method, params, error", [
    ("acutance", {"block": 4}, ValueError),
    ("acutance", {"block": 20.5}, ValueError),
    ("difference", {"iterations": -1}, ValueError),
    ("difference", {"radius": "wide"}, TypeError),
])
def test_bad_parameters_are_refused(ramp_case, method, params, error):
    image, _ = ramp_case
    with pytest.raises(error):
        estimate(image, method, **params)
