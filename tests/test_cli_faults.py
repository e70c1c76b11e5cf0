"""The command line under faults: never the input, never a result without --overwrite, a clear message and exit 2."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from blurmap import synthetic
from blurmap.cli import main


@pytest.fixture
def micrograph(tmp_path):
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, (synthetic.sem_sample((200, 240), seed=3)[0] * 4000).astype(np.uint16))
    return path


def _fails(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err


def test_profile_never_writes_over_its_input(tmp_path, micrograph, capsys):
    out = tmp_path / "out"
    assert main(["profile", str(micrograph), str(out)]) == 0
    mine = out / "sigma_learned.tif"  # a user profiling a map profile wrote, into the same folder
    before = mine.read_bytes()
    _fails(capsys, ["profile", str(mine), str(out), "--overwrite"], "is the input itself")
    assert mine.read_bytes() == before


def test_profile_and_demo_keep_earlier_results_unless_asked(tmp_path, micrograph, capsys):
    out = tmp_path / "out"
    assert main(["profile", str(micrograph), str(out)]) == 0
    stamp = (out / "summary_learned.json").stat().st_mtime_ns
    _fails(capsys, ["profile", str(micrograph), str(out)], "--overwrite")
    assert (out / "summary_learned.json").stat().st_mtime_ns == stamp
    assert main(["profile", str(micrograph), str(out), "--overwrite"]) == 0
    demo_out = tmp_path / "demo"
    assert main(["demo", str(demo_out), "--size", "96x128"]) == 0
    _fails(capsys, ["demo", str(demo_out), "--size", "96x128"], "--overwrite")


def test_profile_and_demo_answer_bad_places_and_inputs_with_a_message(tmp_path, micrograph, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    _fails(capsys, ["profile", str(micrograph), str(afile)], "is a file, not a folder")
    _fails(capsys, ["demo", str(afile), "--size", "96x128"], "is a file, not a folder")
    _fails(capsys, ["profile", str(tmp_path), str(tmp_path / "o")], "is a folder, not an image file")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(micrograph.read_bytes()[:2000])
    _fails(capsys, ["profile", str(cut), str(tmp_path / "o")], "cannot read")
    _fails(capsys, ["demo", str(tmp_path / "seeded"), "--seed", "-1"], "--seed")
    assert not (tmp_path / "seeded").exists()  # nothing made before the arguments were checked


def test_estimate_refuses_to_replace_a_folder_or_tiff_it_did_not_write(tmp_path, micrograph, capsys):
    theirs = tmp_path / "theirs.zarr"
    theirs.mkdir()
    (theirs / "precious.txt").write_text("a user's own data")
    _fails(capsys, ["estimate", str(micrograph), str(theirs), "--overwrite"], "not a map blurmap wrote")
    assert (theirs / "precious.txt").exists()
    their_tif = tmp_path / "their.tif"
    tifffile.imwrite(their_tif, np.zeros((8, 8), np.uint8))
    _fails(capsys, ["estimate", str(micrograph), str(their_tif), "--overwrite"], "not a map blurmap wrote")
    ours = tmp_path / "ours.zarr"
    assert main(["estimate", str(micrograph), str(ours)]) == 0
    assert main(["estimate", str(micrograph), str(ours), "--overwrite"]) == 0  # its own output: replaced
    link = tmp_path / "link.zarr"
    link.symlink_to(ours)
    _fails(capsys, ["estimate", str(micrograph), str(link), "--overwrite"], "symbolic link")
    assert not list(tmp_path.glob(".*old*"))


def test_a_second_run_on_the_same_output_refuses_while_the_first_holds_it(tmp_path, micrograph, capsys):
    out = tmp_path / "map.zarr"
    (tmp_path / ".map.zarr.lock").write_text(str(os.getpid()))  # a live run holds it
    _fails(capsys, ["estimate", str(micrograph), str(out)], "another blurmap run")
    assert not out.exists()


def test_what_a_killed_run_left_is_removed_and_said(tmp_path, micrograph, capsys):
    dead = 2**22 + 12345  # above the kernel's default pid_max: no such process
    leftover = tmp_path / f".map.tif.partial-{dead}.zarr"
    leftover.mkdir()
    (tmp_path / ".map.tif.lock").write_text(str(dead))
    out = tmp_path / "map.tif"
    assert main(["estimate", str(micrograph), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "removed" in printed and leftover.name in printed
    assert not leftover.exists() and out.exists()
    assert json.loads(tifffile.TiffFile(out).pages[0].description)["method"] == "learned"


@pytest.mark.parametrize("sig, status, word", [(signal.SIGTERM, 143, "terminated"),
                                               (signal.SIGINT, 130, "interrupted")])
def test_a_signal_mid_run_leaves_nothing_and_says_one_line(tmp_path, sig, status, word):
    big = tmp_path / "big.tif"
    tile = synthetic.dead_leaves((512, 512), seed=4)
    tifffile.imwrite(big, (np.tile(tile, (6, 6)) * 4000).astype(np.uint16), tile=(256, 256))
    out = tmp_path / "map.zarr"
    proc = subprocess.Popen([sys.executable, "-m", "blurmap.cli", "estimate", str(big), str(out), "--method",
                             "log"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".map.zarr.partial-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".map.zarr.partial-*")), "the run never started writing"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert word in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.glob(".map.zarr*"))


def test_a_constant_tiff_is_refused_not_mapped_as_nan(tmp_path, capsys):
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, np.full((600, 700), 1234, np.uint16), tile=(256, 256))
    _fails(capsys, ["estimate", str(flat), str(tmp_path / "map.zarr")], "constant")
    assert not (tmp_path / "map.zarr").exists()


def test_a_nan_pixel_in_a_tiff_stays_local_and_the_metadata_is_valid_json(tmp_path):
    import zarr

    image = synthetic.sem_sample((720, 720), seed=6)[0]  # the default's halo is 236 px
    image[360, 360] = np.nan
    path = tmp_path / "holed.tif"
    tifffile.imwrite(path, image, tile=(128, 128))
    out = tmp_path / "map.zarr"
    assert main(["estimate", str(path), str(out), "--chunk", "480"]) == 0
    root = zarr.open_group(str(out), mode="r")
    sigma = np.asarray(root["0"])
    assert np.isnan(sigma[360, 360]) and np.isfinite(sigma[:80, :80]).mean() > 0.9
    attrs = json.loads((out / ".zattrs").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert attrs["blurmap"]["params"]["noise"] > 0
