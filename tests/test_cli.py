import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from blurmap import blur, synthetic
from blurmap.cli import main


def test_demo_writes_results_and_summarises(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(out), "--size", "256x320", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "sharpest band at" in printed and "RMSE" in printed and "focal line at" in printed
    assert "Hough check" in printed
    header, *rows = printed.splitlines()[1:4]  # the table of thirds: each value ends where its header does
    for column, word in enumerate(("upper", "middle", "lower")):
        end = header.index(word) + len(word)
        for row in rows:
            value = row.split()[column - 3]
            assert row.rfind(value, 0, end) + len(value) == end, (word, row)
    summary = json.loads((out / "summary.json").read_text())
    sigma = tifffile.imread(out / "sigma_learned.tif")
    truth = tifffile.imread(out / "sigma_true.tif")
    assert sigma.shape == truth.shape == (256, 320) and sigma.dtype == np.float32
    assert summary["error"]["within_30pct"] > 0.8
    band = summary["sharpest_band_height_fraction"]
    assert abs(band["estimated"] - band["true"]) < 0.05
    for name in ("overlay_learned.png", "profile_learned.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(summary["profile"]["median"]) > 10 and len(summary["profile"]["thirds"]) == 2
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_bad_arguments_exit_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", str(tmp_path), "--size", "ten"])
    assert exit_info.value.code == 2 and "768x1024" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", str(tmp_path), "--method", "nope"])


def test_methods_prints_the_registry(capsys):
    assert main(["methods"]) == 0
    assert "gradient_ratio" in capsys.readouterr().out


def test_profile_reads_a_users_tiff_and_finds_its_focal_line(tmp_path, capsys):
    from blurmap.synthetic import sem_sample

    image, _ = sem_sample((256, 320), seed=2)
    src = tmp_path / "mine.tif"
    tifffile.imwrite(src, (image * 40000).astype(np.uint16))
    out = tmp_path / "out"
    assert main(["profile", str(src), str(out), "--method", "log", "--param", "pooling_sigma=10"]) == 0
    assert "focal line at" in capsys.readouterr().out
    summary = json.loads((out / "summary_log.json").read_text())
    assert summary["params"] == {"pooling_sigma": 10.0} and summary["units"] == "px"
    assert abs(summary["focal_line"]["fit"]["position"] - 0.4) < 0.05  # sem_sample's band is at 40%
    assert tifffile.imread(out / "sigma_log.tif").shape == (256, 320)
    assert (out / "profile_log.png").read_bytes()[:4] == b"\x89PNG"
    assert tifffile.imread(src).dtype == np.uint16  # the input is untouched


def test_profile_says_no_focal_band_for_an_image_blurred_left_and_right(tmp_path, capsys):
    from blurmap import blur, synthetic

    sharp = synthetic.dead_leaves((256, 320), seed=12)
    src = tmp_path / "sides.tif"
    tifffile.imwrite(src, blur(sharp, synthetic.step(sharp.shape, 0.6, 2.6, axis=1)))
    out = tmp_path / "out"
    assert main(["profile", str(src), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "no focal band found" in printed and "focal line at" not in printed
    summary = json.loads((out / "summary_learned.json").read_text())
    assert summary["focal_line"]["fit"]["found"] is False and "profile" not in summary
    assert not (out / "profile_learned.png").exists()  # no line, so no profile against it
    assert (out / "overlay_learned.png").exists()


def test_profile_of_a_relative_method_says_it_has_no_focal_line(tmp_path, capsys):
    import skimage.io

    from blurmap.synthetic import sem_sample

    image, _ = sem_sample((192, 192), seed=3)
    src = tmp_path / "mine.png"
    skimage.io.imsave(src, (image / image.max() * 255).astype(np.uint8), check_contrast=False)
    assert main(["profile", str(src), str(tmp_path / "o"), "--method", "reblur_curve"]) == 0
    assert "no focal-plane model" in capsys.readouterr().out
    summary = json.loads((tmp_path / "o" / "summary_reblur_curve.json").read_text())
    assert summary["focal_line"] is None and "blurrier" in summary["label"]


@pytest.mark.parametrize("args, message", [
    (["--param", "pooling_width"], "name=value"),
    (["--param", "pooling_width=wide"], "number"),
    (["--param", "pooling_width=1"], "pooling_width"),
    (["--param", "colour=3"], "colour"),
])
def test_profile_refuses_bad_parameters_before_writing(tmp_path, capsys, args, message):
    src = tmp_path / "mine.tif"
    tifffile.imwrite(src, np.random.default_rng(0).random((64, 64)).astype(np.float32))
    assert main(["profile", str(src), str(tmp_path / "o"), "--method", "log", *args]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_profile_refuses_a_missing_or_unreadable_file(tmp_path, capsys):
    assert main(["profile", str(tmp_path / "nope.tif"), str(tmp_path / "o")]) == 2
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["profile", str(bad), str(tmp_path / "o")]) == 2
    assert "cannot read" in capsys.readouterr().err and not (tmp_path / "o").exists()


_FAULTS = """
import resource, sys
import numpy as np
from blurmap.cli import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def chunk():  # two 20 MB temporaries, as a tile of log or reblur_curve makes
    a = np.ones((1600, 1600))
    return float((a * 2.0)[0, 0])
chunk()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
chunk()  # the same sizes again: their memory was freed once
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_command_line_keeps_freed_memory_for_the_next_chunk():
    # in fresh processes, as `blurmap estimate` sets its own malloc at start-up
    faults = {how: int(subprocess.run([sys.executable, "-c", _FAULTS, how], capture_output=True, text=True,
                                      check=True).stdout) for how in ("keep", "default")}
    assert faults["keep"] < 2000 and 5 * faults["keep"] < faults["default"], faults


def test_every_argument_of_every_command_says_what_it_is(capsys):
    for command in ("demo", "profile", "estimate", "focus-series"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "default learned" in text, command
        positional = text.split("positional arguments:")[1].split("options:")[0]
        assert all(len(line.split()) > 1 for line in positional.strip().splitlines()
                   if line.startswith("  ") and not line.startswith("   ")), (command, positional)


def test_unknown_areas_of_an_overlay_are_marked_not_drawn_as_zero(tmp_path):
    # NaN used to be left transparent: over a dark image it looked like the colour bar's 0
    import skimage.io

    from blurmap.analysis.figures import overlay_png

    def blue_pixels(sigma) -> int:
        overlay_png(tmp_path / "o.png", np.zeros((200, 300)), sigma, "title", (0.0, 2.0))  # a dark image
        png = skimage.io.imread(tmp_path / "o.png")[..., :3].astype(int)
        return int(((png[..., 2] > png[..., 0] + 40) & (png[..., 2] > png[..., 1] + 20)).sum())

    sigma = np.zeros((200, 300))
    assert blue_pixels(sigma) < 50  # magma has no blue of its own
    sigma[50:150, 150:] = np.nan
    assert blue_pixels(sigma) > 5000


def test_profile_gives_the_optics_of_a_tilted_specimen(tmp_path, capsys):
    alpha, tilt = 20e-3, 52.0
    truth = synthetic.tilted_focal_plane((384, 512), position=0.45, angle_deg=3.0, floor=0.5,
                                         gradient=alpha * np.tan(np.deg2rad(tilt)) / 2)
    path = tmp_path / "tilted.tif"
    tifffile.imwrite(path, blur(synthetic.dead_leaves((384, 512), seed=52), truth))
    assert main(["profile", str(path), str(tmp_path / "out"), "--pixel-size", "5", "--unit", "nm",
                 "--tilt", "52"]) == 0
    printed = capsys.readouterr().out
    assert "convergence semi-angle" in printed and "depth of field" in printed and " nm" in printed
    optics = json.loads((tmp_path / "out" / "summary_learned.json").read_text())["focal_line"]["fit"]["optics"]
    assert abs(optics["convergence_mrad"] / 20.0 - 1) < 0.1 and optics["unit"] == "nm"
    assert main(["profile", str(path), str(tmp_path / "other"), "--tilt", "52"]) == 2
    assert "--tilt needs the pixel size" in capsys.readouterr().err
    assert main(["profile", str(path), str(tmp_path / "other"), "--pixel-size", "5", "--tilt", "95"]) == 2
    assert "tilt_deg must lie strictly between 0 and 90" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()  # refused before anything was written


def test_output_read_by_a_pipe_that_closes_early_ends_without_a_traceback():
    # `blurmap demo out | head -1` printed a BrokenPipeError traceback from deep in the summary
    proc = subprocess.Popen([sys.executable, "-c", "from blurmap.cli import main; raise SystemExit(main(['methods']))"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert proc.returncode == 1
