import numpy as np
import pytest

from blurmap import blur, estimate, focal, synthetic


def test_exact_plane_is_recovered():
    truth = synthetic.tilted_focal_plane((300, 400), position=0.35, angle_deg=6.0, floor=0.6, gradient=0.01)
    fit = focal(truth)
    assert abs(fit.angle_deg - 6.0) < 1e-3 and abs(fit.position - 0.35) < 1e-4
    assert abs(fit.gradient - 0.01) < 1e-5 and abs(fit.floor - 0.6) < 1e-3 and fit.r_squared > 0.9999


@pytest.mark.parametrize("seed", [3, 4])
def test_focal_line_of_an_estimated_noisy_map(seed):
    # the issue 3 bar: within 2% of the height and 2 degrees, from a noisy micrograph
    image, truth = synthetic.sem_sample((384, 512), seed=seed)
    fit, true = focal(estimate(image)), focal(truth)
    assert abs(fit.position - true.position) < 0.02 and abs(fit.angle_deg - true.angle_deg) < 2.0
    assert abs(fit.gradient / true.gradient - 1) < 0.3


def test_unknown_pixels_are_skipped_and_bad_maps_refused():
    truth = synthetic.tilted_focal_plane((200, 200))
    holed = truth.copy()
    holed[:, :60] = np.nan
    assert abs(focal(holed).position - 0.4) < 1e-3
    with pytest.raises(ValueError, match="2-D"):
        focal(np.zeros((3, 10, 10)))
    with pytest.raises(ValueError, match="known pixels"):
        focal(np.full((50, 50), np.nan))


def test_profile_of_an_exact_plane():
    from blurmap import profile
    truth = synthetic.tilted_focal_plane((300, 400), position=0.5, angle_deg=0.0, floor=0.5, gradient=0.01)
    prof = profile(truth, bins=30)
    centre = np.argmin(np.abs(prof.distance))
    assert abs(prof.median[centre] - 0.5) < 0.05
    # sigma = sqrt(floor**2 + (gradient * distance)**2), up to the spread of distance within a bin
    np.testing.assert_allclose(prof.median, np.sqrt(0.25 + (0.01 * prof.distance) ** 2), rtol=0.03)
    assert np.all(prof.lower <= prof.median) and np.all(prof.median <= prof.upper)
    assert abs(prof.thirds[0] + 50) < 1 and abs(prof.thirds[1] - 50) < 1  # rows 100, 200 at line 149.5


@pytest.mark.parametrize("angle", [4.0, -6.0])
def test_hough_check_finds_the_line_of_an_exact_plane(angle):
    from blurmap import hough_focal_line
    line = hough_focal_line(synthetic.tilted_focal_plane((384, 512), position=0.4, angle_deg=angle))
    assert abs(line.angle_deg - angle) < 0.5 and abs(line.position - 0.4) < 0.005


def test_hough_check_agrees_with_the_truth_on_a_noisy_map():
    # at the demo's size; on maps a few hundred columns wide it can be off by several degrees
    from blurmap import hough_focal_line
    image, truth = synthetic.sem_sample((768, 1024), seed=3)
    line, true = hough_focal_line(estimate(image)), focal(truth)
    assert abs(line.angle_deg - true.angle_deg) < 2.0 and abs(line.position - true.position) < 0.02


# ---- a focal band is reported only where there is one (issue 17, point 7)

def test_a_tilted_specimen_has_a_focal_band():
    fit = focal(synthetic.tilted_focal_plane((300, 400), position=0.2, angle_deg=-8.0))
    assert fit.found and fit.reason == ""


@pytest.mark.parametrize("name, truth", [
    ("left/right step", synthetic.step((256, 320), 0.5, 2.5, axis=1)),
    ("left/right ramp", synthetic.ramp((256, 320), 0.5, 3.0, axis=1)),
    ("uniform", np.full((256, 320), 1.5, np.float32) + np.random.default_rng(0).normal(0, 0.05, (256, 320))),
])
def test_no_focal_band_is_reported_where_there_is_none(name, truth):
    fit = focal(truth)
    assert not fit.found, (name, fit)
    assert fit.reason


def test_no_band_found_on_an_estimated_map_blurred_left_and_right():
    # the case: an image blurred left/right read a focal line at -83% or 130% of the height
    sharp = synthetic.dead_leaves((256, 320), seed=11)
    sigma = estimate(blur(sharp, synthetic.step(sharp.shape, 0.6, 2.6, axis=1)), noise=0, shot_noise=0)
    fit = focal(sigma)
    assert not fit.found and "no focal band" in fit.reason


def test_the_found_band_of_an_estimated_sem_map_lies_in_the_image():
    image, _ = synthetic.sem_sample((320, 384), seed=2)
    fit = focal(estimate(image))
    assert fit.found and 0 <= fit.position <= 1
