"""Stacks and series: every plane of an image with leading axes is mapped as the 2-D call maps it."""

import warnings

import dask.array as da
import numpy as np
import pytest

from blurmap import blur, estimate, synthetic

SHAPE = (160, 192)


@pytest.fixture(scope="module")
def planes():
    sharp = synthetic.dead_leaves(SHAPE, seed=21)
    return [blur(sharp, np.full(SHAPE, s, np.float32)) * (1 + k) for k, s in enumerate((0.8, 1.6, 2.4))]


@pytest.mark.parametrize("method", ["learned", "gradient_ratio", "acutance"])
def test_a_z_stack_maps_each_plane_as_the_2d_call(planes, method):
    stack = np.stack(planes)
    sigma, conf = estimate(stack, method, return_confidence=True)
    assert sigma.shape == conf.shape == stack.shape and sigma.dtype == np.float32
    for k, plane in enumerate(planes):
        want, want_conf = estimate(plane, method, return_confidence=True)
        np.testing.assert_array_equal(sigma[k], want)
        np.testing.assert_array_equal(conf[k], want_conf)


def test_any_number_of_leading_axes_and_a_dask_stack_stays_lazy_plane_by_plane(planes):
    tz = np.stack([np.stack(planes[:2]), np.stack(planes[1:])])  # (T, Z, Y, X)
    sigma = estimate(tz, "gradient_ratio")
    assert sigma.shape == (2, 2) + SHAPE
    np.testing.assert_array_equal(sigma[1, 1], estimate(planes[2], "gradient_ratio"))
    lazy = estimate(da.from_array(np.stack(planes), chunks=(1, 96, 96)), "gradient_ratio")
    assert isinstance(lazy, da.Array) and lazy.shape == (3,) + SHAPE and lazy.chunks[0] == (1, 1, 1)
    np.testing.assert_allclose(lazy[1].compute(), estimate(planes[1], "gradient_ratio"), atol=1e-4, equal_nan=True)


def test_colour_is_read_from_the_axis_said_without_a_warning(planes):
    rgb = np.stack([np.stack([p, p, p], axis=-1) for p in planes[:2]])  # (Z, Y, X, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = estimate(rgb, "gradient_ratio", channel_axis=-1)
        first = estimate(np.moveaxis(rgb[0], -1, 0), "gradient_ratio", channel_axis=0)  # (3, Y, X)
    assert got.shape == (2,) + SHAPE and first.shape == SHAPE
    np.testing.assert_allclose(got[0], first, atol=1e-6, equal_nan=True)
    with pytest.warns(UserWarning, match="treated as RGB"):  # a 3-D array of 3 last, unsaid: read as RGB, said so
        estimate(rgb[0], "gradient_ratio")


def test_bad_stacks_are_refused_by_name(planes):
    stack = np.stack(planes)
    with pytest.raises(ValueError, match="channel_axis 3 is not an axis"):
        estimate(stack, channel_axis=3)
    with pytest.raises(ValueError, match="channel_axis 0 has 3 channels|colour needs"):
        estimate(np.stack(planes + planes[:2]), channel_axis=0)  # 5 planes are not colour
    with pytest.raises(ValueError, match="reference has shape"):
        estimate(stack, "reference", reference=stack[:2])
