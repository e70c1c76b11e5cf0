import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as ndi

from blurmap import estimate_noise, synthetic
from blurmap.noise import estimate_noise_model


def test_white_noise_std_is_recovered(leaves):
    base = ndi.gaussian_filter(synthetic.dead_leaves((512, 512), seed=8), 1.5)
    for std in (0.005, 0.02):
        noisy = base + np.random.default_rng(2).normal(0, std, base.shape)
        assert abs(estimate_noise(noisy) / std - 1) < 0.15
    assert estimate_noise(base) < 0.002


def test_shot_noise_model_is_recovered():
    base = ndi.gaussian_filter(synthetic.dead_leaves((512, 512), seed=9), 2.0) * 0.8 + 0.1
    rng = np.random.default_rng(3)
    dose = 2000.0  # variance = intensity / dose
    noisy = rng.poisson(base * dose) / dose
    a, b, dark = estimate_noise_model(noisy)
    assert abs(b * dose - 1) < 0.3
    assert abs(a + b * (0.3 - dark) - 0.3 / dose) < 0.1 / dose  # variance at intensity 0.3


def test_noise_model_follows_gain_and_offset():
    base = ndi.gaussian_filter(synthetic.dead_leaves((512, 512), seed=9), 2.0) * 0.8 + 0.1
    noisy = np.random.default_rng(3).poisson(base * 2000.0) / 2000.0
    a, b, dark = estimate_noise_model(noisy)
    a2, b2, dark2 = estimate_noise_model(40.0 * noisy + 500.0)
    assert np.isclose(a2, 1600 * a, rtol=1e-3) and np.isclose(b2, 40 * b, rtol=1e-3)
    assert np.isclose(dark2, 40 * dark + 500, rtol=1e-6)


def test_noise_estimate_does_not_depend_on_chunking(sem):
    image, _ = sem
    assert estimate_noise(da.from_array(image, chunks=100)) == estimate_noise(image)


def test_a_lazy_image_is_read_once_where_the_samples_lie_before_any_chunk(sem):
    # the intensity scale and the noise model read the same windows: a file-backed image read them twice
    import dask.array as da

    from blurmap.engine import prepare

    class Counted:
        def __init__(self, a):
            self.a, self.shape, self.dtype, self.ndim, self.reads = a, a.shape, a.dtype, a.ndim, 0

        def __getitem__(self, key):
            self.reads += 1
            return self.a[key]

    image = np.tile(sem[0], (3, 3))
    source = Counted(image)
    lazy = da.from_array(source, chunks=256, asarray=False)
    source.reads = 0  # dask read an empty corner for its meta
    prep = prepare(lazy, "gradient_ratio")
    from blurmap.noise import SAMPLE, sample_origins
    touched = {(cy, cx) for y, x in sample_origins(source.shape)
               for cy in range(y // 256, (min(y + SAMPLE, image.shape[0]) - 1) // 256 + 1)
               for cx in range(x // 256, (min(x + SAMPLE, image.shape[1]) - 1) // 256 + 1)}
    assert source.reads == len(touched)  # each chunk under a window once
    whole = prepare(image, "gradient_ratio")
    assert prep.params == whole.params  # and reads what the in-memory image does


@pytest.mark.parametrize("shape, chunk", [((4096, 4096), 1024), ((4096, 4096), 256), ((600, 20000), 512),
                                          ((300, 300), 128)])
def test_a_lazy_image_s_samples_are_its_windows_read_from_at_most_twice_their_pixels(shape, chunk):
    # rows of windows across most of the image are read as whole bands: at most twice the windows' pixels, or the
    # chunks under the windows where windows share them (dask reads a shared chunk whole)
    from blurmap.noise import SAMPLE, sample_origins, sample_regions

    class Counted:
        def __init__(self, a):
            self.a, self.shape, self.dtype, self.ndim, self.pixels = a, a.shape, a.dtype, a.ndim, 0

        def __getitem__(self, key):
            out = self.a[key]
            self.pixels += out.size
            return out

    image = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)
    source = Counted(image)
    lazy = da.from_array(source, chunks=chunk, asarray=False)
    source.pixels = 0
    regions = sample_regions(lazy)
    expected = sample_regions(image)
    assert len(regions) == len(expected)
    for got, want in zip(regions, expected):
        np.testing.assert_array_equal(got, want)
    under = {(cy, cx) for y, x in sample_origins(shape)
             for cy in range(y // chunk, (min(y + SAMPLE, shape[0]) - 1) // chunk + 1)
             for cx in range(x // chunk, (min(x + SAMPLE, shape[1]) - 1) // chunk + 1)}
    chunk_pixels = sum(lazy.blocks[c].size for c in under)
    assert source.pixels <= max(2 * sum(w.size for w in expected), chunk_pixels)


def test_the_intensity_scale_s_tail_percentiles_are_numpy_s_to_the_bit():
    from blurmap._validate import tail_percentiles

    rng = np.random.default_rng(3)
    cases = [rng.random(4_200_000, dtype=np.float32), rng.normal(size=300_001), rng.integers(0, 4, 200_000).astype(
        np.float32), np.zeros(5000, np.float32), np.arange(7.0), np.array([2.5]),
        np.sort(rng.random(150_000)),  # sorted: a strided subsample sees only one end's share
        np.concatenate([np.full(100_000, 1.0), rng.random(100)])]  # the threshold keeps a tie of 100 000
    for values in cases:
        for percents in [(0.1, 99.9), (0.0, 100.0), (1.0, 50.0, 99.0)]:
            assert tail_percentiles(values, percents) == tuple(np.percentile(values.astype(np.float64), percents))


@pytest.mark.parametrize("factor", [1.0, 1e-40, 3e5], ids=["unit", "subnormal", "large"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_samples_normalised_together_are_each_normalised_to_the_bit(dtype, factor):
    from blurmap._validate import intensity_scale, normalised, normalised_samples

    rng = np.random.default_rng(4)
    image = (rng.random((300, 400)) * factor).astype(dtype)
    image[10:20, 30:35] = np.nan
    samples = [image[0:64, 0:64], image[5:69, 300:340], image[200:300, 100:101]]  # views of a wider image
    before = image.copy()
    scale, together = normalised_samples(samples)
    assert scale == intensity_scale(samples)
    for sample, joint in zip(samples, together):
        alone = normalised(sample, scale)
        assert joint.shape == sample.shape and joint.dtype == alone.dtype == np.float32
        np.testing.assert_array_equal(joint, alone)
    np.testing.assert_array_equal(image, before)  # the samples are left as they were


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_block_statistics_are_immerkaer_s_mask_and_block_means(dtype):
    from blurmap.noise import _block_stats

    rng = np.random.default_rng(5)
    image = (rng.random((90, 300)) * 7 + 3).astype(dtype)
    window = image[5:71, 9:267]  # a window of a wider image: rows not contiguous in memory
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]]) / 6.0
    t = window.astype(np.float64)
    response = ndi.correlate(t, mask)[1:-1, 1:-1]
    h, w = (response.shape[0] // 8) * 8, (response.shape[1] // 8) * 8

    def blocks(a):
        return a[:h, :w].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3)).ravel()

    means, variances = _block_stats(window)
    np.testing.assert_allclose(means, blocks(t[1:-1, 1:-1]), rtol=1e-12)
    np.testing.assert_allclose(variances, blocks(response**2), rtol=1e-9)
    again = _block_stats(np.ascontiguousarray(window, dtype=np.float64))  # float32 is read exactly in float64
    assert all(np.array_equal(a, b) for a, b in zip((means, variances), again))
