"""`blurmap estimate` and blurmap.stream: lazy inputs, OME-Zarr and TIFF outputs, atomic writes, a real cluster."""

import contextlib
import io as _io
import json
import threading
import time

import dask
import numpy as np
import pytest
import tifffile
import zarr

from blurmap import estimate, synthetic
from blurmap.cli import main
from blurmap.engine import lazy_maps
from blurmap.io import open_image, stream
from blurmap.io.stream import Progress, estimate_file

GR = "gradient_ratio"  # streaming is tested with the estimator of the smallest halo, so small files have many blocks

@pytest.fixture(scope="module")
def micrograph():
    image, _ = synthetic.sem_sample((600, 520), seed=11)
    return image


@pytest.fixture
def tiled_tiff(tmp_path, micrograph):
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, micrograph, tile=(128, 128), bigtiff=True)
    return path


def _ome_levels(path):
    root = zarr.open_group(str(path), mode="r")
    ms = root.attrs["multiscales"][0]
    return root, ms, [root[d["path"]][:] for d in ms["datasets"]]


def test_tiff_to_ome_zarr_equals_the_in_memory_map(tmp_path, tiled_tiff, micrograph):
    out = tmp_path / "map.zarr"
    assert main(["estimate", str(tiled_tiff), str(out), "--chunk", "256", "--method", GR]) == 0
    root, ms, levels = _ome_levels(out)
    whole, conf = estimate(micrograph, GR, return_confidence=True)
    np.testing.assert_allclose(levels[0], whole, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(root["confidence/0"][:], conf, atol=1e-4)
    assert [lv.shape for lv in levels] == [(600, 520), (300, 260), (150, 130)]
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(levels[1], np.nanmean(levels[0].reshape(300, 2, 260, 2), axis=(1, 3)), rtol=1e-5)
        np.testing.assert_allclose(levels[2], np.nanmean(levels[1].reshape(150, 2, 130, 2), axis=(1, 3)), rtol=1e-5)
    assert root["1"].chunks == (128, 128) and root["2"].chunks == (64, 64)  # each block writes its own chunks
    assert ms["datasets"][1]["coordinateTransformations"][0]["scale"] == [2.0, 2.0]
    assert root.attrs["blurmap"]["method"] == "gradient_ratio" and root.attrs["blurmap"]["value_unit"] == "px"
    assert root.attrs["blurmap"]["params"]["noise"] > 0  # the image-wide estimate, recorded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "map.zarr"]  # no temporary left


def test_levels_past_those_the_blocks_write_are_2x2_means_of_the_level_below(tmp_path, tiled_tiff, monkeypatch):
    monkeypatch.setattr(stream, "BLOCK_LEVELS", 0)  # every coarse level made by reading the one before
    out = tmp_path / "map.zarr"
    assert main(["estimate", str(tiled_tiff), str(out), "--chunk", "136", "--method", GR]) == 0
    root, _, levels = _ome_levels(out)
    assert [lv.shape for lv in levels] == [(600, 520), (300, 260), (150, 130)]
    assert root["1"].chunks == (136, 136)
    for group in ("", "confidence/"):
        for k in (1, 2):
            finer, level = root[f"{group}{k - 1}"][:], root[f"{group}{k}"][:]
            h, w = level.shape
            with np.errstate(all="ignore"):
                mean = np.nanmean(finer[:2 * h, :2 * w].reshape(h, 2, w, 2), axis=(1, 3))
            np.testing.assert_allclose(level, mean, rtol=1e-6, equal_nan=True)


def test_levels_read_from_the_one_below_keep_a_stacks_planes_and_pick_angles(tmp_path, monkeypatch):
    from blurmap import blur_elliptical

    monkeypatch.setattr(stream, "BLOCK_LEVELS", 0)  # every coarse level made by reading the one before
    image = blur_elliptical(synthetic.dead_leaves((300, 344), seed=7), 3.0, 1.2, 40.0)
    tifffile.imwrite(tmp_path / "ell.tif", image)
    assert main(["estimate", str(tmp_path / "ell.tif"), str(tmp_path / "d.zarr"), "--method", "directional",
                 "--chunk", "136"]) == 0
    angle = zarr.open_group(str(tmp_path / "d.zarr"), mode="r")["angle_deg"]
    np.testing.assert_array_equal(angle["1"][:], angle["0"][:][::2, ::2][:150, :172])  # picked, not averaged
    stack = _stack((2, 300, 344))
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack", metadata={"axes": "ZYX"})
    assert main(["estimate", str(tmp_path / "stack.tif"), str(tmp_path / "s.zarr"), "--chunk", "136",
                 "--method", GR]) == 0
    root, _, levels = _ome_levels(tmp_path / "s.zarr")
    assert levels[1].shape == (2, 150, 172) and root["1"].chunks == (1, 136, 136)
    for k in range(2):
        with np.errstate(all="ignore"):
            mean = np.nanmean(levels[0][k].reshape(150, 2, 172, 2), axis=(1, 3))
        np.testing.assert_allclose(levels[1][k], mean, rtol=1e-6, equal_nan=True)


def test_the_first_blocks_compute_while_the_output_arrays_are_created(tmp_path, tiled_tiff, monkeypatch):
    # creating the OME-Zarr's arrays is tens of ms of Python: the blocks need them only to write
    from blurmap.engine import _graph

    started, waited = threading.Event(), []
    run_tile, create = _graph.run_tile, stream._create_levels

    def running(*args, **kwargs):
        started.set()
        return run_tile(*args, **kwargs)

    def creating(*args):
        waited.append(started.wait(timeout=30))
        return create(*args)

    monkeypatch.setattr(_graph, "run_tile", running)
    monkeypatch.setattr(stream, "_create_levels", creating)
    out = tmp_path / "map.zarr"
    estimate_file(tiled_tiff, out, GR, chunk=256, progress=False)
    assert waited == [True]
    np.testing.assert_allclose(_ome_levels(out)[2][0], estimate(tifffile.imread(tiled_tiff), GR), atol=1e-4,
                               equal_nan=True)


def test_tiff_output_is_a_tiled_pyramid_with_its_metadata(tmp_path, tiled_tiff, micrograph):
    out = tmp_path / "map.tif"
    assert main(["estimate", str(tiled_tiff), str(out), "--method", "acutance"]) == 0
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert page.is_tiled and len(tif.series[0].levels) == 3
        assert json.loads(page.description)["method"] == "acutance"
        np.testing.assert_allclose(page.asarray(), estimate(micrograph, "acutance"), atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "map.tif"]


def test_zarr_ome_zarr_and_png_inputs(tmp_path, micrograph):
    plain = tmp_path / "plain.zarr"
    zarr.open_array(str(plain), mode="w", shape=micrograph.shape, chunks=(200, 200), dtype="f4")[:] = micrograph
    ome = tmp_path / "ome.zarr"
    group = zarr.open_group(str(ome), mode="w", zarr_format=2)
    group.create_array("0", shape=(1,) + micrograph.shape, chunks=(1, 256, 256), dtype="f4")[:] = micrograph[None]
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "c", "type": "channel"},
                                                               {"name": "y", "type": "space", "unit": "nanometer"},
                                                               {"name": "x", "type": "space", "unit": "nanometer"}],
                                   "datasets": [{"path": "0", "coordinateTransformations": [
                                       {"type": "scale", "scale": [1.0, 2.5, 2.5]}]}]}]
    src = open_image(ome)
    assert src.levels[0].shape == micrograph.shape and src.scale == (2.5, 2.5) and src.unit == "nanometer"
    png = tmp_path / "in.png"
    import skimage.io
    skimage.io.imsave(png, (np.clip(micrograph, 0, 1) * 255).astype(np.uint8), check_contrast=False)
    for source, name in ((plain, "a.zarr"), (ome, "b.zarr"), (png, "c.zarr")):
        assert main(["estimate", str(source), str(tmp_path / name)]) == 0
    _, ms, levels = _ome_levels(tmp_path / "b.zarr")
    assert ms["axes"][0]["unit"] == "nanometer" and ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [2.5, 2.5]
    np.testing.assert_allclose(_ome_levels(tmp_path / "a.zarr")[2][0], levels[0], atol=1e-6, equal_nan=True)


def test_blocks_reading_their_own_windows_equal_the_overlap_engine(tmp_path, tiled_tiff, micrograph):
    rgb = tmp_path / "rgb.zarr"  # RGB under a leading axis, uint8: the window path converts as the engine does
    pixels = (np.clip(micrograph, 0, 1)[None, ..., None] * [[[[200, 255, 90]]]]).astype(np.uint8)
    zarr.open_array(str(rgb), mode="w", shape=pixels.shape, chunks=(1, 100, 100, 3), dtype="u1")[:] = pixels
    for path in (tiled_tiff, rgb):
        src = open_image(path)
        with pytest.warns(UserWarning, match="luminance") if path == rgb else contextlib.nullcontext():
            windowed, _ = lazy_maps(src.levels[0], GR, (256, 256), reader=src.planes[0])
            overlapped, _ = lazy_maps(src.levels[0], GR, (256, 256))
        (optimized,) = dask.optimize(windowed)
        assert len(optimized.__dask_graph__()) == windowed.npartitions == 6  # one task per block, nothing shared
        assert len(dask.optimize(overlapped)[0].__dask_graph__()) > 2 * overlapped.npartitions
        np.testing.assert_array_equal(windowed.compute(), overlapped.compute())


def test_blocks_reading_their_own_windows_read_the_noise_samples_through_the_reader_too(tiled_tiff):
    # the samples went through dask's graph of the file (twice the time of reading them straight)
    import dask.array as da

    class Unread:
        def __init__(self, shape, dtype):
            self.shape, self.dtype, self.ndim = shape, dtype, len(shape)

        def __getitem__(self, key):
            raise AssertionError("read through dask")

    src = open_image(tiled_tiff)
    level = src.levels[0]
    lazy = da.from_array(Unread(level.shape, level.dtype), chunks=level.chunks, asarray=False, meta=np.empty((0, 0),
                         level.dtype))
    windowed, used = lazy_maps(lazy, GR, (256, 256), reader=src.planes[0])
    expected, expected_used = lazy_maps(level, GR, (256, 256))
    assert used == expected_used
    np.testing.assert_array_equal(windowed.compute(), expected.compute())


def test_refusals_leave_everything_as_it_was(tmp_path, tiled_tiff, capsys):
    out = tmp_path / "map.zarr"
    assert main(["estimate", str(tiled_tiff), str(out)]) == 0  # an earlier result (only those are replaced)
    (out / "keep").write_text("old")
    before = tiled_tiff.read_bytes()
    cases = [
        ([str(tiled_tiff), str(out)], "exists"),
        ([str(tiled_tiff), str(tiled_tiff), "--overwrite"], "overwrite or sit inside the input"),
        ([str(tiled_tiff), str(tmp_path / "map.png")], "must end in .zarr"),
        ([str(tiled_tiff), str(tmp_path / "new.zarr"), "--param", "pooling_width=1"], "pooling_width"),
        ([str(tmp_path / "missing.tif"), str(tmp_path / "new.zarr")], "no such image"),
    ]
    for args, message in cases:
        assert main(["estimate", *args]) == 2
        assert message in capsys.readouterr().err
    assert (out / "keep").read_text() == "old" and tiled_tiff.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "map.zarr"]
    assert main(["estimate", str(tiled_tiff), str(out), "--overwrite"]) == 0
    assert not (out / "keep").exists() and "multiscales" in zarr.open_group(str(out), mode="r").attrs


def test_a_method_that_needs_a_second_image_is_refused_before_anything_is_written(tmp_path, tiled_tiff):
    from blurmap.cli import profile_image

    with pytest.raises(ValueError, match="needs reference as well"):
        estimate_file(tiled_tiff, tmp_path / "map.zarr", "reference")
    with pytest.raises(ValueError, match="needs reference as well"):
        profile_image(tiled_tiff, tmp_path / "out", "reference", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def _stack(shape=(3, 200, 240)):
    return np.stack([synthetic.sem_sample(shape[1:], seed=s)[0] * (1 + s) for s in range(shape[0])])


def test_a_multipage_tiff_stack_gives_an_ome_zarr_with_its_axes_each_plane_the_2d_map(tmp_path):
    stack = _stack((3, 600, 520))
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack", metadata={"axes": "ZYX"})
    assert main(["estimate", str(tmp_path / "stack.tif"), str(tmp_path / "s.zarr"), "--chunk", "256",
                 "--method", GR]) == 0
    root, ms, levels = _ome_levels(tmp_path / "s.zarr")
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"] and ms["axes"][0]["type"] == "space"
    assert levels[0].shape == stack.shape and levels[1].shape == (3, 300, 260)
    assert ms["datasets"][1]["coordinateTransformations"][0]["scale"] == [1.0, 2.0, 2.0]
    conf = np.asarray(root["confidence"]["0"])
    for k in range(3):
        sigma, confidence = estimate(stack[k], GR, return_confidence=True)
        np.testing.assert_allclose(levels[0][k], sigma, atol=1e-4, equal_nan=True)
        np.testing.assert_allclose(conf[k], confidence, atol=1e-4, equal_nan=True)
    assert len(root.attrs["blurmap"]["plane_params"]) == 3


def test_an_ome_zarr_time_series_keeps_its_axes_and_pixel_size(tmp_path):
    stack = _stack((2, 160, 200))
    ome = tmp_path / "tz.zarr"
    group = zarr.open_group(str(ome), mode="w", zarr_format=2)
    group.create_array("0", shape=(2, 1) + stack.shape[1:], chunks=(1, 1, 80, 80), dtype="f4")[:] = stack[:, None]
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [
        {"name": "t", "type": "time"}, {"name": "z", "type": "space"},
        {"name": "y", "type": "space", "unit": "nanometer"}, {"name": "x", "type": "space", "unit": "nanometer"}],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0, 4.0, 4.0]}]}]}]
    assert main(["estimate", str(ome), str(tmp_path / "o.zarr")]) == 0
    _, ms, levels = _ome_levels(tmp_path / "o.zarr")
    assert [a["name"] for a in ms["axes"]] == ["t", "z", "y", "x"] and ms["axes"][-1]["unit"] == "nanometer"
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 1.0, 4.0, 4.0]
    assert levels[0].shape == (2, 1) + stack.shape[1:]
    np.testing.assert_allclose(levels[0][1, 0], estimate(stack[1]), atol=1e-4, equal_nan=True)


def test_a_stack_asked_for_as_tiff_or_with_channels_before_y_x_is_refused_by_name(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "stack.tif", _stack((2, 128, 128)), photometric="minisblack")
    assert main(["estimate", str(tmp_path / "stack.tif"), str(tmp_path / "o.tif")]) == 2
    assert "name the output o.zarr" in capsys.readouterr().err and not (tmp_path / "o.tif").exists()
    ome = tmp_path / "c.zarr"
    group = zarr.open_group(str(ome), mode="w", zarr_format=2)
    group.create_array("0", shape=(2, 128, 128), dtype="f4")[:] = 1.0
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "c", "type": "channel"}, "y", "x"],
                                   "datasets": [{"path": "0"}]}]
    assert main(["estimate", str(ome), str(tmp_path / "o.zarr")]) == 2
    assert "2 channels before y, x" in capsys.readouterr().err and not (tmp_path / "o.zarr").exists()


def test_a_tiff_read_again_after_it_changed_gives_the_new_pixels(tmp_path):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint16), tile=(32, 32))
    image = open_image(path).levels[0]
    assert int(image[:32, :32].sum().compute(scheduler="sync")) == 0  # this thread keeps the file open now
    tifffile.imwrite(path, np.full((64, 64), 7, np.uint16), tile=(32, 32), description="rewritten")
    assert int(image[:32, :32].max().compute(scheduler="sync")) == 7


def test_chunk_files_written_directly_read_back_through_zarr(tmp_path):
    root = zarr.open_group(str(tmp_path / "a.zarr"), mode="w", zarr_format=2)
    array = root.create_array("0", shape=(5, 7), chunks=(2, 4), dtype="float32", fill_value=np.nan,
                              compressors=stream._COMPRESSOR)
    values = np.arange(35, dtype=np.float32).reshape(5, 7)
    for y in range(0, 5, 2):  # whole chunks, edge chunks (padded on disk) included
        for x in range(0, 7, 4):
            stream._put(array, (y, x), values[y:y + 2, x:x + 4])
    assert sorted(p.name for p in (tmp_path / "a.zarr" / "0").iterdir() if not p.name.startswith(".")) == \
        ["0.0", "0.1", "1.0", "1.1", "2.0", "2.1"]
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a.zarr" / "0"), mode="r")[:], values)
    stream._put(array, (1, 1), np.full((2, 2), -1, np.float32))  # not a chunk: through zarr
    values[1:3, 1:3] = -1
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a.zarr" / "0"), mode="r")[:], values)


def _failing_writer(original, fail_at: int):
    """Return a block writer that fails on block `fail_at` and writes every other block slowly."""
    calls = []

    def failing(block, targets, notify=None, picks=(), block_info=None):
        calls.append(block_info)
        if len(calls) == fail_at:
            raise RuntimeError("disk full")
        time.sleep(0.3)  # still writing when the failure reaches the caller
        return original(block, targets, notify, picks, block_info=block_info)

    return failing, calls


def test_a_failure_midway_leaves_no_output(tmp_path, tiled_tiff, monkeypatch):
    failing, calls = _failing_writer(stream._write_block, fail_at=3)
    monkeypatch.setattr(stream, "_write_block", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        estimate_file(tiled_tiff, tmp_path / "map.zarr", GR, chunk=256)
    assert len(calls) >= 3
    time.sleep(0.5)  # a block left running would write after this
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_the_threads_are_as_many_as_the_cores_the_process_may_use(tmp_path, tiled_tiff, monkeypatch):
    import os

    sizes = []

    class Pool(stream.ThreadPoolExecutor):
        def __init__(self, max_workers=None, *args, **kwargs):
            sizes.append(max_workers)
            super().__init__(max_workers, *args, **kwargs)

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)  # one core of the machine's
    monkeypatch.setattr(stream, "ThreadPoolExecutor", Pool)
    estimate_file(tiled_tiff, tmp_path / "map.zarr", GR, chunk=136, progress=False)
    assert sizes and set(sizes) == {1}


def test_a_failure_in_the_coarse_levels_leaves_no_output(tmp_path, tiled_tiff, monkeypatch):
    put = stream._put_coarser
    monkeypatch.setattr(stream, "BLOCK_LEVELS", 0)  # the blocks write level 0 only: the rest read it back

    def failing(plane, level, origin, pick):
        if origin != (0, 0):
            raise OSError("disk full")
        return put(plane, level, origin, pick)

    monkeypatch.setattr(stream, "_put_coarser", failing)
    with pytest.raises(OSError, match="disk full"):
        estimate_file(tiled_tiff, tmp_path / "map.zarr", GR, chunk=136, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_a_failure_on_a_cluster_leaves_no_output(tmp_path, tiled_tiff, monkeypatch):
    distributed = pytest.importorskip("distributed")
    failing, _ = _failing_writer(stream._write_block, fail_at=2)  # each task gets a copy: every block fails
    monkeypatch.setattr(stream, "_write_block", failing)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        with pytest.raises(RuntimeError, match="disk full"):
            estimate_file(tiled_tiff, tmp_path / "map.zarr", GR, chunk=256, client=client, progress=False)
        time.sleep(0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_a_dask_images_maps_compute_on_a_clusters_worker_processes(micrograph):
    # each block's task is written out by hand (engine._graph._neighbourhood_maps): it must travel to another process
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    whole = estimate(micrograph, GR)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        lazy = estimate(da.from_array(micrograph, chunks=(152, 140)), GR)
        np.testing.assert_allclose(lazy.compute(), whole, rtol=0, atol=1e-5, equal_nan=True)


def test_progress_bar_shows_rate_and_eta_only_where_asked():
    out = _io.StringIO()
    bar = Progress(4, 4_000_000, "blurmap x", stream=out)
    bar.advance()
    assert out.getvalue() == ""  # not a terminal: quiet
    bar = Progress(4, 4_000_000, "blurmap x", stream=out, enabled=True)
    for _ in range(4):
        bar.advance()
    text = out.getvalue()
    assert "ETA" in text and "4/4 chunks" in text and "100.0%" in text and text.endswith("\n")


def test_a_real_run_draws_one_step_per_chunk(tmp_path, tiled_tiff, monkeypatch):
    out = _io.StringIO()
    out.isatty = lambda: True  # as on a terminal
    monkeypatch.setattr(stream.sys, "stderr", out)
    done = estimate_file(tiled_tiff, tmp_path / "map.zarr", GR, chunk=256)
    last = out.getvalue().split("\r")[-1]
    assert f"{done['chunks']}/{done['chunks']} chunks" in last and "ETA" in last


def test_two_worker_local_cluster_equals_one_process(tmp_path, tiled_tiff):
    distributed = pytest.importorskip("distributed")
    single, clustered = tmp_path / "one.zarr", tmp_path / "two.zarr"
    estimate_file(tiled_tiff, single, GR, chunk=256, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        done = estimate_file(tiled_tiff, clustered, GR, chunk=256, client=client, progress=False)
    assert done["chunks"] == 6  # 3 x 2 chunks of 256 px and more
    a, b = zarr.open_group(str(single), mode="r"), zarr.open_group(str(clustered), mode="r")
    for key in ("0", "1", "2", "confidence/0"):
        np.testing.assert_array_equal(a[key][:], b[key][:])


def test_a_folder_or_a_glob_gives_one_map_each_a_summary_csv_and_a_rerun_skips_what_is_done(tmp_path, capsys,
                                                                                            monkeypatch):
    import csv

    from blurmap.io import batch

    folder = tmp_path / "run"
    folder.mkdir()
    for seed in (1, 2):
        tifffile.imwrite(folder / f"sem{seed}.tif", synthetic.sem_sample((300, 360), seed=seed)[0])
    (folder / "broken.tif").write_bytes(b"not a tiff")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "maps"
    assert main(["estimate", str(folder), str(out), "--method", GR, "--progress"]) == 1  # one image failed
    captured = capsys.readouterr()
    assert "broken.tif: cannot read" in captured.err and "3 images: 2 mapped, 0 done before (kept), 1 failed" in captured.out
    assert captured.err.count("\r") >= 3 and "MP" in captured.err  # one bar across the files
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [(r["input"].split("/")[-1], r["status"]) for r in rows] == [("broken.tif", "failed"), ("sem1.tif", "done"),
                                                                        ("sem2.tif", "done")]
    assert float(rows[1]["median_sigma"]) > 0 and rows[1]["focal_found"] == "True"
    assert 0.3 < float(rows[1]["focal_position"]) < 0.5  # the sample's band lies at 40% of the height
    np.testing.assert_allclose(zarr.open_group(str(out / "sem1.zarr"), mode="r")["0"][:],
                               estimate(tifffile.imread(folder / "sem1.tif"), GR), atol=1e-4, equal_nan=True)
    calls = []
    monkeypatch.setattr(batch, "estimate_file", lambda *a, **k: calls.append(a))
    assert main(["estimate", str(folder / "sem*.tif"), str(out), "--method", GR]) == 0  # a glob; both done before
    assert calls == [] and "2 mapped" not in capsys.readouterr().out
    assert [r["status"] for r in csv.DictReader(open(out / "summary.csv"))] == ["skipped", "skipped"]
    monkeypatch.undo()
    assert main(["estimate", str(folder / "sem*.tif"), str(out), "--method", "log"]) == 1  # another method: not done
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_a_batch_summary_gives_the_convergence_angle_from_the_vendor_tilt(tmp_path):
    from blurmap import blur
    from blurmap.io.batch import estimate_files

    alpha, tilt = 20e-3, 52.0
    truth = synthetic.tilted_focal_plane((384, 512), position=0.45, angle_deg=3.0, floor=0.5,
                                         gradient=alpha * np.tan(np.deg2rad(tilt)) / 2)
    image = blur(synthetic.dead_leaves((384, 512), seed=52), truth)
    fei = ("[Scan]\r\nPixelWidth=5e-009\r\n[Stage]\r\nStageT=0.907571\r\n")
    folder = tmp_path / "run"
    folder.mkdir()
    tifffile.imwrite(folder / "tilted.tif", image, extratags=[(34682, "s", 0, fei, True)])
    [row] = estimate_files(folder, tmp_path / "maps", progress=False)
    assert row["unit"] == "nm" and row["median_sigma_physical"] == pytest.approx(5 * row["median_sigma"])
    assert "FEI" in row["pixel_size_source"] and abs(row["convergence_mrad"] / 20.0 - 1) < 0.1


def test_write_map_keeps_a_stack_whole_or_writes_nothing(tmp_path, monkeypatch):
    from blurmap.io import maps

    sigma = np.random.default_rng(2).random((3, 300, 260)).astype(np.float32)
    path = maps.write_map(tmp_path / "s.zarr", sigma, sigma / 2, {"method": "learned"}, axes=("t", "y", "x"))
    root = zarr.open_group(str(path), mode="r")
    assert root["1"].shape == (3, 150, 130) and [a["name"] for a in root.attrs["multiscales"][0]["axes"]] == ["t", "y", "x"]
    np.testing.assert_allclose(root["1"][2], sigma[2].reshape(150, 2, 130, 2).mean(axis=(1, 3)), rtol=1e-5)
    with pytest.raises(FileExistsError, match="exists"):
        maps.write_map(path, sigma)

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(maps, "_write_tiff", fail)
    with pytest.raises(OSError, match="disk full"):
        maps.write_map(tmp_path / "s.tif", sigma)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]  # nothing half written, no temporary left
    with pytest.raises(ValueError, match="confidence is"):
        maps.write_map(tmp_path / "t.zarr", sigma, sigma[0])



def test_a_method_with_more_outputs_writes_one_ome_zarr_image_per_output_angles_subsampled(tmp_path):
    from blurmap import blur_elliptical

    image = blur_elliptical(synthetic.dead_leaves((520, 600), seed=7), 3.0, 1.2, 40.0)
    tifffile.imwrite(tmp_path / "ell.tif", image)
    assert main(["estimate", str(tmp_path / "ell.tif"), str(tmp_path / "d.zarr"), "--method", "directional"]) == 0
    root = zarr.open_group(str(tmp_path / "d.zarr"), mode="r")
    assert sorted(root.group_keys()) == ["angle_deg", "confidence", "sigma_major", "sigma_minor"]
    want = estimate(image, "directional", return_outputs=True)
    for name in ("sigma_major", "sigma_minor", "angle_deg", "confidence"):
        np.testing.assert_allclose(root[name]["0"][:], want[name], atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(root["0"][:], want["sigma"], atol=1e-4, equal_nan=True)
    angle = root["angle_deg"]
    assert angle.attrs["blurmap"]["value_unit"] == "deg" and angle.attrs["blurmap"]["label"] == "angle (deg)"
    assert len(root.attrs["multiscales"][0]["datasets"]) == 3  # 600, 300 and 150 px
    np.testing.assert_array_equal(angle["1"][:], angle["0"][:][::2, ::2][:260, :300])  # picked, not averaged
    np.testing.assert_array_equal(angle["2"][:], angle["1"][:][::2, ::2][:130, :150])
