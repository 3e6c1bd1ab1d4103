"""Features of a model over image files: what training (clustering) and evaluation both read."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

logger = logging.getLogger(__name__)


@torch.no_grad()
def extract_features(model: nn.Module, paths: Sequence[str], height: int, width: int,
                     batch_size: int, device: torch.device, which: str = "pool",
                     num_workers: int = 0, progress: bool = False,
                     allow_missing: bool = False, amp: str = "off",
                     cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Run the model in eval mode over images and return L2-normalised features.

    Parameters
    ----------
    model : nn.Module
        Returns ``(embedding, pooled)`` like ``ReIDNet``; its train/eval mode is
        restored afterwards.
    paths : sequence of str
        Image files, read with the eval transform (resize + ImageNet normalise).
    which : {"pool", "embed"}
        Pooled (pool5) feature, or the embedding head's output.
    allow_missing : bool
        An image that fails to decode raises ValueError, or, if True, leaves its
        row NaN (a warning is logged).
    amp : {"off", "bf16", "fp16"}
        Autocast on CUDA (``train.amp``); features are returned as float32.
        Ignored on a CPU device (fp32, unchanged).
    cache_dir : path, optional
        Keep the decoded, resized images here (:class:`ResizedImageCache`): the next
        pass over the same files decodes none of them. Same features either way.

    Returns
    -------
    np.ndarray of float32, shape (len(paths), d)
    """
    from reid_core.data.images import EvalImageDataset, collate_skip_none
    from reid_core.data.transforms import eval_transform
    from reid_core.runtime.knn import faiss_worker_init
    from reid_core.runtime.precision import amp_context, to_device_images

    if which not in ("pool", "embed"):
        raise ValueError(f"which must be 'pool' or 'embed', got {which!r}")
    if not paths:
        raise ValueError("extract_features: no image paths given")
    if cache_dir is not None:
        from reid_core.data.resized_cache import ResizedImageCache, normalised_batches

        loader = normalised_batches(*ResizedImageCache(cache_dir, height, width).load(paths), batch_size)
    else:
        loader = DataLoader(EvalImageDataset(paths, eval_transform(height, width)),
                            batch_size=batch_size, shuffle=False, num_workers=num_workers,
                            collate_fn=collate_skip_none, pin_memory=device.type == "cuda",
                            worker_init_fn=faiss_worker_init)  # forked workers hang in faiss otherwise
    autocast = amp_context(amp, device)
    batches = loader
    if progress:
        from tqdm import tqdm

        batches = tqdm(loader, desc=f"features ({which})", unit="batch")
    was_training = model.training
    model.eval()
    features: np.ndarray | None = None
    try:
        for batch in batches:
            if batch is None:
                continue
            images, index = batch
            with autocast():
                embedding, pooled = model(to_device_images(images, device))
            embedding, pooled = embedding.float(), pooled.float()
            chosen = torch.nn.functional.normalize(pooled if which == "pool" else embedding, dim=1)
            if features is None:
                features = np.full((len(paths), chosen.shape[1]), np.nan, dtype=np.float32)
                decoded = np.zeros(len(paths), dtype=bool)
            features[index.numpy()] = chosen.float().cpu().numpy()
            decoded[index.numpy()] = True
    finally:
        model.train(was_training)
    if features is None:
        raise ValueError(f"none of the {len(paths)} image(s) could be decoded, "
                         f"e.g. {list(paths[:3])}")
    diverged = np.flatnonzero(decoded & ~np.isfinite(features).all(axis=1))
    if len(diverged) and not allow_missing:  # a NaN feature of a decoded image: the weights, not the file
        raise ValueError(f"the model gives non-finite features for {len(diverged)} of {len(paths)} image(s) "
                         f"(its weights have diverged), e.g. {[paths[i] for i in diverged[:3]]}")
    missing = np.flatnonzero(~decoded)
    if len(missing):
        examples = [paths[i] for i in missing[:3]]
        if not allow_missing:
            raise ValueError(f"{len(missing)} of {len(paths)} image(s) failed to decode, "
                             f"e.g. {examples}")
        logger.warning("%d of %d image(s) failed to decode (e.g. %s); their feature rows are NaN",
                       len(missing), len(paths), examples)
    return features


def remove_camera_means(features: np.ndarray, camids: np.ndarray) -> np.ndarray:
    """Subtract each camera's mean feature, then L2-normalise every row (float32).

    It takes out what all images of one camera share (colour cast, background, viewpoint), so
    that neighbours are less often "same camera" and more often "same person". Camera ids only.
    """
    features = np.asarray(features, dtype=np.float32)
    camids = np.asarray(camids)
    if features.ndim != 2 or camids.shape != (len(features),):
        raise ValueError(f"features (N, d) and camids (N,) expected, got {features.shape} and {camids.shape}")
    out = features.copy()
    for cam in np.unique(camids):
        rows = camids == cam
        out[rows] -= out[rows].mean(axis=0, dtype=np.float64).astype(np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)
