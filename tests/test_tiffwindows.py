"""blurmap.tiffwindows: windows read straight from a TIFF's tiles or strips equal tifffile's own reading."""

import gc
import os
import threading

import numpy as np
import pytest
import tifffile

from blurmap.io import open_image, tiffwindows

RNG = np.random.default_rng(3)
LAYOUTS = {
    "tiled uint16": (RNG.integers(0, 60000, (300, 257), dtype=np.uint16), dict(tile=(64, 32))),
    "strips float32, short last strip": (RNG.random((300, 257)).astype(np.float32), dict(rowsperstrip=7)),
    "RGB uint8 tiled": (RNG.integers(0, 255, (100, 90, 3), dtype=np.uint8), dict(tile=(32, 48), photometric="rgb")),
    "zlib with predictor": (RNG.integers(0, 60000, (300, 257), dtype=np.uint16),
                            dict(tile=(64, 64), compression="zlib", predictor=True)),
    "big-endian float32": (RNG.random((100, 70)).astype(">f4"), dict(tile=(16, 16), byteorder=">")),
    "singleton OME axes": (RNG.integers(0, 255, (1, 1, 90, 80), dtype=np.uint8),
                           dict(tile=(32, 32), metadata={"axes": "TCYX"})),
}
WINDOWS = [(slice(None), slice(None)), (slice(5, 77), slice(3, 200)), (slice(-40, None), slice(10, 11)),
           (7, slice(2, 9)), (slice(50, 10), slice(0, 5))]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_windows_equal_tifffiles_reading_bit_for_bit(tmp_path, layout):
    pixels, options = LAYOUTS[layout]
    path = tmp_path / "a.ome.tif"
    tifffile.imwrite(path, pixels, **options)
    pixels = tifffile.imread(path)  # as tifffile reads it: native byte order, singleton axes squeezed
    plane = open_image(path).planes[0]
    assert isinstance(tiffwindows.open_tiff(str(path)).reader(plane.array.key), tiffwindows.Segments)
    for window in WINDOWS:
        got = plane[window]
        assert got.dtype == pixels.dtype and got.shape == pixels[window].shape
        np.testing.assert_array_equal(got, pixels[window])
    # what a window cannot take is read through tifffile's store: a step, an array of rows
    np.testing.assert_array_equal(plane[::3, 1::2], pixels[::3, 1::2])
    rows = np.array([1, 5, 9])
    np.testing.assert_array_equal(plane[rows, 2:10], pixels[rows, 2:10])


def test_pyramid_levels_each_read_their_own_pages(tmp_path):
    pixels = RNG.integers(0, 60000, (512, 384), dtype=np.uint16)
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(pixels, subifds=2, tile=(64, 64), metadata={"axes": "YX"})
        for k in (1, 2):
            tif.write(pixels[::2**k, ::2**k], subfiletype=1, tile=(64, 64))
    planes = open_image(path).planes
    assert [p.shape for p in planes] == [(512, 384), (256, 192), (128, 96)]
    for k, plane in enumerate(planes):
        assert isinstance(tiffwindows.open_tiff(str(path)).reader(plane.array.key), tiffwindows.Segments)
        np.testing.assert_array_equal(plane[10:100, 3:50], pixels[::2**k, ::2**k][10:100, 3:50])


def test_a_tile_the_writer_left_out_reads_as_the_fill_value(tmp_path):
    pixels = RNG.integers(1, 255, (64, 96), dtype=np.uint8)
    path = tmp_path / "holes.tif"
    tifffile.imwrite(path, pixels, tile=(32, 32))
    with tifffile.TiffFile(path, mode="r+") as tif:
        tag = tif.pages[0].tags["TileByteCounts"]
        tag.overwrite([0 if i == 4 else n for i, n in enumerate(tag.value)])  # tile (1, 1) gone
    expected = pixels.copy()
    expected[32:, 32:64] = 0  # tifffile's fill (the page's nodata)
    np.testing.assert_array_equal(open_image(path).planes[0][20:50, 20:90], expected[20:50, 20:90])


def test_a_truncated_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, RNG.integers(0, 255, (128, 128), dtype=np.uint8), tile=(32, 32))
    plane = open_image(path).planes[0]
    path.write_bytes(path.read_bytes()[:-2000])  # the last tiles' bytes gone; the header intact
    with pytest.raises(ValueError, match="truncated"):
        plane[96:, 96:]


def test_threads_reading_at_once_each_get_their_own_windows(tmp_path):
    pixels = RNG.integers(0, 60000, (1024, 1024), dtype=np.uint16)
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, pixels, tile=(128, 128))
    plane = open_image(path).planes[0]
    wrong = []

    def read(k: int) -> None:
        for i in range(40):
            y, x = (97 * (k + i)) % 800, (53 * (3 * k + i)) % 800
            if not np.array_equal(plane[y:y + 200, x:x + 200], pixels[y:y + 200, x:x + 200]):
                wrong.append((k, i))

    threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_threads_that_end_leave_no_file_open(tmp_path):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, RNG.integers(0, 255, (256, 256), dtype=np.uint8), tile=(64, 64))
    plane = open_image(path).planes[0]

    def open_on_it() -> int:  # descriptors of this file only: other tests' threads may open and close others
        gc.collect()
        links = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:  # closed meanwhile
                pass
        return links.count(str(path.resolve()))

    before = open_on_it()  # this thread's, kept for its later reads
    for _ in range(20):  # each thread opens the file for itself, and ends
        thread = threading.Thread(target=lambda: plane[10:100, 20:200])
        thread.start()
        thread.join()
    assert open_on_it() == before


CONTIGUOUS = {
    "one strip float32": (RNG.random((300, 257)).astype(np.float32), {}),
    "one strip RGB uint8": (RNG.integers(0, 255, (120, 90, 3), dtype=np.uint8), dict(photometric="rgb")),
    "big-endian uint16 strips": (RNG.integers(0, 60000, (300, 257), dtype=np.uint16),
                                 dict(rowsperstrip=16, byteorder=">")),
    "rows wider than a read call": (RNG.random((60, 9000)), {}),  # a narrow window reads each row's own bytes
}


@pytest.mark.parametrize("layout", CONTIGUOUS)
def test_uncompressed_rows_are_read_in_chunks_of_any_shape_and_equal_tifffiles(tmp_path, layout):
    pixels, options = CONTIGUOUS[layout]
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, pixels, **options)
    source = open_image(path)
    plane = source.planes[0]
    assert tiffwindows.open_tiff(str(path)).reader(plane.array.key).contiguous
    for window in WINDOWS + [(slice(1, 299), slice(200, 257)), (slice(0, 3), slice(0, 256))]:
        np.testing.assert_array_equal(plane[window], pixels[window])
    np.testing.assert_array_equal(np.asarray(source.levels[0]), pixels)


def test_a_truncated_file_of_uncompressed_rows_gives_a_clear_error(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, RNG.integers(0, 255, (128, 128), dtype=np.uint8))
    plane = open_image(path).planes[0]
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(ValueError, match="truncated"):
        plane[100:, 100:]
    with pytest.raises(ValueError, match="truncated"):
        plane[100:, :5]


def test_an_image_in_one_strip_is_not_one_chunk(tmp_path):
    path = tmp_path / "one_strip.tif"
    pixels = RNG.integers(0, 255, (2100, 1030), dtype=np.uint8)
    tifffile.imwrite(path, pixels)  # as most microscopes write: uncompressed, one strip
    assert len(tifffile.TiffFile(path).pages[0].dataoffsets) == 1
    level = open_image(path).levels[0]
    assert level.chunks == ((1024, 1024, 52), (1024, 6))  # each chunk reads its own rows and columns
    np.testing.assert_array_equal(level.blocks[1, 1].compute(), pixels[1024:2048, 1024:])


def test_a_strip_the_writer_left_out_reads_as_the_fill_value_not_the_header(tmp_path):
    path = tmp_path / "no_strip.tif"
    tifffile.imwrite(path, RNG.integers(1, 255, (64, 64), dtype=np.uint8))
    with tifffile.TiffFile(path, mode="r+") as tif:
        tif.pages[0].tags["StripOffsets"].overwrite([0])  # offset 0: no data (tifffile reads the header there)
    np.testing.assert_array_equal(open_image(path).planes[0][:, :], np.zeros((64, 64), np.uint8))
