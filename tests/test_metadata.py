"""Pixel size and stage tilt from a TIFF's metadata: OME, Thermo Fisher / FEI, Zeiss SmartSEM, resolution tags."""

import json

import numpy as np
import pytest
import tifffile

from blurmap import blur, synthetic
from blurmap.cli import main
from blurmap.io.metadata import read_geometry

# as the microscopes write them: FEI xT an INI text (metres, radians), SmartSEM name lines in latin-1 (degrees)
FEI = ("[User]\r\nDate=12/01/2026\r\n[Beam]\r\nHV=5000\r\n[Scan]\r\nPixelWidth=2.5e-009\r\nPixelHeight=2.5e-009\r\n"
       "[Stage]\r\nStageX=0.001\r\nStageT=0.907571\r\n")
ZEISS = ("AP_PIXEL_SIZE\r\nPixel Size = 4.999 nm\r\nAP_IMAGE_PIXEL_SIZE\r\nImage Pixel Size = 5.000 nm\r\n"
         "AP_STAGE_AT_T\r\nStage at T = 52.0 \xb0\r\nAP_WD\r\nWD = 5.1 mm\r\n").encode("latin-1")


def _write(path, image, **kwargs):
    tifffile.imwrite(path, image, **kwargs)
    return path


@pytest.fixture
def image():
    return (np.random.default_rng(0).random((16, 16)) * 255).astype(np.uint8)


def test_thermo_fisher_fei_pixel_width_and_stage_tilt(tmp_path, image):
    path = _write(tmp_path / "fei.tif", image, extratags=[(34682, "s", 0, FEI, True)])
    got = read_geometry(path)
    assert got.pixel_size == pytest.approx(2.5) and got.unit == "nm"
    assert got.tilt_deg == pytest.approx(52.0, abs=0.01) and "FEI" in got.source


def test_zeiss_smartsem_image_pixel_size_and_stage_tilt(tmp_path, image):
    path = _write(tmp_path / "zeiss.tif", image, extratags=[(34118, "B", len(ZEISS), ZEISS, True)])
    got = read_geometry(path)
    assert (got.pixel_size, got.unit, got.tilt_deg) == (5.0, "nm", 52.0) and "Zeiss" in got.source


def test_ome_comes_first_and_resolution_tags_last(tmp_path, image):
    ome = _write(tmp_path / "ome.tif", image, ome=True, metadata={"PhysicalSizeX": 1.5, "PhysicalSizeXUnit": "µm"},
                 extratags=[(34118, "B", len(ZEISS), ZEISS, True)])
    assert read_geometry(ome)[:3] == (1.5, "um", 52.0)  # the size from OME, the tilt from the vendor's tag
    res = _write(tmp_path / "res.tif", image, resolution=(2e4, 2e4), resolutionunit="CENTIMETER")
    assert read_geometry(res)[:2] == (500.0, "nm") and "resolution" in read_geometry(res).source
    screen = _write(tmp_path / "screen.tif", image, resolution=(72, 72), resolutionunit="INCH")
    assert read_geometry(screen) is None  # 72 dpi says nothing of a specimen
    assert read_geometry(_write(tmp_path / "plain.tif", image)) is None
    (tmp_path / "notes.png").write_bytes(b"not a tiff")
    assert read_geometry(tmp_path / "notes.png") is None


def test_profile_reads_the_geometry_from_a_zeiss_tiff_and_reports_nm_and_the_optics(tmp_path, capsys):
    g = 20e-3 * np.tan(np.deg2rad(52.0)) / 2
    truth = synthetic.tilted_focal_plane((384, 512), position=0.45, angle_deg=3.0, floor=0.5, gradient=g)
    pixels = (np.clip(blur(synthetic.dead_leaves((384, 512), seed=52), truth), 0, 1) * 65535).astype(np.uint16)
    path = _write(tmp_path / "zeiss.tif", pixels, extratags=[(34118, "B", len(ZEISS), ZEISS, True)])
    assert main(["profile", str(path), str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "in nm:" in printed and "Zeiss SmartSEM tags" in printed and "convergence semi-angle" in printed
    summary = json.loads((tmp_path / "out" / "summary_learned.json").read_text())
    assert summary["pixel_size"] == {"value": 5.0, "unit": "nm"}
    assert abs(summary["focal_line"]["fit"]["optics"]["convergence_mrad"] / 20.0 - 1) < 0.1


def test_profile_writes_a_per_tile_table_in_px_and_in_the_pixel_size_unit(tmp_path):
    import csv

    sigma = np.where(np.arange(320)[None, :] < 160, 1.0, 3.0) * np.ones((192, 1))
    pixels = (np.clip(blur(synthetic.dead_leaves((192, 320), seed=8), sigma.astype(np.float32)), 0, 1)
              * 65535).astype(np.uint16)
    path = _write(tmp_path / "z.tif", pixels, extratags=[(34118, "B", len(ZEISS), ZEISS, True)])
    assert main(["profile", str(path), str(tmp_path / "out"), "--table", "160"]) == 0
    with open(tmp_path / "out" / "table_learned.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {"centre_x_px", "median_px", "q25_px", "q75_px", "confidence", "unknown",
                               "median_nm"} <= set(rows[0])
    left, right = float(rows[0]["median_px"]), float(rows[1]["median_px"])
    assert left < 1.5 < 2.4 < right and float(rows[1]["median_nm"]) == pytest.approx(5.0 * right)
    assert main(["profile", str(path), str(tmp_path / "bad"), "--table", "4"]) == 2
    assert not (tmp_path / "bad").exists()


def test_the_napari_reader_lays_an_fei_tiff_with_its_pixel_size_and_keeps_its_tilt(tmp_path, image):
    from blurmap.plugin import _reader

    path = _write(tmp_path / "fei.tif", image, extratags=[(34682, "s", 0, FEI, True)])
    reader = _reader.get_reader(str(path))
    assert reader is not None  # small, but napari's own reader would drop the pixel size
    [(data, meta, kind)] = reader(str(path))
    assert isinstance(data, np.ndarray) and data.shape == image.shape and kind == "image"
    assert meta["scale"] == (2.5, 2.5) and meta["units"] == ("nm", "nm")
    assert meta["metadata"]["blurmap_geometry"]["tilt_deg"] == pytest.approx(52.0, abs=0.01)
    plain = _write(tmp_path / "plain.tif", image)
    assert _reader.get_reader(str(plain)) is None  # nothing to add: napari's reader takes it


def test_the_napari_reader_strides_a_stack_along_y_and_x_only(tmp_path, monkeypatch):
    from blurmap.plugin import _reader

    stack = np.random.default_rng(1).random((3, 400, 300)).astype(np.float32)
    path = _write(tmp_path / "stack.tif", stack, photometric="minisblack", metadata={"axes": "ZYX"})
    monkeypatch.setattr(_reader, "LARGE_PIXELS", 100_000)
    monkeypatch.setattr(_reader, "DISPLAY_MIN", 200)
    [(data, meta, _)] = _reader.get_reader(str(path))(str(path))
    assert [d.shape for d in data] == [(3, 400, 300), (3, 200, 150)] and meta["axis_labels"] == ("z", "y", "x")
    np.testing.assert_array_equal(np.asarray(data[1]), stack[:, ::2, ::2])


def test_blurmap_estimate_keeps_an_fei_tiffs_pixel_size_in_the_ome_zarr_it_writes(tmp_path):
    import zarr

    image = synthetic.sem_sample((200, 240), seed=2)[0]
    path = _write(tmp_path / "fei.tif", image, extratags=[(34682, "s", 0, FEI, True)])
    assert main(["estimate", str(path), str(tmp_path / "map.zarr"), "--method", "gradient_ratio"]) == 0
    ms = zarr.open_group(str(tmp_path / "map.zarr"), mode="r").attrs["multiscales"][0]
    assert ms["axes"][-1]["unit"] == "nanometer"
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [2.5, 2.5]
