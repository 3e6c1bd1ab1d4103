"""Use a trained model: load it from a server checkpoint, rank a gallery for each query.

The checkpoint (`run_dir/checkpoint`, see :mod:`reid_core.federation.state`) holds the
global model and each client's last uploaded local model; the run's metrics.json
holds the experiment, its overrides and mu. A client's personalised model is
theta_k = mu * theta_k(local) + (1 - mu) * theta_global (BatchNorm the edge's own with
pu.local_bn), the model it was evaluated with.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from reid_core.runtime.arrays import load_arrays
from reid_core.federation.state import ServerState
from reid_core.config.schema import ImageConfig, ModelConfig
from reid_core.data.market import IMAGE_EXTENSIONS
from reid_core.eval.ranking import pairwise_sqdist
from reid_core.features import extract_features
from reid_core.models import ReIDNet, build_model
from reid_core.config.schema import PersonalizedUpdate
from reid_core.federation.aggregation import personalize

log = logging.getLogger(__name__)

MODEL_CHOICES = ("personalized", "client", "global")


@dataclass(frozen=True)
class LoadedModel:
    """A model rebuilt from a checkpoint, and what it is."""

    net: ReIDNet
    image: ImageConfig
    client: str | None
    kind: str  # personalized | client | global
    mu: float
    round: int


def checkpoint_dirs(checkpoint: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint folder, run folder) from either of them."""
    path = Path(checkpoint)
    ckpt = path if (path / "meta.json").exists() or path.name == "checkpoint" else path / "checkpoint"
    return ckpt, ckpt.parent


def run_configs(run_dir: Path, extra_overrides: Sequence[str] = ()) -> tuple[ModelConfig, ImageConfig,
                                                                            PersonalizedUpdate]:
    """ModelConfig, ImageConfig and Personalized Update of a run, from its metrics.json and overrides.

    Weights are never read (the checkpoint holds every array) and data paths are not
    checked, so a run folder copied to another machine still loads.
    """
    from omegaconf import OmegaConf

    from reid_core.config.settings import compose

    metrics_file = run_dir / "metrics.json"
    meta = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    overrides = [o for o in meta.get("overrides", []) if not o.startswith(("data.", "run_dir=", "+data."))]
    if not any(o.startswith("experiment=") for o in overrides) and meta.get("experiment"):
        overrides.insert(0, f"experiment={meta['experiment']}")
    cfg = OmegaConf.to_container(compose([*overrides, *extra_overrides]), resolve=True)
    try:
        model = replace(ModelConfig(**cfg["model"]), weights=None)
        image = ImageConfig(**cfg["image"])
    except TypeError as err:  # conf/ and the dataclasses disagree (e.g. a renamed key)
        raise ValueError(f"model/image config of run {run_dir} does not fit this code: {err}") from err
    # where it was mixed does not change the personalised model: the cloud's mix is the edge's
    pu = PersonalizedUpdate(float(meta.get("mu", cfg["pu"]["mu"])),
                            local_bn=bool(meta.get("local_bn", cfg["pu"]["local_bn"])))
    return model, image, pu


def load_model(checkpoint: str | os.PathLike, client: str | None = None, kind: str = "personalized",
               extra_overrides: Sequence[str] = (), device: torch.device | None = None) -> LoadedModel:
    """Rebuild the global, a client's local, or a client's personalised model from a checkpoint.

    Parameters
    ----------
    checkpoint : path
        `run_dir/checkpoint` (or the run folder).
    client : str, optional
        Needed for `kind` "personalized" and "client"; may be left out when the run has one client.
    kind : {"personalized", "client", "global"}
    extra_overrides : sequence of str
        Hydra overrides for a run without metrics.json (e.g. `experiment=smoke`).
    """
    if kind not in MODEL_CHOICES:
        raise ValueError(f"model must be one of {MODEL_CHOICES}, got {kind!r}")
    ckpt_dir, run_dir = checkpoint_dirs(checkpoint)
    state = ServerState.load(ckpt_dir)
    if state is None:
        raise FileNotFoundError(f"no checkpoint in {ckpt_dir} (expected state.npz and meta.json)")
    model_cfg, image_cfg, pu = run_configs(run_dir, extra_overrides)
    if kind != "global":
        if client is None:
            if len(state.client_arrays) != 1:
                raise ValueError(f"choose client=NAME, one of {sorted(state.client_arrays)}")
            client = next(iter(state.client_arrays))
        if client not in state.client_arrays:
            raise ValueError(f"client '{client}' not in the checkpoint; it holds {sorted(state.client_arrays)}")
    if kind == "global":
        arrays = state.global_arrays
    elif kind == "client":
        arrays = state.client_arrays[client]
    else:
        arrays = personalize(pu, state.client_arrays[client], state.global_arrays)
    net = build_model(model_cfg)
    load_arrays(net, arrays)
    net.eval()
    net.to(device or torch.device("cpu"))
    log.info("loaded %s model of %s (round %d, mu %.2f) from %s", kind, client or "-", state.round, pu.mu, ckpt_dir)
    return LoadedModel(net, image_cfg, client, kind, pu.mu, state.round)


def list_images(folder: str | os.PathLike) -> list[str]:
    """Image files under `folder` (recursive, sorted); no file-name parsing."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise ValueError(f"no images ({' '.join(IMAGE_EXTENSIONS)}) under {root}")
    return paths


def features_of(model: LoadedModel, paths: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Pooled L2-normalised features of the images that decode, and their paths."""
    device = next(model.net.parameters()).device
    feats = extract_features(model.net, list(paths), model.image.height, model.image.width,
                             model.image.eval_batch_size, device, which="pool", allow_missing=True)
    keep = ~np.isnan(feats).any(axis=1)
    return feats[keep], [p for p, k in zip(paths, keep) if k]


def top_k(query_feats: np.ndarray, gallery_feats: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and squared distances of the `k` closest gallery rows per query (closest first).

    Ties keep gallery order (stable sort), so results are deterministic.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    dist = pairwise_sqdist(query_feats, gallery_feats)
    k = min(k, dist.shape[1])
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(dist, order, axis=1)


def write_ranking_csv(path: str | os.PathLike, queries: Sequence[str], gallery: Sequence[str],
                      order: np.ndarray, dist: np.ndarray) -> None:
    """One row per (query, rank): query, rank (1-based), gallery image, squared distance."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["query", "rank", "gallery", "distance"])
        for qi, q in enumerate(queries):
            for r, (gi, d) in enumerate(zip(order[qi], dist[qi]), start=1):
                writer.writerow([q, r, gallery[gi], f"{d:.6f}"])


def rank_folders(checkpoint: str | os.PathLike, query_dir: str | os.PathLike, gallery_dir: str | os.PathLike,
                 out: str | os.PathLike, client: str | None = None, kind: str = "personalized",
                 k: int = 10, extra_overrides: Sequence[str] = ()) -> dict[str, int]:
    """Rank the gallery folder's images for every query-folder image; write `out` (CSV).

    Returns counts: queries, gallery images, skipped (undecodable) images, k.
    """
    model = load_model(checkpoint, client, kind, extra_overrides)
    q_paths, g_paths = list_images(query_dir), list_images(gallery_dir)
    qf, q_kept = features_of(model, q_paths)
    gf, g_kept = features_of(model, g_paths)
    if not q_kept or not g_kept:
        raise ValueError(f"no decodable images in {query_dir if not q_kept else gallery_dir}")
    order, dist = top_k(qf, gf, k)
    write_ranking_csv(out, q_kept, g_kept, order, dist)
    skipped = len(q_paths) - len(q_kept) + len(g_paths) - len(g_kept)
    if skipped:
        log.warning("%d image(s) could not be decoded and were left out", skipped)
    return {"queries": len(q_kept), "gallery": len(g_kept), "skipped": skipped, "k": int(order.shape[1])}
