"""Template pooling: image features -> one L2-normalised feature per template.

As practised on IJB-A: frames of one media (video) are averaged first, then the media of a
template are combined, then the result is L2-normalised. Each choice is an explicit option
recorded in result.json, since together they move IJB-A numbers by about half a point.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from ..yawbins import YawBinning


@dataclass(frozen=True)
class PoolingConfig:
    normalise_images: bool = True  # L2-normalise each image feature before pooling
    media_average: bool = True  # average a media's frames first, so a long video counts once
    #: weigh each (normalised) image by its detector score, samples' ``faceness`` column
    #: (insightface's IJB-B/C ``use_detector_score``: blurred, turned faces count less)
    faceness_weight: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, pooling) -> PoolingConfig:
        """The pooling a protocol's ``[pooling]`` section asks for."""
        return cls(normalise_images=pooling.normalise_images,
                   media_average=pooling.media_average,
                   faceness_weight=pooling.faceness_weight)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _mean_by(codes: np.ndarray, n_groups: int, x: np.ndarray) -> np.ndarray:
    """Row means of ``x`` grouped by ``codes`` (one sparse product, no Python loop)."""
    m = sparse.csr_matrix((np.ones(codes.size), (codes, np.arange(codes.size))),
                          shape=(n_groups, codes.size))
    counts = np.asarray(m.sum(axis=1)).ravel()
    return (m @ x) / counts[:, None]


def pool_templates(features: np.ndarray, samples: pd.DataFrame,
                   cfg: PoolingConfig = PoolingConfig()) -> tuple[np.ndarray, np.ndarray]:
    """``features``: (N, D), one per samples row. Returns (template ids (T,), (T, D) pooled).

    Template ids come out in order of first appearance.
    """
    if features.shape[0] != len(samples):
        raise ValueError(f"{features.shape[0]} features for {len(samples)} samples")
    x = features.astype(np.float64)
    if cfg.normalise_images:
        x = l2_normalise(x)
    if cfg.faceness_weight:
        if "faceness" not in samples:
            raise ValueError("pooling.faceness_weight needs a faceness (detector score) per "
                             "image, which this dataset's reader does not give")
        # An image the release's detector gave no score (no five points line) weighs as a
        # sure face, not NaN: one such crop would otherwise void its whole template.
        faceness = samples["faceness"].to_numpy(np.float64)
        x = x * np.where(np.isnan(faceness), 1.0, faceness)[:, None]
    templates = samples["template"].to_numpy()
    if cfg.media_average:
        keys = pd.MultiIndex.from_arrays([templates, samples["media"].to_numpy()])
        media_codes, media_keys = pd.factorize(keys)
        x = _mean_by(media_codes, len(media_keys), x)
        templates = np.asarray(media_keys.get_level_values(0))
    t_codes, t_ids = pd.factorize(templates)
    pooled = _mean_by(t_codes, len(t_ids), x)
    return np.asarray(t_ids, dtype=object).astype(str), l2_normalise(pooled).astype(np.float32)


def template_table(samples: pd.DataFrame, yaw: YawBinning = YawBinning()) -> pd.DataFrame:
    """Per template: subject and yaw (its images' |yaw| summarised by the protocol's
    ``template_yaw``; NaN without any).

    For image-level protocols a template is one image, so its yaw is the image's yaw
    (sign kept).
    """
    g = samples.groupby("template", sort=False)
    n = g.size()
    yaw_single = g["yaw"].first()
    yaw_summary = yaw.template_yaws(samples).reindex(n.index)
    yaw = np.where(n.to_numpy() == 1, yaw_single.to_numpy(), yaw_summary.to_numpy())
    return pd.DataFrame({"template": n.index.astype(str), "subject": g["subject"].first().to_numpy(),
                         "yaw": yaw.astype(np.float64), "images": n.to_numpy()})
