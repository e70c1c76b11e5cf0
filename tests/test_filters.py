"""The compiled inner loops give the numbers of the scipy and numpy chains they replaced, at any size."""

import threading

import numpy as np
import pytest
from scipy import ndimage as ndi

from blurmap.estimators._blas import _controller, one_blas_thread
from blurmap.estimators._energy import gradient_energy, laplacian_energy
from blurmap.estimators._filters import block_energies, box2, gaussian, interpolate
from blurmap.estimators._grid import block_mean

SHAPES = [(1, 1), (1, 5), (2, 2), (3, 7), (9, 4), (37, 23), (130, 67)]  # a block or a kernel wider than the image too


def _image(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).random(shape).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma, truncate", [(0.7, 4.0), (1.4, 4.0), (2.1, 4.0), (4.0, 3.0)])
def test_gaussian_is_scipys_to_the_bit(shape, sigma, truncate):
    a = _image(shape)
    expected = ndi.gaussian_filter(a, sigma, mode="reflect", truncate=truncate)
    np.testing.assert_array_equal(gaussian(a, sigma, truncate), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", [1, 3, 5, 31])  # 31 reaches past every side of the small arrays
def test_box2_is_four_uniform_filter_passes_to_the_bit(dtype, shape, size):
    a = _image(shape, dtype)
    expected = a
    for axis in (0, 0, 1, 1):
        expected = ndi.uniform_filter1d(expected, size, axis=axis, mode="reflect")
    got = box2(a, size)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)


def _reference_blocks(a: np.ndarray, factor: int) -> np.ndarray:
    h, w = a.shape
    a = np.pad(a, ((0, (-h) % factor), (0, (-w) % factor)), mode="symmetric")
    return a.reshape(a.shape[0] // factor, factor, a.shape[1] // factor, factor).mean(axis=(1, 3), dtype=np.float64)


@pytest.mark.parametrize("shape", [s for s in SHAPES if min(s) > 1])  # numpy's differences need two samples
@pytest.mark.parametrize("factor", [1, 2, 4])
def test_block_energies_are_the_numpy_energies_block_means(shape, factor):
    g = _image(shape)
    e = gradient_energy(g)
    energy, squares, curvature = block_energies(g, factor, squares=True)
    np.testing.assert_allclose(energy, _reference_blocks(e, factor), rtol=1e-12)
    np.testing.assert_allclose(squares, _reference_blocks(e * e, factor), rtol=1e-12)
    np.testing.assert_allclose(curvature, _reference_blocks(laplacian_energy(g), factor), rtol=1e-12)
    assert not block_energies(g, factor)[1].any()  # squares only when asked


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_block_mean_is_numpys_mean_of_the_mirrored_blocks(dtype, shape):
    a = _image(shape, dtype)
    np.testing.assert_allclose(block_mean(a), _reference_blocks(a, 4), rtol=1e-15)  # the sums' order may differ


def test_block_energies_of_a_single_row_or_column_have_no_difference_across_it():
    row = _image((1, 9))
    energy, _, curvature = block_energies(row, 1)
    gx = np.gradient(row[0])  # central inside, one-sided halves at the ends, as reflection gives
    gx[0], gx[-1] = (row[0, 1] - row[0, 0]) / 2, (row[0, -1] - row[0, -2]) / 2
    np.testing.assert_allclose(energy[0], gx * gx, rtol=1e-6)
    assert np.isfinite(curvature).all()


def test_interpolate_weighs_the_two_samples_given_and_carries_nan_from_either():
    rows = (np.array([0, 0, 1]), np.array([1, 1, 1]), np.array([0.0, 0.25, 0.0]))
    columns = (np.array([0, 0]), np.array([1, 1]), np.array([0.0, 0.5]))
    got = interpolate(np.array([[0.0, 10.0], [20.0, 30.0]]), rows, columns)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[0.0, 5.0], [5.0, 10.0], [20.0, 25.0]])
    with_nan = interpolate(np.array([[0.0, 10.0], [20.0, np.nan]]), rows, columns)
    assert np.isnan(with_nan).all()  # every output leans on row 1 and column 1, even at weight 0


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in _controller().info() if lib["user_api"] == "blas"]


def test_blas_keeps_one_thread_while_any_tile_runs_and_gets_its_own_back():
    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library loaded")
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with one_blas_thread():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with one_blas_thread():
            second_in.set()
            first_out.wait(5)
            seen["after the first left"] = _blas_threads()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["after the first left"] == [1] * len(before)  # the first tile out must not lift the limit
    assert _blas_threads() == before  # the last one out restores the user's setting


_NO_CACHE_PLACE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "ditable" not in type(f).__name__]  # not the editable install
sys.path = [sys.argv[1]] + [p for p in sys.path if not p.endswith("src")]
import numpy as np
import blurmap
from blurmap import synthetic
assert blurmap.__file__.startswith(sys.argv[1]), blurmap.__file__
image = blurmap.blur(synthetic.dead_leaves((96, 96), seed=1), np.full((96, 96), 2.0))
print(float(np.median(blurmap.estimate(image, "gradient_ratio", noise=0, shot_noise=0))))
"""


def test_the_loops_compile_where_numba_finds_no_place_to_cache_them(tmp_path):
    # a package numba cannot cache beside (here a zip) and a HOME it cannot write under: numba's
    # cache raised at import, deep inside numba; the loops are then compiled in memory instead
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import blurmap

    source = Path(blurmap.__file__).parent
    archive = shutil.make_archive(str(tmp_path / "pkg"), "zip", source.parent, source.name)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["HOME"] = "/dev/null/home"  # under a file: nothing can be made there, by root either
    run = subprocess.run([sys.executable, "-c", _NO_CACHE_PLACE, archive], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    from blurmap import blur, estimate, synthetic
    image = blur(synthetic.dead_leaves((96, 96), seed=1), np.full((96, 96), 2.0))
    assert float(run.stdout.split()[-1]) == float(np.median(estimate(image, "gradient_ratio", noise=0, shot_noise=0)))


def test_interp_gives_numpys_numbers_on_values_in_no_order():
    from blurmap.estimators import gradient_ratio as gr
    from blurmap.estimators._filters import interp

    rng = np.random.default_rng(0)
    table = gr.model_log_ratio(gr.SIGMA_GRID, gr.GAMMA, gr.T_DERIV, gr.SCALES)[::-1]  # crowded at both ends
    values = np.concatenate([rng.uniform(-0.1, 4.0, 50_000), table, np.nextafter(table, 9), np.nextafter(table, -9),
                             [np.nan, np.inf, -np.inf, 0.0], rng.uniform(0, 0.01, 4998)]).reshape(-1, 5)
    np.testing.assert_array_equal(interp(values, table, gr.SIGMA_GRID[::-1]), np.interp(values, table, gr.SIGMA_GRID[::-1]))
    for _ in range(20):
        xp = np.unique(rng.random(int(rng.integers(2, 40))) * rng.uniform(0.1, 10))
        fp = rng.random(xp.size)
        x = np.concatenate([xp, rng.uniform(xp[0] - 1, xp[-1] + 1, 2000)])
        np.testing.assert_array_equal(interp(x, xp, fp), np.interp(x, xp, fp))
    repeated = np.array([0.0, 1.0, 1.0, 2.0])  # not strictly increasing: numpy's own
    np.testing.assert_array_equal(interp([0.5, 1.0, 1.5], repeated, np.arange(4.0)),
                                  np.interp([0.5, 1.0, 1.5], repeated, np.arange(4.0)))
