"""The directional estimator's calibration: the log ratio each direction reads at a known round blur.

    python benchmarks/calibrate_directional.py [--scenes 6]

Specimens of the stress benchmark's dead-leaves law, cells and photographs (development seeds
only), blurred by round Gaussians of known sigma, noise-free; per sigma, the median over the
specimens, the directions and the blocks 8 px from the border of the fall of each direction's
band curvature between the two re-blurs (``directional.direction_energies``). Prints the table
``CALIBRATION`` in ``blurmap/estimators/directional.py`` holds (sigma px, log ratio).
"""

from __future__ import annotations

import argparse

import numpy as np
from _scenes import DEV_SEEDS, cells, dead_leaves_law, photo_tile
from scipy import ndimage as ndi

from blurmap.engine import prepare
from blurmap.estimators import directional

SIGMAS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0, 1.2, 1.4, 1.7, 2.0, 2.4, 2.8, 3.4, 4.0, 4.8, 5.6, 6.8, 8.0, 10.0)
SIZE = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=4, help="specimens of each texture")
    args = parser.parse_args()
    seeds = DEV_SEEDS[1000:1000 + args.scenes]  # the directional benchmark's development scenes start at 0
    sharps = [texture(np.random.default_rng(seed), (SIZE, SIZE))[0] for seed in seeds
              for texture in (dead_leaves_law, cells, photo_tile)]
    rows = []
    for sigma in SIGMAS:
        values = []
        for sharp in sharps:
            prep = prepare(ndi.gaussian_filter(sharp, sigma), "directional", noise=0, shot_noise=0)
            fall, _ = directional.direction_energies(prep.image, 0.0, 0.0, 0.0, 32.0)
            values.append(np.median(fall[2:-2, 2:-2]))
        rows.append((sigma, float(np.median(values))))
    print(f"# dead leaves, cells, photographs, dev seeds {seeds.start}-{seeds.stop - 1}, {SIZE} px, noise-free")
    print("CALIBRATION = (" + ", ".join(f"({s:g}, {v:.4f})" for s, v in rows) + ")")


if __name__ == "__main__":
    main()
