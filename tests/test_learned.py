"""The learned estimator: shipped weights, numpy against torch, chunking, gain, bad input."""

import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as ndi

from blurmap import blur, estimate, estimators, synthetic
from blurmap.estimators.learned import (
    BLOCK,
    N_FEATURES,
    REFINE_WIDTHS,
    conv2d,
    features,
    halve,
    less_local_mean,
    load_weights,
    network,
    refine,
    refinement_terms,
)

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_weights_load_and_fit_the_features():
    weights = load_weights()
    assert weights["w0"].shape[1] == N_FEATURES == weights["mean"].size == weights["std"].size
    assert weights[f"w{int(weights['n_layers']) - 1}"].shape[0] == 2  # log sigma and its log variance
    assert weights["refine"].shape == (len(REFINE_WIDTHS) + 1,)
    assert all(np.isfinite(weights[k]).all() for k in weights if k != "meta")
    assert "train_learned.py" in str(weights["meta"])
    assert (ROOT / "src/blurmap/estimators/learned.npz").stat().st_size < 2_000_000


def test_conv2d_is_scipy_correlate_with_reflected_borders():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 20, 17)).astype(np.float32)
    w = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    b = np.array([0.5, -1.0], np.float32)
    for dilation in (1, 2, 4):
        kernel = np.zeros((3, 2 * dilation + 1, 2 * dilation + 1), np.float32)
        got = conv2d(x, w, b, dilation)
        for o in range(2):
            kernel[:, ::dilation, ::dilation] = w[o]
            want = ndi.correlate(x, kernel, mode="mirror")[1] + b[o]  # channel sum sits at the middle plane
            np.testing.assert_allclose(got[o], want, atol=1e-4)


def test_conv2d_never_reads_the_memory_it_does_not_write(monkeypatch):
    # the bias was added over the whole padded buffer, whose last 2 * pad samples np.empty leaves as they were:
    # a signalling NaN there made "RuntimeWarning: invalid value encountered in add" appear at random
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 12, 9)).astype(np.float32)
    w = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    b = np.array([0.5, -1.0], np.float32)
    want = conv2d(x, w, b, 2)
    empty = np.empty
    signalling = np.array([0x7F800001], dtype=np.uint32).view(np.float32)[0]

    def garbage(shape, dtype=float, **kwargs):
        out = empty(shape, dtype, **kwargs)
        if np.dtype(dtype) == np.float32:
            out.view(np.uint32)[...] = signalling.view(np.uint32)
        return out

    monkeypatch.setattr(np, "empty", garbage)
    with np.errstate(invalid="raise"):
        got = conv2d(x, w, b, 2)
    np.testing.assert_array_equal(got, want)


def test_numpy_forward_equals_torch_forward():
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "training"))
    try:
        from train_learned import build_model
    finally:
        sys.path.pop(0)
    weights = load_weights()
    model = build_model(torch)
    for i, conv in enumerate(model.convs):
        conv.weight.data = torch.from_numpy(weights[f"w{i}"])
        conv.bias.data = torch.from_numpy(weights[f"b{i}"])
        assert model.dilations[i] == int(weights[f"dilation{i}"])
    image, _ = synthetic.sem_sample((160, 200), seed=3)
    feats = features(image, noise=0.01)
    x = (feats - weights["mean"][:, None, None]) / weights["std"][:, None, None]
    with torch.no_grad():
        want = model(torch.from_numpy(x[None].astype(np.float32)))[0].numpy()
    np.testing.assert_allclose(network(feats, weights), want, atol=1e-4, rtol=0)


def test_learned_reads_uniform_blur_in_px():
    sharp = synthetic.dead_leaves((192, 192), seed=77)
    for sigma in (0.6, 1.5, 2.8):
        est = estimate(blur(sharp, np.full(sharp.shape, sigma, np.float32)), "learned")
        assert est.dtype == np.float32 and est.shape == sharp.shape
        assert abs(np.median(est) / sigma - 1) < 0.2, (sigma, np.median(est))


def test_learned_chunked_equals_unchunked():
    halo = estimators()["learned"].halo
    image, _ = synthetic.sem_sample((3 * halo + 40, 3 * halo), seed=8)  # the engine keeps chunks >= 2 halos
    whole, conf = estimate(image, "learned", return_confidence=True)
    lazy = estimate(da.from_array(image, chunks=2 * halo), "learned")
    assert lazy.numblocks[0] > 1 and lazy.numblocks[1] > 1
    np.testing.assert_allclose(lazy.compute(), whole, rtol=1e-4, atol=1e-5)
    assert ((conf >= 0) & (conf <= 1)).all()


def test_the_refinement_keeps_a_uniform_map():
    flat = np.full((40, 30), 2.2, np.float32)
    assert np.abs(refinement_terms(flat)).max() < 1e-6
    np.testing.assert_allclose(refine(flat, load_weights()["refine"]), flat, atol=1e-5)


def test_the_refinement_brings_the_map_of_a_sine_profile_closer_to_the_truth():
    # the network's map is smooth: on one period of a sine (0.3 .. 3 px) its peak reads low and its
    # trough high; the refinement, fitted on training images, must take back much of that
    shape = (256, 256)
    truth = synthetic.sine(shape, 0.3, 3.0, periods=1)
    image = blur(synthetic.dead_leaves(shape, seed=77), truth)
    sigma = np.exp(network(features(image), load_weights())[0])
    want = 0.5 * (truth[BLOCK // 2 - 1::BLOCK, BLOCK // 2 - 1::BLOCK] + truth[BLOCK // 2::BLOCK, BLOCK // 2::BLOCK])
    inner = (slice(4, -4), slice(4, -4))  # away from the image's borders
    before = np.sqrt(np.mean((sigma - want)[inner] ** 2))
    after = np.sqrt(np.mean((refine(sigma, load_weights()["refine"]) - want)[inner] ** 2))
    assert after < 0.8 * before, (before, after)


def test_a_tenfold_gain_ramp_changes_the_map_by_less_than_5_percent():
    gain = np.logspace(0, 1, 256, dtype=np.float32)[None, :]  # 1x at the left, 10x at the right
    for noise, average in ((1e-4, np.mean), (0.01, np.median)):
        image, _ = synthetic.sem_sample((256, 256), seed=5, noise=noise)
        change = np.abs(estimate(image * gain, "learned") / estimate(image, "learned") - 1)
        # with shot noise, a gain ramp makes the noise vary as no one noise model of the image
        # can follow (variance as the mean squared); the dim side's map then moves most
        assert average(change) < 0.05, (noise, float(np.mean(change)), float(np.median(change)))


def test_taking_the_local_mean_away_removes_a_smooth_gain_and_keeps_texture():
    texture = synthetic.dead_leaves((256, 256), seed=4)
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    smooth = 3.0 + 0.02 * xx - 0.01 * yy  # a plane: its local mean is itself, away from the borders
    inner = (slice(64, -64), slice(64, -64))  # the local mean reaches 48 px, then its interpolation
    assert np.abs(less_local_mean(smooth)[inner]).max() < 1e-3
    kept = less_local_mean(texture + smooth)[inner]
    assert np.std(kept) > 0.8 * np.std(texture[inner])
    np.testing.assert_allclose(kept, less_local_mean(texture)[inner], atol=1e-3)


def test_halving_is_the_mean_of_each_two_by_two_block():
    a = np.random.default_rng(2).random((6, 8)).astype(np.float32)
    np.testing.assert_allclose(halve(a), a.reshape(3, 2, 4, 2).mean(axis=(1, 3)), rtol=1e-6)


def test_a_flat_area_is_unknown_and_a_defocused_one_is_not():
    # nothing varies in a flat area: no blur can be read there, and the map says so (NaN, confidence
    # 0); a strongly defocused area still varies, and gets an estimate
    sharp = synthetic.dead_leaves((256, 512), seed=3)
    sigma = np.where(np.arange(512)[None, :] < 160, 1.0, 7.0) * np.ones((256, 1), np.float32)
    image = blur(sharp, sigma)
    image[:, 320:] = image[:, 320:].mean()  # the right is flat
    est, conf = estimate(image, "learned", return_confidence=True)
    # the local mean taken away first reaches 48 px, the pooled window 16 more: the map's reach
    assert np.isnan(est[:, 320 + 80:]).all() and (conf[:, 320 + 80:] == 0).all()
    assert np.isfinite(est[:, :300]).all() and np.median(est[:, 200:300]) > 5


def test_a_noise_far_below_the_signal_does_not_move_the_map():
    image = blur(synthetic.dead_leaves((192, 192), seed=9), synthetic.ramp((192, 192), 0.3, 3.0))
    clean = estimate(image, "learned", noise=0.0, shot_noise=0.0, dark_level=0.0)
    faint = estimate(image, "learned", noise=1e-4 * float(image.std()), shot_noise=0.0, dark_level=0.0)
    assert np.mean(np.abs(faint / clean - 1)) < 0.01


def test_learned_is_blind_to_gain_and_offset_at_fixed_noise_model():
    image, _ = synthetic.sem_sample((160, 160), seed=6)
    a = estimate(image, "learned", noise=0.01, shot_noise=0.0, dark_level=0.0)
    b = estimate(7.0 * image + 3.0, "learned", noise=0.07, shot_noise=0.0, dark_level=0.0)
    np.testing.assert_allclose(a, b, rtol=1e-3)


def test_learned_refuses_a_constant_image_and_answers_a_tiny_one():
    with pytest.raises(ValueError, match="constant"):
        estimate(np.ones((64, 64)), "learned")
    tiny = estimate(synthetic.dead_leaves((12, 9), seed=1), "learned")
    assert tiny.shape == (12, 9) and np.isfinite(tiny).all()


@pytest.mark.parametrize("block", [(slice(0, 150), slice(0, 200)), (slice(123, 301), slice(97, 387)),
                                   (slice(250, 333), slice(300, 397)), (slice(None), slice(None))])
def test_the_maps_of_part_of_a_tile_are_those_of_the_whole_tile_there(block):
    # the engine asks for a block within its halo; the network and the refinement then run only where it reads them
    from blurmap.estimators.learned import learned

    image = blur(synthetic.dead_leaves((333, 397), seed=4), synthetic.ramp((333, 397), 0.6, 3.5))
    image[:40, :60] = 0.5  # flat: unknown, so the mask is cut as the maps are
    params = dict(noise=0.01, shot_noise=0.0, dark_level=0.0)
    whole = learned(image, **params)
    part = learned(image, block=block, **params)
    for w, p in zip(whole, part):
        assert p.shape == w[block].shape
        np.testing.assert_allclose(p, w[block], rtol=0, atol=1e-5, equal_nan=True)
    assert np.isnan(part[0]).any() == np.isnan(whole[0][block]).any()
