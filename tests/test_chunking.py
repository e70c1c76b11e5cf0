"""Chunked equals whole: every estimator, over its parameters at their bounds, ragged and non-square chunks."""

import dask.array as da
import numpy as np
import pytest

from blurmap import blur, estimate, estimators, synthetic

SHAPE = (300, 420)
TEXTURE = blur(synthetic.dead_leaves(SHAPE, seed=5), synthetic.ramp(SHAPE, 0.5, 3.0))
WHITE = np.random.default_rng(0).random(SHAPE).astype(np.float32)
SHARP = synthetic.dead_leaves(SHAPE, seed=6)
BLURRED = blur(SHARP, synthetic.ramp(SHAPE, 0.5, 3.0))


def _grid():
    """Yield (method, params): the defaults, then each numeric parameter at its bounds (upper ones capped)."""
    for name, est in estimators().items():
        yield name, {}
        for p in est.params:
            if p.default is None:
                continue
            values = {p.minimum, p.maximum if p.maximum is None or p.maximum <= 4 * p.default else 4 * p.default}
            for value in sorted(v for v in values if v is not None and v != p.default):
                yield name, {p.name: p.kind(value)}


def _cases():
    for method, params in _grid():
        for image in ("texture", "white noise"):
            yield pytest.param(method, params, image, id=f"{method}-{params}-{image}")


@pytest.mark.parametrize("method, params, image", list(_cases()))
def test_chunked_equals_whole(method, params, image):
    est = estimators()[method]
    if "reference" in est.inputs:
        if image == "white noise":
            pytest.skip("the reference method needs the blurred image of its reference")
        img, extra = BLURRED, {"reference": SHARP}
    else:
        img, extra = (TEXTURE if image == "texture" else WHITE), {}
    halo = est.halo_for(est.check(params))
    chunks = (2 * halo + 12, 2 * halo + 28)  # ragged (the last chunk shorter) and not square
    if chunks[0] >= SHAPE[0] and chunks[1] >= SHAPE[1]:
        pytest.skip(f"the halo ({halo} px) leaves one chunk")
    whole = estimate(img, method, **params, **extra)
    lazy_extra = {k: da.from_array(v, chunks=chunks) for k, v in extra.items()}
    lazy = estimate(da.from_array(img, chunks=chunks), method, **params, **lazy_extra).compute()
    tol = 0.05 if method == "reference" else 1e-4  # reference: its smoothness prior's fixed sweeps
    inner = (slice(16, -16), slice(16, -16)) if method == "reference" else (slice(None), slice(None))
    np.testing.assert_allclose(lazy[inner], whole[inner], atol=tol, rtol=0, equal_nan=True)


@pytest.mark.parametrize("image", ["texture", "white noise"])
def test_chunked_equals_whole_for_the_widest_halo(image):
    # learned's halo (204 px) leaves one chunk on the images above: an image of three halos and more,
    # cut into chunks of two halos and a ragged rest (white noise used to differ by 0.19 px)
    halo = estimators()["learned"].halo
    shape = (3 * halo + 40, 3 * halo + 100)
    rng = np.random.default_rng(3)
    img = (rng.random(shape).astype(np.float32) if image == "white noise"
           else blur(synthetic.dead_leaves(shape, seed=8), synthetic.ramp(shape, 0.5, 3.0)))
    whole = estimate(img, "learned")
    lazy = estimate(da.from_array(img, chunks=(2 * halo, 2 * halo + 9)), "learned")
    assert lazy.numblocks[0] > 1 and lazy.numblocks[1] > 1
    np.testing.assert_allclose(lazy.compute(), whole, atol=1e-4, rtol=0, equal_nan=True)


def _threads_used(monkeypatch):
    """Patch the engine so that every tile records its thread and lingers, and return the record."""
    import threading
    import time

    from blurmap.engine import _run, _tile

    seen = set()
    run_tile = _tile.run_tile

    def recorded(*args, **kwargs):
        seen.add(threading.get_ident())
        time.sleep(0.05)  # long enough for a second thread to take the next tile meanwhile
        return run_tile(*args, **kwargs)

    monkeypatch.setattr(_tile, "run_tile", recorded)
    monkeypatch.setattr(_run, "cores", lambda: 2)
    return seen


def test_a_large_numpy_image_is_cut_into_tiles_on_every_core_and_equals_the_whole(monkeypatch):
    from blurmap.engine import _run

    whole = estimate(TEXTURE, "gradient_ratio")  # one tile: the image is smaller than THREAD_CHUNK
    seen = _threads_used(monkeypatch)
    monkeypatch.setattr(_run, "THREAD_CHUNK", 160)
    monkeypatch.setattr(_run, "THREAD_CHUNK_HALOS", 2)
    tiled = estimate(TEXTURE, "gradient_ratio")
    assert len(seen) >= 2
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-5)


def test_a_tile_that_fails_stops_the_tiles_not_yet_started(monkeypatch):
    # every tile is queued at once: an error (or Ctrl-C) must not wait for all of them to run first
    import threading

    from blurmap import engine
    from blurmap.engine import _run, _tile

    calls, lock = [], threading.Lock()

    def failing(*args, **kwargs):
        with lock:
            calls.append(1)
        raise RuntimeError("this tile failed")

    monkeypatch.setattr(_tile, "run_tile", failing)
    monkeypatch.setattr(_run, "cores", lambda: 2)
    monkeypatch.setattr(_run, "THREAD_CHUNK", 160)
    monkeypatch.setattr(_run, "THREAD_CHUNK_HALOS", 2)
    with pytest.raises(RuntimeError, match="this tile failed"):
        estimate(TEXTURE, "gradient_ratio")
    tiles = engine.tile_count(TEXTURE.shape, "gradient_ratio", chunk=160)
    assert tiles > 4 and len(calls) <= 2 + 1  # the two running, and at most one taken as the first error came


def test_the_widgets_tile_loop_computes_a_tile_per_core_at_a_time(monkeypatch):
    from blurmap import estimate_tiles, tile_count

    seen = _threads_used(monkeypatch)
    steps = [(s.done, s.total) for s in estimate_tiles(TEXTURE, "gradient_ratio", chunk=136)]
    total = tile_count(TEXTURE.shape, "gradient_ratio", chunk=136)
    assert steps == [(i + 1, total) for i in range(total)] and total > 2
    assert len(seen) >= 2
    np.testing.assert_allclose(
        estimate(TEXTURE, "gradient_ratio", chunks=136), estimate(TEXTURE, "gradient_ratio"), rtol=1e-4, atol=1e-5)


def test_chunked_equals_whole_for_every_output_of_the_directional_method():
    from blurmap import blur_elliptical

    halo = estimators()["directional"].halo
    shape = (3 * halo + 40, 3 * halo + 100)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / max(shape)
    major = 1.0 + 2.0 * xx
    img = blur_elliptical(synthetic.dead_leaves(shape, seed=9), major, np.minimum(0.8 + 0.4 * yy, major), 30 + 90 * yy)
    whole = estimate(img, "directional", return_outputs=True)
    lazy = estimate(da.from_array(img, chunks=(2 * halo, 2 * halo + 9)), "directional", return_outputs=True)
    assert lazy["sigma"].numblocks[0] > 1 and lazy["sigma"].numblocks[1] > 1
    for name, want in whole.items():
        got = lazy[name].compute()
        if name == "angle_deg":  # an angle differs across 0 / 180 by a wrap, not by its value
            diff = np.abs(np.mod(got - want + 90, 180) - 90)
            assert np.array_equal(np.isnan(got), np.isnan(want)) and np.nanmax(diff) < 1e-2
        else:
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=0, equal_nan=True)


@pytest.mark.parametrize("method", ["gradient_ratio", "learned", "reference"])
def test_the_widgets_tiles_of_an_in_memory_image_are_the_lazy_maps_blocks(method):
    # an in-memory image's tiles are cut with their halos straight from it (no dask graph per tile)
    image = TEXTURE.copy()
    image[40:44, 200:230] = np.nan  # unknown pixels near a tile's edge
    extra = {"reference": synthetic.dead_leaves(SHAPE, seed=5)} if method == "reference" else {}
    from blurmap import estimate_tiles

    *_, last = estimate_tiles(image, method, chunk=136, **extra)
    lazy = estimate(da.from_array(image, chunks=136), method, return_confidence=True,
                    **{k: da.from_array(v, chunks=136) for k, v in extra.items()})
    for got, expected in zip((last.sigma, last.confidence), lazy):
        np.testing.assert_allclose(got, np.asarray(expected), rtol=0, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("chunks", [(40, 40), (40, 57), (100, 30), (200, 300)])
def test_each_blocks_window_is_copied_from_the_chunks_it_lies_in_as_the_whole_image_holds_it(chunks):
    from blurmap.engine._chunks import _halo_window
    from blurmap.engine._graph import _covering, _window

    image = np.arange(130 * 190, dtype=np.float32).reshape(130, 190)
    halo = 10  # a last chunk of 10 to 39 px: as long as the halo or more
    starts = [np.cumsum((0,) + da.from_array(image, chunks=chunks).chunks[k]) for k in (0, 1)]
    ny, nx = len(starts[0]) - 1, len(starts[1]) - 1

    def chunk(i: int, j: int) -> np.ndarray:
        return image[starts[0][i]:starts[0][i + 1], starts[1][j]:starts[1][j + 1]]

    for i in range(ny):
        for j in range(nx):
            loc = ((starts[0][i], starts[0][i + 1]), (starts[1][j], starts[1][j + 1]))
            window, _ = _halo_window(slice(*loc[0]), slice(*loc[1]), halo, image.shape)
            rows, cols = (_covering(s, w.start, w.stop) for s, w in zip(starts, window))
            assert len(rows) <= 3 and len(cols) <= 3  # its chunk and its neighbours at most
            pieces = [chunk(y, x) for y, _ in rows for x, _ in cols]
            got = _window(*pieces, rows=[r for _, r in rows], cols=[c for _, c in cols])
            np.testing.assert_array_equal(got, image[window])


def test_a_lazy_images_maps_take_one_task_per_block_beside_its_chunks():
    # views of the chunk grid (or dask's overlap) added a task per neighbour and block: 12 ms of a small image's work
    import dask

    from blurmap.noise import sample_origins

    lazy = da.from_array(TEXTURE, chunks=(152, 140))  # on the estimator's grid: nothing to rechunk
    maps = estimate(lazy, "gradient_ratio")
    (optimized,) = dask.optimize(maps)
    preparation = len(sample_origins(TEXTURE.shape)) + 1  # a task per noise sample, one fitting the parameters
    assert len(optimized.__dask_graph__()) <= 3 * lazy.npartitions + 1 + preparation  # chunks, blocks, sigma, join


def test_a_method_that_computes_part_of_a_tile_gives_the_tiles_part_near_non_finite_pixels_too():
    from blurmap import engine

    est = estimators()["learned"]
    assert est.crops  # the method computes the part asked for itself
    tile = TEXTURE[:260, :300].copy()
    tile[100, 150] = np.nan
    params = engine.prepare(TEXTURE, "learned").params
    block = (slice(60, 200), slice(44, 268))
    whole = engine.run_tile(est, tile, params)
    part = engine.run_tile(est, tile, params, block=block)
    for w, p in zip(whole, part):
        np.testing.assert_allclose(p, w[block], rtol=0, atol=1e-5, equal_nan=True)
    assert np.isnan(part[0]).any() and (part[-1] == 0).any()


def test_a_dask_image_is_read_when_its_maps_are_computed_each_chunk_once():
    # its noise samples were read by a computation of their own inside estimate(), then again by the blocks
    reads = []

    def chunk(block_info=None):
        (y0, y1), (x0, x1) = block_info[None]["array-location"]
        reads.append((y0, x0))
        return TEXTURE[y0:y1, x0:x1]

    lazy = da.map_blocks(chunk, chunks=((152, 148), (140, 140, 140)), dtype=np.float32,
                         meta=np.empty((0, 0), np.float32))
    maps = estimate(lazy, "gradient_ratio", return_confidence=True)
    assert reads == []
    np.testing.assert_array_equal(maps[0].compute(), estimate(TEXTURE, "gradient_ratio", chunks=(152, 140)))
    assert sorted(reads) == sorted(set(reads)) and len(reads) == lazy.npartitions


@pytest.mark.parametrize("method", ["gradient_ratio", "learned", "directional"])
def test_a_dask_image_prepared_in_its_graph_gives_prepares_maps_to_the_bit(method):
    from blurmap import engine
    from blurmap.engine import _graph

    image = TEXTURE.copy()
    image[40:70, 200:230] = np.nan
    for chunks in [(100, 130), (152, 140), 64]:  # ragged; on the grid; smaller than a noise sample (rechunked)
        lazy = da.from_array(image, chunks=chunks)
        prep = engine.prepare(lazy, method)
        expected = _graph._lazy(prep, None).compute()
        got = estimate(lazy, method, return_outputs=True)
        for k, name in enumerate(estimators()[method].outputs):
            np.testing.assert_array_equal(got[name].compute(), expected[..., k])


def test_a_dask_image_whose_samples_lie_in_too_many_chunks_has_them_read_before(monkeypatch):
    # a chunk under a sample is held from the start of the computation until its blocks are done
    from blurmap import noise
    from blurmap.engine import _graph, _preparation

    lazy = da.from_array(TEXTURE, chunks=(100, 130))
    in_graph = estimate(lazy, "gradient_ratio").compute()
    monkeypatch.setattr(_graph, "SAMPLED_CHUNKS_MAX", lazy.nbytes // 2)  # the samples lie in every chunk
    read = []
    monkeypatch.setattr(_preparation, "sample_regions", lambda image: read.append(image.shape) or
                        noise.sample_regions(image))
    before = estimate(lazy, "gradient_ratio")
    assert read == [TEXTURE.shape]  # by prepare(), before the maps are computed
    np.testing.assert_array_equal(before.compute(), in_graph)
