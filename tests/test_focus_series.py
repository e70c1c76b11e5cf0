"""Focus series: the height of best focus per pixel, to a fraction of the step, and the all-in-focus image."""

import numpy as np
import pytest

from blurmap import blur, synthetic
from blurmap.analysis.focus_series import fit_focus, focus_series


def test_the_parabola_finds_heights_between_planes_exactly_on_true_maps():
    h = np.linspace(1.3, 5.7, 40)[None, :] * np.ones((30, 1))  # steps
    z = np.arange(8.0)[:, None, None]
    fit = fit_focus(np.sqrt(0.5**2 + (0.9 * (z - h)) ** 2), z_step=2.0)  # heights in um, say
    np.testing.assert_allclose(fit.height, 2.0 * h, atol=1e-6)
    np.testing.assert_allclose(fit.floor, 0.5, atol=1e-6)
    np.testing.assert_allclose(fit.slope, 0.45, atol=1e-6)  # px per um
    assert (fit.confidence > 0.99).all()


def test_a_tilted_specimen_series_is_read_to_a_fraction_of_the_step_and_beats_the_arg_min():
    yy, xx = np.mgrid[0:192, 0:192] / 191
    h = 1.5 + 4.0 * xx + 1.0 * yy  # steps
    sharp = synthetic.dead_leaves((192, 192), seed=404)
    stack = np.stack([blur(sharp, np.hypot(0.6, 0.8 * (i - h)).astype(np.float32)) for i in range(8)])
    fit = focus_series(stack, z_step=0.25)  # um
    inner = (slice(24, -24), slice(24, -24))
    rmse = np.sqrt(np.nanmean((fit.height / 0.25 - h)[inner] ** 2))
    arg_min = np.sqrt(np.mean((fit.sharpest - h)[inner] ** 2))
    assert rmse < 0.15 and rmse < arg_min / 2, (rmse, arg_min)
    # the composite takes each pixel from its sharpest plane
    nearest = np.clip(np.rint(h), 0, 7).astype(int)
    agree = np.mean(fit.all_in_focus[inner] == np.take_along_axis(stack, nearest[None], 0)[0][inner])
    assert agree > 0.9


@pytest.mark.parametrize("args, match", [
    ((np.ones((2, 8, 8)), 1.0), "at least 3 planes"),
    ((np.ones((4, 8, 8)), 0.0), "z_step must be a positive number"),
    ((np.ones((4, 8)), 1.0), "at least 3 planes"),
])
def test_bad_series_are_refused_by_name(args, match):
    with pytest.raises(ValueError, match=match):
        fit_focus(*args)


def test_a_pixel_whose_blur_has_no_minimum_within_the_series_is_unknown():
    z = np.arange(6.0)[:, None, None] * np.ones((6, 4, 4))
    fit = fit_focus(0.5 + 0.3 * z, z_step=1.0)  # blur only grows: best focus lies before the first plane
    assert np.isnan(fit.height).all() and (fit.confidence == 0).all()


def test_the_command_line_writes_the_height_map_and_refuses_bad_input_before_writing(tmp_path, capsys):
    import json

    import tifffile

    from blurmap.cli import main

    yy, xx = np.mgrid[0:160, 0:160] / 159
    h = 1.5 + 4.0 * xx  # steps
    sharp = synthetic.dead_leaves((160, 160), seed=405)
    path = tmp_path / "series.tif"
    tifffile.imwrite(path, np.stack([blur(sharp, np.hypot(0.6, 0.8 * (i - h)).astype(np.float32)) for i in range(8)]))
    assert main(["focus-series", str(path), str(tmp_path / "out"), "--z-step", "0.5", "--unit", "um"]) == 0
    assert "height of best focus" in capsys.readouterr().out
    height = tifffile.imread(tmp_path / "out" / "height_learned.tif")
    assert height.shape == (160, 160) and abs(np.nanmedian(height) - 0.5 * np.median(h)) < 0.1
    summary = json.loads((tmp_path / "out" / "focus_summary_learned.json").read_text())
    assert summary["unit"] == "um" and summary["planes"] == 8
    assert (tmp_path / "out" / "all_in_focus_learned.tif").is_file()
    assert main(["focus-series", str(path), str(tmp_path / "bad"), "--z-step", "-1"]) == 2
    assert "z_step must be a positive number" in capsys.readouterr().err
    flat = tmp_path / "plane.tif"
    tifffile.imwrite(flat, sharp)
    assert main(["focus-series", str(flat), str(tmp_path / "bad"), "--z-step", "1"]) == 2
    assert "multi-page TIFF" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_an_rgb_image_is_refused_as_a_focus_series_before_any_map():
    # (Y, X, 3) used to be mapped as one colour image, then refused by the fit as "shape (Y, X)"
    with pytest.raises(ValueError, match="one RGB"):
        focus_series(np.random.default_rng(0).random((64, 64, 3)), z_step=1.0)


def test_the_relative_fit_keeps_a_height_steps_edge_where_the_sigma_maps_blend_it():
    yy, xx = np.mgrid[0:192, 0:192] / 191
    h = np.where(xx < 0.5, 2.0, 5.0)  # a step of three planes across the middle
    sharp = synthetic.dead_leaves((192, 192), seed=405)
    stack = np.stack([blur(sharp, np.hypot(0.6, 0.8 * (i - h)).astype(np.float32)) for i in range(8)])
    near = (slice(24, -24), slice(80, 112))  # 16 px either side of the edge
    by_sigma = focus_series(stack, z_step=1.0)
    relative = focus_series(stack, z_step=1.0, fit="relative")
    err_sigma = np.sqrt(np.nanmean((by_sigma.height - h)[near] ** 2))
    err_relative = np.sqrt(np.nanmean((relative.height - h)[near] ** 2))
    assert err_relative < 0.5 * err_sigma, (err_relative, err_sigma)
    assert np.isnan(relative.floor).all() and np.nanmedian(relative.slope) == pytest.approx(0.8, abs=0.15)


def test_the_relative_fit_takes_no_estimator_and_refuses_holes():
    with pytest.raises(ValueError, match="takes no method"):
        focus_series(np.ones((4, 32, 32)), 1.0, "learned", fit="relative")
    with pytest.raises(ValueError, match="fit must be one of"):
        focus_series(np.ones((4, 32, 32)), 1.0, fit="parabola")
    stack = np.random.default_rng(0).random((4, 32, 32))
    stack[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        focus_series(stack, 1.0, fit="relative")
