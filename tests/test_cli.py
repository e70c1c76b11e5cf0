import json

import numpy as np
import pytest
import tifffile

from blurmap.cli import main


def test_demo_writes_results_and_summarises(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(out), "--size", "256x320", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "sharpest band at" in printed and "RMSE" in printed and "focal line at" in printed
    assert "Hough check" in printed
    summary = json.loads((out / "summary.json").read_text())
    sigma = tifffile.imread(out / "sigma_gradient_ratio.tif")
    truth = tifffile.imread(out / "sigma_true.tif")
    assert sigma.shape == truth.shape == (256, 320) and sigma.dtype == np.float32
    assert summary["error"]["within_30pct"] > 0.8
    band = summary["sharpest_band_height_fraction"]
    assert abs(band["estimated"] - band["true"]) < 0.05
    for name in ("overlay_gradient_ratio.png", "profile_gradient_ratio.png"):
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
