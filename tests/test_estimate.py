import dask.array as da
import numpy as np
import pytest
from conftest import thirds_error
from scipy import ndimage as ndi

import blurmap
from blurmap import estimate, estimators, synthetic

GR = "gradient_ratio"  # the engine's mechanics are tested with the estimator of the smallest halo
HALO = estimators()[GR].halo


@pytest.mark.parametrize("sigma", [0.75, 1.5, 3.0])
def test_uniform_blur_is_measured_in_px(leaves, sigma):
    got = estimate(ndi.gaussian_filter(leaves, sigma), noise=0)
    assert abs(np.nanmedian(got) / sigma - 1) < 0.15


def test_ramp_is_followed(ramp_pair):
    image, truth = ramp_pair
    assert (thirds_error(estimate(image, noise=0), truth) < 0.2).all()


def test_gain_and_offset_do_not_change_the_map(ramp_pair):
    image, _ = ramp_pair
    ref = estimate(image)  # the noise model, estimated, follows gain and offset
    assert np.nanmax(np.abs(estimate(250.0 * image + 1000.0) - ref)) < 1e-3
    clean = estimate(image, noise=0, shot_noise=0)  # declared noise free
    assert np.nanmax(np.abs(estimate(250.0 * image, noise=0, shot_noise=0) - clean)) < 1e-3


def test_bright_regions_do_not_read_as_sharp(leaves):
    # same blur everywhere; the right half is 8 times brighter (seed 000's complaint)
    gain = np.where(np.arange(256) < 128, 1.0, 8.0)[None, :]
    got = estimate(ndi.gaussian_filter(leaves, 1.5) * gain, noise=0)
    left, right = np.nanmedian(got[:, 20:100]), np.nanmedian(got[:, 156:236])
    assert abs(left / right - 1) < 0.1


def test_noise_is_estimated_and_removed(ramp_pair):
    image, truth = ramp_pair
    noisy = image + np.random.default_rng(1).normal(0, 0.02, image.shape).astype(np.float32)
    naive = estimate(noisy, noise=0, shot_noise=0)
    aware = estimate(noisy)
    assert (thirds_error(aware, truth) < 0.1).all()
    assert thirds_error(naive, truth)[-1] > 0.25  # without the correction the blurry end reads sharp


def test_textureless_area_is_unknown_not_invented(leaves):
    image = ndi.gaussian_filter(leaves, 1.0)
    image[:, 128:] = 0.5  # right half flat
    sigma, conf = estimate(image, GR, noise=0, return_confidence=True)
    assert np.isnan(sigma[:, 230:]).all() and (conf[:, 230:] < 0.01).all()
    assert np.isfinite(sigma[:, :100]).all() and (conf[:, :100] > 0.5).all()
    sigma, conf = estimate(image, noise=0, return_confidence=True)  # the default
    assert np.isnan(sigma[:, 230:]).all() and (conf[:, 230:] < 0.01).all()
    assert np.isfinite(sigma[:, :100]).all()


@pytest.mark.parametrize("chunk", [2 * HALO, 2 * HALO + 6, 150, 200])
def test_chunked_equals_unchunked(sem, chunk):
    image, _ = sem  # 320 x 384: ragged last chunks for every size here
    whole, conf = estimate(image, GR, return_confidence=True)
    lazy, lazy_conf = estimate(da.from_array(image, chunks=chunk), GR, return_confidence=True)
    assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
    assert lazy.numblocks[0] > 1
    np.testing.assert_allclose(lazy.compute(), whole, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(lazy_conf.compute(), conf, atol=1e-4)


def test_chunks_smaller_than_twice_the_halo_are_enlarged(sem):
    image, _ = sem
    lazy = estimate(da.from_array(image, chunks=32), GR)
    assert min(min(c) for c in lazy.chunks) >= HALO
    np.testing.assert_allclose(lazy.compute(), estimate(image, GR), atol=1e-4, equal_nan=True)


def test_tiles_equal_the_whole(sem):
    image, _ = sem
    *_, last = blurmap.estimate_tiles(image, GR, chunk=160)
    assert last.done == last.total == blurmap.tile_count(image.shape, GR, chunk=160) > 1
    np.testing.assert_allclose(last.sigma, estimate(image, GR), atol=1e-4, equal_nan=True)
    assert last.params["noise"] > 0 and last.params["shot_noise"] >= 0 and last.params["dark_level"] is not None


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float64, np.float32])
def test_any_real_dtype_gives_float32_px(leaves, dtype):
    image = (ndi.gaussian_filter(leaves, 1.5) * 200).astype(dtype)
    got = estimate(image, noise=0)
    assert got.dtype == np.float32 and got.shape == image.shape
    assert abs(np.nanmedian(got) / 1.5 - 1) < 0.2


def test_rgb_becomes_luminance_with_a_warning(leaves):
    grey = ndi.gaussian_filter(leaves, 1.0)
    rgb = np.stack([grey, grey, grey], axis=-1)
    with pytest.warns(UserWarning, match="luminance"):
        got = estimate(rgb, noise=0)
    np.testing.assert_allclose(got, estimate(grey, noise=0), atol=1e-3, equal_nan=True)


@pytest.mark.parametrize("bad, error, match", [
    (np.zeros((3, 64, 64)), ValueError, "constant"),  # a stack of three planes, each refused as the 2-D call does
    (np.zeros((64,)), ValueError, "2-D"),
    (np.zeros((0, 0)), ValueError, "at least"),
    (np.zeros((4, 64)), ValueError, "at least"),
    (np.full((64, 64), 7.0), ValueError, "constant"),
    (np.zeros((64, 64), dtype=complex), TypeError, "real"),
    (np.array([["a"] * 10] * 10), TypeError, "real"),
])
def test_bad_images_get_clear_errors(bad, error, match):
    with pytest.raises(error, match=match):
        estimate(bad)


@pytest.mark.parametrize("method", [m for m in estimators() if m != "reference"])
def test_a_nan_pixel_is_unknown_within_the_halo_and_nowhere_else(sem, method):
    # the contract: non-finite pixels are unknown and stay local, numpy and dask alike (a dask image
    # with one NaN pixel used to give an all-NaN map: the image-wide noise model became NaN)
    image, _ = sem
    holed = image.copy()
    holed[100, 150] = np.nan
    halo = estimators()[method].halo
    whole = estimate(holed, method)
    lazy = estimate(da.from_array(holed, chunks=(2 * halo + 8, 2 * halo + 4)), method).compute()
    np.testing.assert_allclose(lazy, whole, atol=1e-4, equal_nan=True)
    yy, xx = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    near = (np.abs(yy - 100) <= halo) & (np.abs(xx - 150) <= halo)
    assert np.isnan(whole[near]).all()
    clean = estimate(image, method)
    known = ~near & np.isfinite(clean)
    if known.any():  # beyond the halo the map is the clean one (the noise model barely moves)
        np.testing.assert_allclose(whole[known], clean[known], atol=2e-3, rtol=2e-3)


def test_the_noise_model_ignores_nan_pixels(sem):
    from blurmap.noise import estimate_noise_model

    image, _ = sem
    holed = image.copy()
    holed[::37, ::41] = np.nan
    got, want = estimate_noise_model(da.from_array(holed, chunks=100)), estimate_noise_model(image)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=0.1, atol=1e-6)


def test_a_masked_arrays_mask_is_honoured(sem):
    image, _ = sem
    mask = np.zeros(image.shape, bool)
    mask[:40, :60] = True
    a = estimate(np.ma.MaskedArray(image, mask))
    b = estimate(np.ma.MaskedArray(np.where(mask, 1e3, image), mask))  # what lies under the mask is not read
    np.testing.assert_array_equal(a, b)
    assert np.isnan(a[:40, :60]).all() and np.isfinite(a[-60:, -60:]).all()


def test_no_finite_pixel_or_constant_dask_image_is_refused():
    with pytest.raises(ValueError, match="no finite pixel"):
        estimate(np.full((64, 64), np.nan))
    lazy = estimate(da.full((600, 700), 3.0, chunks=200))  # a dask image is read when its maps are computed
    with pytest.raises(ValueError, match="constant"):
        lazy.compute()
    with pytest.raises(ValueError, match="no finite pixel"):
        estimate(da.full((600, 700), np.nan, chunks=200), "log").compute()


@pytest.mark.parametrize("gain, offset, dtype", [(1e-12, 0.0, np.float64), (1e20, 0.0, np.float64),
                                                  (1e30, 0.0, np.float32), (1e40, 0.0, np.float64),
                                                  (1.0, 100.0, np.float32), (1.0, 1e4, np.float64)])
def test_gain_and_offset_drop_out_for_every_px_method(sem, gain, offset, dtype):
    # the engine normalises intensities where the image enters; gradient_ratio read 5 px off at a
    # gain of 1e-12 and 9-20 px off at 1e20 or 1e30, and a float32 offset of 100 moved it by 0.9 px
    image, _ = sem
    for method in ("gradient_ratio", "learned", "log"):
        want = estimate(image, method)
        got = estimate((image.astype(np.float64) * gain + offset).astype(dtype), method)
        tol = 0.05 if (dtype == np.float32 and offset) else 2e-3  # a float32 offset of 100 costs digits
        np.testing.assert_allclose(got, want, atol=tol, rtol=tol, equal_nan=True)


def test_uint16_near_the_top_of_its_range_reads_as_the_same_image(sem):
    image, _ = sem
    scaled = (image - image.min()) / np.ptp(image)
    low, high = (scaled * 1000).astype(np.uint16), (scaled * 1000 + 64000).astype(np.uint16)
    np.testing.assert_allclose(estimate(high), estimate(low), atol=1e-3, equal_nan=True)


def test_unknown_chunks_get_a_clear_error(leaves):
    lazy = da.from_array(leaves, chunks=64)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        estimate(lazy[lazy[:, 0] > -1])


@pytest.mark.parametrize("params, error, match", [
    ({"pooling_width": 2.0}, ValueError, ">= 8"),
    ({"pooling_width": "big"}, TypeError, "number"),
    ({"pooling_width": float("nan")}, ValueError, "finite"),
    ({"noise": -1.0}, ValueError, ">= 0"),
    ({"radius": 3}, TypeError, "no parameter 'radius'"),
])
def test_bad_parameters_get_clear_errors(leaves, params, error, match):
    with pytest.raises(error, match=match):
        estimate(leaves, GR, **params)


def test_unknown_method_is_refused(leaves):
    with pytest.raises(ValueError, match="unknown method 'nope'.*gradient_ratio"):
        estimate(leaves, method="nope")


def test_image_smaller_than_the_halo_works_and_chunks_agree(leaves):
    small = ndi.gaussian_filter(leaves, 1.2)[:40, :48]  # halo is 64 px
    whole = estimate(small, noise=0)
    assert whole.shape == small.shape and abs(np.nanmedian(whole) / 1.2 - 1) < 0.3
    np.testing.assert_allclose(estimate(da.from_array(small, chunks=16), noise=0).compute(), whole,
                               atol=1e-4, equal_nan=True)


def test_input_array_is_not_modified(sem):
    image, _ = sem
    before = image.copy()
    estimate(image)
    assert np.array_equal(image, before)


def test_an_image_of_integers_is_normalised_in_one_copy_and_its_pixels_left_as_they_were():
    import tracemalloc

    from blurmap import engine

    rng = np.random.default_rng(3)
    counts = rng.poisson(200 * blurmap.blur(synthetic.dead_leaves((500, 600), seed=3), np.full((500, 600), 1.5)))
    image = counts.astype(np.uint16)
    before = image.copy()
    np.testing.assert_array_equal(estimate(image), estimate(image.astype(np.float32)))  # the same numbers
    assert np.array_equal(image, before)
    large = np.tile(image, (8, 7))  # 4000 x 4200 px: the noise samples (4 million px at most) are far smaller
    tracemalloc.start()
    prep = engine.prepare(large, "gradient_ratio")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert prep.image.dtype == np.float32 and np.array_equal(large, np.tile(before, (8, 7)))
    assert peak < 1.6 * prep.image.nbytes  # the float32 plane and the samples; a second copy of it made 2.3x


@pytest.mark.parametrize("view", [np.asmatrix, lambda a: a[::1, ::1], lambda a: a])
def test_a_float32_image_or_a_view_of_one_is_not_scaled_in_place(view):
    image = blurmap.blur(synthetic.dead_leaves((200, 220), seed=4), np.full((200, 220), 1.5))
    given = view(image)
    before = np.array(given, copy=True)
    estimate(given)
    assert np.array_equal(np.asarray(given), before) and np.array_equal(image, before)


def test_slicing_derivatives_equal_scipy_reflect_mode():
    from blurmap.estimators import _energy as gr
    a = np.random.default_rng(0).random((37, 41)).astype(np.float32)
    for axis in (0, 1):
        np.testing.assert_allclose(gr.central_difference(a, axis),
                                   -ndi.correlate1d(a, [0.5, 0.0, -0.5], axis=axis, mode="reflect"), atol=1e-6)
    lap = gr.second_difference(a, 0) + gr.second_difference(a, 1)
    np.testing.assert_allclose(lap, ndi.laplace(a, mode="reflect"), atol=1e-5)


def test_a_natural_texture_is_read_without_the_dead_leaves_exponent():
    # grass falls faster with blur than dead leaves: the gradient evidence alone read it 20-25%
    # low at 2-3 px; the curvature evidence needs no exponent
    import skimage.data

    from blurmap import blur
    grass = skimage.data.grass().astype(np.float32) / 255
    grass = grass.reshape(256, 2, 256, 2).mean(axis=(1, 3))
    truth = synthetic.ramp(grass.shape, 0.5, 3.0)
    assert (thirds_error(estimate(blur(grass, truth)), truth) < 0.15).all()


def test_strokes_of_one_direction_under_round_blur_read_round_with_the_directional_method():
    # a band's energy fall was read as if every texture's spectrum fell as dead leaves' do: strokes' bands
    # read 0.2 px across them and 4 px along them, a major / minor of 1.5 with no astigmatism at all
    rng = np.random.default_rng(21)
    sharp = ndi.gaussian_filter(rng.random((256, 256)), 6) * 0.2
    for _ in range(250):
        y, x, t = rng.uniform(0, 256), rng.uniform(0, 256), np.deg2rad(30 + rng.uniform(-10, 10))
        s = np.linspace(-60, 60, 240)
        ys, xs = (y - s * np.sin(t)).astype(int), (x + s * np.cos(t)).astype(int)
        keep = (ys >= 0) & (ys < 256) & (xs >= 0) & (xs < 256)
        sharp[ys[keep], xs[keep]] = rng.uniform(0.5, 1.0)
    image = rng.poisson(ndi.gaussian_filter(sharp, 2.0) * 500).astype(np.float32)
    maps = estimate(image, "directional", return_outputs=True)
    inner = (slice(24, -24),) * 2
    ratio = np.nanmedian(maps["sigma_major"][inner] / maps["sigma_minor"][inner])
    assert ratio < 1.2
    # and an elliptical blur of the same strength still reads elongated
    leaves = synthetic.dead_leaves((256, 256), seed=4)
    elongated = rng.poisson(np.clip(blurmap.blur_elliptical(leaves, 3.0, 1.2, 60.0), 0, None) * 500).astype(np.float32)
    maps = estimate(elongated, "directional", return_outputs=True)
    assert np.nanmedian(maps["sigma_major"][inner] / maps["sigma_minor"][inner]) > 1.3  # 2.5 true: under-read
