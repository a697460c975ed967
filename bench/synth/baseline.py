"""A weak, fast reference recogniser for calibrating the synthetic set's difficulty.

HOG on grey levels plus a coarse colour thumbnail, PCA then LDA fitted on ``train/`` (all
yaws, frontal-heavy like the data), cosine scores. :func:`cfp_accuracy` reports CFP FF and
FP accuracy with the official 10 splits (threshold chosen on the other nine). It is a
yardstick for the generator's knobs, not a model to compare DREAM against.

``python -m bench.synth.baseline OUT`` prints the numbers for a generated dataset.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..errors import DataError
from ..metrics import fold_accuracy

_CELL, _BINS = 8, 9


def hog(grey: np.ndarray) -> np.ndarray:
    """Batch HOG: (N, H, W) grey images -> (N, D) float32 descriptors.

    8x8-pixel cells, 9 unsigned orientation bins (linear vote between the two nearest),
    2x2-cell blocks with L2-Hys normalisation, as in Dalal and Triggs.
    """
    g = grey.astype(np.float32)
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
    gy[:, 1:-1, :] = g[:, 2:, :] - g[:, :-2, :]
    mag = np.sqrt(gx ** 2 + gy ** 2)
    ang = np.mod(np.arctan2(gy, gx), np.pi) / np.pi * _BINS - 0.5
    lo = np.floor(ang).astype(np.int64)
    frac = ang - lo
    n, h, w = g.shape
    ch, cw = h // _CELL, w // _CELL
    rows = (np.arange(ch * _CELL) // _CELL)[:, None] * cw + (np.arange(cw * _CELL) // _CELL)
    cell = (np.arange(n)[:, None, None] * (ch * cw) + rows[None]) * _BINS
    hist = np.zeros(n * ch * cw * _BINS, dtype=np.float64)
    crop = (slice(None), slice(0, ch * _CELL), slice(0, cw * _CELL))
    for k, weight in ((lo % _BINS, 1 - frac), ((lo + 1) % _BINS, frac)):
        hist += np.bincount((cell + k[crop]).ravel(), (mag * weight)[crop].ravel(),
                            minlength=hist.size)
    hist = hist.reshape(n, ch, cw, _BINS)
    blocks = np.concatenate([hist[:, :-1, :-1], hist[:, 1:, :-1], hist[:, :-1, 1:],
                             hist[:, 1:, 1:]], axis=-1).reshape(n, -1, 4 * _BINS)
    blocks /= np.sqrt((blocks ** 2).sum(-1, keepdims=True)) + 1e-6
    blocks = np.minimum(blocks, 0.2)
    blocks /= np.sqrt((blocks ** 2).sum(-1, keepdims=True)) + 1e-6
    return blocks.reshape(n, -1).astype(np.float32)


def features(paths: list[str | Path], batch: int = 256) -> np.ndarray:
    """(N, D) float32: HOG of the grey image and an 8x8 Lab thumbnail of the centre."""
    out = []
    for start in range(0, len(paths), batch):
        greys, thumbs = [], []
        for path in paths[start:start + batch]:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise DataError("cannot read image", path)
            greys.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
            lab = cv2.cvtColor(bgr[16:96, 16:96], cv2.COLOR_BGR2LAB).astype(np.float32) / 255
            thumbs.append(cv2.resize(lab, (8, 8), interpolation=cv2.INTER_AREA).ravel())
        out.append(np.concatenate([hog(np.stack(greys)), 4 * np.stack(thumbs)], axis=1))
    return np.concatenate(out).astype(np.float32)


class Baseline:
    """Standardise -> PCA -> LDA; :meth:`embed` returns L2-normalised embeddings."""

    def __init__(self, pca_dim: int = 256):
        self.pca_dim = pca_dim

    def fit(self, x: np.ndarray, subjects: np.ndarray) -> Baseline:
        from sklearn.decomposition import PCA
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        self.mean_ = x.mean(0)
        self.scale_ = x.std(0) + 1e-6
        z = (x - self.mean_) / self.scale_
        dim = min(self.pca_dim, z.shape[0] - 1, z.shape[1])
        self.pca_ = PCA(dim, random_state=0).fit(z)
        self.lda_ = LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.2).fit(
            self.pca_.transform(z), subjects)
        return self

    def embed(self, x: np.ndarray) -> np.ndarray:
        e = self.lda_.transform(self.pca_.transform((x - self.mean_) / self.scale_))
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def train_baseline(root: str | Path) -> Baseline:
    manifest = Path(root) / "train" / "metadata.csv"
    if not manifest.is_file():
        raise DataError("no training manifest (generate the dataset first)", manifest)
    rows = pd.read_csv(manifest)
    x = features([manifest.parent / p for p in rows["path"]])
    return Baseline().fit(x, rows["subject"].to_numpy())


def _pair_list(path: Path) -> list[Path]:
    lines = path.read_text().split()
    return [(path.parent / rel).resolve() for rel in lines[1::2]]


def _split_pairs(folder: Path, splits: int) -> pd.DataFrame:
    frames = []
    for s in range(1, splits + 1):
        for name, label in (("same", 1), ("diff", 0)):
            pairs = np.loadtxt(folder / f"{s:02d}" / f"{name}.txt", delimiter=",", dtype=np.int64,
                               ndmin=2)
            frames.append(pd.DataFrame({"a": pairs[:, 0], "b": pairs[:, 1], "label": label,
                                        "fold": s}))
    return pd.concat(frames, ignore_index=True)


def cfp_accuracy(root: str | Path, model: Baseline | None = None, splits: int = 10) -> dict:
    """CFP FF and FP 10-fold accuracy (mean, std) of ``model`` (trained on ``train/`` if None)."""
    root = Path(root)
    model = model if model is not None else train_baseline(root)
    protocol = root / "cfp" / "Protocol"
    emb = {letter: model.embed(features(_pair_list(protocol / f"Pair_list_{letter}.txt")))
           for letter in ("F", "P")}
    out = {}
    for proto, (la, lb) in (("FF", ("F", "F")), ("FP", ("F", "P"))):
        pairs = _split_pairs(protocol / "Split" / proto, splits)
        a = emb[la][pairs["a"].to_numpy() - 1]
        b = emb[lb][pairs["b"].to_numpy() - 1]
        scores = (a * b).sum(1)
        acc = fold_accuracy(scores, pairs["label"].to_numpy(), pairs["fold"].to_numpy())
        out[proto] = {"accuracy": acc.mean, "std": acc.std, "pairs": len(pairs)}
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m bench.synth.baseline DATASET_ROOT")
    result = cfp_accuracy(argv[0])
    for proto, r in result.items():
        print(f"CFP-{proto}: accuracy {100 * r['accuracy']:.2f} +- {100 * r['std']:.2f} "
              f"({r['pairs']} pairs)")


if __name__ == "__main__":
    main()
