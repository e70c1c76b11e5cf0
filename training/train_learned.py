"""Train the `learned` estimator's network and write src/blurmap/estimators/learned.npz (PyTorch, CPU, about 20 min on 2 cores).

    pip install torch==2.13.0
    python training/train_learned.py [--seed 0] [--images 4000] [--epochs 40] [--mix 0.5] [--out ...]

Not imported at run time. Data are made here with the project's own forward model
(blurmap.blur), from sources kept apart from every benchmark: the accuracy suite's
(benchmarks/_suite.py: dead leaves seeds 2000-2001, scikit-image's brick, grass and gravel), the
stress benchmark's photographs (motorcycle_left, motorcycle_right, microaneurysms, page) and the
demo (sem_sample). Sharp sources:
- dead leaves (seeds from 10000, random smallest and largest disc radii; 25%), and the stress
  benchmark's generator's dead leaves of other radius laws (10%);
- procedural textures: power-law (1/f**beta) noise, thresholded or not (10%), random bands (5%),
  stones or tiles (Voronoi cells, each with its own grey, slope and grain, and dark or bright gaps
  from none to mortar lines; 15%), grass or fibres (thin strokes near one direction; 10%), and the
  stress generator's power-law noise, cells and fibres (10%);
- scikit-image's bundled photographs other than those above, averaged 2 x 2 as the suite's are
  (those under 512 px mirrored out to 256), random crops, flips and transposes (15%).
Each is blurred with a random sigma map between 0.2 and SIGMA_HIGH px (a ramp or sine at a random
angle, a smooth random field, a constant, or one of the stress generator's profiles: tilted
planes, steps, radial fields), then degraded one of three ways: a gain ramp (up to 10x) and an
offset with no, Gaussian (25-90 dB) or Poisson (100-10000 counts) noise (35%); the stress
generator's SEM chain (5-3000 counts at the brightest pixel, ramps up to 100x, detector offset
and read noise, scan lines, bright edges; 40%); or its photographic finishes (noise-free float,
8-bit, JPEG at quality 75; 25%). Every random draw comes from this script's own seeds
(seed * 10**6 + i), never the stress benchmark's DEV_SEEDS or EVAL_SEEDS streams. The image is then
normalised and its noise model estimated by the engine's own preparation, as at inference. Targets are log sigma at
each 4 x 4 block's centre, except where the unblurred source is itself blurred (see sharp_blocks);
the loss weighs half of it by sigma**2, so it follows px (see nll). Last, the map's refinement
(blurmap.estimators.learned.refine) is fitted by least squares in px on the held-out images' maps.
Everything follows from --seed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import skimage.data
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from blurmap import blur, estimate, synthetic
from blurmap.engine import prepare
from blurmap.estimators.learned import BLOCK, N_FEATURES, features, refine, refinement_terms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _scenes  # the stress benchmark's generator: its textures, profiles and degradations

sys.path.pop(0)

SIZE = 256  # px, training image side
# not brick, grass, gravel (the suite's); those under 512 px a side are mirrored out to 256 after averaging 2 x 2
PHOTOS = ("astronaut", "camera", "cell", "hubble_deep_field", "immunohistochemistry", "moon", "retina",
          "chelsea", "coffee", "rocket", "coins", "clock")
SIGMA_LOW, SIGMA_HIGH = 0.2, 10.0  # px; wider than the benchmarks' 0.3 .. 8 so their ends are not edges
STRESS_TEXTURES = ("dead_leaves", "power_law", "cells", "fibres")  # of _scenes.TEXTURES: never its photographs
OWN_BLUR_MAX = 1.0  # px; blocks whose sharp source reads blurrier than this carry no target (see sharp_blocks)
_PHOTOS: dict[str, np.ndarray] = {}  # loaded once per process


def _photo(name: str) -> np.ndarray:
    """Return a bundled scikit-image photograph as grey float32 in [0, 1], averaged 2 x 2."""
    a = getattr(skimage.data, name)()
    a = a[..., :3].mean(axis=-1) if a.ndim == 3 else a.astype(np.float64)
    a = a.astype(np.float32) / 255.0
    h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    a = a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    pad = [(0, max(0, SIZE - n)) for n in a.shape]
    return np.pad(a, pad, mode="symmetric") if any(p for _, p in pad) else a


def _power_law(rng: np.random.Generator, beta: float) -> np.ndarray:
    """Return a SIZE x SIZE texture with a 1/f**beta power spectrum, scaled to [0, 1]."""
    fy = np.fft.fftfreq(SIZE)[:, None]
    fx = np.fft.rfftfreq(SIZE)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) * f ** (-beta / 2)
    spec[0, 0] = 0
    a = np.fft.irfft2(spec, s=(SIZE, SIZE))
    return ((a - a.min()) / (a.max() - a.min())).astype(np.float32)


def _lines(rng: np.random.Generator) -> np.ndarray:
    """Return random straight bands of random grey levels (sharp edges at all angles) in [0, 1]."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    img = np.full((SIZE, SIZE), rng.random(), dtype=np.float32)
    for _ in range(rng.integers(10, 60)):
        a = rng.uniform(0, np.pi)
        d = (yy - rng.uniform(0, SIZE)) * np.cos(a) + (xx - rng.uniform(0, SIZE)) * np.sin(a)
        img[np.abs(d) < rng.uniform(0.5, 12)] = rng.random()
    return img


def _cells(rng: np.random.Generator) -> np.ndarray:
    """Return stones or tiles in [0, 1]: Voronoi cells of random grey, each lit by a random slope, grained, with dark or bright gaps."""
    n = int(rng.integers(8, 400))
    pts = rng.uniform(-8, SIZE + 8, (n, 2))
    stretch = np.exp(rng.uniform(-0.7, 0.7))  # elongated cells: bricks, flakes
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    grid = np.stack([yy.ravel() * stretch, xx.ravel() / stretch], axis=1)
    dist, idx = cKDTree(pts * [stretch, 1 / stretch]).query(grid, k=2)
    label = idx[:, 0].reshape(SIZE, SIZE)
    border = (0.5 * (dist[:, 1] - dist[:, 0])).reshape(SIZE, SIZE).astype(np.float32)  # px to the cell's edge, about
    slope = rng.normal(0, rng.uniform(0, 0.005), (n, 2)).astype(np.float32)  # grey per px across each cell
    img = (rng.random(n).astype(np.float32)[label] + (yy - pts[label, 0]) * slope[label, 0]
           + (xx - pts[label, 1]) * slope[label, 1])
    img += rng.uniform(0, 0.4) * (_power_law(rng, rng.uniform(1.0, 2.5)) - 0.5)  # grain within the cells
    gap = rng.uniform(0, 2)  # px: from none to lines of mortar
    img[border < gap] = rng.uniform(0, 0.3) if rng.random() < 0.5 else rng.uniform(0.7, 1.0)
    return ((img - img.min()) / max(float(img.max() - img.min()), 1e-6)).astype(np.float32)


def _blades(rng: np.random.Generator) -> np.ndarray:
    """Return grass or fibres in [0, 1]: many thin strokes of random grey, near one direction, each over the last."""
    img = 0.5 * _power_law(rng, rng.uniform(1.5, 3.0))
    angle, spread = rng.uniform(0, np.pi), rng.uniform(0.1, 1.5)
    for _ in range(int(rng.integers(200, 1500))):
        half, width = rng.uniform(3, 30), rng.uniform(0.6, 3.0)
        a = angle + spread * rng.normal()
        cy, cx = rng.uniform(0, SIZE, 2)
        dy, dx = np.cos(a), np.sin(a)
        y0, y1 = max(0, int(cy - half - width)), min(SIZE, int(cy + half + width) + 2)
        x0, x1 = max(0, int(cx - half - width)), min(SIZE, int(cx + half + width) + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        along = (yy - cy) * dy + (xx - cx) * dx
        across = np.abs((yy - cy) * dx - (xx - cx) * dy)
        img[y0:y1, x0:x1][(np.abs(along) <= half) & (across <= width / 2)] = rng.random()
    return img.astype(np.float32)


def source(rng: np.random.Generator, photos: dict[str, np.ndarray]) -> np.ndarray:
    """Return one sharp SIZE x SIZE training source in [0, 1] (float32)."""
    kind = rng.choice(["leaves", "power", "lines", "photo", "cells", "blades", "stress leaves", "stress"],
                      p=[0.25, 0.1, 0.05, 0.15, 0.15, 0.1, 0.1, 0.1])
    if kind == "stress leaves":
        return _scenes.TEXTURES["dead_leaves"](rng, (SIZE, SIZE))[0]
    if kind == "stress":
        return _scenes.TEXTURES[STRESS_TEXTURES[int(rng.integers(1, len(STRESS_TEXTURES)))]](rng, (SIZE, SIZE))[0]
    if kind == "leaves":
        return synthetic.dead_leaves((SIZE, SIZE), seed=int(rng.integers(10000, 10**9)),
                                     rmin=float(rng.choice([0.5, 1.0, 2.0])), rmax=float(rng.uniform(16, 128)))
    if kind == "power":
        img = _power_law(rng, rng.uniform(1.5, 3.0))
        return (img > np.median(img)).astype(np.float32) if rng.random() < 0.3 else img
    if kind == "lines":
        return _lines(rng)
    if kind == "cells":
        return _cells(rng)
    if kind == "blades":
        return _blades(rng)
    photo = photos[rng.choice(list(photos))]
    y = rng.integers(0, photo.shape[0] - SIZE + 1)
    x = rng.integers(0, photo.shape[1] - SIZE + 1)
    crop = photo[y:y + SIZE, x:x + SIZE]
    crop = crop[::-1] if rng.random() < 0.5 else crop
    return np.ascontiguousarray(crop.T if rng.random() < 0.5 else crop)


def sigma_map(rng: np.random.Generator) -> np.ndarray:
    """Return a random smooth sigma map (px) between SIGMA_LOW and SIGMA_HIGH."""
    low = rng.uniform(SIGMA_LOW, 1.5)
    high = rng.uniform(low, SIGMA_HIGH) if rng.random() < 0.5 else rng.uniform(low, 4.0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    a = rng.uniform(0, 2 * np.pi)
    u = yy * np.cos(a) + xx * np.sin(a)
    kind = rng.choice(["ramp", "sine", "field", "constant", "stress"], p=[0.2, 0.2, 0.25, 0.1, 0.25])
    if kind == "stress":
        profile = ("tilted_plane", "step", "radial")[int(rng.integers(3))]
        truth, _ = _scenes.PROFILES[profile](rng, (SIZE, SIZE), max(high, 2.0))
        return np.clip(truth, SIGMA_LOW, SIGMA_HIGH).astype(np.float32)
    if kind == "ramp":
        t = u
    elif kind == "sine":
        t = 0.5 - 0.5 * np.cos(2 * np.pi * rng.uniform(0.5, 2.5) * u + rng.uniform(0, 2 * np.pi))
    elif kind == "field":
        t = ndi.gaussian_filter(rng.normal(size=(SIZE, SIZE)), rng.uniform(16, 48), mode="wrap")
    else:
        return np.full((SIZE, SIZE), rng.uniform(SIGMA_LOW, SIGMA_HIGH), dtype=np.float32)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-12)
    return (low + (high - low) * t).astype(np.float32)


def degrade(rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
    """Return `clean` under a smooth gain field (up to 10x per image width), an offset, and none, Gaussian or Poisson noise."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    a = rng.uniform(0, 2 * np.pi)
    gain = np.exp(rng.uniform(0, np.log(10)) * (yy * np.cos(a) + xx * np.sin(a)))
    img = (0.05 + clean) * gain * rng.uniform(0.1, 10)
    kind = rng.choice(["none", "gauss", "poisson"], p=[0.25, 0.45, 0.3])
    if kind == "gauss":  # SNR 25 .. 90 dB against the image's std: from noisy to the residue of a clean image
        img = img + rng.normal(0, np.std(img) * 10 ** (-rng.uniform(25, 90) / 20), img.shape)
    elif kind == "poisson":  # 100 .. 10000 counts at the mean intensity
        dose = 10 ** rng.uniform(2, 4) / np.mean(img)  # counts per unit intensity
        img = rng.poisson(img * dose) / dose + rng.normal(0, 0.5 / dose, img.shape)
    return (img + rng.uniform(-1, 1) * np.mean(img)).astype(np.float32)


def example(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (features, target log sigma per block) of training image number `seed`."""
    rng = np.random.default_rng(seed)
    if not _PHOTOS:
        _PHOTOS.update({name: _photo(name) for name in PHOTOS})
    photos = _PHOTOS
    sharp, truth = source(rng, photos), sigma_map(rng)
    finish = rng.choice(["degrade", "sem", "photographic"], p=[0.35, 0.4, 0.25])
    if finish == "degrade":
        image = degrade(rng, blur(sharp, truth))
    elif finish == "sem":
        image, _, _ = _scenes._sem(rng, sharp, truth, counts=(5.0, 3000.0), ratio=(1.0, 100.0),
                                   extras=bool(rng.random() < 0.6))
    else:
        image, _ = _scenes._photographic(rng, sharp, truth, rng.choice(["float", "uint8", "jpeg"]))
    prepared = prepare(image, "learned")  # normalised and the noise model estimated, as at inference
    feats = features(prepared.image, **prepared.params)
    target = np.log(_at_block_centres(truth))
    target[~sharp_blocks(sharp)] = np.nan
    return feats, target.astype(np.float32)


def _at_block_centres(a: np.ndarray) -> np.ndarray:
    """Return a full-resolution map's value at each 4 x 4 block's centre (the mean of the two pixels astride it)."""
    c = BLOCK // 2
    return 0.5 * (a[c - 1::BLOCK, c - 1::BLOCK] + a[c::BLOCK, c::BLOCK])


def sharp_blocks(sharp: np.ndarray) -> np.ndarray:
    """Return per 4 x 4 block whether the unblurred source is sharp there: gradient_ratio reads it at most OWN_BLUR_MAX px.

    Photographs carry blur of their own (out-of-focus backgrounds; scikit-image's cell is a
    blurred micrograph throughout): there the truth is not the blur applied, and training on it
    would teach the network to read photographs sharper than they are. Blocks with no texture
    to read (NaN) keep their target.
    """
    own = _at_block_centres(estimate(sharp, "gradient_ratio"))
    return ~(own > OWN_BLUR_MAX)


def make_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (features (n, C, 64, 64), targets (n, 64, 64)) from seeds seed * 10**6 + i, two processes."""
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pairs = pool.map(example, [seed * 10**6 + i for i in range(n)], chunksize=8)
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def build_model(torch, n_in: int = N_FEATURES, width: int = 24):
    """Return the torch network: a 1 x 1 and three 3 x 3 conv + ReLU layers (dilated 1, 2, 4), then a 1 x 1 to 2 outputs."""
    nn = torch.nn

    class Net(nn.Module):
        dilations = (1, 1, 2, 4, 1)

        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList([nn.Conv2d(n_in, width, 1), nn.Conv2d(width, width, 3),
                                        nn.Conv2d(width, width, 3, dilation=2),
                                        nn.Conv2d(width, width, 3, dilation=4), nn.Conv2d(width, 2, 1)])

        def forward(self, x):
            for i, (conv, d) in enumerate(zip(self.convs, self.dilations)):
                pad = d * (conv.kernel_size[0] // 2)
                if pad:
                    x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
                x = torch.nn.functional.conv2d(x, conv.weight, conv.bias, dilation=d)
                if i < len(self.convs) - 1:
                    x = torch.relu(x)
            return x

    return Net()


def fit_refinement(maps: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Return the coefficients (px per term) of refinement_terms that best bring maps (px) to exp(targets), least squares in px."""
    rows, rhs = [], []
    for sigma, target in zip(maps, targets):
        valid = np.isfinite(target)
        rows.append(refinement_terms(sigma)[:, valid].T)
        rhs.append((np.exp(target) - sigma)[valid])
    coef, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)
    return coef.astype(np.float32)


def to_npz_dict(model, mean: np.ndarray, std: np.ndarray, refine_coef: np.ndarray, meta: dict) -> dict[str, np.ndarray]:
    """Return the arrays blurmap.learned reads: feature mean/std, each layer's weight, bias, dilation, the refinement."""
    out = {"mean": mean.astype(np.float32), "std": std.astype(np.float32), "n_layers": np.array(len(model.convs)),
           "refine": refine_coef.astype(np.float32), "meta": np.array(json.dumps(meta))}
    for i, (conv, d) in enumerate(zip(model.convs, model.dilations)):
        out[f"w{i}"] = conv.weight.detach().numpy().astype(np.float32)
        out[f"b{i}"] = conv.bias.detach().numpy().astype(np.float32)
        out[f"dilation{i}"] = np.array(d)
    return out


def nll(out, target, torch, mix: float = 0.5):
    """Return (loss, squared error, unweighted squared error) of log sigma, means weighted by (1 - mix) + mix * sigma**2 / mean.

    An error e in log sigma is about sigma * e px: the sigma**2-weighted share of the loss follows
    the squared error in px, which the benchmark scores; the unweighted share keeps small blur
    right relative to its size (within 30%). The loss is the Gaussian negative log likelihood, so
    the predicted variance stays an honest uncertainty (a weight does not move a pixel's optimum).
    """
    valid = torch.isfinite(target)  # blocks without a target (see sharp_blocks) weigh nothing
    n = valid.sum()
    target = torch.where(valid, target, torch.zeros_like(target))
    mu, logvar = out[:, 0], out[:, 1].clamp(-12, 6)
    err2 = (mu - target) ** 2
    weight = torch.exp(2 * target) * valid
    weight = (1 - mix) * valid + mix * weight / (weight.sum() / n)
    return ((weight * 0.5 * (logvar + err2 * torch.exp(-logvar))).sum() / n, (weight * err2).sum() / n,
            (err2 * valid).sum() / n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--mix", type=float, default=0.5, help="share of the loss weighted by sigma**2 (see nll)")
    parser.add_argument("--cache", type=Path, help="keep the generated data here and reuse them (same seed and size)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "src/blurmap/estimators/learned.npz"))
    args = parser.parse_args()
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    start = time.perf_counter()
    if args.cache and args.cache.exists():
        with np.load(args.cache) as d:
            x, y, xv, yv, seed = d["x"], d["y"], d["xv"], d["yv"], int(d["seed"])
        if len(x) != args.images or seed != args.seed:
            raise SystemExit(f"{args.cache} holds other data; delete it or pass another --cache")
    else:
        x, y = make_data(args.seed + 1, args.images)
        xv, yv = make_data(args.seed + 2, max(args.images // 8, 16))  # held-out images, same distribution
        if args.cache:
            np.savez(args.cache, x=x, y=y, xv=xv, yv=yv, seed=args.seed)
    print(f"data: {len(x)} training and {len(xv)} held-out images in {time.perf_counter() - start:.0f} s; "
          f"{np.isnan(y).mean():.1%} of training blocks without a target (source not sharp)", flush=True)
    mean = x.mean(axis=(0, 2, 3))
    std = x.std(axis=(0, 2, 3)) + 1e-6
    norm = lambda a: torch.from_numpy((a - mean[None, :, None, None]) / std[None, :, None, None]).float()
    xt, yt, xvt, yvt = norm(x), torch.from_numpy(y), norm(xv), torch.from_numpy(yv)
    model = build_model(torch)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * (len(xt) // 16))
    gen = torch.Generator().manual_seed(args.seed)
    history = []
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        for i in range(len(xt) // 16):
            idx = order[i * 16:(i + 1) * 16]
            # warm up on squared error so the variance head does not learn to give up early
            loss, mse, _ = nll(model(xt[idx]), yt[idx], torch, args.mix)
            opt.zero_grad()
            (mse if epoch < 3 else loss).backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            tr_loss, _, tr_mse = nll(model(xt[:128]), yt[:128], torch, args.mix)
            va_loss, _, va_mse = nll(model(xvt), yvt, torch, args.mix)
        history.append((epoch, float(tr_loss), float(tr_mse) ** 0.5, float(va_loss), float(va_mse) ** 0.5))
        print(f"epoch {epoch:3d}  train NLL {tr_loss:.4f} RMSE(log) {tr_mse ** 0.5:.4f}   held-out NLL {va_loss:.4f} "
              f"RMSE(log) {va_mse ** 0.5:.4f}   {time.perf_counter() - start:.0f} s", flush=True)
    with torch.no_grad():
        maps = torch.exp(model(xvt)[:, 0]).numpy()
    coef = fit_refinement(maps, yv)
    rms = lambda m: float(np.sqrt(np.nanmean((m - np.exp(yv)) ** 2)))
    refined = np.stack([refine(m, coef) for m in maps])
    print(f"refinement {np.round(coef, 3).tolist()}: held-out RMSE {rms(maps):.4f} -> {rms(refined):.4f} px "
          "(fitted on these images)", flush=True)
    meta = {"command": " ".join(["python", "training/train_learned.py"] + sys.argv[1:]), "seed": args.seed,
            "images": args.images, "epochs": args.epochs, "mix": args.mix, "seconds": round(time.perf_counter() - start),
            "final": dict(zip(("epoch", "train_nll", "train_rmse_log", "heldout_nll", "heldout_rmse_log"),
                              history[-1])), "refine": coef.tolist(),
            "heldout_rmse_px": [round(rms(maps), 4), round(rms(refined), 4)], "torch": torch.__version__}
    np.savez(args.out, **to_npz_dict(model, mean, std, coef, meta))
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
