"""Measure the log_scale estimator's calibration table on uniformly blurred dead leaves.

    python benchmarks/calibrate_log.py

The calibration images are dead-leaves textures with seeds 100-103 (384 px), noise free; the
accuracy benchmark uses other seeds and other textures. For each sigma in CAL_SIGMA the whole
pipeline gives a pooled mean-log-scale map; the median over the map's interior, then over the
seeds, is the table's entry (made non-decreasing). Paste the printed line into
src/blurmap/log_scale.py as CAL_LOG_SCALE.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from blurmap.estimators import log_scale as ls
from blurmap.synthetic import dead_leaves

SEEDS = (100, 101, 102, 103)
POOLING = ls.ESTIMATOR.defaults()["pooling_sigma"]  # px; the estimator's own default


def main() -> None:
    sharp = [dead_leaves((384, 384), seed=seed).astype(np.float64) for seed in SEEDS]
    table = []
    for sigma in ls.CAL_SIGMA:
        reads = [np.nanmedian(ls.pooled_log_scale(ndi.gaussian_filter(s, sigma) if sigma else s, POOLING)[0][32:-32, 32:-32])
                 for s in sharp]
        table.append(float(np.median(reads)))
        print(f"sigma {sigma:4.2f} px: mean log scale {table[-1]:+.3f}", flush=True)
    table = np.maximum.accumulate(table)
    print("CAL_LOG_SCALE = (" + ", ".join(f"{v:.3f}" for v in table) + ")")


if __name__ == "__main__":
    main()
