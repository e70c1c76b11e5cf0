"""napari tests: they need a display (Xvfb through pytest-xvfb) and a Qt binding."""

from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("qtpy")

from blurmap import synthetic  # noqa: E402

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "napari-blurmap"


@pytest.fixture
def plugin(npe2pm):
    with npe2pm.tmp_plugin(manifest=str(ROOT / "napari.yaml")) as p:
        yield p


@pytest.fixture
def micrograph():
    image, _ = synthetic.sem_sample((256, 320), seed=5)
    return image


def _wait_done(qtbot, widget):
    # the widget re-enables Run from its own finished slot, connected before the worker started;
    # waiting for a signal here could miss a worker that finished first
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=60_000)


def _run_and_wait(qtbot, widget):
    widget.run()
    assert widget.worker is not None and not widget.run_button.enabled
    _wait_done(qtbot, widget)


def test_dock_widget_lays_a_calibrated_sigma_map_over_the_source(make_napari_viewer, qtbot, plugin,
                                                                  micrograph):
    viewer = make_napari_viewer()
    source = viewer.add_image(micrograph, name="SEM", scale=(2.0, 0.5), translate=(10.0, -5.0))
    before = source.data.copy()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    widget.image.value = source
    _run_and_wait(qtbot, widget)
    layer = viewer.layers["SEM sigma (learned)"]  # the default estimator
    np.testing.assert_array_equal(layer.scale, (2.0, 0.5))
    np.testing.assert_array_equal(layer.translate, (10.0, -5.0))
    assert layer.colorbar.visible
    assert layer.colormap.name == "magma"
    meta = layer.metadata["blurmap"]
    assert meta["unit"] == "px" and meta["method"] == "learned" and meta["params"]["noise"] > 0
    assert layer.contrast_limits[0] == 0 and 1 < layer.contrast_limits[1] < 10
    assert layer.data.shape == micrograph.shape and np.nanmedian(layer.data) > 0.3
    np.testing.assert_array_equal(source.data, before)  # the source is never modified

    widget.params["noise_auto"].value = False  # running again updates, does not pile up
    widget.params["noise"].value = 0.02
    _run_and_wait(qtbot, widget)
    assert [lay.name for lay in viewer.layers].count("SEM sigma (learned)") == 1
    assert viewer.layers["SEM sigma (learned)"].metadata["blurmap"]["params"]["noise"] == pytest.approx(0.02)


def test_per_estimator_widget_and_bad_layers(make_napari_viewer, qtbot, plugin):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Re-blur gradient ratio")
    assert widget.method.value == "gradient_ratio" and widget.method.native.isHidden()
    stack = viewer.add_image(np.random.default_rng(0).random((3, 6, 6)), name="stack")
    widget.image.value = stack
    widget.run()
    assert widget.worker is None and "at least 8 x 8 px" in widget.status.value
    flat = viewer.add_image(np.zeros((64, 64)), name="flat")
    widget.image.value = flat
    _run_and_wait(qtbot, widget)
    assert "constant" in widget.status.value
    holed = np.random.default_rng(1).random((64, 64))
    holed[10, 10] = np.nan
    widget.image.value = viewer.add_image(holed, name="holed")
    _run_and_wait(qtbot, widget)
    assert "NaN" in widget.status.value
    assert [lay.name for lay in viewer.layers] == ["stack", "flat", "holed"]


@pytest.mark.parametrize("display, method, name, unit", [
    ("LoG scale selection", "log", "SEM sigma (log)", "px"),
    ("Re-blur error curve knee", "reblur_curve", "SEM reblur_curve (relative)", "relative"),
    ("Block acutance", "acutance", "SEM acutance (relative)", "relative"),
])
def test_seed_000_widgets_name_their_layer_by_what_it_holds(make_napari_viewer, qtbot, plugin, micrograph,
                                                            display, method, name, unit):
    viewer = make_napari_viewer()
    viewer.add_image(micrograph, name="SEM")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, display)
    assert widget.method.value == method
    _run_and_wait(qtbot, widget)
    meta = viewer.layers[name].metadata["blurmap"]
    assert meta["unit"] == unit and meta["method"] == method
    assert ("relative" in meta["label"]) == (unit == "relative")
    assert viewer.layers[name].data.shape == micrograph.shape


def test_cancel_stops_before_a_layer_is_added(make_napari_viewer, qtbot, plugin):
    viewer = make_napari_viewer()
    big = synthetic.dead_leaves((512, 512), seed=1)
    source = viewer.add_image(np.tile(big, (4, 4)), name="big")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    widget.image.value = source
    widget.run()
    running = widget.worker
    widget.cancel()
    assert widget.run_button.enabled and not widget.cancel_button.enabled  # at once, not when the tile ends
    qtbot.waitUntil(lambda: not running.is_running, timeout=60_000)
    assert "big sigma (gradient_ratio)" not in viewer.layers
    assert widget.status.value == "cancelled"


def test_sample_data_gives_micrograph_and_truth(make_napari_viewer, plugin):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "tilted_specimen")
    names = [lay.name for lay in viewer.layers]
    assert names == ["SEM tilted specimen", "SEM tilted specimen true sigma"]
    truth = viewer.layers["SEM tilted specimen true sigma"]
    assert truth.metadata["blurmap"]["unit"] == "px" and truth.data.min() >= 0.5 - 1e-6


def test_reference_widget_offers_a_second_layer_picker(make_napari_viewer, qtbot, plugin):
    from blurmap import blur
    viewer = make_napari_viewer()
    sharp = synthetic.dead_leaves((192, 192), seed=6)
    truth = synthetic.ramp(sharp.shape, 0.5, 3.0)
    blurred = viewer.add_image(blur(sharp, truth), name="blurred", scale=(0.5, 0.5))
    reference = viewer.add_image(sharp, name="focused")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Fit against a sharp reference")
    assert widget.method.value == "reference" and not widget.inputs.native.isHidden()
    widget.image.value = blurred
    widget.inputs["reference"].value = blurred
    widget.run()
    assert widget.worker is None and "must differ" in widget.status.value
    widget.inputs["reference"].value = reference
    _run_and_wait(qtbot, widget)
    layer = viewer.layers["blurred sigma (reference)"]
    np.testing.assert_array_equal(layer.scale, (0.5, 0.5))
    params = layer.metadata["blurmap"]["params"]
    assert "reference" not in params and abs(params["shift_y"]) < 0.05 and abs(params["gain"] - 1) < 0.02
    assert np.sqrt(np.nanmean((layer.data - truth) ** 2)) < 0.1


def test_combined_widget_shows_the_reference_picker_only_when_needed(make_napari_viewer, plugin):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    # isHidden: hidden on purpose (.visible also needs the window on screen)
    assert widget.inputs.native.isHidden()
    widget.method.value = "reference"
    assert not widget.inputs.native.isHidden() and "reference" in [w.name for w in widget.inputs]
    assert "smoothness" in [w.name for w in widget.params]
    widget.method.value = "gradient_ratio"
    assert widget.inputs.native.isHidden()


def _fitted(qtbot, dock, name):
    # the fit runs in a worker: wait until the dock shows the one for `name`
    qtbot.waitUntil(lambda: dock.layer_name == name and "fitting" not in dock.status.text(), timeout=30_000)


def test_focal_profile_dock_follows_the_selected_sigma_layer(make_napari_viewer, qtbot, plugin):
    from blurmap import estimate
    from blurmap.plugin._layers import show_sigma
    viewer = make_napari_viewer()
    image, _ = synthetic.sem_sample((256, 320), seed=7)
    source = viewer.add_image(image, name="SEM", scale=(2.0, 2.0))
    sigma, conf = estimate(image, return_confidence=True)
    layer = show_sigma(viewer, source, sigma, conf, "gradient_ratio", "px", {})
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Focal profile")
    viewer.layers.selection.active = layer
    _fitted(qtbot, dock, layer.name)
    assert dock.layer_name == layer.name and abs(dock.fit.position - 0.4) < 0.03
    line = viewer.layers["SEM sigma (gradient_ratio) focal line"]
    np.testing.assert_array_equal(line.scale, (2.0, 2.0))
    assert viewer.layers.selection.active is layer  # drawing the line did not steal the selection
    assert len(dock.figure.axes) == 1 and dock.figure.axes[0].lines
    first_angle = dock.fit.angle_deg
    assert abs(first_angle - 4.0) < 2.0
    # a second sigma layer, mirrored left to right, so tilted the other way: the dock follows it
    flipped = viewer.add_image(sigma[:, ::-1], name="flipped", metadata={"blurmap": {"unit": "px"}})
    viewer.layers.selection.active = flipped
    _fitted(qtbot, dock, "flipped")
    assert dock.layer_name == "flipped" and abs(dock.fit.angle_deg + first_angle) < 1.0
    assert "flipped focal line" in viewer.layers


def test_focal_profile_dock_says_no_band_and_draws_no_line_for_a_map_without_one(make_napari_viewer, qtbot,
                                                                                   plugin):
    viewer = make_napari_viewer()
    sides = synthetic.step((200, 260), 0.6, 2.6, axis=1)
    layer = viewer.add_image(sides, name="sides", metadata={"blurmap": {"unit": "px"}})
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Focal profile")
    viewer.layers.selection.active = layer
    _fitted(qtbot, dock, "sides")
    assert dock.fit is None and "no focal band found" in dock.status.text()
    assert "sides focal line" not in viewer.layers


def test_an_all_unknown_map_adds_no_layer_and_says_why(make_napari_viewer, qtbot, plugin):
    # a 16 x 16 image used to add an all-NaN layer (the default method finds no texture within reach)
    viewer = make_napari_viewer()
    tiny = viewer.add_image(synthetic.dead_leaves((16, 16), seed=2), name="tiny")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    widget.method.value = "gradient_ratio"  # its 64 px of reach find nothing to pool in 16 px
    widget.image.value = tiny
    _run_and_wait(qtbot, widget)
    assert [lay.name for lay in viewer.layers] == ["tiny"]
    assert "nothing added" in widget.status.value and "no texture" in widget.status.value


def test_the_dock_speaks_in_words_wraps_its_status_and_explains_itself(make_napari_viewer, qtbot, plugin,
                                                                       micrograph):
    viewer = make_napari_viewer()
    source = viewer.add_image(micrograph, name="SEM")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    widget.method.value = "gradient_ratio"
    assert widget.params["pooling_width"].label == "pooling width (px)"  # not the raw name
    assert widget.status.native.wordWrap()
    assert widget.run_button.tooltip and "gradient" in widget.method.tooltip.lower()
    widget.method.value = "acutance"
    assert "acutance" in widget.method.tooltip.lower()
    widget.image.value = source
    _run_and_wait(qtbot, widget)
    # a relative score is no sigma: the status says what it is
    assert widget.status.value.startswith("median score") and "higher is sharper" in widget.status.value


def test_an_rgb_layer_is_said_to_be_read_as_luminance(make_napari_viewer, qtbot, plugin, micrograph):
    viewer = make_napari_viewer()
    rgb = viewer.add_image(np.stack([micrograph] * 3, axis=-1), name="colour", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    widget.image.value = rgb
    _run_and_wait(qtbot, widget)
    assert "luminance" in widget.status.value and "colour sigma (learned)" in viewer.layers


def test_selecting_a_sigma_layer_never_waits_for_the_fit_and_its_line_follows_its_visibility(
        make_napari_viewer, qtbot, plugin):
    import time

    viewer = make_napari_viewer()
    truth = synthetic.tilted_focal_plane((1536, 2048))  # a fit of a second or more
    layer = viewer.add_image(truth, name="big", metadata={"blurmap": {"unit": "px"}})
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Focal profile")
    viewer.layers.selection.active = viewer.layers[0] if len(viewer.layers) > 1 else layer
    start = time.perf_counter()
    viewer.layers.selection.active = None
    viewer.layers.selection.active = layer
    assert time.perf_counter() - start < 0.2  # the GUI thread only starts the worker
    _fitted(qtbot, dock, "big")
    line = viewer.layers["big focal line"]
    assert line.visible
    layer.visible = False
    assert not line.visible
    layer.visible = True
    assert line.visible


def test_one_colour_bar_at_a_time_the_latest_maps(make_napari_viewer, plugin, micrograph):
    from blurmap import estimate
    from blurmap.plugin._layers import show_sigma

    viewer = make_napari_viewer()
    source = viewer.add_image(micrograph, name="SEM")
    sigma, conf = estimate(micrograph, return_confidence=True)
    first = show_sigma(viewer, source, sigma, conf, "gradient_ratio", "px", {})
    score, conf2 = estimate(micrograph, "acutance", return_confidence=True)
    second = show_sigma(viewer, source, score, conf2, "acutance", "relative", {})
    assert second.colorbar.visible and not first.colorbar.visible


def test_a_relative_score_says_where_it_stops_meaning_anything(make_napari_viewer, plugin):
    # stress benchmark: under shot noise and brightness ramps the relative scores lose their ranking;
    # the dock says so beside the estimator, wrapped, and says nothing for an estimator without limits
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    for method in ("acutance", "difference", "reblur_curve"):
        widget.method.value = method
        assert not widget.limits.native.isHidden() and widget.limits.native.wordWrap()
        assert "shot noise" in widget.limits.value and "Spearman" in widget.limits.value
    widget.method.value = "reference"
    assert widget.limits.native.isHidden()


def test_the_profile_dock_gives_the_optics_in_the_layers_units_once_the_tilt_is_set(make_napari_viewer, qtbot,
                                                                                  plugin):
    alpha, tilt = 20e-3, 52.0
    truth = synthetic.tilted_focal_plane((384, 512), position=0.45, angle_deg=3.0, floor=0.5,
                                         gradient=alpha * np.tan(np.deg2rad(tilt)) / 2)
    image = synthetic.dead_leaves((384, 512), seed=52)
    from blurmap import blur

    viewer = make_napari_viewer()
    source = viewer.add_image(blur(image, truth), name="tilted", scale=(5.0, 5.0), units=("nm", "nm"))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    widget.image.value = source
    _run_and_wait(qtbot, widget)
    layer = viewer.layers["tilted sigma (learned)"]
    assert str(layer.units[-1]) == "nanometer"  # the map keeps the source's units, as its scale
    median = float(np.nanmedian(layer.data))
    assert f"median sigma {median:.2f} px = {5 * median:.3g} nm (pixel size 5 nm, from the layer's scale" \
        in widget.status.value
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Focal profile")
    viewer.layers.selection.active = layer
    qtbot.waitUntil(lambda: dock.fit is not None, timeout=30_000)
    assert dock.optics is None and "convergence" not in dock.status.text()
    assert str(viewer.layers["tilted sigma (learned) focal line"].units[-1]) == "nanometer"  # one unit across layers
    dock.tilt.setValue(tilt)
    assert abs(dock.optics.convergence_mrad / 20.0 - 1) < 0.1 and dock.optics.unit == "nm"
    assert "mrad" in dock.status.text() and " nm" in dock.status.text()


def test_the_focus_series_dock_lays_a_height_map_in_the_steps_unit_and_an_all_in_focus_image(
        make_napari_viewer, qtbot, plugin):
    from blurmap import blur

    yy, xx = np.mgrid[0:160, 0:160] / 159
    h = 1.5 + 4.0 * xx  # steps
    sharp = synthetic.dead_leaves((160, 160), seed=406)
    stack = np.stack([blur(sharp, np.hypot(0.6, 0.8 * (i - h)).astype(np.float32)) for i in range(8)])
    viewer = make_napari_viewer()
    source = viewer.add_image(stack, name="series", scale=(1.0, 0.05, 0.05), units=("um", "um", "um"))
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Focus series")
    dock.image.value = source
    dock.z_step.value = 0.5
    dock.unit.value = "um"
    dock.run()  # returns at once: the maps and the fit run in a worker
    qtbot.waitUntil(lambda: "series height (um)" in viewer.layers, timeout=60_000)
    height = viewer.layers["series height (um)"]
    assert height.data.shape == (160, 160) and abs(np.nanmedian(height.data) - 0.5 * np.median(h)) < 0.1
    np.testing.assert_array_equal(height.scale, (0.05, 0.05))
    assert str(height.units[-1]) == "micrometer" and height.colorbar.visible
    assert viewer.layers["series all in focus"].data.shape == (160, 160)
    assert "height of best focus" in dock.status.value
    dock.image.value = viewer.layers["series all in focus"]  # 2-D: refused with a message, nothing added
    dock.run()
    assert dock.status.value.startswith("error: choose a 3-D image layer")


def test_the_focus_series_dock_reads_a_dask_stack_in_its_worker_not_on_the_gui_thread(make_napari_viewer, qtbot,
                                                                                       plugin):
    # np.asarray(layer.data) in run() computed the whole stack before the worker started
    import dask.array as da

    from blurmap import blur

    sharp = synthetic.dead_leaves((96, 96), seed=407)
    planes = np.stack([blur(sharp, np.full((96, 96), np.hypot(0.6, 0.8 * (i - 2.5)), np.float32)) for i in range(6)])
    reads = []

    def read(block):
        reads.append(block.shape)
        return block

    viewer = make_napari_viewer()
    source = viewer.add_image(da.from_array(planes, chunks=(1, 96, 96)).map_blocks(read, dtype=planes.dtype),
                              name="lazy", contrast_limits=(0, 1))
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Focus series")
    dock.image.value = source
    before = len(reads)  # what napari itself read to show the plane on screen
    dock.run()  # returns before any plane is read
    assert len(reads) == before
    qtbot.waitUntil(lambda: "lazy height (um)" in viewer.layers, timeout=60_000)
    assert len(reads) >= before + 6


def test_a_stack_layer_gives_a_sigma_stack_the_plane_on_screen_first_then_the_one_moved_to(make_napari_viewer,
                                                                                          qtbot, plugin):
    from blurmap import blur, estimate

    sharp = synthetic.dead_leaves((512, 512), seed=61)
    stack = np.stack([blur(sharp, np.full((512, 512), s, np.float32)) for s in (0.8, 1.4, 2.0, 2.6, 3.2)])
    viewer = make_napari_viewer()
    source = viewer.add_image(stack, name="z")
    viewer.dims.set_current_step(0, 3)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    widget.image.value = source
    order = []
    widget.run()  # lays the (NaN) stack layer at once; the planes come from the worker
    layer = viewer.layers["z sigma (learned)"]
    assert layer.data.shape == stack.shape and np.isnan(layer.data).all()
    widget.worker.yielded.connect(lambda value: order.append(value[0]))
    qtbot.waitUntil(lambda: len(order) >= 1, timeout=60_000)
    assert order[0] == (3,)
    on_screen_first = np.isfinite(layer.data).reshape(5, -1).any(axis=1).tolist()
    viewer.dims.set_current_step(0, 4)  # the user moves the slider: that plane is the next one started
    _wait_done(qtbot, widget)
    assert on_screen_first == [False, False, False, True, False]  # the others still to come
    assert order[:3] in ([(3,), (4,), (0,)], [(3,), (0,), (4,)])  # a plane already started finishes first
    np.testing.assert_array_equal(layer.data[1], estimate(stack[1]))
    medians = np.nanmedian(layer.data.reshape(5, -1), axis=1)
    assert np.all(np.diff(medians) > 0)  # blur grows along the stack, and so do the maps
    assert layer.metadata["blurmap"]["confidence"].shape == stack.shape
    assert "over 5 planes" in widget.status.value
    assert layer.contrast_limits[1] >= np.nanpercentile(layer.data[4], 99)  # the display takes in the blurriest plane


def test_the_profile_dock_plots_a_sigma_stacks_focus_quality_curve_in_a_worker(make_napari_viewer, qtbot, plugin):
    from blurmap import blur

    sharp = synthetic.dead_leaves((192, 192), seed=62)
    stack = np.stack([blur(sharp, np.full((192, 192), s, np.float32)) for s in (2.4, 1.2, 0.6, 1.2, 2.4)])
    viewer = make_napari_viewer()
    source = viewer.add_image(stack, name="focus", scale=(1.0, 4.0, 4.0), units=("pixel", "nm", "nm"))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    widget.image.value = source
    _run_and_wait(qtbot, widget)
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Focal profile")
    viewer.layers.selection.active = viewer.layers["focus sigma (learned)"]
    qtbot.waitUntil(lambda: "sharpest plane" in dock.status.text(), timeout=30_000)
    assert "5 of 5 planes mapped; sharpest plane 2" in dock.status.text() and " nm" in dock.status.text()
    assert dock.figure.axes and dock.figure.axes[0].get_xlabel() == "plane"


def test_a_sigma_layer_saves_through_the_writer_with_its_confidence_units_and_metadata(make_napari_viewer, qtbot,
                                                                                      plugin, micrograph, tmp_path):
    import tifffile
    import zarr

    viewer = make_napari_viewer()
    source = viewer.add_image(micrograph, name="SEM", scale=(5.0, 5.0), units=("nm", "nm"))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    widget.image.value = source
    _run_and_wait(qtbot, widget)
    layer = viewer.layers["SEM sigma (learned)"]
    [written] = layer.save(str(tmp_path / "map.zarr"), plugin=PLUGIN) or [str(tmp_path / "map.zarr")]
    root = zarr.open_group(written, mode="r")
    np.testing.assert_array_equal(root["0"][:], layer.data)
    np.testing.assert_array_equal(root["confidence"]["0"][:], layer.metadata["blurmap"]["confidence"])
    ms = root.attrs["multiscales"][0]
    assert ms["axes"][-1]["unit"] == "nanometer" and ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [5, 5]
    assert root.attrs["blurmap"]["method"] == "learned" and root.attrs["blurmap"]["unit"] == "px"
    layer.save(str(tmp_path / "map.tif"), plugin=PLUGIN)
    with tifffile.TiffFile(tmp_path / "map.tif") as tif:
        np.testing.assert_array_equal(tif.series[0].asarray(), layer.data)
        assert len(tif.series) == 2 and '"method": "learned"' in tif.pages[0].description
    foreign = tmp_path / "mine.tif"
    tifffile.imwrite(foreign, np.zeros((8, 8), np.uint8))
    with pytest.raises(Exception, match="not a map blurmap wrote"):
        layer.save(str(foreign), plugin=PLUGIN)
    assert tifffile.imread(foreign).shape == (8, 8)  # the user's file is never replaced
    assert source.save(str(tmp_path / "source.zarr"), plugin=PLUGIN) in ([], None)  # not a sigma map: not ours


def test_the_profile_dock_adds_a_tile_table_as_a_points_layers_features(make_napari_viewer, qtbot, plugin,
                                                                       micrograph):
    from blurmap.analysis.summary import tile_table

    viewer = make_napari_viewer()
    source = viewer.add_image(micrograph, name="SEM", scale=(5.0, 5.0), units=("nm", "nm"))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Sigma map")
    widget.image.value = source
    _run_and_wait(qtbot, widget)
    layer = viewer.layers["SEM sigma (learned)"]
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Focal profile")
    viewer.layers.selection.active = layer
    dock.tile.setValue(128)
    dock.add_tiles()  # returns at once: the table is made in a worker
    qtbot.waitUntil(lambda: "SEM sigma (learned) tiles" in viewer.layers, timeout=30_000)
    points = viewer.layers["SEM sigma (learned) tiles"]
    want = tile_table(layer.data, layer.metadata["blurmap"]["confidence"], 128, 5.0, "nm")
    assert len(points.data) == len(want) == 6  # 256 x 320 px in tiles of 128
    np.testing.assert_allclose(points.features["median_px"], [r["median_px"] for r in want])
    np.testing.assert_allclose(points.features["median_nm"], [5 * r["median_px"] for r in want])
    np.testing.assert_array_equal(points.scale, layer.scale)
    assert viewer.layers.selection.active is layer and "6 tiles of 128 px" in dock.tiles_status.text()


def test_the_directional_dock_lays_major_and_minor_layers_and_the_axes_and_the_profile_shows_both(
        make_napari_viewer, qtbot, plugin):
    from blurmap import blur_elliptical

    yy, xx = np.mgrid[0:320, 0:384]
    d = yy - 160.0
    along, across = np.hypot(0.8, 0.03 * (d + 30)), np.hypot(0.8, 0.03 * (d - 30))
    image = blur_elliptical(synthetic.dead_leaves((320, 384), seed=64), np.maximum(along, across),
                            np.minimum(along, across), np.where(along >= across, 20.0, 110.0))
    viewer = make_napari_viewer()
    source = viewer.add_image(image, name="astig")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Directional re-blur ratio (astigmatism)")
    widget.image.value = source
    _run_and_wait(qtbot, widget)
    names = [layer.name for layer in viewer.layers]
    assert {"astig sigma (directional)", "astig sigma_major (directional)", "astig sigma_minor (directional)",
            "astig angle_deg (directional)", "astig astigmatism axes (directional)"} <= set(names)
    assert viewer.layers["astig angle_deg (directional)"].metadata["blurmap"]["unit"] == "deg"
    major = viewer.layers["astig sigma_major (directional)"].data
    minor = viewer.layers["astig sigma_minor (directional)"].data
    assert major.shape == image.shape and np.nanmedian(major) > np.nanmedian(minor)
    axes = viewer.layers["astig astigmatism axes (directional)"]
    assert len(axes.data) > 20 and axes.data.shape[1:] == (2, 2)
    top, bottom = axes.data[axes.data[:, 0, 0] < 100], axes.data[axes.data[:, 0, 0] > 220]
    # above the band the axis lies near 110 degrees (steep), below it near 20 degrees (flat)
    assert np.median(np.abs(top[:, 1, 0])) > np.median(np.abs(top[:, 1, 1]))
    assert np.median(np.abs(bottom[:, 1, 1])) > np.median(np.abs(bottom[:, 1, 0]))
    assert "major / minor" in widget.status.value and "4 more layers" in widget.status.value
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Focal profile")
    viewer.layers.selection.active = viewer.layers["astig sigma (directional)"]
    qtbot.waitUntil(lambda: dock.fit is not None, timeout=30_000)
    labels = [line.get_label() for line in dock.figure.axes[0].get_lines()]
    assert "major sigma, median" in labels and "minor sigma, median" in labels


def test_a_4d_layer_gives_a_4d_sigma_layer_the_plane_on_screen_first(make_napari_viewer, qtbot, plugin):
    from blurmap import blur

    sharp = synthetic.dead_leaves((128, 128), seed=63)
    data = np.stack([np.stack([blur(sharp, np.full((128, 128), 0.8 + 0.6 * (2 * t + z), np.float32))
                               for z in range(3)]) for t in range(2)])  # (T, Z, Y, X)
    viewer = make_napari_viewer()
    source = viewer.add_image(data, name="tz")
    viewer.dims.set_current_step(0, 1)
    viewer.dims.set_current_step(1, 2)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Re-blur gradient ratio")
    widget.image.value = source
    order = []
    widget.run()
    widget.worker.yielded.connect(lambda value: order.append(value[0]))
    _wait_done(qtbot, widget)
    layer = viewer.layers["tz sigma (gradient_ratio)"]
    assert layer.data.shape == data.shape and order[0] == (1, 2) and len(order) == 6
    assert np.isfinite(layer.data).reshape(6, -1).all(axis=1).all()


def test_reading_a_finished_maps_pixels_for_its_display_happens_in_the_worker(make_napari_viewer, qtbot, plugin,
                                                                             micrograph, monkeypatch):
    # the median, the display range and the axes read every pixel: on a 4096 px map that is
    # seconds on the GUI thread
    import threading

    from blurmap.plugin import _layers

    calls = []
    for name in ("contrast_limits", "axis_vectors"):
        original = getattr(_layers, name)

        def recorded(*args, _original=original, _name=name, **kwargs):
            calls.append((_name, threading.current_thread() is threading.main_thread()))
            return _original(*args, **kwargs)

        monkeypatch.setattr(_layers, name, recorded)
    viewer = make_napari_viewer()
    source = viewer.add_image(micrograph, name="SEM")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Directional re-blur ratio (astigmatism)")
    widget.image.value = source
    _run_and_wait(qtbot, widget)
    assert "SEM astigmatism axes (directional)" in viewer.layers
    assert {name for name, _ in calls} == {"contrast_limits", "axis_vectors"}
    assert not any(on_gui for _, on_gui in calls), calls
