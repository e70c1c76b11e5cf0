"""Fit the gradient_ratio estimator's constants on uniformly blurred dead leaves, for each evidence.

    python benchmarks/calibrate.py [gradient] [curvature] [base_curvature]

The calibration images are dead-leaves textures with seeds 100-103; the accuracy benchmark uses
other seeds and other textures, so nothing here is fitted to the figures it reports.
The whole estimator is calibrated, as it runs: for each uniform blur sigma, its evidence (the
discrete operators it actually uses) is computed once; then for each (t, gamma) on a grid, the
rest of the pipeline (pooling, inversion, fill) gives a sigma map from one kind of evidence,
whose median is compared with the truth. The pair with the smallest RMS relative error over
0.4 .. 4 px wins: (T_DERIV, GAMMA) for the gradient evidence, (CURV_T, CURV_GAMMA) for the
curvature evidence (1 in theory), (BASE_T, BASE_GAMMA) for the curvature evidence read from the
pre-blurred base.
"""

from __future__ import annotations

import sys

import numpy as np
from scipy import ndimage as ndi

from blurmap.estimators import gradient_ratio as gr
from blurmap.synthetic import dead_leaves

SIGMAS = np.array([0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0])
SEEDS = (100, 101, 102, 103)
T_DERIVS = np.arange(0.01, 0.41, 0.01)
GAMMAS = np.arange(0.80, 1.50, 0.01)


def evidence_set() -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Return the estimator's evidence for each seed (outer) and sigma in SIGMAS (inner), noise free."""
    out = []
    for seed in SEEDS:
        sharp = dead_leaves((512, 512), seed=seed)
        out.append([gr.evidence(ndi.gaussian_filter(sharp, sigma)) for sigma in SIGMAS])
    return out


DEFAULTS = {k: gr.ESTIMATOR.defaults()[k] for k in ("pooling_width", "fill_reach", "sigma_max")}
MODELS = {"gradient": {}, "curvature": {},
          "base_curvature": {"scales": gr.BASE_SCALES, "base": gr.BASE}}


def read(evidence, kind: str, gamma: float, t_deriv: float) -> np.ndarray:
    """Return the median over seeds of the median sigma (px) read from one kind of evidence."""
    per_seed = [[np.nanmedian(gr.component_sigma(getattr(ev, kind), getattr(ev, kind + "_conf"),
                                                 gamma=gamma, t_deriv=t_deriv, **DEFAULTS, **MODELS[kind])[0])
                 for ev in row] for row in evidence]
    return np.median(np.asarray(per_seed), axis=0)


def fit(evidence, kind: str) -> tuple[float, float, float, float]:
    """Return (t, gamma, RMS relative error, worst relative error) of the best pair on the grid."""
    best = None
    for t_deriv in T_DERIVS:
        for gamma in GAMMAS:
            rel = read(evidence, kind, gamma, t_deriv) / SIGMAS - 1
            rms = float(np.sqrt(np.mean(rel**2)))
            if best is None or rms < best[2]:
                best = (float(t_deriv), float(gamma), rms, float(np.max(np.abs(rel))))
    return best


def main() -> None:
    ev = evidence_set()
    kinds = [("gradient", ("T_DERIV", "GAMMA"), (gr.T_DERIV, gr.GAMMA)),
             ("curvature", ("CURV_T", "CURV_GAMMA"), (gr.CURV_T, gr.CURV_GAMMA)),
             ("base_curvature", ("BASE_T", "BASE_GAMMA"), (gr.BASE_T, gr.BASE_GAMMA))]
    only = sys.argv[1:]  # optionally name the kinds to fit
    for kind, names, in_use in (k for k in kinds if not only or k[0] in only):
        t, gamma, rms, worst = fit(ev, kind)
        print(f"{kind}: best {names[0]} = {t:.2f} px^2, {names[1]} = {gamma:.2f} "
              f"(RMS relative error {rms:.3f}, worst {worst:.3f}); in use {in_use[0]}, {in_use[1]}")
        print("  sigma true  " + " ".join(f"{s:5.2f}" for s in SIGMAS))
        print("  sigma read  " + " ".join(f"{s:5.2f}" for s in read(ev, kind, in_use[1], in_use[0])))


if __name__ == "__main__":
    main()
