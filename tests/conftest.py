import os
import sys

import numpy as np
import pytest

from blurmap import synthetic


@pytest.fixture(scope="session")
def leaves():
    """A sharp 256 x 256 dead-leaves texture in [0, 1]."""
    return synthetic.dead_leaves((256, 256), seed=3)


@pytest.fixture(scope="session")
def ramp_pair(leaves):
    """(blurred image, true sigma map): dead leaves under a 0.5 .. 3 px horizontal ramp."""
    from blurmap import blur
    truth = synthetic.ramp(leaves.shape, 0.5, 3.0)
    return blur(leaves, truth), truth


@pytest.fixture(scope="session")
def sem():
    """A small synthetic SEM micrograph of a tilted specimen and its true sigma map."""
    return synthetic.sem_sample((320, 384), seed=4)


def thirds_error(sigma, truth):
    """Relative error of the median sigma in the left, middle and right thirds."""
    w = truth.shape[1]
    out = []
    for a, b in ((0, w // 3), (w // 3, 2 * w // 3), (2 * w // 3, w)):
        out.append(abs(np.nanmedian(sigma[:, a:b]) / np.median(truth[:, a:b]) - 1))
    return np.array(out)


NO_DISPLAY = ("no display: the napari tests need one (pytest-xvfb starts Xvfb when it is installed: "
              "apt-get install xvfb, or run under xvfb-run); skipped")


def has_display() -> bool:
    """Return whether Qt can open windows here (pytest-xvfb has set DISPLAY by the time tests are collected)."""
    return sys.platform != "linux" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pytest_collection_modifyitems(config, items):
    """Skip the napari tests, with a message saying how to run them, where there is no display.

    Qt aborts the whole process when it cannot open its window (a fatal error, not an exception).
    """
    if has_display():
        return
    skip = pytest.mark.skip(reason=NO_DISPLAY)
    for item in items:
        if "gui" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    return None if has_display() else NO_DISPLAY
