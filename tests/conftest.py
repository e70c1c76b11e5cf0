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
